//! Topics as resources, and following them.
//!
//! Each named topic is the resource `xf://topic/{name}` (the name
//! percent-encoded). Reading it gives the topic's logs and its most recent
//! events as JSON. Subscribing to it (`resources/subscribe`, or a
//! `subscriptions/listen` filter naming it) starts a [`Watcher`]: a thread
//! holding a store subscription on the topic that, whenever events commit
//! there (appended here, by another process, or replicated by a node),
//! queues one `notifications/resources/updated` for the URI. A burst of
//! commits while a notice is still queued adds nothing (one [`Notice`] per
//! URI waits at most): the reader, once notified, reads everything anyway.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;
use xaeroflux::json;
use xaeroflux::{Core, Filter, LogId, Since, Topic};

use crate::ToolError;
use crate::views::EventOut;

/// The URI scheme and path of topic resources.
pub const TOPIC_PREFIX: &str = "xf://topic/";
/// The resource template of topics.
pub const TOPIC_TEMPLATE: &str = "xf://topic/{name}";
/// Most recent events a topic resource holds.
pub const RESOURCE_EVENTS: u64 = 100;
/// How long a watcher waits for a commit before looking whether it should
/// stop.
const WATCH_TICK: Duration = Duration::from_millis(200);
/// Events a watcher reads past before it queues the notice anyway.
const DRAIN: usize = 4096;

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The resource URI of a topic.
pub fn topic_uri(name: &str) -> String {
    let mut s = String::with_capacity(TOPIC_PREFIX.len() + name.len());
    s.push_str(TOPIC_PREFIX);
    for b in name.bytes() {
        if unreserved(b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("%{b:02X}"));
        }
    }
    s
}

/// The topic a resource URI names.
pub fn parse_topic_uri(uri: &str) -> Result<Topic, ToolError> {
    let Some(rest) = uri.strip_prefix(TOPIC_PREFIX) else {
        return Err(ToolError::new(format!(
            "no resource `{uri}`: this server's resources are {TOPIC_TEMPLATE}"
        )));
    };
    let bytes = rest.as_bytes();
    let mut name = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let digits = bytes
                .get(i + 1..i + 3)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 16).ok());
            let Some(v) = digits else {
                return Err(ToolError::new(format!("`{uri}`: a bad percent-escape")));
            };
            name.push(v);
            i += 3;
        } else {
            name.push(b);
            i += 1;
        }
    }
    let name = String::from_utf8(name)
        .map_err(|_| ToolError::new(format!("`{uri}`: the topic name is not UTF-8")))?;
    Topic::new(&name).map_err(|e| ToolError::new(format!("`{uri}`: {e}")))
}

/// What reading a topic resource gives.
#[derive(Debug, serde::Serialize)]
pub struct TopicResource {
    /// The topic's name.
    pub topic: String,
    /// Its id, hex.
    pub topic_id: String,
    /// Its logs.
    pub logs: Vec<json::Log>,
    /// Events in all of them.
    pub events_total: u64,
    /// The most recent events (up to 100), oldest first, in view order.
    pub recent: Vec<EventOut>,
    /// Pass to `read_topic` as `since_seq` for what comes after these.
    pub resume: String,
}

/// Reads the topic resource `uri`.
pub fn read_topic_resource(
    core: &Core,
    uri: &str,
    allow_private: bool,
) -> Result<TopicResource, ToolError> {
    let topic = parse_topic_uri(uri)?;
    let logs = core.topic_logs(&topic.id())?;
    let start = |log: &LogId| {
        logs.iter()
            .find(|l| l.log == *log)
            .map_or(0, |l| l.size.saturating_sub(RESOURCE_EVENTS))
    };
    // The last events of each log, merged; of those, the last 100.
    let mut recent = std::collections::VecDeque::new();
    let mut next: std::collections::HashMap<LogId, u64> = std::collections::HashMap::new();
    for ev in core.iter_topic_from(&topic.id(), start) {
        let ev = ev?;
        next.insert(ev.log_id(), ev.seq() + 1);
        if recent.len() as u64 == RESOURCE_EVENTS {
            recent.pop_front();
        }
        recent.push_back(EventOut::read(core, &ev, allow_private));
    }
    let resume = crate::page::cursor_after(&topic.id(), &logs, &next);
    Ok(TopicResource {
        topic: topic.name().to_string(),
        topic_id: topic.id().to_string(),
        events_total: logs.iter().map(|l| l.size).sum(),
        logs: logs.iter().map(json::Log::from).collect(),
        recent: recent.into(),
        resume,
    })
}

