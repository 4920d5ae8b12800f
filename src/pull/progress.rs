//! How a pull reports what it is doing.

use std::io::IsTerminal;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressStyle};

pub trait Progress {
    /// A new step begins; `total` is its size in bytes when known.
    fn start(&self, what: &str, total: Option<u64>);
    /// `done` is the number of bytes finished so far in the current step (not a delta).
    fn advance(&self, done: u64);
    fn finish(&self, msg: &str);
    fn message(&self, msg: &str);
}

/// Reports nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total: Option<u64>) {}
    fn advance(&self, _done: u64) {}
    fn finish(&self, _msg: &str) {}
    fn message(&self, _msg: &str) {}
}

/// A progress bar on stderr; when stderr is not a terminal, one line at the start
/// and one at the end of each step instead.
pub struct BarProgress {
    interactive: bool,
    bar: Mutex<Option<ProgressBar>>,
}

impl BarProgress {
    pub fn new() -> BarProgress {
        BarProgress { interactive: std::io::stderr().is_terminal(), bar: Mutex::new(None) }
    }

    fn bar(&self) -> MutexGuard<'_, Option<ProgressBar>> {
        // A panic elsewhere while holding the lock leaves nothing inconsistent here.
        self.bar.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for BarProgress {
    fn default() -> Self {
        BarProgress::new()
    }
}

impl Progress for BarProgress {
    fn start(&self, what: &str, total: Option<u64>) {
        let mut slot = self.bar();
        if let Some(old) = slot.take() {
            old.finish_and_clear();
        }
        if !self.interactive {
            match total {
                Some(total) => eprintln!("{what} ({})...", HumanBytes(total)),
                None => eprintln!("{what}..."),
            }
            return;
        }
        let bar = match total {
            Some(total) => {
                let bar = ProgressBar::new(total);
                if let Ok(style) =
                    ProgressStyle::with_template("{msg} [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar
            }
            None => {
                let bar = ProgressBar::new_spinner();
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                    bar.set_style(style);
                }
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            }
        };
        bar.set_message(what.to_owned());
        *slot = Some(bar);
    }

    fn advance(&self, done: u64) {
        if let Some(bar) = self.bar().as_ref() {
            bar.set_position(done);
        }
    }

    fn finish(&self, msg: &str) {
        if let Some(bar) = self.bar().take() {
            bar.finish_and_clear();
        }
        eprintln!("{msg}");
    }

    fn message(&self, msg: &str) {
        match self.bar().as_ref() {
            Some(bar) => bar.println(msg),
            None => eprintln!("{msg}"),
        }
    }
}
