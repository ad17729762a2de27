//! Convolutional networks with global average pooling (docs/programs.md (M35a)–(M35c)): the pooled
//! gated and ReLU programs solved by the iterative solvers agree with the interior-point backend,
//! the network read out of the solution attains the convex optimum as its non-convex objective, and
//! on signals small enough to enumerate every pattern of the patch matrix no gradient-descent run of
//! the non-convex convolutional network ends below the convex optimum.

use convexnn::faer::Mat;
use convexnn::features::patches::Convolution;
use convexnn::model::{train, Fit, PatternSource, SolverChoice, TrainOptions};
use convexnn::network::sgd::{train_nonconvex, Optimizer, SgdSettings};
use convexnn::program::{Formulation, Loss};
use convexnn::rng::Rng;
use convexnn::solver::{Silent, StopFlag};

/// `n` random 4 × 4 images and targets of a planted convolutional ReLU network (signs for the
/// logistic loss).
fn images(n: usize, seed: u64, loss: Loss) -> (Mat<f64>, Vec<f64>) {
    let mut r = Rng::new(seed);
    let x = Mat::from_fn(n, 16, |_, _| r.normal());
    let conv = Convolution::square(4, 2, 2);
    let p = conv.patches(x.as_ref()).unwrap();
    let filters: Vec<Vec<f64>> = (0..2)
        .map(|_| (0..5).map(|_| r.normal()).collect())
        .collect();
    let y = (0..n)
        .map(|j| {
            let f: f64 = (0..4)
                .flat_map(|k| filters.iter().map(move |u| (j * 4 + k, u)))
                .map(|(row, u)| (0..5).map(|c| p[(row, c)] * u[c]).sum::<f64>().max(0.0))
                .sum::<f64>()
                / 4.0;
            let t = f - 0.5 + 0.3 * r.normal();
            match loss {
                Loss::Squared => t,
                _ => t.signum(),
            }
        })
        .collect();
    (x, y)
}

fn fit(x: &Mat<f64>, y: &[f64], opts: &TrainOptions) -> Fit {
    train(x.as_ref(), y, opts, &mut Silent, &StopFlag::new()).expect("the CNN trains")
}

fn options(formulation: Formulation, loss: Loss, solver: SolverChoice, seed: u64) -> TrainOptions {
    TrainOptions {
        formulation,
        loss,
        lambda: 0.02,
        patterns: PatternSource::Sample { count: 6 },
        seed,
        solver,
        tol: 1e-9,
        max_iter: 400_000,
        convolution: Some(Convolution::square(4, 2, 2)),
        ..TrainOptions::default()
    }
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / a.abs().max(b.abs()).max(1e-300)
}

/// Every pooled program agrees with the interior-point backend to 1e-6 relative, and each network
/// read out of a solution has the non-convex objective (M35c) equal to the convex one to 1e-8.
#[test]
fn pooled_programs_match_the_interior_point_backend() {
    let cases = [
        (Formulation::Gated, SolverChoice::Fista),
        (Formulation::Relu, SolverChoice::Al),
        (Formulation::LeakyRelu { slope: 0.2 }, SolverChoice::Al),
        (Formulation::Relu, SolverChoice::Interior),
    ];
    for seed in 0..3 {
        for loss in [Loss::Squared, Loss::Logistic] {
            let (x, y) = images(12, seed, loss);
            for (formulation, solver) in cases {
                if solver == SolverChoice::Interior && loss != Loss::Squared {
                    continue;
                }
                let exact = fit(
                    &x,
                    &y,
                    &options(formulation, loss, SolverChoice::Clarabel, seed),
                );
                let iterative = fit(&x, &y, &options(formulation, loss, solver, seed));
                let (a, b) = (
                    exact.certificate.info.objective,
                    iterative.certificate.info.objective,
                );
                let what = format!("seed {seed}, {loss:?}, {formulation:?}");
                let gap = exact.certificate.relative_gap;
                assert!(gap <= 1e-8, "{what}: interior-point relative gap {gap:e}");
                assert!(rel(a, b) <= 1e-6, "{what}: clarabel {a} vs {solver:?} {b}");
                for f in [&exact, &iterative] {
                    let c = &f.certificate;
                    assert!(f.network.conv.is_some() && c.active_neurons > 0, "{what}");
                    assert!(
                        rel(c.network_objective, c.info.objective) <= 1e-8,
                        "{what}: network {} vs convex {}",
                        c.network_objective,
                        c.info.objective
                    );
                }
            }
        }
    }
}

/// Pooling changes the program: the same patches without pooling (each patch its own sample with
/// its image's target) give another optimum, and the pooled one predicts through the patches.
#[test]
fn pooling_is_part_of_the_program() {
    let (x, y) = images(10, 4, Loss::Squared);
    let pooled = fit(
        &x,
        &y,
        &options(Formulation::Relu, Loss::Squared, SolverChoice::Clarabel, 1),
    );
    let yhat = pooled.network.predict(x.as_ref()).unwrap();
    assert_eq!(yhat.len(), 10);
    let conv = Convolution::square(4, 2, 2);
    let p = conv.patches(x.as_ref()).unwrap();
    let y_rows: Vec<f64> = (0..40).map(|r| y[r / 4]).collect();
    let flat = train(
        p.as_ref(),
        &y_rows,
        &TrainOptions {
            convolution: None,
            ..options(Formulation::Relu, Loss::Squared, SolverChoice::Clarabel, 1)
        },
        &mut Silent,
        &StopFlag::new(),
    )
    .unwrap();
    let (a, b) = (
        pooled.certificate.info.objective,
        flat.certificate.info.objective,
    );
    assert!(rel(a, b) > 1e-3, "pooled {a} vs unpooled {b}");
}

