//! Deep narrow ReLU networks on scalar data (docs/programs.md (M58)–(M60)): the chain-dictionary
//! Lasso agrees with the interior-point backend, its read-out network attains the optimum, anchors
//! at the data values (and, for L = 4, their reflections) lose nothing against a much richer anchor
//! set, deeper dictionaries never do worse, and no gradient run of the non-convex network ends
//! below the convex optimum.

use convexnn::faer::Mat;
use convexnn::features::narrow::NarrowDictionary;
use convexnn::model::{train, Fit, SolverChoice, TrainOptions};
use convexnn::network::narrow::{train_narrow, NarrowSettings};
use convexnn::program::Formulation;
use convexnn::rng::Rng;
use convexnn::solver::exact::ExactSettings;
use convexnn::solver::exact_l1::{solve_l1_exact, L1Program};
use convexnn::solver::{Silent, Status, StopFlag};

fn data(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
    let mut r = Rng::new(seed);
    let x = Mat::from_fn(n, 1, |_, _| 2.0 * r.normal());
    let y = (0..n)
        .map(|i| (1.5 * x[(i, 0)]).sin() + 1.0 + 0.3 * r.normal())
        .collect();
    (x, y)
}

fn fit(depth: usize, x: &Mat<f64>, y: &[f64], lambda: f64, solver: SolverChoice) -> Fit {
    let opts = TrainOptions {
        formulation: Formulation::Relu,
        lambda,
        dictionary: true,
        dictionary_depth: depth,
        solver,
        tol: 1e-7,
        max_iter: 500_000,
        ..TrainOptions::default()
    };
    train(x.as_ref(), y, &opts, &mut Silent, &StopFlag::new()).unwrap()
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

/// The interior-point optimum of the Lasso with free intercept over the columns of `design`.
fn lasso_optimum(design: &Mat<f64>, y: &[f64], lambda: f64) -> f64 {
    let pen = vec![true; design.ncols()];
    let sol = solve_l1_exact(
        &L1Program {
            design: design.as_ref(),
            targets: y,
            lambda,
            penalized: &pen,
            constraints: None,
            intercept: true,
        },
        &ExactSettings::default(),
    )
    .unwrap();
    assert_eq!(sol.status, Status::Converged);
    sol.objective
}

#[test]
fn chain_lasso_matches_the_interior_point_backend_and_the_network_attains_it() {
    for (seed, n) in [(1, 6), (2, 9)] {
        let (x, y) = data(n, seed);
        for depth in [3, 4] {
            for lambda in [2e-3, 3e-2] {
                let a = fit(depth, &x, &y, lambda, SolverChoice::Fista);
                let b = fit(depth, &x, &y, lambda, SolverChoice::Clarabel);
                let (ca, cb) = (&a.certificate, &b.certificate);
                let tag = format!("L = {depth} n = {n} λ = {lambda}");
                assert_eq!(ca.info.status, Status::Converged, "{tag}");
                let dict = NarrowDictionary::new(x.as_ref(), depth, usize::MAX).unwrap();
                let raw = lasso_optimum(&dict.matrix, &y, lambda);
                eprintln!(
                    "{tag}: P = {}, fista {:.10} clarabel {:.10} raw {raw:.10}, network {:.10}",
                    dict.len(),
                    ca.info.objective,
                    cb.info.objective,
                    ca.network_objective
                );
                assert!(rel(ca.info.objective, raw) <= 1e-6, "{tag}");
                assert!(rel(cb.info.objective, raw) <= 1e-6, "{tag}");
                assert!(
                    rel(ca.network_objective, ca.info.objective) <= 1e-8,
                    "{tag}"
                );
                assert!(
                    rel(cb.network_objective, cb.info.objective) <= 1e-8,
                    "{tag}"
                );
                let units = a.network.chains.as_ref().unwrap();
                assert!(units.iter().all(|u| u.weights.len() == depth - 1));
                assert_eq!(a.chains.as_ref().unwrap().len(), dict.len());
            }
        }
    }
}

#[test]
fn data_anchors_lose_nothing_against_a_richer_anchor_set() {
    // Anchors at the data values (and for L = 4 the reflections 2x_j − x_i) against anchors at
    // the data values, the midpoints between them, every reflection of a data value about
    // another and points beyond the data: the richer dictionary contains the first, and its Lasso
    // optimum is the same, the numerical form of "the breakpoints may sit at the data".
    let n = 5;
    let (x, y) = data(n, 7);
    let xs: Vec<f64> = (0..n).map(|i| x[(i, 0)]).collect();
    let mut sorted = xs.clone();
    sorted.sort_by(f64::total_cmp);
    let mut rich = sorted.clone();
    rich.extend(sorted.windows(2).map(|w| 0.5 * (w[0] + w[1])));
    for &a in &sorted {
        for &b in &sorted {
            rich.push(2.0 * b - a);
        }
    }
    rich.extend([sorted[0] - 1.0, sorted[n - 1] + 1.0]);
    rich.sort_by(f64::total_cmp);
    rich.dedup();
    for (depth, lambda) in [(3, 1e-2), (4, 1e-2), (3, 1e-3), (4, 1e-3)] {
        let data_dict = NarrowDictionary::new(x.as_ref(), depth, usize::MAX).unwrap();
        let rich_dict =
            NarrowDictionary::from_anchors(&xs, &rich, depth, true, usize::MAX).unwrap();
        let (a, b) = (
            lasso_optimum(&data_dict.matrix, &y, lambda),
            lasso_optimum(&rich_dict.matrix, &y, lambda),
        );
        eprintln!(
            "L = {depth} λ = {lambda}: data anchors ({} columns) {a:.10}, rich anchors ({} columns) {b:.10}",
            data_dict.len(),
            rich_dict.len()
        );
        assert!(rel(a, b) <= 1e-6, "L = {depth}: {a} vs {b}");
    }
}

/// L = 3 can only do better than L = 2 (its dictionary holds every two-layer ramp). L = 4 gives
/// exactly the optimum of L = 3: a width-one ReLU chain of depth ≥ 3 computes a ramp or a clipped
/// ramp (flat, slope, flat), another layer maps these to the same family, and a unit whose slope
/// is the product of its weights costs at least λ|product| by the AM–GM inequality, attained by
/// equal weights at any depth (docs/programs.md (M58)).
#[test]
fn deeper_dictionaries_never_do_worse() {
    let (x, y) = data(8, 3);
    let lambda = 5e-3;
    let opt: Vec<f64> = [2, 3, 4]
        .iter()
        .map(|&depth| {
            fit(depth, &x, &y, lambda, SolverChoice::Fista)
                .certificate
                .info
                .objective
        })
        .collect();
    eprintln!("optima for L = 2, 3, 4: {opt:?}");
    assert!(opt[1] <= opt[0] * (1.0 + 1e-6));
    assert!(rel(opt[2], opt[1]) <= 1e-6, "{opt:?}");
}

#[test]
fn no_gradient_run_of_the_deep_narrow_network_ends_below_the_convex_optimum() {
    let (x, y) = data(8, 5);
    let lambda = 5e-3;
    for depth in [3, 4] {
        let convex = fit(depth, &x, &y, lambda, SolverChoice::Fista);
        let opt = convex.certificate.info.objective;
        let width = convex.network.width().max(4);
        let mut best = f64::INFINITY;
        for seed in 0..4 {
            let settings = NarrowSettings {
                width,
                depth,
                learning_rate: 1e-2,
                steps: 3000,
                seed,
                log_every: 1000,
            };
            let (net, log) =
                train_narrow(x.as_ref(), &y, lambda, &settings, &StopFlag::new()).unwrap();
            let f = log.last().unwrap().objective;
            assert!(f.is_finite() && net.width() == width);
            best = best.min(f);
        }
        eprintln!("L = {depth}: convex {opt:.8}, best of 4 Adam runs {best:.8}");
        assert!(best >= opt * (1.0 - 1e-6), "L = {depth}: {best} < {opt}");
    }
}

#[test]
fn bad_deep_settings_are_errors() {
    let (x, y) = data(6, 9);
    let run = |opts: TrainOptions| train(x.as_ref(), &y, &opts, &mut Silent, &StopFlag::new());
    let base = TrainOptions {
        formulation: Formulation::Relu,
        dictionary: true,
        dictionary_depth: 3,
        ..TrainOptions::default()
    };
    for (opts, words) in [
        (
            TrainOptions {
                dictionary_depth: 5,
                ..base.clone()
            },
            "depth 3 and 4",
        ),
        (
            TrainOptions {
                formulation: Formulation::Abs,
                ..base.clone()
            },
            "for ReLU networks",
        ),
        (
            TrainOptions {
                dictionary: false,
                ..base.clone()
            },
            "set dictionary too",
        ),
        (
            TrainOptions {
                memory_limit: Some(1000),
                ..base.clone()
            },
            "--max-memory",
        ),
    ] {
        let e = run(opts).err().expect("an error").to_string();
        assert!(e.contains(words), "{e}");
    }
}
