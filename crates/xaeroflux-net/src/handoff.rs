//! Appends handed to a running node by another process.
//!
//! A node holds its store's lock, so `xf append` on the same directory
//! cannot open the store. Instead it connects to the Unix socket
//! `node.sock` in the store directory and hands the events over; the node
//! appends them to its own logs (so they are announced to its peers) and
//! answers with the receipts.
//!
//! Protocol, version 1 (written up in `docs/net.md`). Request: magic
//! `XFHO`, version byte 1, event count (u32 LE, 1 to [`MAX_EVENTS`]), then
//! per event: kind byte, flags byte (bit 0: payload encrypted), topic name
//! length (u8) and name, payload length
//! (u32 LE, at most [`MAX_PAYLOAD`], and [`MAX_REQUEST_PAYLOAD`] for all
//! events of a request together) and payload. Reply: status byte; 0
//! then the count (u32 LE) and per event log id (64 bytes), seq, leaf hash,
//! size and root (u64 LE and 32-byte hashes, 144 bytes); 1 then a message
//! length (u32 LE) and the UTF-8 message. A connection may carry many
//! requests.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xaeroflux_store::{EventKind, LogId, NewEvent, Receipt, Topic};
use xaeroflux_types::bytes::Cursor;

use crate::error::{NetError, io_err};

/// The socket's file name in the store directory.
pub const SOCKET: &str = "node.sock";
const MAGIC: &[u8; 4] = b"XFHO";
const VERSION: u8 = 1;
/// Most events per request.
pub const MAX_EVENTS: u32 = 4096;
/// Largest payload a request carries (the store's page bounds it further).
pub const MAX_PAYLOAD: u32 = 16 << 20;
/// Most payload bytes in one request, all events together.
pub const MAX_REQUEST_PAYLOAD: u64 = 64 << 20;
const RECEIPT_LEN: usize = 64 + 8 + 32 + 8 + 32;

/// The socket path of a store directory.
pub fn socket_path(store_dir: &Path) -> PathBuf {
    store_dir.join(SOCKET)
}

fn encode_request(events: &[NewEvent]) -> Result<Vec<u8>, NetError> {
    if events.is_empty() || events.len() > MAX_EVENTS as usize {
        return Err(NetError::Malformed {
            what: "handoff request",
            reason: format!("{} events (1 to {MAX_EVENTS})", events.len()),
        });
    }
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&(events.len() as u32).to_le_bytes());
    for e in events {
        let name = e.topic().name().as_bytes();
        let len = u8::try_from(name.len()).map_err(|_| NetError::Malformed {
            what: "handoff request",
            reason: "topic name over 255 bytes".into(),
        })?;
        if e.payload().len() > MAX_PAYLOAD as usize {
            return Err(NetError::Malformed {
                what: "handoff request",
                reason: "payload over the bound".into(),
            });
        }
        out.push(e.kind() as u8);
        out.push(u8::from(e.is_encrypted()));
        out.push(len);
        out.extend_from_slice(name);
        out.extend_from_slice(&(e.payload().len() as u32).to_le_bytes());
        out.extend_from_slice(e.payload());
    }
    Ok(out)
}

fn encode_receipt(r: &Receipt, out: &mut Vec<u8>) {
    out.extend_from_slice(&r.log.to_bytes());
    out.extend_from_slice(&r.seq.to_le_bytes());
    out.extend_from_slice(&r.leaf_hash);
    out.extend_from_slice(&r.size.to_le_bytes());
    out.extend_from_slice(&r.root);
}

fn decode_receipt(b: &[u8; RECEIPT_LEN]) -> Option<Receipt> {
    let mut c = Cursor::new(b);
    Some(Receipt {
        log: LogId::from_bytes(&c.array()?),
        seq: c.u64_le()?,
        leaf_hash: c.array()?,
        size: c.u64_le()?,
        root: c.array()?,
    })
}

/// Hands `events` to the node running on `store_dir` and returns their
/// receipts once durable. [`NetError::NoNode`] when no node answers.
pub fn append(store_dir: &Path, events: &[NewEvent]) -> Result<Vec<Receipt>, NetError> {
    let mut client = Client::connect(store_dir)?;
    client.append(events)
}

