//! What can stop the server (as opposed to what a single request gets
//! back: a JSON-RPC error or a tool error, and the server goes on).

use std::path::PathBuf;

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum McpError {
    /// The store could not be opened.
    #[error("opening {}: {source}", dir.display())]
    Open {
        /// The store directory.
        dir: PathBuf,
        /// What the store said.
        #[source]
        source: xaeroflux::Error,
    },
    /// `allow_append` on a store opened read-only: there is no writer to
    /// append with.
    #[error("appends were allowed on a read-only store")]
    ReadOnly,
    /// The MCP session could not be set up or ended with a failure.
    #[error("MCP session: {0}")]
    Session(String),
    /// The server's worker threads or runtime could not start.
    #[error("starting the server: {0}")]
    Start(#[source] std::io::Error),
    /// The store failed while closing.
    #[error(transparent)]
    Close(xaeroflux::Error),
}
