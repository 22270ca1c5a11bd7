//! Progress bars: `indicatif`'s with the `cli` feature, otherwise hidden
//! stand-ins with the same calls (they only count), so that the library
//! builds without terminal dependencies (the Python extension reports
//! progress through [`crate::train::job::Observer`] instead).

#[cfg(feature = "cli")]
pub use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[cfg(not(feature = "cli"))]
pub use hidden::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[cfg(not(feature = "cli"))]
mod hidden {
    use std::borrow::Cow;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// A bar that draws nothing and keeps only its position.
    #[derive(Clone, Debug, Default)]
    pub struct ProgressBar {
        pos: Arc<AtomicU64>,
    }

    impl ProgressBar {
        /// A bar of `_len` steps.
        pub fn new(_len: u64) -> Self {
            Self::default()
        }
        /// A hidden bar.
        pub fn hidden() -> Self {
            Self::default()
        }
        /// A bar of unknown length.
        pub fn no_length() -> Self {
            Self::default()
        }
        /// A spinner.
        pub fn new_spinner() -> Self {
            Self::default()
        }
        /// Ignored.
        pub fn set_style(&self, _style: ProgressStyle) {}
        /// Ignored.
        pub fn set_length(&self, _len: u64) {}
        /// Ignored.
        pub fn set_message(&self, _msg: impl Into<Cow<'static, str>>) {}
        /// Ignored.
        pub fn set_prefix(&self, _prefix: impl Into<Cow<'static, str>>) {}
        /// Ignored.
        pub fn enable_steady_tick(&self, _every: Duration) {}
        /// Ignored.
        pub fn finish_and_clear(&self) {}
        /// Set the position.
        pub fn set_position(&self, pos: u64) {
            self.pos.store(pos, Ordering::Relaxed);
        }
        /// Advance the position by `delta`.
        pub fn inc(&self, delta: u64) {
            self.pos.fetch_add(delta, Ordering::Relaxed);
        }
        /// The position.
        pub fn position(&self) -> u64 {
            self.pos.load(Ordering::Relaxed)
        }
    }

    /// A style (ignored).
    #[derive(Clone, Debug)]
    pub struct ProgressStyle;

    impl ProgressStyle {
        /// Accepts any template (the error type is `indicatif`'s stand-in).
        pub fn with_template(_template: &str) -> Result<Self, std::fmt::Error> {
            Ok(ProgressStyle)
        }
        /// Ignored.
        pub fn progress_chars(self, _chars: &str) -> Self {
            self
        }
    }

    /// Where bars are drawn (nowhere).
    #[derive(Debug)]
    pub struct ProgressDrawTarget;

    impl ProgressDrawTarget {
        /// Nowhere.
        pub fn stderr() -> Self {
            ProgressDrawTarget
        }
        /// Nowhere.
        pub fn hidden() -> Self {
            ProgressDrawTarget
        }
    }

    /// A group of bars; its lines go to stderr.
    #[derive(Debug)]
    pub struct MultiProgress;

    impl MultiProgress {
        /// A group drawing on `_target`.
        pub fn with_draw_target(_target: ProgressDrawTarget) -> Self {
            MultiProgress
        }
        /// Add a bar.
        pub fn add(&self, pb: ProgressBar) -> ProgressBar {
            pb
        }
        /// Print a line above the bars.
        pub fn println(&self, line: impl AsRef<str>) -> std::io::Result<()> {
            eprintln!("{}", line.as_ref());
            Ok(())
        }
    }
}
