//! Topics and their ids.

use std::fmt;

use xaeroflux_merkle::sha256;

use crate::error::InvalidInput;

/// Domain prefix of topic ids: `SHA-256("xaeroflux/topic/v1\0" || name)`.
pub const TOPIC_DOMAIN: &[u8] = b"xaeroflux/topic/v1\0";
/// Longest topic name, in bytes.
pub const MAX_TOPIC_LEN: usize = 255;

/// The id of a topic: a SHA-256 of its name.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicId(pub [u8; 32]);

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TopicId({self})")
    }
}

impl std::str::FromStr for TopicId {
    type Err = InvalidInput;
    /// Parses 64 hex digits.
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        let mut id = [0u8; 32];
        hex::decode_to_slice(s, &mut id)
            .map_err(|_| InvalidInput::Topic(format!("{s:?} is not a topic id (64 hex digits)")))?;
        Ok(TopicId(id))
    }
}

/// An application-chosen topic: a UTF-8 name of 1 to 255 bytes without
/// control characters, and its id.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Topic {
    name: std::sync::Arc<str>,
    id: TopicId,
}

impl fmt::Debug for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Topic({:?})", self.name)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

impl Topic {
    /// Validates a topic name and computes its id.
    #[inline]
    pub fn new(name: &str) -> Result<Self, InvalidInput> {
        if name.is_empty() {
            return Err(InvalidInput::Topic("a topic name cannot be empty".into()));
        }
        if name.len() > MAX_TOPIC_LEN {
            return Err(InvalidInput::Topic(format!(
                "a topic name has at most {MAX_TOPIC_LEN} bytes, this one {}",
                name.len()
            )));
        }
        if let Some(c) = name.chars().find(|c| c.is_control()) {
            return Err(InvalidInput::Topic(format!(
                "a topic name cannot contain control character {c:?}"
            )));
        }
        Ok(Self {
            name: name.into(),
            id: Self::id_of(name),
        })
    }

    /// The id of a name (without validating it).
    #[inline]
    pub fn id_of(name: &str) -> TopicId {
        TopicId(sha256(&[TOPIC_DOMAIN, name.as_bytes()]))
    }

    /// The name.
    #[inline]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The id.
    #[inline]
    pub fn id(&self) -> TopicId {
        self.id
    }
}

/// The prefix of private (end-to-end encrypted) topic names.
pub const PRIVATE_PREFIX: &str = "xfe1.";

/// Whether a topic name is a private topic's: such a name never goes on
/// the wire (a `HELLO` or an announcement carries only the id).
pub fn is_private_name(name: &str) -> bool {
    name.starts_with(PRIVATE_PREFIX)
}

impl std::str::FromStr for Topic {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        Topic::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_are_checked() {
        assert!(Topic::new("chat").is_ok());
        assert!(Topic::new("").is_err());
        assert!(Topic::new(&"x".repeat(255)).is_ok());
        assert!(Topic::new(&"x".repeat(256)).is_err());
        assert!(Topic::new("a\nb").is_err());
        assert!(Topic::new("\u{7f}").is_err());
        assert_eq!(Topic::new("chat").unwrap().id(), Topic::id_of("chat"));
        let id = Topic::id_of("chat");
        assert_eq!(id.to_string().parse::<TopicId>().unwrap(), id);
        assert!("xyz".parse::<TopicId>().is_err());
    }
}
