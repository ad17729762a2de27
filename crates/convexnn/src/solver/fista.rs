//! Restarted FISTA with backtracking line search (docs/programs.md §4a, (M16)–(M18)) for
//! `min_U f(U) + λ Σ_i ‖u_i‖₂` where f is smooth.
//!
//! The smooth part is a [`Smooth`] problem: f(U) = h(𝓛(U)) for a *linear* map 𝓛 (the predictions
//! `A(U)` for gated ReLU, `XU` for the augmented Lagrangian of ReLU). The solver keeps 𝓛 of its
//! iterates in caches and extrapolates them linearly, so one iteration costs one forward product (at
//! the new point, for the line search) and one adjoint product (the gradient at the extrapolated
//! point), plus one forward product per rejected step.
//!
//! It stops on a certified measure, never on iterations alone: the relative duality gap when the
//! problem provides a dual bound, otherwise the squared min-norm subgradient (M14).

use std::time::Instant;

use faer::{Mat, MatMut, MatRef};

use super::{IterRecord, Observe, Status, StopFlag};
use crate::program::penalty::{col, col_mut, GroupPenalty};
use crate::real::Real;

/// A smooth function of U through a linear map, with what FISTA needs of it.
pub trait Smooth<T: Real> {
    /// The linear image of U that determines f (predictions, or X U).
    type Cache;
    /// Shape (d, Q) of U.
    fn dims(&self) -> (usize, usize);
    /// A cache of the right size.
    fn new_cache(&self) -> Self::Cache;
    /// `cache = 𝓛(U)` (one forward product).
    fn forward(&mut self, u: MatRef<'_, T>, cache: &mut Self::Cache);
    /// `out = new + β (new − old)`, the image of the extrapolated point.
    fn extrapolate(&self, out: &mut Self::Cache, new: &Self::Cache, old: &Self::Cache, beta: T);
    /// Copies `src` into `dst`.
    fn copy_cache(&self, dst: &mut Self::Cache, src: &Self::Cache);
    /// f(U) from its cache.
    fn value(&self, cache: &Self::Cache) -> f64;
    /// `grad = ∇f(U)` from its cache (one adjoint product).
    fn gradient(&mut self, cache: &Self::Cache, grad: MatMut<'_, T>);
    /// A lower bound on min f + λR from the point's cache and gradient (weak duality), if known.
    fn dual_bound(&self, _cache: &Self::Cache, _grad: MatRef<'_, T>, _lambda: f64) -> Option<f64> {
        None
    }
    /// An estimate of the Lipschitz constant of ∇f (the line search corrects it).
    fn lipschitz_estimate(&mut self) -> f64;
    /// The penalty R (default Σ_i ‖u_i‖₂ over the columns; block norms for vector outputs).
    fn penalty(&self) -> GroupPenalty {
        GroupPenalty::Columns
    }

    /// f(U) + λR(U) and the dual bound at U (−∞ when none is known): one forward and one
    /// adjoint product, in the working precision.
    fn certify(&mut self, u: MatRef<'_, T>, lambda: f64) -> (f64, f64) {
        let mut cache = self.new_cache();
        self.forward(u, &mut cache);
        let mut g = faer::Mat::<T>::zeros(u.nrows(), u.ncols());
        self.gradient(&cache, g.as_mut());
        let objective = self.value(&cache) + lambda * self.penalty().value(u);
        let dual = self
            .dual_bound(&cache, g.as_ref(), lambda)
            .unwrap_or(f64::NEG_INFINITY);
        (objective, dual)
    }
}

/// Settings of [`fista`], with documented defaults.
#[derive(Clone, Debug)]
pub struct FistaSettings {
    /// Stop when (objective − dual bound) ≤ `tol` · max(|objective|, 1e-12). Default 1e-6.
    pub tol: f64,
    /// Stop when the squared min-norm subgradient (M14) is ≤ this (used when no dual bound exists,
    /// e.g. the inner problems of the augmented Lagrangian). Default 1e-10.
    pub subgradient_tol: f64,
    /// Iteration cap. Default 10 000.
    pub max_iter: usize,
    /// Evaluate the stopping test (one extra adjoint product) every this many iterations. Default 10.
    pub check_every: usize,
    /// Wall-clock limit in seconds, counted from the `start` passed to [`fista`].
    pub time_limit: Option<f64>,
    /// In single precision, stop as stalled when this many consecutive checks neither lower the
    /// objective by more than 100 ε (relative) nor shrink the best duality gap (or squared
    /// subgradient) by a tenth: f32 cannot resolve further progress, and the caller continues in
    /// f64 from there. (Double precision runs on to the tolerance or the cap.) Default 50.
    pub stall_checks: usize,
}

impl Default for FistaSettings {
    fn default() -> Self {
        FistaSettings {
            tol: 1e-6,
            subgradient_tol: 1e-10,
            max_iter: 10_000,
            check_every: 10,
            time_limit: None,
            stall_checks: 50,
        }
    }
}

/// What [`fista`] returns.
pub struct FistaOutput<T: Real, C> {
    /// The final iterate.
    pub u: Mat<T>,
    /// Its cache.
    pub cache: C,
    /// f(U) + λR(U).
    pub objective: f64,
    /// The dual bound at U, if the problem has one.
    pub dual: Option<f64>,
    /// Squared min-norm subgradient at U.
    pub subgradient_sq: f64,
    /// Iterations done.
    pub iterations: usize,
    /// How it ended.
    pub status: Status,
    /// The last accepted step size (a warm start for the next solve of a similar problem).
    pub step: f64,
}

/// Everything [`fista`] needs besides the problem.
pub struct FistaRun<'a> {
    /// Settings.
    pub settings: &'a FistaSettings,
    /// Progress receiver.
    pub observer: &'a mut dyn Observe,
    /// Interrupt flag.
    pub stop: &'a StopFlag,
    /// When the whole solve began (for time limits and records).
    pub start: Instant,
    /// Initial step size; `None` uses 1 / `lipschitz_estimate()`.
    pub step: Option<f64>,
    /// Outer iteration number, copied into progress records.
    pub outer: usize,
}

impl<'a> FistaRun<'a> {
    /// A solve from the default initial step, outside any outer loop.
    pub fn new(
        settings: &'a FistaSettings,
        observer: &'a mut dyn Observe,
        stop: &'a StopFlag,
        start: Instant,
    ) -> Self {
        FistaRun {
            settings,
            observer,
            stop,
            start,
            step: None,
            outer: 0,
        }
    }
}

struct Check {
    objective: f64,
    dual: Option<f64>,
    subgradient_sq: f64,
}

fn certify<T: Real, S: Smooth<T>>(
    p: &mut S,
    u: MatRef<'_, T>,
    cache: &S::Cache,
    grad: &mut Mat<T>,
    lambda: f64,
) -> Check {
    p.gradient(cache, grad.as_mut());
    let penalty = p.penalty();
    Check {
        objective: p.value(cache) + lambda * penalty.value(u),
        dual: p.dual_bound(cache, grad.as_ref(), lambda),
        subgradient_sq: penalty.min_norm_subgradient_sq(u, grad.as_ref(), lambda),
    }
}

fn converged(c: &Check, s: &FistaSettings) -> bool {
    match c.dual {
        Some(d) => c.objective - d <= s.tol * c.objective.abs().max(1e-12),
        None => c.subgradient_sq <= s.subgradient_tol,
    }
}

fn inner(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
    (0..a.ncols())
        .map(|i| {
            col(a, i)
                .iter()
                .zip(col(b, i))
                .map(|(x, y)| x * y)
                .sum::<f64>()
        })
        .sum()
}

/// Minimizes f(U) + λ R(U) (R = Σ‖u_i‖ unless the problem says otherwise) from `u0` by restarted FISTA with backtracking (M16)–(M18).
pub fn fista<T: Real, S: Smooth<T>>(
    p: &mut S,
    lambda: f64,
    u0: Mat<T>,
    run: FistaRun<'_>,
) -> FistaOutput<T, S::Cache> {
    let s = run.settings;
    let (d, q) = p.dims();
    let penalty = p.penalty();
    let mut eta = run
        .step
        .unwrap_or_else(|| 1.0 / p.lipschitz_estimate().max(1e-12));
    let mut x = u0;
    let mut x_new = Mat::<T>::zeros(d, q);
    let mut y = x.clone();
    let mut grad = Mat::<T>::zeros(d, q);
    // f64 copies of the step and the displacement, for inner products without rounding drift.
    let mut step = Mat::<f64>::zeros(d, q);
    let mut diff = Mat::<f64>::zeros(d, q);
    let (mut cx, mut cx_new, mut cy) = (p.new_cache(), p.new_cache(), p.new_cache());
    p.forward(x.as_ref(), &mut cx);
    p.copy_cache(&mut cy, &cx);
    let mut t = 1.0f64;
    let slack = 10.0 * T::epsilon().as_f64();
    let mut check = certify(p, x.as_ref(), &cx, &mut grad, lambda);
    // The best checked objective and optimality measure, and the checks since either improved.
    let resolution = 100.0 * T::epsilon().as_f64();
    let single = T::epsilon().as_f64() > 1e-10;
    let measure = |c: &Check| c.dual.map_or(c.subgradient_sq, |d| c.objective - d);
    let (mut best, mut best_measure, mut flat_checks) = (check.objective, measure(&check), 0usize);
    let mut status = None;
    let mut k = 0;
    while status.is_none() {
        if converged(&check, s) {
            status = Some(Status::Converged);
            break;
        }
        if k >= s.max_iter {
            status = Some(Status::MaxIterations);
            break;
        }
        if run.stop.is_set() {
            status = Some(Status::Interrupted);
            break;
        }
        if let Some(limit) = s.time_limit {
            if run.start.elapsed().as_secs_f64() > limit {
                status = Some(Status::TimeLimit);
                break;
            }
        }
        // Gradient at the extrapolated point y.
        let fy = p.value(&cy);
        p.gradient(&cy, grad.as_mut());
        let mut accepted = false;
        for _ in 0..60 {
            // x_new = prox_{ηλR}(y − η ∇f(y))
            let e = T::lit(eta);
            for i in 0..q {
                let (yi, gi) = (col(y.as_ref(), i), col(grad.as_ref(), i));
                for ((o, a), g) in col_mut(x_new.as_mut(), i).iter_mut().zip(yi).zip(gi) {
                    *o = *a - e * *g;
                }
            }
            penalty.prox(x_new.as_mut(), eta * lambda);
            p.forward(x_new.as_ref(), &mut cx_new);
            let f_new = p.value(&cx_new);
            for i in 0..q {
                let (a, b) = (col(x_new.as_ref(), i), col(y.as_ref(), i));
                for ((o, a), b) in col_mut(step.as_mut(), i).iter_mut().zip(a).zip(b) {
                    *o = a.as_f64() - b.as_f64();
                }
            }
            let lin: f64 = (0..q)
                .map(|i| {
                    col(grad.as_ref(), i)
                        .iter()
                        .zip(col(step.as_ref(), i))
                        .map(|(g, s)| g.as_f64() * s)
                        .sum::<f64>()
                })
                .sum();
            let sq = inner(step.as_ref(), step.as_ref());
            if !f_new.is_finite() {
                eta *= 0.5;
                continue;
            }
            if f_new <= fy + lin + sq / (2.0 * eta) + slack * fy.abs().max(1e-300) {
                // Lassplore step growth: the local curvature is well below 1/η.
                if sq > 5.0 * 2.0 * eta * (f_new - fy - lin) {
                    eta *= 1.25;
                }
                accepted = true;
                break;
            }
            eta *= 0.8;
        }
        if !accepted {
            status = Some(if check.objective.is_finite() {
                Status::Stalled
            } else {
                Status::NumericalError
            });
            break;
        }
        // Restart test (gradient-mapping rule): ⟨x_new − x, y − x_new⟩ > 0.
        for i in 0..q {
            let (a, b) = (col(x_new.as_ref(), i), col(x.as_ref(), i));
            for ((o, a), b) in col_mut(diff.as_mut(), i).iter_mut().zip(a).zip(b) {
                *o = a.as_f64() - b.as_f64();
            }
        }
        let restart = -inner(diff.as_ref(), step.as_ref()) > 0.0;
        if restart {
            t = 1.0;
            y.copy_from(&x_new);
            p.copy_cache(&mut cy, &cx_new);
        } else {
            let t_new = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
            let beta = (t - 1.0) / t_new;
            t = t_new;
            let b = T::lit(beta);
            for i in 0..q {
                let (a, o) = (col(x_new.as_ref(), i), col(x.as_ref(), i));
                for ((yv, a), o) in col_mut(y.as_mut(), i).iter_mut().zip(a).zip(o) {
                    *yv = *a + b * (*a - *o);
                }
            }
            p.extrapolate(&mut cy, &cx_new, &cx, b);
        }
        std::mem::swap(&mut x, &mut x_new);
        std::mem::swap(&mut cx, &mut cx_new);
        k += 1;
        if k % s.check_every.max(1) == 0 {
            check = certify(p, x.as_ref(), &cx, &mut grad, lambda);
            if !check.objective.is_finite() {
                status = Some(Status::NumericalError);
                break;
            }
            let m = measure(&check);
            if check.objective < best - resolution * best.abs() || m < 0.9 * best_measure {
                best = best.min(check.objective);
                best_measure = best_measure.min(m);
                flat_checks = 0;
            } else {
                flat_checks += 1;
                if single && flat_checks >= s.stall_checks.max(1) && !converged(&check, s) {
                    status = Some(Status::Stalled);
                }
            }
            let rec = IterRecord {
                iteration: k,
                outer: run.outer,
                objective: check.objective,
                gap: check.dual.map_or(f64::NAN, |d| check.objective - d),
                violation: 0.0,
                seconds: run.start.elapsed().as_secs_f64(),
            };
            if !run.observer.on_iter(&rec) {
                status = Some(Status::Interrupted);
            }
        }
    }
    if k % s.check_every.max(1) != 0 {
        check = certify(p, x.as_ref(), &cx, &mut grad, lambda);
    }
    let status = status.unwrap_or(Status::MaxIterations);
    let status = if status != Status::Converged && converged(&check, s) {
        Status::Converged
    } else {
        status
    };
    FistaOutput {
        u: x,
        cache: cx,
        objective: check.objective,
        dual: check.dual,
        subgradient_sq: check.subgradient_sq,
        iterations: k,
        status,
        step: eta,
    }
}
