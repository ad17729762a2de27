//! Training a linear network (identity activation) through its convex program (docs/programs.md
//! §3f): build the dense matrix of the form that applies (fully connected, the linear CNN (M35) or
//! the circular CNN (M36)), solve it by restarted FISTA or the interior-point backend, certify the
//! gap in f64, and read the network out of the filter-by-position matrix Z by its SVD.

use std::time::Instant;

use faer::{Mat, MatRef};

use super::{
    final_status, Certificate, CertificateFacts, Fit, PatternSource, Precision, SolverChoice,
    TrainOptions,
};
use crate::error::{Error, Result};
use crate::features::PatternSet;
use crate::network::Network;
use crate::program::linear::{LinearFeatures, LinearProblem};
use crate::program::Loss;
use crate::solver::exact_linear::solve_linear_exact;
use crate::solver::fista::{fista, FistaRun, Smooth};
use crate::solver::{Info, Observe, Status, StopFlag};

/// An error unless the options describe a linear fit this module can do.
fn check_options(opts: &TrainOptions) -> Result<()> {
    if !matches!(opts.loss, Loss::Squared | Loss::Logistic) {
        return Err(Error::InvalidSetting(format!(
            "linear networks are trained with the squared or logistic loss, not {}",
            opts.loss.as_str()
        )));
    }
    match opts.solver {
        SolverChoice::Auto | SolverChoice::Fista => {}
        SolverChoice::Clarabel if opts.loss == Loss::Squared => {}
        SolverChoice::Clarabel => {
            return Err(Error::InvalidSetting(
                "the interior-point backend solves the linear programs with the squared loss: \
                 use --solver fista (or auto) for the logistic loss"
                    .into(),
            ))
        }
        s => {
            return Err(Error::InvalidSetting(
                format!(
                    "linear networks are solved by fista or clarabel (auto is fista), not {s:?}"
                )
                .to_lowercase(),
            ))
        }
    }
    if opts.precision != Precision::F64 {
        return Err(Error::InvalidSetting(
            "the linear programs run in f64 only: drop the f32 precision".into(),
        ));
    }
    if opts.deep_widths.is_some() || !opts.construction.is_lasso() || opts.dictionary {
        return Err(Error::InvalidSetting(
            "linear networks are two-layer networks trained by their own program: drop the \
             hidden widths, the construction and the 1-D dictionary"
                .into(),
        ));
    }
    if !matches!(
        opts.patterns,
        PatternSource::Auto { .. } | PatternSource::Exact
    ) {
        return Err(Error::InvalidSetting(
            "a linear network has no activation patterns: do not pass gates, masks, pattern sets \
             or a sample size"
                .into(),
        ));
    }
    Ok(())
}

/// The program's features, after checking that they fit in the memory limit.
fn features(x: MatRef<'_, f64>, opts: &TrainOptions) -> Result<LinearFeatures> {
    let columns = match &opts.convolution {
        Some(c) if c.is_cyclic_shifts() => c.input_dim(),
        Some(c) => c.patch_count() * c.patch_dim(),
        None => x.ncols(),
    };
    // The dense matrix, and for a convolution the stacked patches built on the way.
    let need = x.nrows().saturating_mul(columns).saturating_mul(16);
    let limit = opts
        .memory_limit
        .unwrap_or_else(|| super::available_memory() / 10 * 8);
    if need > limit {
        return Err(Error::Memory(format!(
            "the linear program of {} samples has {columns} columns and needs about {:.2} GiB \
             (limit {:.2} GiB): use fewer samples, a larger stride or a smaller filter, or raise \
             --max-memory",
            x.nrows(),
            need as f64 / (1u64 << 30) as f64,
            limit as f64 / (1u64 << 30) as f64
        )));
    }
    LinearFeatures::new(x, opts.convolution.as_ref())
}

