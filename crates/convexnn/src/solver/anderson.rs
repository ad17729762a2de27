//! Guarded Anderson acceleration of the proximal gradient method (docs/programs.md (M64)) for
//! `min_U f(U) + λ R(U)`, the problems [`fista`](super::fista) solves.
//!
//! The proximal gradient map T(x) = prox_{ηλR}(x − η∇f(x)) has the minimizers as its fixed
//! points. Anderson acceleration (type II, Walker & Ni 2011) keeps the last m + 1 images
//! y_j = T(x_j) and residuals r_j = y_j − x_j and extrapolates
//!
//! ```text
//! x_ext = Σ_j α_j y_j,   α = argmin { ‖Σ_j α_j r_j‖ : Σ_j α_j = 1 },
//! ```
//!
//! a secant (multisecant) step on the fixed-point equation. The guard of Mai & Johansson (2020,
//! "Anderson acceleration of proximal gradient methods") keeps the method a descent method: the
//! extrapolated point is taken only when its objective is at most that of the plain step y_k,
//! otherwise y_k is; every iterate is then at least as good as one proximal gradient step, so
//! convergence is never slower than the unaccelerated method's.
//!
//! f is a function of a linear image 𝓛(U) ([`Smooth`]), so 𝓛(x_ext) = Σ_j α_j 𝓛(y_j) comes from
//! the stored images ([`Smooth::combine`]) and the guard costs no product. An iteration costs one
//! forward product (at y_k, which the backtracking test needs) and one adjoint product (the
//! gradient at the next point), as FISTA's does. The certificate is evaluated at the plain step
//! y_k, which is also the point returned: its groups are exactly zero where the prox zeroed them,
//! an extrapolated point's are not, and its dual bound is tighter (one more adjoint product per
//! check, as FISTA's). The
//! step η starts at 1/L (estimated) and only shrinks: the history is cleared when it does, since
//! T changes with η.

use faer::{Mat, Side};

use super::fista::{
    certify, combine_slices, difference_f64, initial_step, inner, output, prox_gradient_step,
    sufficient_decrease, FistaOutput, FistaRun, Monitor, Smooth,
};
use super::Status;
use crate::program::penalty::{col, col_mut};
use crate::real::Real;

/// Residuals kept (m + 1 points: m differences). Ten is the usual choice; 5 and 20 needed up to
/// 30% more iterations on gated programs (n = 5000, d = 50, P = 300).
pub const ANDERSON_MEMORY: usize = 11;

/// Bytes the history adds to a proximal gradient solve of `weights` unknowns whose images have
/// `image` entries, in a working precision of `bytes` (points and images in it, residuals in f64).
pub fn anderson_memory(weights: usize, image: usize, bytes: usize) -> usize {
    ANDERSON_MEMORY * (weights * (bytes + 8) + image * bytes)
}

/// Relative Tikhonov regularization of the residuals' Gram matrix (its scale is its largest
/// diagonal entry), so that nearly dependent residuals give bounded weights.
const REGULARIZATION: f64 = 1e-10;

/// The last points T(x_j), their images 𝓛(T(x_j)), and the residuals T(x_j) − x_j with their Gram
/// matrix.
struct History<T: Real, C> {
    points: Vec<Mat<T>>,
    images: Vec<C>,
    residuals: Vec<Mat<f64>>,
    gram: Mat<f64>,
}

impl<T: Real, C> History<T, C> {
    fn new() -> Self {
        History {
            points: Vec::new(),
            images: Vec::new(),
            residuals: Vec::new(),
            gram: Mat::zeros(ANDERSON_MEMORY, ANDERSON_MEMORY),
        }
    }

    fn len(&self) -> usize {
        self.points.len()
    }

    fn clear(&mut self) {
        self.points.clear();
        self.images.clear();
        self.residuals.clear();
    }

    /// Buffers for the next point: the oldest entry's when the history is full (it is dropped),
    /// else new ones from `fresh`.
    fn slot(&mut self, fresh: impl FnOnce() -> (Mat<T>, C, Mat<f64>)) -> (Mat<T>, C, Mat<f64>) {
        if self.len() < ANDERSON_MEMORY {
            return fresh();
        }
        let m = ANDERSON_MEMORY;
        for a in 0..m - 1 {
            for b in 0..m - 1 {
                self.gram[(a, b)] = self.gram[(a + 1, b + 1)];
            }
        }
        (
            self.points.remove(0),
            self.images.remove(0),
            self.residuals.remove(0),
        )
    }

    /// Appends a point (the history has room: see [`History::slot`]).
    fn push(&mut self, point: Mat<T>, image: C, residual: Mat<f64>) {
        let k = self.len();
        for (j, r) in self.residuals.iter().enumerate() {
            let v = inner(r.as_ref(), residual.as_ref());
            self.gram[(j, k)] = v;
            self.gram[(k, j)] = v;
        }
        self.gram[(k, k)] = inner(residual.as_ref(), residual.as_ref());
        self.points.push(point);
        self.images.push(image);
        self.residuals.push(residual);
    }

