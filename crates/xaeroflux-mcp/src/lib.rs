//! A Model Context Protocol server over a Xaeroflux store, built on the
//! official Rust SDK (`rmcp`): an agent reads a user's local-first data,
//! adds to it when allowed, and proves to anyone what it read, with an
//! RFC 9162 Merkle proof against a signed checkpoint. `xf mcp` runs it
//! over stdio; an application can serve its own store the same way.
//!
//! ```
//! use std::sync::Arc;
//! use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
//! use xaeroflux::Core;
//! use xaeroflux_mcp::{McpServer, Options};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let core = Core::builder().open(dir.path())?;
//! core.append(core.new_event(b"hello"))?;
//! let server = McpServer::new(Arc::new(core), Options::default())?; // read-only tools
//!
//! let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! rt.block_on(async {
//!     let (client, server_end) = tokio::io::duplex(1 << 16);
//!     let (read, write) = tokio::io::split(server_end);
//!     let serving = tokio::spawn(async move { server.serve(read, write).await });
//!     let (client_read, mut client_write) = tokio::io::split(client);
//!     let mut lines = BufReader::new(client_read).lines();
//!     client_write.write_all(concat!(
//!         r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","#,
//!         r#""capabilities":{},"clientInfo":{"name":"doc","version":"1"}}}"#, "\n",
//!         r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#, "\n",
//!         r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_topic","#,
//!         r#""arguments":{"topic":"default"}}}"#, "\n",
//!     ).as_bytes()).await?;
//!     let init = lines.next_line().await?.unwrap_or_default();
//!     assert!(init.contains(r#""protocolVersion":"2025-11-25""#));
//!     let page = lines.next_line().await?.unwrap_or_default();
//!     assert!(page.contains(r#""payload":"hello""#));
//!     client_write.shutdown().await?; // the end of input ends the session
//!     serving.await??;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # Ok(()) }
//! ```
//!
//! The tools: `list_topics`, `read_topic`, `get_event`, `checkpoint`,
//! `prove_inclusion`, `verify_inclusion`, `stats`, all read-only; and
//! `append`, only with [`Options::allow_append`]. Each topic is the
//! resource `xf://topic/{name}`; subscribing to it brings
//! `notifications/resources/updated` as events commit there. The protocol
//! is in `docs/mcp.md`.
#![warn(missing_docs)]

mod args;
mod error;
mod handler;
mod page;
mod resources;
mod tools;
mod transport;
mod views;

use std::path::Path;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use xaeroflux::{Core, Error, StoreError};

pub use error::McpError;
pub use resources::{TOPIC_PREFIX, TOPIC_TEMPLATE, topic_uri};
pub use transport::{LineTransport, MAX_LINE};

use handler::Session;
use tools::{Appends, State};

/// How the server may use the store.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// Offer the `append` tool (off by default: the server only reads).
    pub allow_append: bool,
    /// Show private topics' plaintext to the agent, and let it append
    /// there (off by default: their events show as encrypted).
    pub allow_private: bool,
}

impl Options {
    /// Offers the `append` tool, or not.
    pub fn allow_append(mut self, allow: bool) -> Self {
        self.allow_append = allow;
        self
    }

    /// Shows private topics' plaintext, or not.
    pub fn allow_private(mut self, allow: bool) -> Self {
        self.allow_private = allow;
        self
    }
}

/// A tool's failure, shown to the caller as the tool's result with
/// `isError` set.
#[derive(Debug)]
pub(crate) struct ToolError(pub String);

impl ToolError {
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<Error> for ToolError {
    fn from(e: Error) -> Self {
        Self(e.report())
    }
}

macro_rules! tool_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for ToolError {
            fn from(e: $t) -> Self {
                Self(xaeroflux::report(&e))
            }
        }
    )*};
}
tool_error_from!(StoreError, xaeroflux::NetError, xaeroflux::MerkleError);

/// The MCP server of one store. Each [`McpServer::serve`] is one session;
/// sessions share the store.
pub struct McpServer {
    state: Arc<State>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("dir", &self.state.core.dir())
            .field("appends", &self.state.appends)
            .finish()
    }
}

