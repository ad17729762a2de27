//! Training a two-layer network on scalar data through its explicit dictionary (docs/programs.md
//! (M47)–(M50)): build the dictionary, solve the Lasso with a free intercept (restarted FISTA on the
//! centered program, or the interior-point backend), certify the gap in f64, and read out the
//! network with free neuron biases and output intercept.

use std::time::Instant;

use faer::{Mat, MatRef};

use super::{
    final_status, Certificate, CertificateFacts, Fit, PatternSource, Precision, SolverChoice,
    TrainOptions,
};
use crate::error::{Error, Result};
use crate::features::dictionary::Dictionary;
use crate::features::narrow::{check_depth, NarrowDictionary};
use crate::features::PatternSet;
use crate::network::narrow::from_chains;
use crate::network::Network;
use crate::program::lasso::InterceptLasso;
use crate::program::{Formulation, Loss};
use crate::solver::exact::ExactSettings;
use crate::solver::exact_l1::{solve_l1_exact, L1Program};
use crate::solver::fista::{fista, FistaRun, Smooth};
use crate::solver::{Info, Observe, StopFlag};

/// The objective's normalization of the dictionary programs of depth `depth`, in words.
pub fn normalization(kind: Formulation, depth: usize) -> String {
    let features = match kind {
        _ if depth > 2 => format!(
            "of depth-{depth} chains phi^(l+1) = (s_l(phi^l(x) - phi^l(a_l)))_+ (the deep narrow \
             ReLU network's weight decay is (lambda/{depth}) * sum |weights|^{depth})"
        ),
        Formulation::Threshold => "1[s(x - x_j) >= 0]".into(),
        _ => "sigma(s(x - x_j))".into(),
    };
    format!(
        "(1/(2n))||A z + xi - y||^2 + lambda * sum_k |z_k|, A the 1-D dictionary {features}, \
         xi a free intercept; the papers' beta = n * lambda"
    )
}

/// The columns of a dictionary program: ramps of a two-layer network (M47) or chains of a deep
/// narrow ReLU network (M58).
enum Columns {
    Ramps(Dictionary),
    Chains(NarrowDictionary),
}

impl Columns {
    /// The dictionary of the options' network on the scalar inputs `x`, within the memory limit.
    fn new(x: MatRef<'_, f64>, opts: &TrainOptions) -> Result<Self> {
        let limit = opts
            .memory_limit
            .unwrap_or_else(|| super::available_memory() / 10 * 8);
        if opts.dictionary_depth == 2 {
            let dict = Dictionary::new(opts.formulation, x)?;
            check_memory(x.nrows(), dict.len(), limit)?;
            return Ok(Columns::Ramps(dict));
        }
        NarrowDictionary::new(x, opts.dictionary_depth, limit).map(Columns::Chains)
    }

    fn matrix(&self) -> MatRef<'_, f64> {
        match self {
            Columns::Ramps(d) => d.matrix.as_ref(),
            Columns::Chains(d) => d.matrix.as_ref(),
        }
    }

    /// The network of the coefficients `z` and intercept: (M50) or (M60).
    fn network(&self, kind: Formulation, z: &[f64], intercept: f64) -> Network {
        match self {
            Columns::Ramps(d) => Network::from_dictionary(kind, &d.atoms, z, intercept),
            Columns::Chains(d) => from_chains(&d.chains, z, intercept),
        }
    }

    /// Columns a working set takes only once no other column is missing: the reflected family of
    /// the depth-4 dictionary (the same optimum without it, docs/programs.md (M58)).
    fn late(&self) -> Vec<bool> {
        match self {
            Columns::Ramps(d) => vec![false; d.len()],
            Columns::Chains(d) => d.chains.iter().map(|c| c.reflected).collect(),
        }
    }

    fn patterns(&self, x: MatRef<'_, f64>) -> Vec<Vec<bool>> {
        match self {
            Columns::Ramps(d) => d.patterns(x),
            Columns::Chains(d) => d.patterns(),
        }
    }
}

