// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Catch-up through a relay, private against plain, in one run: the
//! author's store holds one log of N events of 100 bytes in a plain topic
//! and one in a private topic (sealed); a relay that holds no key pulls
//! each from the author, then a fresh member store pulls each from the
//! relay, over TCP on loopback, every page verified and committed durably.
//! Three rounds, alternating plain and private, each on fresh stores.
//!
//! `cargo bench -p xaeroflux --bench relay` (XF_BENCH_EVENTS=N, default
//! 1,000,000).

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use xaeroflux::{Core, Outcome, Topic};
use xaeroflux_testkit::{bench_payload, env_u64};

const T: Duration = Duration::from_secs(300);
const BATCH: u64 = 1000;

fn open(dir: &Path) -> Core {
    Core::builder().open(dir).unwrap()
}

/// One session, `from` serving and `to` pulling `topic`; the seconds it
/// took and what moved into `to`.
fn pull(from: &Core, to: &Core, topic: &Topic) -> (f64, Outcome) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let topics = std::slice::from_ref(topic);
    let start = Instant::now();
    let out = std::thread::scope(|s| {
        let served = s.spawn(|| {
            let (c, _) = l.accept().unwrap();
            c.set_nodelay(true).unwrap();
            from.sync_over_tcp(c, topics, T).unwrap()
        });
        let c = TcpStream::connect(addr).unwrap();
        c.set_nodelay(true).unwrap();
        let out = to.sync_over_tcp(c, topics, T).unwrap();
        served.join().unwrap();
        out
    });
    (start.elapsed().as_secs_f64(), out)
}

fn fill(core: &Core, topic: &Topic, n: u64) {
    let mut i = 0;
    while i < n {
        let k = BATCH.min(n - i);
        let evs = (i..i + k)
            .map(|j| core.new_event_in(topic, bench_payload(j)))
            .collect();
        core.append_batch(evs).unwrap();
        i += k;
    }
}

fn main() {
    let n = env_u64("XF_BENCH_EVENTS", 1_000_000);
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let author = open(&base.path().join("author"));
    let plain = Topic::new("plain").unwrap();
    let created = author.create_private_topic(Some("bench")).unwrap();
    let private = created.topic.clone();
    fill(&author, &plain, n);
    fill(&author, &private, n);
    println!("catch-up through a blind relay: {n} events of 100 bytes, TCP on loopback, durable");
    println!(
        "{:<6} {:<8} {:>16} {:>16} {:>12} {:>12}",
        "round", "topic", "author->relay/s", "relay->member/s", "MB/s", "B/event"
    );
    let mut rates: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
    for round in 0..3 {
        for (k, topic) in [&plain, &private].into_iter().enumerate() {
            let dir = tempfile::tempdir_in(base.path()).unwrap();
            let relay = open(&dir.path().join("relay"));
            let member = open(&dir.path().join("member"));
            if k == 1 {
                // The relay knows the name (as a peer asking for the topic
                // does) and no key; the member is added and holds one.
                relay.private_topic(&created.name).unwrap();
                author
                    .add_member(&private, &member.member_key().unwrap())
                    .unwrap();
                member.private_topic(&created.name).unwrap();
            }
            let (t_in, _) = pull(&author, &relay, topic);
            let (t_out, out) = pull(&relay, &member, topic);
            assert!(out.events_in >= n, "{} events moved", out.events_in);
            let rate_in = out.events_in as f64 / t_in;
            let rate_out = out.events_in as f64 / t_out;
            rates[k].push(rate_out);
            println!(
                "{:<6} {:<8} {:>16.0} {:>16.0} {:>12.1} {:>12.1}",
                round,
                if k == 0 { "plain" } else { "private" },
                rate_in,
                rate_out,
                out.bytes_in as f64 / t_out / 1e6,
                out.bytes_in as f64 / out.events_in as f64
            );
            if k == 1 {
                // The member reads what the relay could not.
                let first = member
                    .read_topic(&private)
                    .map(|r| r.unwrap())
                    .find(|r| r.event.kind() == xaeroflux::EventKind::Application)
                    .unwrap();
                assert_eq!(first.plaintext(), Some(&bench_payload(0)[..]));
            }
            relay.close().unwrap();
            member.close().unwrap();
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (p, s) = (median(&mut rates[0].clone()), median(&mut rates[1].clone()));
    println!(
        "median relay->member: plain {p:.0}/s, private {s:.0}/s, ratio {:.2}x (target >= 0.9x)",
        s / p
    );
    author.close().unwrap();
}
