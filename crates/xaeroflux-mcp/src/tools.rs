//! The tools: their descriptions and schemas, and what each does.
//!
//! Every tool but `append` only reads. A call gets back either a result
//! (JSON text and the same value as structured content) or a tool error
//! (`isError`, with a message); a call that names no tool this server
//! offers gets a JSON-RPC error instead.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine;
use rmcp::handler::server::tool::{schema_for_input, schema_for_output};
use rmcp::model::{ErrorCode, ErrorData, JsonObject, Tool, ToolAnnotations};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use xaeroflux::json::{self, hex};
use xaeroflux::{
    Core, EventKind, Hash, LogId, NewEvent, NoteVerifier, Topic, TopicId, verify_consistency,
    verify_inclusion,
};

use crate::ToolError;
use crate::args::{self, DEFAULT_LIMIT, Encoding, MAX_LIMIT};
use crate::page::{PageRequest, read_page};
use crate::resources::topic_uri;
use crate::views::{
    EventOut, GetEventOut, PageOut, ProofOut, StatsOut, TopicOut, TopicsOut, VerifyOut,
};

/// Where appends go, when they are allowed.
#[derive(Debug, Clone)]
pub(crate) enum Appends {
    /// Not allowed: the `append` tool is absent.
    Refused,
    /// Into the store this server opened for writing.
    Store,
    /// Through the node that runs on the store (it holds the writer lock).
    Node(PathBuf),
}

/// What every session of a server shares.
pub(crate) struct State {
    pub core: Arc<Core>,
    pub appends: Appends,
    pub tools: Vec<Tool>,
    /// Private topics' plaintext is shown (and appends there allowed).
    pub allow_private: bool,
}

impl State {
    pub fn new(core: Arc<Core>, appends: Appends, allow_private: bool) -> Result<Self, String> {
        let tools = definitions(!matches!(appends, Appends::Refused))?;
        Ok(Self {
            core,
            appends,
            tools,
            allow_private,
        })
    }
}

/// A tool's hints: whether it writes; none is destructive, none reaches
/// beyond the store.
fn hints(title: &str, writes: bool) -> ToolAnnotations {
    ToolAnnotations::with_title(title)
        .read_only(!writes)
        .destructive(false)
        .idempotent(!writes)
        .open_world(false)
}

fn tool<I: JsonSchema + 'static, O: JsonSchema + 'static>(
    name: &'static str,
    title: &str,
    description: &'static str,
    writes: bool,
) -> Result<Tool, String> {
    Ok(Tool::new(name, description, schema_for_input::<I>()?)
        .with_title(title)
        .with_raw_output_schema(schema_for_output::<O>())
        .with_annotations(hints(title, writes)))
}

/// The tools this server lists; `append` only when appends are allowed.
fn definitions(append: bool) -> Result<Vec<Tool>, String> {
    let mut tools = vec![
        tool::<args::NoArgs, TopicsOut>(
            "list_topics",
            "List topics",
            "The topics this store holds: each one's name, id, how many logs \
             (one per author) and events it has, and its resource URI.",
            false,
        )?,
        tool::<args::ReadTopic, PageOut>(
            "read_topic",
            "Read a topic",
            "A page of a topic's events in its view order (timestamp, author, seq), \
             every author's log merged. Payloads are UTF-8 text where they are and \
             base64 otherwise (see `encoding`). Pass `next` back as `since_seq` for \
             the following page; `resume` later for what came after.",
            false,
        )?,
        tool::<args::GetEvent, GetEventOut>(
            "get_event",
            "Get an event",
            "One event by its log and seq, with its canonical bytes.",
            false,
        )?,
        tool::<args::LogOnly, json::Checkpoint>(
            "checkpoint",
            "Get a log's checkpoint",
            "The log's latest signed checkpoint: a C2SP signed note of its size \
             and RFC 9162 root, signed with Ed25519 by the log's author.",
            false,
        )?,
        tool::<args::ProveInclusion, ProofOut>(
            "prove_inclusion",
            "Prove an event is in a log",
            "An RFC 9162 inclusion proof that the event at `seq` is in the log, \
             with the signed checkpoint it verifies against (and a consistency \
             proof when `size` is older than the checkpoint). Anyone holding the \
             author's key can check it; nothing else is needed.",
            false,
        )?,
        tool::<args::VerifyInclusion, VerifyOut>(
            "verify_inclusion",
            "Verify an inclusion proof",
            "Checks an inclusion proof as `prove_inclusion` returns it: the audit \
             path against the root, the checkpoint's signature with the author's \
             key from `log`, and the consistency proof between the two sizes. \
             Uses nothing from this store. Returns `valid`, or the reason it fails.",
            false,
        )?,
        tool::<args::NoArgs, StatsOut>(
            "stats",
            "Store statistics",
            "The store's sizes: logs, events, segment files, pages, bytes on disk.",
            false,
        )?,
    ];
    if append {
        tools.push(tool::<args::Append, json::Receipt>(
            "append",
            "Append an event",
            "Appends an application event to this store's own log in a topic and \
             returns its receipt (log, seq, leaf_hash, size, root) once it is \
             durable. `payload` is text, or base64 with `encoding: base64`.",
            true,
        )?);
    }
    Ok(tools)
}

