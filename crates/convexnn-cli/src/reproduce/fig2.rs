//! `relu-fig2-small` and `relu-fig2-large`: the experiment of Pilanci & Ergen 2020, Fig. 2, as the seed
//! describes it (§7–8): random data, a two-layer ReLU network with weight decay trained by SGD from
//! several initializations, and the optimum of the convex program on the same axis.
//!
//! The data are 2-D Gaussian points with a bias column and Gaussian targets, so every activation
//! pattern can be enumerated and the convex optimum is the certified global optimum of the network of
//! any width. The paper's own sizes are not in the seed; the ones used here are chosen to keep each run
//! within minutes on two cores and are printed in the report.

use std::fmt::Write as _;

use convexnn::faer::Mat;
use convexnn::model::{train, Fit, PatternSource, SolverChoice, TrainOptions};
use convexnn::network::sgd::{Optimizer, Schedule, SgdSettings};
use convexnn::program::{Formulation, Loss};
use convexnn::rng::Rng;
use convexnn::solver::Silent;
use convexnn::Result;

use super::{optimizer_name, write_text, ReproduceArgs, Runs};
use crate::curves::{figure, objective_plot, summary_table, write_csv, Curve, Level, Quantity};
use crate::progress::Progress;
use crate::train::stop_flag;

/// λ of (1/(2n))‖ŷ − y‖² + (λ/2)Σ(‖u_j‖² + α_j²) (β = nλ in the paper's scaling).
const LAMBDA: f64 = 1e-3;
/// The non-convex methods: SGD with momentum on mini-batches of 5 (the paper's method; its learning
/// rate halves five times over the run) and full-batch Adam (a strong baseline, constant rate):
/// (update rule, initial learning rate, batch size).
const METHODS: [(Optimizer, f64, Option<usize>); 2] = [
    (Optimizer::Sgd { momentum: 0.9 }, 0.02, Some(5)),
    (Optimizer::Adam, 0.01, None),
];
/// Relative slack of "the convex optimum is below every run" (the solver's certified gap is far
/// smaller).
const SLACK: f64 = 1e-9;

/// n random points: two Gaussian features and a ones column; Gaussian targets.
fn random_data(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let mut rng = Rng::new(seed);
    let x = Mat::from_fn(n, 3, |_, k| if k == 2 { 1.0 } else { rng.normal() });
    let y = (0..n).map(|_| rng.normal()).collect();
    (x, y)
}

fn convex_fit(
    x: &Mat<f64>,
    y: &[f64],
    patterns: PatternSource,
    seed: u64,
    quiet: bool,
) -> Result<Fit> {
    let opts = TrainOptions {
        formulation: Formulation::Relu,
        loss: Loss::Squared,
        lambda: LAMBDA,
        patterns,
        seed,
        solver: SolverChoice::Clarabel,
        tol: 1e-10,
        ..TrainOptions::default()
    };
    let progress = Progress::new("convex program", quiet);
    let fit = train(x.as_ref(), y, &opts, &mut Silent, &stop_flag());
    progress.finish();
    fit
}

/// Seeded runs of every method on n points with `width` neurons, about 500 logged points per run.
fn nonconvex(
    (x, y): (&Mat<f64>, &[f64]),
    width: usize,
    (epochs, runs, seed): (usize, usize, u64),
    quiet: bool,
) -> Result<Vec<Curve>> {
    let n = x.nrows();
    let stop = stop_flag();
    let mut curves = Vec::new();
    for (optimizer, learning_rate, batch_size) in METHODS {
        let steps = epochs * n.div_ceil(batch_size.unwrap_or(n));
        let batch = batch_size.map_or("full batch".to_string(), |b| format!("batch {b}"));
        let plan = Runs {
            method: format!(
                "{} lr={learning_rate} {batch} m={width}",
                optimizer_name(optimizer)
            ),
            settings: SgdSettings {
                width,
                optimizer,
                learning_rate,
                batch_size,
                epochs,
                log_every: (steps / 500).max(1),
                schedule: match optimizer {
                    Optimizer::Sgd { .. } => Schedule::Step {
                        every: (epochs / 6).max(1),
                        factor: 0.5,
                    },
                    Optimizer::Adam => Schedule::Constant,
                },
                seed,
                model: Formulation::Relu,
                convolution: None,
                free_biases: false,
            },
            seeds: seed + 1..seed + 1 + runs as u64,
            monitor: None,
        };
        curves.extend(plan.train((x.as_ref(), y), (Loss::Squared, LAMBDA), quiet, &stop)?);
    }
    Ok(curves)
}

