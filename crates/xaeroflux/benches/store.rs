// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! The store against its baselines, in one process and one run, on the same
//! disk: durable batched appends against heed alone (one synced write
//! transaction per 1,000 events) and a plain file (fdatasync every 1,000
//! events); single-event durable latency; a full scan; proof generation and
//! verification; and the time to open.
//!
//! `cargo bench -p xaeroflux --bench store` (XF_BENCH_EVENTS=N for another size;
//! XF_BENCH_ONLY=private for the private-topic section alone, XF_BENCH_ONLY=append
//! for the appends alone).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use heed::types::Bytes;
use heed::{Database, EnvOpenOptions};
use xaeroflux::merkle::{MemoryTree, hash_leaf};
use xaeroflux::{Core, Topic, verify_inclusion};

use xaeroflux_testkit::{Latencies, bench_payload as payload, env_u64, rate, sized_payload, us};

const BATCH: usize = 1000;
const PAYLOAD: usize = 100;

fn bench_heed(dir: &Path, n: u64) -> (f64, f64) {
    std::fs::create_dir_all(dir).unwrap();
    let env = unsafe { EnvOpenOptions::new().map_size(8 << 30).max_dbs(1).open(dir) }.unwrap();
    let mut wtxn = env.write_txn().unwrap();
    let db: Database<Bytes, Bytes> = env.create_database(&mut wtxn, Some("events")).unwrap();
    wtxn.commit().unwrap();
    let t = Instant::now();
    let mut i = 0u64;
    while i < n {
        let mut wtxn = env.write_txn().unwrap();
        for _ in 0..BATCH.min((n - i) as usize) {
            db.put(&mut wtxn, &i.to_be_bytes(), &payload(i)).unwrap();
            i += 1;
        }
        wtxn.commit().unwrap(); // synced: heed's default durability
    }
    let append = rate(n, t.elapsed());
    let t = Instant::now();
    let rtxn = env.read_txn().unwrap();
    let mut count = 0u64;
    let mut sum = 0u64;
    for item in db.iter(&rtxn).unwrap() {
        let (_, v) = item.unwrap();
        sum = sum.wrapping_add(v[0] as u64);
        count += 1;
    }
    std::hint::black_box(sum);
    assert_eq!(count, n);
    (append, rate(n, t.elapsed()))
}

/// A new, empty file for a baseline.
fn create(path: &Path) -> std::fs::File {
    OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)
        .unwrap()
}

/// A plain file: `n` length-prefixed records, one `fdatasync` per `batch`.
fn bench_file(path: &Path, n: u64, batch: usize) -> f64 {
    let mut f = create(path);
    let t = Instant::now();
    let mut buf = Vec::with_capacity(batch * (PAYLOAD + 4));
    let mut i = 0u64;
    while i < n {
        buf.clear();
        for _ in 0..batch.min((n - i) as usize) {
            buf.extend_from_slice(&(PAYLOAD as u32).to_le_bytes());
            buf.extend_from_slice(&payload(i));
            i += 1;
        }
        f.write_all(&buf).unwrap();
        f.sync_data().unwrap();
    }
    rate(n, t.elapsed())
}

fn main() {
    let n = env_u64("XF_BENCH_EVENTS", 1_000_000);
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    println!(
        "xaeroflux store benchmark: {n} events of {PAYLOAD} bytes, batches of {BATCH}, durable"
    );
    println!("(directory {}, same disk for all)\n", base.path().display());
    if std::env::var("XF_BENCH_ONLY").as_deref() == Ok("private") {
        private(&base.path().join("private"), n);
        return;
    }

    // Baselines first, then the store; each on a fresh directory.
    let (heed_rate, heed_scan) = bench_heed(&base.path().join("heed"), n);
    let file_rate = bench_file(&base.path().join("plain.log"), n, BATCH);
    let store_dir = base.path().join("store");
    let core = Core::builder().open(&store_dir).unwrap();
    let (store_rate, log) = appends(&core, &Topic::new("bench").unwrap(), n);
    println!("durable batched append (events/s)");
    println!("  xaeroflux append_batch  {store_rate:>12.0}");
    println!(
        "  heed, synced txn/1000   {heed_rate:>12.0}   ratio {:.2}x (target >= 2x)",
        store_rate / heed_rate
    );
    println!(
        "  file, fdatasync/1000    {file_rate:>12.0}   ratio {:.2}x",
        store_rate / file_rate
    );
    let samples = 2000;
    latency(&core, &base.path().join("latency.log"), samples);
    concurrent(&base.path().join("concurrent"), n);
    if std::env::var("XF_BENCH_ONLY").as_deref() == Ok("append") {
        return;
    }
    scan(&core, heed_scan);
    proofs(&core, &log);
    core.close().unwrap();
    opens(&store_dir, &base.path().join("heed"), &log, n, samples);
    private(&base.path().join("private"), n);
}