/// Runs the tool `name`: `Err` when there is no such tool (a JSON-RPC
/// error), else its result or its tool error.
pub(crate) fn call(
    state: &State,
    name: &str,
    arguments: Option<JsonObject>,
) -> Result<Result<Value, ToolError>, ErrorData> {
    let a = Value::Object(arguments.unwrap_or_default());
    let core = &state.core;
    Ok(match name {
        "list_topics" => parse::<args::NoArgs>(name, a).and_then(|_| to_value(list_topics(core)?)),
        "read_topic" => {
            parse(name, a).and_then(|a| to_value(read_topic(core, a, state.allow_private)?))
        }
        "get_event" => {
            parse(name, a).and_then(|a| to_value(get_event(core, a, state.allow_private)?))
        }
        "checkpoint" => parse(name, a).and_then(|a| to_value(checkpoint(core, a)?)),
        "prove_inclusion" => parse(name, a).and_then(|a| to_value(prove(core, a)?)),
        "verify_inclusion" => parse(name, a).and_then(|a| to_value(verify(a)?)),
        "stats" => parse::<args::NoArgs>(name, a).and_then(|_| to_value(stats(state)?)),
        "append" => match &state.appends {
            Appends::Refused => {
                return Err(ErrorData::new(
                    ErrorCode::INVALID_PARAMS,
                    "tool `append` is not enabled: this server is read-only \
                     (start it with `xf mcp --allow-append` to allow appends)",
                    None,
                ));
            }
            via => {
                parse(name, a).and_then(|a| to_value(append(core, via, a, state.allow_private)?))
            }
        },
        other => {
            let names: Vec<&str> = state.tools.iter().map(|t| t.name.as_ref()).collect();
            return Err(ErrorData::new(
                ErrorCode::INVALID_PARAMS,
                format!("unknown tool `{other}`; the tools are {}", names.join(", ")),
                None,
            ));
        }
    })
}

fn parse<T: DeserializeOwned>(tool: &str, args: Value) -> Result<T, ToolError> {
    serde_json::from_value(args)
        .map_err(|e| ToolError::new(format!("invalid arguments for `{tool}`: {e}")))
}

fn to_value(v: impl Serialize) -> Result<Value, ToolError> {
    serde_json::to_value(v).map_err(|e| ToolError::new(format!("encoding the result: {e}")))
}

pub(crate) fn parse_log(text: &str) -> Result<LogId, ToolError> {
    text.parse::<LogId>().map_err(|e| {
        ToolError::new(format!(
            "log `{text}`: {e} (a log is AUTHOR_HEX/TOPIC_ID_HEX, as events' `log` field has it)"
        ))
    })
}

fn parse_hash(what: &str, text: &str) -> Result<Hash, ToolError> {
    let mut h = [0u8; 32];
    hex::decode_to_slice(text, &mut h)
        .map_err(|_| ToolError::new(format!("{what}: `{text}` is not a hash (64 hex digits)")))?;
    Ok(h)
}

fn list_topics(core: &Core) -> Result<TopicsOut, ToolError> {
    let mut by_id: BTreeMap<TopicId, TopicOut> = BTreeMap::new();
    for l in core.logs()? {
        let t = by_id.entry(l.log.topic).or_insert_with(|| TopicOut {
            name: None,
            id: l.log.topic.to_string(),
            logs: 0,
            events: 0,
            uri: None,
        });
        if t.name.is_none() {
            t.uri = l.topic_name.as_deref().map(topic_uri);
            t.name = l.topic_name;
        }
        t.logs += 1;
        t.events += l.size;
    }
    let mut topics: Vec<TopicOut> = by_id.into_values().collect();
    topics.sort_by(|a, b| match (&a.name, &b.name) {
        (Some(x), Some(y)) => x.cmp(y),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.id.cmp(&b.id),
    });
    Ok(TopicsOut { topics })
}