/// An error unless the options describe a dictionary fit this module can do.
fn check_options(opts: &TrainOptions) -> Result<()> {
    if opts.loss != Loss::Squared {
        return Err(Error::InvalidSetting(format!(
            "the 1-D dictionary program is implemented for the squared loss (its free intercept \
             is eliminated by centering), not the {} loss",
            opts.loss.as_str()
        )));
    }
    if !matches!(
        opts.solver,
        SolverChoice::Auto | SolverChoice::Fista | SolverChoice::Clarabel
    ) {
        return Err(Error::InvalidSetting(
            format!(
                "the 1-D dictionary Lasso is solved by fista or clarabel (auto is fista), not {:?}",
                opts.solver
            )
            .to_lowercase(),
        ));
    }
    if opts.dictionary_depth != 2 {
        check_depth(opts.dictionary_depth)?;
        if opts.formulation != Formulation::Relu {
            return Err(Error::InvalidSetting(format!(
                "deep narrow 1-D dictionaries (depth {}) are for ReLU networks, not {}",
                opts.dictionary_depth,
                opts.formulation.as_str()
            )));
        }
    }
    if opts.deep_widths.is_some() || !opts.construction.is_lasso() {
        return Err(Error::InvalidSetting(
            "the 1-D dictionary builds its own network (two-layer, or deep narrow with a \
             dictionary depth): drop the hidden widths and the construction"
                .into(),
        ));
    }
    if opts.precision != Precision::F64 {
        return Err(Error::InvalidSetting(
            "the 1-D dictionary Lasso runs in f64 only: drop the f32 precision".into(),
        ));
    }
    if !matches!(
        opts.patterns,
        PatternSource::Auto { .. } | PatternSource::Exact
    ) {
        return Err(Error::InvalidSetting(
            "the 1-D dictionary builds its own columns (knots at the data points): do not pass \
             gates, masks, pattern sets or a sample size"
                .into(),
        ));
    }
    Ok(())
}

/// The bytes of the dictionary and its centered copy, against `limit`.
fn check_memory(n: usize, p: usize, limit: usize) -> Result<()> {
    let need = 2 * n * p * 8;
    if need > limit {
        return Err(Error::Memory(format!(
            "the 1-D dictionary of n = {n} points has {p} columns and needs {:.2} GiB as a dense \
             matrix (limit {:.2} GiB): use fewer points or raise --max-memory",
            need as f64 / (1u64 << 30) as f64,
            limit as f64 / (1u64 << 30) as f64
        )));
    }
    Ok(())
}

/// Coefficients of an interior-point solution below a small fraction of the largest (1e-3 down to
/// 1e-6) are set to zero, with the largest fraction that raises the objective by at most a tenth of
/// the tolerance (interior points are never exactly sparse).
fn sparsify(lasso: &mut InterceptLasso, z: Mat<f64>, lambda: f64, tol: f64) -> Mat<f64> {
    let top = (0..z.ncols()).map(|k| z[(0, k)].abs()).fold(0.0, f64::max);
    let before = lasso.objective(z.as_ref(), lambda);
    for threshold in [1e-3, 1e-4, 1e-5, 1e-6] {
        let cut = Mat::from_fn(1, z.ncols(), |_, k| {
            let v = z[(0, k)];
            if v.abs() <= threshold * top {
                0.0
            } else {
                v
            }
        });
        if lasso.objective(cut.as_ref(), lambda) <= before + 0.1 * tol * before.abs() {
            return cut;
        }
    }
    z
}

/// The objective (M47) of `z` and its dual bound (M49), in f64.
fn certify(lasso: &mut InterceptLasso, z: MatRef<'_, f64>, lambda: f64) -> (f64, f64) {
    let mut cache = lasso.new_cache();
    lasso.forward(z, &mut cache);
    let mut grad = Mat::zeros(1, z.ncols());
    lasso.gradient(&cache, grad.as_mut());
    let dual = lasso
        .dual_bound(&cache, grad.as_ref(), lambda)
        .unwrap_or(f64::NEG_INFINITY);
    (lasso.objective(z, lambda), dual)
}

