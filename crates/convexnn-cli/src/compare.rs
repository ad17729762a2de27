//! `convexnn compare`: the convex fit against non-convex training of the same network on one axis.
//!
//! Writes, into `--out DIR`: `curves.csv` (every logged point of every run), `objective_vs_steps`
//! and `objective_vs_seconds` (`.svg` and `.png`; log-scale objective, the convex optimum as a dashed line), and
//! `summary.md` (best/median/worst final objective per method, gap to the convex optimum, times).

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use convexnn::data::atomic::write_atomic;
use convexnn::data::{to_pm1_labels, Dataset};
use convexnn::faer::Mat;
use convexnn::features::patches::Convolution;
use convexnn::model::{train, PatternSource, TrainOptions};
use convexnn::network::sgd::{train_nonconvex_observed, Optimizer, SgdSettings};
use convexnn::network::Network;
use convexnn::program::{Formulation, Loss};
use convexnn::{Error, Result};

use crate::curves::{
    figure, objective_plot, quantiles, summary_table, write_csv, Curve, Level, Quantity,
};
use crate::input::DataArgs;
use crate::plot::Plot;
use crate::progress::Progress;
use crate::report::network_name;
use crate::train::{formulation, prepare, stop_flag, LossArg, ModelArg, Prepared};

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
    /// The network, the same for the convex fit and the non-convex runs: relu, leaky-relu (with
    /// --slope), abs, or linear (fully connected; its convex program is exact).
    #[arg(long, value_enum, default_value = "relu")]
    pub model: ModelArg,
    /// Slope a in [0, 1) of the leaky ReLU max(z, a z) (--model leaky-relu only).
    #[arg(long, value_name = "A")]
    pub slope: Option<f64>,
    /// A convolutional network, as in `train --conv`: the rows are images, the filters see their
    /// patches; pooled by the average (relu, leaky-relu, abs), or with --model linear one output
    /// weight per patch position (the linear CNN). Separable networks are refused: the non-convex
    /// trainer shares each filter across the positions.
    #[arg(
        long,
        value_name = "HxW:FHxFW:STRIDE[:OPTION]",
        conflicts_with = "bias"
    )]
    pub conv: Option<String>,
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
    /// Hold out this fraction of the rows (seeded) and report the test metric of every method (MSE
    /// for the squared loss, accuracy for the logistic loss) along the runs.
    #[arg(long, default_value_t = 0.0)]
    pub test_fraction: f64,
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

/// The held-out rows with the training rows' preprocessing, and their labels in the loss's encoding.
fn test_set(t: &Dataset, prep: &Prepared, loss: Loss) -> Result<(Mat<f64>, Vec<f64>)> {
    let mut d = t.clone();
    if let Some(s) = &prep.preprocessing.standardizer {
        s.apply(&mut d.x);
    }
    if prep.preprocessing.bias {
        d.add_bias();
    }
    let y = match loss {
        Loss::Squared => d.y.clone(),
        _ => to_pm1_labels(&d.y)?,
    };
    Ok((d.x, y))
}