/// Interior points are never exactly low-rank or group-sparse: shrink U by the penalty's prox at
/// τ = 1e-3 down to 1e-7 of its largest group's dual norm scale, keeping the largest τ that raises
/// the objective by at most a tenth of the tolerance.
fn sparsify(prob: &mut LinearProblem, u: Mat<f64>, lambda: f64, tol: f64) -> Mat<f64> {
    let penalty = prob.penalty();
    let top = (0..u.ncols())
        .map(|g| penalty.group_value(u.col_as_slice(g)))
        .fold(0.0, f64::max);
    let before = prob.certify(u.as_ref(), lambda).0;
    for fraction in [1e-3, 1e-4, 1e-5, 1e-6, 1e-7] {
        let mut cut = u.clone();
        penalty.prox(cut.as_mut(), fraction * top);
        if prob.certify(cut.as_ref(), lambda).0 <= before + 0.1 * tol * before.abs() {
            return cut;
        }
    }
    u
}

/// Trains the linear network of `opts` (fully connected, or convolutional with
/// `opts.convolution`) on `x` and targets `y` (±1 labels for the logistic loss).
pub fn train_linear(
    x: MatRef<'_, f64>,
    y: Vec<f64>,
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
) -> Result<Fit> {
    check_options(opts)?;
    let n = x.nrows();
    let feats = features(x, opts)?;
    let (rows, groups, form) = (feats.rows, feats.groups, feats.form);
    let start = Instant::now();
    let mut prob = LinearProblem::new(feats, &y, opts.loss);
    let use_exact = opts.solver == SolverChoice::Clarabel;
    // The interior point's solution, when asked for, is the start of FISTA, which then only
    // polishes it to an exactly sparse, certified point (interior points are never exactly low-rank).
    let (u0, exact) = if use_exact {
        let f = &prob.features;
        let sol = solve_linear_exact(
            f.a.as_ref(),
            &y,
            rows,
            groups,
            f.penalty,
            opts.lambda,
            (opts.tol * 1e-2).max(1e-10),
            opts.time_limit,
        )?;
        let u = sparsify(&mut prob, sol.u, opts.lambda, opts.tol);
        (u, Some((sol.iterations, sol.accurate, sol.timed_out)))
    } else {
        let u0 = match &opts.warm_start {
            Some(w) if w.nrows() == rows && w.ncols() == groups => w.clone(),
            _ => Mat::zeros(rows, groups),
        };
        (u0, None)
    };
    let settings = super::fista_settings(opts);
    let run = FistaRun::new(&settings, observer, stop, start);
    let out = fista(&mut prob, opts.lambda, u0, run);
    let (u, status, iterations) = match exact {
        Some((its, accurate, timed_out)) => {
            let status = match (accurate || out.status == Status::Converged, timed_out) {
                (true, _) => Status::Converged,
                (false, true) => Status::TimeLimit,
                (false, false) => Status::ReducedAccuracy,
            };
            (out.u, status, its)
        }
        None => (out.u, out.status, out.iterations),
    };
    let (objective, dual) = prob.certify(u.as_ref(), opts.lambda);
    let gap = (objective - dual).max(0.0);
    let z = prob.features.weights(u.as_ref());
    let network = Network::from_linear(z.as_ref(), opts.convolution);
    let network_objective = network.objective(x, &y, opts.loss, opts.lambda)?;
    let info = Info {
        status: final_status(status, gap, objective, opts.tol, 0.0),
        objective,
        dual_objective: dual,
        gap,
        violation: 0.0,
        iterations,
        outer_iterations: 0,
        forward_calls: prob.forward_calls,
        adjoint_calls: prob.adjoint_calls,
        seconds: start.elapsed().as_secs_f64(),
    };
    let certificate = Certificate::new(
        info,
        CertificateFacts {
            opts,
            samples: n,
            network: &network,
            network_objective,
            n_patterns: 0,
            exhaustive: true,
            lambda_max: prob.lambda_max(),
            normalization: form.normalization(opts.loss),
            solver: if use_exact { "clarabel" } else { "fista" }.into(),
        },
    );
    Ok(Fit {
        patterns: PatternSet::from_columns(n, &[vec![true; n]], None, true)?,
        weights: z,
        network,
        certificate,
        targets: y,
        dictionary: None,
        chains: None,
    })
}

/// λ_max of a linear network's program: the zero network is optimal iff λ ≥ R°(∇f(0)).
pub fn linear_lambda_max(x: MatRef<'_, f64>, y: &[f64], opts: &TrainOptions) -> Result<f64> {
    let feats = features(x, opts)?;
    Ok(LinearProblem::new(feats, y, opts.loss).lambda_max())
}
