//! Key-change records: the payloads of the `Identity` events the
//! controller writes in its own log of a private topic.
//!
//! ```text
//! every record: magic "XFEC" | version (1) | type (u8)
//!
//! type 1, key change (starts epoch e)
//!   epoch            u64 LE
//!   commitment       32   SHA-256("xf/e2e/v1/commit" || topic id || e || K_e)
//!   epoch 0 only:    name salt, 16 (binds the topic name to the controller)
//!   epoch > 0 only:  back-link, 72: nonce 24 || K_{e-1} sealed (32 + tag 16)
//!   total            u16 LE: wraps of the epoch in all (a power of two, at
//!                    most 4,096; fillers pad)
//!   wraps            u16 LE count here (1 to total), then that many 80-byte
//!                    HPKE wraps of K_e; the rest follow in type-3 records
//!   body             u32 LE length, then the sealed body
//!
//! type 3, more wraps of epoch e (right after its key change, in order)
//!   epoch            u64 LE
//!   commitment       32   the key change's
//!   first            u16 LE index of its first wrap
//!   wraps            u16 LE count, then that many wraps
//!
//! type 2, welcome (a member joins at epoch e)
//!   epoch            u64 LE
//!   wrap             80   K_e wrapped to the newcomer
//!   body             u32 LE length, then the sealed body
//!
//! sealed body: nonce 24 || XChaCha20-Poly1305 of the operations, under
//!   HKDF-SHA256(salt = topic id, ikm = K_e, info = "xf/e2e/v1/control"),
//!   associated data "xf/e2e/v1/control" || topic id || the record's bytes
//!   before the body
//! operations: u16 LE count, then each: 1 add (member key 32) |
//!   2 remove (member key 32) | 3 title (u16 LE length, UTF-8)
//! ```
//!
//! The back-link is `K_{e-1}` sealed with XChaCha20-Poly1305 under
//! `HKDF-SHA256(salt = topic id, ikm = K_e, info = "xf/e2e/v1/back")`, with
//! associated data `"xf/e2e/v1/back" || topic id || e`: whoever holds
//! `K_e` walks back to every earlier epoch.

use chacha20poly1305::XNonce;
use chacha20poly1305::aead::{Aead, Payload};
use sha2::{Digest, Sha256};
use xaeroflux_types::TopicId;
use zeroize::Zeroizing;

use crate::envelope::{cipher, derive};
use crate::error::{E2eError, Result, malformed};
use crate::keys::{EpochSecret, MemberKey, random_array};
use crate::wrap::WRAP_LEN;

/// The magic of key-change records.
pub const RECORD_MAGIC: &[u8; 4] = b"XFEC";
/// Their version.
pub const RECORD_VERSION: u8 = 1;
/// Most wraps one epoch has (so at most 4,096 members).
pub const MAX_WRAPS: usize = 4096;
/// Length of a back-link.
pub const BACK_LINK_LEN: usize = 24 + 32 + 16;
/// Most bytes of a sealed body.
pub const MAX_BODY: usize = 1 << 20;
/// Longest title, in bytes.
pub const MAX_TITLE: usize = 1024;

const TYPE_KEY_CHANGE: u8 = 1;
const TYPE_WELCOME: u8 = 2;
const TYPE_MORE_WRAPS: u8 = 3;
const COMMIT_LABEL: &[u8] = b"xf/e2e/v1/commit";
const BACK_LABEL: &[u8] = b"xf/e2e/v1/back";
const CONTROL_LABEL: &[u8] = b"xf/e2e/v1/control";

/// A change of membership or a title, carried sealed in a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// A member joins.
    Add(MemberKey),
    /// A member leaves.
    Remove(MemberKey),
    /// The topic's title.
    Title(String),
}

