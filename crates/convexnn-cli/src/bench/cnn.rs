//! `convexnn bench cnn`: the convex two-layer CNN with global average pooling (docs/programs.md §3d)
//! on two classes of MNIST against SGD on the same non-convex CNN, in the same run: time to
//! tolerance, objective, certificate and test accuracy of each.
//!
//! The images are averaged over 2 × 2 blocks (14 × 14 pixels in [0, 1]); the filters are 4 × 4
//! with a bias and stride 2 (K = 36 patches of 17 entries); labels are ±1 with the squared loss.
//! P Gaussian gates of the patch matrix give the patterns, shared by both convex programs:
//!
//! - the gated CNN program (M35a with fixed gates), solved by block coordinate descent on its Gram
//!   form with its ADMM phase and Newton steps (M57, f64; `auto`'s choice) to the tolerance, and
//!   again by FISTA (f32, then f64) with twice that time;
//! - the ReLU CNN program (M35a), solved by the augmented Lagrangian (f32) within a time limit;
//! - SGD with momentum on the ReLU CNN (M35c) with as many filters as the converged ReLU solution
//!   has neurons (else the gated one's; clamped to [10, 200]), from several seeds.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use convexnn::faer::Mat;
use convexnn::features::patches::Convolution;
use convexnn::model::{train, Fit, PatternSource, Precision, SolverChoice, TrainOptions};
use convexnn::network::sgd::{Optimizer, Schedule, SgdSettings};
use convexnn::network::Network;
use convexnn::program::{Formulation, Loss};
use convexnn::solver::Status;
use convexnn::{Error, Result};
use serde_json::{json, Value};

use crate::compare::network_metric;
use crate::progress::Progress;
use crate::reproduce::binary_images::load;
use crate::reproduce::{default_data_root, Runs};
use crate::train::stop_flag;

/// Options of `convexnn bench cnn`.
#[derive(Args, Debug)]
pub struct CnnBenchArgs {
    /// The folder holding mnist/ [default: the shared data folder].
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The two digits (the first ↦ −1, the second ↦ +1).
    #[arg(long, value_name = "A,B", default_value = "2,3")]
    pub digits: String,
    /// Training images (the first n of the two digits) [default: 12000, or 600 with --quick].
    #[arg(long)]
    pub n: Option<usize>,
    /// Test images [default: 2000, or 600 with --quick].
    #[arg(long)]
    pub n_test: Option<usize>,
    /// Gaussian gates of the patch matrix [default: 500, or 50 with --quick].
    #[arg(long)]
    pub p: Option<usize>,
    /// λ of (1/(2n))‖ŷ − y‖² + λ Σ group norms.
    #[arg(long, default_value_t = 1e-3)]
    pub lambda: f64,
    /// Relative duality gap at which the gated program stops.
    #[arg(long, default_value_t = 1e-6)]
    pub tol: f64,
    /// Time limit of each gated solver, in seconds (by default block coordinate descent runs to
    /// --tol and FISTA gets twice its time).
    #[arg(long, value_name = "SECONDS")]
    pub gated_seconds: Option<f64>,
    /// Time limit of the ReLU program's augmented Lagrangian, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub relu_seconds: f64,
    /// SGD epochs per run [default: 20, or 2 with --quick].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// SGD runs (seeds).
    #[arg(long, default_value_t = 2)]
    pub runs: usize,
    /// Seed of the gates and of the SGD runs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Small sizes (a smoke test of the benchmark).
    #[arg(long)]
    pub quick: bool,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// One method's result.
struct Row {
    method: String,
    seconds: f64,
    objective: f64,
    relative_gap: Option<f64>,
    status: String,
    /// Solver iterations, or SGD steps.
    iterations: usize,
    neurons: usize,
    test_accuracy: f64,
}

impl Row {
    fn to_json(&self) -> Value {
        json!({
            "method": self.method,
            "seconds": self.seconds,
            "objective": self.objective,
            "relative_gap": self.relative_gap,
            "status": self.status,
            "iterations": self.iterations,
            "neurons": self.neurons,
            "test_accuracy": self.test_accuracy,
        })
    }

