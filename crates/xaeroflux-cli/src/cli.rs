//! The command line: every command, flag and argument of `xf`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "xf",
    version,
    about = "Xaeroflux: a verifiable, append-only event store"
)]
pub struct Cli {
    /// Store directory (default: the per-user data directory).
    #[arg(long, global = true, value_name = "DIR")]
    pub db: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Create the store and its identity.
    Init,
    /// Print the author key, the member key (for private topics) and the
    /// verifier keys of the store's own logs.
    Id {
        /// Also print the verifier key of this topic's log.
        #[arg(long)]
        topic: Option<String>,
        /// As one JSON object.
        #[arg(long)]
        json: bool,
        /// Make a new member key (the old one is kept to read history).
        #[arg(long)]
        rotate_member_key: bool,
    },
    /// Create a topic: private (end-to-end encrypted) topics are created;
    /// plain ones exist from their first event.
    Topic {
        #[command(subcommand)]
        what: TopicCmd,
    },
    /// List, add or remove the members of a private topic.
    Members {
        /// The private topic's name.
        #[arg(long, global = true)]
        topic: Option<String>,
        /// One JSON object per member.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        change: Option<MembersCmd>,
    },
    /// Append events to the store's own log in a topic.
    Append(AppendArgs),
    /// List the logs.
    Logs {
        /// One JSON object per log.
        #[arg(long)]
        json: bool,
    },
    /// Print every event of a log.
    Dump {
        #[command(flatten)]
        log: LogArg,
        /// One JSON object per event.
        #[arg(long)]
        json: bool,
    },
    /// Print the payloads of a topic view, one per line.
    Cat {
        /// Topic name.
        #[arg(long)]
        topic: String,
        /// Then print new events as they are committed, until interrupted.
        #[arg(long, short, conflicts_with_all = ["until", "last"])]
        follow: bool,
        /// Only events at or after this moment: milliseconds since the Unix
        /// epoch, an RFC 3339 time (2026-12-01T18:00:00Z), or a time ago
        /// (90s, 15m, 2h, 7d). Read through the index by time.
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only events before this moment (same forms as --since).
        #[arg(long, value_name = "WHEN")]
        until: Option<String>,
        /// Only the last N events (of the --since/--until window, if given).
        #[arg(long, value_name = "N")]
        last: Option<u64>,
        /// One JSON object per event.
        #[arg(long)]
        json: bool,
    },
    /// Documents: op-based CRDTs (maps, counters, sets, registers) whose
    /// operations are events of a topic.
    Doc {
        #[command(subcommand)]
        what: DocCmd,
    },
    /// Print a log's signed checkpoint (a C2SP signed note).
    Checkpoint {
        #[command(flatten)]
        log: LogArg,
    },
    /// Print an inclusion or consistency proof.
    Prove {
        #[command(subcommand)]
        what: Prove,
    },
    /// Check every page, record, tree root and checkpoint signature.
    Verify,
    /// Rebuild the index from the segments (the damaged index is kept aside).
    Repair,
    /// Print the store's sizes.
    Stat {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Answer XSP sync sessions on a TCP address until interrupted; one
    /// line per session.
    Serve {
        /// Address to listen on, such as 127.0.0.1:7411.
        #[arg(long, value_name = "ADDR")]
        tcp: String,
    },
    /// Run one XSP sync session with a peer and print what moved.
    Sync {
        /// The peer's address.
        #[arg(long, value_name = "ADDR")]
        tcp: String,
        /// Only these topics (repeatable; default: every topic either side holds).
        #[arg(long = "topic", value_name = "NAME")]
        topics: Vec<String>,
        /// Seconds the peer may stay silent.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// List the fork proofs kept: logs whose author signed two heads that
    /// disagree, as presented by peers during sync.
    Forks {
        /// One JSON object per fork.
        #[arg(long)]
        json: bool,
    },
    /// Run a node in the foreground: join topics over iroh, sync with
    /// peers, serve appends from `xf append` on the same store. Prints
    /// `node <ticket>`, then one line per sync event.
    Node(NodeArgs),
    /// Run the demo: three nodes on loopback converge on a shared topic.
    Demo,
    /// Serve the store to an agent over the Model Context Protocol, on
    /// standard input and output, until the input ends. Read-only unless
    /// --allow-append.
    #[cfg(feature = "mcp")]
    Mcp {
        /// Offer the `append` tool (events go to the store's own logs,
        /// through the node when one runs on the store).
        #[arg(long)]
        allow_append: bool,
        /// Show private topics' plaintext (with this store's keys) and let
        /// appends go there; without it their events show as encrypted.
        #[arg(long)]
        allow_private: bool,
    },
}

#[derive(Subcommand)]
pub enum TopicCmd {
    /// Create a topic.
    Create {
        /// A private topic with a random name, this store its controller.
        #[arg(long)]
        encrypted: bool,
        /// Its title (travels encrypted).
        #[arg(long)]
        title: Option<String>,
        /// As one JSON object.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum DocCmd {
    /// Set KEY to VALUE in the map MAP (last writer wins).
    Set {
        /// Topic of the document.
        #[arg(long)]
        topic: String,
        /// The map's name.
        map: String,
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
    /// Delete KEY from the map MAP.
    Del {
        /// Topic of the document.
        #[arg(long)]
        topic: String,
        /// The map's name.
        map: String,
        /// The key.
        key: String,
    },
    /// Add N (negative to subtract) to the counter COUNTER.
    Add {
        /// Topic of the document.
        #[arg(long)]
        topic: String,
        /// The counter's name.
        counter: String,
        /// How much to add; may be negative (`xf doc add --topic T likes -1`).
        #[arg(allow_negative_numbers = true)]
        n: i64,
    },
    /// Insert ELEMENT into the set SET.
    Insert {
        /// Topic of the document.
        #[arg(long)]
        topic: String,
        /// The set's name.
        set: String,
        /// The element.
        element: String,
    },
    /// Remove ELEMENT from the set SET (the adds this store has seen).
    Remove {
        /// Topic of the document.
        #[arg(long)]
        topic: String,
        /// The set's name.
        set: String,
        /// The element.
        element: String,
    },
    /// Set the register NAME to VALUE (last writer wins).
    Put {
        /// Topic of the document.
        #[arg(long)]
        topic: String,
        /// The register's name.
        name: String,
        /// The value.
        value: String,
    },
    /// Print the document's state.
    Get {
        /// Topic of the document.
        #[arg(long)]
        topic: String,
        /// The whole state as one JSON object keyed by each CRDT's name:
        /// maps as objects, counters as numbers, sets as sorted arrays.
        #[arg(long)]
        json: bool,
        /// The state as it was at this moment (the operations stamped
        /// before it; same forms as `xf cat --since`).
        #[arg(long, value_name = "WHEN")]
        at: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum MembersCmd {
    /// Add a member by its member key (controller only).
    Add {
        /// The member key, 64 hex digits (`xf id` prints it).
        key: String,
    },
    /// Remove a member: a new epoch it never gets the key of.
    Remove {
        /// The member key.
        key: String,
    },
}

#[derive(Args)]
pub struct NodeArgs {
    /// A topic to join (repeatable).
    #[arg(long = "topic", value_name = "NAME", required = true)]
    pub topics: Vec<String>,
    /// A peer: an iroh ticket, ID@IP:PORT, or an endpoint id (repeatable).
    #[arg(long = "peer", value_name = "TICKET_OR_ID@ADDR")]
    pub peers: Vec<String>,
    /// Bind only --listen, with relays, address lookup and port mapping
    /// off (for tests and LAN use).
    #[arg(long)]
    pub local_only: bool,
    /// Address to bind in the local-only mode.
    #[arg(
        long,
        value_name = "ADDR",
        requires = "local_only",
        default_value = "127.0.0.1:0"
    )]
    pub listen: std::net::SocketAddr,
    /// Sync backends to run.
    #[arg(long = "backend", value_name = "NAME", default_values_t = ["iroh".to_string(), "iroh-gossip".to_string(), "iroh-blob".to_string()])]
    pub backends: Vec<String>,
    /// Seconds between syncs with every known peer, besides gossip.
    #[arg(long, default_value_t = 30)]
    pub sync_interval: u64,
}

#[derive(Args)]
pub struct AppendArgs {
    /// Topic name.
    #[arg(long)]
    pub topic: String,
    /// Event kind.
    #[arg(long, default_value = "application")]
    pub kind: String,
    /// Payload, as text.
    #[arg(conflicts_with_all = ["file", "lines"])]
    pub data: Option<String>,
    /// Read the payload from a file.
    #[arg(long, conflicts_with = "lines")]
    pub file: Option<PathBuf>,
    /// Append each line of standard input as one event.
    #[arg(long)]
    pub lines: bool,
    /// Fast mode: report each event once written, before it is
    /// synced (a process crash loses nothing; a power loss may lose the
    /// last moments).
    #[arg(long)]
    pub fast: bool,
}

#[derive(Args)]
pub struct LogArg {
    /// Log as AUTHOR_HEX/TOPIC_ID_HEX.
    #[arg(long, conflicts_with = "topic")]
    pub log: Option<String>,
    /// The store's own log in this topic.
    #[arg(long)]
    pub topic: Option<String>,
}

#[derive(Subcommand)]
pub enum Prove {
    /// RFC 9162 audit path of one event.
    Inclusion {
        #[command(flatten)]
        log: LogArg,
        /// The event's seq.
        #[arg(long)]
        seq: u64,
        /// Tree size (default: the log's size).
        #[arg(long)]
        size: Option<u64>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// RFC 9162 consistency proof between two sizes.
    Consistency {
        #[command(flatten)]
        log: LogArg,
        /// Older size.
        #[arg(long)]
        from: u64,
        /// Newer size (default: the log's size).
        #[arg(long)]
        to: Option<u64>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}