/// A parsed record, its body still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Starts an epoch.
    KeyChange {
        /// The epoch it starts.
        epoch: u64,
        /// The commitment to the epoch's secret.
        commitment: [u8; 32],
        /// At epoch 0: the salt binding the topic's name to the controller.
        name_salt: Option<[u8; 16]>,
        /// After epoch 0: the previous epoch's secret, sealed.
        back_link: Option<[u8; BACK_LINK_LEN]>,
        /// The epoch's wraps in all, this record's and its followers'.
        total: u16,
        /// The epoch's secret wrapped to members (and fillers): the first
        /// of them.
        wraps: Vec<[u8; WRAP_LEN]>,
        /// The sealed operations.
        body: Vec<u8>,
        /// The record's bytes before the body (the body's associated data).
        prefix_len: usize,
    },
    /// More wraps of the latest key change.
    MoreWraps {
        /// Its epoch.
        epoch: u64,
        /// Its commitment.
        commitment: [u8; 32],
        /// The index of the first wrap here.
        first: u16,
        /// The wraps.
        wraps: Vec<[u8; WRAP_LEN]>,
    },
    /// Gives a newcomer the current epoch's secret.
    Welcome {
        /// The epoch whose secret it carries.
        epoch: u64,
        /// The secret wrapped to the newcomer.
        wrap: [u8; WRAP_LEN],
        /// The sealed operations.
        body: Vec<u8>,
        /// The record's bytes before the body.
        prefix_len: usize,
    },
}

impl Record {
    /// The sealed body and the length of the bytes before it (its
    /// associated data).
    pub fn body(&self) -> Option<(&[u8], usize)> {
        match self {
            Self::KeyChange {
                body, prefix_len, ..
            }
            | Self::Welcome {
                body, prefix_len, ..
            } => Some((body, *prefix_len)),
            Self::MoreWraps { .. } => None,
        }
    }

    /// The epoch the record is about.
    pub fn epoch(&self) -> u64 {
        match self {
            Self::KeyChange { epoch, .. }
            | Self::Welcome { epoch, .. }
            | Self::MoreWraps { epoch, .. } => *epoch,
        }
    }
}

/// The commitment to an epoch's secret.
pub fn commitment(topic: &TopicId, epoch: u64, secret: &EpochSecret) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(COMMIT_LABEL);
    h.update(topic.0);
    h.update(epoch.to_le_bytes());
    h.update(secret.0);
    h.finalize().into()
}

/// Whether bytes look like a key-change record (its magic).
pub fn is_record(bytes: &[u8]) -> bool {
    bytes.starts_with(RECORD_MAGIC)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(malformed(
                "key-change record",
                format!("truncated in {what}"),
            ));
        }
        let (a, b) = self.rest.split_at(n);
        self.rest = b;
        Ok(a)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N]> {
        let b = self.take(N, what)?;
        b.try_into()
            .map_err(|_| malformed("key-change record", format!("truncated in {what}")))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }
}

