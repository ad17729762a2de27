//! On data small enough to enumerate every activation pattern, the convex optimum is the global
//! optimum of the non-convex ReLU training problem (Pilanci & Ergen 2020, Theorem 1):
//! the network read out of the convex solution attains it, and gradient descent on the non-convex
//! objective from random starts never ends below it.

use convexnn::faer::{Mat, MatRef};
use convexnn::model::{train, Fit, PatternSource, SolverChoice, TrainOptions};
use convexnn::network::Network;
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

fn solve(x: &Mat<f64>, y: &[f64], lambda: f64, solver: SolverChoice) -> Fit {
    let opts = TrainOptions {
        formulation: Formulation::Relu,
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

/// Plain gradient descent on (M5) with m neurons from a seeded random start; returns the final
/// non-convex objective.
fn gradient_descent(x: MatRef<'_, f64>, y: &[f64], lambda: f64, m: usize, seed: u64) -> f64 {
    let (n, d) = (x.nrows(), x.ncols());
    let mut r = Rng::new(seed);
    let mut u: Vec<Vec<f64>> = (0..m)
        .map(|_| (0..d).map(|_| 0.5 * r.normal()).collect())
        .collect();
    let mut a: Vec<f64> = (0..m).map(|_| 0.5 * r.normal()).collect();
    let objective = |u: &Vec<Vec<f64>>, a: &Vec<f64>| {
        let net = Network {
            kind: Formulation::Relu,
            hidden: u.clone(),
            output: a.clone(),
            gates: None,
            amplitude: None,
        };
        net.objective(x, y, Loss::Squared, lambda).unwrap()
    };
    let step = 0.005;
    for _ in 0..20_000 {
        let pre: Vec<Vec<f64>> = (0..m)
            .map(|j| {
                (0..n)
                    .map(|i| (0..d).map(|k| x[(i, k)] * u[j][k]).sum())
                    .collect()
            })
            .collect();
        let resid: Vec<f64> = (0..n)
            .map(|i| (0..m).map(|j| pre[j][i].max(0.0) * a[j]).sum::<f64>() - y[i])
            .collect();
        for j in 0..m {
            let ga = (0..n).map(|i| pre[j][i].max(0.0) * resid[i]).sum::<f64>() / n as f64
                + lambda * a[j];
            let gu: Vec<f64> = (0..d)
                .map(|k| {
                    (0..n)
                        .filter(|&i| pre[j][i] > 0.0)
                        .map(|i| x[(i, k)] * resid[i])
                        .sum::<f64>()
                        * a[j]
                        / n as f64
                        + lambda * u[j][k]
                })
                .collect();
            a[j] -= step * ga;
            for k in 0..d {
                u[j][k] -= step * gu[k];
            }
        }
    }
    let f = objective(&u, &a);
    assert!(
        f.is_finite(),
        "gradient descent diverged from start {seed}: lower the step"
    );
    f
}

fn check(x: Mat<f64>, y: Vec<f64>, lambda: f64) {
    let exact = solve(&x, &y, lambda, SolverChoice::Clarabel);
    let c = &exact.certificate;
    assert!(c.exhaustive);
    let p_star = c.info.objective;
    // The reconstructed network attains the convex optimum.
    let net_obj = exact
        .network
        .objective(x.as_ref(), &y, Loss::Squared, lambda)
        .unwrap();
    assert!(
        (net_obj - p_star).abs() <= 1e-8 * p_star,
        "network {net_obj} vs convex {p_star}"
    );
    // The augmented Lagrangian approaches it (complete arrangements are badly conditioned for a
    // first-order method: its certificate bounds the distance), and its network attains its own
    // objective exactly.
    let al = solve(&x, &y, lambda, SolverChoice::Al);
    let a = al.certificate.info.objective;
    assert!(a >= p_star * (1.0 - 1e-9) && a - p_star <= al.certificate.info.gap + 1e-9 * p_star);
    assert!(
        (a - p_star).abs() <= 1e-3 * p_star,
        "AL {a} vs interior point {p_star}"
    );
    assert!((al.certificate.network_objective - a).abs() <= 1e-10 * a);
    // Pruning-free width bound: some optimal solution has at most n + 1 neurons; use the solution's.
    let m = c.active_neurons.max(2);
    for seed in 0..20 {
        let g = gradient_descent(x.as_ref(), &y, lambda, m, 100 + seed);
        assert!(
            g >= p_star * (1.0 - 1e-9),
            "gradient descent from start {seed} ended at {g}, below the certified optimum {p_star}"
        );
    }
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
