//! `xf node`: a node in the foreground, printing its sync events.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use xaeroflux::{Core, Filter, NetMode, SYNC_TOPIC, Since, Topic};

use crate::cli::NodeArgs;
use crate::progress::{self, CatchUp};
use std::sync::mpsc::RecvTimeoutError;

pub fn node(db: &Path, a: NodeArgs) -> Result<()> {
    // Before any thread starts, so every thread inherits the mask and the
    // signals wait for `sigwait` below instead of killing the process.
    let signals = stop_signals::block()?;
    let mut builder = Core::builder()
        .with_sync_backends(&a.backends)
        .with_sync_interval(Duration::from_secs(a.sync_interval.max(1)));
    if a.local_only {
        builder = builder.with_network(NetMode::LocalOnly { listen: a.listen });
    }
    let core = builder
        .open(db)
        .with_context(|| format!("starting a node on {}", db.display()))?;
    // Listen before joining, so no sync event is missed.
    let sync_topic = Topic::new(SYNC_TOPIC)?;
    let mut events = core.subscribe(Filter::topic(&sync_topic), Since::Now)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "node {}", core.node_ticket()?)?;
        out.flush()?;
    }
    for t in &a.topics {
        core.join(&Topic::new(t)?, &a.peers)?;
    }
    let bar = CatchUp::default();
    std::thread::scope(|scope| -> Result<()> {
        // The sync events are printed on a thread of their own; this one
        // sleeps until SIGINT or SIGTERM (no timer, no wake-up), then
        // closes the node, which ends the events' stream.
        let bar = &bar;
        let printer = scope.spawn(move || -> Result<()> {
            while let Some(ev) = events.recv() {
                let ev = ev?;
                bar.suspend(|| -> std::io::Result<()> {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&ev.payload)?;
                    out.write_all(b"\n")?;
                    out.flush()
                })?;
            }
            Ok(())
        });
        // On a terminal, a catch-up shows a progress bar (polled five
        // times a second, until the signal); elsewhere nothing of it runs.
        let signal = std::thread::scope(|inner| {
            let (stop_bar, bar_stopped) = std::sync::mpsc::channel::<()>();
            if progress::wanted() {
                let core = &core;
                inner.spawn(move || {
                    while let Err(RecvTimeoutError::Timeout) =
                        bar_stopped.recv_timeout(Duration::from_millis(200))
                    {
                        if let Ok(p) = core.pull_progress() {
                            bar.update(p);
                        }
                    }
                    bar.update(Default::default());
                });
            }
            let signal = stop_signals::wait(&signals);
            drop(stop_bar);
            signal
        })?;
        eprintln!("xf node: {signal}, closing");
        if let Ok(t) = core.sync_traffic() {
            eprintln!(
                "xf node: totals sessions={} failed={} events_in={} events_received={} bytes_in={} events_out={} bytes_out={}",
                t.sessions,
                t.sessions_failed,
                t.events_in,
                t.events_received,
                t.bytes_in,
                t.events_out,
                t.bytes_out
            );
        }
        let closed = core.close();
        let printed = printer
            .join()
            .map_err(|_| anyhow::anyhow!("the printing thread panicked"))?;
        closed?;
        printed
    })
}

/// SIGINT and SIGTERM, taken synchronously with `sigwait`.
#[cfg(unix)]
mod stop_signals {
    use anyhow::{Result, bail};

    /// Blocks SIGINT and SIGTERM in the calling thread (and so in every
    /// thread it starts from now on); returns the set to wait on.
    pub fn block() -> Result<libc::sigset_t> {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t; the signal numbers are valid.
        let rc = unsafe {
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGINT);
            libc::sigaddset(&mut set, libc::SIGTERM);
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
        };
        if rc != 0 {
            bail!("could not block SIGINT and SIGTERM (error {rc})");
        }
        Ok(set)
    }

    /// Waits for one of the signals in `set`; names it.
    pub fn wait(set: &libc::sigset_t) -> Result<&'static str> {
        let mut sig: libc::c_int = 0;
        // SAFETY: `set` is a valid, initialised sigset_t and `sig` writable.
        let rc = unsafe { libc::sigwait(set, &mut sig) };
        if rc != 0 {
            bail!("sigwait failed (error {rc})");
        }
        Ok(if sig == libc::SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        })
    }
}

/// Without POSIX signals the node runs until the process is stopped.
#[cfg(not(unix))]
mod stop_signals {
    use anyhow::Result;

    pub fn block() -> Result<()> {
        Ok(())
    }

    pub fn wait(_: &()) -> Result<&'static str> {
        loop {
            std::thread::park();
        }
    }
}
