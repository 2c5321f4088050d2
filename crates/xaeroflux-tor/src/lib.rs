//! The anonymous mode of Xaeroflux: stores that sync over Tor onion
//! services, so that no peer, relay or network observer learns their IP
//! address. XSP runs in live sessions (`xaeroflux_sync::live`) over Tor
//! streams; this crate holds what binds an onion service to a store.
//!
//! An [`OnionTicket`] is what a store hands out to be dialed: its author
//! key, its onion service's identity key and port, and the author's
//! signature over the last two. Tor makes sure a dialer reaches the holder
//! of the onion service's key; the signature makes sure that service is
//! the author's, so a peer knows it reached the author it meant to.
//!
//! ```
//! use xaeroflux_store::{Store, StoreOptions};
//! use xaeroflux_tor::OnionTicket;
//!
//! let dir = tempfile::tempdir()?;
//! let store = Store::open(dir.path(), StoreOptions::default())?;
//! // The onion service's identity key (Arti makes and keeps it).
//! let service = [7u8; 32];
//! let ticket = OnionTicket::issue(&store, service, 7650);
//! let text = ticket.to_string();
//! assert!(text.starts_with("xfonion1"));
//!
//! let theirs: OnionTicket = text.parse()?; // checks the signature
//! assert_eq!(theirs.author, store.author());
//! assert!(theirs.dial_address().ends_with(".onion:7650"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod onion;
mod ticket;

pub use onion::{onion_address, parse_onion_address};
pub use ticket::{BINDING_DOMAIN, OnionTicket, TICKET_PREFIX};

/// What goes wrong with tickets and onion addresses.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TorError {
    /// An onion ticket that does not parse: wrong prefix or version, bad
    /// encoding, wrong length.
    #[error("not an onion ticket: {0}")]
    BadTicket(String),
    /// An onion address that is not a valid v3 address.
    #[error("not a v3 onion address: {0}")]
    BadOnionAddress(String),
    /// The ticket's signature is not the author's over its onion service.
    #[error("the ticket's onion service is not vouched for by its author: {0}")]
    NotVouched(String),
}
