//! The Quickstart of the seed README (`shared/seeds/001_…txt`), as it was
//! written, with two changes: `?` after `core.append(ev)`, and
//! `event?.payload()` for `event.data` (iteration yields `Result`s).
//! `cargo run -p xaeroflux --example quickstart`; offline it does not wait
//! on unreachable relays.
// The seed writes `let mut core`; nothing needs it mutable.
#![allow(unused_mut)]

use xaeroflux::Core;

// NOTE THIS CODE IS A POSSIBLE EXAMPLE OF HOW IT MAY FUNCTION
// THIS IS STILL EVOLVING!
fn main() -> anyhow::Result<()> {
    // initialize and open database (background sync starts automatically)
    let mut core = Core::builder()
        .with_page_size(16 * 1024)
        .with_segment_pages(1024)
        .with_sync_backends(&["iroh", "iroh-blob", "iroh-gossip"])
        .open("/path/to/xaeroflux.db")?;

    // append a new Event payload
    let ev = core.new_event(b"Hello, Xaeroflux!");
    core.append(ev)?;

    // read back all events like a local DB
    for event in core.iter_events() {
        println!("Event: {:?}", event?.payload());
    }

    // get current MMR root for diffing or audit
    let root = core.mmr_root();
    println!("MMR root: {}", hex::encode(root));

    // Core runs sync in background; just exit when done
    Ok(())
}