/// A private topic beside a plain one, in one store and one run: sealed
/// appends, reading with decryption, the envelope's size, and a rekey.
fn private(dir: &Path, n: u64) {
    let core = Core::builder().open(dir).unwrap();
    let plain = Topic::new("plain").unwrap();
    let sealed = core.create_private_topic(Some("bench")).unwrap().topic;
    // Beside the plain appends, the same with payloads as long as the
    // envelopes: what the size alone costs, without the cipher. Four
    // rounds of n/4 events each, the order turning every round, so that
    // neither the store's growth nor the machine's moods favour one.
    let as_long = xaeroflux::e2e::sealed_len(PAYLOAD);
    let long = Topic::new("plain-long").unwrap();
    let kinds = [(&plain, PAYLOAD), (&sealed, PAYLOAD), (&long, as_long)];
    let mut secs = [0f64; 3];
    let per = (n / 4).max(1);
    for round in 0..4 {
        for k in 0..3 {
            let which = (round + k) % 3;
            let (topic, len) = kinds[which];
            let (r, _) = appends_of(&core, topic, per, len);
            secs[which] += per as f64 / r;
        }
    }
    let [plain_rate, sealed_rate, long_rate] = secs.map(|s| 4.0 * per as f64 / s);
    println!(
        "
private topic ({n} events of {PAYLOAD} bytes, batches of {BATCH}, durable)"
    );
    println!("  plain append_batch      {plain_rate:>12.0}");
    println!(
        "  sealed append_batch     {sealed_rate:>12.0}   ratio {:.2}x (target >= 0.85x)",
        sealed_rate / plain_rate
    );
    println!(
        "  plain, {as_long}-byte payloads {long_rate:>11.0}   ratio {:.2}x (the envelope's length alone)",
        long_rate / plain_rate
    );
    let read = |topic: &Topic| {
        let t = Instant::now();
        let mut bytes = 0usize;
        for ev in core.read_topic(topic) {
            let ev = ev.unwrap();
            if ev.event.kind() != xaeroflux::EventKind::Application {
                continue;
            }
            bytes += ev
                .plaintext()
                .expect("the controller reads its topic")
                .len();
        }
        assert_eq!(bytes as u64, 4 * per * PAYLOAD as u64);
        rate(4 * per, t.elapsed())
    };
    let (plain_scan, sealed_scan) = (read(&plain), read(&sealed));
    println!("  plain topic read        {plain_scan:>12.0} events/s");
    println!(
        "  sealed topic read       {sealed_scan:>12.0} events/s   ratio {:.2}x (target >= 0.5x)",
        sealed_scan / plain_scan
    );
    println!(
        "  envelope                {:>12} bytes per {PAYLOAD}-byte event (49 fixed + padding)",
        xaeroflux::e2e::sealed_len(PAYLOAD) - PAYLOAD
    );
    // A rekey for 200 members: the controller wraps a new secret to each.
    let members = 199;
    for _ in 0..members {
        let k = xaeroflux::e2e::MemberSecret::generate()
            .unwrap()
            .public()
            .unwrap();
        core.add_member(&sealed, &k).unwrap();
    }
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        core.rekey(&sealed).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "  rekey, {} members        {:>9.1} ms median of 5 (target < 50 ms; wrap, append, fsync)",
        members + 1,
        times[2]
    );
    core.close().unwrap();
}

