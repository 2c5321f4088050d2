//! `xf demo`: three nodes in one process on loopback, in a line (alice ←
//! bob ← carol), converge on a shared topic; each checks the others'
//! signed checkpoints with their verifier keys only; carol proves one of
//! alice's events against alice's signed root.

use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use xaeroflux::merkle::hash_leaf;
use xaeroflux::{
    Checkpoint, Core, LogId, NetMode, NewEvent, NoteVerifier, SYNC_TOPIC, Topic,
    verify_consistency, verify_inclusion,
};

use crate::output::hx;

const NAMES: [&str; 3] = ["alice", "bob", "carol"];

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// One of the demo's nodes, and (once converged) its log and that log's size.
struct Member {
    name: &'static str,
    core: Core,
    log: LogId,
    size: u64,
}

pub fn run() -> Result<()> {
    println!("Xaeroflux demo: three nodes on loopback share the topic \"chat\"");
    println!("(local-only mode: 127.0.0.1, no relays, no address lookup)\n");
    let dirs = NAMES
        .iter()
        .map(|_| tempfile::tempdir())
        .collect::<std::io::Result<Vec<_>>>()?;
    let chat = Topic::new("chat")?;
    let mut members = dirs
        .iter()
        .zip(NAMES)
        .map(|(dir, name)| start(name, dir.path(), &chat))
        .collect::<Result<Vec<_>>>()?;
    converge(&mut members, &chat)?;
    print_roots(&members)?;
    cross_verify(&members, &chat)?;
    let [alice, bob, carol] = members.as_slice() else {
        bail!("the demo runs three nodes");
    };
    prove(alice, carol, &chat)?;
    for m in &members {
        let report = m.core.verify()?;
        if !report.is_ok() {
            bail!("{}: verify found problems: {:?}", m.name, report.problems);
        }
    }
    println!("every store verified: pages, records, roots and signatures");
    let sync_topic = Topic::new(SYNC_TOPIC)?;
    println!("\nbob's sync events (System events in {SYNC_TOPIC}):");
    for ev in bob.core.iter_topic(&sync_topic).take(6) {
        println!("  {}", String::from_utf8_lossy(ev?.payload()));
    }
    for m in members {
        m.core.close()?;
    }
    println!("demo ok");
    Ok(())
}

fn start(name: &'static str, dir: &std::path::Path, chat: &Topic) -> Result<Member> {
    let core = Core::builder()
        .with_sync_backends(&["iroh", "iroh-gossip"])
        .with_network(NetMode::local_only())
        .with_sync_interval(Duration::from_secs(5))
        .open(dir)?;
    println!(
        "{name:5}  endpoint {}  author {}",
        short(&core.endpoint_id()?),
        short(&hx(&core.author()))
    );
    let log = core.own_log(chat);
    Ok(Member {
        name,
        core,
        log,
        size: 0,
    })
}

/// Appends history, joins the nodes in a line, appends live, and waits
/// (bounded) until all three hold the same logs.
fn converge(members: &mut [Member], chat: &Topic) -> Result<()> {
    // History written before anyone connects.
    for (m, n) in members.iter().zip([300, 200, 100]) {
        let batch: Vec<NewEvent> = (0..n)
            .map(|k| {
                m.core
                    .new_event_in(chat, format!("{}: message {k}", m.name))
            })
            .collect();
        m.core.append_batch(batch)?;
    }
    // A line: bob knows alice, carol knows bob; alice and carol are never
    // told of each other.
    let started = Instant::now();
    let [alice, bob, carol] = &*members else {
        bail!("the demo runs three nodes");
    };
    alice.core.join(chat, &[] as &[&str])?;
    bob.core.join(chat, &[alice.core.node_ticket()?])?;
    carol.core.join(chat, &[bob.core.node_ticket()?])?;
    println!("\njoined: alice <- bob <- carol (tickets); appending live messages");
    for m in members.iter_mut() {
        m.core.append(
            m.core
                .new_event_in(chat, format!("{}: hello, live", m.name)),
        )?;
        m.size = m.core.log_size(&m.log)?;
    }
    let deadline = started + Duration::from_secs(60);
    let converged = |ms: &[Member]| {
        ms.iter().all(|holder| {
            ms.iter().all(|author| {
                holder.core.log_size(&author.log).ok() == Some(author.size)
                    && holder.core.root(&author.log).ok() == author.core.root(&author.log).ok()
            })
        })
    };
    while !converged(members) {
        if Instant::now() > deadline {
            bail!("the nodes did not converge within 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("converged in {:?}\n", started.elapsed());
    Ok(())
}

fn print_roots(members: &[Member]) -> Result<()> {
    println!("log of    size  root (the same on all three nodes)");
    for author in members {
        let roots = members
            .iter()
            .map(|m| m.core.root(&author.log))
            .collect::<Result<Vec<_>, _>>()?;
        if roots.windows(2).any(|w| w.first() != w.last()) {
            bail!("roots differ for {}", author.name);
        }
        let root = roots.first().ok_or_else(|| anyhow!("no roots"))?;
        println!("{:8} {:5}  {}", author.name, author.size, hx(root));
    }
    Ok(())
}

/// Each node checks the checkpoints it holds of the others' logs, with only
/// the author's verifier key, as an outside tool would.
fn cross_verify(members: &[Member], chat: &Topic) -> Result<()> {
    println!();
    for holder in members {
        for author in members.iter().filter(|a| a.name != holder.name) {
            let verifier = NoteVerifier::parse(&author.core.verifier_key(&chat.id()))?;
            let note = holder.core.checkpoint(&author.log)?.note;
            let cp: Checkpoint = verifier.verify_checkpoint(&note)?;
            if (cp.size, cp.root) != (author.size, holder.core.root(&author.log)?) {
                bail!(
                    "{}'s checkpoint of {} does not match",
                    holder.name,
                    author.name
                );
            }
            println!(
                "{:5} verified {:5}'s signed checkpoint: size {}, root {}",
                holder.name,
                author.name,
                cp.size,
                short(&hx(&cp.root))
            );
        }
    }
    Ok(())
}

/// A replica proves an event of another author's log; the proof checks
/// against the author's own signed root.
fn prove(alice: &Member, carol: &Member, chat: &Topic) -> Result<()> {
    let seq = 42;
    let log = &alice.log;
    let ev = carol
        .core
        .iter_log(log, seq)
        .next()
        .ok_or_else(|| anyhow!("no event {seq}"))??;
    let leaf = hash_leaf(ev.canonical_bytes());
    let alice_cp = NoteVerifier::parse(&alice.core.verifier_key(&chat.id()))?
        .verify_checkpoint(&alice.core.checkpoint(log)?.note)?;
    let incl = carol.core.prove_inclusion(log, seq, alice_cp.size)?;
    verify_inclusion(&leaf, seq, alice_cp.size, &incl.path, &alice_cp.root)?;
    println!(
        "\ncarol proved alice's event {seq} ({:?}) against alice's root: {} hashes, verified",
        String::from_utf8_lossy(ev.payload()),
        incl.path.len()
    );
    let cons = carol.core.prove_consistency(log, 300, alice_cp.size)?;
    verify_consistency(
        300,
        alice_cp.size,
        &carol.core.root_at(log, 300)?,
        &alice_cp.root,
        &cons.path,
    )?;
    println!(
        "carol proved alice's log only grew from size 300 to {}: verified",
        alice_cp.size
    );
    Ok(())
}
