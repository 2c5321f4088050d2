//! Runs a [`Session`] over a byte stream: a reader thread hands what
//! arrives to the session, the calling thread writes what it answers and
//! starts the store writes it asks for. Those writes run while the session
//! goes on (the next pages arrive and are checked while one is being made
//! durable); their results come back on a channel of their own.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded, never, select, unbounded};
use xaeroflux_types::LogId;

use crate::session::{Outcome, Session, SessionConfig, SyncStore};
use crate::{StoreFault, SyncError};

/// Bytes read at a time.
const READ_CHUNK: usize = 256 * 1024;
/// Chunks the reader thread may queue ahead of the session.
const READ_AHEAD: usize = 64;
/// How long a live session with nothing under way waits before it looks
/// again (no timeout applies then; this only bounds each wait).
const LIVE_IDLE_WAIT: Duration = Duration::from_secs(3600);

/// How a session is driven: its deadlines, and who may admit it once the
/// peer has said who it is.
pub struct RunOptions<'a> {
    /// How long the session may go without any news (bytes from the peer
    /// or a store write finishing).
    pub timeout: Duration,
    /// How long the peer has, from the start, to complete its `HELLO`. A
    /// peer that connects and stays silent (or trickles bytes) is dropped
    /// after this, whatever `timeout` is.
    pub hello_timeout: Duration,
    /// Called once, when the peer's `HELLO` has arrived; an `Err` ends the
    /// session with `ERROR` busy and that reason (a server's session caps).
    pub admit: Option<&'a mut dyn FnMut() -> Result<(), String>>,
    /// Called with what has moved so far, whenever more has (a progress
    /// display: `events_in` of `events_wanted`, `bytes_in`).
    pub progress: Option<&'a mut dyn FnMut(&Outcome)>,
    /// Live mode: the logs of this store that have a new checkpoint (an
    /// append, or a pull from another peer), as they happen. With it the
    /// session offers live mode ([`SessionConfig::live`]); once both sides
    /// are live it announces each to the peer, and it ends when every
    /// sender of this channel is gone (or the peer closes). A peer that
    /// does not offer live mode ends the session after the catch-up as
    /// usual.
    pub live: Option<Receiver<LogId>>,
}

impl RunOptions<'_> {
    /// `timeout` for both deadlines and no admission check.
    pub fn new(timeout: Duration) -> Self {
        RunOptions {
            timeout,
            hello_timeout: timeout,
            admit: None,
            progress: None,
            live: None,
        }
    }
}

/// Runs one session to its end over `reader` and `writer` (the two halves
/// of one connection). `timeout` bounds how long the session may go
/// without any news (bytes from the peer or a store write finishing).
/// Returns what moved; on failure the peer has been sent an `ERROR` with
/// the reason (when the stream still worked), and everything verified
/// before the failure stays committed.
pub fn run<S, R, W>(
    store: &S,
    config: SessionConfig,
    reader: R,
    writer: W,
    timeout: Duration,
) -> Result<Outcome, SyncError>
where
    S: SyncStore + ?Sized,
    R: Read + Send + 'static,
    W: Write,
{
    run_with(store, config, reader, writer, RunOptions::new(timeout))
}

