//! Training networks with c > 1 outputs (docs/programs.md §3e): vector regression, and multi-class
//! classification by the softmax cross-entropy or the squared loss on one-hot targets. The program
//! is [`crate::program::outputs`] over the gated patterns, solved by FISTA (auto) or the
//! interior-point backend (clarabel), certified in f64, and read out into one network whose hidden
//! neurons are shared by the outputs.

use std::time::Instant;

use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

use super::{
    build_patterns, check_memory, final_status, operator, validate, Certificate, CertificateFacts,
    Fit, Precision, SolverChoice, TrainOptions, SINGLE_PRECISION_TOL,
};
use crate::error::{Error, Result};
use crate::features::PatternSet;
use crate::network::Network;
use crate::program::outputs::{
    classes_of, normalization, one_hot, read_out, OutputPenalty, OutputsProblem,
};
use crate::program::{Formulation, Loss};
use crate::real::Real;
use crate::solver::exact_outputs::solve_exact_outputs;
use crate::solver::fista::{fista, FistaRun, Smooth};
use crate::solver::{Info, Observe, Status, StopFlag};

/// The most classes a classification target may have (beyond this the labels are almost surely a
/// real-valued column given by mistake).
pub const MAX_CLASSES: usize = 1000;

/// What the certificate says about a vector-output fit.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OutputsReport {
    /// Number of outputs c.
    pub outputs: usize,
    /// The block norm of the program.
    pub penalty: OutputPenalty,
    /// What the program's optimum is for the network with shared hidden neurons.
    pub meaning: String,
    /// The labels of the outputs, for classifiers (softmax, or the squared loss on one-hot targets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<f64>>,
}

/// Trains a classifier on `labels` (any c ≥ 2 distinct values): the softmax cross-entropy when
/// `opts.loss` is softmax, else the squared loss on the one-hot targets. The outputs are the
/// sorted distinct labels ([`OutputsReport::classes`]).
pub fn train_classes(
    x: MatRef<'_, f64>,
    labels: &[f64],
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
) -> Result<Fit> {
    if let Some(j) = labels.iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidData(format!(
            "label {j} is {}: class labels must be finite numbers",
            labels[j]
        )));
    }
    let classes = classes_of(labels);
    if classes.len() < 2 {
        return Err(Error::InvalidData(format!(
            "classification needs at least two classes; the labels have {}",
            classes.len()
        )));
    }
    if classes.len() > MAX_CLASSES {
        return Err(Error::InvalidData(format!(
            "the labels have {} distinct values (at most {MAX_CLASSES} classes): is the target \
             column real-valued? Use the squared loss for regression",
            classes.len()
        )));
    }
    let y = one_hot(labels, &classes);
    let c = classes.len();
    let ym = Mat::from_fn(labels.len(), c, |j, k| y[k * labels.len() + j]);
    let opts = TrainOptions {
        loss: if opts.loss == Loss::Softmax {
            Loss::Softmax
        } else {
            Loss::Squared
        },
        ..opts.clone()
    };
    let mut fit = train_outputs(x, ym.as_ref(), &opts, observer, stop)?;
    if let Some(report) = fit.certificate.outputs.as_mut() {
        report.classes = Some(classes);
    }
    Ok(fit)
}

