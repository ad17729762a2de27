//! Metrics and the printed/JSON summaries of a fit.

use convexnn::data::Dataset;
use convexnn::faer::Mat;
use convexnn::model::file::ModelFile;
use convexnn::model::Certificate;
use convexnn::program::Formulation;
use convexnn::solver::Status;
use convexnn::{Error, Result};
use serde_json::{json, Value};

/// Quality of predictions on one data set.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Rows evaluated.
    pub n: usize,
    /// Mean squared error of the raw outputs (regression) or None.
    pub mse: Option<f64>,
    /// Coefficient of determination (regression).
    pub r2: Option<f64>,
    /// Fraction of correct labels (classification, or regression on binary targets).
    pub accuracy: Option<f64>,
    /// Vector regression: each output's MSE and R² (`mse` is then the mean over all n·c entries
    /// and `r2` the mean of the outputs' R²).
    pub per_output: Option<PerOutput>,
}

/// Metrics of each output of a vector-regression model.
#[derive(Clone, Debug)]
pub struct PerOutput {
    /// The outputs' names.
    pub names: Vec<String>,
    /// Mean squared error of each output.
    pub mse: Vec<f64>,
    /// Coefficient of determination of each output (scikit-learn's convention for a constant
    /// target: 1 when it is predicted exactly, else 0).
    pub r2: Vec<f64>,
}

fn binary_labels(y: &[f64]) -> Option<[f64; 2]> {
    let mut vals: Vec<f64> = y.to_vec();
    vals.sort_by(f64::total_cmp);
    vals.dedup();
    (vals.len() == 2).then(|| [vals[0], vals[1]])
}

/// Evaluates `model` on raw inputs `x` with targets `y`.
pub fn evaluate(model: &ModelFile, x: &convexnn::faer::Mat<f64>, y: &[f64]) -> Result<Metrics> {
    let pred = model.predict(x)?;
    let n = y.len();
    let classifier = model.classes().is_some() || model.settings.loss.is_classification();
    let m = match model.settings.loss {
        _ if classifier => Metrics {
            n,
            mse: None,
            r2: None,
            accuracy: Some(pred.iter().zip(y).filter(|(p, t)| p == t).count() as f64 / n as f64),
            per_output: None,
        },
        _ => {
            let mse = pred
                .iter()
                .zip(y)
                .map(|(p, t)| (p - t).powi(2))
                .sum::<f64>()
                / n as f64;
            let mean = y.iter().sum::<f64>() / n as f64;
            let var = y.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / n as f64;
            let accuracy = binary_labels(y).map(|[a, b]| {
                let mid = 0.5 * (a + b);
                pred.iter()
                    .zip(y)
                    .filter(|(p, t)| (**p >= mid) == (**t >= mid))
                    .count() as f64
                    / n as f64
            });
            Metrics {
                n,
                mse: Some(mse),
                r2: (var > 0.0).then(|| 1.0 - mse / var),
                accuracy,
                per_output: None,
            }
        }
    };
    Ok(m)
}

/// Evaluates `model` on raw data: [`evaluate`] for one target, [`evaluate_outputs`] for a
/// vector-regression model or data with several target columns.
pub fn evaluate_data(model: &ModelFile, data: &Dataset) -> Result<Metrics> {
    match &data.targets {
        Some(t) => evaluate_outputs(model, &data.x, &t.values),
        None if model.is_vector_regression() => Err(Error::InvalidData(format!(
            "the model predicts {} outputs ({}) but the data has one target column",
            model.network.outputs,
            model.output_names().join(", ")
        ))),
        None => evaluate(model, &data.x, &data.y),
    }
}

