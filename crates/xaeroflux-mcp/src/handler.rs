//! One MCP session: rmcp's `ServerHandler` over the shared [`State`].
//!
//! Store work runs on tokio's blocking pool, so a long read or a durable
//! append never holds up the session's other requests.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use rmcp::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, CustomRequest,
    CustomResult, ErrorCode, ErrorData, Implementation, ListResourceTemplatesResult,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ReadResourceRequestParams,
    ReadResourceResponse, ReadResourceResult, Resource, ResourceContents, ResourceTemplate,
    ResourceUpdatedNotificationParam, ServerCapabilities, ServerConfig, SubscribeRequestParams,
    SubscriptionFilter, Tool, UnsubscribeRequestParams,
};
use rmcp::service::{RequestContext, RoleServer, SubscriptionContext};
use tokio::sync::mpsc;

use crate::ToolError;
use crate::resources::{
    Notice, Receipt, TOPIC_TEMPLATE, Watcher, parse_topic_uri, read_topic_resource,
};
use crate::tools::{self, State};

const INSTRUCTIONS: &str = "\
A Xaeroflux event store: topics of signed, append-only logs (one per author), \
each an RFC 9162 Merkle tree. `list_topics` names the topics; `read_topic` \
pages through one (pass `next` back as `since_seq`); `get_event` fetches one \
event by log and seq. `prove_inclusion` returns a Merkle proof with the signed \
checkpoint it verifies against, which anyone can check with the author's key \
(`verify_inclusion` does, offline). Each topic is also a resource, \
xf://topic/{name}, that can be subscribed to for updates as events commit.";

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ErrorData> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ErrorData::internal_error(format!("a store task failed: {e}"), None))
}

fn invalid(e: ToolError) -> ErrorData {
    ErrorData::invalid_params(e.0, None)
}

/// Acknowledged `subscriptions/listen` filters whose `listen` has not
/// started yet, at most this many (the oldest go first).
const PENDING_LISTENS: usize = 16;

/// What a topic held when a listen was acknowledged: rmcp sends the
/// acknowledgement before `listen` runs and starts its watchers, so a
/// commit in between is caught by comparing with this.
struct Acknowledged {
    /// The accepted URIs.
    uris: BTreeSet<String>,
    /// Events in each accepted topic then, by URI.
    events: HashMap<String, u64>,
}

/// Events in the topic a resource URI names, if it can be read.
fn topic_events(state: &State, uri: &str) -> Option<u64> {
    let topic = parse_topic_uri(uri).ok()?;
    let logs = state.core.topic_logs(&topic.id()).ok()?;
    Some(logs.iter().map(|l| l.size).sum())
}

/// One client's session.
#[derive(Clone)]
pub(crate) struct Session {
    state: Arc<State>,
    /// Legacy `resources/subscribe` subscriptions, by URI.
    watches: Arc<Mutex<HashMap<String, Watcher>>>,
    /// Listens acknowledged and not yet started.
    acknowledged: Arc<Mutex<VecDeque<Acknowledged>>>,
}

impl Session {
    pub fn new(state: Arc<State>) -> Self {
        Self {
            state,
            watches: Arc::default(),
            acknowledged: Arc::default(),
        }
    }

    fn acknowledged(&self) -> MutexGuard<'_, VecDeque<Acknowledged>> {
        self.acknowledged.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn watches(&self) -> MutexGuard<'_, HashMap<String, Watcher>> {
        self.watches.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stops every watcher of the session (each joins its thread).
    pub async fn stop_watching(&self) {
        let all: Vec<Watcher> = self.watches().drain().map(|(_, w)| w).collect();
        let _ = blocking(move || drop(all)).await;
    }

    /// Starts a watcher for each of `notices`' URIs, queueing its notice.
    async fn watch(&self, notices: Vec<Notice>) -> Result<Vec<Watcher>, ErrorData> {
        let state = self.state.clone();
        blocking(move || {
            notices
                .into_iter()
                .map(|notice| {
                    let topic = parse_topic_uri(notice.uri())?;
                    Watcher::start(&state.core, &topic, notice)
                })
                .collect::<Result<Vec<_>, ToolError>>()
        })
        .await?
        .map_err(invalid)
    }
}

