//! The whole-store check, and the store's sizes.

use heed::RoTxn;
use xaeroflux_merkle::{Frontier, NoteVerifier, mth, root_at};
use xaeroflux_types::LogId;

use super::Store;
use crate::error::{Result, corrupt};
use crate::index::{LogRecord, PageEntry};
use crate::reader::{Expect, open_page};
use crate::receipts::{Progress, Stats, VerifyReport};
use crate::tree::ChunkAssembler;

impl Store {
    /// Sizes of the store.
    pub fn stat(&self) -> Result<Stats> {
        let txn = self.txn()?;
        let index = &self.shared.index;
        let mut s = Stats {
            page_size: self.shared.segments.page_size() as u32,
            segment_pages: self.shared.segments.segment_pages(),
            index_bytes: index.disk_size(),
            ..Stats::default()
        };
        for (_, rec) in index.logs(&txn)? {
            s.logs += 1;
            s.events += rec.size;
        }
        for (_, e) in index.pages(&txn)? {
            s.pages += 1;
            s.sealed_pages += e.sealed as u64;
        }
        let next = index.next_page(&txn)?;
        let segs = &self.shared.segments;
        for seg in 0..=next.segment {
            if let Ok(m) = std::fs::metadata(segs.path(seg)) {
                s.segments += 1;
                s.segment_bytes += m.len();
            }
        }
        Ok(s)
    }

    /// Checks everything: every page header and checksum, every record, the
    /// page-tree root of every sealed page, every index chunk against the
    /// tree recomputed from the events, every log root, and the signature
    /// and root of every stored checkpoint.
    pub fn verify(&self) -> Result<VerifyReport> {
        self.verify_with_progress(&mut |_| {})
    }

    /// [`Store::verify`], calling `progress` after each page.
    pub fn verify_with_progress(&self, progress: &mut dyn FnMut(Progress)) -> Result<VerifyReport> {
        let txn = self.txn()?;
        let mut report = VerifyReport::default();
        if let Err(e) = self.shared.index.check_structure(&txn) {
            // LMDB would read the damaged pages as they are: stop here.
            report.problems.push(e);
            return Ok(report);
        }
        let logs = self.shared.index.logs(&txn)?;
        if let Err(e) = self.shared.index.check_cross_tables(&txn, &logs) {
            report.problems.push(e);
        }
        let page = self.shared.segments.page_size() as u64;
        let mut done = Progress {
            total_bytes: (self.shared.index.pages(&txn)?.len() as u64).saturating_mul(page),
            ..Progress::default()
        };
        for (log, rec) in logs {
            report.logs += 1;
            if let Err(e) = self.verify_log(&txn, &log, &rec, &mut report, &mut |count| {
                done.events += count;
                done.bytes += page;
                progress(done);
            }) {
                report.problems.push(e);
            }
        }
        if let Err(e) = self.verify_catalog(&txn, &mut report) {
            report.problems.push(e);
        }
        Ok(report)
    }

