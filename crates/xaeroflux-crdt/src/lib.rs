//! Op-based CRDT documents on a Xaeroflux topic: each operation is one
//! event of the topic, its id the event's `(author, seq)`, so documents
//! replicate, verify and sync like any log.
//!
//! ```
//! use xaeroflux::{Core, Topic};
//! use xaeroflux_crdt::Doc;
//!
//! # fn main() -> Result<(), xaeroflux_crdt::CrdtError> {
//! # let dir = tempfile::tempdir().unwrap();
//! let core = Core::builder().open(dir.path())?;
//! let mut doc = Doc::open(&core, &Topic::new("shop")?)?;
//! doc.map("listing").set("title", "A red bike")?;
//! doc.map("listing").set("price", "90")?;
//! doc.counter("views").add(1)?;
//! doc.set("watchers").insert("carol")?;
//! doc.set("watchers").remove("carol")?;
//! assert_eq!(doc.map("listing").get("price").as_deref(), Some(&b"90"[..]));
//! assert!(!doc.set("watchers").contains("carol"));
//! # Ok(()) }
//! ```
//!
//! The types ([`LwwRegister`], [`LwwMap`], [`PnCounter`], [`OrSet`],
//! [`MvRegister`]) merge order-independently: the state is a pure function
//! of the set of operations (any order, any duplicate, any interleaving of
//! authors). Last-writer-wins orders writes by `(timestamp_ms, author,
//! seq)`, never by arrival. See `docs/crdt.md`.

mod doc;
mod error;
pub mod op;
pub mod snapshot;
#[cfg(feature = "loro")]
pub mod text;
mod types;

pub use doc::{
    Change, CounterRef, Doc, DocWatch, Frontier, MapRef, MvRegisterRef, RegisterRef,
    SNAPSHOT_EVERY, SetRef,
};
pub use error::CrdtError;
pub use op::{Op, OpBody};
pub use types::{
    Applied, CrdtKind, DocState, LwwMap, LwwRegister, MvRegister, OpId, OrSet, PnCounter, Stamp,
};
