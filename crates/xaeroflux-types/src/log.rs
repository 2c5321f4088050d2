//! Logs: the events one author writes to one topic.

use std::fmt;
use std::str::FromStr;

use crate::error::InvalidInput;
use crate::topic::TopicId;

/// A log: the events one author writes to one topic.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogId {
    /// The author's Ed25519 public key.
    pub author: [u8; 32],
    /// The topic id.
    pub topic: TopicId,
}

/// Bytes of a log id on disk and on the wire: `author || topic`.
pub const LOG_ID_LEN: usize = 64;

impl LogId {
    /// The 64 bytes `author || topic`.
    #[inline]
    pub fn to_bytes(&self) -> [u8; LOG_ID_LEN] {
        let mut b = [0u8; LOG_ID_LEN];
        b[..32].copy_from_slice(&self.author);
        b[32..].copy_from_slice(&self.topic.0);
        b
    }

    /// From the 64 bytes `author || topic`.
    #[inline]
    pub fn from_bytes(b: &[u8; LOG_ID_LEN]) -> Self {
        let mut author = [0u8; 32];
        let mut topic = [0u8; 32];
        author.copy_from_slice(&b[..32]);
        topic.copy_from_slice(&b[32..]);
        Self {
            author,
            topic: TopicId(topic),
        }
    }

    /// A key that spreads logs over a pool of workers: log ids are made of
    /// hashes, so their first bytes are uniform already.
    #[inline]
    pub fn route_key(&self) -> u64 {
        let (a, _) = self
            .author
            .split_first_chunk::<8>()
            .unwrap_or((&[0; 8], &[]));
        let (t, _) = self
            .topic
            .0
            .split_first_chunk::<8>()
            .unwrap_or((&[0; 8], &[]));
        u64::from_le_bytes(*a) ^ u64::from_le_bytes(*t)
    }

    /// The checkpoint origin (and signing key name) of this log.
    #[inline]
    pub fn origin(&self) -> String {
        xaeroflux_merkle::log_origin(&self.author, &self.topic.0)
    }
}

impl fmt::Display for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", hex::encode(self.author), self.topic)
    }
}

impl fmt::Debug for LogId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogId({self})")
    }
}

impl FromStr for LogId {
    type Err = InvalidInput;
    /// Parses `AUTHOR_HEX/TOPIC_ID_HEX`.
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        let bad = || InvalidInput::LogId(s.to_string());
        let (a, t) = s.split_once('/').ok_or_else(bad)?;
        let mut author = [0u8; 32];
        let mut topic = [0u8; 32];
        hex::decode_to_slice(a, &mut author).map_err(|_| bad())?;
        hex::decode_to_slice(t, &mut topic).map_err(|_| bad())?;
        Ok(Self {
            author,
            topic: TopicId(topic),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_round_trip_through_text_and_bytes() {
        let id = LogId {
            author: [1; 32],
            topic: TopicId([2; 32]),
        };
        assert_eq!(id.to_string().parse::<LogId>().unwrap(), id);
        assert_eq!(LogId::from_bytes(&id.to_bytes()), id);
        assert!("zz/00".parse::<LogId>().is_err());
        assert!("nothing".parse::<LogId>().is_err());
    }
}
