//! MCP's stdio framing: one JSON-RPC message per line, both ways.
//!
//! rmcp's own line transport drops input that is not JSON without a word;
//! this one answers as JSON-RPC 2.0 asks: a line that is not JSON gets a
//! parse error (`-32700`), JSON that is not a request, notification or
//! response gets an invalid-request error (`-32600`) naming what is wrong
//! and echoing the request's `id` when it has one, and a line longer than
//! [`MAX_LINE`] is discarded with an error instead of being buffered. The
//! connection stays open in every case.

use std::borrow::Cow;
use std::sync::Arc;

use rmcp::model::{ErrorCode, ErrorData, RequestId};
use rmcp::service::{RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Mutex;

/// Longest line read: room for the largest payload an event may carry, as
/// base64 inside a JSON request.
pub const MAX_LINE: usize = 32 << 20;

/// A line-framed JSON-RPC transport over a reader and a writer.
pub struct LineTransport<R, W> {
    read: R,
    line: Vec<u8>,
    /// Dropping the rest of a line over the bound.
    skipping: bool,
    write: Arc<Mutex<Option<W>>>,
    max_line: usize,
    /// A request has been passed on: the session has begun.
    begun: bool,
}

impl<R, W> LineTransport<R, W> {
    /// Frames messages over `read` and `write`.
    pub fn new(read: R, write: W) -> Self {
        Self {
            read,
            line: Vec::new(),
            skipping: false,
            write: Arc::new(Mutex::new(Some(write))),
            max_line: MAX_LINE,
            begun: false,
        }
    }

    /// Lines longer than `max` bytes are answered with an error and skipped.
    pub fn with_max_line(mut self, max: usize) -> Self {
        self.max_line = max;
        self
    }
}

/// What one read of the input gave.
enum Line {
    /// A whole line is in the buffer.
    Ready,
    /// A line over the bound was skipped.
    TooLong,
    /// The input ended.
    End,
}

impl<R: AsyncBufRead + Unpin, W> LineTransport<R, W> {
    /// Reads one line into `self.line`, never holding more than the bound.
    /// A partial line stays in the buffer if the future is dropped (the
    /// service polls `receive` inside a `select!`), and the next call
    /// resumes it.
    async fn read_line(&mut self) -> std::io::Result<Line> {
        loop {
            let buf = self.read.fill_buf().await?;
            if buf.is_empty() {
                // A last message without its newline still counts.
                return Ok(if std::mem::take(&mut self.skipping) {
                    Line::TooLong
                } else if self.line.is_empty() {
                    Line::End
                } else {
                    Line::Ready
                });
            }
            let (take, done) = match buf.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            if !self.skipping {
                if self.line.len().saturating_add(take) > self.max_line {
                    self.line.clear();
                    self.skipping = true;
                } else {
                    self.line
                        .extend_from_slice(buf.get(..take).unwrap_or_default());
                }
            }
            self.read.consume(take);
            if done {
                return Ok(if std::mem::take(&mut self.skipping) {
                    Line::TooLong
                } else {
                    Line::Ready
                });
            }
        }
    }
}

/// The message a line holds, or the error to answer it with.
fn parse(
    line: &[u8],
) -> Result<Option<RxJsonRpcMessage<RoleServer>>, (ErrorData, Option<RequestId>)> {
    let line = line
        .strip_prefix(b"\xef\xbb\xbf".as_slice())
        .unwrap_or(line);
    let value: Value = serde_json::from_slice(line).map_err(|e| {
        (
            ErrorData::new(
                ErrorCode::PARSE_ERROR,
                format!("parse error: not JSON ({e})"),
                None,
            ),
            None,
        )
    })?;
    let Value::Object(obj) = &value else {
        let what = if value.is_array() {
            "a batch (an array); MCP sends one message per line"
        } else {
            "not a JSON object"
        };
        return Err((invalid(format!("invalid request: {what}")), None));
    };
    let id = obj
        .get("id")
        .and_then(|id| serde_json::from_value::<RequestId>(id.clone()).ok());
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return Err((
            invalid("invalid request: `jsonrpc` must be \"2.0\"".into()),
            id,
        ));
    }
    let is_notification = obj.contains_key("method") && !obj.contains_key("id");
    match serde_json::from_value(value.clone()) {
        Ok(msg) => Ok(Some(msg)),
        // JSON-RPC answers no notification, not even a bad one.
        Err(_) if is_notification => Ok(None),
        Err(e) => {
            let method = obj.get("method").and_then(Value::as_str).unwrap_or("");
            let msg = if method.is_empty() {
                format!("invalid request: {e}")
            } else {
                format!("invalid request for `{method}`: {e}")
            };
            let code = if method.is_empty() {
                ErrorCode::INVALID_REQUEST
            } else {
                ErrorCode::INVALID_PARAMS
            };
            Err((ErrorData::new(code, msg, None), id))
        }
    }
}

fn is_request(msg: &RxJsonRpcMessage<RoleServer>) -> bool {
    matches!(msg, rmcp::model::JsonRpcMessage::Request(_))
}

