//! Augmented Lagrangian for the cone-constrained ReLU program (docs/programs.md §4b, (M20), (M21)).
//!
//! Outer loop: minimize the augmented Lagrangian (M20) in (V, W) by warm-started FISTA, then update the
//! multipliers (M21). A first phase tunes the penalty δ without updating the multipliers. After every
//! outer step the iterate is made feasible by shifting along interior gates (M10), which leaves the
//! predictions unchanged, and certified with the Lagrangian dual (M9) at the current multipliers. The
//! solver stops when the relative gap of the *feasible* point is below `tol` and the iterate's own
//! cone violation is below `constraint_tol` (or, with no gates to restore feasibility, when the
//! violation alone is below it).

use std::time::Instant;

use faer::{Mat, MatRef};

use super::fista::{fista, FistaRun, FistaSettings};
use super::{IterRecord, Observe, Status, StopFlag};
use crate::program::relu::{best_feasible, certificate, ReluAlProblem};
use crate::real::Real;

/// Accelerated projected-gradient steps that improve the multipliers of each certificate.
const POLISH: usize = 20;

/// Settings of [`augmented_lagrangian`], with documented defaults.
#[derive(Clone, Debug)]
pub struct AlSettings {
    /// Relative duality gap at which to stop. Default 1e-6.
    pub tol: f64,
    /// Largest allowed cone violation max_{i,j}(−X̃_i v_i)_j₊ of the iterate, relative to max |y|.
    /// Default 1e-6.
    pub constraint_tol: f64,
    /// Outer iteration cap. Default 500.
    pub max_outer: usize,
    /// Cap on inner (FISTA) iterations over the whole solve. Default 20 000.
    pub max_inner_total: usize,
    /// Cap on inner iterations of one outer step. Default 500.
    pub max_inner: usize,
    /// Initial penalty δ; `None` uses 1000/n scaled by the data (scnn's default, docs/programs.md §4b).
    pub delta0: Option<f64>,
    /// Wall-clock limit in seconds.
    pub time_limit: Option<f64>,
    /// Report progress every this many inner iterations. Default 10.
    pub check_every: usize,
    /// First inner tolerance on the squared min-norm subgradient; `None`: 1e-4 · max|y|².
    pub inner_tol0: Option<f64>,
    /// Factor applied to the inner tolerance after each outer step. Default 0.3.
    pub inner_tol_decay: f64,
    /// Factor applied to δ when the violation fell by less than 4×. Default 2.
    pub delta_growth: f64,
}

impl Default for AlSettings {
    fn default() -> Self {
        AlSettings {
            tol: 1e-6,
            constraint_tol: 1e-6,
            max_outer: 500,
            max_inner_total: 20_000,
            max_inner: 2000,
            delta0: None,
            time_limit: None,
            check_every: 10,
            inner_tol0: None,
            inner_tol_decay: 0.3,
            delta_growth: 2.0,
        }
    }
}

/// What [`augmented_lagrangian`] returns.
pub struct AlOutput<T: Real> {
    /// Weights [V | W] (d × 2P), made feasible when gates were given.
    pub u: Mat<T>,
    /// Multipliers [Γ | Ξ] (n × 2P).
    pub mult: Mat<T>,
    /// Objective of `u`.
    pub objective: f64,
    /// Dual bound (M9).
    pub dual: f64,
    /// Cone violation of the last iterate before restoration.
    pub violation: f64,
    /// Total inner iterations.
    pub iterations: usize,
    /// Outer iterations.
    pub outer: usize,
    /// How it ended.
    pub status: Status,
}

