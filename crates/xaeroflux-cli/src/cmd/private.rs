//! Private topics: `xf topic create --encrypted`, `xf members`.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result, bail};
use xaeroflux::{MemberKey, Topic};

use crate::cli::{MembersCmd, TopicCmd};
use crate::open_rw;
use crate::output::json_line;

pub fn topic(db: &Path, what: TopicCmd, out: &mut impl Write) -> Result<()> {
    let TopicCmd::Create {
        encrypted,
        title,
        json,
    } = what;
    if !encrypted {
        bail!(
            "only private topics are created (--encrypted); a plain topic exists from its first event"
        );
    }
    let core = open_rw(db)?;
    let t = core.create_private_topic(title.as_deref())?;
    if json {
        json_line(
            out,
            &serde_json::json!({
                "topic": t.name,
                "topic_id": t.topic_id.to_string(),
                "epoch": t.epoch,
            }),
        )?;
    } else {
        writeln!(out, "{}", t.name)?;
    }
    core.close()?;
    Ok(())
}

pub fn members(
    db: &Path,
    topic: Option<String>,
    json: bool,
    change: Option<MembersCmd>,
    out: &mut impl Write,
) -> Result<()> {
    let name = topic.context("--topic NAME is needed")?;
    let core = open_rw(db)?;
    let topic = core.private_topic(&name)?;
    match change {
        Some(MembersCmd::Add { key }) => {
            let key: MemberKey = key.parse()?;
            core.add_member(&topic, &key)?;
        }
        Some(MembersCmd::Remove { key }) => {
            let key: MemberKey = key.parse()?;
            core.remove_member(&topic, &key)?;
        }
        None => list(&core, &topic, json, out)?,
    }
    core.close()?;
    Ok(())
}

fn list(core: &xaeroflux::Core, topic: &Topic, json: bool, out: &mut impl Write) -> Result<()> {
    for m in core.members(topic)? {
        if json {
            json_line(
                out,
                &serde_json::json!({
                    "member_key": m.member_key.to_string(),
                    "since_epoch": m.since_epoch,
                }),
            )?;
        } else {
            writeln!(out, "{}  since epoch {}", m.member_key, m.since_epoch)?;
        }
    }
    Ok(())
}