/// 1-D signals with a width-2 filter and a bias: patches are 2-D points with a bias, so every
/// pattern of the patch matrix is enumerated and the convex program is the global optimum of the
/// convolutional ReLU network (M35a); no gradient-descent run of it ends below.
#[test]
fn exhaustive_convex_cnn_is_below_every_gradient_descent_run() {
    let conv = Convolution {
        height: 1,
        width: 4,
        filter_height: 1,
        filter_width: 2,
        stride: 1,
        bias: true,
        circular: false,
        separable: false,
    };
    let mut r = Rng::new(11);
    let x = Mat::from_fn(6, 4, |_, _| r.normal());
    let y: Vec<f64> = (0..6)
        .map(|j| (x[(j, 0)] - x[(j, 3)]).tanh() + 0.1 * r.normal())
        .collect();
    let lambda = 0.01;
    let opts = TrainOptions {
        formulation: Formulation::Relu,
        lambda,
        patterns: PatternSource::Exact,
        solver: SolverChoice::Clarabel,
        tol: 1e-9,
        convolution: Some(conv),
        ..TrainOptions::default()
    };
    let exact = fit(&x, &y, &opts);
    let c = &exact.certificate;
    assert!(c.exhaustive, "the pattern set is the complete arrangement");
    assert!(rel(c.network_objective, c.info.objective) <= 1e-8);
    let m = c.active_neurons.max(1);
    let mut best = f64::INFINITY;
    for seed in 0..8 {
        let settings = SgdSettings {
            width: m,
            optimizer: Optimizer::Sgd { momentum: 0.0 },
            learning_rate: 0.02,
            epochs: 10_000,
            seed,
            log_every: 1000,
            convolution: Some(conv),
            ..SgdSettings::default()
        };
        let (_, log) = train_nonconvex(
            x.as_ref(),
            &y,
            Loss::Squared,
            lambda,
            &settings,
            &StopFlag::new(),
        )
        .unwrap();
        let f = log.last().unwrap().objective;
        best = best.min(f);
        assert!(
            f >= c.info.objective * (1.0 - 1e-7),
            "seed {seed}: gradient descent {f} below the convex optimum {}",
            c.info.objective
        );
    }
    // The comparison is not vacuous: gradient descent gets close.
    assert!(
        best <= 1.5 * c.info.objective,
        "best run {best} vs {}",
        c.info.objective
    );
}

/// Bad convolutional settings are errors, not panics.
#[test]
fn convolutional_settings_are_checked() {
    let (x, y) = images(6, 0, Loss::Squared);
    let wrong_size = TrainOptions {
        convolution: Some(Convolution::square(5, 2, 1)),
        ..options(Formulation::Relu, Loss::Squared, SolverChoice::Auto, 0)
    };
    let threshold = options(Formulation::Threshold, Loss::Squared, SolverChoice::Auto, 0);
    let admm = options(Formulation::Relu, Loss::Squared, SolverChoice::Admm, 0);
    let cd = options(Formulation::Relu, Loss::Squared, SolverChoice::Cd, 0);
    let mkl = options(Formulation::Gated, Loss::Squared, SolverChoice::Mkl, 0);
    let dictionary = TrainOptions {
        dictionary: true,
        ..options(Formulation::Relu, Loss::Squared, SolverChoice::Auto, 0)
    };
    for opts in [wrong_size, threshold, admm, cd, mkl, dictionary] {
        assert!(train(x.as_ref(), &y, &opts, &mut Silent, &StopFlag::new()).is_err());
    }
}