/// Durable batched appends of `n` events to `topic`; the rate and the log.
fn appends(core: &Core, topic: &Topic, n: u64) -> (f64, xaeroflux::LogId) {
    appends_of(core, topic, n, PAYLOAD)
}

/// [`appends`] with payloads of `len` bytes.
fn appends_of(core: &Core, topic: &Topic, n: u64, len: usize) -> (f64, xaeroflux::LogId) {
    let topic = topic.clone();
    let t = Instant::now();
    let mut i = 0u64;
    while i < n {
        let evs = (0..BATCH.min((n - i) as usize))
            .map(|k| core.new_event_in(&topic, sized_payload(i + k as u64, len)))
            .collect::<Vec<_>>();
        i += evs.len() as u64;
        core.append_batch(evs).unwrap();
    }
    (rate(n, t.elapsed()), core.own_log(&topic))
}

/// Appenders of batches of 100: one caller, then four threads at once on
/// the same store (each its own topic), beside a plain file synced per
/// batch of 100.
fn concurrent(dir: &Path, n: u64) {
    const SMALL: usize = 100;
    const THREADS: u64 = 4;
    let n = (n / 4).max(SMALL as u64 * THREADS);
    let per = n / THREADS;
    let run = |core: &Core, name: &str, count: u64| {
        let topic = Topic::new(name).unwrap();
        let mut i = 0u64;
        while i < count {
            let evs = (0..SMALL.min((count - i) as usize))
                .map(|k| core.new_event_in(&topic, payload(i + k as u64)))
                .collect::<Vec<_>>();
            i += evs.len() as u64;
            core.append_batch(evs).unwrap();
        }
    };
    std::fs::create_dir_all(dir).unwrap();
    let core = Core::builder().open(dir.join("store")).unwrap();
    let t = Instant::now();
    run(&core, "single", n);
    let single = rate(n, t.elapsed());
    let t = Instant::now();
    std::thread::scope(|s| {
        for k in 0..THREADS {
            let core = &core;
            s.spawn(move || run(core, &format!("thread-{k}"), per));
        }
    });
    let four = rate(per * THREADS, t.elapsed());
    core.close().unwrap();
    let file = bench_file(&dir.join("plain.log"), n, SMALL);
    println!("\nconcurrent appenders, batches of {SMALL}, durable ({n} events each way)");
    println!("  1 caller                {single:>12.0} events/s");
    println!(
        "  {THREADS} threads               {four:>12.0} events/s   ratio {:.2}x to 1 caller",
        four / single
    );
    println!(
        "  file, fdatasync/{SMALL}      {file:>12.0} events/s   ratio {:.2}x (4 threads)",
        four / file
    );
}

/// Single-event durable append latency, beside a write+fdatasync of one
/// record. The two take turns, sample by sample, so that both meet the
/// same disk (the writeback of the appends before, other load).
fn latency(core: &Core, file: &Path, samples: usize) {
    let lat_topic = Topic::new("latency").unwrap();
    let mut f = create(file);
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for i in 0..samples as u64 {
        let ev = core.new_event_in(&lat_topic, payload(i));
        let t = Instant::now();
        core.append(ev).unwrap();
        ours.push(t.elapsed());
        let t = Instant::now();
        f.write_all(&payload(i)).unwrap();
        f.sync_data().unwrap();
        theirs.push(t.elapsed());
    }
    let (lat, flat) = (Latencies::new(ours), Latencies::new(theirs));
    println!("\nsingle durable append latency ({samples} samples, taking turns)");
    println!("  xaeroflux append        {}", lat.describe());
    println!(
        "  file write+fdatasync    {}   ratio p50 {:.2}x (target <= 1.3x)",
        flat.describe(),
        us(lat.p50()) / us(flat.p50())
    );
}

