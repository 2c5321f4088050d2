//! C2SP `tlog-checkpoint` bodies signed as C2SP `signed-note`s with Ed25519.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::{Hash, MerkleError, sha256};

/// Largest note this crate parses: far above any checkpoint it writes.
pub const MAX_NOTE_LEN: usize = 64 * 1024;
/// Ed25519 signature type byte of signed-note.
const ALG_ED25519: u8 = 0x01;
/// Signatures looked at in one note, at most.
const MAX_SIGNATURES: usize = 64;

/// The origin line of a Xaeroflux log: `xaeroflux.log/<author hex>/<topic id hex>`.
///
/// It is also the signed-note key name of the author's signature on that
/// log's checkpoints.
pub fn log_origin(author: &[u8; 32], topic_id: &[u8; 32]) -> String {
    format!(
        "xaeroflux.log/{}/{}",
        hex::encode(author),
        hex::encode(topic_id)
    )
}

/// The signed-note key id: `SHA-256(name || 0x0A || 0x01 || public key)[:4]`, big-endian.
pub fn key_id(name: &str, public: &[u8; 32]) -> u32 {
    let h = sha256(&[name.as_bytes(), b"\n", &[ALG_ED25519], public]);
    u32::from_be_bytes([h[0], h[1], h[2], h[3]])
}

/// The verifier key string `<name>+<key id hex>+<base64(0x01 || public key)>`.
pub fn verifier_key_string(name: &str, public: &[u8; 32]) -> String {
    let mut k = Vec::with_capacity(33);
    k.push(ALG_ED25519);
    k.extend_from_slice(public);
    format!("{name}+{:08x}+{}", key_id(name, public), B64.encode(k))
}

/// A tree head: origin, size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// Number of leaves.
    pub size: u64,
    /// RFC 9162 root at that size.
    pub root: Hash,
}

fn malformed(msg: impl Into<String>) -> MerkleError {
    MerkleError::MalformedNote(msg.into())
}

fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

impl Checkpoint {
    /// The note text: origin, size and base64 root, each line ending in a newline.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a checkpoint body; extension lines after the root are ignored.
    pub fn parse_body(text: &str) -> Result<Self, MerkleError> {
        if !text.ends_with('\n') {
            return Err(malformed("checkpoint text does not end in a newline"));
        }
        let mut lines = text[..text.len() - 1].split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(malformed("empty origin line"));
        }
        let size_line = lines.next().ok_or_else(|| malformed("missing size line"))?;
        let canonical = size_line == "0"
            || (!size_line.is_empty()
                && !size_line.starts_with('0')
                && size_line.bytes().all(|b| b.is_ascii_digit()));
        if !canonical {
            return Err(malformed(format!(
                "size line {size_line:?} is not a decimal number"
            )));
        }
        let size = size_line
            .parse::<u64>()
            .map_err(|_| malformed("size does not fit 64 bits"))?;
        let root_line = lines.next().ok_or_else(|| malformed("missing root line"))?;
        let root_bytes = B64
            .decode(root_line)
            .map_err(|_| malformed("root line is not base64"))?;
        let root: Hash = root_bytes
            .try_into()
            .map_err(|_| malformed("root is not 32 bytes"))?;
        for ext in lines {
            if ext.is_empty() {
                return Err(malformed("empty extension line"));
            }
        }
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

/// Reads the checkpoint of a signed note *without* checking its signatures.
///
/// Only for deciding whether a note needs verifying at all (a receiver that
/// already holds the log at the note's size and root has nothing to learn
/// from it); what it returns is the peer's claim and must not be stored or
/// acted on. The same bounds as [`NoteVerifier::verify_note`] apply.
pub fn peek_checkpoint(note: &str) -> Result<Checkpoint, MerkleError> {
    if note.len() > MAX_NOTE_LEN {
        return Err(malformed(format!(
            "note is longer than {MAX_NOTE_LEN} bytes"
        )));
    }
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("no blank line before the signatures"))?;
    Checkpoint::parse_body(&note[..split + 1])
}

/// A checkpoint together with its signed note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The parsed tree head.
    pub checkpoint: Checkpoint,
    /// The whole signed note, exactly as C2SP specifies.
    pub note: String,
}

/// Signs a checkpoint as a signed note whose key name is the checkpoint's origin.
pub fn sign_checkpoint(cp: &Checkpoint, key: &SigningKey) -> SignedCheckpoint {
    let body = cp.body();
    let public = key.verifying_key().to_bytes();
    let sig = key.sign(body.as_bytes());
    let mut blob = Vec::with_capacity(68);
    blob.extend_from_slice(&key_id(&cp.origin, &public).to_be_bytes());
    blob.extend_from_slice(&sig.to_bytes());
    let note = format!("{body}\n\u{2014} {} {}\n", cp.origin, B64.encode(blob));
    SignedCheckpoint {
        checkpoint: cp.clone(),
        note,
    }
}