impl ServerHandler for Session {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_resources()
                .enable_resources_subscribe()
                .build(),
        )
        .with_server_info(
            Implementation::new("xaeroflux", env!("CARGO_PKG_VERSION")).with_title("Xaeroflux"),
        )
        .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.state.tools.clone()))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.state.tools.iter().find(|t| t.name == name).cloned()
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let state = self.state.clone();
        let name = request.name.to_string();
        let arguments = request.arguments;
        let result = blocking(move || tools::call(&state, &name, arguments)).await??;
        Ok(match result {
            Ok(value) => CallToolResult::structured(value),
            Err(e) => CallToolResult::error(vec![ContentBlock::text(e.0)]),
        }
        .into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let state = self.state.clone();
        let topics = blocking(move || tools::call(&state, "list_topics", None)).await??;
        let topics = topics.map_err(|e| ErrorData::internal_error(e.0, None))?;
        let mut resources = Vec::new();
        for t in topics
            .get("topics")
            .and_then(|t| t.as_array())
            .into_iter()
            .flatten()
        {
            let (Some(name), Some(uri)) = (
                t.get("name").and_then(|v| v.as_str()),
                t.get("uri").and_then(|v| v.as_str()),
            ) else {
                continue;
            };
            let logs = t.get("logs").and_then(|v| v.as_u64()).unwrap_or(0);
            let events = t.get("events").and_then(|v| v.as_u64()).unwrap_or(0);
            resources.push(
                Resource::new(uri, name)
                    .with_title(format!("Topic {name}"))
                    .with_description(format!("{events} events in {logs} logs"))
                    .with_mime_type("application/json"),
            );
        }
        Ok(ListResourcesResult::with_all_items(resources))
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(TOPIC_TEMPLATE, "topic")
                .with_title("A topic")
                .with_description(
                    "A topic's logs and most recent events (up to 100), as JSON; \
                     subscribe to hear when events commit in it",
                )
                .with_mime_type("application/json"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let state = self.state.clone();
        let uri = request.uri.clone();
        let read =
            blocking(move || read_topic_resource(&state.core, &uri, state.allow_private)).await?;
        let read = read.map_err(|e| ErrorData::resource_not_found(e.0, None))?;
        let text = serde_json::to_string(&read)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri).with_mime_type("application/json"),
        ])
        .into())
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        let uri = request.uri;
        if self.watches().contains_key(&uri) {
            return Ok(());
        }
        let (tx, mut rx) = mpsc::channel::<String>(1);
        let notice = Notice::new(uri.clone(), tx);
        let receipt = notice.receipt();
        let started = self.watch(vec![notice]).await?;
        {
            let mut watches = self.watches();
            for w in started {
                // A second subscribe that raced this one keeps the first.
                watches.entry(uri.clone()).or_insert(w);
            }
        }
        let peer = context.peer.clone();
        tokio::spawn(async move {
            while let Some(uri) = rx.recv().await {
                receipt.taken();
                let note = ResourceUpdatedNotificationParam::new(uri);
                if peer.notify_resource_updated(note).await.is_err() {
                    break;
                }
            }
        });
        Ok(())
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        // Unsubscribing from what is not subscribed to changes nothing.
        let gone = self.watches().remove(&request.uri);
        blocking(move || drop(gone)).await
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        _context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!(
                "method `{}` not found: this server answers MCP's tools and resources methods",
                request.method
            ),
            None,
        ))
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        let uris: Vec<String> = requested
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|u| parse_topic_uri(u).is_ok())
            .cloned()
            .collect();
        // What each topic holds as this is acknowledged (an index read, no
        // waiting on the writer), for `listen` to compare with.
        let set: BTreeSet<String> = uris.iter().cloned().collect();
        let events = set
            .iter()
            .filter_map(|u| Some((u.clone(), topic_events(&self.state, u)?)))
            .collect();
        {
            let mut pending = self.acknowledged();
            if pending.len() == PENDING_LISTENS {
                pending.pop_front();
            }
            pending.push_back(Acknowledged { uris: set, events });
        }
        Some(
            SubscriptionFilter::builder()
                .resource_subscriptions(uris)
                .build(),
        )
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        let uris = context
            .accepted()
            .resource_subscriptions
            .clone()
            .unwrap_or_default();
        if uris.is_empty() {
            context.cancelled().await;
            return Ok(());
        }
        let set: BTreeSet<String> = uris.into_iter().collect();
        let then = {
            let mut pending = self.acknowledged();
            pending
                .iter()
                .position(|a| a.uris == set)
                .and_then(|i| pending.remove(i))
        };
        // Room for one notice per URI.
        let (tx, mut rx) = mpsc::channel::<String>(set.len().max(1));
        let notices: HashMap<String, Notice> = set
            .iter()
            .map(|u| (u.clone(), Notice::new(u.clone(), tx.clone())))
            .collect();
        drop(tx);
        let watchers = self.watch(notices.values().cloned().collect()).await?;
        // A commit between the acknowledgement and the watchers' start is
        // told now; so is every topic whose count was not taken then.
        let state = self.state.clone();
        let changed: Vec<String> = blocking(move || {
            set.into_iter()
                .filter(|u| {
                    let before = then.as_ref().and_then(|a| a.events.get(u));
                    before.is_none() || before.copied() != topic_events(&state, u)
                })
                .collect()
        })
        .await?;
        for uri in changed {
            if let Some(n) = notices.get(&uri) {
                n.send();
            }
        }
        // Only the watchers hold the queue open from here.
        let receipts: HashMap<String, Receipt> =
            notices.into_iter().map(|(u, n)| (u, n.receipt())).collect();
        let sink = context.sink().clone();
        loop {
            tokio::select! {
                _ = context.cancelled() => break,
                uri = rx.recv() => match uri {
                    Some(uri) => {
                        if let Some(r) = receipts.get(&uri) {
                            r.taken();
                        }
                        if sink.notify_resource_updated(uri).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
            }
        }
        blocking(move || drop(watchers)).await
    }
}
