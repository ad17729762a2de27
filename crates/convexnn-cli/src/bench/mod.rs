//! `convexnn bench`: the operator's throughput next to plain GEMM at the same shapes, measured in
//! the same run, the estimated peak memory of a fit, and the solvers' time to tolerance on
//! generated data.
//!
//! The data are Gaussian X (n × d), targets from a planted ReLU network plus noise, and P Gaussian
//! gates, all from the project's seeded generator, so two runs with the same options solve the
//! same problem.
//!
//! `convexnn bench threshold` ([`threshold`]) times the threshold Lasso on a real data set instead;
//! `convexnn bench cnn` ([`cnn`]) the convex CNN on MNIST against SGD.

use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use convexnn::faer::linalg::matmul::matmul;
use convexnn::faer::{Accum, Mat};
use convexnn::features::sample::gaussian_gates;
use convexnn::features::PatternSet;
use convexnn::model::{
    memory_estimate, train, PatternSource, Precision, SolverChoice, TrainOptions,
};
use convexnn::operator::{MaskedOperator, DEFAULT_BLOCK_ROWS};
use convexnn::program::Formulation;
use convexnn::rng::Rng;
use convexnn::solver::{Silent, Status};
use convexnn::{Error, Real, Result};
use serde_json::{json, Value};

use crate::train::{stop_flag, SolverArg};

mod cnn;
mod threshold;

/// Precisions measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchPrecision {
    /// Single precision only.
    F32,
    /// Double precision only.
    F64,
    /// Both, f32 first.
    Both,
}

/// Solvers timed after the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchSolvers {
    /// Kernels only.
    None,
    /// The gated ReLU program (FISTA).
    Gated,
    /// The ReLU program (its automatic solver).
    Relu,
    /// Gated, then ReLU.
    All,
}

/// Benchmarks other than the default operator and solver suite.
#[derive(Subcommand, Debug)]
pub enum BenchSuite {
    /// The two-layer threshold Lasso on a real data set (spambase by default): coordinate descent
    /// on the bit-packed arrangement columns against the same algorithm on a dense matrix, and
    /// FISTA, in the same run.
    Threshold(threshold::ThresholdBenchArgs),
    /// The convex CNN with global average pooling on two classes of MNIST (n = 12000, P = 500 by
    /// default): the gated and ReLU convex programs against SGD on the same CNN, in the same run.
    Cnn(cnn::CnnBenchArgs),
}

/// Options of `convexnn bench`.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// Another benchmark (the default measures the operator and the solvers on generated data).
    #[command(subcommand)]
    pub suite: Option<BenchSuite>,
    /// Rows of X [default: 10000, or 2000 with --quick].
    #[arg(long)]
    pub n: Option<usize>,
    /// Columns of X [default: 50, or 20 with --quick].
    #[arg(long)]
    pub d: Option<usize>,
    /// Gates, hence patterns (duplicates are dropped) [default: 500, or 100 with --quick].
    #[arg(long)]
    pub p: Option<usize>,
    /// Precision of the kernels and the solvers.
    #[arg(long, value_enum, default_value = "both")]
    pub precision: BenchPrecision,
    /// Threads for the matrix products (0 = all cores).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Timed runs of each kernel; the best is reported [default: 10, or 3 with --quick].
    #[arg(long)]
    pub repeats: Option<usize>,
    /// Rows per block of the operator.
    #[arg(long, default_value_t = DEFAULT_BLOCK_ROWS)]
    pub block_rows: usize,
    /// Programs solved after the kernels.
    #[arg(long, value_enum, default_value = "gated")]
    pub solvers: BenchSolvers,
    /// Solver of the ReLU program (auto: as `train` chooses).
    #[arg(long, value_enum, default_value = "auto")]
    pub relu_solver: SolverArg,
    /// Regularization λ of the solves.
    #[arg(long, default_value_t = 1e-3)]
    pub lambda: f64,
    /// Relative duality gap at which the solves stop.
    #[arg(long, default_value_t = 1e-6)]
    pub tol: f64,
    /// Iteration cap of each solve.
    #[arg(long, default_value_t = 10_000)]
    pub max_iter: usize,
    /// Wall-clock limit of each solve in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub time_limit: Option<f64>,
    /// Seed of the data and the gates.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object on stdout instead of the tables.
    #[arg(long)]
    pub json: bool,
    /// A small problem (n = 2000, d = 20, P = 100) for smoke tests; explicit sizes still win.
    #[arg(long)]
    pub quick: bool,
}