/// Reads a record's structure (what a relay checks too).
pub fn parse(bytes: &[u8]) -> Result<Record> {
    let mut r = Reader { rest: bytes };
    if r.take(4, "magic")? != RECORD_MAGIC {
        return Err(malformed("key-change record", "bad magic"));
    }
    let [version] = r.array::<1>("version")?;
    if version != RECORD_VERSION {
        return Err(E2eError::UnsupportedVersion {
            what: "key-change record",
            found: version,
            supported: RECORD_VERSION,
        });
    }
    let [kind] = r.array::<1>("type")?;
    let record = match kind {
        TYPE_KEY_CHANGE => {
            let epoch = r.u64("epoch")?;
            let commitment = r.array("commitment")?;
            let (name_salt, back_link) = if epoch == 0 {
                (Some(r.array("name salt")?), None)
            } else {
                (None, Some(r.array("back-link")?))
            };
            let total = u16::from_le_bytes(r.array("wrap total")?);
            if total == 0 || !total.is_power_of_two() || usize::from(total) > MAX_WRAPS {
                return Err(malformed(
                    "key-change record",
                    format!("{total} wraps: not a power of two up to {MAX_WRAPS}"),
                ));
            }
            let wraps = read_wraps(&mut r, usize::from(total))?;
            let prefix_len = bytes.len() - r.rest.len();
            let body = body(&mut r)?;
            Record::KeyChange {
                epoch,
                commitment,
                name_salt,
                back_link,
                total,
                wraps,
                body,
                prefix_len,
            }
        }
        TYPE_MORE_WRAPS => {
            let epoch = r.u64("epoch")?;
            let commitment = r.array("commitment")?;
            let first = u16::from_le_bytes(r.array("first wrap")?);
            let wraps = read_wraps(&mut r, MAX_WRAPS)?;
            Record::MoreWraps {
                epoch,
                commitment,
                first,
                wraps,
            }
        }
        TYPE_WELCOME => {
            let epoch = r.u64("epoch")?;
            let wrap = r.array("wrap")?;
            let prefix_len = bytes.len() - r.rest.len();
            let body = body(&mut r)?;
            Record::Welcome {
                epoch,
                wrap,
                body,
                prefix_len,
            }
        }
        other => {
            return Err(malformed(
                "key-change record",
                format!("unknown type {other}"),
            ));
        }
    };
    if !r.rest.is_empty() {
        return Err(malformed("key-change record", "bytes after the body"));
    }
    Ok(record)
}

fn read_wraps(r: &mut Reader<'_>, most: usize) -> Result<Vec<[u8; WRAP_LEN]>> {
    let count = usize::from(u16::from_le_bytes(r.array("wrap count")?));
    if count == 0 || count > most || count * WRAP_LEN > r.rest.len() {
        return Err(malformed(
            "key-change record",
            format!("{count} wraps where 1 to {most} fit"),
        ));
    }
    let mut wraps = Vec::with_capacity(count);
    for _ in 0..count {
        wraps.push(r.array("wraps")?);
    }
    Ok(wraps)
}

fn body(r: &mut Reader<'_>) -> Result<Vec<u8>> {
    let len = u32::from_le_bytes(r.array("body length")?) as usize;
    if !(24 + 16..=MAX_BODY).contains(&len) {
        return Err(malformed(
            "key-change record",
            format!("body of {len} bytes"),
        ));
    }
    Ok(r.take(len, "body")?.to_vec())
}

/// What ties a key change to what came before: the name's salt at epoch
/// 0, the back-link after.
pub(crate) enum Link {
    /// Epoch 0.
    Salt([u8; 16]),
    /// Later epochs.
    Back([u8; BACK_LINK_LEN]),
}

/// Writes a key change; the body is sealed here.
pub(crate) fn write_key_change(
    topic: &TopicId,
    epoch: u64,
    secret: &EpochSecret,
    link: Link,
    total: u16,
    wraps: &[[u8; WRAP_LEN]],
    ops: &[Op],
) -> Result<Vec<u8>> {
    if total == 0 || !total.is_power_of_two() || usize::from(total) > MAX_WRAPS {
        return Err(E2eError::NotAllowed(format!(
            "{total} wraps: an epoch has a power of two up to {MAX_WRAPS}"
        )));
    }
    if wraps.is_empty() || wraps.len() > usize::from(total) {
        return Err(E2eError::NotAllowed(format!(
            "{} wraps in the key change, of {total}",
            wraps.len()
        )));
    }
    let mut b = header(TYPE_KEY_CHANGE);
    b.extend_from_slice(&epoch.to_le_bytes());
    b.extend_from_slice(&commitment(topic, epoch, secret));
    match (epoch, link) {
        (0, Link::Salt(salt)) => b.extend_from_slice(&salt),
        (1.., Link::Back(link)) => b.extend_from_slice(&link),
        _ => {
            return Err(E2eError::NotAllowed(
                "epoch 0 carries the name salt, later ones a back-link".into(),
            ));
        }
    }
    b.extend_from_slice(&total.to_le_bytes());
    b.extend_from_slice(&(wraps.len() as u16).to_le_bytes());
    for w in wraps {
        b.extend_from_slice(w);
    }
    seal_body(topic, secret, b, ops)
}

