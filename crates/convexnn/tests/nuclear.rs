//! The nuclear-norm heuristic (docs/programs.md (M37)) against an exact solve: on tiny data that a
//! planted width-2 ReLU network fits exactly, the heuristic's network must fit the data (the
//! bilinear constraints hold), its weight-decay objective (M5) must lie above the certified global
//! optimum of the convex program (M6) over every pattern (the ordering of §9), and on the case
//! below, where the heuristic succeeds as the seed reports it can, within a stated factor of it.

//!
//! The tests that solve semidefinite programs need the `nuclear` feature (a system BLAS and
//! LAPACK); without it, the solver must refuse with an error that says to rebuild with it.

use convexnn::faer::Mat;
use convexnn::features::patches::Convolution;
use convexnn::model::{train, SolverChoice, TrainOptions};
use convexnn::program::{Formulation, Loss};
use convexnn::rng::Rng;
use convexnn::solver::nuclear::NuclearSettings;
use convexnn::solver::{Silent, StopFlag};

/// n points x = (t, 1) with t ~ N(0, 1), and y = Σ_j α_j (u_jᵀx)₊ for a planted network of width 2
/// (one neuron of each output sign).
fn planted(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let mut r = Rng::new(seed);
    let x = Mat::from_fn(n, 2, |_, c| if c == 1 { 1.0 } else { r.normal() });
    let u = Mat::from_fn(2, 2, |_, _| r.normal());
    let a: Vec<f64> = (0..2)
        .map(|j| if j == 0 { 1.0 } else { -1.0 } * (0.5 + r.uniform()))
        .collect();
    let y = (0..n)
        .map(|i| {
            (0..2)
                .map(|j| a[j] * (u[(j, 0)] * x[(i, 0)] + u[(j, 1)] * x[(i, 1)]).max(0.0))
                .sum()
        })
        .collect();
    (x, y)
}

const LAMBDA: f64 = 1e-4;

fn nuclear_options() -> TrainOptions {
    TrainOptions {
        formulation: Formulation::Relu,
        lambda: LAMBDA,
        solver: SolverChoice::Nuclear,
        nuclear: NuclearSettings {
            width: 2,
            ..NuclearSettings::default()
        },
        ..TrainOptions::default()
    }
}

/// The semidefinite solves (feature `nuclear`).
#[cfg(feature = "nuclear")]
mod sdp {
    use super::*;
    use convexnn::model::file::{ModelFile, Preprocessing};
    use convexnn::model::{PatternSource, NO_GUARANTEE};
    use convexnn::solver::nuclear::nuclear_heuristic;
    use convexnn::solver::Status;

    #[test]
    fn heuristic_fits_planted_data_and_stays_above_the_certified_optimum() {
        let (x, y) = planted(4, 0);
        let scale = y.iter().fold(1.0f64, |a, v| a.max(v.abs()));

        // The relaxations themselves: the bilinear equalities αᵀH = yᵀ and H ∘ S = 0 hold at the
        // relaxation that gave the network.
        let settings = NuclearSettings {
            width: 2,
            ..NuclearSettings::default()
        };
        let run =
            nuclear_heuristic(x.as_ref(), &y, &settings, &mut Silent, &StopFlag::new()).unwrap();
        let best = run.history[run.best_relaxation - 1];
        eprintln!(
            "relaxations {}, residuals {:?}",
            run.history.len(),
            run.history
                .iter()
                .map(|r| r.network_residual)
                .collect::<Vec<_>>()
        );
        assert_eq!(run.status, Status::Converged);
        assert!(best.fit_violation <= 1e-6 * scale, "{best:?}");
        assert!(best.complementarity_violation <= 1e-6 * scale, "{best:?}");

        // Through the one-call API: the network fits, and nothing is certified.
        let fit = train(
            x.as_ref(),
            &y,
            &nuclear_options(),
            &mut Silent,
            &StopFlag::new(),
        )
        .unwrap();
        let c = &fit.certificate;
        let h = c.heuristic.as_ref().expect("a heuristic report");
        assert_eq!(h.guarantee, NO_GUARANTEE);
        assert!(c.info.gap.is_nan() && c.info.dual_objective.is_nan() && c.relative_gap.is_nan());
        assert_eq!(c.info.status, Status::Converged);
        let pred = fit.network.predict(x.as_ref()).unwrap();
        let worst = pred
            .iter()
            .zip(&y)
            .map(|(p, t)| (p - t).abs())
            .fold(0.0, f64::max);
        assert!(worst <= 1e-6 * scale, "fit residual {worst}");
        assert!((h.fit_residual - worst).abs() <= 1e-9 * scale);
        assert!(fit.network.width() <= 2);

        // The exact solve: the convex program over every pattern, by the interior-point backend.
        let exact = train(
            x.as_ref(),
            &y,
            &TrainOptions {
                formulation: Formulation::Relu,
                lambda: LAMBDA,
                patterns: PatternSource::Exact,
                solver: SolverChoice::Clarabel,
                tol: 1e-8,
                ..TrainOptions::default()
            },
            &mut Silent,
            &StopFlag::new(),
        )
        .unwrap();
        let e = &exact.certificate;
        assert!(e.exhaustive && e.info.status == Status::Converged);
        let lower = e.info.dual_objective;
        let ours = c.info.objective;
        eprintln!(
            "heuristic (M5) objective {ours:.6e}, certified optimum {:.6e} (dual bound {lower:.6e}), \
             ratio {:.3}",
            e.info.objective,
            ours / e.info.objective
        );
        // Ordering: no network beats the certified lower bound.
        assert!(ours >= lower - 1e-9 * lower.abs());
        // The stated factor for this case: within 1% of the global optimum (measured: 1.00005; the
        // exact fit costs a little more data-free weight decay than the optimum's tiny misfit saves).
        assert!(ours <= 1.01 * e.info.objective);
    }