/// Evaluates a vector-regression model on raw inputs `x` with targets `y` (n × c): the MSE over all
/// n·c entries and the R² averaged over the outputs (scikit-learn's `r2_score` with its uniform
/// average), with each output's values.
pub fn evaluate_outputs(model: &ModelFile, x: &Mat<f64>, y: &Mat<f64>) -> Result<Metrics> {
    let c = y.ncols();
    if !model.is_vector_regression() {
        let what = if model.classes().is_some() {
            "a class label"
        } else {
            "one value"
        };
        return Err(Error::InvalidData(format!(
            "the model predicts {what} per row but the data has {c} target columns"
        )));
    }
    if c != model.network.outputs {
        return Err(Error::InvalidData(format!(
            "the model predicts {} outputs ({}) but the data has {c} target columns",
            model.network.outputs,
            model.output_names().join(", ")
        )));
    }
    let pred = model.predict_outputs(x)?;
    let n = y.nrows();
    let mut mse = Vec::with_capacity(c);
    let mut r2 = Vec::with_capacity(c);
    for k in 0..c {
        let (p, t) = (pred.col_as_slice(k), y.col_as_slice(k));
        let sse: f64 = p.iter().zip(t).map(|(a, b)| (a - b).powi(2)).sum();
        let mean = t.iter().sum::<f64>() / n as f64;
        let sst: f64 = t.iter().map(|b| (b - mean).powi(2)).sum();
        mse.push(sse / n as f64);
        r2.push(match (sst > 0.0, sse > 0.0) {
            (true, _) => 1.0 - sse / sst,
            (false, false) => 1.0,
            (false, true) => 0.0,
        });
    }
    Ok(Metrics {
        n,
        mse: Some(mse.iter().sum::<f64>() / c as f64),
        r2: Some(r2.iter().sum::<f64>() / c as f64),
        accuracy: None,
        per_output: Some(PerOutput {
            names: model.output_names(),
            mse,
            r2,
        }),
    })
}

impl Metrics {
    /// As JSON; vector regression adds `outputs` (c), `mse_outputs` and `r2_outputs`.
    pub fn to_json(&self) -> Value {
        let mut j = json!({"n": self.n, "mse": self.mse, "r2": self.r2, "accuracy": self.accuracy});
        if let Some(p) = &self.per_output {
            j["outputs"] = json!(p.names.len());
            j["output_names"] = json!(p.names);
            j["mse_outputs"] = json!(p.mse);
            j["r2_outputs"] = json!(p.r2);
        }
        j
    }

