//! Recovery: brings the index up to date with the segments at open. The
//! segments are the source of truth; the index may lag them by the events
//! of the commits after its last one, which are found on disk and counted
//! again. Opening costs a CRC check per log plus the lagging pages.

use crate::receipts::Progress;
use xaeroflux_merkle::hash_leaf;
use xaeroflux_types::{LogId, decode_event};

use super::Writer;
use super::flusher::Job;
use super::page::OpenBuf;
use crate::error::{Result, internal};
use crate::format::{PAGE_HEADER_LEN, PAGE_VERSION, PageHeader, read_record};
use crate::index::PageLoc;

impl Writer {
    /// Replays events written (and possibly acknowledged) after the index's
    /// last commit, and commits what counts them, durably. Returns the
    /// number of events replayed. Runs before the threads start.
    pub fn recover(&mut self, progress: &mut dyn FnMut(Progress)) -> Result<u64> {
        let mut job = Job::default();
        let mut replayed = self.recover_open_pages(&mut job)?;
        replayed += self.recover_new_pages(&mut job, progress)?;
        self.seal_job(&mut job);
        let mut flusher = self
            .flusher
            .take()
            .ok_or_else(|| internal("recovery ran twice"))?;
        // Whatever was replayed is on disk already; this writes the headers
        // and index entries that count it, durably.
        let r = flusher.execute(&job, true).and_then(|_| flusher.sync_all());
        self.flusher = Some(flusher);
        r?;
        self.shared.set_own_heads(job.own_heads);
        Ok(replayed)
    }

    /// The open page of every indexed log may hold more records.
    fn recover_open_pages(&mut self, job: &mut Job) -> Result<u64> {
        let shared = self.shared.clone();
        let logs = {
            let txn = shared.index.read_txn()?;
            shared.index.logs(&txn)?
        };
        let mut replayed = 0;
        for (id, rec) in logs {
            let Some(open) = rec.open else { continue };
            // Only a log whose open page holds a valid record past the
            // indexed end needs loading: one CRC check per log otherwise.
            let page = shared.segments.page(open.loc)?;
            let version = PageHeader::read(page)
                .map(|h| h.version)
                .unwrap_or(PAGE_VERSION);
            let next = read_record(page, PAGE_HEADER_LEN + open.used as usize, version)
                .ok()
                .and_then(|(bytes, _)| decode_event(bytes).ok().map(|h| h.seq()));
            if next != Some(rec.size) {
                continue;
            }
            self.load_log(id)?;
            replayed += self.replay_open_page(&id, job)?;
        }
        Ok(replayed)
    }

    /// Pages allocated after the index's last commit, in allocation order,
    /// while each continues its log.
    fn recover_new_pages(
        &mut self,
        job: &mut Job,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<u64> {
        let shared = self.shared.clone();
        let segs = &shared.segments;
        let mut replayed = 0;
        // What is left to read: the segments from the first new page on
        // (all of them when the index is rebuilt).
        let mut done = Progress::default();
        let mut seg = self.next_page.segment;
        while let Ok(m) = std::fs::metadata(segs.path(seg)) {
            done.total_bytes += m.len();
            seg += 1;
        }
        let skipped = (self.next_page.page as u64).saturating_mul(segs.page_size() as u64);
        done.total_bytes = done.total_bytes.saturating_sub(skipped);
        loop {
            let mut loc = self.next_page;
            if loc.page > segs.segment_pages() {
                loc = PageLoc {
                    segment: loc.segment + 1,
                    page: 1,
                };
            }
            if !segs.path(loc.segment).exists() {
                break;
            }
            let data = segs.page(loc)?;
            let Ok(h) = PageHeader::read(data) else { break };
            if h.segment != loc.segment || h.page != loc.page {
                break;
            }
            let id = LogId::from_bytes(&h.log);
            let size = self.load_log(id)?.size;
            if h.first_seq != size {
                break;
            }
            let page_size = self.page_size();
            let st = self.log_mut(&id)?;
            if let Some(mut full) = st.open.take() {
                // Its records are on disk already; rewrite them whole.
                full.write_from = PAGE_HEADER_LEN;
                let (w, p) = full.seal(&id, st.log_no);
                job.writes.push(w);
                job.pages.push(p);
            }
            let mut open = OpenBuf::with_version(loc, size, page_size, h.version);
            open.buf.copy_from_slice(data);
            st.open = Some(open);
            self.touch(id);
            self.next_page = PageLoc {
                segment: loc.segment,
                page: loc.page + 1,
            };
            let n = self.replay_open_page(&id, job)?;
            replayed += n;
            done.events += n;
            done.bytes += page_size as u64;
            progress(done);
        }
        Ok(replayed)
    }

    /// Accounts for valid records found after the end of a log's open page.
    fn replay_open_page(&mut self, id: &LogId, job: &mut Job) -> Result<u64> {
        let st = self.log_mut(id)?;
        let mut n = 0u64;
        while let Some(open) = st.open.as_ref() {
            let off = open.end();
            let Ok((bytes, end)) = read_record(&open.buf, off, open.version) else {
                break;
            };
            let Ok(header) = decode_event(bytes) else {
                break;
            };
            if header.seq() != st.size {
                break;
            }
            let ts = header.timestamp_ms();
            let leaf = hash_leaf(bytes);
            st.account(leaf, ts, end - off, &mut job.chunks);
            n += 1;
        }
        if let Some(open) = st.open.as_mut() {
            // Anything after the last valid record is garbage from a torn write.
            let end = open.end();
            if let Some(tail) = open.buf.get_mut(end..) {
                tail.fill(0);
            }
            if n > 0 {
                open.write_from = PAGE_HEADER_LEN;
            }
        }
        if n > 0 {
            self.touch(*id);
        }
        Ok(n)
    }
}
