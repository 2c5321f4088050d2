// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! Catch-up of one log of N events of 100 bytes (default 1,000,000) between
//! two nodes over iroh on loopback, every page verified and committed
//! durably, beside a plain copy of the same bytes over one iroh stream
//! between two endpoints set up like the nodes' (one current-thread
//! runtime each, iroh's default QUIC settings), in the same run. Then the idle
//! resident memory and thread count of a node, measured in a child
//! process that runs only that node.
//!
//! `cargo bench -p xaeroflux-net --bench catchup` (XF_BENCH_EVENTS=N,
//! XF_BENCH_ROUNDS=R, default 3).

use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::endpoint::Connection;
use iroh::protocol::{AcceptError, ProtocolHandler, Router};
use iroh::{Endpoint, EndpointAddr};
use xaeroflux_net::{Backends, Net, NetConfig, NetMode};
use xaeroflux_store::{NewEvent, Store, StoreOptions, Topic};
use xaeroflux_testkit::{bench_payload, env_u64 as env, fill_with, median};

const COPY_ALPN: &[u8] = b"xaeroflux/bench-copy/1";

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// An endpoint set up as the nodes' are (local-only, 127.0.0.1).
async fn endpoint() -> Endpoint {
    xaeroflux_net::endpoint_builder(&NetMode::local_only())
        .unwrap()
        .bind()
        .await
        .unwrap()
}

/// Reads one stream to its end and reports how many bytes came.
#[derive(Debug, Clone)]
struct Sink(std::sync::mpsc::SyncSender<u64>);

impl ProtocolHandler for Sink {
    async fn accept(&self, conn: Connection) -> Result<(), AcceptError> {
        let (mut send, mut recv) = conn.accept_bi().await?;
        let mut got = 0u64;
        while let Ok(Some(chunk)) = recv.read_chunk(1 << 20).await {
            got += chunk.len() as u64;
        }
        // Tell the sender it all arrived, then wait for it to hang up.
        let _ = send.write_all(b"k").await;
        let _ = send.finish();
        let _ = self.0.send(got);
        conn.closed().await;
        Ok(())
    }
}

/// Seconds to copy `bytes` over one iroh stream on loopback, in 64 KiB
/// writes, until the receiver has read them all.
fn iroh_plain_copy(bytes: u64) -> f64 {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel::<EndpointAddr>();
    let (done_tx, done_rx) = std::sync::mpsc::sync_channel(1);
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let receiver = std::thread::spawn(move || {
        rt().block_on(async move {
            let ep = endpoint().await;
            let mut addr = EndpointAddr::new(ep.id());
            for s in ep.bound_sockets() {
                addr = addr.with_ip_addr(s);
            }
            let router = Router::builder(ep).accept(COPY_ALPN, Sink(done_tx)).spawn();
            addr_tx.send(addr).unwrap();
            let _ = stop_rx.await;
            let _ = router.shutdown().await;
        })
    });
    let addr = addr_rx.recv().unwrap();
    let secs = rt().block_on(async move {
        let ep = endpoint().await;
        let conn = ep.connect(addr, COPY_ALPN).await.unwrap();
        let (mut send, mut recv) = conn.open_bi().await.unwrap();
        let chunk = vec![7u8; 64 * 1024];
        let start = Instant::now();
        let mut sent = 0u64;
        while sent < bytes {
            let n = (bytes - sent).min(chunk.len() as u64) as usize;
            send.write_all(&chunk[..n]).await.unwrap();
            sent += n as u64;
        }
        send.finish().unwrap();
        let mut ack = [0u8; 1];
        recv.read_exact(&mut ack).await.unwrap();
        let secs = start.elapsed().as_secs_f64();
        conn.close(0u32.into(), b"done");
        ep.close().await;
        secs
    });
    assert_eq!(done_rx.recv().unwrap(), bytes);
    let _ = stop_tx.send(());
    receiver.join().unwrap();
    secs
}

