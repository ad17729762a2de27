//! `pwl-1d`: the 1-D dictionary Lasso (Zeger et al.; docs/programs.md (M47)–(M50), (M58)–(M60)) for
//! ReLU, leaky ReLU, absolute-value and threshold networks with free biases and output intercept,
//! and for deep narrow ReLU networks of depth 3 and 4, against the same networks trained by Adam
//! (straight-through estimator for the threshold network) from several initializations: fits with
//! their knots, objective curves, and a table of objectives and test error.

use std::fmt::Write as _;

use convexnn::faer::Mat;
use convexnn::model::{train, Fit, TrainOptions};
use convexnn::network::narrow::{train_narrow, NarrowSettings};
use convexnn::network::sgd::{train_nonconvex_observed, Optimizer, SgdSettings};
use convexnn::network::ste::{train_ste, SteSettings, Surrogate};
use convexnn::network::Network;
use convexnn::program::{Formulation, Loss};
use convexnn::rng::Rng;
use convexnn::solver::StopFlag;
use convexnn::Result;

use super::{write_fits_1d, Fits1d, RunFit};
use super::{write_text, ReproduceArgs};
use crate::compare::network_metric;
use crate::curves::{figure, objective_plot, summary_table, write_csv, Curve, Level, Quantity};
use crate::demo::knots;
use crate::progress::Progress;
use crate::train::stop_flag;

/// λ of every program.
const LAMBDA: f64 = 2e-3;

/// The networks compared (activation and depth), with their file names: the two-layer networks
/// and the deep narrow ReLU networks of depth 3 and 4 (docs/programs.md (M58)–(M60)).
const KINDS: [(Formulation, usize, &str); 6] = [
    (Formulation::Relu, 2, "relu"),
    (Formulation::LeakyRelu { slope: 0.1 }, 2, "leaky-relu"),
    (Formulation::Abs, 2, "abs"),
    (Formulation::Threshold, 2, "threshold"),
    (Formulation::Relu, 3, "relu-depth3"),
    (Formulation::Relu, 4, "relu-depth4"),
];

/// Sizes of a run.
struct Sizes {
    n: usize,
    runs: usize,
    steps: usize,
}

/// Scalar inputs uniform on [−2, 2] and y = sin(2x) + 0.5 + 0.1·noise (seeded).
fn sample(n: usize, rng: &mut Rng) -> (Mat<f64>, Vec<f64>) {
    let x = Mat::from_fn(n, 1, |_, _| -2.0 + 4.0 * rng.uniform());
    let y = (0..n)
        .map(|i| (2.0 * x[(i, 0)]).sin() + 0.5 + 0.1 * rng.normal())
        .collect();
    (x, y)
}

/// One activation's results.
struct Outcome {
    name: &'static str,
    fit: Fit,
    curves: Vec<Curve>,
    nets: Vec<Network>,
    test_error: f64,
}

/// Adam (ReLU, leaky ReLU, abs) or the ReLU-surrogate STE (threshold) runs of the network with free
/// biases and as many neurons as the convex optimum; returns the curves and the final networks.
fn nonconvex_runs(
    (kind, depth): (Formulation, usize),
    (x, y): (&Mat<f64>, &[f64]),
    (width, sizes, seed): (usize, &Sizes, u64),
    (quiet, stop): (bool, &StopFlag),
) -> Result<(Vec<Curve>, Vec<Network>)> {
    let log_every = (sizes.steps / 200).max(1);
    let (mut curves, mut nets) = (Vec::new(), Vec::new());
    for s in seed + 1..seed + 1 + sizes.runs as u64 {
        if stop.is_set() {
            break;
        }
        let (method, (net, log)) = if depth > 2 {
            let settings = NarrowSettings {
                width,
                depth,
                learning_rate: 1e-2,
                steps: sizes.steps,
                seed: s,
                log_every,
            };
            let progress = Progress::new(&format!("Adam (depth {depth}) seed {s}"), quiet);
            let out = train_narrow(x.as_ref(), y, LAMBDA, &settings, stop)?;
            progress.finish();
            (format!("Adam lr=0.01 m={width} chains"), out)
        } else if kind == Formulation::Threshold {
            let settings = SteSettings {
                width,
                surrogate: Surrogate::Relu,
                learning_rate: 0.05,
                steps: sizes.steps,
                seed: s,
                log_every,
                free_biases: true,
                ..SteSettings::default()
            };
            let progress = Progress::new(&format!("STE seed {s}"), quiet);
            let out = train_ste(x.as_ref(), y, Loss::Squared, LAMBDA, &settings, stop)?;
            progress.finish();
            (format!("STE (ReLU surrogate) lr=0.05 m={width}"), out)
        } else {
            let settings = SgdSettings {
                model: kind,
                width,
                optimizer: Optimizer::Adam,
                learning_rate: 1e-2,
                epochs: sizes.steps,
                seed: s,
                log_every,
                free_biases: true,
                ..SgdSettings::default()
            };
            let progress = Progress::new(&format!("Adam seed {s}"), quiet);
            let out = train_nonconvex_observed(
                x.as_ref(),
                y,
                Loss::Squared,
                LAMBDA,
                &settings,
                stop,
                &mut |r, _| {
                    progress.message(format!("step {:>7}  objective {:.6e}", r.step, r.objective));
                    Ok(())
                },
            )?;
            progress.finish();
            (format!("Adam lr=0.01 m={width}"), out)
        };
        curves.push(Curve {
            method,
            seed: s,
            log,
            metric: vec![],
        });
        nets.push(net);
    }
    Ok((curves, nets))
}

