//! The one error type of the facade.

use xaeroflux_merkle::MerkleError;
use xaeroflux_net::NetError;
use xaeroflux_store::{InvalidInput, StoreError};
use xaeroflux_sync::SyncError;

/// Any error of the crates [`crate::Core`] wires together. The variant
/// says which part failed; each keeps its cause as its `source`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The network layer refused or failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// A sync session failed.
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// A proof or checkpoint did not verify.
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    /// A topic name, log id or event kind that is not valid.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// End-to-end encryption refused: a ciphertext that does not
    /// authenticate, no key for an epoch, a bad key change, or an
    /// operation only the controller or a member may do.
    #[error(transparent)]
    E2e(#[from] xaeroflux_e2e::E2eError),
    /// `close` could not close the store: something the application still
    /// holds keeps it open (it closes when that is dropped).
    #[error("the store is still in use: {0}")]
    InUse(String),
    /// A typed event could not be written or read as the type asked for.
    #[error(transparent)]
    Typed(#[from] crate::typed::TypedError),
}

impl Error {
    /// The error and its chain of causes on one line, each cause once
    /// (a cause whose text the line already holds is not repeated).
    pub fn report(&self) -> String {
        report(self)
    }
}

/// Any error and its chain of causes on one line, each cause once.
pub fn report(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}
