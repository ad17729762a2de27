//! Vector outputs (docs/programs.md §3e): FISTA against the interior-point backend for every block
//! norm and loss, the exact read-out on enumerated patterns, the ordering of the three programs, and
//! the reduction to the single-output program when c = 1.

use convexnn::faer::Mat;
use convexnn::model::file::{ModelFile, Preprocessing};
use convexnn::model::outputs::{train_classes, train_outputs};
use convexnn::model::{train, Fit, PatternSource, SolverChoice, TrainOptions};
use convexnn::program::outputs::OutputPenalty;
use convexnn::program::Loss;
use convexnn::rng::Rng;
use convexnn::solver::{Silent, Status, StopFlag};

/// n × d Gaussian features with a bias column, c real targets and class labels in 0..c.
fn problem(seed: u64, c: usize) -> (Mat<f64>, Mat<f64>, Vec<f64>) {
    let mut r = Rng::new(seed);
    let n = 15 + (seed as usize * 5) % 15;
    let d = 2 + seed as usize % 3;
    let x = Mat::from_fn(n, d, |_, k| if k == d - 1 { 1.0 } else { r.normal() });
    let y = Mat::from_fn(n, c, |i, k| {
        (x[(i, 0)] - 0.3 * k as f64).max(0.0) - 0.2 * x[(i, d - 2)] * k as f64 + 0.1 * r.normal()
    });
    let labels = (0..n)
        .map(|i| {
            (0..c)
                .max_by(|&a, &b| y[(i, a)].total_cmp(&y[(i, b)]))
                .unwrap() as f64
        })
        .collect();
    (x, y, labels)
}

fn options(penalty: OutputPenalty, loss: Loss, solver: SolverChoice, seed: u64) -> TrainOptions {
    TrainOptions {
        loss,
        lambda: 0.02,
        patterns: PatternSource::Sample { count: 6 },
        seed,
        solver,
        tol: 1e-9,
        max_iter: 200_000,
        outputs: penalty,
        ..TrainOptions::default()
    }
}