    /// One line for people.
    pub fn line(&self) -> String {
        let mut parts = vec![format!("n = {}", self.n)];
        if let Some(p) = &self.per_output {
            parts.push(format!(
                "{} outputs: MSE {:.6} (mean over entries), R² {:.4} (mean over outputs; {})",
                p.names.len(),
                self.mse.unwrap_or(f64::NAN),
                self.r2.unwrap_or(f64::NAN),
                p.names
                    .iter()
                    .zip(&p.r2)
                    .map(|(name, r)| format!("{name} {r:.4}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            return parts.join(", ");
        }
        if let Some(a) = self.accuracy {
            parts.push(format!("accuracy {:.2}%", 100.0 * a));
        }
        if let Some(m) = self.mse {
            parts.push(format!("MSE {m:.6}"));
        }
        if let Some(r) = self.r2 {
            parts.push(format!("R² {r:.4}"));
        }
        parts.join(", ")
    }
}

/// The contract's JSON summary of a fit (keys fixed: objective, status, iterations, solve_seconds,
/// n_patterns, active_neurons, exhaustive, gap, lambda, normalization), plus more.
pub fn certificate_json(c: &Certificate) -> Value {
    let mut j = json!({
        "objective": c.info.objective,
        "status": c.info.status.as_str(),
        "iterations": c.info.iterations,
        "solve_seconds": c.info.seconds,
        "n_patterns": c.n_patterns,
        "active_neurons": c.active_neurons,
        "exhaustive": c.exhaustive,
        "gap": c.info.gap,
        "relative_gap": c.relative_gap,
        "dual_objective": c.info.dual_objective,
        "cone_violation": c.info.violation,
        "outer_iterations": c.info.outer_iterations,
        "forward_products": c.info.forward_calls,
        "adjoint_products": c.info.adjoint_calls,
        "lambda": c.lambda,
        "lambda_unnormalized": c.lambda_unnormalized,
        "lambda_max": c.lambda_max,
        "network_objective": c.network_objective,
        "solver": c.solver,
        "normalization": c.normalization,
        "kernel_weights": c.kernel_weights,
        "outputs": c.outputs,
    });
    // A heuristic certifies nothing: its gap, dual objective and relative gap are NaN, which
    // serde_json writes as null, and it says so in words.
    if let Some(h) = &c.heuristic {
        j["heuristic"] = json!(true);
        j["guarantee"] = json!(h.guarantee);
        j["method"] = json!(h.method);
        j["fit_residual"] = json!(h.fit_residual);
        j["residual_history"] = json!(h.residual_history);
        j["best_relaxation"] = json!(h.best_relaxation);
        j["width"] = json!(h.width);
        j["gamma"] = json!(h.gamma);
        j["init"] = json!(h.init);
    } else {
        j["heuristic"] = json!(false);
    }
    j
}

/// The largest learned kernel weights of an `mkl` fit (docs/programs.md (M42)–(M45)), one line,
/// or an empty string for other solvers.
fn kernel_text(c: &Certificate) -> String {
    let Some(k) = &c.kernel_weights else {
        return String::new();
    };
    let mut order: Vec<usize> = (0..k.weights.len()).collect();
    order.sort_by(|&a, &b| k.weights[b].total_cmp(&k.weights[a]));
    let top: Vec<String> = order
        .iter()
        .take(5)
        .map(|&i| format!("pattern {} {:.4}", k.patterns[i], k.weights[i]))
        .collect();
    let beta = k
        .beta
        .map_or("inf (zero network)".to_string(), |b| format!("{b:.4e}"));
    format!(
        "  kernel weights    {} nonzero, MKL beta {beta}; largest: {}\n",
        k.weights.len(),
        if top.is_empty() {
            "none".to_string()
        } else {
            top.join(", ")
        }
    )
}

/// For vector-output fits, the block norm, what its optimum means, and the network read out (one
/// line each), or an empty string.
fn outputs_text(c: &Certificate) -> String {
    let Some(o) = &c.outputs else {
        return String::new();
    };
    let classes = o.classes.as_ref().map_or(String::new(), |k| {
        let shown: Vec<String> = k.iter().take(10).map(|v| format!("{v}")).collect();
        format!(
            "; classes {}{}",
            shown.join(", "),
            if k.len() > 10 { ", ..." } else { "" }
        )
    });
    let diff = c.network_objective - c.info.objective;
    format!(
        "  outputs           {} ({} block norm: {}){classes}\n  convex vs network {:.10e} vs {:.10e} (difference {:.2e}{})\n",
        o.outputs,
        o.penalty.as_str(),
        o.meaning,
        c.info.objective,
        c.network_objective,
        diff,
        if o.penalty.reads_out_exactly() {
            ", the read-out is exact"
        } else {
            ": the relaxation's lower bound and the network's objective"
        }
    )
}

/// The network's name in a sentence: "ReLU", "leaky ReLU (slope 0.1)", "absolute-value", ….
pub fn network_name(f: Formulation) -> String {
    match f {
        Formulation::Relu => "ReLU".into(),
        Formulation::LeakyRelu { slope } => format!("leaky ReLU (slope {slope})"),
        Formulation::Abs => "absolute-value".into(),
        Formulation::Gated => "gated ReLU".into(),
        Formulation::Threshold => "threshold".into(),
        Formulation::Linear => "linear".into(),
    }
}

/// The human summary of a heuristic's result: what it reached, and that nothing is certified.
fn heuristic_text(c: &Certificate, h: &convexnn::model::HeuristicReport) -> String {
    format!(
        "  status            {} ({})\n  guarantee         NONE: {}; no duality gap exists for this \
         result\n  fit residual      {:.3e} (max |f(x) - y| on the training data)\n  network \
         objective {:.10e} (non-convex, with weight decay)\n  relaxations       {} (best: {}; {} \
         interior-point iterations)\n  solve time        {:.3} s (nuclear, width {}, gamma {}, init \
         {})\n  active neurons    {}\n  lambda            {} (papers' beta = n*lambda = {})\n  \
         normalization     {}\n",
        c.info.status,
        if c.info.status == Status::Converged {
            "an exact fit was found"
        } else {
            "no exact fit found"
        },
        h.guarantee,
        h.fit_residual,
        c.network_objective,
        c.info.outer_iterations,
        h.best_relaxation,
        c.info.iterations,
        c.info.seconds,
        h.width,
        h.gamma,
        h.init,
        c.active_neurons,
        c.lambda,
        c.lambda_unnormalized,
        c.normalization
    )
}

/// The human summary of a certificate.
pub fn certificate_text(c: &Certificate) -> String {
    if let Some(h) = &c.heuristic {
        return heuristic_text(c, h);
    }
    let optimality = match (c.formulation, c.exhaustive) {
        _ if c.depth.is_some() => format!(
            "every chain of the depth-{0} dictionary was used: the network is globally optimal \
             among deep narrow ReLU networks of depth {0} (sums of width-one ReLU chains) of any \
             width (up to the gap)",
            c.depth.unwrap_or(0)
        ),
        (Formulation::Threshold, true) if c.solver.starts_with("closed_form") => {
            "the random lift has rank n, so every 0/1 pattern is realizable on it: the closed form \
             of the complete-arrangement program is globally optimal among threshold networks on \
             the lifted features (up to the gap)"
                .into()
        }
        (f, true) if f.is_cone_program() => format!(
            "every activation pattern of the data was used: the network is globally optimal among \
             {} networks of any width (up to the gap)",
            network_name(f)
        ),
        (f, false) if f.is_cone_program() => format!(
            "sampled patterns: optimal for the convex program over these patterns, which is an upper \
             bound on the best {} network",
            network_name(f)
        ),
        (Formulation::Threshold, true) => {
            "every arrangement pattern of the data was used: the network is globally optimal among \
             threshold networks of any width (up to the gap)"
                .into()
        }
        (Formulation::Threshold, false) => {
            "sampled arrangement columns: optimal for the Lasso over these columns, which is an \
             upper bound on the best threshold network"
                .into()
        }
        (Formulation::Linear, _) => {
            "the convex program of the linear network is exact: globally optimal among linear \
             networks of this architecture of any width (up to the gap)"
                .into()
        }
        _ if c.outputs.is_some() => "optimal for the vector-output program over these gates (up to \
             the gap); see outputs for what it means for the network"
            .into(),
        _ => "globally optimal among gated ReLU networks with these gates (up to the gap)".into(),
    };
    let optimality = if c.info.status == Status::Converged {
        optimality.to_string()
    } else {
        format!(
            "NOT certified: the solver stopped with status {} and relative gap {:.2e}, so the claim \
             \"{optimality}\" holds only up to that gap",
            c.info.status, c.relative_gap
        )
    };
    let viol = if c.info.violation > 0.0 {
        format!(
            "  cone violation (solver iterate) {:.2e}\n",
            c.info.violation
        )
    } else {
        String::new()
    };
    format!(
        "  status            {}\n  objective         {:.10e}\n  duality gap       {:.3e} (relative {:.2e})\n{viol}  \
         network objective {:.10e} (non-convex, with weight decay)\n  iterations        {} ({})\n  \
         solve time        {:.3} s ({})\n  patterns          {}{}\n  active neurons    {}\n  lambda            {} (papers' beta = n*lambda = {}; lambda_max = {:.4e})\n  \
         optimality        {}\n  normalization     {}\n{}{}",
        c.info.status,
        c.info.objective,
        c.info.gap,
        c.relative_gap,
        c.network_objective,
        c.info.iterations,
        if c.solver == "clarabel" || c.solver == "interior" {
            "interior-point iterations".to_string()
        } else {
            format!("{} forward + {} adjoint products", c.info.forward_calls, c.info.adjoint_calls)
        },
        c.info.seconds,
        c.solver,
        c.n_patterns,
        match (c.formulation, c.exhaustive) {
            (Formulation::Linear, _) => " (a linear network has no activation patterns)",
            (_, true) => " (complete arrangement)",
            (_, false) => " (sampled)",
        },
        c.active_neurons,
        c.lambda,
        c.lambda_unnormalized,
        c.lambda_max,
        optimality,
        c.normalization,
        kernel_text(c),
        outputs_text(c)
    )
}