/// The separable network (each neuron sees one patch position, (M35d)): gated (FISTA) and ReLU
/// (augmented Lagrangian) agree with the interior-point backend to 1e-6, every read-out neuron's
/// filter lives on one position's block, the network attains the convex optimum, and it predicts
/// (1/K) Σ_j σ(x_{k_j}ᵀu_j) α_j from the plain patches.
#[test]
fn separable_programs_match_the_interior_point_backend() {
    let conv = Convolution {
        separable: true,
        ..Convolution::square(4, 2, 2)
    };
    let plain = Convolution::square(4, 2, 2);
    let (k, h) = (conv.patch_count(), conv.filter_dim());
    for seed in 0..2 {
        for loss in [Loss::Squared, Loss::Logistic] {
            let (x, y) = images(12, seed, loss);
            for (formulation, solver) in [
                (Formulation::Gated, SolverChoice::Fista),
                (Formulation::Relu, SolverChoice::Al),
            ] {
                let opts = |solver| TrainOptions {
                    convolution: Some(conv),
                    patterns: PatternSource::Sample { count: 12 },
                    ..options(formulation, loss, solver, seed)
                };
                let exact = fit(&x, &y, &opts(SolverChoice::Clarabel));
                let iterative = fit(&x, &y, &opts(solver));
                let what = format!("seed {seed}, {loss:?}, {formulation:?}");
                let (a, b) = (
                    exact.certificate.info.objective,
                    iterative.certificate.info.objective,
                );
                assert!(rel(a, b) <= 1e-6, "{what}: clarabel {a} vs {solver:?} {b}");
                let net = &iterative.network;
                let c = &iterative.certificate;
                assert!(c.active_neurons > 0, "{what}");
                assert!(
                    rel(c.network_objective, c.info.objective) <= 1e-8,
                    "{what}: network {} vs convex {}",
                    c.network_objective,
                    c.info.objective
                );
                // One position per neuron.
                let blocks: Vec<usize> = net
                    .hidden
                    .iter()
                    .map(|u| {
                        let on: Vec<usize> = (0..k)
                            .filter(|&p| u[p * h..(p + 1) * h].iter().any(|v| *v != 0.0))
                            .collect();
                        assert_eq!(on.len(), 1, "{what}: neuron on positions {on:?}");
                        on[0]
                    })
                    .collect();
                // Predictions from the plain patches: neuron j on its position only.
                let (xt, _) = images(5, 99, loss);
                let p = plain.patches(xt.as_ref()).unwrap();
                let got = net.predict(xt.as_ref()).unwrap();
                for (j, g) in got.iter().enumerate() {
                    let mut f = 0.0;
                    for (i, u) in net.hidden.iter().enumerate() {
                        let q = blocks[i];
                        let row = j * k + q;
                        let z: f64 = (0..h).map(|c| p[(row, c)] * u[q * h + c]).sum();
                        let act = match (formulation, &net.gates) {
                            (Formulation::Gated, Some(gs)) => {
                                let gz: f64 = (0..h).map(|c| p[(row, c)] * gs[i][q * h + c]).sum();
                                if gz >= 0.0 {
                                    z
                                } else {
                                    0.0
                                }
                            }
                            _ => z.max(0.0),
                        };
                        f += act * net.output[i] / k as f64;
                    }
                    assert!(
                        (f - g).abs() <= 1e-9 * (1.0 + f.abs()),
                        "{what}: {f} vs {g}"
                    );
                }
            }
        }
    }
}

/// Separable networks take only gated and ReLU activations, and their own patterns.
#[test]
fn separable_settings_are_checked() {
    let (x, y) = images(8, 1, Loss::Squared);
    let conv = Convolution {
        separable: true,
        ..Convolution::square(4, 2, 2)
    };
    let stop = StopFlag::new();
    for (opts, needle) in [
        (
            TrainOptions {
                convolution: Some(conv),
                ..options(
                    Formulation::LeakyRelu { slope: 0.1 },
                    Loss::Squared,
                    SolverChoice::Al,
                    0,
                )
            },
            "gated or relu",
        ),
        (
            TrainOptions {
                convolution: Some(conv),
                patterns: PatternSource::Gates(Mat::zeros(20, 2)),
                ..options(Formulation::Gated, Loss::Squared, SolverChoice::Fista, 0)
            },
            "per-position patterns",
        ),
    ] {
        let e = train(x.as_ref(), &y, &opts, &mut Silent, &stop)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains(needle), "{e}");
    }
}

/// Block coordinate descent on the Gram form (M57) agrees with the interior-point backend on the
/// pooled gated program (and on a fully connected one), and refuses losses other than squared.
#[test]
fn block_coordinate_descent_matches_the_interior_point_backend() {
    for seed in 0..3 {
        let (x, y) = images(12, seed, Loss::Squared);
        for conv in [Some(Convolution::square(4, 2, 2)), None] {
            let opts = |solver| TrainOptions {
                convolution: conv,
                patterns: PatternSource::Sample { count: 10 },
                ..options(Formulation::Gated, Loss::Squared, solver, seed)
            };
            let exact = fit(&x, &y, &opts(SolverChoice::Clarabel));
            let bcd = fit(&x, &y, &opts(SolverChoice::Bcd));
            let (a, b) = (
                exact.certificate.info.objective,
                bcd.certificate.info.objective,
            );
            let what = format!("seed {seed}, conv {}", conv.is_some());
            assert_eq!(bcd.certificate.solver, "bcd", "{what}");
            assert!(bcd.certificate.relative_gap <= 1e-9, "{what}");
            assert!(rel(a, b) <= 1e-6, "{what}: clarabel {a} vs bcd {b}");
            let c = &bcd.certificate;
            assert!(rel(c.network_objective, c.info.objective) <= 1e-8, "{what}");
        }
    }
    let (x, y) = images(12, 0, Loss::Logistic);
    let e = train(
        x.as_ref(),
        &y,
        &options(Formulation::Gated, Loss::Logistic, SolverChoice::Bcd, 0),
        &mut Silent,
        &StopFlag::new(),
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(e.contains("squared-loss gated"), "{e}");
}
