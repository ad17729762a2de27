//! The 1-D dictionary Lasso (docs/programs.md (M47)–(M51)): on random small problems it agrees with
//! the interior-point backend, its read-out network with free biases attains the optimum, it reaches
//! the same optimum as the pattern program of the same data with free biases (M51) (a different
//! convex program of the same network), and no gradient-descent run of the non-convex network with
//! free biases ends below it.

use convexnn::faer::Mat;
use convexnn::features::dictionary::Dictionary;
use convexnn::features::enumerate::enumerate_1d_bias;
use convexnn::model::{train, Fit, SolverChoice, TrainOptions};
use convexnn::network::sgd::{train_nonconvex, Optimizer, SgdSettings};
use convexnn::network::ste::{train_ste, SteSettings, Surrogate};
use convexnn::program::{Formulation, Loss};
use convexnn::rng::Rng;
use convexnn::solver::exact::ExactSettings;
use convexnn::solver::exact_l1::{solve_l1_exact, L1Program};
use convexnn::solver::{Silent, Status, StopFlag};

const KINDS: [Formulation; 5] = [
    Formulation::Relu,
    Formulation::LeakyRelu { slope: 0.1 },
    Formulation::LeakyRelu { slope: 0.5 },
    Formulation::Abs,
    Formulation::Threshold,
];

fn data(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let mut r = Rng::new(seed);
    let x = Mat::from_fn(n, 1, |_, _| 2.0 * r.normal());
    let y = (0..n)
        .map(|i| (1.5 * x[(i, 0)]).sin() + 1.0 + 0.2 * r.normal())
        .collect();
    (x, y)
}

