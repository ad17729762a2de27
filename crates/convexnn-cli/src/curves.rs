//! Objective curves of non-convex runs against the levels of convex optima, as `compare` and the
//! reproductions write them: one CSV of every logged point, figures with a log-scale objective (the
//! levels as dashed lines), and a Markdown table of the final objectives.

use std::fmt::Write as _;
use std::path::Path;

use convexnn::data::atomic::write_atomic;
use convexnn::network::sgd::LogRecord;
use convexnn::Result;

use crate::plot::{write_figure, Plot, Series, COLORS};

/// One non-convex run.
pub struct Curve {
    /// The method, shared by the runs it groups (e.g. `sgd lr=0.01 m=5`).
    pub method: String,
    /// Seed of the run's initialization.
    pub seed: u64,
    /// Logged points.
    pub log: Vec<LogRecord>,
    /// A metric at each logged point (e.g. test accuracy); empty when none was recorded.
    pub metric: Vec<f64>,
}

impl Curve {
    /// The final objective (infinite for an empty log).
    pub fn final_objective(&self) -> f64 {
        self.log.last().map_or(f64::INFINITY, |r| r.objective)
    }
}

/// The optimum of a convex program, drawn as a level.
pub struct Level {
    /// Legend label, e.g. `convex: global optimum`.
    pub label: String,
    /// Objective.
    pub objective: f64,
    /// Solve time (s).
    pub seconds: f64,
    /// The level's metric (e.g. test accuracy), when measured.
    pub metric: Option<f64>,
}

/// Colours of the levels (the runs use [`COLORS`]).
const LEVEL_COLORS: [&str; 3] = ["#d62728", "#17becf", "#000000"];

/// Writes `method,seed,step,seconds,objective,metric`: one row per level (step 0, its solve time) and
/// one per logged point of every run.
pub fn write_csv(path: &Path, levels: &[Level], curves: &[Curve]) -> Result<()> {
    let opt = |v: Option<f64>| v.map_or(String::new(), |v| v.to_string());
    write_atomic(path, |w| {
        writeln!(w, "method,seed,step,seconds,objective,metric")?;
        for l in levels {
            writeln!(
                w,
                "{},,0,{},{},{}",
                l.label,
                l.seconds,
                l.objective,
                opt(l.metric)
            )?;
        }
        for c in curves {
            for (k, p) in c.log.iter().enumerate() {
                writeln!(
                    w,
                    "{},{},{},{},{},{}",
                    c.method,
                    c.seed,
                    p.step,
                    p.seconds,
                    p.objective,
                    opt(c.metric.get(k).copied())
                )?;
            }
        }
        Ok(())
    })
}

/// Labels of an objective figure: log-scale training objective against steps or wall-clock time.
pub fn objective_plot(title: &str, by_time: bool) -> Plot<'_> {
    Plot {
        title,
        x_label: if by_time {
            "wall-clock time (s)"
        } else {
            "optimizer steps"
        },
        y_label: "training objective (log scale)",
        log_y: true,
    }
}

/// What a figure shows on its y axis.
#[derive(Clone, Copy, PartialEq)]
pub enum Quantity {
    /// The training objective (log scale).
    Objective,
    /// The runs' metric (linear scale).
    Metric,
}

/// One figure of the runs (at most eight legend entries for runs; the rest are drawn unlabelled in
/// their method's colour) with the levels as dashed lines; `x_seconds` puts wall-clock time on the x
/// axis instead of steps. Returns the files written.
pub fn figure(
    dir: &Path,
    name: &str,
    plot: &Plot<'_>,
    (quantity, x_seconds): (Quantity, bool),
    levels: &[Level],
    curves: &[Curve],
) -> Result<Vec<String>> {
    let mut methods: Vec<&str> = Vec::new();
    for c in curves {
        if !methods.contains(&c.method.as_str()) {
            methods.push(&c.method);
        }
    }
    let mut series: Vec<Series> = Vec::new();
    for c in curves {
        let k = methods.iter().position(|m| *m == c.method).unwrap_or(0);
        let first = !series.iter().any(|s| s.color == COLORS[k % COLORS.len()]);
        let points = c
            .log
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let x = if x_seconds { p.seconds } else { p.step as f64 };
                match quantity {
                    Quantity::Objective => Some((x, p.objective)),
                    Quantity::Metric => c.metric.get(i).map(|m| (x, *m)),
                }
            })
            .collect();
        series.push(Series {
            label: if first {
                match count(curves, &c.method) {
                    1 => c.method.clone(),
                    k => format!("{} ({k} runs)", c.method),
                }
            } else {
                String::new()
            },
            points,
            color: COLORS[k % COLORS.len()],
            dashed: false,
            markers: false,
        });
    }
    let end = series
        .iter()
        .flat_map(|s| s.points.last())
        .map(|p| p.0)
        .fold(1e-9, f64::max);
    for (k, l) in levels.iter().enumerate() {
        let value = match quantity {
            Quantity::Objective => Some(l.objective),
            Quantity::Metric => l.metric,
        };
        if let Some(v) = value {
            series.push(Series {
                label: l.label.clone(),
                points: vec![(0.0, v), (end, v)],
                color: LEVEL_COLORS[k % LEVEL_COLORS.len()],
                dashed: true,
                markers: false,
            });
        }
    }
    write_figure(dir, name, plot, &series)
}