    #[test]
    fn model_file_keeps_the_heuristic_report_and_predicts_the_same() {
        let (x, y) = planted(4, 0);
        let opts = nuclear_options();
        let fit = train(x.as_ref(), &y, &opts, &mut Silent, &StopFlag::new()).unwrap();
        let model = ModelFile::from_fit(
            &fit,
            &opts,
            "none",
            Preprocessing {
                feature_names: vec!["t".into(), "one".into()],
                ..Preprocessing::default()
            },
            None,
            &y,
        );
        let dir = std::env::temp_dir().join(format!("convexnn-nuclear-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.json");
        model.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(NO_GUARANTEE) && text.contains("\"gap\": null"));
        let back = ModelFile::load(&path).unwrap();
        std::fs::remove_dir_all(&dir).ok();
        assert!(back.certificate.info.gap.is_nan());
        assert_eq!(back.settings.solver, SolverChoice::Nuclear);
        let (a, b) = (model.predict(&x).unwrap(), back.predict(&x).unwrap());
        assert_eq!(a, b);
    }
}

#[test]
fn other_programs_and_losses_are_refused_with_a_message() {
    let (x, y) = planted(4, 0);
    for (formulation, loss) in [
        (Formulation::Gated, Loss::Squared),
        (Formulation::Relu, Loss::Logistic),
    ] {
        let labels: Vec<f64> = y.iter().map(|&v| f64::from(v > 0.0)).collect();
        let opts = TrainOptions {
            formulation,
            loss,
            ..nuclear_options()
        };
        let err = train(x.as_ref(), &labels, &opts, &mut Silent, &StopFlag::new())
            .err()
            .expect("refused");
        assert!(err.to_string().contains("nuclear"), "{err}");
    }
}

#[test]
fn convolutions_and_dictionaries_are_refused_with_a_message() {
    let (x, y) = planted(4, 0);
    let conv = TrainOptions {
        convolution: Some(Convolution {
            height: 1,
            width: 2,
            filter_height: 1,
            filter_width: 1,
            stride: 1,
            bias: false,
            circular: false,
            separable: false,
        }),
        ..nuclear_options()
    };
    let err = train(x.as_ref(), &y, &conv, &mut Silent, &StopFlag::new())
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("nuclear") && err.to_string().contains("convolution"),
        "{err}"
    );
    let t = Mat::from_fn(4, 1, |i, _| x[(i, 0)]);
    let dict = TrainOptions {
        dictionary: true,
        ..nuclear_options()
    };
    let err = train(t.as_ref(), &y, &dict, &mut Silent, &StopFlag::new())
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("nuclear") && err.to_string().contains("dictionary"),
        "{err}"
    );
}

/// Without the feature there is no semidefinite solver: the heuristic says how to get one.
#[cfg(not(feature = "nuclear"))]
#[test]
fn without_the_feature_the_solver_says_to_rebuild_with_it() {
    let (x, y) = planted(4, 0);
    let err = train(
        x.as_ref(),
        &y,
        &nuclear_options(),
        &mut Silent,
        &StopFlag::new(),
    )
    .err()
    .expect("refused");
    assert!(
        err.to_string()
            .contains("rebuild with the `nuclear` feature"),
        "{err}"
    );
}
