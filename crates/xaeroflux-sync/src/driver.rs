//! Runs a [`Session`] over a byte stream: a reader thread hands what
//! arrives to the session; the calling thread writes what it answers.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::Duration;

use crate::SyncError;
use crate::session::{Outcome, Session, SessionConfig, SyncStore};

/// Bytes read at a time.
const READ_CHUNK: usize = 256 * 1024;

/// Runs one session to its end over `reader` and `writer` (the two halves
/// of one connection). `timeout` bounds how long the peer may stay silent.
/// Returns what moved; on failure the peer has been sent an `ERROR` with
/// the reason (when the stream still worked), and everything verified
/// before the failure stays committed.
pub fn run<S, R, W>(
    store: &S,
    config: SessionConfig,
    reader: R,
    mut writer: W,
    timeout: Duration,
) -> Result<Outcome, SyncError>
where
    S: SyncStore + ?Sized,
    R: Read + Send + 'static,
    W: Write,
{
    let mut session = Session::new(store, config)?;
    let (tx, rx) = sync_channel::<std::io::Result<Vec<u8>>>(64);
    // The reader thread ends when the stream does (the peer closes it, or
    // the caller shuts the socket down); it owns nothing of the session.
    let spawned = std::thread::Builder::new()
        .name("xsp-read".into())
        .spawn(move || {
            let mut reader = reader;
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match reader.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.send(Ok(Vec::new()));
                        return;
                    }
                    Ok(n) => {
                        if tx.send(Ok(buf[..n].to_vec())).is_err() {
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
        });
    if let Err(e) = spawned {
        return Err(SyncError::Io(e));
    }
    let result = loop {
        let out = session.take_output();
        if !out.is_empty()
            && let Err(e) = writer.write_all(&out).and_then(|()| writer.flush())
        {
            break Err(SyncError::Io(e));
        }
        if session.is_finished() {
            break match session.outcome().error.clone() {
                None => Ok(()),
                Some(_) => Err(SyncError::Protocol("session failed".into())),
            };
        }
        match rx.recv_timeout(timeout) {
            Ok(Ok(bytes)) if bytes.is_empty() => break session.peer_closed(),
            Ok(Ok(bytes)) => {
                if let Err(e) = session.receive(&bytes) {
                    let out = session.take_output();
                    let _ = writer.write_all(&out).and_then(|()| writer.flush());
                    break Err(e);
                }
            }
            Ok(Err(e)) => break Err(session.fail(SyncError::Io(e))),
            Err(RecvTimeoutError::Timeout) => {
                let e = session.fail(SyncError::Timeout(timeout));
                let out = session.take_output();
                let _ = writer.write_all(&out).and_then(|()| writer.flush());
                break Err(e);
            }
            Err(RecvTimeoutError::Disconnected) => break session.peer_closed(),
        }
    };
    result.map(|()| session.outcome().clone())
}

/// Runs one session over a TCP connection, then shuts it down.
pub fn run_tcp<S: SyncStore + ?Sized>(
    store: &S,
    config: SessionConfig,
    stream: TcpStream,
    timeout: Duration,
) -> Result<Outcome, SyncError> {
    stream.set_nodelay(true)?;
    let reader = stream.try_clone()?;
    let shutdown = stream.try_clone()?;
    let r = run(store, config, reader, &stream, timeout);
    // Ends the reader thread whatever happened.
    let _ = shutdown.shutdown(std::net::Shutdown::Both);
    r
}