/// Restarted FISTA on the centered Lasso (M49) `lasso` over the dictionary `a`, from `u0`; returns
/// the coefficients, status, iterations and the solver's dual bound. A dictionary much wider than
/// the data (P > 4n: the deep narrow ones) is solved over a working set of columns: the 4n (at
/// least 64) most correlated with the targets first, then each round adds the columns whose dual
/// constraint |A_cᵀr/n| ≤ λ the round's solution violates most, until none does; columns marked
/// `late` come in only when no other column violates its constraint (they make the program
/// degenerate without lowering its optimum). The certificate is always computed over the whole
/// dictionary.
fn solve_fista(
    lasso: &mut InterceptLasso,
    (a, late): (MatRef<'_, f64>, &[bool]),
    y: &[f64],
    u0: Mat<f64>,
    opts: &TrainOptions,
    (observer, stop, start): (&mut dyn Observe, &StopFlag, Instant),
) -> (Mat<f64>, crate::solver::Status, usize, f64) {
    let settings = super::fista_settings(opts);
    let (n, p) = (a.nrows(), a.ncols());
    let lambda = opts.lambda;
    let run = |problem: &mut InterceptLasso, u: Mat<f64>, observer: &mut dyn Observe| {
        let run = FistaRun::new(&settings, observer, stop, start);
        fista(problem, lambda, u, run)
    };
    let batch = (4 * n).max(64);
    if p <= batch {
        let out = run(lasso, u0, observer);
        return (
            out.u,
            out.status,
            out.iterations,
            out.dual.unwrap_or(f64::NEG_INFINITY),
        );
    }
    let correlations = |lasso: &mut InterceptLasso, z: MatRef<'_, f64>| {
        let mut cache = lasso.new_cache();
        lasso.forward(z, &mut cache);
        let mut grad = Mat::zeros(1, p);
        lasso.gradient(&cache, grad.as_mut());
        (0..p).map(|k| grad[(0, k)].abs()).collect::<Vec<f64>>()
    };
    let mut z = u0;
    let mut in_set = vec![false; p];
    let mut set: Vec<usize> = (0..p).filter(|&k| z[(0, k)] != 0.0).collect();
    set.iter().for_each(|&k| in_set[k] = true);
    let (mut iterations, mut status) = (0, crate::solver::Status::MaxIterations);
    let mut first = true;
    loop {
        let g = correlations(lasso, z.as_ref());
        let candidates = |late_ok: bool| -> Vec<usize> {
            (0..p)
                .filter(|&k| !in_set[k] && (late_ok || !late[k]))
                .filter(|&k| first || g[k] > lambda * (1.0 + 1e-9))
                .collect()
        };
        let mut out = candidates(false);
        if out.is_empty() && !first {
            out = candidates(true);
        }
        let out_of_time = opts
            .time_limit
            .is_some_and(|t| start.elapsed().as_secs_f64() >= t);
        if out.is_empty() || stop.is_set() || out_of_time {
            break;
        }
        out.sort_by(|&i, &j| g[j].total_cmp(&g[i]));
        let add = if first {
            batch.saturating_sub(set.len()).max(1)
        } else {
            batch
        };
        for &k in out.iter().take(add) {
            in_set[k] = true;
            set.push(k);
        }
        first = false;
        let sub_a = Mat::from_fn(n, set.len(), |i, c| a[(i, set[c])]);
        let mut sub = InterceptLasso::new(sub_a.as_ref(), y);
        let u = Mat::from_fn(1, set.len(), |_, c| z[(0, set[c])]);
        let result = run(&mut sub, u, observer);
        iterations += result.iterations;
        status = result.status;
        let mut w = result.u;
        if let Some(polished) = sub.polish(w.as_ref(), lambda) {
            let (o, d) = certify(&mut sub, polished.as_ref(), lambda);
            let (o0, d0) = certify(&mut sub, w.as_ref(), lambda);
            if o - d < o0 - d0 {
                w = polished;
            }
        }
        z = Mat::zeros(1, p);
        for (c, &k) in set.iter().enumerate() {
            z[(0, k)] = w[(0, c)];
        }
        lasso.forward_calls += sub.forward_calls;
        lasso.adjoint_calls += sub.adjoint_calls;
    }
    (z, status, iterations, f64::NEG_INFINITY)
}

