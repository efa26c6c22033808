//! Progress on stderr: an indicatif bar that appears only when stderr is a
//! terminal, and only once the work has taken long enough to be worth one.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long work runs before its bar appears.
const DELAY: Duration = Duration::from_millis(800);

/// A byte-counting progress bar that stays hidden until [`DELAY`] has
/// passed, and for good when stderr is not a terminal.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    /// The bar may be shown at all (stderr is a terminal).
    allowed: bool,
    shown: bool,
}

impl Progress {
    /// A bar over `total` bytes, labelled `message`.
    pub fn bytes(total: u64, message: &str) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(message.to_string());
        Progress {
            bar,
            started: Instant::now(),
            allowed: std::io::stderr().is_terminal(),
            shown: false,
        }
    }

    /// A bar over `total` steps, shown at once when stderr is a terminal.
    pub fn steps(total: u64) -> Self {
        let target = if std::io::stderr().is_terminal() {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(total), target);
        let style = ProgressStyle::with_template("{spinner} [{bar:30}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(120));
        let allowed = !bar.is_hidden();
        Progress {
            bar,
            started: Instant::now(),
            allowed,
            shown: allowed,
        }
    }

    /// A bar that is never shown.
    pub fn hidden() -> Self {
        let bar = ProgressBar::hidden();
        Progress {
            bar,
            started: Instant::now(),
            allowed: false,
            shown: false,
        }
    }

    /// Advances by `n`, showing the bar once it has been running long enough.
    pub fn inc(&mut self, n: u64) {
        self.bar.inc(n);
        if self.allowed && !self.shown && self.started.elapsed() >= DELAY {
            self.bar.set_draw_target(ProgressDrawTarget::stderr());
            self.shown = true;
        }
    }

    /// Sets the label.
    pub fn set_message(&self, message: String) {
        self.bar.set_message(message);
    }

    /// Runs `f` with the bar wiped from the terminal, so that it can write
    /// lines of its own (to stderr, or to stdout when that is the terminal).
    pub fn suspend<T>(&self, f: impl FnOnce() -> T) -> T {
        if self.shown {
            self.bar.suspend(f)
        } else {
            f()
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
    }
}