/// Best and median seconds of a timed kernel, with its rate.
struct Timing {
    best: f64,
    median: f64,
    gflops: f64,
}

impl Timing {
    fn to_json(&self) -> Value {
        json!({
            "best_seconds": self.best,
            "median_seconds": self.median,
            "gflops": self.gflops,
        })
    }
}

/// Runs `f` once untimed, then `repeats` times; the rate is that of the best run.
fn time_kernel(repeats: usize, flops: f64, mut f: impl FnMut()) -> Timing {
    f();
    let mut secs: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64().max(1e-9)
        })
        .collect();
    secs.sort_by(f64::total_cmp);
    let best = secs[0];
    let median = secs[secs.len() / 2];
    Timing {
        best,
        median,
        gflops: flops / best / 1e9,
    }
}

/// The four kernels in one precision.
struct KernelReport {
    precision: &'static str,
    gemm_xu: Timing,
    gemm_xtm: Timing,
    apply: Timing,
    adjoint: Timing,
}

impl KernelReport {
    fn apply_ratio(&self) -> f64 {
        self.apply.gflops / self.gemm_xu.gflops
    }

    fn adjoint_ratio(&self) -> f64 {
        self.adjoint.gflops / self.gemm_xtm.gflops
    }

    fn to_json(&self) -> Value {
        json!({
            "precision": self.precision,
            "gemm_xu": self.gemm_xu.to_json(),
            "gemm_xtm": self.gemm_xtm.to_json(),
            "apply": self.apply.to_json(),
            "adjoint": self.adjoint.to_json(),
            "apply_vs_gemm": self.apply_ratio(),
            "adjoint_vs_gemm": self.adjoint_ratio(),
        })
    }
}

fn measure_kernels<T: Real>(
    x: &Mat<f64>,
    patterns: &PatternSet,
    a: &BenchArgs,
    repeats: usize,
    seed: u64,
) -> KernelReport {
    let (n, d, p) = (x.nrows(), x.ncols(), patterns.len());
    let flops = 2.0 * n as f64 * d as f64 * p as f64;
    let mut op = MaskedOperator::<T>::new(x.as_ref(), patterns.clone(), a.block_rows, a.threads);
    let par = op.par();
    let mut rng = Rng::new(seed);
    let u = Mat::<T>::from_fn(d, p, |_, _| T::lit(rng.normal()));
    let m = Mat::<T>::from_fn(n, p, |_, _| T::lit(rng.normal()));
    let r: Vec<T> = (0..n).map(|_| T::lit(rng.normal())).collect();
    let xt = op.x().to_owned();

    let mut xu = Mat::<T>::zeros(n, p);
    let gemm_xu = time_kernel(repeats, flops, || {
        matmul(
            xu.as_mut(),
            Accum::Replace,
            xt.as_ref(),
            u.as_ref(),
            T::one(),
            par,
        );
    });
    drop(xu);
    let mut xtm = Mat::<T>::zeros(d, p);
    let gemm_xtm = time_kernel(repeats, flops, || {
        matmul(
            xtm.as_mut(),
            Accum::Replace,
            xt.as_ref().transpose(),
            m.as_ref(),
            T::one(),
            par,
        );
    });
    drop(m);
    let mut out = vec![T::zero(); n];
    let apply = time_kernel(repeats, flops, || op.apply(u.as_ref(), &mut out));
    let mut adj = Mat::<T>::zeros(d, p);
    let adjoint = time_kernel(repeats, flops, || op.adjoint(&r, adj.as_mut()));
    KernelReport {
        precision: T::NAME,
        gemm_xu,
        gemm_xtm,
        apply,
        adjoint,
    }
}

/// One timed solve.
struct SolveReport {
    formulation: Formulation,
    precision: &'static str,
    solver: String,
    seconds: f64,
    iterations: usize,
    outer_iterations: usize,
    forward: usize,
    adjoint: usize,
    objective: f64,
    gap: f64,
    relative_gap: f64,
    violation: f64,
    status: Status,
}

impl SolveReport {
    fn to_json(&self) -> Value {
        json!({
            "formulation": self.formulation.as_str(),
            "precision": self.precision,
            "solver": self.solver,
            "seconds": self.seconds,
            "iterations": self.iterations,
            "outer_iterations": self.outer_iterations,
            "forward_products": self.forward,
            "adjoint_products": self.adjoint,
            "objective": self.objective,
            "gap": self.gap,
            "relative_gap": self.relative_gap,
            "cone_violation": self.violation,
            "status": self.status.as_str(),
        })
    }
}