    fn convex(method: &str, fit: &Fit, accuracy: f64) -> Row {
        let c = &fit.certificate;
        Row {
            method: method.into(),
            seconds: c.info.seconds,
            objective: c.info.objective,
            relative_gap: Some(c.relative_gap),
            status: c.info.status.as_str().into(),
            iterations: c.info.iterations,
            neurons: c.active_neurons,
            test_accuracy: accuracy,
        }
    }
}

fn parse_digits(s: &str) -> Result<(u8, u8)> {
    let bad = || Error::InvalidSetting(format!("--digits expects two digits like 2,3; got {s:?}"));
    let (a, b) = s.split_once(',').ok_or_else(bad)?;
    let digit = |t: &str| {
        t.trim()
            .parse::<u8>()
            .ok()
            .filter(|d| *d <= 9)
            .ok_or_else(bad)
    };
    let (a, b) = (digit(a)?, digit(b)?);
    if a == b {
        return Err(bad());
    }
    Ok((a, b))
}

/// Runs `convexnn bench cnn`; returns the process exit code.
pub fn run(a: &CnnBenchArgs) -> Result<i32> {
    let (n, n_test, p, epochs) = if a.quick {
        (
            a.n.unwrap_or(600),
            a.n_test.unwrap_or(600),
            a.p.unwrap_or(50),
            a.epochs.unwrap_or(2),
        )
    } else {
        (
            a.n.unwrap_or(12_000),
            a.n_test.unwrap_or(2000),
            a.p.unwrap_or(500),
            a.epochs.unwrap_or(20),
        )
    };
    if n == 0 || n_test == 0 || p == 0 || a.runs == 0 {
        return Err(Error::InvalidSetting(
            "--n, --n-test, --p and --runs must be positive".into(),
        ));
    }
    let digits = parse_digits(&a.digits)?;
    let root = match &a.data {
        Some(d) => d.clone(),
        None => default_data_root("mnist").ok_or_else(|| {
            Error::InvalidSetting(
                "bench cnn needs the MNIST folder: pass --data DIR (the folder holding mnist/)"
                    .into(),
            )
        })?,
    };
    let dir = root.join("mnist");
    // `load` appends a ones column; the CNN's filters carry their own bias.
    let pixels = |m: Mat<f64>| m.subcols(0, 14 * 14).to_owned();
    let (x, y) = load(&dir, "train", digits, n)?;
    let (xt, yt) = load(&dir, "t10k", digits, n_test)?;
    let (x, xt) = (pixels(x), pixels(xt));
    let conv = Convolution::square(14, 4, 2);
    let accuracy = |net: &Network| network_metric(net, &xt, &yt, Loss::Logistic);
    let stop = stop_flag();
    let quiet = a.json;
    let base = TrainOptions {
        loss: Loss::Squared,
        lambda: a.lambda,
        patterns: PatternSource::Sample { count: p },
        seed: a.seed,
        tol: a.tol,
        max_iter: 100_000,
        convolution: Some(conv),
        ..TrainOptions::default()
    };
    // Block coordinate descent on the Gram form (f64, with its ADMM phase): what `auto` picks for
    // this program; it runs to --tol unless --gated-seconds caps it.
    let bcd_opts = TrainOptions {
        formulation: Formulation::Gated,
        solver: SolverChoice::Bcd,
        precision: Precision::F64,
        time_limit: a.gated_seconds,
        ..base.clone()
    };
    let mut progress = Progress::new("gated CNN program (block coordinate descent)", quiet);
    let bcd = train(x.as_ref(), &y, &bcd_opts, &mut progress, &stop)?;
    progress.finish();
    // The same program by FISTA (f32 then f64), in the same run, with twice BCD's time unless
    // --gated-seconds says otherwise.
    let gated_opts = TrainOptions {
        formulation: Formulation::Gated,
        solver: SolverChoice::Fista,
        precision: Precision::F32,
        time_limit: Some(
            a.gated_seconds
                .unwrap_or((2.0 * bcd.certificate.info.seconds).max(10.0)),
        ),
        ..base.clone()
    };
    let mut progress = Progress::new("gated CNN program (FISTA)", quiet);
    let gated = train(x.as_ref(), &y, &gated_opts, &mut progress, &stop)?;
    progress.finish();
    let mut rows = vec![
        Row::convex("convex gated CNN (bcd)", &bcd, accuracy(&bcd.network)?),
        Row::convex(
            "convex gated CNN (fista)",
            &gated,
            accuracy(&gated.network)?,
        ),
    ];
    // The ReLU program in f32 (its augmented Lagrangian holds n × 2P matrices); a refusal (e.g. the
    // memory budget) is reported as a row, not an error.
    let relu_opts = TrainOptions {
        formulation: Formulation::Relu,
        solver: SolverChoice::Al,
        precision: Precision::F32,
        time_limit: Some(a.relu_seconds),
        ..base.clone()
    };
    let mut progress = Progress::new("ReLU CNN program (augmented Lagrangian)", quiet);
    let relu = train(x.as_ref(), &y, &relu_opts, &mut progress, &stop);
    progress.finish();
    let width = match &relu {
        Ok(fit) => {
            rows.push(Row::convex(
                "convex ReLU CNN (al)",
                fit,
                accuracy(&fit.network)?,
            ));
            // Without a converged ReLU fit, the gated optimum's width.
            if fit.certificate.info.status == Status::Converged {
                fit.certificate.active_neurons
            } else {
                bcd.certificate.active_neurons
            }
        }
        Err(e) => {
            rows.push(Row {
                method: "convex ReLU CNN (al)".into(),
                seconds: 0.0,
                objective: f64::NAN,
                relative_gap: None,
                status: format!("refused: {e}"),
                iterations: 0,
                neurons: 0,
                test_accuracy: f64::NAN,
            });
            bcd.certificate.active_neurons
        }
    }
    .clamp(10, 200);
    let batch = 32;
    let steps = epochs * x.nrows().div_ceil(batch);
    let plan = Runs {
        method: format!("sgd momentum 0.9 lr=0.01 batch {batch} m={width}"),
        settings: SgdSettings {
            width,
            optimizer: Optimizer::Sgd { momentum: 0.9 },
            learning_rate: 0.01,
            schedule: Schedule::Step {
                every: (epochs / 4).max(1),
                factor: 0.5,
            },
            batch_size: Some(batch),
            epochs,
            log_every: (steps / 20).max(1),
            convolution: Some(conv),
            ..SgdSettings::default()
        },
        seeds: a.seed + 1..a.seed + 1 + a.runs as u64,
        monitor: Some(&accuracy),
    };
    let start = Instant::now();
    let curves = plan.train((x.as_ref(), &y), (Loss::Squared, a.lambda), quiet, &stop)?;
    let per_run = start.elapsed().as_secs_f64() / curves.len().max(1) as f64;
    for c in &curves {
        rows.push(Row {
            method: format!("{} seed {}", c.method, c.seed),
            seconds: c.log.last().map_or(per_run, |r| r.seconds),
            objective: c.final_objective(),
            relative_gap: None,
            status: format!("{epochs} epochs"),
            iterations: c.log.last().map_or(0, |r| r.step),
            neurons: width,
            test_accuracy: c.metric.last().copied().unwrap_or(f64::NAN),
        });
    }
    let header = json!({
        "digits": [digits.0, digits.1],
        "n": x.nrows(),
        "n_test": xt.nrows(),
        "patterns_sampled": p,
        "patterns": gated.certificate.n_patterns,
        "patches_per_image": conv.patch_count(),
        "patch_dim": conv.patch_dim(),
        "lambda": a.lambda,
        "tol": a.tol,
        "cores": std::thread::available_parallelism().map_or(1, |c| c.get()),
    });
    if a.json {
        let mut j = header;
        j["results"] = rows.iter().map(Row::to_json).collect();
        println!("{j}");
        return Ok(0);
    }
    println!(
        "CNN benchmark: MNIST {} vs {}, n = {} train / {} test, 14x14 images, 4x4 filters stride 2 \
         (K = {} patches of {}), P = {} sampled gates ({} distinct patterns), lambda = {}, tol = {}",
        digits.0,
        digits.1,
        x.nrows(),
        xt.nrows(),
        conv.patch_count(),
        conv.patch_dim(),
        p,
        gated.certificate.n_patterns,
        a.lambda,
        a.tol
    );
    println!(
        "{:<52} {:>9} {:>16} {:>10} {:>18} {:>10} {:>8} {:>9}",
        "method", "seconds", "objective", "rel. gap", "status", "iterations", "neurons", "test acc"
    );
    for r in &rows {
        println!(
            "{:<52} {:>9.2} {:>16.8e} {:>10} {:>18} {:>10} {:>8} {:>9.4}",
            r.method,
            r.seconds,
            r.objective,
            r.relative_gap
                .map_or("-".to_string(), |g| format!("{g:.2e}")),
            r.status,
            r.iterations,
            r.neurons,
            r.test_accuracy
        );
    }
    println!(
        "The gated program's optimum is a lower bound on the ReLU program's over the same patterns; \
         with sampled patterns the ReLU program is an upper bound on the best ReLU CNN, so an SGD \
         run may end below it."
    );
    Ok(0)
}
