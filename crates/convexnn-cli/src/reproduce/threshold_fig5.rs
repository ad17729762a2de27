//! `threshold-fig5`: the 1-D toy problem of Ergen et al. (2023), Fig. 5 and App. B.1: targets from a
//! randomly initialized two-layer threshold network on 1-D inputs, the convex program (M29) over
//! every arrangement pattern (globally optimal among threshold networks of any width) against the
//! four straight-through-estimator variants of §5 from several initializations, each with its
//! learning rate tuned on a grid, all on the objective (M28).
//!
//! Settings. From the seed (App. B.1): 1-D data with the labels of a random two-layer threshold
//! network, the convex program (6) against STE, several initializations, a learning-rate grid
//! search. From the authors' public code (pilancilab/Threshold-networks, `main.ipynb`, which holds
//! the Fig. 2 experiment; the Fig. 5 values themselves were lost in the seed): λ = 1e-3 (their
//! `beta_star`, β = nλ) and plain full-batch SGD with a learning rate around 0.01. Ours: the inputs
//! (n equally spaced points on [−1, 1] with a bias), the planted width 5 with Gaussian weights, the
//! squared loss on the real-valued outputs, the grid {1e-3, 1e-2, 1e-1}, five initializations, the
//! STE width (that of the convex solution) and the step counts.

use std::fmt::Write as _;

use convexnn::faer::Mat;
use convexnn::model::{train, PatternSource, SolverChoice, TrainOptions};
use convexnn::network::sgd::LogRecord;
use convexnn::network::ste::{train_ste, SteSettings, Surrogate};
use convexnn::program::{Formulation, Loss};
use convexnn::rng::Rng;
use convexnn::solver::Silent;
use convexnn::Result;

use super::{write_text, ReproduceArgs};
use crate::plot::{write_figure, Plot, Series, COLORS};
use crate::train::stop_flag;

/// Sizes of one run of the experiment.
struct Sizes {
    n: usize,
    inits: usize,
    steps: usize,
    learning_rates: &'static [f64],
}

/// Width of the planted network that generates the targets.
const PLANTED_WIDTH: usize = 5;

/// The regularization of the authors' code (`beta_star`).
const LAMBDA: f64 = 1e-3;

/// One STE run: method, initialization, learning rate and its log (None when it diverged).
struct SteRun {
    surrogate: Surrogate,
    init: usize,
    learning_rate: f64,
    log: Option<Vec<LogRecord>>,
    network: Option<convexnn::network::Network>,
}

impl SteRun {
    fn final_objective(&self) -> f64 {
        self.log
            .as_ref()
            .and_then(|l| l.last())
            .map_or(f64::INFINITY, |r| r.objective)
    }

    fn min_objective(&self) -> f64 {
        self.log.as_ref().map_or(f64::INFINITY, |l| {
            l.iter().map(|r| r.objective).fold(f64::INFINITY, f64::min)
        })
    }
}

/// Targets of a random two-layer threshold network f(x) = Σ_k α_k 1[w_k x + b_k ≥ 0] with Gaussian
/// weights (000 App. B.1).
fn planted_targets(xs: &[f64], rng: &mut Rng) -> Vec<f64> {
    let units: Vec<(f64, f64, f64)> = (0..PLANTED_WIDTH)
        .map(|_| (rng.normal(), rng.normal(), rng.normal()))
        .collect();
    xs.iter()
        .map(|&x| {
            units
                .iter()
                .filter(|(w, b, _)| w * x + b >= 0.0)
                .map(|(_, _, a)| a)
                .sum()
        })
        .collect()
}