/// A connection to a running node's socket, for many requests.
#[derive(Debug)]
pub struct Client {
    #[cfg(unix)]
    stream: std::os::unix::net::UnixStream,
    path: PathBuf,
}

impl Client {
    /// Connects to the node running on `store_dir`.
    #[cfg(unix)]
    pub fn connect(store_dir: &Path) -> Result<Client, NetError> {
        let path = socket_path(store_dir);
        match std::os::unix::net::UnixStream::connect(&path) {
            Ok(stream) => Ok(Client { stream, path }),
            Err(_) => Err(NetError::NoNode(path)),
        }
    }

    /// Connects to the node running on `store_dir`.
    #[cfg(not(unix))]
    pub fn connect(store_dir: &Path) -> Result<Client, NetError> {
        Err(NetError::NoNode(socket_path(store_dir)))
    }

    /// Appends `events` (at most [`MAX_EVENTS`]) through the node.
    #[cfg(unix)]
    pub fn append(&mut self, events: &[NewEvent]) -> Result<Vec<Receipt>, NetError> {
        let req = encode_request(events)?;
        let path = self.path.clone();
        self.stream.write_all(&req).map_err(io_err(&path))?;
        let mut status = [0u8; 1];
        self.stream.read_exact(&mut status).map_err(io_err(&path))?;
        let mut n = [0u8; 4];
        self.stream.read_exact(&mut n).map_err(io_err(&path))?;
        let n = u32::from_le_bytes(n);
        match status[0] {
            0 => {
                if n as usize != events.len() {
                    return Err(NetError::Malformed {
                        what: "handoff reply",
                        reason: format!("{n} receipts for {} events", events.len()),
                    });
                }
                let mut out = Vec::with_capacity(events.len());
                let mut b = [0u8; RECEIPT_LEN];
                for _ in 0..n {
                    self.stream.read_exact(&mut b).map_err(io_err(&path))?;
                    out.extend(decode_receipt(&b));
                }
                Ok(out)
            }
            1 => {
                if n > 64 * 1024 {
                    return Err(NetError::Malformed {
                        what: "handoff reply",
                        reason: "error message over the bound".into(),
                    });
                }
                let mut msg = vec![0u8; n as usize];
                self.stream.read_exact(&mut msg).map_err(io_err(&path))?;
                Err(NetError::Refused(
                    String::from_utf8_lossy(&msg).into_owned(),
                ))
            }
            s => Err(NetError::Malformed {
                what: "handoff reply",
                reason: format!("status {s}"),
            }),
        }
    }

    /// Appends `events` (at most [`MAX_EVENTS`]) through the node.
    #[cfg(not(unix))]
    pub fn append(&mut self, _events: &[NewEvent]) -> Result<Vec<Receipt>, NetError> {
        Err(NetError::NoNode(self.path.clone()))
    }
}

