//! Progress bars on a terminal, nothing on a pipe.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A byte-and-file progress display; cheap no-op when hidden.
pub struct Progress {
    bar: Option<ProgressBar>,
    files: AtomicU64,
    verb: &'static str,
}

impl Progress {
    /// A bar for `verb` ("backing up", "restoring"...), shown only when `enabled` and
    /// stderr is a terminal.
    pub fn new(enabled: bool, verb: &'static str) -> Self {
        let bar = (enabled && std::io::stderr().is_terminal()).then(|| {
            let b = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            b.set_style(
                ProgressStyle::with_template(
                    "{spinner} {msg} {bytes}/{total_bytes} [{wide_bar}] {binary_bytes_per_sec} ETA {eta}",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Progress {
            bar,
            files: AtomicU64::new(0),
            verb,
        }
    }

    /// Turns the bar into a spinner with the elapsed time, for a step that moves no
    /// bytes (starting servers, running checks).
    pub fn as_step(&self) {
        if let Some(b) = &self.bar {
            b.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
            );
        }
    }

    /// Whether anything is drawn.
    pub fn is_visible(&self) -> bool {
        self.bar.is_some()
    }

    /// Sets the expected total of bytes (when a scan finds it).
    pub fn set_total(&self, bytes: u64) {
        if let Some(b) = &self.bar {
            b.set_length(bytes);
        }
    }

    /// Adds processed bytes.
    pub fn add_bytes(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Counts one finished file.
    pub fn add_file(&self) {
        let n = self.files.fetch_add(1, Ordering::Relaxed) + 1;
        if let Some(b) = &self.bar {
            if n % 32 == 1 {
                b.set_message(format!("{} {n} files", self.verb));
            }
        }
    }

    /// Names what is being processed (a stack's source).
    pub fn set_message(&self, label: &str) {
        if let Some(b) = &self.bar {
            b.set_message(format!("{} {label}", self.verb));
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}