/// Full scan, beside a cursor scan of the heed baseline.
fn scan(core: &Core, heed_scan: f64) {
    let t = Instant::now();
    let mut count = 0u64;
    let mut sum = 0u64;
    for ev in core.iter_events() {
        let ev = ev.unwrap();
        sum = sum.wrapping_add(ev.payload()[0] as u64);
        count += 1;
    }
    std::hint::black_box(sum);
    let scan = rate(count, t.elapsed());
    println!("\nfull scan with iter_events (checksums checked)");
    println!("  xaeroflux               {scan:>12.0} events/s (target >= 10M)");
    println!(
        "  heed cursor scan        {heed_scan:>12.0} events/s   ratio {:.2}x",
        scan / heed_scan
    );
}

/// Proofs on the long log, beside the same proofs from an in-memory tree.
fn proofs(core: &Core, log: &xaeroflux::LogId) {
    let size = core.log_size(log).unwrap();
    let k = 20_000u64;
    let seqs: Vec<u64> = (0..k).map(|j| (j * 2_654_435_761) % size).collect();
    // First pass: the index pages are touched for the first time in this
    // process (page faults on the LMDB map); second pass: the same leaves, warm.
    let t = Instant::now();
    let proofs: Vec<_> = seqs
        .iter()
        .map(|s| core.prove_inclusion(log, *s, size).unwrap())
        .collect();
    let cold_us = us(t.elapsed()) / k as f64;
    let t = Instant::now();
    for s in &seqs {
        std::hint::black_box(core.prove_inclusion(log, *s, size).unwrap());
    }
    let gen_us = us(t.elapsed()) / k as f64;
    let t = Instant::now();
    for p in &proofs {
        verify_inclusion(&p.leaf_hash, p.index, p.size, &p.path, &p.root).unwrap();
    }
    let ver_us = us(t.elapsed()) / k as f64;
    let mut tree = MemoryTree::new();
    for ev in core.iter_log(log, 0) {
        tree.push(hash_leaf(ev.unwrap().canonical_bytes()));
    }
    let t = Instant::now();
    for s in &seqs {
        std::hint::black_box(tree.inclusion_path(*s, size).unwrap());
    }
    let mem_us = us(t.elapsed()) / k as f64;
    assert_eq!(tree.root(), proofs[0].root);
    println!("\ninclusion proofs on a {size}-event log ({k} random leaves)");
    println!("  generate, first pass    {cold_us:>8.2} us   (index pages faulted in)");
    println!("  generate, warm          {gen_us:>8.2} us   (target < 10 us)");
    println!(
        "  generate (memory tree)  {mem_us:>8.2} us   ratio {:.2}x",
        gen_us / mem_us
    );
    println!("  verify                  {ver_us:>8.2} us");
}

/// Open time of the store, beside opening the heed baseline (median of 5).
fn opens(store_dir: &Path, heed_dir: &Path, log: &xaeroflux::LogId, n: u64, samples: usize) {
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let ours = median(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                let c = Core::builder().open(store_dir).unwrap();
                let d = t.elapsed();
                assert_eq!(c.log_size(log).unwrap(), n);
                c.close().unwrap();
                d
            })
            .collect(),
    );
    let theirs = median(
        (0..5)
            .map(|_| {
                let t = Instant::now();
                let env = unsafe {
                    EnvOpenOptions::new()
                        .map_size(8 << 30)
                        .max_dbs(1)
                        .open(heed_dir)
                }
                .unwrap();
                let rtxn = env.read_txn().unwrap();
                let _db: Option<Database<Bytes, Bytes>> =
                    env.open_database(&rtxn, Some("events")).unwrap();
                drop(rtxn);
                let d = t.elapsed();
                env.prepare_for_closing().wait();
                d
            })
            .collect(),
    );
    println!("\nopen ({n} events, 1 log + {samples}-event log; median of 5)");
    println!(
        "  xaeroflux open          {:>8.2} ms   (target < 50 ms)",
        ours.as_secs_f64() * 1e3
    );
    println!(
        "  heed env open           {:>8.2} ms   ratio {:.1}x",
        theirs.as_secs_f64() * 1e3,
        ours.as_secs_f64() / theirs.as_secs_f64()
    );
}
