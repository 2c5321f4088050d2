//! The one error of the bindings: a typed exception in every language.

use std::panic::{AssertUnwindSafe, catch_unwind};

use xaeroflux::{E2eError, Error, InvalidInput, MerkleError, NetError, StoreError};

/// Every failure the bindings raise. Each variant carries the whole chain
/// of causes as `message`; the variant says what kind of failure it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
#[non_exhaustive]
pub enum XaerofluxError {
    /// A topic name, log id, peer, backend name, key or address that is not
    /// valid.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What was wrong.
        message: String,
    },
    /// A payload larger than a page holds.
    #[error("payload too large: {message}")]
    PayloadTooLarge {
        /// The sizes.
        message: String,
    },
    /// A store, log or event that does not exist.
    #[error("not found: {message}")]
    NotFound {
        /// What was missing.
        message: String,
    },
    /// The store directory is held by another process.
    #[error("locked: {message}")]
    Locked {
        /// Who holds it.
        message: String,
    },
    /// An operating-system error (the OS's own words).
    #[error("I/O: {message}")]
    Io {
        /// The file and the OS's message.
        message: String,
    },
    /// Bytes on disk or from a peer that are not what they should be.
    #[error("corrupt: {message}")]
    Corrupt {
        /// File and offset, or the peer's message.
        message: String,
    },
    /// A proof or checkpoint that does not verify.
    #[error("does not verify: {message}")]
    Verification {
        /// What failed.
        message: String,
    },
    /// The network layer or a sync session failed.
    #[error("network: {message}")]
    Network {
        /// What failed.
        message: String,
    },
    /// The network is paused (`pause`); `resume` first.
    #[error("paused: {message}")]
    Paused {
        /// What needed the network.
        message: String,
    },
    /// End-to-end encryption refused: no key, not a member, not the
    /// controller, a ciphertext that does not authenticate.
    #[error("encryption: {message}")]
    Encryption {
        /// Why.
        message: String,
    },
    /// The store (or the subscription) has been closed.
    #[error("closed: {message}")]
    Closed {
        /// What was closed.
        message: String,
    },
    /// A listener implemented by the application failed.
    #[error("listener: {message}")]
    Listener {
        /// The foreign error.
        message: String,
    },
    /// A bug inside the library (a Rust panic), caught at the boundary.
    #[error("internal error: {message}")]
    Internal {
        /// The panic's message.
        message: String,
    },
}

impl From<Error> for XaerofluxError {
    fn from(e: Error) -> Self {
        let message = e.report();
        match &e {
            Error::Invalid(_) => XaerofluxError::InvalidInput { message },
            Error::Store(s) => store(s, message),
            Error::Net(NetError::Paused) => XaerofluxError::Paused { message },
            Error::Net(
                NetError::UnknownBackend { .. }
                | NetError::InvalidPeer { .. }
                | NetError::InvalidTopic(_)
                | NetError::BackendMissing(_),
            ) => XaerofluxError::InvalidInput { message },
            Error::Net(NetError::Store(s)) => store(s, message),
            Error::Net(NetError::Io(_)) => XaerofluxError::Io { message },
            Error::Net(NetError::Corrupt(_)) => XaerofluxError::Corrupt { message },
            Error::Net(_) => XaerofluxError::Network { message },
            Error::Sync(_) => XaerofluxError::Network { message },
            Error::Merkle(_) => XaerofluxError::Verification { message },
            Error::E2e(_) => XaerofluxError::Encryption { message },
            Error::InUse(_) => XaerofluxError::Locked { message },
            _ => XaerofluxError::Internal { message },
        }
    }
}

fn store(e: &StoreError, message: String) -> XaerofluxError {
    match e {
        StoreError::EventTooLarge { .. } => XaerofluxError::PayloadTooLarge { message },
        StoreError::Invalid(_) | StoreError::InvalidArgument(_) => {
            XaerofluxError::InvalidInput { message }
        }
        StoreError::UnknownLog(_)
        | StoreError::SizeOutOfRange { .. }
        | StoreError::SeqOutOfRange { .. }
        | StoreError::NoCheckpoint(_) => XaerofluxError::NotFound { message },
        StoreError::Locked { .. } => XaerofluxError::Locked { message },
        StoreError::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
            XaerofluxError::NotFound { message }
        }
        StoreError::Io(_) => XaerofluxError::Io { message },
        StoreError::Corrupt(_) | StoreError::UnsupportedVersion(_) | StoreError::Index { .. } => {
            XaerofluxError::Corrupt { message }
        }
        StoreError::Merkle(_) => XaerofluxError::Verification { message },
        StoreError::Closed | StoreError::WriterStopped(_) => XaerofluxError::Closed { message },
        _ => XaerofluxError::Io { message },
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
        XaerofluxError::Listener { message: e.reason }
    }
}

/// Runs `f`, turning a panic into [`XaerofluxError::Internal`] so that no
/// bug inside Rust crashes the application that called it.
pub(crate) fn guarded<T>(
    f: impl FnOnce() -> Result<T, XaerofluxError>,
) -> Result<T, XaerofluxError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| {
        let message = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic with no message".into());
        Err(XaerofluxError::Internal { message })
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
                message: "boom".into()
            })
        );
        let r: Result<(), _> = guarded(|| panic!("{}", String::from("formatted")));
        assert!(matches!(r, Err(XaerofluxError::Internal { message }) if message == "formatted"));
    }
}