    /// Checks the catalog: its header and records, and that every topic
    /// name and other author's checkpoint of the index is in it (the index
    /// transaction `txn` is older than the file read here, and the flusher
    /// appends to the catalog before it commits the index). A store no
    /// writer has opened since catalogs exist has none: nothing to check.
    fn verify_catalog(&self, txn: &RoTxn, report: &mut VerifyReport) -> Result<()> {
        use crate::format::catalog::{CatalogEntry, Damage};
        let dir = &self.shared.dir;
        let Some(read) = crate::catalog::read(dir, &self.shared.segments.store_id())? else {
            return Ok(());
        };
        let path = crate::catalog::catalog_path(dir);
        if let Some(Damage::Corrupt { offset, reason }) = &read.scan.damage {
            return Err(corrupt(&path, *offset, reason.clone()));
        }
        let mut names = std::collections::HashSet::new();
        let mut sizes = std::collections::HashMap::<LogId, u64>::new();
        for (_, e) in read.scan.entries {
            report.catalog_records += 1;
            match e {
                CatalogEntry::TopicName { topic, .. } => {
                    names.insert(topic);
                }
                CatalogEntry::Checkpoint { log, size, .. } => {
                    let s = sizes.entry(log).or_default();
                    *s = (*s).max(size);
                }
            }
        }
        let index = &self.shared.index;
        for (topic, name) in index.topic_names(txn)? {
            if !names.contains(&topic) {
                return Err(corrupt(
                    &path,
                    read.scan.valid_end,
                    format!("the name of topic {name:?} is in the index but not in the catalog"),
                ));
            }
        }
        for (log_no, note) in index.checkpoints(txn)? {
            let log = index.log_id(txn, log_no)?;
            if log.author == self.shared.author {
                continue;
            }
            let v = NoteVerifier::new(&log.origin(), &log.author)?;
            let Ok(cp) = v.verify_checkpoint(&note) else {
                continue; // reported with the log
            };
            if sizes.get(&log).is_none_or(|s| *s < cp.size) {
                return Err(corrupt(
                    &path,
                    read.scan.valid_end,
                    format!(
                        "log {log}: the checkpoint at size {} is in the index but not in the catalog",
                        cp.size
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks one log: its pages in order, their events and page-tree
    /// roots, the chunks, the root and the stored checkpoint.
    fn verify_log(
        &self,
        txn: &RoTxn,
        log: &LogId,
        rec: &LogRecord,
        report: &mut VerifyReport,
        page_done: &mut dyn FnMut(u64),
    ) -> Result<()> {
        let index = &self.shared.index;
        let mut tree = Tree {
            frontier: Frontier::new(),
            chunks: ChunkAssembler::default(),
            report,
        };
        let mut expect = 0u64;
        for (first, loc) in index.log_pages(txn, rec.log_no, 0, u64::MAX, usize::MAX)? {
            let e: PageEntry = index.page_entry(txn, loc)?;
            if first != expect || e.first_seq != first || e.log_no != rec.log_no {
                return Err(corrupt(
                    index.data_file(),
                    0,
                    format!("log {log}: page table has a gap at seq {expect}"),
                ));
            }
            self.verify_page(txn, log, rec.log_no, loc, &e, &mut tree)?;
            page_done(e.count as u64);
            expect = first + e.count as u64;
        }
        if expect != rec.size {
            return Err(corrupt(
                index.data_file(),
                0,
                format!(
                    "log {log}: pages hold {expect} events, the index says {}",
                    rec.size
                ),
            ));
        }
        let nodes = self.nodes(txn, log, rec, rec.size);
        if root_at(&nodes, rec.size)? != tree.frontier.root() {
            return Err(corrupt(
                index.data_file(),
                0,
                format!("log {log}: index root differs from the events"),
            ));
        }
        let report = tree.report;
        report.roots += 1;
        let Some(note) = index.checkpoint(txn, rec.log_no)? else {
            return Ok(());
        };
        let bad = |what: String| corrupt(index.data_file(), 0, format!("log {log}: {what}"));
        let v = NoteVerifier::new(&log.origin(), &log.author)?;
        let cp = v
            .verify_checkpoint(&note)
            .map_err(|e| bad(format!("stored checkpoint: {e}")))?;
        if cp.size > rec.size || root_at(&nodes, cp.size)? != cp.root {
            return Err(bad(format!(
                "stored checkpoint at size {} does not match the log",
                cp.size
            )));
        }
        report.checkpoints += 1;
        Ok(())
    }

    /// Checks one page of a log and adds its events to the recomputed tree;
    /// the chunks it completes are compared with the index's.
    fn verify_page(
        &self,
        txn: &RoTxn,
        log: &LogId,
        log_no: u32,
        loc: crate::index::PageLoc,
        e: &PageEntry,
        tree: &mut Tree<'_>,
    ) -> Result<()> {
        let report = &mut *tree.report;
        let index = &self.shared.index;
        let segs = &self.shared.segments;
        let log_bytes = log.to_bytes();
        let want = Expect {
            log: &log_bytes,
            first_seq: e.first_seq,
            count: e.count,
            sealed: e.sealed,
        };
        let page = open_page(segs, loc, want)?;
        report.pages += 1;
        let mut leaves = Vec::with_capacity(e.count as usize);
        let mut done = Vec::new();
        for ev in page.events(segs) {
            let leaf = ev?.leaf_hash();
            leaves.push(leaf);
            let chunks = &mut tree.chunks;
            tree.frontier
                .push_with(leaf, |l, i, h| chunks.on_node(l, i, h, &mut done));
            report.events += 1;
        }
        if e.sealed {
            if mth(&leaves) != page.header.page_root {
                return Err(corrupt(
                    segs.path(loc.segment),
                    page.root_offset(),
                    "page-tree root does not match the page's events",
                ));
            }
            report.sealed_pages += 1;
        }
        for c in done {
            let stored = index.chunk(txn, log_no, c.tier, c.chunk)?;
            let same =
                stored.is_some_and(|s| s.chunks_exact(32).zip(c.nodes.iter()).all(|(a, b)| a == b));
            if !same {
                return Err(corrupt(
                    index.data_file(),
                    0,
                    format!(
                        "log {log}: index chunk {} of tier {} differs from the events",
                        c.chunk, c.tier
                    ),
                ));
            }
            report.chunks += 1;
        }
        Ok(())
    }
}

/// The tree `verify` recomputes from a log's events, and what it counts.
struct Tree<'r> {
    frontier: Frontier,
    chunks: ChunkAssembler,
    report: &'r mut VerifyReport,
}