/// [`run`] with a handshake deadline and an admission check
/// ([`RunOptions`]).
pub fn run_with<S, R, W>(
    store: &S,
    config: SessionConfig,
    reader: R,
    mut writer: W,
    mut opts: RunOptions<'_>,
) -> Result<Outcome, SyncError>
where
    S: SyncStore + ?Sized,
    R: Read + Send + 'static,
    W: Write,
{
    let timeout = opts.timeout;
    let hello_by = Instant::now() + opts.hello_timeout;
    let live = opts.live.take();
    let mut config = config;
    config.live |= live.is_some();
    // Until its senders are gone; then the session ends once idle.
    let mut live_open = live.is_some();
    let no_news = never::<LogId>();
    // Once the peer has closed, a live session may still wait for its last
    // store writes; the stream is not read again.
    let closed = never::<std::io::Result<Vec<u8>>>();
    let mut peer_gone = false;
    let mut session = Session::new(store, config)?;
    let bytes = spawn_reader(reader)?;
    let (done_tx, done_rx) = unbounded::<(u64, Result<u64, StoreFault>)>();
    let mut admitted = false;
    let mut shown = (0u64, 0u64, 0u64);
    let result = loop {
        if let Some(progress) = opts.progress.as_mut() {
            let o = session.outcome();
            let now = (o.events_in, o.events_wanted, o.bytes_in);
            if now != shown {
                shown = now;
                progress(o);
            }
        }
        if !admitted && session.peer_said_hello() {
            admitted = true;
            if let Some(admit) = opts.admit.as_mut()
                && let Err(reason) = admit()
            {
                let e = session.fail(SyncError::Busy(reason));
                let _ = send(&mut session, &mut writer);
                break Err(e);
            }
        }
        if let Err(e) = send(&mut session, &mut writer) {
            break Err(e);
        }
        start_actions(store, &mut session, &done_tx);
        // The output is written: go on with the messages left unread.
        if session.input_paused() && !session.is_finished() {
            if let Err(e) = session.receive(&[]) {
                let _ = send(&mut session, &mut writer);
                break Err(e);
            }
            continue;
        }
        if session.is_live() && !live_open && session.live_idle() {
            session.end_live();
        }
        if session.is_finished() {
            break match session.outcome().error.clone() {
                None => Ok(()),
                Some(e) => Err(SyncError::Protocol(e)),
            };
        }
        // Until the peer has said HELLO, the handshake deadline bounds the
        // wait too.
        let (wait, late) = if session.live_idle() {
            (LIVE_IDLE_WAIT, SyncError::Timeout(timeout))
        } else if admitted {
            (timeout, SyncError::Timeout(timeout))
        } else {
            let left = hello_by.saturating_duration_since(Instant::now());
            if left < timeout {
                (left, SyncError::NoHello(opts.hello_timeout))
            } else {
                (timeout, SyncError::Timeout(timeout))
            }
        };
        let step = select! {
            recv(if peer_gone { &closed } else { &bytes }) -> m => match m {
                Ok(Ok(b)) if !b.is_empty() => session.receive(&b),
                Ok(Err(e)) => Err(session.fail(SyncError::Io(e))),
                // The end of the stream (or of the reader thread).
                Ok(Ok(_)) | Err(_) => {
                    peer_gone = true;
                    session.peer_closed()
                }
            },
            recv(done_rx) -> d => match d {
                Ok((token, r)) => session.complete(token, r),
                Err(_) => Ok(()),
            },
            recv(if live_open { live.as_ref().unwrap_or(&no_news) } else { &no_news }) -> m => match m {
                Ok(log) => session.announce(log),
                Err(_) => {
                    live_open = false;
                    Ok(())
                }
            },
            default(wait) => {
                if session.live_idle() {
                    Ok(())
                } else {
                    Err(session.fail(late))
                }
            }
        };
        match step {
            Ok(()) => {}
            Err(e) => {
                // Tell the peer why, if the stream still works.
                let _ = send(&mut session, &mut writer);
                break Err(e);
            }
        }
    };
    result.map(|()| session.outcome().clone())
}

/// Writes what the session has queued for the peer.
fn send<S: SyncStore + ?Sized, W: Write>(
    session: &mut Session<'_, S>,
    writer: &mut W,
) -> Result<(), SyncError> {
    let out = session.take_output();
    if out.is_empty() {
        return Ok(());
    }
    writer
        .write_all(&out)
        .and_then(|()| writer.flush())
        .map_err(SyncError::Io)
}

/// Starts the store writes the session asked for; each result comes back
/// on `done`.
fn start_actions<S: SyncStore + ?Sized>(
    store: &S,
    session: &mut Session<'_, S>,
    done: &Sender<(u64, Result<u64, StoreFault>)>,
) {
    for action in session.take_actions() {
        let tx = done.clone();
        let token = action.token;
        store.start(
            action.op,
            Box::new(move |r| {
                // The session may have ended meanwhile.
                let _ = tx.send((token, r));
            }),
        );
    }
}

/// A thread that reads the stream and hands each chunk over; an empty
/// chunk is the end of the stream. It ends when the stream does (the peer
/// closes it, or the caller shuts the socket down), or when the session
/// has gone.
fn spawn_reader<R: Read + Send + 'static>(
    mut reader: R,
) -> Result<Receiver<std::io::Result<Vec<u8>>>, SyncError> {
    let (tx, rx) = bounded(READ_AHEAD);
    std::thread::Builder::new()
        .name("xsp-read".into())
        .spawn(move || {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.send(Ok(Vec::new()));
                        return;
                    }
                    Ok(n) => {
                        let chunk = buf.get(..n).unwrap_or_default().to_vec();
                        if tx.send(Ok(chunk)).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                }
            }
        })
        .map_err(SyncError::Io)?;
    Ok(rx)
}

/// Runs one session over a TCP connection, then shuts it down.
pub fn run_tcp<S: SyncStore + ?Sized>(
    store: &S,
    config: SessionConfig,
    stream: TcpStream,
    timeout: Duration,
) -> Result<Outcome, SyncError> {
    run_tcp_with(store, config, stream, RunOptions::new(timeout))
}

/// [`run_tcp`] with a handshake deadline and an admission check.
pub fn run_tcp_with<S: SyncStore + ?Sized>(
    store: &S,
    config: SessionConfig,
    stream: TcpStream,
    opts: RunOptions<'_>,
) -> Result<Outcome, SyncError> {
    stream.set_nodelay(true)?;
    // A peer that stops reading must not hold this side in a write for
    // ever: a write that makes no progress for the timeout fails.
    stream.set_write_timeout(Some(opts.timeout.max(Duration::from_millis(1))))?;
    let reader = stream.try_clone()?;
    let shutdown = stream.try_clone()?;
    let r = run_with(store, config, reader, &stream, opts);
    // Ends the reader thread whatever happened.
    let _ = shutdown.shutdown(std::net::Shutdown::Both);
    r
}
