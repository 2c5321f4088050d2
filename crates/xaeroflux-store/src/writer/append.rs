//! Local appends: each event gets the next seq of the store's own log in
//! its topic and a timestamp that never goes back, and is encoded straight
//! into its page slot.

use std::collections::HashSet;

use xaeroflux_merkle::{Hash, hash_leaf};
use xaeroflux_types::{EVENT_HEADER_LEN, LogId, NewEvent, decode_event, encode_event_into};

use super::Writer;
use super::flusher::Job;
use super::request::{Committed, Reply};
use crate::error::{Result, internal};
use crate::format::{RECORD_HEADER_LEN, write_record_header};
use crate::seal::SealPlace;
use crate::shared::FastHasher;

impl Writer {
    /// Applies one append request to the job; answers at once if it cannot
    /// be taken.
    pub(super) fn append(
        &mut self,
        events: Vec<NewEvent>,
        reply: Reply<Committed>,
        now: u64,
        job: &mut Job,
    ) {
        if let Some(why) = self.stopped.reason() {
            return reply.stopped(&why);
        }
        if let Err(e) = self.shared.check_events(&events) {
            return reply.send(Err(e));
        }
        let mut c = Committed {
            events: Vec::with_capacity(events.len()),
            heads: Vec::new(),
        };
        let author = self.shared.author;
        for ev in &events {
            let id = LogId {
                author,
                topic: ev.topic().id(),
            };
            match self.apply_event(ev, id, now, job) {
                Ok(r) => c.events.push(r),
                Err(e) => {
                    // Part of this request is in memory but cannot be
                    // written consistently: stop, as after an I/O error.
                    let why = self.stopped.stop(e);
                    return reply.stopped(&why);
                }
            }
        }
        // Each log the request touched, once, in first-touch order.
        let mut seen: HashSet<LogId, std::hash::BuildHasherDefault<FastHasher>> =
            HashSet::default();
        for (id, _, _) in &c.events {
            if seen.insert(*id)
                && let Some(st) = self.logs.get(id)
            {
                c.heads.push((*id, st.size, st.frontier.root()));
            }
        }
        job.answers.push((reply, c));
    }

    fn apply_event(
        &mut self,
        ev: &NewEvent,
        id: LogId,
        now: u64,
        job: &mut Job,
    ) -> Result<(LogId, u64, Hash)> {
        // One buffer for sealed payloads, reused from event to event.
        let mut sealed = std::mem::take(&mut self.seal_buf);
        let r = self.apply_event_with(ev, id, now, job, &mut sealed);
        self.seal_buf = sealed;
        r
    }

    fn apply_event_with(
        &mut self,
        ev: &NewEvent,
        id: LogId,
        now: u64,
        job: &mut Job,
        sealed: &mut Vec<u8>,
    ) -> Result<(LogId, u64, Hash)> {
        // An event to seal is sealed here, where its seq and timestamp are
        // fixed; only the sealed bytes reach the page.
        let sealer = if ev.is_encrypted() {
            Some(self.shared.sealers.get(&id.topic).ok_or_else(|| {
                internal("a sealer registered at the check went away".to_string())
            })?)
        } else {
            None
        };
        let payload_len = match &sealer {
            Some(s) => s.sealed_len(ev.payload().len()),
            None => ev.payload().len(),
        };
        let rec_len = RECORD_HEADER_LEN + EVENT_HEADER_LEN + payload_len;
        let st = self.room_for(id, rec_len, job)?;
        if st.topic_name.is_none() {
            st.topic_name = Some(ev.topic().name().to_string());
            job.topic_names
                .push((id.topic, ev.topic().name().to_string()));
        }
        let ts = now.max(st.last_ts);
        let seq = st.size;
        st.class = st.class.min(ev.kind());
        if let Some(s) = &sealer {
            let place = SealPlace {
                author: id.author,
                topic: id.topic,
                kind: ev.kind(),
                flags: ev.flags(),
                seq,
                timestamp_ms: ts,
            };
            s.seal_into(&place, ev.payload(), sealed)
                .map_err(|e| internal(format!("sealing event {seq}: {e}")))?;
            if sealed.len() != payload_len {
                return Err(internal(format!(
                    "a sealer gave {} bytes for {payload_len}",
                    sealed.len()
                )));
            }
        }
        let payload = if sealer.is_some() {
            &sealed[..]
        } else {
            ev.payload()
        };
        let (head, body) = st.open_mut()?.slot(rec_len)?;
        encode_event_into(body, seq, ts, ev.kind(), ev.flags(), payload)
            .map_err(|e| internal(format!("encoding into a slot made to size: {e}")))?;
        write_record_header(head, body);
        let leaf = hash_leaf(body);
        st.account(leaf, ts, rec_len, &mut job.chunks);
        self.touch(id);
        Ok((id, seq, leaf))
    }

    /// Places one already-encoded event (another author's, verified) at
    /// the end of its log's open page.
    pub(super) fn apply_encoded(
        &mut self,
        bytes: &[u8],
        leaf: Hash,
        id: LogId,
        job: &mut Job,
    ) -> Result<()> {
        let header = decode_event(bytes).map_err(|e| internal(format!("a verified event: {e}")))?;
        let (ts, kind) = (header.timestamp_ms(), header.kind());
        let rec_len = RECORD_HEADER_LEN + bytes.len();
        let st = self.room_for(id, rec_len, job)?;
        st.class = st.class.min(kind);
        let (head, body) = st.open_mut()?.slot(rec_len)?;
        body.copy_from_slice(bytes);
        write_record_header(head, body);
        st.account(leaf, ts, rec_len, &mut job.chunks);
        self.touch(id);
        Ok(())
    }
}