/// A signed-note verifier for one Ed25519 key and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl NoteVerifier {
    /// A verifier for `public` under key name `name`.
    pub fn new(name: &str, public: &[u8; 32]) -> Result<Self, MerkleError> {
        if !valid_key_name(name) {
            return Err(malformed(format!("invalid key name {name:?}")));
        }
        let key = VerifyingKey::from_bytes(public)
            .map_err(|_| MerkleError::BadSignature("not an Ed25519 public key".into()))?;
        Ok(Self {
            name: name.to_string(),
            id: key_id(name, public),
            key,
        })
    }

    /// Parses a verifier key string `<name>+<hex id>+<base64 key>`.
    pub fn parse(vkey: &str) -> Result<Self, MerkleError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("verifier key needs name+id+key"));
        };
        let id = u32::from_str_radix(id, 16).map_err(|_| malformed("key id is not hex"))?;
        let key = B64
            .decode(key)
            .map_err(|_| malformed("key is not base64"))?;
        let public: [u8; 32] = match key.split_first() {
            Some((&ALG_ED25519, rest)) => rest
                .try_into()
                .map_err(|_| malformed("not an Ed25519 verifier key"))?,
            _ => return Err(malformed("not an Ed25519 verifier key")),
        };
        let v = Self::new(name, &public)?;
        if v.id != id {
            return Err(malformed("key id does not match the key"));
        }
        Ok(v)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The verifier key string.
    pub fn to_key_string(&self) -> String {
        verifier_key_string(&self.name, &self.key.to_bytes())
    }

    /// Verifies a signed note and returns its text (with the final newline).
    ///
    /// Every signature by this key must verify, and there must be one.
    pub fn verify_note<'n>(&self, note: &'n str) -> Result<&'n str, MerkleError> {
        if note.len() > MAX_NOTE_LEN {
            return Err(malformed(format!(
                "note is longer than {MAX_NOTE_LEN} bytes"
            )));
        }
        if note.chars().any(|c| c < ' ' && c != '\n') {
            return Err(malformed("note contains a control character"));
        }
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| malformed("no blank line before the signatures"))?;
        let text = &note[..split + 1];
        let sigs = &note[split + 2..];
        if !sigs.ends_with('\n') {
            return Err(malformed("signature block does not end in a newline"));
        }
        let mut found = false;
        for (i, line) in sigs[..sigs.len() - 1].split('\n').enumerate() {
            if i >= MAX_SIGNATURES {
                return Err(malformed("too many signatures"));
            }
            let rest = line
                .strip_prefix("\u{2014} ")
                .ok_or_else(|| malformed("signature line does not start with an em dash"))?;
            let (name, b64) = rest
                .split_once(' ')
                .ok_or_else(|| malformed("signature line has no signature"))?;
            let blob = B64
                .decode(b64)
                .map_err(|_| malformed("signature is not base64"))?;
            let Some((id, sig)) = blob.split_first_chunk::<4>().filter(|(_, s)| !s.is_empty())
            else {
                return Err(malformed("signature is too short"));
            };
            let id = u32::from_be_bytes(*id);
            if name != self.name || id != self.id {
                continue; // another key's signature: ignored, as the spec says
            }
            let sig: [u8; 64] = sig.try_into().map_err(|_| {
                MerkleError::BadSignature("Ed25519 signature is not 64 bytes".into())
            })?;
            self.key
                .verify_strict(text.as_bytes(), &Signature::from_bytes(&sig))
                .map_err(|_| {
                    MerkleError::BadSignature(format!("signature by {name} does not verify"))
                })?;
            found = true;
        }
        if !found {
            return Err(MerkleError::BadSignature(format!(
                "no signature by {}",
                self.name
            )));
        }
        Ok(text)
    }

    /// Verifies a signed checkpoint note and parses it; its origin must be
    /// this key's name.
    pub fn verify_checkpoint(&self, note: &str) -> Result<Checkpoint, MerkleError> {
        let text = self.verify_note(note)?;
        let cp = Checkpoint::parse_body(text)?;
        if cp.origin != self.name {
            return Err(malformed(format!(
                "checkpoint origin {:?} is not the key name {:?}",
                cp.origin, self.name
            )));
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    /// A checkpoint of size 42 signed by key 7, and its origin.
    fn fixture() -> (SigningKey, String, Checkpoint, SignedCheckpoint) {
        let k = key(7);
        let origin = log_origin(&k.verifying_key().to_bytes(), &[9; 32]);
        let cp = Checkpoint {
            origin: origin.clone(),
            size: 42,
            root: [3; 32],
        };
        let signed = sign_checkpoint(&cp, &k);
        (k, origin, cp, signed)
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let (k, origin, cp, signed) = fixture();
        assert!(signed.note.starts_with(&format!("{origin}\n42\n")));
        let v = NoteVerifier::new(&origin, &k.verifying_key().to_bytes()).unwrap();
        assert_eq!(v.verify_checkpoint(&signed.note).unwrap(), cp);
        let parsed = NoteVerifier::parse(&v.to_key_string()).unwrap();
        assert_eq!(parsed, v);
    }

    #[test]
    fn wrong_key_and_tampered_text_fail() {
        let (k, origin, _, signed) = fixture();
        let other = NoteVerifier::new(&origin, &key(8).verifying_key().to_bytes()).unwrap();
        assert!(matches!(
            other.verify_checkpoint(&signed.note),
            Err(MerkleError::BadSignature(_))
        ));
        let v = NoteVerifier::new(&origin, &k.verifying_key().to_bytes()).unwrap();
        let tampered = signed.note.replacen("\n42\n", "\n43\n", 1);
        assert!(v.verify_checkpoint(&tampered).is_err());
    }

    #[test]
    fn bodies_must_be_canonical() {
        let good = format!("o\n5\n{}\n", B64.encode([0u8; 32]));
        assert!(Checkpoint::parse_body(&good).is_ok());
        for bad in [
            format!("o\n05\n{}\n", B64.encode([0u8; 32])),
            format!("o\n-5\n{}\n", B64.encode([0u8; 32])),
            format!("\n5\n{}\n", B64.encode([0u8; 32])),
            format!("o\n5\n{}", B64.encode([0u8; 32])),
            format!("o\n5\n{}\n", B64.encode([0u8; 31])),
            "o\n5\n".to_string(),
        ] {
            assert!(Checkpoint::parse_body(&bad).is_err(), "{bad:?}");
        }
    }
}