/// The fit figure of one activation: data, the runs' fits, the optimal fit and its knots.
fn fit_figure(a: &ReproduceArgs, o: &Outcome, (x, y): (&Mat<f64>, &[f64])) -> Result<()> {
    let grid: Vec<f64> = (0..=400).map(|i| -2.2 + 4.4 * i as f64 / 400.0).collect();
    let gx = Mat::from_fn(grid.len(), 1, |i, _| grid[i]);
    let optimal = o.fit.network.predict(gx.as_ref())?;
    let fits: Vec<Vec<f64>> = o
        .nets
        .iter()
        .map(|n| n.predict(gx.as_ref()))
        .collect::<Result<_>>()?;
    let knots = o.fit.network.knots_1d(1e-9);
    let kx = Mat::from_fn(knots.len(), 1, |i, _| knots[i]);
    let ky = o.fit.network.predict(kx.as_ref())?;
    let runs = fits
        .into_iter()
        .enumerate()
        .map(|(k, values)| RunFit {
            column: format!("run_{k}"),
            label: format!(
                "{} run {k}",
                o.curves[k].method.split(' ').next().unwrap_or("run")
            ),
            values,
        })
        .collect();
    let figure = Fits1d {
        data: (0..x.nrows()).map(|i| (x[(i, 0)], y[i])).collect(),
        grid: &grid,
        optimal: &optimal,
        runs,
        knots: Some(knots.into_iter().zip(ky).collect()),
        title: format!(
            "1-D {} network, {} neurons, lambda = {LAMBDA}",
            o.name,
            o.fit.network.width()
        ),
    };
    write_fits_1d(&a.out, &format!("fits_{}", o.name), &figure)
}

/// Runs the experiment.
pub fn run(a: &ReproduceArgs) -> Result<i32> {
    let sizes = if a.quick {
        Sizes {
            n: 12,
            runs: 3,
            steps: 1500,
        }
    } else {
        Sizes {
            n: 30,
            runs: 10,
            steps: 20_000,
        }
    };
    let mut rng = Rng::new(a.seed);
    let (x, y) = sample(sizes.n, &mut rng);
    let (xt, yt) = sample(500, &mut rng);
    let stop = stop_flag();
    let mut outcomes = Vec::new();
    for (kind, depth, name) in KINDS {
        let opts = TrainOptions {
            formulation: kind,
            lambda: LAMBDA,
            dictionary: true,
            dictionary_depth: depth,
            tol: 1e-9,
            max_iter: 100_000,
            ..TrainOptions::default()
        };
        let mut progress = Progress::new(&format!("{name}: dictionary Lasso"), a.quiet);
        let fit = train(x.as_ref(), &y, &opts, &mut progress, &stop);
        progress.finish();
        let fit = fit?;
        let width = fit.network.width().max(1);
        let (curves, nets) = nonconvex_runs(
            (kind, depth),
            (&x, &y),
            (width, &sizes, a.seed),
            (a.quiet, &stop),
        )?;
        let test_error = network_metric(&fit.network, &xt, &yt, Loss::Squared)?;
        let o = Outcome {
            name,
            fit,
            curves,
            nets,
            test_error,
        };
        fit_figure(a, &o, (&x, &y))?;
        let c = &o.fit.certificate;
        let level = Level {
            label: "convex: global optimum".into(),
            objective: c.info.objective,
            seconds: c.info.seconds,
            metric: Some(test_error),
        };
        let levels = [level];
        write_csv(
            &a.out.join(format!("objective_{name}.csv")),
            &levels,
            &o.curves,
        )?;
        let title = format!("1-D {name} network: training objective");
        let plot = objective_plot(&title, false);
        figure(
            &a.out,
            &format!("objective_{name}"),
            &plot,
            (Quantity::Objective, false),
            &levels,
            &o.curves,
        )?;
        outcomes.push(o);
    }
    let (report, holds) = report(a, &sizes, &outcomes, (&xt, &yt))?;
    write_text(a.out.join("report.md"), &report)?;
    println!("{report}");
    Ok(if holds { 0 } else { 1 })
}