/// Writes a record of more wraps of the key change committing to
/// `commitment`, the first of them at index `first`.
pub(crate) fn write_more_wraps(
    epoch: u64,
    commitment: &[u8; 32],
    first: u16,
    wraps: &[[u8; WRAP_LEN]],
) -> Vec<u8> {
    let mut b = header(TYPE_MORE_WRAPS);
    b.extend_from_slice(&epoch.to_le_bytes());
    b.extend_from_slice(commitment);
    b.extend_from_slice(&first.to_le_bytes());
    b.extend_from_slice(&(wraps.len() as u16).to_le_bytes());
    for w in wraps {
        b.extend_from_slice(w);
    }
    b
}

/// Writes a welcome; the body is sealed here.
pub(crate) fn write_welcome(
    topic: &TopicId,
    epoch: u64,
    secret: &EpochSecret,
    wrap: &[u8; WRAP_LEN],
    ops: &[Op],
) -> Result<Vec<u8>> {
    let mut b = header(TYPE_WELCOME);
    b.extend_from_slice(&epoch.to_le_bytes());
    b.extend_from_slice(wrap);
    seal_body(topic, secret, b, ops)
}

fn header(kind: u8) -> Vec<u8> {
    let mut b = Vec::with_capacity(256);
    b.extend_from_slice(RECORD_MAGIC);
    b.push(RECORD_VERSION);
    b.push(kind);
    b
}

fn control_aad(topic: &TopicId, prefix: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(CONTROL_LABEL.len() + 32 + prefix.len());
    aad.extend_from_slice(CONTROL_LABEL);
    aad.extend_from_slice(&topic.0);
    aad.extend_from_slice(prefix);
    aad
}

fn seal_body(topic: &TopicId, secret: &EpochSecret, mut b: Vec<u8>, ops: &[Op]) -> Result<Vec<u8>> {
    let plain = Zeroizing::new(encode_ops(ops)?);
    let key = derive(&topic.0, &secret.0, &[CONTROL_LABEL]);
    let nonce: [u8; 24] = random_array()?;
    let aad = control_aad(topic, &b);
    let ct = cipher(&key)
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        .map_err(|_| E2eError::NotAllowed("body too long".into()))?;
    let len = 24 + ct.len();
    if len > MAX_BODY {
        return Err(E2eError::NotAllowed("body too long".into()));
    }
    b.extend_from_slice(&(len as u32).to_le_bytes());
    b.extend_from_slice(&nonce);
    b.extend_from_slice(&ct);
    Ok(b)
}