fn fit(x: &Mat<f64>, y: &Mat<f64>, labels: &[f64], opts: &TrainOptions) -> Fit {
    let stop = StopFlag::new();
    if opts.loss == Loss::Softmax {
        train_classes(x.as_ref(), labels, opts, &mut Silent, &stop).expect("softmax fit")
    } else {
        train_outputs(x.as_ref(), y.as_ref(), opts, &mut Silent, &stop).expect("fit")
    }
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

fn penalties() -> Vec<OutputPenalty> {
    let mut p = vec![OutputPenalty::Separate, OutputPenalty::Group];
    // The nuclear norm's interior-point form needs semidefinite cones.
    if cfg!(feature = "nuclear") {
        p.push(OutputPenalty::Nuclear);
    }
    p
}

#[test]
fn fista_matches_the_interior_point_backend() {
    for penalty in penalties() {
        for loss in [Loss::Squared, Loss::Softmax] {
            for seed in 0..5u64 {
                let (x, y, labels) = problem(seed, 3);
                let a = fit(
                    &x,
                    &y,
                    &labels,
                    &options(penalty, loss, SolverChoice::Fista, seed),
                );
                let b = fit(
                    &x,
                    &y,
                    &labels,
                    &options(penalty, loss, SolverChoice::Clarabel, seed),
                );
                let (fa, fb) = (a.certificate.info.objective, b.certificate.info.objective);
                assert!(
                    rel(fa, fb) < 1e-6,
                    "{penalty:?} {loss:?} seed {seed}: fista {fa} vs clarabel {fb}"
                );
                assert_eq!(a.certificate.info.status, Status::Converged);
                // Each certified dual bound is below the other's objective (weak duality).
                assert!(a.certificate.info.dual_objective <= fb * (1.0 + 1e-9));
                assert!(b.certificate.info.dual_objective <= fa * (1.0 + 1e-9));
            }
        }
    }
}

/// On 1-D data with every pattern enumerated, `separate` and `nuclear` read out a network whose
/// non-convex objective is the convex optimum; `group` reads out one at or above its optimum; and
/// p(group) ≤ p(nuclear) ≤ p(separate) (M56).
#[test]
fn read_out_is_exact_for_separate_and_nuclear_on_enumerated_patterns() {
    let mut r = Rng::new(11);
    let n = 9;
    let x = Mat::from_fn(n, 2, |i, k| if k == 0 { i as f64 / 4.0 - 1.0 } else { 1.0 });
    let y = Mat::from_fn(n, 3, |i, k| {
        (x[(i, 0)] - 0.5 * k as f64).abs() + 0.3 * r.normal()
    });
    let labels: Vec<f64> = (0..n).map(|i| (i % 3) as f64).collect();
    for loss in [Loss::Squared, Loss::Softmax] {
        let mut optimum = vec![];
        for penalty in [
            OutputPenalty::Group,
            OutputPenalty::Nuclear,
            OutputPenalty::Separate,
        ] {
            let opts = TrainOptions {
                patterns: PatternSource::Exact,
                tol: 1e-11,
                ..options(penalty, loss, SolverChoice::Fista, 0)
            };
            let f = fit(&x, &y, &labels, &opts);
            let c = &f.certificate;
            assert!(c.exhaustive);
            assert!(
                c.relative_gap < 1e-7,
                "{penalty:?} {loss:?}: gap {}",
                c.relative_gap
            );
            let (convex, network) = (c.info.objective, c.network_objective);
            if penalty == OutputPenalty::Group {
                assert!(network >= convex * (1.0 - 1e-9), "{network} < {convex}");
            } else {
                assert!(
                    rel(network, convex) < 1e-8,
                    "{penalty:?} {loss:?}: network {network} vs convex {convex}"
                );
            }
            optimum.push((convex, c.info.dual_objective));
        }
        // group ≤ nuclear ≤ separate, each up to its certified gap.
        assert!(
            optimum[0].1 <= optimum[1].0 && optimum[1].1 <= optimum[2].0,
            "{optimum:?}"
        );
        assert!(optimum[0].0 < optimum[2].0, "{optimum:?}");
    }
}

/// With one output the three block norms are the Euclidean group norm, and the program is the
/// single-output gated one (the squared loss divides by n·1).
#[test]
fn one_output_is_the_gated_program() {
    let (x, y, _) = problem(4, 1);
    let yv: Vec<f64> = y.col_as_slice(0).to_vec();
    let single = train(
        x.as_ref(),
        &yv,
        &options(OutputPenalty::Group, Loss::Squared, SolverChoice::Fista, 4),
        &mut Silent,
        &StopFlag::new(),
    )
    .unwrap();
    for penalty in [
        OutputPenalty::Separate,
        OutputPenalty::Group,
        OutputPenalty::Nuclear,
    ] {
        let opts = options(penalty, Loss::Squared, SolverChoice::Fista, 4);
        let f = fit(&x, &y, &[], &opts);
        assert!(
            rel(
                f.certificate.info.objective,
                single.certificate.info.objective
            ) < 1e-8,
            "{penalty:?}"
        );
    }
}

#[test]
fn classifier_model_file_round_trips_and_predicts_classes() {
    let (x, _, labels) = problem(2, 3);
    let labels: Vec<f64> = labels.iter().map(|l| 10.0 * l + 5.0).collect();
    let opts = TrainOptions {
        lambda: 1e-3,
        tol: 1e-6,
        ..options(OutputPenalty::Nuclear, Loss::Softmax, SolverChoice::Auto, 2)
    };
    let f = train(x.as_ref(), &labels, &opts, &mut Silent, &StopFlag::new()).unwrap();
    let report = f
        .certificate
        .outputs
        .as_ref()
        .expect("vector-output report");
    assert_eq!(report.outputs, 3);
    assert_eq!(report.classes.as_deref(), Some(&[5.0, 15.0, 25.0][..]));
    let prep = Preprocessing {
        feature_names: (0..x.ncols()).map(|k| format!("x{k}")).collect(),
        ..Preprocessing::default()
    };
    let model = ModelFile::from_fit(&f, &opts, "sample:6", prep, None, &labels);
    let dir = std::env::temp_dir().join(format!("convexnn-outputs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.json");
    model.save(&path).unwrap();
    let back = ModelFile::load(&path).unwrap();
    let predicted = back.predict(&x).unwrap();
    let accuracy = predicted
        .iter()
        .zip(&labels)
        .filter(|(a, b)| a == b)
        .count() as f64
        / labels.len() as f64;
    assert!(predicted.iter().all(|p| [5.0, 15.0, 25.0].contains(p)));
    assert!(accuracy > 0.8, "training accuracy {accuracy}");
    assert_eq!(back.network.outputs, 3);
    let scores = back.predict_outputs(&x).unwrap();
    assert_eq!((scores.nrows(), scores.ncols()), (x.nrows(), 3));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_vector_output_settings_are_refused() {
    let (x, y, labels) = problem(1, 3);
    let stop = StopFlag::new();
    let relu = TrainOptions {
        formulation: convexnn::program::Formulation::Relu,
        ..TrainOptions::default()
    };
    let e = train_outputs(x.as_ref(), y.as_ref(), &relu, &mut Silent, &stop)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("gated"), "{e}");
    let one_class = vec![1.0; labels.len()];
    let softmax = TrainOptions {
        loss: Loss::Softmax,
        ..TrainOptions::default()
    };
    let e = train(x.as_ref(), &one_class, &softmax, &mut Silent, &stop)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("two classes"), "{e}");
    let mut bad = y.clone();
    bad[(3, 2)] = f64::NAN;
    let e = train_outputs(
        x.as_ref(),
        bad.as_ref(),
        &TrainOptions::default(),
        &mut Silent,
        &stop,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("(3, 2)"), "{e}");
}

/// ReLU, leaky ReLU and |z| networks with c outputs and the separate block norm (docs/programs.md
/// (M53b)): on every pattern of small data the split program agrees with the interior-point
/// backend, its network (neurons each feeding one output) attains the convex objective, and a
/// one-hot classifier of the same kind trains and predicts its classes.
#[test]
fn cone_networks_with_separate_outputs_match_the_interior_point_backend() {
    use convexnn::program::Formulation;
    let (x, y, labels) = problem(3, 2);
    let x = x.subrows(0, 12).to_owned();
    let y = y.subrows(0, 12).to_owned();
    for kind in [
        Formulation::Relu,
        Formulation::LeakyRelu { slope: 0.2 },
        Formulation::Abs,
    ] {
        let mut objectives = vec![];
        for solver in [SolverChoice::Auto, SolverChoice::Clarabel] {
            let opts = TrainOptions {
                formulation: kind,
                patterns: PatternSource::Exact,
                lambda: 0.02,
                solver,
                tol: 1e-8,
                max_iter: 200_000,
                outputs: OutputPenalty::Separate,
                ..TrainOptions::default()
            };
            let f = fit(&x, &y, &labels, &opts);
            let c = &f.certificate;
            assert_eq!(
                c.info.status,
                Status::Converged,
                "{kind:?} {solver:?} {} {:?} {}",
                c.solver,
                c.info,
                f.patterns.len()
            );
            assert_eq!(c.outputs.as_ref().map(|o| o.outputs), Some(2));
            assert!(
                rel(c.network_objective, c.info.objective) <= 1e-8,
                "{kind:?} {solver:?}: {} vs {}",
                c.network_objective,
                c.info.objective
            );
            // Every neuron weights exactly one output.
            let net = &f.network;
            assert_eq!(net.outputs, 2);
            for j in 0..net.width() {
                let nonzero = (0..2).filter(|&k| net.output[2 * j + k] != 0.0).count();
                assert_eq!(nonzero, 1);
            }
            assert_eq!(f.weights.nrows(), 2 * x.ncols());
            objectives.push(c.info.objective);
        }
        assert!(
            rel(objectives[0], objectives[1]) <= 1e-6,
            "{kind:?}: {objectives:?}"
        );
    }
    // Group and nuclear block norms, and the softmax loss, stay gated-only for these networks.
    for (penalty, loss) in [
        (OutputPenalty::Group, Loss::Squared),
        (OutputPenalty::Separate, Loss::Softmax),
    ] {
        let opts = TrainOptions {
            formulation: Formulation::Relu,
            outputs: penalty,
            loss,
            ..TrainOptions::default()
        };
        let stop = StopFlag::new();
        let e = if loss == Loss::Softmax {
            train_classes(x.as_ref(), &labels[..12], &opts, &mut Silent, &stop)
        } else {
            train_outputs(x.as_ref(), y.as_ref(), &opts, &mut Silent, &stop)
        }
        .err()
        .expect("refused")
        .to_string();
        assert!(e.contains("separate block norm"), "{e}");
    }
    // One-hot squared classification with ReLU networks.
    let (x, _, labels) = problem(5, 3);
    let opts = TrainOptions {
        formulation: Formulation::Relu,
        patterns: PatternSource::Sample { count: 10 },
        lambda: 0.01,
        outputs: OutputPenalty::Separate,
        tol: 1e-7,
        ..TrainOptions::default()
    };
    let f = train_classes(x.as_ref(), &labels, &opts, &mut Silent, &StopFlag::new()).unwrap();
    assert_eq!(f.certificate.info.status, Status::Converged);
    let mut classes = labels.clone();
    classes.sort_by(f64::total_cmp);
    classes.dedup();
    assert!(classes.len() >= 2);
    assert_eq!(
        f.network.predict_outputs(x.as_ref()).unwrap().ncols(),
        classes.len()
    );
}
