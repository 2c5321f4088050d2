//! What Xaeroflux's tests and benchmarks share, so each is written once:
//! payload generators, latency percentiles and rates, settings read from
//! the environment, a seeded generator that prints its seed, bounded
//! waits, and the process's thread count. Not published.
//!
//! ```
//! use std::time::Duration;
//! use xaeroflux_testkit::{Latencies, bench_payload, env_u64, wait_until};
//!
//! let n = env_u64("XF_EXAMPLE_EVENTS", 3);
//! assert_eq!(bench_payload(7).len(), 100);
//! let lat = Latencies::new((1..=100).map(Duration::from_micros).collect());
//! assert_eq!(lat.p50(), Duration::from_micros(51));
//! assert!(wait_until(Duration::from_secs(1), || n == 3));
//! ```

// Test support: a setup that fails is a failed test, so it may panic.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

pub use xaeroflux_sync::sim::Rng;

#[cfg(feature = "store")]
mod fill;
#[cfg(feature = "store")]
pub use fill::{bench_source, fill_with};

/// A setting from the environment (`XF_BENCH_EVENTS` and the like), or
/// `default` when it is unset or not a number.
pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The payload benchmarks append: 100 bytes, numbered `i` in its first
/// eight, the rest varying with `i`.
pub fn bench_payload(i: u64) -> Vec<u8> {
    sized_payload(i, 100)
}

/// A payload of `len` bytes numbered `i` (in its first eight bytes, when
/// there is room).
pub fn sized_payload(i: u64, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|j| (i as usize * 31 + j) as u8).collect();
    for (d, s) in p.iter_mut().zip(i.to_le_bytes()) {
        *d = s;
    }
    p
}

/// A payload of 0 to 299 bytes depending on `i`, so pages fill unevenly.
pub fn varied_payload(i: u64) -> Vec<u8> {
    let len = (i * 37 % 300) as usize;
    (0..len).map(|j| (i as usize + j) as u8).collect()
}

/// Events per second.
pub fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// Microseconds.
pub fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Latency samples, sorted, with their percentiles.
#[derive(Debug, Clone)]
pub struct Latencies(Vec<Duration>);

impl Latencies {
    /// From samples in any order.
    pub fn new(mut samples: Vec<Duration>) -> Self {
        samples.sort();
        Self(samples)
    }

    /// The `p`-quantile (0 to 1), nearest rank; zero when there are no
    /// samples.
    pub fn pct(&self, p: f64) -> Duration {
        let Some(last) = self.0.len().checked_sub(1) else {
            return Duration::ZERO;
        };
        let i = ((last as f64) * p.clamp(0.0, 1.0)).round() as usize;
        self.0.get(i.min(last)).copied().unwrap_or_default()
    }

    /// The median.
    pub fn p50(&self) -> Duration {
        self.pct(0.5)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> Duration {
        self.pct(0.99)
    }

    /// `p50 / p99` in microseconds, as benchmarks print them.
    pub fn describe(&self) -> String {
        format!(
            "p50 {:>8.1} us   p99 {:>8.1} us",
            us(self.p50()),
            us(self.p99())
        )
    }
}

/// The median of some figures (0 when there are none).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// Waits until `f` holds, checking every few milliseconds, at most
/// `timeout`; whether it held.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `done` holds, looking again each time `changes` reports
/// something (a store's change feed), at most `timeout`; whether it held.
/// No polling: a wait ends as soon as the change that makes it hold is
/// reported.
pub fn wait_on<T>(
    changes: &crossbeam_channel::Receiver<T>,
    timeout: Duration,
    mut done: impl FnMut() -> bool,
) -> bool {
    let deadline = Instant::now() + timeout;
    while !done() {
        let left = deadline.saturating_duration_since(Instant::now());
        if changes.recv_timeout(left).is_err() {
            return done();
        }
    }
    true
}

/// Waits (at most `timeout`, woken by `changes`, e.g. `MemStore::watch`)
/// until `store` holds `size` events of `log`; the error says how many it
/// holds.
pub fn wait_log_size(
    store: &xaeroflux_sync::MemStore,
    changes: &crossbeam_channel::Receiver<xaeroflux_types::LogId>,
    log: &xaeroflux_types::LogId,
    size: u64,
    timeout: Duration,
) -> Result<(), String> {
    let held = || store.heads().get(log).map(|h| h.0);
    if wait_on(changes, timeout, || held() == Some(size)) {
        Ok(())
    } else {
        Err(format!(
            "{log} did not reach {size} events within {timeout:?} (holds {:?})",
            held()
        ))
    }
}

/// The process's OS thread count (Linux), to check a thread budget.
pub fn os_threads() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}

