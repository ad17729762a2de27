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
    /// `out = Σ_j weights_j · parts_j`, the image of the same combination of points (𝓛 is
    /// linear): Anderson acceleration combines its history this way without a forward product.
    fn combine(&self, out: &mut Self::Cache, parts: &[&Self::Cache], weights: &[f64]);
    /// f(U) from its cache.
    fn value(&self, cache: &Self::Cache) -> f64;
    /// `grad = ∇f(U)` from its cache (one adjoint product).
    fn gradient(&mut self, cache: &Self::Cache, grad: MatMut<'_, T>);
    /// f(new) − f(old) − ⟨∇f(old), new − old⟩ from the two images, computed without the
    /// cancellation of the three terms' difference, where the problem knows how (the backtracking
    /// test then stays exact near a fixed point, where the terms are at the rounding of f).
    fn divergence(&self, _new: &Self::Cache, _old: &Self::Cache) -> Option<f64> {
        None
    }
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

/// `out = Σ_j weights_j · parts_j` element by element, accumulated in f64 (the weights of an
/// extrapolation can be large and of both signs).
pub fn combine_slices<T: Real>(out: &mut [T], parts: &[&[T]], weights: &[f64]) {
    for (e, o) in out.iter_mut().enumerate() {
        let v: f64 = parts
            .iter()
            .zip(weights)
            .map(|(p, w)| w * p[e].as_f64())
            .sum();
        *o = T::lit(v);
    }
}

/// [`Smooth::combine`] for caches that are one vector.
pub fn combine_vecs<T: Real>(out: &mut [T], parts: &[&Vec<T>], weights: &[f64]) {
    let slices: Vec<&[T]> = parts.iter().map(|v| v.as_slice()).collect();
    combine_slices(out, &slices, weights);
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

/// The optimality measures at one point.
pub(super) struct Check {
    pub(super) objective: f64,
    dual: Option<f64>,
    subgradient_sq: f64,
}

/// The measures at U from its cache and its gradient `grad` (already computed).
pub(super) fn measures<T: Real, S: Smooth<T>>(
    p: &S,
    u: MatRef<'_, T>,
    cache: &S::Cache,
    grad: MatRef<'_, T>,
    lambda: f64,
) -> Check {
    let penalty = p.penalty();
    Check {
        objective: p.value(cache) + lambda * penalty.value(u),
        dual: p.dual_bound(cache, grad, lambda),
        subgradient_sq: penalty.min_norm_subgradient_sq(u, grad, lambda),
    }
}

/// The gradient at U into `grad` (one adjoint product) and the measures there.
pub(super) fn certify<T: Real, S: Smooth<T>>(
    p: &mut S,
    u: MatRef<'_, T>,
    cache: &S::Cache,
    grad: &mut Mat<T>,
    lambda: f64,
) -> Check {
    p.gradient(cache, grad.as_mut());
    measures(p, u, cache, grad.as_ref(), lambda)
}

fn converged(c: &Check, s: &FistaSettings) -> bool {
    match c.dual {
        Some(d) => c.objective - d <= s.tol * c.objective.abs().max(1e-12),
        None => c.subgradient_sq <= s.subgradient_tol,
    }
}

/// The stopping rules that FISTA and Anderson acceleration share: the certified measure, the
/// iteration cap, the interrupt and the time limit, and in single precision the stall test
/// ([`FistaSettings::stall_checks`]).
pub(super) struct Monitor {
    /// The best checked objective and optimality measure, and the checks since either improved.
    best: f64,
    best_measure: f64,
    flat_checks: usize,
    resolution: f64,
    single: bool,
}

fn measure(c: &Check) -> f64 {
    c.dual.map_or(c.subgradient_sq, |d| c.objective - d)
}

impl Monitor {
    pub(super) fn new<T: Real>(first: &Check) -> Self {
        Monitor {
            best: first.objective,
            best_measure: measure(first),
            flat_checks: 0,
            resolution: 100.0 * T::epsilon().as_f64(),
            single: T::epsilon().as_f64() > 1e-10,
        }
    }

    /// Why to stop before iteration `k`, if at all.
    pub(super) fn halt(&self, check: &Check, k: usize, run: &FistaRun<'_>) -> Option<Status> {
        let s = run.settings;
        if converged(check, s) {
            Some(Status::Converged)
        } else if k >= s.max_iter {
            Some(Status::MaxIterations)
        } else if run.stop.is_set() {
            Some(Status::Interrupted)
        } else if s
            .time_limit
            .is_some_and(|limit| run.start.elapsed().as_secs_f64() > limit)
        {
            Some(Status::TimeLimit)
        } else {
            None
        }
    }

    /// After the check at iteration `k`: the stall test and the progress record; why to stop, if
    /// at all.
    pub(super) fn checked(
        &mut self,
        check: &Check,
        k: usize,
        run: &mut FistaRun<'_>,
    ) -> Option<Status> {
        if !check.objective.is_finite() {
            return Some(Status::NumericalError);
        }
        let mut status = None;
        let m = measure(check);
        if check.objective < self.best - self.resolution * self.best.abs()
            || m < 0.9 * self.best_measure
        {
            self.best = self.best.min(check.objective);
            self.best_measure = self.best_measure.min(m);
            self.flat_checks = 0;
        } else {
            self.flat_checks += 1;
            if self.single
                && self.flat_checks >= run.settings.stall_checks.max(1)
                && !converged(check, run.settings)
            {
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
        status
    }
}

/// The output of a solve that ended with `status` at `u` (its cache, last check and step).
pub(super) fn output<T: Real, C>(
    (u, cache): (Mat<T>, C),
    check: Check,
    status: Status,
    (iterations, step): (usize, f64),
    s: &FistaSettings,
) -> FistaOutput<T, C> {
    let status = if status != Status::Converged && converged(&check, s) {
        Status::Converged
    } else {
        status
    };
    FistaOutput {
        u,
        cache,
        objective: check.objective,
        dual: check.dual,
        subgradient_sq: check.subgradient_sq,
        iterations,
        status,
        step,
    }
}

/// (x − y) element by element, in f64 (steps and displacements without rounding drift).
pub(super) fn difference_f64<T: Real>(out: &mut Mat<f64>, x: MatRef<'_, T>, y: MatRef<'_, T>) {
    for i in 0..x.ncols() {
        let (a, b) = (col(x, i), col(y, i));
        for ((o, a), b) in col_mut(out.as_mut(), i).iter_mut().zip(a).zip(b) {
            *o = a.as_f64() - b.as_f64();
        }
    }
}

/// Whether the step from y (objective `fy`, gradient `grad`) to x_new (objective `f_new`,
/// displacement `step`) satisfies the backtracking condition of step size η (M18),
/// f(x_new) − f(y) − ⟨∇f(y), step⟩ ≤ ‖step‖²/2η, and whether the curvature is far below 1/η
/// (Lassplore: grow η). The left side is the problem's `divergence` where it has one, else the
/// difference of the three terms with a relative `slack` for rounding.
pub(super) fn sufficient_decrease<T: Real>(
    (fy, f_new): (f64, f64),
    divergence: Option<f64>,
    grad: MatRef<'_, T>,
    step: MatRef<'_, f64>,
    eta: f64,
    slack: f64,
) -> (bool, bool) {
    let sq = inner(step, step);
    if let (Some(div), true) = (divergence, f_new.is_finite()) {
        let ok = div <= sq / (2.0 * eta) * (1.0 + slack);
        return (ok, ok && sq > 5.0 * 2.0 * eta * div);
    }
    let lin: f64 = (0..step.ncols())
        .map(|i| {
            col(grad, i)
                .iter()
                .zip(col(step, i))
                .map(|(g, s)| g.as_f64() * s)
                .sum::<f64>()
        })
        .sum();
    let ok =
        f_new.is_finite() && f_new <= fy + lin + sq / (2.0 * eta) + slack * fy.abs().max(1e-300);
    (ok, ok && sq > 5.0 * 2.0 * eta * (f_new - fy - lin))
}

pub(super) fn inner(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> f64 {
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

/// `out = prox_{ηλR}(from − η ∇f)`, the proximal gradient step (M17) from `from` with gradient
/// `grad`.
pub(super) fn prox_gradient_step<T: Real>(
    out: &mut Mat<T>,
    from: MatRef<'_, T>,
    grad: MatRef<'_, T>,
    eta: f64,
    lambda: f64,
    penalty: &GroupPenalty,
) {
    let e = T::lit(eta);
    for i in 0..from.ncols() {
        let (fi, gi) = (col(from, i), col(grad, i));
        for ((o, a), g) in col_mut(out.as_mut(), i).iter_mut().zip(fi).zip(gi) {
            *o = *a - e * *g;
        }
    }
    penalty.prox(out.as_mut(), eta * lambda);
}

/// The run's initial step, else 1 / (the problem's Lipschitz estimate).
pub(super) fn initial_step<T: Real, S: Smooth<T>>(p: &mut S, run: &FistaRun<'_>) -> f64 {
    run.step
        .unwrap_or_else(|| 1.0 / p.lipschitz_estimate().max(1e-12))
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
    let mut eta = initial_step(p, &run);
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
    let mut monitor = Monitor::new::<T>(&check);
    let mut run = run;
    let mut k = 0;
    let status = loop {
        if let Some(status) = monitor.halt(&check, k, &run) {
            break status;
        }
        // Gradient at the extrapolated point y.
        let fy = p.value(&cy);
        p.gradient(&cy, grad.as_mut());
        let mut accepted = false;
        for _ in 0..60 {
            prox_gradient_step(&mut x_new, y.as_ref(), grad.as_ref(), eta, lambda, &penalty);
            p.forward(x_new.as_ref(), &mut cx_new);
            difference_f64(&mut step, x_new.as_ref(), y.as_ref());
            let (ok, grow) = sufficient_decrease(
                (fy, p.value(&cx_new)),
                p.divergence(&cx_new, &cy),
                grad.as_ref(),
                step.as_ref(),
                eta,
                slack,
            );
            if ok {
                if grow {
                    eta *= 1.25;
                }
                accepted = true;
                break;
            }
            eta *= if p.value(&cx_new).is_finite() {
                0.8
            } else {
                0.5
            };
        }
        if !accepted {
            break if check.objective.is_finite() {
                Status::Stalled
            } else {
                Status::NumericalError
            };
        }
        // Restart test (gradient-mapping rule): ⟨x_new − x, y − x_new⟩ > 0.
        difference_f64(&mut diff, x_new.as_ref(), x.as_ref());
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
            if let Some(status) = monitor.checked(&check, k, &mut run) {
                break status;
            }
        }
    };
    if k % s.check_every.max(1) != 0 {
        check = certify(p, x.as_ref(), &cx, &mut grad, lambda);
    }
    output((x, cx), check, status, (k, eta), s)
}