impl McpServer {
    /// Opens the store in `dir` for the server: read-only beside any
    /// writer by default; for writing with `allow_append` (creating it if
    /// needed), or, when a node holds the store, read-only with appends
    /// handed to the node, as `xf append` does.
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Self, McpError> {
        let dir = dir.as_ref();
        let opened = |r: Result<Core, Error>| {
            r.map_err(|source| McpError::Open {
                dir: dir.to_path_buf(),
                source,
            })
        };
        let (core, appends) = if options.allow_append {
            match Core::builder().open(dir) {
                Ok(core) => (core, Appends::Store),
                Err(Error::Store(StoreError::Locked { .. }))
                    if xaeroflux::net::handoff::socket_path(dir).exists() =>
                {
                    let core = opened(Core::builder().read_only().open(dir))?;
                    (core, Appends::Node(dir.to_path_buf()))
                }
                Err(source) => {
                    return Err(McpError::Open {
                        dir: dir.to_path_buf(),
                        source,
                    });
                }
            }
        } else {
            (
                opened(Core::builder().read_only().open(dir))?,
                Appends::Refused,
            )
        };
        Self::with(Arc::new(core), appends, options.allow_private)
    }

    /// Serves a store the application has open. With `allow_append`, the
    /// store must be open for writing.
    pub fn new(core: Arc<Core>, options: Options) -> Result<Self, McpError> {
        let appends = match (options.allow_append, core.is_read_only()) {
            (false, _) => Appends::Refused,
            (true, false) => Appends::Store,
            (true, true) => return Err(McpError::ReadOnly),
        };
        Self::with(core, appends, options.allow_private)
    }

    fn with(core: Arc<Core>, appends: Appends, allow_private: bool) -> Result<Self, McpError> {
        let state = State::new(core, appends, allow_private).map_err(McpError::Session)?;
        Ok(Self {
            state: Arc::new(state),
        })
    }

    /// The store served.
    pub fn core(&self) -> &Arc<Core> {
        &self.state.core
    }

    /// The names of the tools offered.
    pub fn tool_names(&self) -> Vec<String> {
        self.state
            .tools
            .iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    /// Whether appends are handed to a node running on the store.
    pub fn appends_via_node(&self) -> bool {
        matches!(self.state.appends, Appends::Node(_))
    }

    /// Runs one session over `read` and `write` (one JSON-RPC message a
    /// line each way) until the input ends. A malformed message gets an
    /// error reply and the session goes on.
    pub async fn serve<R, W>(&self, read: R, write: W) -> Result<(), McpError>
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let session = Session::new(self.state.clone());
        let transport = LineTransport::new(BufReader::new(read), write);
        let running = match rmcp::serve_server(session.clone(), transport).await {
            Ok(r) => r,
            // The input ended before a session began: nothing to do.
            Err(rmcp::service::ServerInitializeError::ConnectionClosed(_)) => return Ok(()),
            Err(e) => return Err(McpError::Session(e.to_string())),
        };
        let ended = running.waiting().await;
        session.stop_watching().await;
        ended
            .map(|_| ())
            .map_err(|e| McpError::Session(e.to_string()))
    }

    /// Serves one session on standard input and output, on a runtime of
    /// its own, until standard input ends; then closes the store.
    pub fn run_stdio(self) -> Result<(), McpError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .max_blocking_threads(8)
            .thread_name("xf-mcp")
            .build()
            .map_err(McpError::Start)?;
        let served = rt.block_on(self.serve(tokio::io::stdin(), tokio::io::stdout()));
        // Blocking tasks still reading finish before the store closes.
        rt.shutdown_timeout(std::time::Duration::from_secs(10));
        let closed = self.close();
        served.and(closed)
    }

    /// Closes the store, once no session uses it.
    pub fn close(self) -> Result<(), McpError> {
        match Arc::try_unwrap(self.state) {
            Ok(state) => match Arc::try_unwrap(state.core) {
                Ok(core) => core.close().map_err(McpError::Close),
                // The application holds it too: it closes it.
                Err(_) => Ok(()),
            },
            Err(_) => Ok(()),
        }
    }
}
