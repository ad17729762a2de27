//! `convexnn bench threshold`: the two-layer threshold Lasso (docs/programs.md (M29))
//! `min_z (1/(2n))‖K z − y‖² + λ‖z‖₁` over P sampled arrangement columns K_j = 1[X̃ g_j ≥ 0]
//! (X̃ = [X, 1]) of a real data set, spambase by default, with labels ±1. The same problem is solved
//! three ways in one run:
//!
//! - coordinate descent on the bit-packed columns (the library's `cd` solver: the popcount Gram
//!   matrix, then O(P) per coordinate step, (M29b)); its time includes building the Gram matrix;
//! - the same coordinate descent (same sweeps, same Newton steps, same stopping test) on the
//!   columns expanded into a dense f64 matrix, in the textbook residual form: O(n) per step; the
//!   expansion is not timed;
//! - restarted FISTA on the bit-packed operator (the library's `fista` solver, f64).
//!
//! Every solution is then checked the same way, independently of the solver that produced it: its
//! objective and duality gap are recomputed from the dense matrix.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use convexnn::data::uci::load_uci_dir;
use convexnn::faer::Mat;
use convexnn::model::{
    build_patterns, train, PatternSource, Precision, SolverChoice, TrainOptions,
};
use convexnn::program::{Formulation, Loss};
use convexnn::solver::cd::{
    gram_memory, lasso_cd, primal_dual, CdOutput, CdSettings, Coordinates, GramCoordinates,
    ResidualCoordinates,
};
use convexnn::solver::{Silent, Status, StopFlag};
use convexnn::{Error, Result};
use serde_json::{json, Value};

use crate::reproduce::default_data_root;
use crate::train::stop_flag;

/// Options of `convexnn bench threshold`.
#[derive(Args, Debug)]
pub struct ThresholdBenchArgs {
    /// A UCI data set folder (`<name>_R.dat` inside) [default: uci121/spambase of the shared data
    /// folder].
    #[arg(long, value_name = "DIR")]
    pub uci: Option<PathBuf>,
    /// Gaussian gates, hence arrangement columns (duplicates are dropped).
    #[arg(long, default_value_t = 1000)]
    pub p: usize,
    /// Regularization λ.
    #[arg(long, default_value_t = 1e-3)]
    pub lambda: f64,
    /// Relative duality gap at which every solve stops.
    #[arg(long, default_value_t = 1e-6)]
    pub tol: f64,
    /// Timed solves of each method; the best and the median are reported.
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Wall-clock limit of each solve in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300.0)]
    pub time_limit: f64,
    /// Skip FISTA (only the two coordinate descents).
    #[arg(long)]
    pub no_fista: bool,
    /// Seed of the gates.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// One method's timed solves and the independent check of its last solution.
struct MethodReport {
    method: &'static str,
    storage: &'static str,
    best: f64,
    median: f64,
    /// Sweeps (coordinate descent) or iterations (FISTA) of the last solve.
    iterations: usize,
    /// Full sweeps and Newton steps of the last solve (coordinate descent).
    cd_steps: Option<(usize, usize)>,
    status: Status,
    objective: f64,
    relative_gap: f64,
}

impl MethodReport {
    fn to_json(&self) -> Value {
        json!({
            "method": self.method,
            "storage": self.storage,
            "best_seconds": self.best,
            "median_seconds": self.median,
            "iterations": self.iterations,
            "full_sweeps": self.cd_steps.map(|c| c.0),
            "newton_steps": self.cd_steps.map(|c| c.1),
            "status": self.status.as_str(),
            "objective": self.objective,
            "relative_gap": self.relative_gap,
        })
    }
}

/// Objective and relative duality gap of `z`, recomputed from the dense matrix.
fn check(k: &Mat<f64>, y: &[f64], z: &[f64], lambda: f64) -> (f64, f64) {
    let mut res = ResidualCoordinates::new(k.as_ref(), y);
    for (j, &v) in z.iter().enumerate() {
        if v != 0.0 {
            res.shift(j, v);
        }
    }
    let (primal, dual) = primal_dual(y.len(), z, lambda, res.gap_terms(z));
    (primal, (primal - dual).max(0.0) / primal.abs().max(1e-12))
}

