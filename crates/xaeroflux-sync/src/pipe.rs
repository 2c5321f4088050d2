//! An in-memory, bidirectional byte stream for tests and benchmarks.

use std::io::{Read, Write};

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded, never, select};

/// Chunks in flight in one direction, at most (each up to a write's size).
const PIPE_CHUNKS: usize = 64;

/// The reading half of one direction of a [`pipe`].
#[derive(Debug)]
pub struct PipeReader {
    rx: Receiver<Vec<u8>>,
    closed: Receiver<()>,
    pending: Vec<u8>,
    at: usize,
}

/// The writing half of one direction of a [`pipe`]. Dropping it is the end
/// of the stream for the reader.
#[derive(Debug, Clone)]
pub struct PipeWriter {
    tx: Sender<Vec<u8>>,
    closed: Receiver<()>,
}

/// Closes both directions of a [`closable_pipe`] at once, as shutting a
/// socket down does: reads at both ends get what was written before, then
/// the end of the stream; writes fail.
#[derive(Debug)]
pub struct PipeCloser {
    close: std::sync::Mutex<Option<Sender<()>>>,
}

impl PipeCloser {
    /// Closes the pipe (again: nothing).
    pub fn close(&self) {
        self.close.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

/// One end of a pipe: what it reads, and how it writes.
pub type PipeEnd = (PipeReader, PipeWriter);

/// Two connected ends: what one end writes, the other reads. Each end is a
/// (reader, writer) pair. Writes block when the other side has not read
/// for a while (bounded, like a socket buffer).
pub fn pipe() -> (PipeEnd, PipeEnd) {
    ends(never())
}

/// A [`pipe`] with a [`PipeCloser`] that ends it from outside (what a
/// transport's connection needs, so that a reader blocked on it returns).
pub fn closable_pipe() -> (PipeEnd, PipeEnd, PipeCloser) {
    let (close, closed) = bounded::<()>(0);
    let (a, b) = ends(closed);
    (
        a,
        b,
        PipeCloser {
            close: std::sync::Mutex::new(Some(close)),
        },
    )
}

fn ends(closed: Receiver<()>) -> (PipeEnd, PipeEnd) {
    let (a_tx, b_rx) = bounded(PIPE_CHUNKS);
    let (b_tx, a_rx) = bounded(PIPE_CHUNKS);
    let end = |rx, tx, closed: &Receiver<()>| {
        (
            PipeReader {
                rx,
                closed: closed.clone(),
                pending: Vec::new(),
                at: 0,
            },
            PipeWriter {
                tx,
                closed: closed.clone(),
            },
        )
    };
    (end(a_rx, a_tx, &closed), end(b_rx, b_tx, &closed))
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.pending.len() {
            // What was written before a close is still read, as from a
            // socket shut down after sending.
            let chunk = match self.rx.try_recv() {
                Ok(c) => Some(c),
                Err(TryRecvError::Disconnected) => None,
                Err(TryRecvError::Empty) => select! {
                    recv(self.rx) -> c => c.ok(),
                    recv(self.closed) -> _ => self.rx.try_recv().ok(),
                },
            };
            match chunk {
                Some(chunk) => {
                    self.pending = chunk;
                    self.at = 0;
                }
                None => return Ok(0),
            }
        }
        let left = self.pending.get(self.at..).unwrap_or_default();
        let n = buf.len().min(left.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), left.get(..n)) {
            to.copy_from_slice(from);
        }
        self.at += n;
        Ok(n)
    }
}

impl Write for PipeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let broken = || std::io::Error::from(std::io::ErrorKind::BrokenPipe);
        select! {
            send(self.tx, buf.to_vec()) -> r => r.map_err(|_| broken())?,
            recv(self.closed) -> _ => return Err(broken()),
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
