//! On data small enough to enumerate every activation pattern, the convex optimum is the global
//! optimum of the non-convex ReLU training problem (Pilanci & Ergen 2020, Theorem 1):
//! the network read out of the convex solution attains it, and gradient descent on the non-convex
//! objective from random starts never ends below it. The same is checked for the leaky ReLU and
//! absolute-value programs (docs/programs.md (M40)), whose form is derived rather than quoted.

use convexnn::faer::{Mat, MatRef};
use convexnn::model::{train, Fit, PatternSource, SolverChoice, TrainOptions};
use convexnn::network::sgd::{train_nonconvex, Optimizer, SgdSettings};
use convexnn::program::{Formulation, Loss};
use convexnn::rng::Rng;
use convexnn::solver::{Silent, StopFlag};

fn data_1d(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let mut r = Rng::new(seed);
    let xs: Vec<f64> = (0..n).map(|_| 2.0 * r.normal()).collect();
    let x = Mat::from_fn(n, 2, |i, k| if k == 0 { xs[i] } else { 1.0 });
    let y = xs
        .iter()
        .map(|t| (1.5 * t).sin() + 0.1 * r.normal())
        .collect();
    (x, y)
}

fn data_2d(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let mut r = Rng::new(seed);
    let x = Mat::from_fn(n, 3, |_, k| if k == 2 { 1.0 } else { r.normal() });
    let y = (0..n)
        .map(|i| (x[(i, 0)] * x[(i, 1)]).tanh() + 0.1 * r.normal())
        .collect();
    (x, y)
}

fn solve(
    formulation: Formulation,
    x: &Mat<f64>,
    y: &[f64],
    lambda: f64,
    solver: SolverChoice,
) -> Fit {
    let opts = TrainOptions {
        formulation,
        loss: Loss::Squared,
        lambda,
        patterns: PatternSource::Exact,
        solver,
        tol: 1e-9,
        max_iter: 200_000,
        ..TrainOptions::default()
    };
    train(x.as_ref(), y, &opts, &mut Silent, &StopFlag::new()).unwrap()
}

/// Plain full-batch gradient descent on (M5) (with the activation of `model`) with m neurons from a
/// seeded random start; returns the final non-convex objective.
fn gradient_descent(
    model: Formulation,
    x: MatRef<'_, f64>,
    y: &[f64],
    lambda: f64,
    m: usize,
    seed: u64,
) -> f64 {
    let settings = SgdSettings {
        model,
        width: m,
        optimizer: Optimizer::Sgd { momentum: 0.0 },
        learning_rate: 0.01,
        epochs: 20_000,
        seed,
        log_every: 1000,
        ..SgdSettings::default()
    };
    let (_, log) = train_nonconvex(x, y, Loss::Squared, lambda, &settings, &StopFlag::new())
        .expect("gradient descent runs");
    log.last().unwrap().objective
}

fn check(x: Mat<f64>, y: Vec<f64>, lambda: f64) {
    check_model(Formulation::Relu, &x, &y, lambda);
}

/// The checks of the module documentation for one network kind; returns the certified optimum and
/// the lowest objective that gradient descent reached.
fn check_model(formulation: Formulation, x: &Mat<f64>, y: &[f64], lambda: f64) -> (f64, f64) {
    let exact = solve(formulation, x, y, lambda, SolverChoice::Clarabel);
    let c = &exact.certificate;
    assert!(c.exhaustive);
    let p_star = c.info.objective;
    // The reconstructed network attains the convex optimum.
    let net_obj = exact
        .network
        .objective(x.as_ref(), y, Loss::Squared, lambda)
        .unwrap();
    assert!(
        (net_obj - p_star).abs() <= 1e-8 * p_star,
        "{formulation:?}: network {net_obj} vs convex {p_star}"
    );
    // The augmented Lagrangian approaches it (complete arrangements are badly conditioned for a
    // first-order method: its certificate bounds the distance), and its network attains its own
    // objective exactly.
    let al = solve(formulation, x, y, lambda, SolverChoice::Al);
    let a = al.certificate.info.objective;
    assert!(a >= p_star * (1.0 - 1e-9) && a - p_star <= al.certificate.info.gap + 1e-9 * p_star);
    assert!(
        (a - p_star).abs() <= 1e-3 * p_star,
        "{formulation:?}: AL {a} vs interior point {p_star}"
    );
    assert!((al.certificate.network_objective - a).abs() <= 1e-10 * a);
    // Pruning-free width bound: some optimal solution has at most n + 1 neurons; use the solution's.
    let m = c.active_neurons.max(2);
    let mut best = f64::INFINITY;
    for seed in 0..20 {
        let g = gradient_descent(formulation, x.as_ref(), y, lambda, m, 100 + seed);
        assert!(
            g >= p_star * (1.0 - 1e-9),
            "{formulation:?}: gradient descent from start {seed} ended at {g}, below the certified \
             optimum {p_star}"
        );
        best = best.min(g);
    }
    (p_star, best)
}