/// The checks of a vector-output run; returns the targets n × c column-major.
fn validate_outputs(
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    opts: &TrainOptions,
) -> Result<Vec<f64>> {
    let c = y.ncols();
    if c == 0 {
        return Err(Error::InvalidData("the targets have no columns".into()));
    }
    let flat: Vec<f64> = (0..c)
        .flat_map(|k| (0..y.nrows()).map(move |j| (j, k)))
        .map(|(j, k)| y[(j, k)])
        .collect();
    if let Some(q) = flat.iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidData(format!(
            "target ({}, {}) is {}: targets must be finite",
            q % y.nrows().max(1),
            q / y.nrows().max(1),
            flat[q]
        )));
    }
    // The shared checks (shapes, λ, tolerance, solver against program) on the first output.
    let first = TrainOptions {
        loss: Loss::Squared,
        ..opts.clone()
    };
    validate(x, &flat[..y.nrows()], &first)?;
    if opts.formulation.is_cone_program() {
        if opts.outputs != OutputPenalty::Separate || opts.loss != Loss::Squared {
            return Err(Error::InvalidSetting(format!(
                "vector outputs of {} networks take the separate block norm with the squared loss \
                 (c programs sharing the patterns, exact for networks whose neurons each feed one \
                 output); the group and nuclear block norms and the softmax loss are implemented \
                 for gated networks (the exact shared-neuron {} program is copositive)",
                opts.formulation.as_str(),
                opts.formulation.as_str()
            )));
        }
    } else if opts.formulation != Formulation::Gated {
        return Err(Error::InvalidSetting(format!(
            "vector outputs are implemented for the gated model (its exact shared-neuron program \
             is the nuclear-norm one) and, with the separate block norm, for relu, leaky_relu and \
             abs; the {} model takes one output",
            opts.formulation.as_str()
        )));
    }
    if !matches!(opts.loss, Loss::Squared | Loss::Softmax) {
        return Err(Error::InvalidSetting(format!(
            "vector outputs take the squared or softmax loss, not {}",
            opts.loss.as_str()
        )));
    }
    if opts.loss == Loss::Softmax && c < 2 {
        return Err(Error::InvalidData(
            "the softmax loss needs at least two outputs (classes)".into(),
        ));
    }
    if opts.dictionary
        || opts.deep_widths.is_some()
        || opts.convolution.is_some()
        || !opts.construction.is_lasso()
    {
        return Err(Error::InvalidSetting(
            "vector outputs are implemented for fully connected two-layer gated networks (not the \
             1-D dictionary, deep, convolutional or lifted constructions)"
                .into(),
        ));
    }
    if !matches!(
        opts.solver,
        SolverChoice::Auto | SolverChoice::Fista | SolverChoice::Clarabel
    ) {
        return Err(Error::InvalidSetting(format!(
            "vector outputs are solved by fista (auto) or clarabel, not {}",
            format!("{:?}", opts.solver).to_lowercase()
        )));
    }
    Ok(flat)
}

/// Trains a network with c = `y.ncols()` outputs (targets n × c; one-hot rows for the softmax loss)
/// by the vector-output program with the block norm [`TrainOptions::outputs`].
pub fn train_outputs(
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
) -> Result<Fit> {
    if opts.formulation.is_cone_program() {
        return train_separate_cone(x, y, opts, observer, stop);
    }
    let targets = validate_outputs(x, y, opts)?;
    let c = y.ncols();
    let patterns = build_patterns(x, opts)?;
    check_memory(x.nrows(), x.ncols() * c, patterns.len(), opts)?;
    let start = Instant::now();
    let (weights, mut info, solver) = match opts.solver {
        SolverChoice::Clarabel => {
            let (w, info) = solve_clarabel(x, &targets, c, &patterns, opts)?;
            (w, info, "clarabel")
        }
        _ => {
            let (w, info) = solve_fista(x, &targets, c, &patterns, opts, observer, stop, start);
            (w, info, "fista")
        }
    };
    info.seconds = start.elapsed().as_secs_f64();
    let (hidden, output, pattern) = read_out(weights.as_ref(), x.ncols(), c, opts.outputs);
    let gates = patterns.gates().map(|g| {
        pattern
            .iter()
            .map(|&i| (0..g.nrows()).map(|a| g[(a, i)]).collect())
            .collect()
    });
    let network = Network {
        outputs: c,
        ..Network::plain(Formulation::Gated, hidden, output, gates)
    };
    let network_objective = match network.predict(x) {
        Ok(_) => network.objective(x, &targets, opts.loss, opts.lambda)?,
        Err(_) => f64::NAN,
    };
    let lambda_max = problem::<f64>(x, &targets, c, &patterns, opts).lambda_max();
    // The formulation is the options' one, gated (checked by `validate_outputs`).
    let certificate = outputs_certificate(
        info,
        CertificateFacts {
            opts,
            samples: x.nrows(),
            network: &network,
            network_objective,
            n_patterns: patterns.len(),
            exhaustive: patterns.is_exhaustive(),
            lambda_max,
            normalization: normalization(opts.loss, opts.outputs),
            solver: solver.into(),
        },
        c,
        opts.outputs,
    );
    Ok(Fit {
        patterns,
        weights,
        network,
        certificate,
        targets,
        dictionary: None,
        chains: None,
    })
}