/// Reads one request; `Ok(None)` at a clean end of the connection.
pub(crate) async fn read_request<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Option<Vec<NewEvent>>, String> {
    let mut head = [0u8; 9];
    let (first, rest) = head.split_at_mut(1);
    match r.read_exact(first).await {
        Ok(_) => {}
        Err(_) => return Ok(None),
    }
    r.read_exact(rest).await.map_err(|e| e.to_string())?;
    if head[..4] != *MAGIC {
        return Err("not a handoff request (bad magic)".into());
    }
    if head[4] != VERSION {
        return Err(format!(
            "handoff version {} (this node speaks {VERSION})",
            head[4]
        ));
    }
    let n = u32::from_le_bytes([head[5], head[6], head[7], head[8]]);
    if n == 0 || n > MAX_EVENTS {
        return Err(format!("{n} events (1 to {MAX_EVENTS})"));
    }
    let mut events = Vec::with_capacity(n as usize);
    let mut total = 0u64;
    for _ in 0..n {
        let mut kt = [0u8; 3];
        r.read_exact(&mut kt).await.map_err(|e| e.to_string())?;
        let kind = EventKind::from_u8(kt[0]).ok_or(format!("unknown kind {}", kt[0]))?;
        if kt[1] > 1 {
            return Err(format!("unknown flags {:#04x}", kt[1]));
        }
        let mut name = vec![0u8; kt[2] as usize];
        r.read_exact(&mut name).await.map_err(|e| e.to_string())?;
        let name = String::from_utf8(name).map_err(|_| "topic name is not UTF-8")?;
        let topic = Topic::new(&name).map_err(|e| e.to_string())?;
        let mut len = [0u8; 4];
        r.read_exact(&mut len).await.map_err(|e| e.to_string())?;
        let len = u32::from_le_bytes(len);
        total += u64::from(len);
        if len > MAX_PAYLOAD || total > MAX_REQUEST_PAYLOAD {
            return Err(format!(
                "payload of {len} bytes: over {MAX_PAYLOAD} per event or {MAX_REQUEST_PAYLOAD} per request"
            ));
        }
        let mut payload = vec![0u8; len as usize];
        r.read_exact(&mut payload)
            .await
            .map_err(|e| e.to_string())?;
        events.push(NewEvent::new(&topic, kind, payload).encrypted(kt[1] == 1));
    }
    Ok(Some(events))
}

/// Writes the reply to one request.
pub(crate) async fn write_reply<W: tokio::io::AsyncWrite + Unpin>(
    w: &mut W,
    reply: Result<Vec<Receipt>, String>,
) -> std::io::Result<()> {
    let mut out = Vec::new();
    match reply {
        Ok(receipts) => {
            out.push(0);
            out.extend_from_slice(&(receipts.len() as u32).to_le_bytes());
            for r in &receipts {
                encode_receipt(r, &mut out);
            }
        }
        Err(msg) => {
            out.push(1);
            let msg = msg.as_bytes();
            let msg = msg.get(..64 * 1024).unwrap_or(msg);
            out.extend_from_slice(&(msg.len() as u32).to_le_bytes());
            out.extend_from_slice(msg);
        }
    }
    w.write_all(&out).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_round_trip() {
        let r = Receipt {
            log: LogId::from_bytes(&[3; 64]),
            seq: 7,
            leaf_hash: [1; 32],
            size: 8,
            root: [2; 32],
        };
        let mut b = Vec::new();
        encode_receipt(&r, &mut b);
        let arr: [u8; RECEIPT_LEN] = b.try_into().unwrap();
        assert_eq!(decode_receipt(&arr), Some(r));
    }

    #[tokio::test]
    async fn requests_round_trip_and_bad_ones_are_refused() {
        let t = Topic::new("chat").unwrap();
        let events = vec![
            NewEvent::application(&t, b"one".to_vec()),
            NewEvent::system(&t, Vec::new()).encrypted(true),
        ];
        let bytes = encode_request(&events).unwrap();
        let got = read_request(&mut &bytes[..]).await.unwrap().unwrap();
        assert_eq!(got, events);
        assert_eq!(read_request(&mut &b""[..]).await.unwrap(), None);
        for i in 0..bytes.len() - 1 {
            assert!(read_request(&mut &bytes[..=i]).await.is_err(), "prefix {i}");
        }
        let mut bad = bytes.clone();
        bad[4] = 2;
        assert!(read_request(&mut &bad[..]).await.is_err());
        let mut huge = bytes[..5].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(read_request(&mut &huge[..]).await.is_err());
        // Four full-size payloads, then one byte more: over the request bound.
        let mut big = MAGIC.to_vec();
        big.push(VERSION);
        big.extend_from_slice(&5u32.to_le_bytes());
        for i in 0..5 {
            big.extend_from_slice(&[2, 0, 1, b'x']);
            let len = if i < 4 { MAX_PAYLOAD } else { 1 };
            big.extend_from_slice(&len.to_le_bytes());
            big.resize(big.len() + len as usize, 0);
        }
        let err = read_request(&mut &big[..]).await.unwrap_err();
        assert!(err.contains("per request"), "{err}");
    }
}