/// Runs the experiment.
pub fn run(a: &ReproduceArgs) -> Result<i32> {
    let sizes = if a.quick {
        Sizes {
            n: 12,
            inits: 2,
            steps: 400,
            learning_rates: &[1e-2, 1e-1],
        }
    } else {
        Sizes {
            n: 30,
            inits: 5,
            steps: 20_000,
            learning_rates: &[1e-3, 1e-2, 1e-1],
        }
    };
    let n = sizes.n;
    let mut rng = Rng::new(a.seed);
    let xs: Vec<f64> = (0..n)
        .map(|i| -1.0 + 2.0 * i as f64 / (n - 1) as f64)
        .collect();
    let y = planted_targets(&xs, &mut rng);
    let x = Mat::from_fn(n, 2, |i, k| if k == 0 { xs[i] } else { 1.0 });
    let stop = stop_flag();
    let opts = TrainOptions {
        formulation: Formulation::Threshold,
        lambda: LAMBDA,
        patterns: PatternSource::Exact,
        solver: SolverChoice::Clarabel,
        ..TrainOptions::default()
    };
    let fit = train(x.as_ref(), &y, &opts, &mut Silent, &stop)?;
    let c = &fit.certificate;
    let width = c.active_neurons.max(1);

    let mut runs = Vec::new();
    for surrogate in Surrogate::ALL {
        for init in 0..sizes.inits {
            for &learning_rate in sizes.learning_rates {
                let settings = SteSettings {
                    width,
                    surrogate,
                    learning_rate,
                    steps: sizes.steps,
                    seed: a.seed + 1 + init as u64,
                    log_every: (sizes.steps / 200).max(1),
                    ..SteSettings::default()
                };
                let (network, log) =
                    match train_ste(x.as_ref(), &y, Loss::Squared, LAMBDA, &settings, &stop) {
                        Ok((net, log)) => (Some(net), Some(log)),
                        Err(_) => (None, None),
                    };
                runs.push(SteRun {
                    surrogate,
                    init,
                    learning_rate,
                    log,
                    network,
                });
            }
        }
    }
    // Per method and initialization, the learning rate of the lowest final objective.
    let tuned: Vec<&SteRun> = Surrogate::ALL
        .iter()
        .flat_map(|&s| (0..sizes.inits).map(move |i| (s, i)))
        .filter_map(|(s, i)| {
            runs.iter()
                .filter(|r| r.surrogate == s && r.init == i && r.log.is_some())
                .min_by(|p, q| p.final_objective().total_cmp(&q.final_objective()))
        })
        .collect();

    // objective.csv: every logged objective of every run.
    let mut csv = String::from("method,init,learning_rate,step,objective\n");
    for r in &runs {
        for rec in r.log.iter().flatten() {
            let _ = writeln!(
                csv,
                "{},{},{},{},{}",
                r.surrogate.method_name(),
                r.init,
                r.learning_rate,
                rec.step,
                rec.objective
            );
        }
    }
    write_text(a.out.join("objective.csv"), &csv)?;
    let mut summary =
        String::from("method,init,learning_rate,tuned,final_objective,min_objective,excess\n");
    for r in &runs {
        let is_tuned = tuned.iter().any(|t| std::ptr::eq(*t, r));
        let _ = writeln!(
            summary,
            "{},{},{},{},{},{},{}",
            r.surrogate.method_name(),
            r.init,
            r.learning_rate,
            is_tuned,
            r.final_objective(),
            r.min_objective(),
            r.final_objective() - c.info.objective
        );
    }
    write_text(a.out.join("runs.csv"), &summary)?;

    // Objective over iterations: every tuned run, one color per method, and the optimum.
    let mut series = Vec::new();
    for (k, s) in Surrogate::ALL.iter().enumerate() {
        for (j, r) in tuned.iter().filter(|r| r.surrogate == *s).enumerate() {
            series.push(Series {
                label: if j == 0 {
                    s.method_name().to_string()
                } else {
                    String::new()
                },
                points: r
                    .log
                    .iter()
                    .flatten()
                    .map(|rec| (rec.step as f64, rec.objective))
                    .collect(),
                color: COLORS[k % COLORS.len()],
                dashed: false,
                markers: false,
            });
        }
    }
    series.push(Series {
        label: "convex optimum".into(),
        points: vec![
            (0.0, c.info.objective),
            (sizes.steps as f64, c.info.objective),
        ],
        color: "#000000",
        dashed: true,
        markers: false,
    });
    let title = format!(
        "1-D threshold network, lambda = {LAMBDA}: STE ({width} neurons, {} inits) vs convex",
        sizes.inits
    );
    let plot = Plot {
        title: &title,
        x_label: "iteration",
        y_label: "objective (M28)",
        log_y: true,
    };
    let mut files = vec!["objective.csv".to_string(), "runs.csv".to_string()];
    files.extend(write_figure(&a.out, "objective", &plot, &series)?);

    // The fits on a fine grid: the optimum and each method's best tuned run.
    let grid: Vec<f64> = (0..=400).map(|i| -1.1 + 2.2 * i as f64 / 400.0).collect();
    let gx = Mat::from_fn(grid.len(), 2, |i, k| if k == 0 { grid[i] } else { 1.0 });
    let mut fits = vec![Series {
        label: "data".into(),
        points: xs.iter().cloned().zip(y.iter().cloned()).collect(),
        color: "#000000",
        dashed: false,
        markers: true,
    }];
    for (k, s) in Surrogate::ALL.iter().enumerate() {
        let best = tuned
            .iter()
            .filter(|r| r.surrogate == *s)
            .min_by(|p, q| p.final_objective().total_cmp(&q.final_objective()));
        if let Some(net) = best.and_then(|r| r.network.as_ref()) {
            let f = net.predict(gx.as_ref())?;
            fits.push(Series {
                label: s.method_name().into(),
                points: grid.iter().cloned().zip(f).collect(),
                color: COLORS[k % COLORS.len()],
                dashed: false,
                markers: false,
            });
        }
    }
    let optimal = fit.network.predict(gx.as_ref())?;
    fits.push(Series {
        label: "convex optimum".into(),
        points: grid.iter().cloned().zip(optimal).collect(),
        color: "#d62728",
        dashed: true,
        markers: false,
    });
    let fit_title = format!("1-D threshold network fits, lambda = {LAMBDA}");
    let fit_plot = Plot {
        title: &fit_title,
        x_label: "input x",
        y_label: "output f(x)",
        log_y: false,
    };
    files.extend(write_figure(&a.out, "fits", &fit_plot, &fits)?);
    files.push("report.md".into());

    // The claim: no STE run gets below the certified lower bound of the exhaustive convex program.
    let bound = c.info.dual_objective - 1e-12 * c.info.objective.abs();
    let below = runs.iter().filter(|r| r.min_objective() < bound).count();
    let diverged = runs.iter().filter(|r| r.log.is_none()).count();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# threshold-fig5: 1-D threshold network, convex optimum vs straight-through estimators\n"
    );
    let _ = writeln!(
        report,
        "n = {n} inputs equally spaced on [-1, 1] with a bias, targets from a random threshold \
         network of width {PLANTED_WIDTH} (Gaussian weights), squared loss, λ = {LAMBDA}, seed {}. \
         Ergen et al. (2023), Fig. 5 / App. B.1; the lost settings are ours or from the authors' \
         code for Fig. 2 (see the module documentation).\n",
        a.seed
    );
    let _ = writeln!(
        report,
        "- Convex Lasso over all {} arrangement patterns (exhaustive: {}): objective {:.10e}, \
         certified lower bound {:.10e} (gap {:.2e}), status {}, {} neurons, {:.3} s.",
        c.n_patterns,
        c.exhaustive,
        c.info.objective,
        c.info.dual_objective,
        c.info.gap,
        c.info.status,
        width,
        c.info.seconds
    );
    let _ = writeln!(
        report,
        "- STE: {} methods × {} initializations × learning rates {:?}, {} full-batch SGD steps, \
         width {width} (the convex solution's); {diverged} runs diverged.\n",
        Surrogate::ALL.len(),
        sizes.inits,
        sizes.learning_rates,
        sizes.steps
    );
    let _ = writeln!(
        report,
        "| method | best final objective | excess over the optimum | worst tuned final |"
    );
    let _ = writeln!(report, "|---|---|---|---|");
    for s in Surrogate::ALL {
        let finals: Vec<f64> = tuned
            .iter()
            .filter(|r| r.surrogate == s)
            .map(|r| r.final_objective())
            .collect();
        let best = finals.iter().cloned().fold(f64::INFINITY, f64::min);
        let worst = finals.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let _ = writeln!(
            report,
            "| {} | {best:.6e} | {:+.3e} | {worst:.6e} |",
            s.method_name(),
            best - c.info.objective
        );
    }
    let _ = writeln!(
        report,
        "\nruns below the certified optimum: {below} (of {}).",
        runs.len()
    );
    let _ = writeln!(
        report,
        "\nobjective.csv holds every logged objective, runs.csv one line per run; the objective \
         figure shows the tuned runs against the optimum, the fits figure each method's best fit.\n"
    );
    let _ = writeln!(report, "Files: {}.", files.join(", "));
    write_text(a.out.join("report.md"), &report)?;
    println!("{report}");
    Ok(if below > 0 { 1 } else { 0 })
}
