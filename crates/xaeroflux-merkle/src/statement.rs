//! Signed statements: an author key vouching for a fact other than a
//! checkpoint (such as "my onion service is this one"). The signed bytes
//! start with a prefix that holds a NUL, which a signed note's text never
//! does, and name the kind of statement (its domain), so a statement can
//! be taken neither for a checkpoint nor for a statement of another kind.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

use crate::MerkleError;

/// What every signed statement starts with.
const PREFIX: &[u8] = b"xaeroflux statement v1\0";

/// The bytes an author key signs for `message` in `domain`.
fn signed_bytes(domain: &str, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(PREFIX.len() + domain.len() + 1 + message.len());
    out.extend_from_slice(PREFIX);
    out.extend_from_slice(domain.as_bytes());
    out.push(0);
    out.extend_from_slice(message);
    out
}

/// Signs `message` as a statement of kind `domain` (no NUL in it).
pub fn sign_statement(key: &SigningKey, domain: &str, message: &[u8]) -> [u8; 64] {
    key.sign(&signed_bytes(domain, message)).to_bytes()
}

/// Checks that `author` signed `message` as a statement of kind `domain`.
pub fn verify_statement(
    author: &[u8; 32],
    domain: &str,
    message: &[u8],
    signature: &[u8; 64],
) -> Result<(), MerkleError> {
    let key = VerifyingKey::from_bytes(author)
        .map_err(|e| MerkleError::BadSignature(format!("author key: {e}")))?;
    key.verify_strict(
        &signed_bytes(domain, message),
        &Signature::from_bytes(signature),
    )
    .map_err(|_| MerkleError::BadSignature(format!("not a {domain} statement by this author")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_verifies_only_as_signed() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let author = key.verifying_key().to_bytes();
        let sig = sign_statement(&key, "onion-binding", b"abc");
        verify_statement(&author, "onion-binding", b"abc", &sig).unwrap();
        assert!(verify_statement(&author, "onion-binding", b"abd", &sig).is_err());
        assert!(verify_statement(&author, "other", b"abc", &sig).is_err());
        let other = SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes();
        assert!(verify_statement(&other, "onion-binding", b"abc", &sig).is_err());
        // Moving the domain/message boundary changes the signed bytes.
        let shifted = sign_statement(&key, "onion", b"-bindingabc");
        assert_ne!(shifted, sig);
    }
}
