// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Catch-up of one log of N events of 100 bytes from an empty store, over
//! the in-memory pipe and over TCP on loopback, every page verified and
//! committed durably; beside a plain copy of the same number of bytes over
//! the same transport in the same run.
//!
//! `cargo bench -p xaeroflux --bench catchup` (XF_BENCH_EVENTS=N,
//! default 1,000,000).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use xaeroflux::store::{Store, StoreOptions};
use xaeroflux::sync::{Outcome, SessionConfig, driver, pipe};
use xaeroflux_testkit::{bench_source, env_u64};

const T: Duration = Duration::from_secs(120);

/// Seconds to copy `bytes` from one end to the other in 64 KiB writes.
fn plain_copy<R: Read + Send + 'static, W: Write>(mut r: R, mut w: W, bytes: u64) -> f64 {
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 256 * 1024];
        let mut got = 0u64;
        while got < bytes {
            match r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n as u64,
            }
        }
        got
    });
    let chunk = vec![7u8; 64 * 1024];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < bytes {
        let n = (bytes - sent).min(chunk.len() as u64) as usize;
        w.write_all(&chunk[..n]).unwrap();
        sent += n as u64;
    }
    w.flush().unwrap();
    let got = reader.join().unwrap();
    assert_eq!(got, bytes);
    start.elapsed().as_secs_f64()
}

fn tcp_pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    c.set_nodelay(true).unwrap();
    s.set_nodelay(true).unwrap();
    (c, s)
}

fn catch_up(src: &Store, over_tcp: bool) -> (Outcome, f64) {
    let dir = tempfile::tempdir().unwrap();
    let dst = Store::open(dir.path(), StoreOptions::default()).unwrap();
    let start = Instant::now();
    let out = std::thread::scope(|s| {
        if over_tcp {
            let (c, srv) = tcp_pair();
            let t = s.spawn(move || driver::run_tcp(src, SessionConfig::default(), srv, T));
            let out = driver::run_tcp(&dst, SessionConfig::default(), c, T).unwrap();
            t.join().unwrap().unwrap();
            out
        } else {
            let ((ar, aw), (br, bw)) = pipe();
            let t = s.spawn(move || driver::run(src, SessionConfig::default(), ar, aw, T));
            let out = driver::run(&dst, SessionConfig::default(), br, bw, T).unwrap();
            t.join().unwrap().unwrap();
            out
        }
    });
    let secs = start.elapsed().as_secs_f64();
    (out, secs)
}

fn main() {
    let n = env_u64("XF_BENCH_EVENTS", 1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = bench_source(dir.path(), n);
    println!("catch-up of one log of {n} events of 100 bytes into an empty store (durable)");
    println!(
        "{:<10} {:>14} {:>14} {:>16} {:>10}",
        "transport", "events/s", "wire B/event", "plain copy MB/s", "ratio"
    );
    for over_tcp in [false, true] {
        let (out, secs) = catch_up(&src, over_tcp);
        assert_eq!(out.events_in, n);
        let wire = out.bytes_in + out.bytes_out;
        let copy = if over_tcp {
            let (c, s) = tcp_pair();
            plain_copy(s, c, wire)
        } else {
            let ((ar, _aw), (_br, bw)) = pipe();
            plain_copy(ar, bw, wire)
        };
        println!(
            "{:<10} {:>14.0} {:>14.1} {:>16.1} {:>9.3}x",
            if over_tcp { "tcp" } else { "pipe" },
            n as f64 / secs,
            wire as f64 / n as f64,
            wire as f64 / copy / 1e6,
            copy / secs
        );
    }
    println!("ratio: plain copy time / catch-up time, for the same bytes on the same transport");
}
