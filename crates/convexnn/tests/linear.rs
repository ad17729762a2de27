//! Linear networks (docs/programs.md §3f): the fully connected program, the linear CNN (M35) and
//! the circular CNN (M36) against the interior-point backend, against each other, and against the
//! read-out network's non-convex objective.

use convexnn::faer::Mat;
use convexnn::features::patches::Convolution;
use convexnn::model::file::{ModelFile, Preprocessing};
use convexnn::model::{lambda_max, train, Fit, PatternSource, SolverChoice, TrainOptions};
use convexnn::program::linear::{LinearFeatures, LinearProblem};
use convexnn::program::{Formulation, Loss};
use convexnn::rng::Rng;
use convexnn::solver::fista::{fista, FistaRun, FistaSettings, Smooth};
use convexnn::solver::{Silent, Status, StopFlag};

fn data(n: usize, d: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let mut r = Rng::new(seed);
    let x = Mat::from_fn(n, d, |_, _| r.normal());
    let y = (0..n)
        .map(|j| x[(j, 0)] - 0.5 * x[(j, d - 1)] + 0.3 * r.normal())
        .collect();
    (x, y)
}

fn options(conv: Option<Convolution>, solver: SolverChoice, lambda: f64) -> TrainOptions {
    TrainOptions {
        formulation: Formulation::Linear,
        convolution: conv,
        solver,
        lambda,
        tol: 1e-10,
        max_iter: 200_000,
        ..TrainOptions::default()
    }
}

