//! Onion tickets: where to dial a store over Tor, vouched for by the
//! store's author key. Format in `docs/tor.md`.

use std::fmt;
use std::str::FromStr;

use xaeroflux_merkle::verify_statement;
use xaeroflux_store::Store;

use crate::TorError;
use crate::onion::onion_address;

/// What every onion ticket starts with: the kind, then the format version.
pub const TICKET_PREFIX: &str = "xfonion1";

/// The kind of statement the author signs in a ticket
/// (`xaeroflux_merkle::sign_statement`): its onion service's key and port.
pub const BINDING_DOMAIN: &str = "onion-binding";

/// Bytes after the prefix: author, service key, port, signature.
const BODY: usize = 32 + 32 + 2 + 64;

/// Where to reach a store over Tor, and the author's word for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnionTicket {
    /// The store's author key (its identity; the node id in XSP's `HELLO`).
    pub author: [u8; 32],
    /// The onion service's ed25519 identity key (its address, see
    /// [`OnionTicket::onion_address`]).
    pub service: [u8; 32],
    /// The onion service's virtual port that carries XSP.
    pub port: u16,
    /// The author's signature over the service key and port, as a
    /// statement of kind [`BINDING_DOMAIN`].
    pub signature: [u8; 64],
}

/// The statement a ticket's signature covers.
fn binding(service: &[u8; 32], port: u16) -> Vec<u8> {
    let mut m = Vec::with_capacity(34);
    m.extend_from_slice(service);
    m.extend_from_slice(&port.to_be_bytes());
    m
}

impl OnionTicket {
    /// The ticket of `store` for its onion service `service` on `port`,
    /// signed with the store's author key.
    pub fn issue(store: &Store, service: [u8; 32], port: u16) -> Self {
        OnionTicket {
            author: store.author(),
            service,
            port,
            signature: store.sign_statement(BINDING_DOMAIN, &binding(&service, port)),
        }
    }

    /// Checks that the author vouched for this service and port.
    pub fn verify(&self) -> Result<(), TorError> {
        verify_statement(
            &self.author,
            BINDING_DOMAIN,
            &binding(&self.service, self.port),
            &self.signature,
        )
        .map_err(|e| TorError::NotVouched(e.to_string()))
    }

    /// The onion service's address (`<56 characters>.onion`).
    pub fn onion_address(&self) -> String {
        onion_address(&self.service)
    }

    /// What a Tor client dials: `<address>.onion:<port>`.
    pub fn dial_address(&self) -> String {
        format!("{}:{}", self.onion_address(), self.port)
    }
}

impl fmt::Display for OnionTicket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut body = Vec::with_capacity(BODY);
        body.extend_from_slice(&self.author);
        body.extend_from_slice(&self.service);
        body.extend_from_slice(&self.port.to_be_bytes());
        body.extend_from_slice(&self.signature);
        let text = data_encoding::BASE32_NOPAD
            .encode(&body)
            .to_ascii_lowercase();
        write!(f, "{TICKET_PREFIX}{text}")
    }
}

impl FromStr for OnionTicket {
    type Err = TorError;

    /// Parses a ticket and checks its signature: a ticket that parses is
    /// one its author vouched for.
    fn from_str(s: &str) -> Result<Self, TorError> {
        let s = s.trim();
        let text = s
            .get(..TICKET_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(TICKET_PREFIX))
            .and_then(|_| s.get(TICKET_PREFIX.len()..))
            .ok_or_else(|| {
                let kind = s.get(..8).unwrap_or(s);
                TorError::BadTicket(format!(
                    "it starts with {kind:?}, not {TICKET_PREFIX:?} (an onion ticket of version 1)"
                ))
            })?;
        // The encoded length is checked before decoding allocates.
        if text.len() != data_encoding::BASE32_NOPAD.encode_len(BODY) {
            return Err(TorError::BadTicket(format!(
                "{} characters after the prefix, not {}",
                text.len(),
                data_encoding::BASE32_NOPAD.encode_len(BODY)
            )));
        }
        let body = data_encoding::BASE32_NOPAD
            .decode(text.to_ascii_uppercase().as_bytes())
            .map_err(|e| TorError::BadTicket(format!("base32: {e}")))?;
        let (author, rest) = body
            .split_first_chunk::<32>()
            .ok_or_else(|| TorError::BadTicket("short".into()))?;
        let (service, rest) = rest
            .split_first_chunk::<32>()
            .ok_or_else(|| TorError::BadTicket("short".into()))?;
        let (port, rest) = rest
            .split_first_chunk::<2>()
            .ok_or_else(|| TorError::BadTicket("short".into()))?;
        let signature: [u8; 64] = rest
            .try_into()
            .map_err(|_| TorError::BadTicket("the signature is not 64 bytes".into()))?;
        let ticket = OnionTicket {
            author: *author,
            service: *service,
            port: u16::from_be_bytes(*port),
            signature,
        };
        ticket.verify()?;
        Ok(ticket)
    }
}
