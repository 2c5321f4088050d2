//! Progress bars (`indicatif`, drawn on stderr) for long passes: a
//! catch-up, `xf verify`, `xf repair`. Shown only when stdout is a
//! terminal, so scripts and the JSON outputs get nothing of them.

use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};
use xaeroflux::{Outcome, Progress, PullProgress};

/// A bar, or nothing when stdout is not a terminal.
pub struct Bar(Option<ProgressBar>);

/// Whether progress is shown at all.
pub fn wanted() -> bool {
    std::io::stdout().is_terminal()
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Bar {
    /// A pass over the store's pages, measured in bytes (events in the
    /// message).
    pub fn pages(what: &str) -> Self {
        if !wanted() {
            return Bar(None);
        }
        let b = ProgressBar::new(0).with_style(style(
            "{prefix} [{bar:30}] {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec}, {eta} left, {msg}",
        ));
        b.set_prefix(what.to_string());
        Bar(Some(b))
    }

    /// A catch-up, measured in events (bytes in the message).
    pub fn events(what: &str) -> Self {
        if !wanted() {
            return Bar(None);
        }
        Bar(Some(events_bar(what)))
    }

    /// Where a pass over pages has come.
    pub fn pages_done(&self, p: Progress) {
        if let Some(b) = &self.0 {
            b.set_length(p.total_bytes.max(p.bytes));
            b.set_position(p.bytes);
            b.set_message(format!("{} events", p.events));
        }
    }

    /// Where a catch-up has come.
    pub fn events_done(&self, got: u64, wanted: u64, bytes: u64) {
        if let Some(b) = &self.0 {
            b.set_length(wanted.max(got));
            b.set_position(got);
            b.set_message(format!("{} in", HumanBytes(bytes)));
        }
    }

    /// Where a session has come.
    pub fn session(&self, o: &Outcome) {
        self.events_done(o.events_in, o.events_wanted, o.bytes_in);
    }

    /// Removes the bar.
    pub fn clear(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}

fn events_bar(what: &str) -> ProgressBar {
    let b = ProgressBar::new(0).with_style(style(
        "{prefix} [{bar:30}] {pos}/{len} events {per_sec}, {eta} left, {msg}",
    ));
    b.set_prefix(what.to_string());
    b
}

/// The bar of a running node: shown while its sessions pull more than a
/// few events, gone in between; lines printed meanwhile go above it.
#[derive(Default)]
pub struct CatchUp(Mutex<Option<ProgressBar>>);

impl CatchUp {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ProgressBar>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Shows where the node's sessions have come.
    pub fn update(&self, p: PullProgress) {
        let mut bar = self.lock();
        if p.events_wanted > p.events_in {
            let b = bar.get_or_insert_with(|| events_bar("catch-up"));
            b.set_length(p.events_wanted);
            b.set_position(p.events_in);
            b.set_message(format!(
                "{} in, {} sessions",
                HumanBytes(p.bytes_in),
                p.sessions
            ));
        } else if let Some(b) = bar.take() {
            b.finish_and_clear();
        }
    }

    /// Runs `f` (which prints) with the bar out of the way.
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        match &*self.lock() {
            Some(b) => b.suspend(f),
            None => f(),
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.clear();
    }
}