fn fit(x: &Mat<f64>, y: &[f64], opts: &TrainOptions) -> Fit {
    train(x.as_ref(), y, opts, &mut Silent, &StopFlag::new()).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// The geometries tested: fully connected, the circular CNN (Fourier form) on 1-D signals and on
/// 2-D images, and (with the semidefinite backend) the linear CNN of a 2 × 2 filter.
fn geometries() -> Vec<(usize, Option<Convolution>)> {
    let mut g = vec![
        (6, None),
        (8, Some(Convolution::circular_full(1, 8))),
        (12, Some(Convolution::circular_full(3, 4))),
    ];
    if cfg!(feature = "nuclear") {
        g.push((16, Some(Convolution::square(4, 2, 2))));
    }
    g
}

#[test]
fn fista_agrees_with_the_interior_point_and_the_network_attains_the_optimum() {
    for (case, (d, conv)) in geometries().into_iter().enumerate() {
        for seed in 0..3 {
            let (x, y) = data(30, d, 10 * case as u64 + seed);
            let lmax =
                lambda_max(x.as_ref(), &y, &options(conv, SolverChoice::Fista, 1.0)).unwrap();
            let lambda = 0.2 * lmax;
            let f = fit(&x, &y, &options(conv, SolverChoice::Fista, lambda));
            let e = fit(&x, &y, &options(conv, SolverChoice::Clarabel, lambda));
            let (cf, ce) = (&f.certificate, &e.certificate);
            assert_eq!(cf.info.status, Status::Converged, "case {case} seed {seed}");
            assert_eq!(ce.info.status, Status::Converged, "case {case} seed {seed}");
            assert!(
                rel(cf.info.objective, ce.info.objective) < 1e-6,
                "case {case} seed {seed}: fista {} clarabel {}",
                cf.info.objective,
                ce.info.objective
            );
            // The network read out of the convex solution attains the convex optimum.
            assert!(
                rel(cf.network_objective, cf.info.objective) < 1e-8,
                "case {case}: network {} convex {}",
                cf.network_objective,
                cf.info.objective
            );
            assert!(rel(ce.network_objective, ce.info.objective) < 1e-6);
            assert!(cf.relative_gap <= 1e-9);
            // Below λ_max the fit is not the zero network; above it, it is.
            assert!(cf.active_neurons >= 1);
            let zero = fit(&x, &y, &options(conv, SolverChoice::Fista, 1.01 * lmax));
            assert_eq!(zero.certificate.active_neurons, 0);
        }
    }
}

#[test]
fn the_circular_cnn_fourier_program_equals_its_nuclear_norm_program() {
    // (M36) and (M35) over the cyclic shifts are two programs for the same network: their optima
    // agree (docs/programs.md §3f; the identity ‖Fw‖₁/√N = min ‖Z‖_* is what is checked).
    for (h, w) in [(1, 6), (2, 3)] {
        let conv = Convolution::circular_full(h, w);
        let (x, y) = data(25, h * w, 7);
        let solve = |feats: LinearFeatures| {
            let (rows, groups) = (feats.rows, feats.groups);
            let mut prob = LinearProblem::new(feats, &y, Loss::Squared);
            let settings = FistaSettings {
                tol: 1e-10,
                max_iter: 200_000,
                ..FistaSettings::default()
            };
            let run = FistaRun {
                settings: &settings,
                observer: &mut Silent,
                stop: &StopFlag::new(),
                start: std::time::Instant::now(),
                step: None,
                outer: 0,
            };
            let out = fista(&mut prob, 0.05, Mat::zeros(rows, groups), run);
            prob.certify(out.u.as_ref(), 0.05)
        };
        let (fourier, fd) = solve(LinearFeatures::fourier(x.as_ref(), &conv).unwrap());
        let (nuclear, nd) = solve(LinearFeatures::positions(x.as_ref(), &conv).unwrap());
        assert!(fourier - fd < 1e-9 * fourier && nuclear - nd < 1e-9 * nuclear);
        assert!(
            rel(fourier, nuclear) < 1e-7,
            "{h}x{w}: Fourier {fourier} nuclear {nuclear}"
        );
    }
}

#[test]
fn the_linear_cnn_network_predicts_like_its_convex_weights_and_round_trips() {
    let conv = Convolution::circular_full(1, 8);
    let (x, y) = data(40, 8, 3);
    let opts = options(Some(conv), SolverChoice::Fista, 0.02);
    let f = fit(&x, &y, &opts);
    // The network computes Σ_k x_kᵀ z_k: on new data, predictions equal the patch products with Z.
    let (xt, _) = data(9, 8, 4);
    let patches = conv.patches(xt.as_ref()).unwrap();
    let k = conv.patch_count();
    let expect: Vec<f64> = (0..9)
        .map(|j| {
            (0..k)
                .map(|p| {
                    (0..8)
                        .map(|t| patches[(j * k + p, t)] * f.weights[(t, p)])
                        .sum::<f64>()
                })
                .sum()
        })
        .collect();
    let got = f.network.predict(xt.as_ref()).unwrap();
    for (a, b) in got.iter().zip(&expect) {
        assert!((a - b).abs() < 1e-9 * (1.0 + b.abs()), "{a} vs {b}");
    }
    let prep = Preprocessing {
        feature_names: (0..8).map(|c| format!("x{c}")).collect(),
        ..Preprocessing::default()
    };
    let model = ModelFile::from_fit(&f, &opts, "none", prep, None, &y);
    let dir = std::env::temp_dir().join(format!("convexnn-linear-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.json");
    model.save(&path).unwrap();
    let back = ModelFile::load(&path).unwrap();
    assert_eq!(back.network.kind, Formulation::Linear);
    assert_eq!(back.network.conv, Some(conv));
    let again = back.predict(&xt).unwrap();
    for (a, b) in again.iter().zip(&got) {
        assert!((a - b).abs() < 1e-12 * (1.0 + b.abs()));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn logistic_linear_cnn_certifies_its_gap() {
    let conv = Convolution::square(4, 2, 2);
    let (x, y) = data(50, 16, 8);
    let labels: Vec<f64> = y
        .iter()
        .map(|v| if *v >= 0.0 { 1.0 } else { 0.0 })
        .collect();
    let opts = TrainOptions {
        loss: Loss::Logistic,
        tol: 1e-8,
        ..options(Some(conv), SolverChoice::Auto, 0.01)
    };
    let f = fit(&x, &labels, &opts);
    let c = &f.certificate;
    assert_eq!(c.info.status, Status::Converged);
    assert!(c.relative_gap <= 1e-8);
    assert!(rel(c.network_objective, c.info.objective) < 1e-7);
}

#[test]
fn bad_linear_settings_are_refused_with_reasons() {
    let (x, y) = data(10, 4, 1);
    let stop = StopFlag::new();
    let cases: Vec<(TrainOptions, &str)> = vec![
        (
            TrainOptions {
                patterns: PatternSource::Sample { count: 5 },
                ..options(None, SolverChoice::Auto, 0.1)
            },
            "no activation patterns",
        ),
        (
            TrainOptions {
                loss: Loss::Hinge,
                ..options(None, SolverChoice::Auto, 0.1)
            },
            "squared or logistic",
        ),
        (options(None, SolverChoice::Admm, 0.1), "fista or clarabel"),
        (
            TrainOptions {
                loss: Loss::Logistic,
                ..options(None, SolverChoice::Clarabel, 0.1)
            },
            "squared loss",
        ),
    ];
    for (opts, needle) in cases {
        let labels: Vec<f64> = y.iter().map(|v| f64::from(*v >= 0.0)).collect();
        let target = if opts.loss == Loss::Squared {
            &y
        } else {
            &labels
        };
        let e = train(x.as_ref(), target, &opts, &mut Silent, &stop)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains(needle), "{e:?} should mention {needle:?}");
    }
}