/// Opens a record's body with its epoch's secret.
pub(crate) fn open_body(
    topic: &TopicId,
    secret: &EpochSecret,
    record_bytes: &[u8],
    prefix_len: usize,
    body: &[u8],
) -> Result<Vec<Op>> {
    let prefix = record_bytes
        .get(..prefix_len)
        .ok_or_else(|| malformed("key-change record", "prefix out of range"))?;
    let (nonce, ct) = body
        .split_first_chunk::<24>()
        .ok_or_else(|| malformed("key-change record", "body shorter than its nonce"))?;
    let key = derive(&topic.0, &secret.0, &[CONTROL_LABEL]);
    let aad = control_aad(topic, prefix);
    let plain = Zeroizing::new(
        cipher(&key)
            .decrypt(&XNonce::from(*nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| E2eError::Refused {
                what: "key-change body",
            })?,
    );
    decode_ops(&plain)
}

fn encode_ops(ops: &[Op]) -> Result<Vec<u8>> {
    let count = u16::try_from(ops.len())
        .map_err(|_| E2eError::NotAllowed("too many operations in one record".into()))?;
    let mut b = count.to_le_bytes().to_vec();
    for op in ops {
        match op {
            Op::Add(k) => {
                b.push(1);
                b.extend_from_slice(&k.0);
            }
            Op::Remove(k) => {
                b.push(2);
                b.extend_from_slice(&k.0);
            }
            Op::Title(t) => {
                if t.len() > MAX_TITLE {
                    return Err(E2eError::NotAllowed(format!(
                        "a title of {} bytes; at most {MAX_TITLE}",
                        t.len()
                    )));
                }
                b.push(3);
                b.extend_from_slice(&(t.len() as u16).to_le_bytes());
                b.extend_from_slice(t.as_bytes());
            }
        }
    }
    Ok(b)
}

fn decode_ops(b: &[u8]) -> Result<Vec<Op>> {
    let mut r = Reader { rest: b };
    let count = u16::from_le_bytes(r.array("operation count")?) as usize;
    let mut ops = Vec::with_capacity(count.min(b.len() / 33 + 1));
    for _ in 0..count {
        let [tag] = r.array::<1>("operation")?;
        ops.push(match tag {
            1 => Op::Add(MemberKey(r.array("member key")?)),
            2 => Op::Remove(MemberKey(r.array("member key")?)),
            3 => {
                let len = u16::from_le_bytes(r.array("title length")?) as usize;
                if len > MAX_TITLE {
                    return Err(malformed("key-change body", "title too long"));
                }
                let t = r.take(len, "title")?;
                Op::Title(
                    String::from_utf8(t.to_vec())
                        .map_err(|_| malformed("key-change body", "title not UTF-8"))?,
                )
            }
            other => {
                return Err(malformed(
                    "key-change body",
                    format!("unknown operation {other}"),
                ));
            }
        });
    }
    if !r.rest.is_empty() {
        return Err(malformed("key-change body", "bytes after the operations"));
    }
    Ok(ops)
}

fn back_aad(topic: &TopicId, epoch: u64) -> [u8; 14 + 32 + 8] {
    crate::cat(&[BACK_LABEL, &topic.0, &epoch.to_le_bytes()])
}

/// Seals `prev` (the secret of `epoch - 1`) under `secret` (of `epoch`).
pub(crate) fn seal_back_link(
    topic: &TopicId,
    epoch: u64,
    secret: &EpochSecret,
    prev: &EpochSecret,
) -> Result<[u8; BACK_LINK_LEN]> {
    let key = derive(&topic.0, &secret.0, &[BACK_LABEL]);
    let nonce: [u8; 24] = random_array()?;
    let ct = cipher(&key)
        .encrypt(
            &XNonce::from(nonce),
            Payload {
                msg: &prev.0,
                aad: &back_aad(topic, epoch),
            },
        )
        .map_err(|_| E2eError::NotAllowed("back-link".into()))?;
    if ct.len() != 48 {
        return Err(malformed("back-link", "unexpected length"));
    }
    Ok(crate::cat(&[&nonce, &ct]))
}

/// Opens the back-link of `epoch` with its secret: the secret of
/// `epoch - 1`.
pub(crate) fn open_back_link(
    topic: &TopicId,
    epoch: u64,
    secret: &EpochSecret,
    link: &[u8; BACK_LINK_LEN],
) -> Result<EpochSecret> {
    let (nonce, ct) = link
        .split_first_chunk::<24>()
        .ok_or_else(|| malformed("back-link", "short"))?;
    let key = derive(&topic.0, &secret.0, &[BACK_LABEL]);
    let pt = Zeroizing::new(
        cipher(&key)
            .decrypt(
                &XNonce::from(*nonce),
                Payload {
                    msg: ct,
                    aad: &back_aad(topic, epoch),
                },
            )
            .map_err(|_| E2eError::Refused { what: "back-link" })?,
    );
    let k: [u8; 32] = pt
        .as_slice()
        .try_into()
        .map_err(|_| malformed("back-link", "not a secret"))?;
    Ok(EpochSecret(k))
}