/// Runs below the level (a violation of the theory when the level is the global optimum).
fn below(level: f64, curves: &[Curve]) -> usize {
    curves
        .iter()
        .filter(|c| c.final_objective() < level * (1.0 - SLACK))
        .count()
}

fn global_level(fit: &Fit) -> Level {
    let c = &fit.certificate;
    Level {
        label: format!("convex: global optimum ({} patterns)", c.n_patterns),
        objective: c.info.objective,
        seconds: c.info.seconds,
        metric: None,
    }
}

fn settings_line(n: usize, runs: usize, epochs: usize, seed: u64) -> String {
    let methods: Vec<String> = METHODS
        .iter()
        .map(|(o, lr, b)| {
            let batch = b.map_or("full batch".to_string(), |b| format!("mini-batches of {b}"));
            let decay = match o {
                Optimizer::Sgd { .. } => ", halved every sixth of the run",
                Optimizer::Adam => "",
            };
            format!(
                "{} with learning rate {lr}{decay} and {batch}",
                optimizer_name(*o)
            )
        })
        .collect();
    format!(
        "Data: n = {n} points with two standard Gaussian features and a ones column (bias), standard \
         Gaussian targets, seed {seed}. λ = {LAMBDA} (β = nλ = {}). Non-convex runs: {runs} \
         initializations per method (PyTorch's default uniform initialization, seeds {}..{}), {}; \
         {epochs} epochs each. The logged objective is the full one, on the convex program's axis.",
        n as f64 * LAMBDA,
        seed + 1,
        seed + runs as u64,
        methods.join("; ")
    )
}

/// §7: small n, m = 5 and a larger m.
pub fn run_small(a: &ReproduceArgs) -> Result<i32> {
    let (n, runs, epochs, widths) = if a.quick {
        (8, 4, 400, [5, 20])
    } else {
        (10, 10, 20_000, [5, 50])
    };
    let (x, y) = random_data(n, a.seed);
    let fit = convex_fit(&x, &y, PatternSource::Exact, a.seed, a.quiet)?;
    let level = global_level(&fit);
    let c = &fit.certificate;
    let mut report = String::new();
    let _ = writeln!(report, "# relu-fig2-small: SGD and Adam from several initializations vs the convex optimum (seed 001 §7, Pilanci & Ergen 2020 Fig. 2)\n");
    let _ = writeln!(report, "{}\n", settings_line(n, runs, epochs, a.seed));
    let _ = writeln!(
        report,
        "Convex program (M6) over all {} activation patterns (exhaustive: {}), interior-point solver: \
         objective {:.10e}, duality gap {:.2e}, status {}, {} active neurons, {:.3} s. This is the \
         global optimum of the training problem for networks of any width.\n",
        c.n_patterns,
        c.exhaustive,
        c.info.objective,
        c.info.gap,
        c.info.status,
        c.active_neurons,
        c.info.seconds
    );
    let mut files = vec!["report.md".to_string()];
    let mut violations = 0;
    for m in widths {
        let curves = nonconvex((&x, &y), m, (epochs, runs, a.seed), a.quiet)?;
        let levels = std::slice::from_ref(&level);
        let csv = format!("curves_m{m}.csv");
        write_csv(&a.out.join(&csv), levels, &curves)?;
        files.push(csv);
        let title =
            format!("Random data, n = {n}, m = {m} neurons: SGD/Adam vs the convex optimum");
        files.extend(figure(
            &a.out,
            &format!("objective_m{m}"),
            &objective_plot(&title, false),
            (Quantity::Objective, false),
            levels,
            &curves,
        )?);
        let b = below(level.objective, &curves);
        violations += b;
        let _ = writeln!(report, "## m = {m}\n");
        report.push_str(&summary_table(levels, &curves, None));
        let best = curves
            .iter()
            .map(Curve::final_objective)
            .fold(f64::INFINITY, f64::min);
        let reached = curves
            .iter()
            .filter(|c| c.final_objective() <= level.objective * (1.0 + 1e-3))
            .count();
        let _ = writeln!(
            report,
            "\nBest non-convex run ends {:.3e} above the optimum (relative {:.2e}); {reached} of {} \
             runs end within 0.1% of it; runs below the certified optimum: {b}.\n",
            best - level.objective,
            (best - level.objective) / level.objective,
            curves.len()
        );
    }
    let _ = writeln!(
        report,
        "Claim checked: with every pattern, the convex objective is ≤ every non-convex run's final objective \
         (within {SLACK:e} relative): {}.\n",
        if violations == 0 { "holds" } else { "VIOLATED" }
    );
    let _ = writeln!(report, "Files: {}.", files.join(", "));
    write_text(a.out.join("report.md"), &report)?;
    println!("{report}");
    Ok(if violations > 0 { 1 } else { 0 })
}

