//! Imports: a page of another author's log, applied only if it extends
//! the log as held to the author's signed root.

use xaeroflux_merkle::Frontier;
use xaeroflux_types::{CheckedPage, Rejection, Topic, decode_event};

use super::Writer;
use super::flusher::Job;
use super::request::{Committed, Reply, VerifiedPage};
use crate::error::{Result, StoreError};

impl Writer {
    /// Applies one import request to the job; a refusal is answered at once
    /// and changes nothing.
    pub(super) fn import_request(
        &mut self,
        page: VerifiedPage,
        reply: Reply<Committed>,
        job: &mut Job,
    ) {
        if let Some(why) = self.stopped.reason() {
            return reply.stopped(&why);
        }
        match self.import(page, job) {
            Ok(c) => job.answers.push((reply, c)),
            // Refused before anything changed.
            Err(e @ StoreError::Rejected(_)) => reply.send(Err(e)),
            Err(e) => {
                // Failed midway (an I/O error allocating a page): stop, as
                // after any write error.
                let why = self.stopped.stop(e);
                reply.stopped(&why);
            }
        }
    }

    /// Checks a page against the log as it is now, without changing
    /// anything (see `ImportPage::check`).
    fn check_import(&mut self, v: &VerifiedPage) -> Result<CheckedPage> {
        let log = v.page.log;
        if log.author == self.shared.author {
            return Err(Rejection {
                log,
                reason: "the store's own log is never imported".into(),
            }
            .into());
        }
        let held = if self.logs.contains_key(&log) {
            true
        } else {
            let txn = self.shared.index.read_txn()?;
            self.shared.index.log_record(&txn, &log)?.is_some()
        };
        let max = self.shared.max_event_len();
        let empty = Frontier::new();
        let (frontier, mut last_ts) = if held {
            let st = self.load_log(log)?;
            (&st.frontier, st.last_ts)
        } else {
            (&empty, 0)
        };
        let checked = v.page.check(&v.checkpoint, frontier, max)?;
        // A log's timestamps never go back (its author's store raises them):
        // reads by time rely on it, so a log that breaks it is refused.
        for (bytes, seq) in v
            .page
            .events
            .iter()
            .skip(checked.skip)
            .zip(v.page.first_seq + checked.skip as u64..)
        {
            let ts = decode_event(bytes)
                .map_err(|e| Rejection {
                    log,
                    reason: format!("event {seq}: {e}"),
                })?
                .timestamp_ms();
            if ts < last_ts {
                return Err(Rejection {
                    log,
                    reason: format!(
                        "event {seq} is stamped {ts}, before its predecessor's {last_ts}: a log's timestamps never go back"
                    ),
                }
                .into());
            }
            last_ts = ts;
        }
        Ok(checked)
    }

    fn import(&mut self, v: VerifiedPage, job: &mut Job) -> Result<Committed> {
        let checked = self.check_import(&v)?;
        let VerifiedPage { page, checkpoint } = v;
        let id = page.log;
        let mut c = Committed {
            events: Vec::with_capacity(checked.leaves.len()),
            heads: Vec::new(),
        };
        // Allocates the log (when new) only now that the page is verified.
        self.load_log(id)?;
        let new = page.events.iter().skip(checked.skip).zip(checked.leaves);
        for ((bytes, leaf), seq) in new.zip(page.first_seq + checked.skip as u64..) {
            self.apply_encoded(bytes, leaf, id, job)?;
            c.events.push((id, seq, leaf));
        }
        let st = self.log_mut(&id)?;
        if st.topic_name.is_none()
            && let Some(name) = page.topic_name.filter(|n| Topic::id_of(n) == id.topic)
        {
            st.topic_name = Some(name.clone());
            job.topic_names.push((id.topic, name));
        }
        c.heads.push((id, st.size, st.frontier.root()));
        // The checkpoint is kept once the log reaches it, so a kept
        // checkpoint always covers events the store holds (and can serve).
        let reached = st.size == checkpoint.size;
        if reached && let Some(log_no) = self.newer_checkpoint(id, checkpoint.size)? {
            job.checkpoints.retain(|(n, _, _, _)| *n != log_no);
            job.checkpoints
                .push((log_no, id, checkpoint.size, page.note));
        }
        Ok(c)
    }
}