/// The topic a call names, by name or by id, and its name when known.
pub(crate) fn resolve_topic(
    core: &Core,
    name: Option<String>,
    id: Option<String>,
) -> Result<(TopicId, Option<String>), ToolError> {
    match (name, id) {
        (Some(n), None) => {
            let t = Topic::new(&n).map_err(|e| ToolError::new(format!("topic `{n}`: {e}")))?;
            Ok((t.id(), Some(n)))
        }
        (None, Some(i)) => {
            let id: TopicId = i
                .parse()
                .map_err(|e| ToolError::new(format!("topic_id `{i}`: {e}")))?;
            Ok((id, core.topic_name(&id)?))
        }
        (Some(_), Some(_)) => Err(ToolError::new("give `topic` or `topic_id`, not both")),
        (None, None) => Err(ToolError::new("name the topic: give `topic` (its name)")),
    }
}

fn read_topic(core: &Core, a: args::ReadTopic, allow_private: bool) -> Result<PageOut, ToolError> {
    let limit = a.limit.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(ToolError::new(format!(
            "limit {limit} is out of range: 1 to {MAX_LIMIT}"
        )));
    }
    let (topic, name) = resolve_topic(core, a.topic, a.topic_id)?;
    read_page(
        core,
        PageRequest {
            topic,
            name,
            since: a.since_seq,
            since_ms: a.since_ms,
            limit: limit as usize,
            allow_private,
        },
    )
}

fn get_event(
    core: &Core,
    a: args::GetEvent,
    allow_private: bool,
) -> Result<GetEventOut, ToolError> {
    let log = parse_log(&a.log)?;
    let size = core.log_info(&log)?.size;
    if a.seq >= size {
        return Err(ToolError::new(format!(
            "log {log} holds {size} events, so seq {} does not exist",
            a.seq
        )));
    }
    match core.iter_log(&log, a.seq).next() {
        Some(ev) => {
            let ev = ev?;
            Ok(GetEventOut {
                event: EventOut::read(core, &ev, allow_private),
                bytes_hex: hex(ev.canonical_bytes()),
            })
        }
        None => Err(ToolError::new(format!(
            "log {log}: seq {} could not be read",
            a.seq
        ))),
    }
}

fn checkpoint(core: &Core, a: args::LogOnly) -> Result<json::Checkpoint, ToolError> {
    let log = parse_log(&a.log)?;
    Ok(json::Checkpoint::new(&log, &core.checkpoint(&log)?))
}

fn prove(core: &Core, a: args::ProveInclusion) -> Result<ProofOut, ToolError> {
    let log = parse_log(&a.log)?;
    let cp = core.checkpoint(&log)?;
    let signed = cp.checkpoint.size;
    let size = a.size.unwrap_or(signed);
    if size > signed {
        return Err(ToolError::new(format!(
            "size {size} is beyond the log's latest checkpoint, which signs size {signed}"
        )));
    }
    let proof = core.prove_inclusion(&log, a.seq, size)?;
    let consistency = if size < signed {
        Some(core.prove_consistency(&log, size, signed)?)
    } else {
        if proof.root != cp.checkpoint.root {
            return Err(ToolError::new(format!(
                "the store's root of log {log} at size {size} is not the one its checkpoint \
                 signs: the store is damaged (`xf verify` says where)"
            )));
        }
        None
    };
    Ok(ProofOut {
        inclusion: json::Inclusion::from(&proof),
        checkpoint: json::Checkpoint::new(&log, &cp),
        consistency: consistency.as_ref().map(json::Consistency::from),
    })
}

