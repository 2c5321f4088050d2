//! The one error of the bindings: a typed exception in every language.

use std::panic::{AssertUnwindSafe, catch_unwind};

use xaeroflux::{E2eError, Error, InvalidInput, MerkleError, NetError, StoreError};

/// Every failure the bindings raise. Each variant carries the whole chain
/// of causes as `reason`; the variant says what kind of failure it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum XaerofluxError {
    /// A topic name, log id, peer, backend name, key or address that is not
    /// valid.
    #[error("invalid input: {reason}")]
    InvalidInput {
        /// What was wrong.
        reason: String,
    },
    /// A payload larger than a page holds.
    #[error("payload too large: {reason}")]
    PayloadTooLarge {
        /// The sizes.
        reason: String,
    },
    /// A store, log or event that does not exist.
    #[error("not found: {reason}")]
    NotFound {
        /// What was missing.
        reason: String,
    },
    /// The store directory is held by another process.
    #[error("locked: {reason}")]
    Locked {
        /// Who holds it.
        reason: String,
    },
    /// An operating-system error (the OS's own words).
    #[error("I/O: {reason}")]
    Io {
        /// The file and the OS's reason.
        reason: String,
    },
    /// Bytes on disk or from a peer that are not what they should be.
    #[error("corrupt: {reason}")]
    Corrupt {
        /// File and offset, or the peer's reason.
        reason: String,
    },
    /// A proof or checkpoint that does not verify.
    #[error("does not verify: {reason}")]
    Verification {
        /// What failed.
        reason: String,
    },
    /// The network layer or a sync session failed.
    #[error("network: {reason}")]
    Network {
        /// What failed.
        reason: String,
    },
    /// The network is paused (`pause`); `resume` first.
    #[error("paused: {reason}")]
    Paused {
        /// What needed the network.
        reason: String,
    },
    /// End-to-end encryption refused: no key, not a member, not the
    /// controller, a ciphertext that does not authenticate.
    #[error("encryption: {reason}")]
    Encryption {
        /// Why.
        reason: String,
    },
    /// The store (or the subscription) has been closed.
    #[error("closed: {reason}")]
    Closed {
        /// What was closed.
        reason: String,
    },
    /// A listener implemented by the application failed.
    #[error("listener: {reason}")]
    Listener {
        /// The foreign error.
        reason: String,
    },
    /// A bug inside the library (a Rust panic), caught at the boundary.
    #[error("internal error: {reason}")]
    Internal {
        /// The panic's reason.
        reason: String,
    },
}

impl From<Error> for XaerofluxError {
    fn from(e: Error) -> Self {
        let reason = e.report();
        match &e {
            Error::Invalid(_) => XaerofluxError::InvalidInput { reason },
            Error::Store(s) => store(s, reason),
            Error::Net(NetError::Paused) => XaerofluxError::Paused { reason },
            Error::Net(
                NetError::UnknownBackend { .. }
                | NetError::InvalidPeer { .. }
                | NetError::InvalidTopic(_)
                | NetError::BackendMissing(_),
            ) => XaerofluxError::InvalidInput { reason },
            Error::Net(NetError::Store(s)) => store(s, reason),
            Error::Net(NetError::Io(_)) => XaerofluxError::Io { reason },
            Error::Net(NetError::Corrupt(_)) => XaerofluxError::Corrupt { reason },
            Error::Net(_) => XaerofluxError::Network { reason },
            Error::Sync(_) => XaerofluxError::Network { reason },
            Error::Merkle(_) => XaerofluxError::Verification { reason },
            Error::E2e(_) => XaerofluxError::Encryption { reason },
            Error::InUse(_) => XaerofluxError::Locked { reason },
            _ => XaerofluxError::Internal { reason },
        }
    }
}

fn store(e: &StoreError, reason: String) -> XaerofluxError {
    match e {
        StoreError::EventTooLarge { .. } => XaerofluxError::PayloadTooLarge { reason },
        StoreError::Invalid(_) | StoreError::InvalidArgument(_) => {
            XaerofluxError::InvalidInput { reason }
        }
        StoreError::UnknownLog(_)
        | StoreError::SizeOutOfRange { .. }
        | StoreError::SeqOutOfRange { .. }
        | StoreError::NoCheckpoint(_) => XaerofluxError::NotFound { reason },
        StoreError::Locked { .. } => XaerofluxError::Locked { reason },
        StoreError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            XaerofluxError::NotFound { reason }
        }
        StoreError::Io(_) => XaerofluxError::Io { reason },
        StoreError::Corrupt(_) | StoreError::UnsupportedVersion(_) | StoreError::Index { .. } => {
            XaerofluxError::Corrupt { reason }
        }
        StoreError::Merkle(_) => XaerofluxError::Verification { reason },
        StoreError::Closed | StoreError::WriterStopped(_) => XaerofluxError::Closed { reason },
        _ => XaerofluxError::Io { reason },
    }
}

impl From<StoreError> for XaerofluxError {
    fn from(e: StoreError) -> Self {
        Error::from(e).into()
    }
}

impl From<NetError> for XaerofluxError {
    fn from(e: NetError) -> Self {
        Error::from(e).into()
    }
}

impl From<InvalidInput> for XaerofluxError {
    fn from(e: InvalidInput) -> Self {
        Error::from(e).into()
    }
}

impl From<MerkleError> for XaerofluxError {
    fn from(e: MerkleError) -> Self {
        Error::from(e).into()
    }
}

impl From<E2eError> for XaerofluxError {
    fn from(e: E2eError) -> Self {
        Error::from(e).into()
    }
}

/// A foreign listener's exception, as Rust sees it.
impl From<uniffi::UnexpectedUniFFICallbackError> for XaerofluxError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        XaerofluxError::Listener { reason: e.reason }
    }
}

/// Runs `f`, turning a panic into [`XaerofluxError::Internal`] so that no
/// bug inside Rust crashes the application that called it.
pub(crate) fn guarded<T>(
    f: impl FnOnce() -> Result<T, XaerofluxError>,
) -> Result<T, XaerofluxError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let reason = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with no reason".into());
        Err(XaerofluxError::Internal { reason })
    })
}

#[cfg(test)]
#[allow(clippy::restriction)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_an_internal_error() {
        let r: Result<(), _> = guarded(|| panic!("boom"));
        assert_eq!(
            r,
            Err(XaerofluxError::Internal {
                reason: "boom".into()
            })
        );
        let r: Result<(), _> = guarded(|| panic!("{}", String::from("formatted")));
        assert!(matches!(r, Err(XaerofluxError::Internal { reason }) if reason == "formatted"));
    }
}
