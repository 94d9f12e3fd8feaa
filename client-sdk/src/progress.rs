//! Where long work reports its progress (fetching evidence, waiting for jobs): a terminal draws
//! bars, a log prints one line per stage, an app shows its own. Nothing is written to a
//! report's output between [`Progress::begin`] and [`Progress::end`].

/// A sink for the progress of long steps.
pub trait Progress {
    /// A step of `total` units begins (`total` may be 0 until known).
    fn begin(&mut self, what: &str, total: u64);
    /// `done` of `total` units are done; `note` says what is happening.
    fn update(&mut self, done: u64, total: u64, note: &str);
    /// The step has ended.
    fn end(&mut self);
}

/// Progress that is not shown.
#[derive(Clone, Copy, Debug, Default)]
pub struct Quiet;

impl Progress for Quiet {
    fn begin(&mut self, _: &str, _: u64) {}
    fn update(&mut self, _: u64, _: u64, _: &str) {}
    fn end(&mut self) {}
}
