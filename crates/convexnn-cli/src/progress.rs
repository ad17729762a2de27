//! Progress display on stderr: a spinner line with iteration, objective, gap and violation, shown
//! only when stderr is a terminal and the run is not quiet; optionally every record kept for a
//! trace file.

use std::io::IsTerminal;
use std::time::Duration;

use convexnn::solver::{IterRecord, Observe};
use indicatif::{ProgressBar, ProgressStyle};

/// Shows solver progress; never stops the solver itself (Ctrl-C goes through the stop flag).
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Every record seen, when a trace was asked for.
    records: Option<Vec<IterRecord>>,
}

impl Progress {
    /// A progress line with `label`, hidden when `quiet` or when stderr is not a terminal.
    pub fn new(label: &str, quiet: bool) -> Self {
        if quiet || !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                records: None,
            };
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix} [{elapsed}] {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_prefix(label.to_string());
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress {
            bar: Some(bar),
            records: None,
        }
    }

    /// Also keeps every record (for [`Progress::write_trace`]).
    pub fn keep_records(mut self) -> Self {
        self.records = Some(Vec::new());
        self
    }

    /// Writes the kept records as CSV (iteration, outer, seconds, objective, gap, violation),
    /// atomically.
    pub fn write_trace(&self, path: &std::path::Path) -> convexnn::Result<()> {
        let records = self.records.as_deref().unwrap_or(&[]);
        convexnn::data::atomic::write_atomic(path, |w| {
            writeln!(w, "iteration,outer,seconds,objective,gap,violation")?;
            for r in records {
                writeln!(
                    w,
                    "{},{},{:.6},{:.12e},{:.6e},{:.6e}",
                    r.iteration, r.outer, r.seconds, r.objective, r.gap, r.violation
                )?;
            }
            Ok(())
        })
    }

    /// Replaces the line's message.
    pub fn message(&self, msg: String) {
        if let Some(b) = &self.bar {
            b.set_message(msg);
        }
    }

    /// Removes the line.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Observe for Progress {
    fn on_iter(&mut self, r: &IterRecord) -> bool {
        if let Some(records) = &mut self.records {
            records.push(r.clone());
        }
        if let Some(b) = &self.bar {
            let outer = if r.outer > 0 {
                format!("outer {:>3}  ", r.outer)
            } else {
                String::new()
            };
            let viol = if r.violation > 0.0 {
                let what = if r.gap.is_nan() { "bilinear" } else { "cone" };
                format!("  {what} violation {:.2e}", r.violation)
            } else {
                String::new()
            };
            // Heuristics have no gap (NaN).
            let gap = if r.gap.is_nan() {
                String::new()
            } else {
                format!("  gap {:.2e}", r.gap)
            };
            b.set_message(format!(
                "{outer}iter {:>6}  objective {:.8e}{gap}{viol}",
                r.iteration, r.objective
            ));
        }
        true
    }
}