#[test]
fn one_dimensional_data_with_bias() {
    let (x, y) = data_1d(12, 1);
    check(x, y, 1e-2);
}

#[test]
fn two_dimensional_data_with_bias() {
    let (x, y) = data_2d(9, 2);
    check(x, y, 1e-2);
}

/// Leaky ReLU (slopes 0.1 and 0.5) and absolute-value networks on 1-D and 2-D data with a bias:
/// the inferred programs (M40) are exact. Gradient descent never ends below the certified optimum,
/// and its best run comes close to it (the optimum is attained, not just a lower bound).
#[test]
fn piecewise_linear_activations_are_globally_optimal() {
    let models = [
        Formulation::LeakyRelu { slope: 0.1 },
        Formulation::LeakyRelu { slope: 0.5 },
        Formulation::Abs,
    ];
    for (dim, (x, y)) in [(1, data_1d(12, 1)), (2, data_2d(9, 2))] {
        for formulation in models {
            let (p_star, best) = check_model(formulation, &x, &y, 1e-2);
            eprintln!(
                "{dim}-D {formulation:?}: optimum {p_star:.10e}, best of 20 gradient-descent runs \
                 {best:.10e} ({:.2e} above)",
                best / p_star - 1.0
            );
            assert!(best <= 1.05 * p_star, "{formulation:?}: {best} vs {p_star}");
        }
    }
}

/// Threshold networks (Ergen et al. 2023, Theorem 2.2): on 1-D data with a bias every arrangement
/// pattern is enumerated, the Lasso optimum is the global optimum of (M28), and no straight-through
/// estimator run, with any surrogate, ends below it.
#[test]
fn threshold_lasso_is_below_every_ste_run() {
    use convexnn::network::ste::{train_ste, SteSettings, Surrogate};
    let (x, y) = data_1d(12, 5);
    let lambda = 1e-2;
    let opts = TrainOptions {
        formulation: Formulation::Threshold,
        patterns: PatternSource::Exact,
        lambda,
        solver: SolverChoice::Clarabel,
        ..TrainOptions::default()
    };
    let fit = train(x.as_ref(), &y, &opts, &mut Silent, &StopFlag::new()).unwrap();
    let p_star = fit.certificate.info.objective;
    assert!(fit.certificate.exhaustive);
    assert!((fit.certificate.network_objective - p_star).abs() <= 1e-8 * p_star);
    let mut closest = f64::INFINITY;
    for surrogate in [
        Surrogate::Identity,
        Surrogate::Relu,
        Surrogate::LeakyRelu,
        Surrogate::ClippedRelu,
    ] {
        for seed in 0..3 {
            let s = SteSettings {
                surrogate,
                width: 30,
                steps: 5000,
                seed,
                learning_rate: 0.1,
                ..SteSettings::default()
            };
            let (_, log) =
                train_ste(x.as_ref(), &y, Loss::Squared, lambda, &s, &StopFlag::new()).unwrap();
            let f = log.last().unwrap().objective;
            assert!(
                f >= p_star * (1.0 - 1e-9),
                "{surrogate:?} seed {seed}: {f} below {p_star}"
            );
            closest = closest.min(f);
        }
    }
    // The runs make real progress, so the comparison is not vacuous.
    assert!(
        closest < 3.0 * p_star,
        "closest STE run {closest} vs optimum {p_star}"
    );
}
