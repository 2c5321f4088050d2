//! The operation encoding: one operation per event payload.
//!
//! ```text
//! 0  magic "XFOP"            4
//! 4  version (1)             1
//! 5  operation               1   see OpBody
//! 6  name length n (u16 LE)  2
//! 8  name (UTF-8)            n
//! .. body                        per operation, below
//! ```
//!
//! Bytes fields are a u32 LE length and the bytes; an id list is a u32 LE
//! count and that many (author 32 bytes, seq u64 LE). Every length is
//! checked against the bytes left before anything is allocated.

use crate::error::CrdtError;
use crate::types::OpId;

/// Magic of an operation payload.
pub const OP_MAGIC: [u8; 4] = *b"XFOP";
/// Version of the operation encoding.
pub const OP_VERSION: u8 = 1;
/// Longest CRDT name, in bytes.
pub const MAX_NAME_LEN: usize = 1024;

const REGISTER_SET: u8 = 1;
const MAP_SET: u8 = 2;
const MAP_DELETE: u8 = 3;
const COUNTER_ADD: u8 = 4;
const SET_ADD: u8 = 5;
const SET_REMOVE: u8 = 6;
const MV_SET: u8 = 7;

/// One operation on one CRDT of a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    /// The CRDT's name in the document.
    pub name: String,
    /// What it does.
    pub body: OpBody,
}

/// What an operation does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpBody {
    /// Sets a last-writer-wins register (operation 1: bytes).
    RegisterSet(Vec<u8>),
    /// Sets a map key (operation 2: key bytes, value bytes).
    MapSet(Vec<u8>, Vec<u8>),
    /// Deletes a map key (operation 3: key bytes).
    MapDelete(Vec<u8>),
    /// Adds to a counter (operation 4: i64 LE; negative subtracts).
    CounterAdd(i64),
    /// Adds an element to a set (operation 5: element bytes).
    SetAdd(Vec<u8>),
    /// Removes an element's observed add tags (operation 6: element bytes,
    /// id list).
    SetRemove(Vec<u8>, Vec<OpId>),
    /// Writes a multi-value register, replacing the writes it observed
    /// (operation 7: value bytes, id list).
    MvSet(Vec<u8>, Vec<OpId>),
}

impl Op {
    /// The event payload carrying this operation.
    pub fn encode(&self) -> Result<Vec<u8>, CrdtError> {
        if self.name.len() > MAX_NAME_LEN {
            return Err(CrdtError::Invalid(format!(
                "a CRDT name of {} bytes (at most {MAX_NAME_LEN})",
                self.name.len()
            )));
        }
        let mut v = Vec::with_capacity(16 + self.name.len());
        v.extend_from_slice(&OP_MAGIC);
        v.push(OP_VERSION);
        let (code, rest): (u8, Vec<u8>) = match &self.body {
            OpBody::RegisterSet(b) => (REGISTER_SET, bytes(b)?),
            OpBody::MapSet(k, b) => (MAP_SET, [bytes(k)?, bytes(b)?].concat()),
            OpBody::MapDelete(k) => (MAP_DELETE, bytes(k)?),
            OpBody::CounterAdd(d) => (COUNTER_ADD, d.to_le_bytes().to_vec()),
            OpBody::SetAdd(e) => (SET_ADD, bytes(e)?),
            OpBody::SetRemove(e, ids) => (SET_REMOVE, [bytes(e)?, id_list(ids)?].concat()),
            OpBody::MvSet(b, ids) => (MV_SET, [bytes(b)?, id_list(ids)?].concat()),
        };
        v.push(code);
        v.extend_from_slice(&(self.name.len() as u16).to_le_bytes());
        v.extend_from_slice(self.name.as_bytes());
        v.extend_from_slice(&rest);
        Ok(v)
    }

    /// Whether a payload is an operation (by its magic): other events of a
    /// topic are not part of the document.
    pub fn is_op(payload: &[u8]) -> bool {
        payload.starts_with(&OP_MAGIC)
    }

    /// Decodes an operation payload; anything malformed is an error, never
    /// a panic or an allocation larger than the payload.
    pub fn decode(payload: &[u8]) -> Result<Self, CrdtError> {
        let mut r = Reader(payload);
        if r.take(4)? != OP_MAGIC {
            return Err(bad("not an operation (magic)"));
        }
        let version = r.u8()?;
        if version != OP_VERSION {
            return Err(bad(&format!(
                "operation encoding version {version} (this build reads {OP_VERSION})"
            )));
        }
        let code = r.u8()?;
        let n = u16::from_le_bytes(r.array()?) as usize;
        let name = std::str::from_utf8(r.take(n)?)
            .map_err(|_| bad("the CRDT name is not UTF-8"))?
            .to_string();
        let body = match code {
            REGISTER_SET => OpBody::RegisterSet(r.bytes()?),
            MAP_SET => OpBody::MapSet(r.bytes()?, r.bytes()?),
            MAP_DELETE => OpBody::MapDelete(r.bytes()?),
            COUNTER_ADD => OpBody::CounterAdd(i64::from_le_bytes(r.array()?)),
            SET_ADD => OpBody::SetAdd(r.bytes()?),
            SET_REMOVE => OpBody::SetRemove(r.bytes()?, r.ids()?),
            MV_SET => OpBody::MvSet(r.bytes()?, r.ids()?),
            other => return Err(bad(&format!("unknown operation {other}"))),
        };
        if !r.0.is_empty() {
            return Err(bad("bytes after the operation"));
        }
        Ok(Op { name, body })
    }
}

