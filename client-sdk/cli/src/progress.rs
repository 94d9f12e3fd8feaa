//! Progress on stderr: bars on a terminal; elsewhere (a log, CI) one line when a stage
//! begins and one when it ends, never the same line again and again.

use std::time::{Duration, Instant};

use blindsight_client::progress::Progress;

fn stderr_is_terminal() -> bool {
    std::io::IsTerminal::is_terminal(&std::io::stderr())
}

/// A progress bar on stderr when it is a terminal; hidden otherwise (callers then print one
/// plain line per stage).
pub(crate) fn progress(len: usize, what: &str) -> indicatif::ProgressBar {
    if stderr_is_terminal() {
        let bar = indicatif::ProgressBar::new(len as u64);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {pos}/{len} ({elapsed}, ~{eta} left)",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        bar
    } else {
        indicatif::ProgressBar::hidden()
    }
}

/// Progress on stderr for steps whose length may change (jobs, the demo, fetching evidence):
/// a bar on a terminal; otherwise `what…` when a stage begins and `what: done/total in T s`
/// when it ends.
pub(crate) struct StderrProgress {
    terminal: bool,
    stage: Option<Stage>,
}

struct Stage {
    what: String,
    started: Instant,
    done: u64,
    total: u64,
    bar: Option<indicatif::ProgressBar>,
}

impl Default for StderrProgress {
    fn default() -> Self {
        Self {
            terminal: stderr_is_terminal(),
            stage: None,
        }
    }
}

impl Progress for StderrProgress {
    fn begin(&mut self, what: &str, total: u64) {
        self.end();
        let bar = self.terminal.then(|| {
            let bar = progress(usize::try_from(total).unwrap_or(usize::MAX), what);
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        if bar.is_none() {
            eprintln!("{what}…");
        }
        self.stage = Some(Stage {
            what: what.to_owned(),
            started: Instant::now(),
            done: 0,
            total,
            bar,
        });
    }

    fn update(&mut self, done: u64, total: u64, note: &str) {
        let Some(stage) = &mut self.stage else { return };
        stage.done = done;
        stage.total = total;
        if let Some(bar) = &stage.bar {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(format!("{} {note}", stage.what));
        }
    }

    fn end(&mut self) {
        let Some(stage) = self.stage.take() else {
            return;
        };
        match stage.bar {
            Some(bar) => bar.finish_and_clear(),
            None => {
                let took = stage.started.elapsed().as_secs_f64();
                if stage.total > 0 && stage.done == stage.total {
                    eprintln!(
                        "{}: {}/{} in {took:.1} s",
                        stage.what, stage.done, stage.total
                    );
                } else {
                    eprintln!("{}: done in {took:.1} s", stage.what);
                }
            }
        }
    }
}

/// The verification checks' progress: a bar per check on a terminal; otherwise one line as
/// each check begins.
#[derive(Default)]
pub(crate) struct CheckProgress {
    state: std::sync::Mutex<CheckState>,
}

#[derive(Default)]
struct CheckState {
    check: String,
    bar: Option<indicatif::ProgressBar>,
}

impl CheckProgress {
    pub(crate) fn update(&self, p: blindsight_audit::Progress<'_>) {
        let Ok(mut s) = self.state.lock() else { return };
        if s.check != p.check {
            if let Some(bar) = s.bar.take() {
                bar.finish_and_clear();
            }
            s.check = p.check.to_owned();
            let bar = progress(
                usize::try_from(p.total).unwrap_or(usize::MAX),
                &format!("check {}", p.check),
            );
            if bar.is_hidden() {
                eprintln!("check {}…", p.check);
            } else {
                s.bar = Some(bar);
            }
        }
        if let Some(bar) = &s.bar {
            bar.set_length(p.total);
            bar.set_position(p.done);
        }
    }

    pub(crate) fn finish(&self) {
        if let Ok(mut s) = self.state.lock()
            && let Some(bar) = s.bar.take()
        {
            bar.finish_and_clear();
        }
    }
}
