//! Progress bars on stderr, only when stderr is a terminal: one bar per file, replaced when
//! the next file starts.

use std::io::IsTerminal as _;

use ferry_sync::client::{Progress, visible};
use indicatif::{ProgressBar, ProgressStyle};

/// The bar of the file being transferred, if bars are on.
#[derive(Debug)]
pub(crate) struct Bars {
    enabled: bool,
    current: Option<(String, ProgressBar)>,
}

impl Bars {
    /// Bars if stderr is a terminal, nothing otherwise.
    pub(crate) fn new() -> Self {
        Self {
            enabled: std::io::stderr().is_terminal(),
            current: None,
        }
    }

    /// Shows `p`, starting a new bar when the file changes.
    pub(crate) fn update(&mut self, p: Progress<'_>) {
        if !self.enabled {
            return;
        }
        if let Some((name, bar)) = &self.current
            && name == p.name.as_str()
        {
            bar.set_position(p.done);
            return;
        }
        self.finish();
        let bar = ProgressBar::new(p.total);
        let style = ProgressStyle::with_template(
            "{msg:32!} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {eta:>4}",
        )
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar.set_message(visible(p.name.as_str()));
        bar.set_position(p.done);
        self.current = Some((p.name.as_str().to_owned(), bar));
    }

    /// Ends the current bar where it stopped (after a failure or a cancel), leaving it on
    /// screen.
    pub(crate) fn abandon(&mut self) {
        if let Some((_, bar)) = self.current.take() {
            bar.abandon();
        }
    }

    /// [`Bars::finish`] after a success, [`Bars::abandon`] otherwise.
    pub(crate) fn end(&mut self, success: bool) {
        if success {
            self.finish();
        } else {
            self.abandon();
        }
    }

    /// Ends the current bar, leaving its last state on screen.
    pub(crate) fn finish(&mut self) {
        if let Some((_, bar)) = self.current.take() {
            bar.finish();
        }
    }
}