/// Mean squared error (squared loss) or accuracy (sign of the prediction against ±1 labels).
pub(crate) fn network_metric(net: &Network, x: &Mat<f64>, y: &[f64], loss: Loss) -> Result<f64> {
    let p = net.predict(x.as_ref())?;
    let n = y.len().max(1) as f64;
    Ok(match loss {
        Loss::Squared => p.iter().zip(y).map(|(p, y)| (p - y) * (p - y)).sum::<f64>() / n,
        _ => {
            p.iter()
                .zip(y)
                .filter(|(p, y)| (**p >= 0.0) == (**y > 0.0))
                .count() as f64
                / n
        }
    })
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

/// Runs `convexnn compare`.
pub fn run(a: &CompareArgs) -> Result<i32> {
    let lrs = parse_lrs(&a.lr)?;
    if a.runs == 0 {
        return Err(Error::InvalidSetting("--runs must be at least 1".into()));
    }
    let loaded = a.data.load()?;
    loaded.require_single_target("convexnn compare")?;
    if !(0.0..1.0).contains(&a.test_fraction) {
        return Err(Error::InvalidSetting(format!(
            "--test-fraction must be in [0, 1), got {}",
            a.test_fraction
        )));
    }
    let prep = prepare(
        &loaded.data,
        None,
        a.test_fraction,
        a.seed,
        a.standardize,
        a.bias,
    )?;
    let loss = a.loss.loss();
    let model = formulation(a.model, a.slope)?;
    if !model.is_cone_program() && model != Formulation::Linear {
        return Err(Error::InvalidSetting(format!(
            "compare trains ReLU, leaky ReLU, abs and linear networks, not {}",
            model.as_str()
        )));
    }
    let test = match &prep.test_raw {
        Some(t) => Some(test_set(t, &prep, loss)?),
        None => None,
    };
    let metric_name = test.as_ref().map(|_| match loss {
        Loss::Squared => "test MSE",
        _ => "test accuracy",
    });
    let monitor = |net: &Network| -> Result<f64> {
        match &test {
            Some((x, y)) => network_metric(net, x, y, loss),
            None => Ok(f64::NAN),
        }
    };
    let stop = stop_flag();
    let conv = a.conv.as_deref().map(Convolution::parse).transpose()?;
    if conv.is_some_and(|c| c.separable) {
        return Err(Error::InvalidSetting(
            "--conv ...:separable: the non-convex trainer shares each filter across the patch \
             positions, so it cannot train the separable network; compare pooled or linear CNNs"
                .into(),
        ));
    }
    let opts = TrainOptions {
        convolution: conv,
        formulation: model,
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
    // The training-set metric (MSE or accuracy) of each run's final network, in run order.
    let mut train_metrics = Vec::new();
    for &lr in &lrs {
        for k in 0..a.runs {
            let seed = a.seed + k as u64;
            let settings = SgdSettings {
                model,
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
                convolution: conv,
                ..SgdSettings::default()
            };
            let label = format!("{:?} lr={lr}", a.optimizer).to_lowercase();
            let progress = Progress::new(&format!("{label} seed={seed}"), a.quiet);
            let mut metric = Vec::new();
            let (net, log) = train_nonconvex_observed(
                prep.x.as_ref(),
                &fit.targets,
                loss,
                a.lambda,
                &settings,
                &stop,
                &mut |_, net| {
                    if test.is_some() {
                        metric.push(monitor(net)?);
                    }
                    Ok(())
                },
            )?;
            progress.finish();
            train_metrics.push(network_metric(&net, &prep.x, &fit.targets, loss)?);
            runs.push(Curve {
                method: label,
                seed,
                log,
                metric,
            });
        }
    }
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    let level = Level {
        label: if c.exhaustive {
            "convex: global optimum".into()
        } else {
            "convex: sampled patterns".into()
        },
        objective: c.info.objective,
        seconds: c.info.seconds,
        metric: match &test {
            Some(_) => Some(monitor(&fit.network)?),
            None => None,
        },
    };
    let convex_train = network_metric(&fit.network, &prep.x, &fit.targets, loss)?;
    let mut text = write_outputs(a, &level, (c.exhaustive, width, metric_name), &runs)?;
    text.push_str(&train_table(loss, convex_train, &runs, &train_metrics));
    write_atomic(&a.out.join("summary.md"), |w| w.write_all(text.as_bytes()))?;
    println!("{text}");
    Ok(if stop.is_set() { 130 } else { 0 })
}

/// Writes the curves, the figures and the summary; returns the summary.
fn write_outputs(
    a: &CompareArgs,
    level: &Level,
    (exhaustive, width, metric_name): (bool, usize, Option<&str>),
    runs: &[Curve],
) -> Result<String> {
    let levels = std::slice::from_ref(level);
    write_csv(&a.out.join("curves.csv"), levels, runs)?;
    let title = format!(
        "{} network, {width} neurons, lambda = {}: non-convex training vs convex",
        network_name(formulation(a.model, a.slope)?),
        a.lambda
    );
    for (name, by_time) in [
        ("objective_vs_steps", false),
        ("objective_vs_seconds", true),
    ] {
        let plot = objective_plot(&title, by_time);
        figure(
            &a.out,
            name,
            &plot,
            (Quantity::Objective, by_time),
            levels,
            runs,
        )?;
    }
    if let Some(name) = metric_name {
        let plot = Plot {
            title: &title,
            x_label: "optimizer steps",
            y_label: name,
            log_y: false,
        };
        figure(
            &a.out,
            "test_metric_vs_steps",
            &plot,
            (Quantity::Metric, false),
            levels,
            runs,
        )?;
    }
    let mut s = String::new();
    let _ = writeln!(s, "# Convex vs non-convex training\n");
    let _ = writeln!(
        s,
        "λ = {}, {} neurons for the non-convex runs, {} epochs each. The convex objective is {}.\n",
        a.lambda,
        width,
        a.epochs,
        if matches!(a.model, ModelArg::Linear) {
            "the certified global optimum (the linear network's convex program is exact)"
        } else if exhaustive {
            "the certified global optimum (every activation pattern)"
        } else {
            "the optimum over sampled patterns (an upper bound on the global optimum)"
        }
    );
    s.push_str(&summary_table(levels, runs, metric_name));
    Ok(s)
}

/// Markdown table of the training-set metric: the convex network's and each method's median.
fn train_table(loss: Loss, convex: f64, runs: &[Curve], metrics: &[f64]) -> String {
    let name = match loss {
        Loss::Squared => "train MSE",
        _ => "train accuracy",
    };
    let mut s = format!("\n| method | {name} (median) |\n|---|---|\n| convex | {convex:.4} |\n");
    let mut methods: Vec<&str> = runs.iter().map(|r| r.method.as_str()).collect();
    methods.dedup();
    for m in methods {
        let sel: Vec<f64> = runs
            .iter()
            .zip(metrics)
            .filter(|(r, _)| r.method == m)
            .map(|(_, v)| *v)
            .collect();
        let _ = writeln!(s, "| {m} | {:.4} |", quantiles(sel).1);
    }
    s
}
