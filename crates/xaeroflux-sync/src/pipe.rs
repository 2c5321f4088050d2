//! An in-memory, bidirectional byte stream for tests and benchmarks.

use std::io::{Read, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

/// Chunks in flight in one direction, at most (each up to a write's size).
const PIPE_CHUNKS: usize = 64;

/// The reading half of one direction of a [`pipe`].
#[derive(Debug)]
pub struct PipeReader {
    rx: Receiver<Vec<u8>>,
    pending: Vec<u8>,
    at: usize,
}

/// The writing half of one direction of a [`pipe`]. Dropping it is the end
/// of the stream for the reader.
#[derive(Debug, Clone)]
pub struct PipeWriter {
    tx: SyncSender<Vec<u8>>,
}

/// Two connected ends: what one end writes, the other reads. Each end is a
/// (reader, writer) pair. Writes block when the other side has not read
/// for a while (bounded, like a socket buffer).
pub fn pipe() -> ((PipeReader, PipeWriter), (PipeReader, PipeWriter)) {
    let (a_tx, b_rx) = sync_channel(PIPE_CHUNKS);
    let (b_tx, a_rx) = sync_channel(PIPE_CHUNKS);
    let end = |rx, tx| {
        (
            PipeReader {
                rx,
                pending: Vec::new(),
                at: 0,
            },
            PipeWriter { tx },
        )
    };
    (end(a_rx, a_tx), end(b_rx, b_tx))
}

impl Read for PipeReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.pending.len() {
            match self.rx.recv() {
                Ok(chunk) => {
                    self.pending = chunk;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
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
        self.tx
            .send(buf.to_vec())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
