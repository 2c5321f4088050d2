// Tests may unwrap, index and panic: a panic is a failed test.
#![allow(clippy::restriction)]
//! The footprint budget of a node with every backend on, for phones: the
//! thread count (at most 8 with the application's own thread, the same
//! whatever the number of CPUs), idle RSS with one topic joined (at most
//! 25 MiB), wake-ups of an idle node (at most 5 a second) and of a paused
//! one (at most 1 a second), counted from the process's context switches.
//!
//! Alone in its binary, with one test, so no other test's threads, memory
//! or wake-ups are counted. Linux only (it reads `/proc`); it takes about
//! 50 s, most of it waiting for the node to be idle.

use std::time::{Duration, Instant};

use xaeroflux::{Core, NetMode, Topic};
use xaeroflux_testkit::{context_switches, status_kib, thread_count, thread_names};

/// Tokio retires a blocking thread after 10 s without work; a node "at
/// rest" is one that has had that long.
const SETTLE: Duration = Duration::from_secs(11);
/// How long wake-ups are counted.
const WINDOW: Duration = Duration::from_secs(10);

fn cpus_allowed() -> Vec<usize> {
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    assert_eq!(unsafe { libc::sched_getaffinity(0, size, &mut set) }, 0);
    (0..libc::CPU_SETSIZE as usize)
        .filter(|&c| unsafe { libc::CPU_ISSET(c, &set) })
        .collect()
}

/// Runs the calling thread (and so every thread it starts) on `cpus`.
fn pin(cpus: &[usize]) {
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &c in cpus {
        unsafe { libc::CPU_SET(c, &mut set) };
    }
    let size = std::mem::size_of::<libc::cpu_set_t>();
    assert_eq!(unsafe { libc::sched_setaffinity(0, size, &set) }, 0);
}

/// A node with every backend, one topic joined, an event and a blob
/// written: what an app holds open.
fn open_node(dir: &std::path::Path) -> Core {
    let core = Core::builder()
        .with_sync_backends(&["iroh", "iroh-gossip", "iroh-blob"])
        .with_network(NetMode::local_only())
        .open(dir)
        .unwrap();
    let chat = Topic::new("chat").unwrap();
    core.join(&chat, &[] as &[&str]).unwrap();
    core.append(core.new_event_in(&chat, b"hello")).unwrap();
    let (_, blob) = core.append_blob(&chat, &vec![7u8; 1 << 20]).unwrap();
    assert_eq!(core.read_blob(&blob.hash).unwrap().unwrap().len(), 1 << 20);
    core
}

/// Wake-ups a second over [`WINDOW`], less the test thread's own sleep.
fn wakeups_per_second() -> f64 {
    let before = context_switches();
    let start = Instant::now();
    std::thread::sleep(WINDOW);
    let woke = context_switches().saturating_sub(before).saturating_sub(1);
    woke as f64 / start.elapsed().as_secs_f64()
}

#[test]
fn footprint_on_any_phone() {
    if std::fs::metadata("/proc/self/task").is_err() {
        eprintln!("skipped: no /proc to count threads and wake-ups from");
        return;
    }
    let base = thread_count();
    let all = cpus_allowed();

    // The same node on one CPU and on every CPU the machine gives: no
    // thread count may follow the number of CPUs.
    let mut counts = Vec::new();
    for cpus in [&all[..], &all[..1]] {
        pin(cpus);
        let dir = tempfile::tempdir().unwrap();
        let core = open_node(dir.path());
        std::thread::sleep(SETTLE);
        let used = thread_count() - base;
        eprintln!(
            "on {} CPU(s): {used} node threads {:?}",
            cpus.len(),
            thread_names()
        );
        counts.push(used);
        if cpus.len() == all.len() {
            // The last round stays open for the budget below.
            assert!(
                used < 8,
                "{used} node threads (+1 for the application): {:?}",
                thread_names()
            );
            let rss_kib = status_kib("VmRSS:");
            eprintln!("idle RSS: {:.1} MiB", rss_kib as f64 / 1024.0);
            assert!(rss_kib <= 25 * 1024, "idle RSS {rss_kib} KiB");

            let idle = wakeups_per_second();
            eprintln!("idle node: {idle:.2} wake-ups/s");
            assert!(idle <= 5.0, "an idle node woke {idle:.2} times a second");

            core.pause().unwrap();
            assert!(core.is_paused());
            let paused_threads = thread_count() - base;
            let paused = wakeups_per_second();
            eprintln!(
                "paused node: {paused:.2} wake-ups/s, {paused_threads} threads {:?}",
                thread_names()
            );
            assert!(
                paused <= 1.0,
                "a paused node woke {paused:.2} times a second"
            );
            assert!(
                paused_threads < used,
                "pausing stopped no thread: {:?}",
                thread_names()
            );
            core.resume().unwrap();
            assert!(!core.is_paused());
            assert!(core.node_ticket().is_ok());
        }
        core.close().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while thread_count() > base && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(thread_count(), base, "threads left: {:?}", thread_names());
    }
    if all.len() == 1 {
        eprintln!("one CPU only: the count cannot be compared across CPU counts here");
    } else {
        assert_eq!(
            counts[0],
            counts[1],
            "the thread count follows the number of CPUs: {counts:?} on {} and 1 CPUs",
            all.len()
        );
    }
}