/// Runs `solve` `repeats` times; returns (best, median) seconds and the last result.
fn timed<R>(repeats: usize, mut solve: impl FnMut() -> Result<R>) -> Result<(f64, f64, R)> {
    let mut secs = Vec::with_capacity(repeats);
    let mut last = None;
    for _ in 0..repeats {
        let t = Instant::now();
        let r = solve()?;
        secs.push(t.elapsed().as_secs_f64());
        last = Some(r);
    }
    secs.sort_by(f64::total_cmp);
    let last = last.expect("at least one repeat");
    Ok((secs[0], secs[secs.len() / 2], last))
}

/// The data: features with a ones column appended, and ±1 labels (class 0 ↦ −1, others ↦ +1
/// for two classes; more classes are refused).
fn load(dir: &std::path::Path) -> Result<(String, Mat<f64>, Vec<f64>)> {
    let u = load_uci_dir(dir)?;
    if u.n_classes != 2 {
        return Err(Error::InvalidData(format!(
            "{}: {} classes; the threshold benchmark needs a two-class data set",
            dir.display(),
            u.n_classes
        )));
    }
    let x = &u.dataset.x;
    let (n, d) = (x.nrows(), x.ncols());
    let xb = Mat::from_fn(n, d + 1, |i, j| if j < d { x[(i, j)] } else { 1.0 });
    let y = u
        .dataset
        .y
        .iter()
        .map(|&c| if c == 0.0 { -1.0 } else { 1.0 })
        .collect();
    Ok((u.name, xb, y))
}

fn solve_cd<C: Coordinates>(
    c: &mut C,
    lambda: f64,
    settings: &CdSettings,
    stop: &StopFlag,
) -> CdOutput {
    lasso_cd(c, lambda, None, settings, &mut Silent, stop, Instant::now())
}