/// §8: larger n; exact program, approximate program over sampled patterns (Remark 3.3) and SGD.
pub fn run_large(a: &ReproduceArgs) -> Result<i32> {
    let (n, runs, epochs, sampled) = if a.quick {
        (20, 4, 300, 20)
    } else {
        (50, 10, 20_000, 100)
    };
    let (x, y) = random_data(n, a.seed);
    let exact = convex_fit(&x, &y, PatternSource::Exact, a.seed, a.quiet)?;
    let approx = convex_fit(
        &x,
        &y,
        PatternSource::Sample { count: sampled },
        a.seed,
        a.quiet,
    )?;
    let (ce, ca) = (&exact.certificate, &approx.certificate);
    let m = ce.active_neurons.max(1);
    let curves = nonconvex((&x, &y), m, (epochs, runs, a.seed), a.quiet)?;
    let levels = [
        global_level(&exact),
        Level {
            label: format!("convex: {} sampled gates (Remark 3.3)", sampled),
            objective: ca.info.objective,
            seconds: ca.info.seconds,
            metric: None,
        },
    ];
    let mut files = vec!["report.md".to_string(), "curves.csv".to_string()];
    write_csv(&a.out.join("curves.csv"), &levels, &curves)?;
    let title = format!("Random data, n = {n}, m = {m}: SGD/Adam vs exact and approximate convex");
    for (name, by_time) in [
        ("objective_vs_steps", false),
        ("objective_vs_seconds", true),
    ] {
        files.extend(figure(
            &a.out,
            name,
            &objective_plot(&title, by_time),
            (Quantity::Objective, by_time),
            &levels,
            &curves,
        )?);
    }
    let b = below(ce.info.objective, &curves);
    let approx_ok = ca.info.objective >= ce.info.objective * (1.0 - 1e-7);
    let approx_beats = curves
        .iter()
        .filter(|c| c.final_objective() > ca.info.objective)
        .count();
    let mut report = String::new();
    let _ = writeln!(report, "# relu-fig2-large: larger n, exact and approximate convex programs vs SGD and Adam (seed 001 §8, Pilanci & Ergen 2020 Fig. 2 and Remark 3.3)\n");
    let _ = writeln!(report, "{}\n", settings_line(n, runs, epochs, a.seed));
    let _ = writeln!(
        report,
        "- Exact program (M6), all {} patterns (exhaustive: {}): objective {:.10e}, gap {:.2e}, status {}, {} active neurons, {:.3} s.",
        ce.n_patterns, ce.exhaustive, ce.info.objective, ce.info.gap, ce.info.status, ce.active_neurons, ce.info.seconds
    );
    let _ = writeln!(
        report,
        "- Approximate program (Remark 3.3), {} Gaussian gates → {} distinct patterns: objective {:.10e} ({:+.3e} relative to the exact optimum), status {}, {:.3} s ({:.1}× faster than the exact program).",
        sampled,
        ca.n_patterns,
        ca.info.objective,
        (ca.info.objective - ce.info.objective) / ce.info.objective,
        ca.info.status,
        ca.info.seconds,
        ce.info.seconds / ca.info.seconds.max(1e-9)
    );
    let _ = writeln!(
        report,
        "- Non-convex runs use m = {m}, the number of neurons of the optimal network, so the global optimum is reachable by them.\n"
    );
    report.push_str(&summary_table(&levels, &curves, None));
    let _ = writeln!(
        report,
        "\nClaims checked:\n- the exact optimum is ≤ every non-convex run's final objective (within {SLACK:e} relative): {} ({b} runs below);\n- the approximate program's optimum is ≥ the exact one (a restriction of it): {};\n- non-convex runs ending above the approximate program's optimum: {approx_beats} of {} (reported, not a theorem).\n",
        if b == 0 { "holds" } else { "VIOLATED" },
        if approx_ok { "holds" } else { "VIOLATED" },
        curves.len()
    );
    let _ = writeln!(report, "Files: {}.", files.join(", "));
    write_text(a.out.join("report.md"), &report)?;
    println!("{report}");
    Ok(if b > 0 || !approx_ok { 1 } else { 0 })
}