fn invalid(message: String) -> ErrorData {
    ErrorData::new(ErrorCode::INVALID_REQUEST, message, None)
}

async fn write_line<W: AsyncWrite + Unpin>(
    lock: &Mutex<Option<W>>,
    msg: &TxJsonRpcMessage<RoleServer>,
) -> std::io::Result<()> {
    let mut text = serde_json::to_vec(msg)?;
    text.push(b'\n');
    let mut guard = lock.lock().await;
    let Some(w) = guard.as_mut() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "the transport is closed",
        ));
    };
    w.write_all(&text).await?;
    w.flush().await
}

impl<R, W> Transport<RoleServer> for LineTransport<R, W>
where
    R: AsyncBufRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    type Error = std::io::Error;

    fn name() -> Cow<'static, str> {
        "xaeroflux-mcp line transport".into()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let lock = self.write.clone();
        async move { write_line(&lock, &item).await }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            let got = match self.read_line().await {
                Ok(g) => g,
                Err(_) => return None,
            };
            let reply = match got {
                Line::End => return None,
                Line::TooLong => (
                    invalid(format!(
                        "invalid request: a message over {} bytes was skipped",
                        self.max_line
                    )),
                    None,
                ),
                Line::Ready => {
                    let line = std::mem::take(&mut self.line);
                    let text = line.strip_suffix(b"\n").unwrap_or(&line);
                    let text = text.strip_suffix(b"\r").unwrap_or(text);
                    if text.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let parsed = parse(text);
                    self.line = line;
                    self.line.clear();
                    match parsed {
                        // A session begins with a request: a stray
                        // notification or response before it (which
                        // needs no answer) would end it.
                        Ok(Some(msg)) if !self.begun && !is_request(&msg) => continue,
                        Ok(Some(msg)) => {
                            self.begun = true;
                            return Some(msg);
                        }
                        Ok(None) => continue,
                        Err(reply) => reply,
                    }
                }
            };
            let (error, id) = reply;
            let msg = TxJsonRpcMessage::<RoleServer>::error(error, id);
            if write_line(&self.write, &msg).await.is_err() {
                return None;
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        if let Some(mut w) = self.write.lock().await.take() {
            w.shutdown().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` to a transport and returns what it passed on and the
    /// lines it answered by itself.
    async fn run(input: &str, max_line: usize) -> (Vec<Value>, Vec<Value>) {
        let (answers_w, mut answers_r) = tokio::io::duplex(1 << 16);
        let reader =
            tokio::io::BufReader::with_capacity(16, std::io::Cursor::new(input.to_owned()));
        let mut t = LineTransport::new(reader, answers_w).with_max_line(max_line);
        let mut passed = Vec::new();
        while let Some(msg) = t.receive().await {
            passed.push(serde_json::to_value(&msg).unwrap_or_default());
        }
        drop(t);
        let mut answers = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut answers_r, &mut answers)
            .await
            .unwrap_or_default();
        let answered = answers
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_default())
            .collect();
        (passed, answered)
    }

    const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

    #[tokio::test]
    async fn a_line_over_the_bound_is_skipped_with_an_error_and_the_next_one_read() {
        let long = format!(
            r#"{{"jsonrpc":"2.0","id":9,"method":"ping","x":"{}"}}"#,
            "a".repeat(300)
        );
        let input = format!("{INIT}\n{long}\n{INIT}\n");
        let (passed, answered) = run(&input, 256).await;
        assert_eq!(passed.len(), 2, "{passed:?}");
        assert_eq!(answered.len(), 1, "{answered:?}");
        assert_eq!(answered[0]["error"]["code"], -32600);
        let msg = answered[0]["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("over 256 bytes"), "{msg}");
    }

    #[tokio::test]
    async fn bad_frames_are_answered_and_reading_goes_on() {
        let input = format!(
            "not json\n[{INIT}]\n{{\"id\":3,\"method\":\"ping\"}}\n\
             {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/bogus\",\"params\":7}}\n\n{INIT}"
        );
        let (passed, answered) = run(&input, MAX_LINE).await;
        let codes: Vec<&Value> = answered.iter().map(|a| &a["error"]["code"]).collect();
        assert_eq!(codes, [-32700, -32600, -32600], "{answered:?}");
        assert_eq!(answered[2]["id"], 3, "the id is echoed");
        // The last line, without its newline, is still read.
        assert_eq!(passed.len(), 1, "{passed:?}");
        assert_eq!(passed[0]["method"], "initialize");
    }

    #[tokio::test]
    async fn notifications_and_responses_before_the_first_request_are_dropped() {
        let input = format!(
            "{{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{{\"requestId\":1}}}}\n\
             {{\"jsonrpc\":\"2.0\",\"id\":5,\"result\":{{}}}}\n{INIT}\n\
             {{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}}\n"
        );
        let (passed, answered) = run(&input, MAX_LINE).await;
        assert!(answered.is_empty(), "{answered:?}");
        let methods: Vec<&Value> = passed.iter().map(|m| &m["method"]).collect();
        assert_eq!(methods, ["initialize", "notifications/initialized"]);
    }
}
