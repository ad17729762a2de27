//! Datafits: losses on the prediction vector ŷ, their gradients, and the dual values used by the
//! duality gap (docs/programs.md (M13), (M23)). Values are accumulated in `f64` whatever the working precision.

use serde::{Deserialize, Serialize};

use crate::real::Real;

/// The loss of the datafit (normalizations in [`crate::program`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// (1/(2n))‖ŷ − y‖².
    Squared,
    /// (1/n) Σ_j log(1 + exp(−y_j ŷ_j)), labels ±1 (docs/programs.md (M23)).
    Logistic,
    /// (1/n) Σ_j max(0, 1 − y_j ŷ_j), labels ±1 (Ergen et al. 2023, Corollary 4.1). Nonsmooth: solved
    /// by the primal–dual method or the interior-point backend, never by FISTA; threshold networks
    /// only.
    Hinge,
}

/// log(1 + exp(t)) without overflow.
#[inline]
pub fn softplus(t: f64) -> f64 {
    t.max(0.0) + (-t.abs()).exp().ln_1p()
}

/// The logistic function 1 / (1 + exp(−t)).
#[inline]
pub fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

/// Binary entropy −p ln p − (1−p) ln(1−p), with 0 ln 0 = 0.
pub fn entropy(p: f64) -> f64 {
    let h = |q: f64| if q > 0.0 { -q * q.ln() } else { 0.0 };
    h(p) + h(1.0 - p)
}

impl Loss {
    /// `"squared"`, `"logistic"` or `"hinge"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Loss::Squared => "squared",
            Loss::Logistic => "logistic",
            Loss::Hinge => "hinge",
        }
    }

    /// Whether the loss is a classification loss on labels ±1 (logistic, hinge).
    pub fn is_classification(&self) -> bool {
        matches!(self, Loss::Logistic | Loss::Hinge)
    }

    /// Whether the loss has a Lipschitz gradient (what FISTA needs): squared and logistic.
    pub fn is_smooth(&self) -> bool {
        !matches!(self, Loss::Hinge)
    }

    /// The normalized loss L(ŷ, y).
    pub fn value<T: Real>(&self, yhat: &[T], y: &[T]) -> f64 {
        let n = y.len() as f64;
        let sum: f64 = match self {
            Loss::Squared => yhat
                .iter()
                .zip(y)
                .map(|(a, b)| 0.5 * (a.as_f64() - b.as_f64()).powi(2))
                .sum(),
            Loss::Logistic => yhat
                .iter()
                .zip(y)
                .map(|(a, b)| softplus(-a.as_f64() * b.as_f64()))
                .sum(),
            Loss::Hinge => yhat
                .iter()
                .zip(y)
                .map(|(a, b)| (1.0 - a.as_f64() * b.as_f64()).max(0.0))
                .sum(),
        };
        sum / n
    }

    /// `out = ∇_ŷ L(ŷ, y)`; for the hinge loss the subgradient −y_j/n on margins y_j ŷ_j < 1 and 0
    /// elsewhere (the gradient wherever it exists, e.g. at ŷ = 0).
    pub fn gradient<T: Real>(&self, yhat: &[T], y: &[T], out: &mut [T]) {
        let n = y.len() as f64;
        for ((o, a), b) in out.iter_mut().zip(yhat).zip(y) {
            let (a, b) = (a.as_f64(), b.as_f64());
            *o = T::lit(match self {
                Loss::Squared => (a - b) / n,
                Loss::Logistic => -b * sigmoid(-a * b) / n,
                Loss::Hinge => {
                    if a * b < 1.0 {
                        -b / n
                    } else {
                        0.0
                    }
                }
            });
        }
    }

    /// Dual objective at θ = −s ∇_ŷ L(ŷ, y) (a feasible dual point once `s` ≤ λ / max_i ‖Xᵀ D_i θ₁‖):
    /// squared θᵀy − (n/2)‖θ‖² (M13); logistic (1/n) Σ H(s p_j), p_j = σ(−y_j ŷ_j) (M23); hinge
    /// Σ_j y_j θ_j = (s/n)·#{j : y_j ŷ_j < 1} (the dual of Corollary 4.1, see
    /// [`crate::program::hinge`]).
    pub fn dual_value<T: Real>(&self, yhat: &[T], y: &[T], s: f64) -> f64 {
        let n = y.len() as f64;
        match self {
            Loss::Squared => yhat
                .iter()
                .zip(y)
                .map(|(a, b)| {
                    let th = s * (b.as_f64() - a.as_f64()) / n;
                    th * b.as_f64() - 0.5 * n * th * th
                })
                .sum(),
            Loss::Logistic => {
                yhat.iter()
                    .zip(y)
                    .map(|(a, b)| entropy(s * sigmoid(-a.as_f64() * b.as_f64())))
                    .sum::<f64>()
                    / n
            }
            Loss::Hinge => {
                s * yhat
                    .iter()
                    .zip(y)
                    .filter(|(a, b)| a.as_f64() * b.as_f64() < 1.0)
                    .count() as f64
                    / n
            }
        }
    }

    /// Curvature bound of L in ŷ times n: 1 (squared) or 1/4 (logistic), so that the Lipschitz
    /// constant of the smooth part is `factor · ‖A‖² / n` (M19, M23); infinite for the nonsmooth
    /// hinge loss.
    pub fn curvature(&self) -> f64 {
        match self {
            Loss::Squared => 1.0,
            Loss::Logistic => 0.25,
            Loss::Hinge => f64::INFINITY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradients_match_finite_differences() {
        let y = [1.0, -1.0, 1.0, -1.0];
        let yhat = [0.3, 0.2, -1.5, 4.0];
        for loss in [Loss::Squared, Loss::Logistic] {
            let mut g = [0.0; 4];
            loss.gradient(&yhat, &y, &mut g);
            for j in 0..4 {
                let h = 1e-6;
                let (mut a, mut b) = (yhat, yhat);
                a[j] += h;
                b[j] -= h;
                let fd = (loss.value(&a, &y) - loss.value(&b, &y)) / (2.0 * h);
                assert!((fd - g[j]).abs() < 1e-8, "{loss:?} {j}: {fd} vs {}", g[j]);
            }
        }
    }

    #[test]
    fn weak_duality_at_zero_weights() {
        // At U = 0 with s small, the dual value is below the primal value.
        let y = [1.0, -1.0, 1.0];
        let yhat = [0.0; 3];
        for loss in [Loss::Squared, Loss::Logistic] {
            for s in [0.0, 0.3, 1.0] {
                assert!(loss.dual_value(&yhat, &y, s) <= loss.value(&yhat, &y) + 1e-15);
            }
        }
        // logistic at s = 1, ŷ = 0: the gap is zero (p = 1/2, H = ln 2).
        let l = Loss::Logistic;
        assert!((l.dual_value(&yhat, &y, 1.0) - l.value(&yhat, &y)).abs() < 1e-15);
    }

    #[test]
    fn softplus_is_stable() {
        assert_eq!(softplus(1000.0), 1000.0);
        assert!(softplus(-1000.0) >= 0.0 && softplus(-1000.0) < 1e-300);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-15);
    }
}