fn count(curves: &[Curve], method: &str) -> usize {
    curves.iter().filter(|c| c.method == method).count()
}

/// (smallest, median, largest) of a nonempty list.
pub fn quantiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// Markdown table: each level, then each method's best/median/worst final objective, the best's
/// distance to the first level, the median final metric (when `metric_name` is given) and the median
/// run time.
pub fn summary_table(levels: &[Level], curves: &[Curve], metric_name: Option<&str>) -> String {
    let mut s = String::new();
    let reference = levels.first().map_or(f64::NAN, |l| l.objective);
    let metric_head = metric_name.map_or(String::new(), |m| format!(" {m} (median) |"));
    let _ = writeln!(
        s,
        "| method | runs | best final objective | median | worst | best − {} |{metric_head} seconds (median) |",
        levels.first().map_or("reference", |l| l.label.as_str())
    );
    let _ = writeln!(
        s,
        "|---|---|---|---|---|---|{}---|",
        if metric_name.is_some() { "---|" } else { "" }
    );
    let metric_cell = |m: Option<f64>| match (metric_name, m) {
        (None, _) => String::new(),
        (Some(_), Some(v)) => format!(" {v:.4} |"),
        (Some(_), None) => " – |".to_string(),
    };
    for l in levels {
        let _ = writeln!(
            s,
            "| {} | 1 | {:.8e} | | | {:+.3e} |{} {:.3} |",
            l.label,
            l.objective,
            l.objective - reference,
            metric_cell(l.metric),
            l.seconds
        );
    }
    let mut methods: Vec<&str> = Vec::new();
    for c in curves {
        if !methods.contains(&c.method.as_str()) {
            methods.push(&c.method);
        }
    }
    for m in methods {
        let sel: Vec<&Curve> = curves.iter().filter(|c| c.method == m).collect();
        let (best, median, worst) = quantiles(sel.iter().map(|c| c.final_objective()).collect());
        let metrics: Vec<f64> = sel
            .iter()
            .filter_map(|c| c.metric.last().copied())
            .collect();
        let metric = (!metrics.is_empty()).then(|| quantiles(metrics).1);
        let (_, secs, _) = quantiles(
            sel.iter()
                .filter_map(|c| c.log.last().map(|p| p.seconds))
                .collect(),
        );
        let _ = writeln!(
            s,
            "| {m} | {} | {best:.8e} | {median:.8e} | {worst:.8e} | {:+.3e} |{} {secs:.3} |",
            sel.len(),
            best - reference,
            metric_cell(metric)
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn curve(method: &str, objectives: &[f64]) -> Curve {
        Curve {
            method: method.into(),
            seed: 0,
            log: objectives
                .iter()
                .enumerate()
                .map(|(k, &objective)| LogRecord {
                    step: 10 * k,
                    seconds: k as f64,
                    objective,
                })
                .collect(),
            metric: vec![],
        }
    }

    #[test]
    fn table_reports_per_method_quantiles_against_the_first_level() {
        let levels = [Level {
            label: "convex".into(),
            objective: 1.0,
            seconds: 0.5,
            metric: Some(0.9),
        }];
        let curves = [
            curve("sgd", &[5.0, 2.0]),
            curve("sgd", &[5.0, 3.0]),
            curve("sgd", &[5.0, 4.0]),
            curve("adam", &[5.0, 1.5]),
        ];
        let t = summary_table(&levels, &curves, Some("accuracy"));
        assert!(t.contains("| sgd | 3 | 2.00000000e0 | 3.00000000e0 | 4.00000000e0 | +1.000e0 |"));
        assert!(t.contains("| adam | 1 | 1.50000000e0 |"));
        assert!(t.contains("| convex | 1 | 1.00000000e0 | | | +0.000e0 | 0.9000 | 0.500 |"));
        let plain = summary_table(&levels, &curves, None);
        assert!(plain.contains("| convex | 1 | 1.00000000e0 | | | +0.000e0 | 0.500 |"));
        assert_eq!(quantiles(vec![3.0, 1.0, 2.0]), (1.0, 2.0, 3.0));
    }
}