/// One URI's place in a queue of notices: at most one notice per URI
/// waits in the queue, so a busy topic cannot crowd out a quiet one, and
/// the queue needs room for one notice per URI only.
#[derive(Clone)]
pub struct Notice {
    uri: String,
    queued: Arc<AtomicBool>,
    tx: mpsc::Sender<String>,
}

impl Notice {
    /// A place for `uri` in the queue `tx`.
    pub fn new(uri: String, tx: mpsc::Sender<String>) -> Self {
        Self {
            uri,
            queued: Arc::new(AtomicBool::new(false)),
            tx,
        }
    }

    /// The URI the notice names.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// Queues the notice unless one is waiting already; `false` once the
    /// receiver is gone.
    pub fn send(&self) -> bool {
        if self.queued.swap(true, Ordering::AcqRel) {
            return true;
        }
        match self.tx.try_send(self.uri.clone()) {
            Ok(()) => true,
            // A queue smaller than its URIs: the next commit tries again.
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.queued.store(false, Ordering::Release);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// The receiver's side of the notice, which does not hold the queue
    /// open (the queue ends when every watcher has stopped).
    pub fn receipt(&self) -> Receipt {
        Receipt(self.queued.clone())
    }
}

/// The receiver's side of a [`Notice`].
pub struct Receipt(Arc<AtomicBool>);

impl Receipt {
    /// Says the receiver took the notice: commits from now on queue
    /// another. Call it before telling the client, so that none is missed.
    pub fn taken(&self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Queues a [`Notice`] each time events commit in a topic, from a thread
/// of its own, until dropped.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watcher {
    /// Watches `topic`, sending `notice` after commits.
    pub fn start(core: &Core, topic: &Topic, notice: Notice) -> Result<Self, ToolError> {
        let mut sub = core.subscribe(Filter::topic(topic), Since::Now)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new()
            .name("xf-mcp-watch".into())
            .spawn(move || {
                while !stopping.load(Ordering::Acquire) {
                    match sub.recv_timeout(WATCH_TICK) {
                        Ok(Some(_)) => {
                            for _ in 0..DRAIN {
                                if !matches!(sub.try_recv(), Ok(Some(_))) {
                                    break;
                                }
                            }
                            if !notice.send() {
                                break;
                            }
                        }
                        Ok(None) => {}
                        // The store closed: nothing more will commit.
                        Err(xaeroflux::StoreError::Closed) => break,
                        // A read failed (damage): look again later.
                        Err(_) => std::thread::park_timeout(WATCH_TICK),
                    }
                }
            })
            .map_err(|e| ToolError::new(format!("starting a watcher: {e}")))?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::restriction)]
    use super::*;

    #[test]
    fn a_busy_topic_cannot_crowd_out_a_quiet_one() {
        // Room for one notice per URI, as a listen makes it.
        let (tx, mut rx) = mpsc::channel::<String>(2);
        let busy = Notice::new("xf://topic/busy".into(), tx.clone());
        let quiet = Notice::new("xf://topic/quiet".into(), tx);
        let (busy_r, quiet_r) = (busy.receipt(), quiet.receipt());
        for _ in 0..10 {
            assert!(busy.send());
        }
        assert!(quiet.send());
        assert_eq!(rx.try_recv().unwrap(), "xf://topic/busy");
        assert_eq!(rx.try_recv().unwrap(), "xf://topic/quiet");
        assert!(rx.try_recv().is_err(), "one notice per URI waits at most");
        // Not yet taken: a commit now adds nothing, the reader will read it.
        assert!(busy.send());
        assert!(rx.try_recv().is_err());
        // Taken: the next commit is told again.
        busy_r.taken();
        quiet_r.taken();
        assert!(busy.send());
        assert_eq!(rx.try_recv().unwrap(), "xf://topic/busy");
        // The receiver gone, the watcher hears so.
        drop(rx);
        busy_r.taken();
        assert!(!busy.send());
    }

    #[test]
    fn topic_uris_round_trip() {
        for name in ["chat", "a b/c?d#e", "émoji 🎉", "100%"] {
            let uri = topic_uri(name);
            assert!(uri.starts_with(TOPIC_PREFIX));
            assert!(!uri[TOPIC_PREFIX.len()..].contains(['/', ' ', '?', '#']));
            assert_eq!(parse_topic_uri(&uri).unwrap().name(), name);
        }
        assert!(parse_topic_uri("file:///etc/passwd").is_err());
        assert!(parse_topic_uri("xf://topic/%zz").is_err());
        assert!(parse_topic_uri("xf://topic/%4").is_err());
        assert!(parse_topic_uri("xf://topic/%FF").is_err());
    }
}
