//! `convexnn compare`: the convex fit against non-convex training of the same network on one axis.
//!
//! Writes, into `--out DIR`: `curves.csv` (every logged point of every run), `objective_vs_steps.svg`
//! and `objective_vs_seconds.svg` (log-scale objective, the convex optimum as a dashed line), and
//! `summary.md` (best/median/worst final objective per method, gap to the convex optimum, times).

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use convexnn::data::atomic::write_atomic;
use convexnn::model::{train, PatternSource, TrainOptions};
use convexnn::network::sgd::{train_nonconvex, LogRecord, Optimizer, SgdSettings};
use convexnn::program::Formulation;
use convexnn::{Error, Result};

use crate::input::DataArgs;
use crate::plot::{write_figure, Plot, Series, COLORS};
use crate::progress::Progress;
use crate::train::{prepare, stop_flag, LossArg};

/// Update rule of the non-convex runs.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimizerArg {
    /// SGD with momentum 0.9.
    Sgd,
    /// Adam.
    Adam,
}

/// Options of `convexnn compare`.
#[derive(Args, Debug)]
pub struct CompareArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Loss.
    #[arg(long, value_enum, default_value = "squared")]
    pub loss: LossArg,
    /// λ of (1/(2n))‖ŷ − y‖² + (λ/2) Σ (‖u_j‖² + α_j²), the same for every method.
    #[arg(long, default_value_t = 1e-3)]
    pub lambda: f64,
    /// Patterns of the convex program: every pattern where enumeration is feasible, else this many
    /// sampled gates.
    #[arg(long, default_value_t = 200)]
    pub sample: usize,
    /// Standardize features.
    #[arg(long)]
    pub standardize: bool,
    /// Append a ones column.
    #[arg(long)]
    pub bias: bool,
    /// Neurons of the non-convex networks (0: as many as the convex solution has).
    #[arg(long, default_value_t = 0)]
    pub width: usize,
    /// Non-convex runs (seeds) per learning rate.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Learning rates, comma-separated.
    #[arg(long, default_value = "0.01")]
    pub lr: String,
    /// Update rule.
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerArg,
    /// Epochs of each non-convex run.
    #[arg(long, default_value_t = 2000)]
    pub epochs: usize,
    /// Mini-batch size (default: full batch).
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seed of the gates, the split and the first run.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output folder.
    #[arg(long, default_value = "compare-out")]
    pub out: PathBuf,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}

struct Run {
    label: String,
    lr: f64,
    seed: u64,
    log: Vec<LogRecord>,
}

fn parse_lrs(text: &str) -> Result<Vec<f64>> {
    text.split(',')
        .map(|t| {
            t.trim()
                .parse::<f64>()
                .ok()
                .filter(|v| *v > 0.0 && v.is_finite())
                .ok_or_else(|| {
                    Error::InvalidSetting(format!(
                        "--lr expects positive numbers like 0.01,0.001; got {text:?}"
                    ))
                })
        })
        .collect()
}

fn quantiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[0], v[v.len() / 2], v[v.len() - 1])
}

/// Runs `convexnn compare`.
pub fn run(a: &CompareArgs) -> Result<i32> {
    let lrs = parse_lrs(&a.lr)?;
    if a.runs == 0 {
        return Err(Error::InvalidSetting("--runs must be at least 1".into()));
    }
    let loaded = a.data.load()?;
    let prep = prepare(&loaded.data, None, 0.0, a.seed, a.standardize, a.bias)?;
    let loss = a.loss.loss();
    let stop = stop_flag();
    let opts = TrainOptions {
        formulation: Formulation::Relu,
        loss,
        lambda: a.lambda,
        patterns: PatternSource::Auto { count: a.sample },
        seed: a.seed,
        tol: 1e-8,
        max_iter: 100_000,
        ..TrainOptions::default()
    };
    let progress = Progress::new("convex fit", a.quiet);
    let mut silent = convexnn::solver::Silent;
    let fit = train(
        prep.x.as_ref(),
        &prep.train_raw.y,
        &opts,
        &mut silent,
        &stop,
    )?;
    progress.finish();
    let c = &fit.certificate;
    let width = if a.width > 0 {
        a.width
    } else {
        c.active_neurons.max(1)
    };
    let mut runs = Vec::new();
    for &lr in &lrs {
        for k in 0..a.runs {
            let seed = a.seed + k as u64;
            let settings = SgdSettings {
                width,
                optimizer: match a.optimizer {
                    OptimizerArg::Sgd => Optimizer::Sgd { momentum: 0.9 },
                    OptimizerArg::Adam => Optimizer::Adam,
                },
                learning_rate: lr,
                batch_size: a.batch_size,
                epochs: a.epochs,
                seed,
                log_every: (a.epochs / 200).max(1),
                ..SgdSettings::default()
            };
            let label = format!("{:?} lr={lr} seed={seed}", a.optimizer).to_lowercase();
            let progress = Progress::new(&label, a.quiet);
            let (_, log) = train_nonconvex(
                prep.x.as_ref(),
                &fit.targets,
                loss,
                a.lambda,
                &settings,
                &stop,
            )?;
            progress.finish();
            runs.push(Run {
                label,
                lr,
                seed,
                log,
            });
        }
    }
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    write_outputs(
        a,
        c.info.objective,
        c.exhaustive,
        c.info.seconds,
        width,
        &runs,
    )?;
    println!(
        "{}",
        summary(
            a,
            c.info.objective,
            c.exhaustive,
            c.info.seconds,
            width,
            &runs
        )
    );
    Ok(if stop.is_set() { 130 } else { 0 })
}

