//! `xf node`: a node in the foreground, printing its sync events.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use xaeroflux::{Core, Filter, NetMode, SYNC_TOPIC, Since, Topic};

use crate::cli::NodeArgs;

pub fn node(db: &Path, a: NodeArgs, out: &mut impl Write) -> Result<()> {
    let mut builder = Core::builder()
        .with_sync_backends(&a.backends)
        .with_sync_interval(Duration::from_secs(a.sync_interval.max(1)));
    if a.local_only {
        builder = builder.with_network(NetMode::LocalOnly { listen: a.listen });
    }
    let core = builder
        .open(db)
        .with_context(|| format!("starting a node on {}", db.display()))?;
    // Listen before joining, so no sync event is missed.
    let sync_topic = Topic::new(SYNC_TOPIC)?;
    let mut events = core.subscribe(Filter::topic(&sync_topic), Since::Now)?;
    writeln!(out, "node {}", core.node_ticket()?)?;
    out.flush()?;
    for t in &a.topics {
        core.join(&Topic::new(t)?, &a.peers)?;
    }
    while let Some(ev) = events.recv() {
        out.write_all(&ev?.payload)?;
        out.write_all(b"\n")?;
        out.flush()?;
    }
    drop(events);
    core.close()?;
    Ok(())
}
