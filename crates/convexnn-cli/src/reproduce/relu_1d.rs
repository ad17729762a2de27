//! `relu-1d`: 1-D data with a bias and every activation pattern enumerated (Pilanci & Ergen 2020):
//! the optimal network's piecewise-linear fit and its knots against gradient-trained networks of the
//! same width, and the objectives on one axis.

use std::fmt::Write as _;

use convexnn::faer::Mat;
use convexnn::model::{train, PatternSource, TrainOptions};
use convexnn::network::sgd::{train_nonconvex_observed, Optimizer, SgdSettings};
use convexnn::program::{Formulation, Loss};
use convexnn::rng::Rng;
use convexnn::Result;

use super::{write_fits_1d, Fits1d, RunFit};
use super::{write_text, ReproduceArgs};
use crate::demo::knots;
use crate::progress::Progress;
use crate::train::stop_flag;

/// Runs the experiment.
pub fn run(a: &ReproduceArgs) -> Result<i32> {
    let (n, runs, epochs) = if a.quick {
        (16, 3, 3000)
    } else {
        (40, 10, 20_000)
    };
    let lambda = 1e-3;
    let mut rng = Rng::new(a.seed);
    let xs: Vec<f64> = (0..n)
        .map(|i| -2.0 + 4.0 * i as f64 / (n - 1) as f64)
        .collect();
    let y: Vec<f64> = xs
        .iter()
        .map(|&t| (2.0 * t).sin() + 0.1 * rng.normal())
        .collect();
    let x = Mat::from_fn(n, 2, |i, k| if k == 0 { xs[i] } else { 1.0 });
    let stop = stop_flag();
    let opts = TrainOptions {
        formulation: Formulation::Relu,
        lambda,
        patterns: PatternSource::Exact,
        tol: 1e-9,
        ..TrainOptions::default()
    };
    let mut progress = Progress::new("convex program", a.quiet);
    let fit = train(x.as_ref(), &y, &opts, &mut progress, &stop);
    progress.finish();
    let fit = fit?;
    let c = &fit.certificate;
    let width = c.active_neurons.max(1);
    let mut nets = Vec::new();
    for k in 0..runs {
        let settings = SgdSettings {
            width,
            optimizer: Optimizer::Adam,
            learning_rate: 1e-2,
            epochs,
            seed: a.seed + 1 + k as u64,
            log_every: (epochs / 200).max(1),
            ..SgdSettings::default()
        };
        let progress = Progress::new(&format!("Adam run {k}"), a.quiet);
        let (net, log) = train_nonconvex_observed(
            x.as_ref(),
            &y,
            Loss::Squared,
            lambda,
            &settings,
            &stop,
            &mut |r, _| {
                progress.message(format!("step {:>7}  objective {:.6e}", r.step, r.objective));
                Ok(())
            },
        )?;
        progress.finish();
        nets.push((net, log));
    }
    // Fits on a fine grid.
    let grid: Vec<f64> = (0..=400).map(|i| -2.2 + 4.4 * i as f64 / 400.0).collect();
    let gx = Mat::from_fn(grid.len(), 2, |i, k| if k == 0 { grid[i] } else { 1.0 });
    let optimal = fit.network.predict(gx.as_ref())?;
    let fits: Vec<Vec<f64>> = nets
        .iter()
        .map(|(net, _)| net.predict(gx.as_ref()))
        .collect::<Result<_>>()?;
    let run_fits = fits
        .into_iter()
        .enumerate()
        .map(|(k, values)| RunFit {
            column: format!("adam_{k}"),
            label: format!("Adam run {k}"),
            values,
        })
        .collect();
    let figure = Fits1d {
        data: xs.iter().cloned().zip(y.iter().cloned()).collect(),
        grid: &grid,
        optimal: &optimal,
        runs: run_fits,
        knots: None,
        title: format!("1-D ReLU regression, {width} neurons, lambda = {lambda}"),
    };
    write_fits_1d(&a.out, "fits", &figure)?;
    let knots = knots(&fit.network);
    let finals: Vec<f64> = nets
        .iter()
        .filter_map(|(_, l)| l.last().map(|r| r.objective))
        .collect();
    let best = finals.iter().cloned().fold(f64::INFINITY, f64::min);
    let below = finals
        .iter()
        .filter(|&&f| f < c.info.objective * (1.0 - 1e-9))
        .count();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# relu-1d: 1-D regression with every activation pattern\n"
    );
    let _ = writeln!(
        report,
        "n = {n} points y = sin(2x) + 0.1·noise on [-2, 2], inputs [x, 1], λ = {lambda}, seed {}.\n",
        a.seed
    );
    let _ = writeln!(
        report,
        "- Convex program over all {} patterns (exhaustive: {}): objective {:.10e}, gap {:.2e}, status {}, {} neurons, {:.3} s.",
        c.n_patterns, c.exhaustive, c.info.objective, c.info.gap, c.info.status, width, c.info.seconds
    );
    let _ = writeln!(report, "- Knots of the optimal fit: {knots}.");
    let _ = writeln!(
        report,
        "- {runs} Adam runs of the same width, {epochs} epochs each: best final objective {best:.10e} ({:+.2e} from the optimum); runs below the certified optimum: {below}.",
        best - c.info.objective
    );
    let _ = writeln!(report, "\nFiles: fits.csv, fits.svg, fits.png, report.md.");
    write_text(a.out.join("report.md"), &report)?;
    println!("{report}");
    Ok(if below > 0 { 1 } else { 0 })
}