fn write_outputs(
    a: &CompareArgs,
    p_star: f64,
    exhaustive: bool,
    secs: f64,
    width: usize,
    runs: &[Run],
) -> Result<()> {
    write_atomic(&a.out.join("curves.csv"), |w| {
        writeln!(w, "method,lr,seed,step,seconds,objective")?;
        writeln!(w, "convex,,{},0,{secs},{p_star}", a.seed)?;
        for r in runs {
            for p in &r.log {
                writeln!(
                    w,
                    "nonconvex,{},{},{},{},{}",
                    r.lr, r.seed, p.step, p.seconds, p.objective
                )?;
            }
        }
        Ok(())
    })?;
    let kind = if exhaustive {
        "convex: global optimum"
    } else {
        "convex: sampled patterns"
    };
    for (name, by_time) in [
        ("objective_vs_steps", false),
        ("objective_vs_seconds", true),
    ] {
        let mut series: Vec<Series> = runs
            .iter()
            .enumerate()
            .map(|(k, r)| Series {
                label: r.label.clone(),
                points: r
                    .log
                    .iter()
                    .map(|p| (if by_time { p.seconds } else { p.step as f64 }, p.objective))
                    .collect(),
                color: COLORS[k % COLORS.len()],
                dashed: false,
                markers: false,
            })
            .collect();
        let end = series
            .iter()
            .flat_map(|s| s.points.last())
            .map(|p| p.0)
            .fold(1e-9, f64::max);
        series.push(Series {
            label: kind.into(),
            points: vec![(0.0, p_star), (end, p_star)],
            color: "#d62728",
            dashed: true,
            markers: false,
        });
        let title = format!(
            "ReLU network, {width} neurons, lambda = {}: non-convex training vs convex",
            a.lambda
        );
        let plot = Plot {
            title: &title,
            x_label: if by_time {
                "wall-clock time (s)"
            } else {
                "optimizer steps"
            },
            y_label: "training objective (log scale)",
            log_y: true,
        };
        write_figure(&a.out, name, &plot, &series)?;
    }
    let text = summary(a, p_star, exhaustive, secs, width, runs);
    write_atomic(&a.out.join("summary.md"), |w| w.write_all(text.as_bytes()))
}

fn summary(
    a: &CompareArgs,
    p_star: f64,
    exhaustive: bool,
    secs: f64,
    width: usize,
    runs: &[Run],
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Convex vs non-convex training\n");
    let _ = writeln!(
        s,
        "λ = {}, {} neurons for the non-convex runs, {} epochs each. The convex objective is {}.\n",
        a.lambda,
        width,
        a.epochs,
        if exhaustive {
            "the certified global optimum (every activation pattern)"
        } else {
            "the optimum over sampled patterns (an upper bound on the global optimum)"
        }
    );
    let _ = writeln!(s, "| method | runs | best final | median final | worst final | best − convex | seconds (median) |");
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    let _ = writeln!(
        s,
        "| convex | 1 | {p_star:.8e} | {p_star:.8e} | {p_star:.8e} | 0 | {secs:.3} |"
    );
    let mut lrs: Vec<f64> = runs.iter().map(|r| r.lr).collect();
    lrs.dedup();
    for lr in lrs {
        let sel: Vec<&Run> = runs.iter().filter(|r| r.lr == lr).collect();
        let finals: Vec<f64> = sel
            .iter()
            .filter_map(|r| r.log.last().map(|p| p.objective))
            .collect();
        let times: Vec<f64> = sel
            .iter()
            .filter_map(|r| r.log.last().map(|p| p.seconds))
            .collect();
        let (best, median, worst) = quantiles(finals);
        let (_, t, _) = quantiles(times);
        let _ = writeln!(
            s,
            "| {:?} lr={lr} | {} | {best:.8e} | {median:.8e} | {worst:.8e} | {:+.3e} | {t:.3} |",
            a.optimizer,
            sel.len(),
            best - p_star
        );
    }
    s
}