fn node(dir: &std::path::Path, backends: &[&str]) -> (Arc<Store>, Net) {
    let store = Arc::new(Store::open(dir, StoreOptions::default()).unwrap());
    let config = NetConfig::new(Backends::parse(backends).unwrap())
        .with_mode(NetMode::local_only())
        .with_sync_interval(Duration::from_secs(3600));
    let net = Net::start(store.clone(), config).unwrap();
    (store, net)
}

/// The child: one node with every backend, joined to a topic, at rest.
fn idle_node() {
    let dir = tempfile::tempdir().unwrap();
    let (store, net) = node(dir.path(), &["iroh", "iroh-gossip", "iroh-blob"]);
    let topic = Topic::new("bench").unwrap();
    store
        .append(NewEvent::application(&topic, b"hello".to_vec()))
        .unwrap();
    net.join(&topic, &[]).unwrap();
    // Let start-up work (and tokio's blocking threads, 10 s) settle.
    std::thread::sleep(Duration::from_secs(12));
    println!(
        "idle {} {} {}",
        xaeroflux_testkit::status_kib("VmRSS:"),
        xaeroflux_testkit::status_kib("VmHWM:"),
        xaeroflux_testkit::os_threads().unwrap_or(0)
    );
    net.shutdown();
}

fn main() {
    if std::env::var_os("XF_BENCH_IDLE_NODE").is_some() {
        idle_node();
        return;
    }
    let n = env("XF_BENCH_EVENTS", 1_000_000);
    let rounds = env("XF_BENCH_ROUNDS", 3);
    let dir = tempfile::tempdir().unwrap();
    let (src, net_a) = node(dir.path(), &["iroh"]);
    let topic = Topic::new("bench").unwrap();
    fill_with(&src, &topic, n, 1000, bench_payload);
    net_a.join(&topic, &[]).unwrap();
    println!(
        "catch-up of one log of {n} events of 100 bytes between two nodes over iroh on loopback (durable)"
    );
    println!(
        "{:<6} {:>12} {:>13} {:>16} {:>16} {:>8}",
        "round", "events/s", "wire B/event", "plain copy MB/s", "plain copy ev/s", "ratio"
    );
    let mut rates = Vec::new();
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let d = tempfile::tempdir().unwrap();
        let (dst, net_b) = node(d.path(), &["iroh"]);
        net_b.join(&topic, &[]).unwrap();
        let start = Instant::now();
        let out = net_b.sync_with(&net_a.peer()).unwrap();
        let secs = start.elapsed().as_secs_f64();
        assert_eq!(out.events_in, n);
        let wire = out.bytes_in + out.bytes_out;
        let copy = iroh_plain_copy(wire);
        let rate = n as f64 / secs;
        let ratio = copy / secs;
        println!(
            "{:<6} {:>12.0} {:>13.1} {:>16.1} {:>16.0} {:>7.3}x",
            round,
            rate,
            wire as f64 / n as f64,
            wire as f64 / copy / 1e6,
            n as f64 / copy,
            ratio
        );
        rates.push(rate);
        ratios.push(ratio);
        net_b.shutdown();
        drop(dst);
    }
    println!(
        "median: {:.0} events/s, {:.3}x the plain copy (ratio: plain copy time / catch-up time, same bytes)",
        median(rates),
        median(ratios)
    );
    net_a.shutdown();
    drop(src);

    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .env("XF_BENCH_IDLE_NODE", "1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    match text.lines().find_map(|l| l.strip_prefix("idle ")) {
        Some(v) => {
            let f: Vec<&str> = v.split(' ').collect();
            println!(
                "idle node (iroh, iroh-gossip, iroh-blob; one topic joined), a process of its own: RSS {} KiB (peak {} KiB), {} OS threads (1 of them the process's main thread)",
                f[0], f[1], f[2]
            );
        }
        None => println!(
            "idle node measurement failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}
