//! Sync events: what the network layer tells the application, as `System`
//! events in the store's own log of the local topic [`SYNC_TOPIC`].
//!
//! Each payload is one line of text, `xsync/1 <what> key=value ...`, so
//! `xf cat --topic xaeroflux.sync` shows them and [`SyncEvent::parse`]
//! reads them back. The topic is never joined, so they stay on this node.

use std::fmt;
use std::str::FromStr;

use crate::wire::BlobHash;

/// The local topic sync events go to.
pub const SYNC_TOPIC: &str = "xaeroflux.sync";
/// The first word of every sync event's payload: format and version.
pub const SYNC_EVENT_TAG: &str = "xsync/1";

/// Which side opened a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// This node dialed the peer.
    Dialed,
    /// The peer dialed this node.
    Accepted,
}

impl Direction {
    fn as_str(self) -> &'static str {
        match self {
            Direction::Dialed => "dialed",
            Direction::Accepted => "accepted",
        }
    }
}

/// One thing that happened to the node's sync state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SyncEvent {
    /// A peer became a gossip neighbour on a topic (or answered a dial).
    PeerUp {
        /// Its endpoint id.
        peer: String,
    },
    /// A peer stopped being a neighbour.
    PeerDown {
        /// Its endpoint id.
        peer: String,
    },
    /// An XSP session began.
    SessionStarted {
        /// The other side.
        peer: String,
        /// Who dialed.
        direction: Direction,
    },
    /// An XSP session ended, well or not.
    SessionEnded {
        /// The other side.
        peer: String,
        /// Who dialed.
        direction: Direction,
        /// Events received, verified and stored.
        events_in: u64,
        /// Events served.
        events_out: u64,
        /// Bytes received.
        bytes_in: u64,
        /// Bytes sent.
        bytes_out: u64,
        /// How long it took, in milliseconds.
        millis: u64,
        /// Why it failed, if it did.
        error: Option<String>,
    },
    /// A blob referenced by a replicated event was fetched and verified.
    BlobFetched {
        /// Its hash.
        hash: BlobHash,
        /// Its size.
        size: u64,
        /// Who served it.
        peer: String,
    },
    /// Something failed outside a session (a dial, a blob fetch, gossip).
    Error {
        /// The peer involved, if any.
        peer: Option<String>,
        /// What went wrong.
        message: String,
    },
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(' ', "\\s")
        .replace('\n', "\\n")
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\\' {
            match it.next() {
                Some('s') => out.push(' '),
                Some('n') => out.push('\n'),
                Some(o) => out.push(o),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}

impl fmt::Display for SyncEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SYNC_EVENT_TAG} ")?;
        match self {
            SyncEvent::PeerUp { peer } => write!(f, "peer-up peer={peer}"),
            SyncEvent::PeerDown { peer } => write!(f, "peer-down peer={peer}"),
            SyncEvent::SessionStarted { peer, direction } => {
                write!(f, "session-started peer={peer} dir={}", direction.as_str())
            }
            SyncEvent::SessionEnded {
                peer,
                direction,
                events_in,
                events_out,
                bytes_in,
                bytes_out,
                millis,
                error,
            } => {
                write!(
                    f,
                    "session-ended peer={peer} dir={} events_in={events_in} events_out={events_out} bytes_in={bytes_in} bytes_out={bytes_out} ms={millis}",
                    direction.as_str()
                )?;
                if let Some(e) = error {
                    write!(f, " error={}", escape(e))?;
                }
                Ok(())
            }
            SyncEvent::BlobFetched { hash, size, peer } => {
                write!(f, "blob-fetched hash={hash} size={size} peer={peer}")
            }
            SyncEvent::Error { peer, message } => {
                write!(f, "error")?;
                if let Some(p) = peer {
                    write!(f, " peer={p}")?;
                }
                write!(f, " message={}", escape(message))
            }
        }
    }
}

impl SyncEvent {
    /// Reads a sync event back from an event payload.
    pub fn parse(payload: &[u8]) -> Option<SyncEvent> {
        std::str::from_utf8(payload).ok()?.parse().ok()
    }

    /// Whether the event is worth keeping in the log: sessions that moved
    /// nothing and ended well are left out, so periodic syncs between
    /// nodes that agree do not grow the log.
    pub(crate) fn ended_quietly(&self) -> bool {
        matches!(
            self,
            SyncEvent::SessionEnded {
                events_in: 0,
                events_out: 0,
                error: None,
                ..
            }
        )
    }
}

impl FromStr for SyncEvent {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut words = s.split(' ');
        if words.next() != Some(SYNC_EVENT_TAG) {
            return Err("not a sync event of this version".into());
        }
        let what = words.next().ok_or("no kind")?;
        let mut fields = std::collections::HashMap::new();
        for w in words {
            let (k, v) = w.split_once('=').ok_or("field without '='")?;
            fields.insert(k, unescape(v));
        }
        let text = |k: &str| fields.get(k).cloned().ok_or(format!("no {k}"));
        let num = |k: &str| -> Result<u64, String> {
            fields
                .get(k)
                .ok_or(format!("no {k}"))?
                .parse()
                .map_err(|_| format!("bad {k}"))
        };
        let dir = || match fields.get("dir").map(String::as_str) {
            Some("dialed") => Ok(Direction::Dialed),
            Some("accepted") => Ok(Direction::Accepted),
            _ => Err("bad dir".to_string()),
        };
        Ok(match what {
            "peer-up" => SyncEvent::PeerUp {
                peer: text("peer")?,
            },
            "peer-down" => SyncEvent::PeerDown {
                peer: text("peer")?,
            },
            "session-started" => SyncEvent::SessionStarted {
                peer: text("peer")?,
                direction: dir()?,
            },
            "session-ended" => SyncEvent::SessionEnded {
                peer: text("peer")?,
                direction: dir()?,
                events_in: num("events_in")?,
                events_out: num("events_out")?,
                bytes_in: num("bytes_in")?,
                bytes_out: num("bytes_out")?,
                millis: num("ms")?,
                error: fields.get("error").cloned(),
            },
            "blob-fetched" => SyncEvent::BlobFetched {
                hash: BlobHash::from_hex(&text("hash")?).map_err(|e| e.to_string())?,
                size: num("size")?,
                peer: text("peer")?,
            },
            "error" => SyncEvent::Error {
                peer: fields.get("peer").cloned(),
                message: text("message")?,
            },
            other => return Err(format!("unknown kind {other}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips() {
        let all = vec![
            SyncEvent::PeerUp { peer: "ab".into() },
            SyncEvent::PeerDown { peer: "ab".into() },
            SyncEvent::SessionStarted {
                peer: "ab".into(),
                direction: Direction::Accepted,
            },
            SyncEvent::SessionEnded {
                peer: "ab".into(),
                direction: Direction::Dialed,
                events_in: 1,
                events_out: 2,
                bytes_in: 3,
                bytes_out: 4,
                millis: 5,
                error: Some("a \\ b\nc=d".into()),
            },
            SyncEvent::BlobFetched {
                hash: BlobHash([7; 32]),
                size: 9,
                peer: "cd".into(),
            },
            SyncEvent::Error {
                peer: None,
                message: "no route".into(),
            },
        ];
        for e in all {
            let text = e.to_string();
            assert!(!text.contains('\n'));
            assert_eq!(SyncEvent::parse(text.as_bytes()), Some(e), "{text}");
        }
        assert_eq!(SyncEvent::parse(b"xsync/2 peer-up peer=a"), None);
        assert_eq!(SyncEvent::parse(&[0xff, 0xfe]), None);
    }
}