    /// The affine weights α minimizing ‖Σ α_j r_j‖ (Σ α_j = 1), or `None` when the regularized
    /// Gram matrix cannot be factored or the weights are not finite.
    fn weights(&self) -> Option<Vec<f64>> {
        let k = self.len();
        let scale = (0..k).map(|j| self.gram[(j, j)]).fold(0.0, f64::max);
        if !(scale > 0.0 && scale.is_finite()) {
            return None;
        }
        let m = Mat::from_fn(k, k, |a, b| {
            self.gram[(a, b)] / scale + if a == b { REGULARIZATION } else { 0.0 }
        });
        let llt = m.llt(Side::Lower).ok()?;
        let ones = Mat::<f64>::from_fn(k, 1, |_, _| 1.0);
        let z = faer::linalg::solvers::Solve::solve(&llt, ones.as_ref());
        let total: f64 = (0..k).map(|j| z[(j, 0)]).sum();
        let alpha: Vec<f64> = (0..k).map(|j| z[(j, 0)] / total).collect();
        alpha.iter().all(|a| a.is_finite()).then_some(alpha)
    }
}

/// Minimizes f(U) + λ R(U) from `u0` by guarded Anderson acceleration of the proximal gradient
/// method (M64), with FISTA's settings, stopping rules and output.
pub fn anderson<T: Real, S: Smooth<T>>(
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
    let mut cx = p.new_cache();
    p.forward(x.as_ref(), &mut cx);
    let mut grad = Mat::<T>::zeros(d, q);
    let mut check = certify(p, x.as_ref(), &cx, &mut grad, lambda);
    let mut monitor = Monitor::new::<T>(&check);
    let mut run = run;
    let mut history = History::<T, S::Cache>::new();
    let mut ext = Mat::<T>::zeros(d, q);
    let mut c_ext = p.new_cache();
    let mut scratch = Mat::<T>::zeros(d, q);
    let slack = 10.0 * T::epsilon().as_f64();
    let mut k = 0;
    // Whether cx is 𝓛(x) from a forward product rather than a combination of stored images.
    let mut exact_image = true;
    // `grad` holds ∇f(x) at the top of every iteration.
    let status = loop {
        if let Some(status) = monitor.halt(&check, k, &run) {
            break status;
        }
        let mut fx = p.value(&cx);
        let (mut y, mut cy, mut step) =
            history.slot(|| (Mat::zeros(d, q), p.new_cache(), Mat::zeros(d, q)));
        let mut accepted = false;
        for _ in 0..60 {
            prox_gradient_step(&mut y, x.as_ref(), grad.as_ref(), eta, lambda, &penalty);
            p.forward(y.as_ref(), &mut cy);
            difference_f64(&mut step, y.as_ref(), x.as_ref());
            let f_y = p.value(&cy);
            let (ok, _) = sufficient_decrease(
                (fx, f_y),
                p.divergence(&cy, &cx),
                grad.as_ref(),
                step.as_ref(),
                eta,
                slack,
            );
            if ok {
                accepted = true;
                break;
            }
            history.clear();
            if !exact_image {
                // The combined image carries the rounding of the extrapolation weights: recompute
                // it (and the gradient) before blaming the step size.
                p.forward(x.as_ref(), &mut cx);
                p.gradient(&cx, grad.as_mut());
                fx = p.value(&cx);
                exact_image = true;
                continue;
            }
            eta *= if f_y.is_finite() { 0.8 } else { 0.5 };
        }
        if !accepted {
            break if check.objective.is_finite() {
                Status::Stalled
            } else {
                Status::NumericalError
            };
        }
        let plain = p.value(&cy) + lambda * penalty.value(y.as_ref());
        history.push(y, cy, step);
        // The guard: the extrapolated point only where it is at least as good as the plain step.
        let weights = (history.len() >= 2).then(|| history.weights()).flatten();
        let extrapolated = weights.is_some_and(|alpha| {
            for i in 0..q {
                let cols: Vec<&[T]> = history.points.iter().map(|m| col(m.as_ref(), i)).collect();
                combine_slices(col_mut(ext.as_mut(), i), &cols, &alpha);
            }
            let images: Vec<&S::Cache> = history.images.iter().collect();
            p.combine(&mut c_ext, &images, &alpha);
            p.value(&c_ext) + lambda * penalty.value(ext.as_ref()) <= plain
        });
        exact_image = !extrapolated;
        if extrapolated {
            std::mem::swap(&mut x, &mut ext);
            std::mem::swap(&mut cx, &mut c_ext);
        } else {
            let newest = history.len() - 1;
            x.copy_from(&history.points[newest]);
            p.copy_cache(&mut cx, &history.images[newest]);
        }
        k += 1;
        // The gradient for the next step.
        p.gradient(&cx, grad.as_mut());
        if k % s.check_every.max(1) == 0 {
            check = certify_newest(p, &history, &mut scratch, lambda);
            if let Some(status) = monitor.checked(&check, k, &mut run) {
                break status;
            }
        }
    };
    if history.len() == 0 {
        return output((x, cx), check, status, (k, eta), s);
    }
    if k % s.check_every.max(1) != 0 {
        check = certify_newest(p, &history, &mut scratch, lambda);
    }
    let newest = history.len() - 1;
    let u = history.points.swap_remove(newest);
    let cache = history.images.swap_remove(newest);
    output((u, cache), check, status, (k, eta), s)
}

/// The optimality measures at the newest proximal gradient step T(x_k) (one adjoint product):
/// its groups are exactly zero where the prox made them so, which an extrapolated point's are
/// not, and its dual bound is the tighter one. It is also the point returned.
fn certify_newest<T: Real, S: Smooth<T>>(
    p: &mut S,
    history: &History<T, S::Cache>,
    grad: &mut Mat<T>,
    lambda: f64,
) -> super::fista::Check {
    let newest = history.len() - 1;
    certify(
        p,
        history.points[newest].as_ref(),
        &history.images[newest],
        grad,
        lambda,
    )
}
