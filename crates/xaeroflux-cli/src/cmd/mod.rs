//! One module per group of `xf` commands.

pub mod append;
pub mod doc;
pub mod node;
pub mod private;
pub mod prove;
pub mod store;
pub mod sync;
pub mod when;