/// Solves (M6) from `u0` (d × 2P; ideally feasible, e.g. a cone-decomposed gated solution).
#[allow(clippy::too_many_arguments)]
pub fn augmented_lagrangian<T: Real>(
    prob: &mut ReluAlProblem<T>,
    lambda: f64,
    u0: Mat<T>,
    gates: Option<MatRef<'_, f64>>,
    settings: &AlSettings,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> AlOutput<T> {
    let scale_y = prob
        .targets()
        .iter()
        .map(|v| v.as_f64().abs())
        .fold(0.0, f64::max)
        .max(1e-300);
    let viol_tol = settings.constraint_tol * scale_y;
    let mut u = u0;
    let mut total = 0;
    let mut step = None;
    let mut inner_tol = f64::NAN;
    let mut prev_viol_sq = f64::INFINITY;
    // Every restored iterate is feasible and every dual value is a lower bound, so the solver keeps
    // the best of each: gap = best objective − best dual.
    let mut best: Option<(Mat<T>, f64)> = None;
    let mut best_dual = f64::NEG_INFINITY;
    let mut status = Status::MaxIterations;
    let mut outer = 0;
    let mut last_violation = f64::INFINITY;
    let y: Vec<T> = prob.targets().to_vec();
    let loss = prob.loss();
    while outer < settings.max_outer {
        outer += 1;
        let remaining = settings.max_inner_total.saturating_sub(total);
        if remaining == 0 {
            break;
        }
        if inner_tol.is_nan() {
            // First inner tolerance: a fraction of the squared subgradient at the start.
            inner_tol = settings.inner_tol0.unwrap_or(1e-4 * scale_y * scale_y);
        }
        let inner = FistaSettings {
            tol: 0.0,
            subgradient_tol: inner_tol,
            max_iter: remaining.min(settings.max_inner),
            check_every: settings.check_every,
            time_limit: settings.time_limit,
            ..FistaSettings::default()
        };
        let run = FistaRun {
            settings: &inner,
            observer: &mut NoReport,
            stop,
            start,
            step,
            outer,
        };
        let out = fista(prob, lambda, u, run);
        total += out.iterations;
        u = out.u;
        step = Some(out.step);
        let (viol_sq, viol_max) = prob.violation(&out.cache);
        last_violation = viol_max;
        // Method of multipliers (M21); raise δ when the violation does not fall fast enough.
        prob.update_multipliers(&out.cache);
        // Only an accurately solved inner problem shows that δ is too small: a stalled violation after
        // an inexact inner solve calls for more inner iterations, not a worse-conditioned problem.
        if viol_sq > 0.25 * prev_viol_sq && out.status == Status::Converged {
            // Far from feasible, δ was far too small: grow it fast.
            let growth = if viol_max > 0.1 * scale_y {
                4.0
            } else {
                settings.delta_growth
            };
            prob.delta = (prob.delta * growth).min(1e12);
        }
        prev_viol_sq = viol_sq;
        inner_tol = (inner_tol * settings.inner_tol_decay).max(1e-30);
        let mut mult = prob.mult.clone();
        let (feasible, cert) = best_feasible(
            &mut prob.op,
            (&y, loss, lambda),
            &[u.as_ref()],
            gates,
            &mut mult,
            POLISH,
        );
        best_dual = best_dual.max(cert.dual);
        let is_feasible = gates.is_some() || viol_max <= viol_tol;
        if is_feasible && best.as_ref().is_none_or(|b| cert.objective < b.1) {
            best = Some((feasible, cert.objective));
        }
        let objective = best.as_ref().map_or(cert.objective, |b| b.1);
        let gap = objective - best_dual;
        let rec = IterRecord {
            iteration: total,
            outer,
            objective,
            gap,
            violation: viol_max,
            seconds: start.elapsed().as_secs_f64(),
        };
        if !observer.on_iter(&rec) || stop.is_set() || out.status == Status::Interrupted {
            status = Status::Interrupted;
            break;
        }
        let rel = gap / objective.abs().max(1e-12);
        if best.is_some() && rel <= settings.tol && viol_max <= viol_tol {
            status = Status::Converged;
            break;
        }
        if out.status == Status::TimeLimit {
            status = Status::TimeLimit;
            break;
        }
        if out.status == Status::NumericalError {
            status = Status::NumericalError;
            break;
        }
    }
    let mult = prob.mult.clone();
    let (u, objective) = match best {
        Some(b) => b,
        None => {
            // No feasible iterate: report the last one, certified with zero multipliers.
            let cert = certificate(&mut prob.op, &y, loss, lambda, u.as_ref(), None);
            best_dual = best_dual.max(cert.dual);
            if status == Status::Converged {
                status = Status::ReducedAccuracy;
            }
            (u, cert.objective)
        }
    };
    AlOutput {
        u,
        mult,
        objective,
        dual: best_dual,
        violation: last_violation,
        iterations: total,
        outer,
        status,
    }
}

/// An observer for the inner solves: the outer loop reports instead.
struct NoReport;

impl Observe for NoReport {
    fn on_iter(&mut self, _: &IterRecord) -> bool {
        true
    }
}