fn fit(kind: Formulation, x: &Mat<f64>, y: &[f64], lambda: f64, solver: SolverChoice) -> Fit {
    let opts = TrainOptions {
        formulation: kind,
        lambda,
        dictionary: true,
        solver,
        tol: 1e-6,
        max_iter: 500_000,
        ..TrainOptions::default()
    };
    train(x.as_ref(), y, &opts, &mut Silent, &StopFlag::new()).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

#[test]
fn dictionary_lasso_matches_the_interior_point_backend_and_the_network_attains_it() {
    let mut worst = (0.0f64, 0.0f64);
    for seed in 0..4 {
        let n = 6 + 4 * seed as usize;
        let (x, y) = data(n, seed);
        for lambda in [1e-3, 3e-2] {
            for kind in KINDS {
                let a = fit(kind, &x, &y, lambda, SolverChoice::Fista);
                let b = fit(kind, &x, &y, lambda, SolverChoice::Clarabel);
                let (ca, cb) = (&a.certificate, &b.certificate);
                assert_eq!(
                    ca.info.status,
                    Status::Converged,
                    "{kind:?} n = {n} λ = {lambda}: gap {:e}, {} iterations",
                    ca.relative_gap,
                    ca.info.iterations
                );
                // The raw interior-point optimum of (M47), before any polishing.
                let dict = Dictionary::new(kind, x.as_ref()).unwrap();
                let pen = vec![true; dict.len()];
                let raw = solve_l1_exact(
                    &L1Program {
                        design: dict.matrix.as_ref(),
                        targets: &y,
                        lambda,
                        penalized: &pen,
                        constraints: None,
                        intercept: true,
                    },
                    &ExactSettings::default(),
                )
                .unwrap();
                assert_eq!(raw.status, Status::Converged);
                let agree = rel(ca.info.objective, raw.objective)
                    .max(rel(cb.info.objective, raw.objective));
                let net = rel(ca.network_objective, ca.info.objective);
                assert!(agree <= 1e-6, "{kind:?} n = {n} λ = {lambda}: {agree:e}");
                assert!(net <= 1e-8, "{kind:?} n = {n} λ = {lambda}: {net:e}");
                assert!(rel(cb.network_objective, cb.info.objective) <= 1e-8);
                // Predictions of the network on the training inputs are the Lasso's fit.
                let pred = a.network.predict(x.as_ref()).unwrap();
                let fit_sq: f64 = pred.iter().zip(&y).map(|(p, t)| (p - t).powi(2)).sum();
                let penalty = lambda * a.weights.col_iter().map(|c| c[0].abs()).sum::<f64>();
                let direct = fit_sq / (2.0 * n as f64) + penalty;
                assert!(rel(direct, ca.info.objective) <= 1e-10);
                worst = (worst.0.max(agree), worst.1.max(net));
            }
        }
    }
    eprintln!(
        "worst FISTA–Clarabel relative difference {:.1e}, worst network–Lasso {:.1e}",
        worst.0, worst.1
    );
}

/// The pattern program of 1-D data with free biases (M51) as an ℓ1 program: X = [x, 1], every
/// pattern D_i of X, blocks v_i, w_i ∈ ℝ² with data term Σ_i M_iX(v_i − w_i) + ξ1, penalty λ on the
/// slope coordinate only, cones X̃_iv_i ≥ 0, X̃_iw_i ≥ 0. For threshold networks it is the Lasso
/// (M29) over every arrangement column 1[Xg ≥ 0] with a free intercept.
fn pattern_program_optimum(kind: Formulation, x: &Mat<f64>, y: &[f64], lambda: f64) -> f64 {
    let xs: Vec<f64> = (0..x.nrows()).map(|i| x[(i, 0)]).collect();
    let patterns = enumerate_1d_bias(&xs).unwrap();
    let (n, p) = (xs.len(), patterns.len());
    let settings = ExactSettings::default();
    if kind == Formulation::Threshold {
        let k = Mat::from_fn(n, p, |j, i| f64::from(patterns.get(j, i)));
        let pen = vec![true; p];
        let prog = L1Program {
            design: k.as_ref(),
            targets: y,
            lambda,
            penalized: &pen,
            constraints: None,
            intercept: true,
        };
        return solve_l1_exact(&prog, &settings).unwrap().objective;
    }
    let c = kind.mask_off_value();
    // Columns: block b = 2i (v_i) or 2i + 1 (w_i), coordinates (slope, bias).
    let nv = 4 * p;
    let design = Mat::from_fn(n, nv, |j, col| {
        let (block, coord) = (col / 2, col % 2);
        let (i, sign) = (block / 2, if block % 2 == 0 { 1.0 } else { -1.0 });
        let m = if patterns.get(j, i) { 1.0 } else { c };
        let xv = if coord == 0 { xs[j] } else { 1.0 };
        sign * m * xv
    });
    let cones = Mat::from_fn(2 * p * n, nv, |row, col| {
        let (block, j) = (row / n, row % n);
        if col / 2 != block {
            return 0.0;
        }
        let s = if patterns.get(j, block / 2) {
            1.0
        } else {
            -1.0
        };
        s * if col % 2 == 0 { xs[j] } else { 1.0 }
    });
    let pen: Vec<bool> = (0..nv).map(|col| col % 2 == 0).collect();
    let prog = L1Program {
        design: design.as_ref(),
        targets: y,
        lambda,
        penalized: &pen,
        constraints: Some(cones.as_ref()),
        intercept: true,
    };
    let sol = solve_l1_exact(&prog, &settings).unwrap();
    assert!(sol.violation <= 1e-8, "cone violation {}", sol.violation);
    sol.objective
}

#[test]
fn dictionary_lasso_and_pattern_program_with_free_biases_reach_the_same_optimum() {
    for (seed, n) in [(11, 7), (12, 12)] {
        let (x, y) = data(n, seed);
        let lambda = 1e-2;
        for kind in KINDS {
            let dict = fit(kind, &x, &y, lambda, SolverChoice::Fista);
            let general = pattern_program_optimum(kind, &x, &y, lambda);
            let d = dict.certificate.info.objective;
            eprintln!("{kind:?} n = {n}: dictionary {d:.12} pattern program {general:.12}");
            assert!(rel(d, general) <= 1e-6, "{kind:?}: {d} vs {general}");
        }
        // The core ReLU program on [x, 1] penalizes the bias inside ‖(w, b)‖ and has no intercept:
        // a larger penalty on the same networks, so its optimum is at least the dictionary's.
        let xb = Mat::from_fn(n, 2, |i, k| if k == 0 { x[(i, 0)] } else { 1.0 });
        let core = TrainOptions {
            formulation: Formulation::Relu,
            lambda,
            patterns: convexnn::model::PatternSource::Exact,
            solver: SolverChoice::Clarabel,
            tol: 1e-9,
            ..TrainOptions::default()
        };
        let penalized = train(xb.as_ref(), &y, &core, &mut Silent, &StopFlag::new()).unwrap();
        let relu = fit(Formulation::Relu, &x, &y, lambda, SolverChoice::Fista);
        assert!(
            penalized.certificate.info.objective > relu.certificate.info.objective * (1.0 + 1e-6)
        );
    }
}

#[test]
fn no_gradient_run_of_the_free_bias_network_ends_below_the_dictionary_optimum() {
    let (x, y) = data(10, 21);
    let lambda = 1e-2;
    for kind in KINDS {
        let opt = fit(kind, &x, &y, lambda, SolverChoice::Fista);
        let best = opt.certificate.info.objective;
        let width = opt.network.width().max(1) + 2;
        let mut lowest = f64::INFINITY;
        for seed in 0..4 {
            let last = if kind == Formulation::Threshold {
                let s = SteSettings {
                    width,
                    surrogate: Surrogate::Relu,
                    learning_rate: 0.05,
                    steps: 3000,
                    seed,
                    free_biases: true,
                    ..SteSettings::default()
                };
                let (_, log) =
                    train_ste(x.as_ref(), &y, Loss::Squared, lambda, &s, &StopFlag::new()).unwrap();
                log.last().unwrap().objective
            } else {
                let s = SgdSettings {
                    model: kind,
                    width,
                    optimizer: Optimizer::Adam,
                    learning_rate: 0.02,
                    epochs: 3000,
                    seed,
                    log_every: 100,
                    free_biases: true,
                    ..SgdSettings::default()
                };
                let (_, log) =
                    train_nonconvex(x.as_ref(), &y, Loss::Squared, lambda, &s, &StopFlag::new())
                        .unwrap();
                log.last().unwrap().objective
            };
            lowest = lowest.min(last);
        }
        eprintln!("{kind:?}: optimum {best:.8}, best gradient run {lowest:.8}");
        assert!(lowest >= best * (1.0 - 1e-9), "{kind:?}: {lowest} < {best}");
    }
}