/// Vector outputs of a ReLU (leaky ReLU, |z|) network with the separate block norm and the squared
/// loss (docs/programs.md (M53b)): the program (1/(2nc))‖Ŷ − Y‖² + λΣ_iΣ_k(‖v_ik‖ + ‖w_ik‖) over
/// shared patterns splits into c single-output programs, (1/c)Σ_k [(1/(2n))‖ŷ_k − y_k‖² +
/// cλΣ_i(‖v_ik‖ + ‖w_ik‖)], each the core program (M6) at λ_k = cλ over the same patterns (same
/// seed). Its optimum, gap and dual bound are (1/c) times the sums of theirs, and the network is the
/// union of their networks, each neuron weighting only its own output. Exact for networks whose
/// neurons each feed one output. Weights: (d·c) × 2P, rows k·d .. (k+1)·d = output k's [V | W].
fn train_separate_cone(
    x: MatRef<'_, f64>,
    y: MatRef<'_, f64>,
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
) -> Result<Fit> {
    let targets = validate_outputs(x, y, opts)?;
    let (n, c, d) = (x.nrows(), y.ncols(), x.ncols());
    let start = Instant::now();
    let single = TrainOptions {
        lambda: opts.lambda * c as f64,
        ..opts.clone()
    };
    let mut fits = Vec::with_capacity(c);
    for k in 0..c {
        let fit = super::train(x, &targets[k * n..(k + 1) * n], &single, observer, stop)?;
        fits.push(fit);
        if stop.is_set() {
            break;
        }
    }
    if fits.len() < c {
        return Err(Error::InvalidSetting(format!(
            "interrupted after {} of {c} outputs",
            fits.len()
        )));
    }
    let scale = 1.0 / c as f64;
    let (mut hidden, mut output) = (Vec::new(), Vec::new());
    let mut info = Info {
        status: Status::Converged,
        objective: 0.0,
        dual_objective: 0.0,
        gap: 0.0,
        violation: 0.0,
        iterations: 0,
        outer_iterations: 0,
        forward_calls: 0,
        adjoint_calls: 0,
        seconds: 0.0,
    };
    let mut lambda_max: f64 = 0.0;
    for (k, fit) in fits.iter().enumerate() {
        let i = &fit.certificate.info;
        info.objective += scale * i.objective;
        info.dual_objective += scale * i.dual_objective;
        info.gap += scale * i.gap;
        info.violation = info.violation.max(i.violation);
        info.iterations += i.iterations;
        info.outer_iterations += i.outer_iterations;
        info.forward_calls += i.forward_calls;
        info.adjoint_calls += i.adjoint_calls;
        if i.status != Status::Converged {
            info.status = i.status;
        }
        lambda_max = lambda_max.max(scale * fit.certificate.lambda_max);
        for (u, a) in fit.network.hidden.iter().zip(&fit.network.output) {
            hidden.push(u.clone());
            output.extend((0..c).map(|o| if o == k { *a } else { 0.0 }));
        }
    }
    info.seconds = start.elapsed().as_secs_f64();
    let network = Network {
        outputs: c,
        ..Network::plain(opts.formulation, hidden, output, None)
    };
    let network_objective = network.objective(x, &targets, opts.loss, opts.lambda)?;
    let first = &fits[0];
    let cols = first.weights.ncols();
    if fits
        .iter()
        .any(|f| f.weights.nrows() != d || f.weights.ncols() != cols)
    {
        return Err(Error::InvalidData(
            "the outputs' programs ended with different pattern sets; train the outputs one by one"
                .into(),
        ));
    }
    let weights = Mat::from_fn(d * c, cols, |r, col| fits[r / d].weights[(r % d, col)]);
    let certificate = outputs_certificate(
        info,
        CertificateFacts {
            opts,
            samples: n,
            network: &network,
            network_objective,
            n_patterns: first.certificate.n_patterns,
            exhaustive: first.certificate.exhaustive,
            lambda_max,
            normalization: normalization(opts.loss, OutputPenalty::Separate),
            solver: first.certificate.solver.clone(),
        },
        c,
        OutputPenalty::Separate,
    );
    Ok(Fit {
        patterns: first.patterns.clone(),
        weights,
        network,
        certificate,
        targets,
        dictionary: None,
        chains: None,
    })
}