/// Trains the network of `opts.formulation` on scalar inputs `x` (n × 1) and targets `y` by the
/// dictionary Lasso (M47); see [`TrainOptions::dictionary`].
pub fn train_dictionary(
    x: MatRef<'_, f64>,
    y: Vec<f64>,
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
) -> Result<Fit> {
    check_options(opts)?;
    let columns = Columns::new(x, opts)?;
    let (n, p) = (x.nrows(), columns.matrix().ncols());
    let start = Instant::now();
    let mut lasso = InterceptLasso::new(columns.matrix(), &y);
    let use_exact = opts.solver == SolverChoice::Clarabel;

    let (z, status, iterations, solver_dual) = if use_exact {
        let penalized = vec![true; p];
        let prog = L1Program {
            design: columns.matrix(),
            targets: &y,
            lambda: opts.lambda,
            penalized: &penalized,
            constraints: None,
            intercept: true,
        };
        let settings = ExactSettings {
            time_limit: opts.time_limit,
            ..ExactSettings::default()
        };
        let sol = solve_l1_exact(&prog, &settings)?;
        let z = Mat::from_fn(1, p, |_, k| sol.u[k]);
        let z = sparsify(&mut lasso, z, opts.lambda, opts.tol);
        let dual = lasso.dual_at(&sol.theta, opts.lambda);
        (z, sol.status, sol.iterations, dual)
    } else {
        let u0 = match &opts.warm_start {
            Some(w) if w.nrows() == 1 && w.ncols() == p => w.clone(),
            _ => Mat::zeros(1, p),
        };
        let late = columns.late();
        let run = (observer, stop, start);
        solve_fista(&mut lasso, (columns.matrix(), &late), &y, u0, opts, run)
    };
    // The f64 certificate (M49) of the returned coefficients, and of their polished version
    // (kept when its certified gap is smaller).
    let (mut z, (mut objective, mut dual)) = {
        let c = certify(&mut lasso, z.as_ref(), opts.lambda);
        (z, c)
    };
    if let Some(polished) = lasso.polish(z.as_ref(), opts.lambda) {
        let c = certify(&mut lasso, polished.as_ref(), opts.lambda);
        if c.0 - c.1 < objective - dual {
            (z, objective, dual) = (polished, c.0, c.1);
        }
    }
    let dual = dual.max(solver_dual.min(objective));
    let gap = (objective - dual).max(0.0);
    let intercept = lasso.intercept(z.as_ref());
    let coefficients: Vec<f64> = (0..p).map(|k| z[(0, k)]).collect();
    let network = columns.network(opts.formulation, &coefficients, intercept);
    let network_objective = network.objective(x, &y, Loss::Squared, opts.lambda)?;
    let info = Info {
        status: final_status(status, gap, objective, opts.tol, 0.0),
        objective,
        dual_objective: dual,
        gap,
        violation: 0.0,
        iterations,
        outer_iterations: 0,
        forward_calls: lasso.forward_calls,
        adjoint_calls: lasso.adjoint_calls,
        seconds: start.elapsed().as_secs_f64(),
    };
    let mut certificate = Certificate::new(
        info,
        CertificateFacts {
            opts,
            samples: n,
            network: &network,
            network_objective,
            n_patterns: p,
            exhaustive: true,
            lambda_max: lasso.lambda_max(),
            normalization: normalization(opts.formulation, opts.dictionary_depth),
            solver: if use_exact { "clarabel" } else { "fista" }.into(),
        },
    );
    certificate.depth = (opts.dictionary_depth > 2).then_some(opts.dictionary_depth);
    let patterns = PatternSet::from_columns(n, &columns.patterns(x), None, true)?;
    let (dictionary, chains) = match columns {
        Columns::Ramps(d) => (Some(d.atoms), None),
        Columns::Chains(d) => (None, Some(d.chains)),
    };
    Ok(Fit {
        patterns,
        weights: z,
        network,
        certificate,
        targets: y,
        dictionary,
        chains,
    })
}