/// The names of the process's threads, sorted (Linux).
pub fn thread_names() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("comm")).ok())
        .map(|s| s.trim().to_string())
        .collect();
    v.sort();
    v
}

/// The process's OS thread count; panics where `/proc` is missing.
pub fn thread_count() -> usize {
    os_threads().expect("/proc/self/task")
}

/// Waits, at most 10 s, for the thread count to come back to `want`.
pub fn threads_settle_at(want: usize) -> bool {
    wait_until(Duration::from_secs(10), || os_threads() == Some(want))
}

/// A generator seeded from `XF_TEST_SEED` when set, else from the clock;
/// the seed is printed so a failing run can be replayed.
pub fn seeded_rng() -> Rng {
    Rng::new(seed_from_env("XF_TEST_SEED"))
}

/// A seed from the environment variable `var`, or from the clock; printed
/// with how to replay it.
pub fn seed_from_env(var: &str) -> u64 {
    let seed = std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("seed {seed} ({var}={seed} replays this run)");
    seed
}

/// Every file below `dir`, at any depth (what a scan for leaked bytes
/// reads).
pub fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("reading a test directory") {
            let p = e.expect("a directory entry").path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files.push(p);
            }
        }
    }
    files
}

/// Whether any file below `dir` holds `needle`.
pub fn files_hold(dir: &std::path::Path, needle: &[u8]) -> bool {
    files_under(dir)
        .iter()
        .any(|p| std::fs::read(p).is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle)))
}

/// A `kB` field of `/proc/self/status` (`"VmRSS:"`, `"VmHWM:"`), in KiB;
/// 0 where it cannot be read.
pub fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Context switches of every live thread of the process, voluntary and
/// not (Linux): how often the process woke, summed over its threads.
pub fn context_switches() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read_to_string(e.path().join("status")).ok())
        .map(|s| {
            s.lines()
                .filter(|l| {
                    l.starts_with("voluntary_ctxt_switches:")
                        || l.starts_with("nonvoluntary_ctxt_switches:")
                })
                .filter_map(|l| l.split_whitespace().nth(1))
                .filter_map(|v| v.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// Runs `a` and `b` on the two ends of one loopback TCP connection, `a` on
/// the accepting side in a thread of its own; returns both results. For a
/// sync session between two stores: `tcp_pair(|c| a.sync_over_tcp(c, ..),
/// |c| b.sync_over_tcp(c, ..))`.
pub fn tcp_pair<A: Send, B>(
    a: impl FnOnce(std::net::TcpStream) -> A + Send,
    b: impl FnOnce(std::net::TcpStream) -> B,
) -> (A, B) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("local address");
    std::thread::scope(|s| {
        let served = s.spawn(move || {
            let (conn, _) = listener.accept().expect("accept");
            a(conn)
        });
        let conn = std::net::TcpStream::connect(addr).expect("connect");
        let rb = b(conn);
        (served.join().expect("the accepting side panicked"), rb)
    })
}

/// The heart of a process-kill test: takes reports from `rx` until
/// `target` have come (or 20 s have passed), lets a random moment of up to
/// `max_spin_us` go by so the kill lands in any phase of a commit, checks
/// that `child` still runs, and kills it with SIGKILL. Returns the reports
/// taken; the caller joins its reader and adds what is left in `rx`.
pub fn kill_after_reports<T>(
    child: &mut std::process::Child,
    rx: &std::sync::mpsc::Receiver<T>,
    target: u64,
    max_spin_us: u64,
    rng: &mut Rng,
    what: &str,
) -> Vec<T> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut reports = Vec::new();
    while (reports.len() as u64) < target && Instant::now() < deadline {
        if let Ok(r) = rx.recv_timeout(Duration::from_millis(100)) {
            reports.push(r);
        }
    }
    let spin_until = Instant::now() + Duration::from_micros(rng.below(max_spin_us));
    while Instant::now() < spin_until {
        std::hint::spin_loop();
    }
    let running = matches!(child.try_wait(), Ok(None));
    assert!(running, "{what}: the child ended before the kill");
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the killed child");
    reports
}