/// Checks what `verify_inclusion` is given. Malformed input is a tool
/// error; a proof that does not hold is a result with the reason.
fn verify(a: args::VerifyInclusion) -> Result<VerifyOut, ToolError> {
    let leaf = parse_hash("leaf_hash", &a.leaf_hash)?;
    let path = a
        .path
        .iter()
        .map(|h| parse_hash("path", h))
        .collect::<Result<Vec<Hash>, _>>()?;
    let root = a
        .root
        .as_deref()
        .map(|r| parse_hash("root", r))
        .transpose()?;
    let mut checked = Vec::new();
    let Some(cp_arg) = a.checkpoint else {
        let Some(root) = root else {
            return Err(ToolError::new(
                "give the `root` the proof leads to, or the `checkpoint` that signs it",
            ));
        };
        return Ok(last_inclusion(
            checked, &leaf, a.index, a.size, &path, &root,
        ));
    };
    let Some(log) = a.log.as_deref() else {
        return Err(ToolError::new(
            "a `checkpoint` is checked with the author's key: give `log` too",
        ));
    };
    let log = parse_log(log)?;
    checked.push("checkpoint signature".to_string());
    let verifier = NoteVerifier::new(&log.origin(), &log.author)?;
    let cp = match verifier.verify_checkpoint(cp_arg.note()) {
        Ok(cp) => cp,
        Err(e) => return Ok(fail(checked, format!("checkpoint: {e}"))),
    };
    let root = if a.size == cp.size {
        checked.push("checkpoint root".to_string());
        match root {
            Some(r) if r != cp.root => {
                return Ok(fail(
                    checked,
                    format!(
                        "root {} is not the root {} the checkpoint signs at size {}",
                        hex(&r),
                        hex(&cp.root),
                        cp.size
                    ),
                ));
            }
            _ => cp.root,
        }
    } else if a.size < cp.size {
        let Some(root) = root else {
            return Err(ToolError::new(format!(
                "the proof is for size {} and the checkpoint signs {}: give the proof's `root` \
                 and the `consistency` proof between them",
                a.size, cp.size
            )));
        };
        let Some(c) = a.consistency else {
            return Err(ToolError::new(format!(
                "the proof is for size {} and the checkpoint signs {}: give the `consistency` \
                 proof between them",
                a.size, cp.size
            )));
        };
        checked.push("consistency".to_string());
        if c.from.is_some_and(|f| f != a.size) || c.to.is_some_and(|t| t != cp.size) {
            return Ok(fail(
                checked,
                format!(
                    "the consistency proof is not from size {} to size {}",
                    a.size, cp.size
                ),
            ));
        }
        let old = c
            .old_root
            .as_deref()
            .map(|r| parse_hash("consistency.old_root", r));
        let new = c
            .new_root
            .as_deref()
            .map(|r| parse_hash("consistency.new_root", r));
        if old.transpose()?.is_some_and(|o| o != root)
            || new.transpose()?.is_some_and(|n| n != cp.root)
        {
            return Ok(fail(
                checked,
                "the consistency proof's roots are not the proof's and the checkpoint's".into(),
            ));
        }
        let cpath = c
            .path
            .iter()
            .map(|h| parse_hash("consistency.path", h))
            .collect::<Result<Vec<Hash>, _>>()?;
        if let Err(e) = verify_consistency(a.size, cp.size, &root, &cp.root, &cpath) {
            return Ok(fail(checked, format!("consistency: {e}")));
        }
        root
    } else {
        return Ok(fail(
            checked,
            format!(
                "the proof is for size {}, beyond the size {} the checkpoint signs",
                a.size, cp.size
            ),
        ));
    };
    Ok(last_inclusion(
        checked, &leaf, a.index, a.size, &path, &root,
    ))
}

/// A failed verification: what was checked, and why it fails.
fn fail(checked: Vec<String>, reason: String) -> VerifyOut {
    VerifyOut {
        valid: false,
        reason: Some(reason),
        checked,
    }
}

/// The last check, the audit path: valid, or the reason it fails.
fn last_inclusion(
    mut checked: Vec<String>,
    leaf: &Hash,
    index: u64,
    size: u64,
    path: &[Hash],
    root: &Hash,
) -> VerifyOut {
    checked.push("inclusion".to_string());
    match verify_inclusion(leaf, index, size, path, root) {
        Ok(()) => VerifyOut {
            valid: true,
            reason: None,
            checked,
        },
        Err(e) => fail(checked, format!("inclusion: {e}")),
    }
}

fn stats(state: &State) -> Result<StatsOut, ToolError> {
    Ok(StatsOut {
        stats: state.core.stat()?,
        append_allowed: !matches!(state.appends, Appends::Refused),
        via_node: matches!(state.appends, Appends::Node(_)),
    })
}

fn append(
    core: &Core,
    via: &Appends,
    a: args::Append,
    allow_private: bool,
) -> Result<json::Receipt, ToolError> {
    let topic =
        Topic::new(&a.topic).map_err(|e| ToolError::new(format!("topic `{}`: {e}", a.topic)))?;
    let private = xaeroflux::store::is_private_name(topic.name());
    if private && !allow_private {
        return Err(ToolError::new(format!(
            "`{}` is a private topic: the server must be started with --allow-private to write there",
            a.topic
        )));
    }
    let payload = match a.encoding.unwrap_or_default() {
        Encoding::Utf8 => a.payload.into_bytes(),
        Encoding::Base64 => {
            let text = a.payload.trim_end_matches('=');
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(text)
                .map_err(|e| ToolError::new(format!("payload: not base64 ({e})")))?
        }
    };
    let max = core.max_payload_len();
    if payload.len() > max {
        return Err(ToolError::new(format!(
            "payload of {} bytes is too large: an event in this store holds at most {max} bytes",
            payload.len()
        )));
    }
    // A node seals a private topic's events in its writer; here, the
    // facade marks them.
    let event = NewEvent::new(&topic, EventKind::Application, payload).encrypted(private);
    let receipt = match via {
        Appends::Node(dir) => xaeroflux::net::handoff::append(dir, &[event])?
            .into_iter()
            .next()
            .ok_or_else(|| ToolError::new("the node returned no receipt"))?,
        _ => core.append(event)?,
    };
    Ok(json::Receipt::from(&receipt))
}