/// Gaussian X, targets of a planted ReLU network of `width` neurons plus noise.
fn planted_data(n: usize, d: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let x = Mat::from_fn(n, d, |_, _| rng.normal());
    let width = 10.min(d.max(1));
    let scale = 1.0 / (d as f64).sqrt();
    let w = Mat::from_fn(d, width, |_, _| scale * rng.normal());
    let alpha: Vec<f64> = (0..width)
        .map(|j| if j % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    let y = (0..n)
        .map(|i| {
            let clean: f64 = (0..width)
                .map(|j| {
                    let z: f64 = (0..d).map(|k| x[(i, k)] * w[(k, j)]).sum();
                    alpha[j] * z.max(0.0)
                })
                .sum();
            clean + 0.1 * rng.normal()
        })
        .collect();
    (x, y)
}

fn precision_name(p: Precision) -> &'static str {
    match p {
        Precision::F32 => "f32",
        Precision::F64 => "f64",
    }
}

fn gib(bytes: usize) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

fn threads_used(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |c| c.get()),
        t => t,
    }
}

/// Runs `convexnn bench`; returns the process exit code.
pub fn run(a: &BenchArgs) -> Result<i32> {
    match &a.suite {
        Some(BenchSuite::Threshold(t)) => return threshold::run(t),
        Some(BenchSuite::Cnn(c)) => return cnn::run(c),
        None => {}
    }
    let (n, d, p_gates) = if a.quick {
        (a.n.unwrap_or(2000), a.d.unwrap_or(20), a.p.unwrap_or(100))
    } else {
        (a.n.unwrap_or(10_000), a.d.unwrap_or(50), a.p.unwrap_or(500))
    };
    let repeats = a.repeats.unwrap_or(if a.quick { 3 } else { 10 });
    if n == 0 || d == 0 || p_gates == 0 || repeats == 0 {
        return Err(Error::InvalidSetting(
            "--n, --d, --p and --repeats must be at least 1".into(),
        ));
    }
    let precisions: Vec<Precision> = match a.precision {
        BenchPrecision::F32 => vec![Precision::F32],
        BenchPrecision::F64 => vec![Precision::F64],
        BenchPrecision::Both => vec![Precision::F32, Precision::F64],
    };
    let formulations: Vec<Formulation> = match a.solvers {
        BenchSolvers::None => vec![],
        BenchSolvers::Gated => vec![Formulation::Gated],
        BenchSolvers::Relu => vec![Formulation::Relu],
        BenchSolvers::All => vec![Formulation::Gated, Formulation::Relu],
    };
    let par_label = if a.threads == 1 {
        "sequential".to_string()
    } else {
        format!("{} threads", threads_used(a.threads))
    };

    let (x, y) = planted_data(n, d, a.seed);
    let gates = gaussian_gates(d, p_gates, a.seed.wrapping_add(1));
    let patterns = PatternSet::from_gates(x.as_ref(), gates.as_ref(), false)?;
    if patterns.is_empty() {
        return Err(Error::InvalidData(
            "every gate gives the zero pattern".into(),
        ));
    }
    let p = patterns.len();
    let flops = 2.0 * n as f64 * d as f64 * p as f64;

    if !a.json {
        println!(
            "convexnn bench: n = {n}, d = {d}, P = {p} patterns ({p_gates} gates), {par_label}, \
             block {} rows, best of {repeats}",
            a.block_rows
        );
        println!("  one product = 2·n·d·P = {:.3} GFLOP", flops / 1e9);
        println!();
        println!(
            "{:<10} {:<18} {:>10} {:>10} {:>10} {:>9}",
            "precision", "kernel", "best ms", "median ms", "GFLOP/s", "vs GEMM"
        );
    }

    let mut kernels = Vec::new();
    for (k, &prec) in precisions.iter().enumerate() {
        let seed = a.seed.wrapping_add(100 + k as u64);
        let rep = match prec {
            Precision::F32 => measure_kernels::<f32>(&x, &patterns, a, repeats, seed),
            Precision::F64 => measure_kernels::<f64>(&x, &patterns, a, repeats, seed),
        };
        if !a.json {
            let row = |name: &str, t: &Timing, ratio: Option<f64>| {
                println!(
                    "{:<10} {:<18} {:>10.3} {:>10.3} {:>10.1} {:>9}",
                    rep.precision,
                    name,
                    1e3 * t.best,
                    1e3 * t.median,
                    t.gflops,
                    ratio.map_or(String::new(), |r| format!("{r:.2}"))
                );
            };
            row("GEMM X·U", &rep.gemm_xu, None);
            row("operator apply", &rep.apply, Some(rep.apply_ratio()));
            row("GEMM Xᵀ·M", &rep.gemm_xtm, None);
            row("operator adjoint", &rep.adjoint, Some(rep.adjoint_ratio()));
        }
        kernels.push(rep);
    }

    let mut memory = Vec::new();
    for &prec in &precisions {
        for f in [Formulation::Gated, Formulation::Relu] {
            let opts = TrainOptions {
                formulation: f,
                precision: prec,
                block_rows: a.block_rows,
                ..TrainOptions::default()
            };
            memory.push((f, prec, memory_estimate(n, d, p, &opts)));
        }
    }
    if !a.json {
        println!();
        println!("estimated peak memory of a fit:");
        for (f, prec, bytes) in &memory {
            println!(
                "  {:<6} {}  {:>10.3} GiB",
                f.as_str(),
                precision_name(*prec),
                gib(*bytes)
            );
        }
    }

    let stop = stop_flag();
    let mut solves = Vec::new();
    if !formulations.is_empty() && !a.json {
        println!();
        println!(
            "{:<7} {:<5} {:<9} {:>9} {:>7} {:>7} {:>7} {:>16} {:>10} {:>10}  status",
            "program",
            "prec",
            "solver",
            "seconds",
            "iters",
            "fwd",
            "adj",
            "objective",
            "gap",
            "rel. gap"
        );
    }
    for &f in &formulations {
        for &prec in &precisions {
            if stop.is_set() {
                break;
            }
            let opts = TrainOptions {
                formulation: f,
                lambda: a.lambda,
                patterns: PatternSource::Gates(gates.clone()),
                seed: a.seed,
                tol: a.tol,
                max_iter: a.max_iter,
                time_limit: a.time_limit,
                precision: prec,
                block_rows: a.block_rows,
                threads: a.threads,
                solver: match f {
                    Formulation::Relu => a.relu_solver.choice(),
                    _ => SolverChoice::Auto,
                },
                ..TrainOptions::default()
            };
            let fit = train(x.as_ref(), &y, &opts, &mut Silent, &stop)?;
            let c = &fit.certificate;
            let rep = SolveReport {
                formulation: f,
                precision: precision_name(prec),
                solver: c.solver.clone(),
                seconds: c.info.seconds,
                iterations: c.info.iterations,
                outer_iterations: c.info.outer_iterations,
                forward: c.info.forward_calls,
                adjoint: c.info.adjoint_calls,
                objective: c.info.objective,
                gap: c.info.gap,
                relative_gap: c.relative_gap,
                violation: c.info.violation,
                status: c.info.status,
            };
            if !a.json {
                println!(
                    "{:<7} {:<5} {:<9} {:>9.3} {:>7} {:>7} {:>7} {:>16.9e} {:>10.2e} {:>10.2e}  {}",
                    rep.formulation.as_str(),
                    rep.precision,
                    rep.solver,
                    rep.seconds,
                    rep.iterations,
                    rep.forward,
                    rep.adjoint,
                    rep.objective,
                    rep.gap,
                    rep.relative_gap,
                    rep.status
                );
            }
            solves.push(rep);
        }
    }

    if a.json {
        let mem: Vec<Value> = memory
            .iter()
            .map(|(f, prec, bytes)| {
                json!({
                    "formulation": f.as_str(),
                    "precision": precision_name(*prec),
                    "bytes": bytes,
                })
            })
            .collect();
        let j = json!({
            "n": n,
            "d": d,
            "gates": p_gates,
            "patterns": p,
            "threads": threads_used(a.threads),
            "block_rows": a.block_rows,
            "repeats": repeats,
            "flops_per_product": flops,
            "seed": a.seed,
            "lambda": a.lambda,
            "tol": a.tol,
            "kernels": kernels.iter().map(KernelReport::to_json).collect::<Vec<_>>(),
            "memory": mem,
            "solvers": solves.iter().map(SolveReport::to_json).collect::<Vec<_>>(),
        });
        println!("{j}");
    }
    let interrupted = stop.is_set() || solves.iter().any(|s| s.status == Status::Interrupted);
    Ok(if interrupted { 130 } else { 0 })
}