/// Runs `convexnn bench threshold`; returns the exit code.
pub fn run(a: &ThresholdBenchArgs) -> Result<i32> {
    if a.p == 0 || a.repeats == 0 {
        return Err(Error::InvalidSetting(
            "--p and --repeats must be at least 1".into(),
        ));
    }
    if !(a.lambda.is_finite() && a.lambda > 0.0 && a.tol.is_finite() && a.tol > 0.0) {
        return Err(Error::InvalidSetting(format!(
            "--lambda and --tol must be positive, got {} and {}",
            a.lambda, a.tol
        )));
    }
    let dir = match &a.uci {
        Some(d) => d.clone(),
        None => default_data_root("uci121/spambase")
            .map(|r| r.join("uci121/spambase"))
            .ok_or_else(|| {
                Error::InvalidSetting(
                    "no data: pass --uci DIR (a UCI data set folder, e.g. uci121/spambase of the \
                     shared data)"
                        .into(),
                )
            })?,
    };
    let (name, x, y) = load(&dir)?;
    let n = x.nrows();
    let opts = TrainOptions {
        formulation: Formulation::Threshold,
        loss: Loss::Squared,
        lambda: a.lambda,
        tol: a.tol,
        seed: a.seed,
        patterns: PatternSource::Sample { count: a.p },
        precision: Precision::F64,
        time_limit: Some(a.time_limit),
        max_iter: usize::MAX / 2,
        ..TrainOptions::default()
    };
    let patterns = build_patterns(x.as_ref(), &opts)?;
    let p = patterns.len();
    let dense_bytes = 8 * n * p;
    let limit = 8usize << 30;
    if dense_bytes + gram_memory(p) > limit {
        return Err(Error::Memory(format!(
            "the dense copy ({:.2} GiB) and the Gram matrix ({:.2} GiB) exceed 8 GiB: use fewer \
             columns (--p)",
            super::gib(dense_bytes),
            super::gib(gram_memory(p))
        )));
    }
    let k = Mat::from_fn(n, p, |i, j| f64::from(u8::from(patterns.get(i, j))));
    let stop = stop_flag();
    let settings = CdSettings {
        tol: a.tol,
        max_sweeps: usize::MAX / 2,
        time_limit: Some(a.time_limit),
        ..CdSettings::default()
    };

    if !a.json {
        println!(
            "convexnn bench threshold: UCI {name}, n = {n}, d = {} (with the ones column), P = {p} \
             arrangement columns ({} gates), λ = {}, tol {:.0e}, best of {}",
            x.ncols(),
            a.p,
            a.lambda,
            a.tol,
            a.repeats
        );
        println!(
            "  storage: bits {:.2} MiB, Gram matrix {:.2} MiB, dense f64 {:.2} MiB",
            (p * n.div_ceil(64) * 8) as f64 / (1u64 << 20) as f64,
            gram_memory(p) as f64 / (1u64 << 20) as f64,
            dense_bytes as f64 / (1u64 << 20) as f64
        );
    }

    let mut reports = Vec::new();
    let cd_report = |method, storage, (best, median, out): (f64, f64, CdOutput)| {
        let (objective, relative_gap) = check(&k, &y, &out.z, a.lambda);
        MethodReport {
            method,
            storage,
            best,
            median,
            iterations: out.sweeps,
            cd_steps: Some((out.full_sweeps, out.newton_steps)),
            status: out.status,
            objective,
            relative_gap,
        }
    };
    let bits = timed(a.repeats, || {
        let mut c = GramCoordinates::new(&patterns, &y);
        Ok(solve_cd(&mut c, a.lambda, &settings, &stop))
    })?;
    reports.push(cd_report("cd", "bits (Gram)", bits));
    let dense = timed(a.repeats, || {
        let mut c = ResidualCoordinates::new(k.as_ref(), &y);
        Ok(solve_cd(&mut c, a.lambda, &settings, &stop))
    })?;
    reports.push(cd_report("cd", "dense f64", dense));
    if !a.no_fista {
        let fista_opts = TrainOptions {
            patterns: PatternSource::Set(patterns.clone()),
            solver: SolverChoice::Fista,
            ..opts.clone()
        };
        let (best, median, fit) = timed(a.repeats, || {
            train(x.as_ref(), &y, &fista_opts, &mut Silent, &stop)
        })?;
        let z: Vec<f64> = fit.weights.row(0).iter().copied().collect();
        let (objective, relative_gap) = check(&k, &y, &z, a.lambda);
        reports.push(MethodReport {
            method: "fista",
            storage: "bits (operator)",
            best,
            median,
            iterations: fit.certificate.info.iterations,
            cd_steps: None,
            status: fit.certificate.info.status,
            objective,
            relative_gap,
        });
    }
    let ratio = reports[1].best / reports[0].best;

    if a.json {
        let j = json!({
            "dataset": name,
            "n": n,
            "d": x.ncols(),
            "gates": a.p,
            "columns": p,
            "lambda": a.lambda,
            "tol": a.tol,
            "seed": a.seed,
            "repeats": a.repeats,
            "methods": reports.iter().map(MethodReport::to_json).collect::<Vec<_>>(),
            "dense_over_bits": ratio,
        });
        println!("{j}");
    } else {
        println!();
        println!(
            "{:<6} {:<16} {:>9} {:>9} {:>8} {:>11} {:>16} {:>10}  status",
            "method",
            "storage",
            "best s",
            "median s",
            "iters",
            "full/newton",
            "objective",
            "rel. gap"
        );
        for r in &reports {
            println!(
                "{:<6} {:<16} {:>9.3} {:>9.3} {:>8} {:>11} {:>16.9e} {:>10.2e}  {}",
                r.method,
                r.storage,
                r.best,
                r.median,
                r.iterations,
                r.cd_steps
                    .map_or(String::new(), |(f, nw)| format!("{f}/{nw}")),
                r.objective,
                r.relative_gap,
                r.status
            );
        }
        println!();
        println!("dense / bit-packed coordinate descent time: {ratio:.1}×");
        if let Some(f) = reports.get(2) {
            println!(
                "FISTA / bit-packed coordinate descent time: {:.1}×",
                f.best / reports[0].best
            );
        }
        println!(
            "objectives and gaps are recomputed from the dense matrix for every method; iters are \
             sweeps for cd"
        );
    }
    let interrupted = stop.is_set() || reports.iter().any(|r| r.status == Status::Interrupted);
    Ok(if interrupted { 130 } else { 0 })
}