/// The Markdown report and whether the claim holds: for every activation the certified convex
/// optimum is at most the best non-convex run's final objective (relative tolerance 1e-9).
fn report(
    a: &ReproduceArgs,
    sizes: &Sizes,
    outcomes: &[Outcome],
    test: (&Mat<f64>, &[f64]),
) -> Result<(String, bool)> {
    let mut r = String::new();
    let _ = writeln!(
        r,
        "# pwl-1d: 1-D networks as a Lasso over an explicit dictionary\n"
    );
    let _ = writeln!(
        r,
        "n = {} points x uniform on [-2, 2], y = sin(2x) + 0.5 + 0.1·noise, scalar inputs with free \
         neuron biases and output intercept, λ = {LAMBDA}, seed {}. Test error: mean squared error on \
         500 fresh points. Non-convex runs: {} per network, {} steps, as many neurons as the \
         convex optimum (Adam for ReLU, leaky ReLU (a = 0.1) and |z|; the straight-through estimator \
         with the ReLU surrogate for the threshold network; full-batch Adam for the deep narrow ReLU \
         networks, sums of chains of width-one ReLU layers of depth L = 3 and 4 with weight decay \
         (λ/L)Σ|weights|^L, whose convex program is the Lasso over chain features; its optimum is \
         the same at depths 3 and 4, docs/programs.md (M58)).\n",
        sizes.n, a.seed, sizes.runs, sizes.steps
    );
    let _ = writeln!(
        r,
        "| network | columns | convex objective | rel. gap | network objective | neurons | best run objective | runs below optimum | convex test MSE | best run test MSE |"
    );
    let _ = writeln!(r, "|---|---|---|---|---|---|---|---|---|---|");
    let mut holds = true;
    for o in outcomes {
        let c = &o.fit.certificate;
        let opt = c.info.objective;
        let finals: Vec<f64> = o.curves.iter().map(Curve::final_objective).collect();
        let (best_k, best) =
            finals
                .iter()
                .cloned()
                .enumerate()
                .fold(
                    (0, f64::INFINITY),
                    |acc, (k, f)| if f < acc.1 { (k, f) } else { acc },
                );
        let below = finals.iter().filter(|&&f| f < opt * (1.0 - 1e-9)).count();
        holds &= below == 0 && !finals.is_empty();
        let run_test = match o.nets.get(best_k) {
            Some(n) => format!("{:.4e}", network_metric(n, test.0, test.1, Loss::Squared)?),
            None => "–".into(),
        };
        let _ = writeln!(
            r,
            "| {} | {} | {:.10e} | {:.1e} | {:.10e} | {} | {:.10e} | {below} | {:.4e} | {run_test} |",
            o.name,
            c.n_patterns,
            opt,
            c.relative_gap,
            c.network_objective,
            c.active_neurons,
            best,
            o.test_error
        );
    }
    for o in outcomes {
        let _ = writeln!(r, "\n## {}\n", o.name);
        let _ = writeln!(r, "Knots of the optimal fit: {}.\n", knots(&o.fit.network));
        r.push_str(&summary_table(
            &[Level {
                label: "convex: global optimum".into(),
                objective: o.fit.certificate.info.objective,
                seconds: o.fit.certificate.info.seconds,
                metric: None,
            }],
            &o.curves,
            None,
        ));
    }
    let _ = writeln!(
        r,
        "\nClaim (the convex optimum is at most every non-convex run's final objective, for every \
         network): {}.",
        if holds { "holds" } else { "FAILS" }
    );
    let mut files: Vec<String> = outcomes
        .iter()
        .flat_map(|o| {
            ["fits", "objective"].into_iter().flat_map(move |what| {
                ["csv", "svg", "png"].map(|ext| format!("{what}_{}.{ext}", o.name))
            })
        })
        .collect();
    files.push("report.md".into());
    let _ = writeln!(r, "\nFiles: {}.", files.join(", "));
    Ok((r, holds))
}
