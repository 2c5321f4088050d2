//! `xf serve`, `xf sync` (XSP over TCP) and `xf forks`.

use crate::progress::Bar;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use xaeroflux::sync::serve::{ServeEvent, ServeLimits, TcpServer};
use xaeroflux::{Core, Error, NoteVerifier, Outcome, Topic};

use crate::output::{ForkOut, json_line};
use crate::{open_ro, open_rw};

/// One line for a session's outcome.
fn describe(r: &Result<Outcome, Error>) -> String {
    match r {
        Ok(o) => format!(
            "ok: pulled {} events in {} logs ({} pages), served {} events ({} pages), {} bytes in, {} bytes out, {} topics{}",
            o.events_in,
            o.logs_in,
            o.pages_in,
            o.events_out,
            o.pages_out,
            o.bytes_in,
            o.bytes_out,
            o.topics,
            if o.forks.is_empty() {
                String::new()
            } else {
                format!(", {} forked logs refused", o.forks.len())
            }
        ),
        Err(e) => format!("failed: {}", e.report()),
    }
}

/// Answers sessions until interrupted, within the server's default
/// [`ServeLimits`]: a connection has 5 s to say HELLO, at most 64 wait for
/// it (8 per address, the oldest making room), and at most 32 sessions run
/// (8 per address); this thread prints how each connection ended.
pub fn serve(db: &Path, tcp: &str, out: &mut impl Write) -> Result<()> {
    let core = open_rw(db)?;
    let listener = TcpListener::bind(tcp).with_context(|| format!("listening on {tcp}"))?;
    let server = TcpServer::new(listener, ServeLimits::default())?;
    writeln!(out, "serving {} on {}", db.display(), server.local_addr())?;
    out.flush()?;
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::scope(|s| -> Result<()> {
        let (core, server) = (&core, &server);
        s.spawn(move || {
            let report = move |e: ServeEvent| {
                let line = match e {
                    ServeEvent::Session { peer, result } => {
                        format!("session {peer}: {}", describe(&result.map_err(Error::from)))
                    }
                    ServeEvent::Dropped { peer } => format!(
                        "session {peer}: dropped: no HELLO yet, and newer connections needed the room"
                    ),
                    ServeEvent::Refused { peer, reason } => {
                        format!("session {peer}: refused: {reason}")
                    }
                    ServeEvent::AcceptFailed(e) => format!("accept failed: {e}"),
                    other => format!("{other:?}"),
                };
                let _ = tx.send(line);
            };
            core.serve_tcp(server, &report);
        });
        for line in rx {
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        Ok(())
    })
}

/// One session with the peer at `tcp`.
pub fn sync(
    db: &Path,
    tcp: &str,
    topics: &[String],
    timeout: u64,
    out: &mut impl Write,
) -> Result<()> {
    let core = open_rw(db)?;
    let topics = topics
        .iter()
        .map(|t| Topic::new(t))
        .collect::<Result<Vec<_>, _>>()?;
    let conn = TcpStream::connect(tcp).with_context(|| format!("connecting to {tcp}"))?;
    let bar = Bar::events("sync");
    let r = core.sync_over_tcp_with_progress(
        conn,
        &topics,
        Duration::from_secs(timeout.max(1)),
        &mut |o| bar.session(o),
    );
    bar.clear();
    writeln!(out, "{}", describe(&r))?;
    out.flush()?;
    core.close()?;
    if let Err(e) = r {
        bail!("sync with {tcp} failed: {}", e.report());
    }
    Ok(())
}

pub fn forks(db: &Path, json: bool, out: &mut impl Write) -> Result<()> {
    let core: Core = open_ro(db)?;
    for f in core.forks()? {
        let proven = f.verify().unwrap_or(false);
        let verifier = NoteVerifier::new(&f.log.origin(), &f.log.author)?;
        let size_of = |note: &str| {
            verifier
                .verify_checkpoint(note)
                .map(|c| c.size)
                .unwrap_or_default()
        };
        let (ours, theirs) = (size_of(&f.ours), size_of(&f.theirs));
        if json {
            json_line(
                out,
                &ForkOut {
                    log: f.log.to_string(),
                    our_size: ours,
                    their_size: theirs,
                    at: f.at,
                    proven,
                    ours: f.ours,
                    theirs: f.theirs,
                },
            )?;
        } else {
            writeln!(
                out,
                "{} ours at {ours}, theirs at {theirs}: {}",
                f.log,
                if proven {
                    "proven fork"
                } else {
                    "two heads, not proven"
                }
            )?;
        }
    }
    Ok(())
}