fn bad(why: &str) -> CrdtError {
    CrdtError::Malformed(why.to_string())
}

fn bytes(b: &[u8]) -> Result<Vec<u8>, CrdtError> {
    let n = u32::try_from(b.len()).map_err(|_| CrdtError::Invalid("a value over 4 GiB".into()))?;
    let mut v = Vec::with_capacity(4 + b.len());
    v.extend_from_slice(&n.to_le_bytes());
    v.extend_from_slice(b);
    Ok(v)
}

fn id_list(ids: &[OpId]) -> Result<Vec<u8>, CrdtError> {
    let n = u32::try_from(ids.len()).map_err(|_| CrdtError::Invalid("too many ids".into()))?;
    let mut v = Vec::with_capacity(4 + ids.len() * 40);
    v.extend_from_slice(&n.to_le_bytes());
    for id in ids {
        v.extend_from_slice(&id.author);
        v.extend_from_slice(&id.seq.to_le_bytes());
    }
    Ok(v)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CrdtError> {
        if n > self.0.len() {
            return Err(bad("truncated operation"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CrdtError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self) -> Result<u8, CrdtError> {
        Ok(self.array::<1>()?[0])
    }

    fn u32(&mut self) -> Result<usize, CrdtError> {
        Ok(u32::from_le_bytes(self.array()?) as usize)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, CrdtError> {
        let n = self.u32()?;
        Ok(self.take(n)?.to_vec())
    }

    fn ids(&mut self) -> Result<Vec<OpId>, CrdtError> {
        let n = self.u32()?;
        if n.checked_mul(40).is_none_or(|b| b > self.0.len()) {
            return Err(bad("an id list longer than the operation"));
        }
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            let author = self.array::<32>()?;
            let seq = u64::from_le_bytes(self.array()?);
            ids.push(OpId { author, seq });
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn id(a: u8, s: u64) -> OpId {
        OpId {
            author: [a; 32],
            seq: s,
        }
    }

    #[test]
    fn every_operation_round_trips() {
        let ops = [
            OpBody::RegisterSet(b"v".to_vec()),
            OpBody::MapSet(b"k".to_vec(), b"v".to_vec()),
            OpBody::MapDelete(b"k".to_vec()),
            OpBody::CounterAdd(-5),
            OpBody::SetAdd(b"e".to_vec()),
            OpBody::SetRemove(b"e".to_vec(), vec![id(1, 2), id(3, 4)]),
            OpBody::MvSet(b"v".to_vec(), vec![id(9, 0)]),
        ];
        for body in ops {
            let op = Op {
                name: "profile".into(),
                body,
            };
            let bytes = op.encode().unwrap();
            assert!(Op::is_op(&bytes));
            assert_eq!(Op::decode(&bytes).unwrap(), op);
            // Every truncation is refused.
            for n in 0..bytes.len() {
                assert!(Op::decode(&bytes[..n]).is_err(), "{op:?} cut at {n}");
            }
        }
    }

    #[test]
    fn a_wrong_version_or_operation_is_refused() {
        let mut b = Op {
            name: "x".into(),
            body: OpBody::CounterAdd(1),
        }
        .encode()
        .unwrap();
        b[4] = 2;
        assert!(
            Op::decode(&b)
                .unwrap_err()
                .to_string()
                .contains("version 2")
        );
        b[4] = 1;
        b[5] = 99;
        assert!(
            Op::decode(&b)
                .unwrap_err()
                .to_string()
                .contains("unknown operation")
        );
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut b = OP_MAGIC.to_vec();
            b.push(OP_VERSION);
            b.extend_from_slice(&tail);
            let _ = Op::decode(&b);
        }

        #[test]
        fn a_huge_id_count_is_refused_without_allocating(n in 1_000_000u32..u32::MAX) {
            let mut b = Op { name: "s".into(), body: OpBody::SetRemove(b"e".to_vec(), vec![]) }.encode().unwrap();
            let at = b.len() - 4;
            b[at..].copy_from_slice(&n.to_le_bytes());
            prop_assert!(Op::decode(&b).is_err());
        }
    }
}