/// λ_max of the dictionary program (M49) of the options' network and dictionary depth: the
/// constant fit is optimal iff λ ≥ ‖A_cᵀy_c‖_∞/n.
pub fn dictionary_lambda_max(x: MatRef<'_, f64>, y: &[f64], opts: &TrainOptions) -> Result<f64> {
    check_options(opts)?;
    let columns = Columns::new(x, opts)?;
    Ok(InterceptLasso::new(columns.matrix(), y).lambda_max())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::solver::{Silent, Status};

    fn data(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
        let mut r = Rng::new(seed);
        let x = Mat::from_fn(n, 1, |_, _| 4.0 * r.uniform() - 2.0);
        let y = (0..n)
            .map(|i| (2.0 * x[(i, 0)]).sin() + 0.5 + 0.2 * r.normal())
            .collect();
        (x, y)
    }

    #[test]
    fn fista_and_clarabel_agree_and_the_network_objective_is_the_optimum() {
        let (x, y) = data(15, 1);
        for kind in [
            Formulation::Relu,
            Formulation::LeakyRelu { slope: 0.2 },
            Formulation::Abs,
            Formulation::Threshold,
        ] {
            let mut objs = vec![];
            for solver in [SolverChoice::Fista, SolverChoice::Clarabel] {
                let opts = TrainOptions {
                    formulation: kind,
                    lambda: 1e-2,
                    dictionary: true,
                    solver,
                    tol: 1e-6,
                    max_iter: 200_000,
                    ..TrainOptions::default()
                };
                let fit =
                    train_dictionary(x.as_ref(), y.clone(), &opts, &mut Silent, &StopFlag::new())
                        .unwrap();
                let c = &fit.certificate;
                eprintln!(
                    "{kind:?} {solver:?}: {:?} obj {} rel gap {:.1e}",
                    c.info.status, c.info.objective, c.relative_gap
                );
                assert_eq!(c.info.status, Status::Converged, "{kind:?} {solver:?}");
                let o = c.info.objective;
                assert!((c.network_objective - o).abs() <= 1e-8 * o, "{kind:?}");
                objs.push(o);
            }
            assert!(
                (objs[0] - objs[1]).abs() <= 1e-6 * objs[1],
                "{kind:?}: {objs:?}"
            );
        }
    }

    #[test]
    fn bad_options_are_errors() {
        let (x, y) = data(5, 2);
        let base = TrainOptions {
            formulation: Formulation::Relu,
            dictionary: true,
            ..TrainOptions::default()
        };
        let cases = [
            TrainOptions {
                loss: Loss::Logistic,
                ..base.clone()
            },
            TrainOptions {
                solver: SolverChoice::Admm,
                ..base.clone()
            },
            TrainOptions {
                patterns: PatternSource::Sample { count: 3 },
                ..base.clone()
            },
            TrainOptions {
                precision: Precision::F32,
                ..base.clone()
            },
            TrainOptions {
                memory_limit: Some(10),
                ..base.clone()
            },
        ];
        for o in cases {
            let r = train_dictionary(x.as_ref(), y.clone(), &o, &mut Silent, &StopFlag::new());
            assert!(r.is_err());
        }
    }
}
