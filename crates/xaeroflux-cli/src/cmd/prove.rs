//! `xf prove`, `xf verify`, `xf repair`.

use crate::progress::Bar;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use xaeroflux::{Core, VerifyReport, report};

use crate::cli::Prove;
use crate::output::{ConsistencyOut, InclusionOut, emit};
use crate::{open_ro, resolve_log};

pub fn prove(db: &Path, what: Prove, out: &mut impl Write) -> Result<()> {
    let core = open_ro(db)?;
    match what {
        Prove::Inclusion {
            log,
            seq,
            size,
            json,
        } => {
            let id = resolve_log(&core, &log)?;
            let size = match size {
                Some(s) => s,
                None => core.log_size(&id)?,
            };
            emit(
                out,
                json,
                &InclusionOut::from(&core.prove_inclusion(&id, seq, size)?),
            )
        }
        Prove::Consistency {
            log,
            from,
            to,
            json,
        } => {
            let id = resolve_log(&core, &log)?;
            let to = match to {
                Some(t) => t,
                None => core.log_size(&id)?,
            };
            emit(
                out,
                json,
                &ConsistencyOut::from(&core.prove_consistency(&id, from, to)?),
            )
        }
    }
}

/// Prints each problem on stderr; an error says how many there were.
fn problems(r: &VerifyReport, what: &str) -> Result<()> {
    if r.is_ok() {
        return Ok(());
    }
    for p in &r.problems {
        eprintln!("corrupt: {}", report(p));
    }
    bail!("{} problem(s) {what}", r.problems.len());
}

pub fn verify(db: &Path, out: &mut impl Write) -> Result<()> {
    let core = open_ro(db)?;
    let bar = Bar::pages("verify");
    let r = core.verify_with_progress(&mut |p| bar.pages_done(p))?;
    bar.clear();
    writeln!(
        out,
        "checked {} logs, {} pages ({} sealed, page-tree roots recomputed), {} events, {} index chunks, {} log roots, {} checkpoint signatures",
        r.logs, r.pages, r.sealed_pages, r.events, r.chunks, r.roots, r.checkpoints
    )?;
    out.flush()?;
    problems(&r, "found")?;
    writeln!(out, "ok")?;
    Ok(())
}

pub fn repair(db: &Path, out: &mut impl Write) -> Result<()> {
    let bar = Bar::pages("rebuild");
    let (core, moved) = Core::repair_with_progress(db, &mut |p| bar.pages_done(p))
        .with_context(|| format!("repairing {}", db.display()))?;
    bar.clear();
    let s = core.stat()?;
    writeln!(
        out,
        "rebuilt the index from {} events in {} logs ({} pages)",
        core.recovered_events(),
        s.logs,
        s.pages
    )?;
    if let Some(p) = moved {
        writeln!(out, "the previous index is kept at {}", p.display())?;
    }
    let r = core.catalog_restored();
    writeln!(
        out,
        "restored {} topic names and {} checkpoints of other authors from the catalog",
        r.topic_names, r.checkpoints
    )?;
    if let Some(p) = &r.set_aside {
        writeln!(
            out,
            "the catalog was damaged: what preceded the damage was kept, the file is at {}",
            p.display()
        )?;
    }
    let bar = Bar::pages("verify");
    let checked = core.verify_with_progress(&mut |p| bar.pages_done(p))?;
    bar.clear();
    problems(&checked, "remain after the rebuild")?;
    writeln!(out, "verified: ok")?;
    core.close()?;
    Ok(())
}