/// The certificate of a fit with c outputs and the block norm `penalty`.
fn outputs_certificate(
    info: Info,
    facts: CertificateFacts<'_>,
    c: usize,
    penalty: OutputPenalty,
) -> Certificate {
    Certificate {
        outputs: Some(OutputsReport {
            outputs: c,
            penalty,
            meaning: penalty.meaning().into(),
            classes: None,
        }),
        ..Certificate::new(info, facts)
    }
}

fn problem<T: Real>(
    x: MatRef<'_, f64>,
    y: &[f64],
    c: usize,
    patterns: &PatternSet,
    opts: &TrainOptions,
) -> OutputsProblem<T> {
    OutputsProblem::new(
        operator::<T>(x, patterns.clone(), opts),
        y,
        c,
        opts.loss,
        opts.outputs,
    )
}

/// The f64 objective and dual bound of weights (d·c) × P.
fn certify(
    x: MatRef<'_, f64>,
    y: &[f64],
    c: usize,
    patterns: &PatternSet,
    opts: &TrainOptions,
    w: MatRef<'_, f64>,
) -> (f64, f64) {
    problem::<f64>(x, y, c, patterns, opts).certify(w, opts.lambda)
}

/// FISTA in the working precision (f32: single precision to a relative gap of 1e-4, then f64 from
/// there), certified in f64.
#[allow(clippy::too_many_arguments)]
fn solve_fista(
    x: MatRef<'_, f64>,
    y: &[f64],
    c: usize,
    patterns: &PatternSet,
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> (Mat<f64>, Info) {
    let rows = x.ncols() * c;
    let mut w = match &opts.warm_start {
        Some(w) if w.nrows() == rows && w.ncols() == patterns.len() => w.clone(),
        _ => Mat::zeros(rows, patterns.len()),
    };
    let mut total = Info {
        status: Status::MaxIterations,
        objective: f64::NAN,
        dual_objective: f64::NEG_INFINITY,
        gap: f64::INFINITY,
        violation: 0.0,
        iterations: 0,
        outer_iterations: 0,
        forward_calls: 0,
        adjoint_calls: 0,
        seconds: 0.0,
    };
    if opts.precision == Precision::F32 {
        let single = TrainOptions {
            tol: opts.tol.max(SINGLE_PRECISION_TOL),
            ..opts.clone()
        };
        let stage = run_fista::<f32>(x, y, c, patterns, &single, &w, observer, stop, start);
        w = stage.0;
        add_stage(&mut total, &stage.1);
    }
    let (objective, dual) = certify(x, y, c, patterns, opts, w.as_ref());
    let finished = (objective - dual) <= opts.tol * objective.abs()
        || matches!(
            total.status,
            Status::Interrupted | Status::TimeLimit | Status::NumericalError
        )
        || total.iterations >= opts.max_iter;
    if opts.precision == Precision::F64 || !finished {
        let double = TrainOptions {
            max_iter: opts.max_iter - total.iterations,
            ..opts.clone()
        };
        let stage = run_fista::<f64>(x, y, c, patterns, &double, &w, observer, stop, start);
        w = stage.0;
        add_stage(&mut total, &stage.1);
    }
    let (objective, dual) = certify(x, y, c, patterns, opts, w.as_ref());
    let gap = (objective - dual).max(0.0);
    total.status = final_status(total.status, gap, objective, opts.tol, 0.0);
    total.objective = objective;
    total.dual_objective = dual;
    total.gap = gap;
    (w, total)
}

fn add_stage(total: &mut Info, stage: &Info) {
    total.status = stage.status;
    total.iterations += stage.iterations;
    total.forward_calls += stage.forward_calls;
    total.adjoint_calls += stage.adjoint_calls;
}

#[allow(clippy::too_many_arguments)]
fn run_fista<T: Real>(
    x: MatRef<'_, f64>,
    y: &[f64],
    c: usize,
    patterns: &PatternSet,
    opts: &TrainOptions,
    w0: &Mat<f64>,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> (Mat<f64>, Info) {
    let mut prob = problem::<T>(x, y, c, patterns, opts);
    let settings = super::fista_settings(opts);
    let run = FistaRun::new(&settings, observer, stop, start);
    let u0 = Mat::from_fn(w0.nrows(), w0.ncols(), |a, b| T::lit(w0[(a, b)]));
    let out = fista(&mut prob, opts.lambda, u0, run);
    let w = Mat::from_fn(out.u.nrows(), out.u.ncols(), |a, b| out.u[(a, b)].as_f64());
    let info = Info {
        status: out.status,
        objective: out.objective,
        dual_objective: out.dual.unwrap_or(f64::NEG_INFINITY),
        gap: 0.0,
        violation: 0.0,
        iterations: out.iterations,
        outer_iterations: 0,
        forward_calls: prob.op.forward_calls,
        adjoint_calls: prob.op.adjoint_calls,
        seconds: 0.0,
    };
    (w, info)
}

/// The interior-point solve: small groups (norm below a small fraction of the largest) are set to
/// zero when that costs less than a tenth of the tolerance, then the solution is certified in f64.
fn solve_clarabel(
    x: MatRef<'_, f64>,
    y: &[f64],
    c: usize,
    patterns: &PatternSet,
    opts: &TrainOptions,
) -> Result<(Mat<f64>, Info)> {
    let sol = solve_exact_outputs(
        x,
        y,
        c,
        patterns,
        opts.loss,
        opts.outputs,
        opts.lambda,
        1e-10,
        opts.time_limit,
    )?;
    let mut w = sol.weights;
    let (mut objective, mut dual) = certify(x, y, c, patterns, opts, w.as_ref());
    let norms: Vec<f64> = (0..w.ncols())
        .map(|i| w.col_as_slice(i).iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    let top = norms.iter().cloned().fold(0.0, f64::max);
    for threshold in [1e-3, 1e-4, 1e-5, 1e-6] {
        let mut pruned = w.clone();
        for (i, &nrm) in norms.iter().enumerate() {
            if nrm <= threshold * top {
                pruned.col_as_slice_mut(i).fill(0.0);
            }
        }
        let (o, d) = certify(x, y, c, patterns, opts, pruned.as_ref());
        if o <= objective + 0.1 * opts.tol * objective.abs() {
            w = pruned;
            objective = o;
            dual = dual.max(d);
            break;
        }
    }
    if sol.accurate {
        dual = dual.max(sol.dual_objective.min(objective));
    }
    let gap = (objective - dual).max(0.0);
    let status = if sol.timed_out {
        Status::TimeLimit
    } else if gap <= opts.tol * objective.abs().max(1e-12) {
        Status::Converged
    } else {
        Status::ReducedAccuracy
    };
    Ok((
        w,
        Info {
            status,
            objective,
            dual_objective: dual,
            gap,
            violation: 0.0,
            iterations: sol.iterations,
            outer_iterations: 0,
            forward_calls: 0,
            adjoint_calls: 0,
            seconds: sol.seconds,
        },
    ))
}
