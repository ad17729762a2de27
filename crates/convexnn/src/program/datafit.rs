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
    /// Softmax cross-entropy over c ≥ 2 outputs, (1/n) Σ_j [log Σ_k exp(ŷ_jk) − ŷ_{j,y_j}] with
    /// one-hot targets (docs/programs.md (M52)); vector-output programs only.
    Softmax,
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
    /// `"squared"`, `"logistic"`, `"hinge"` or `"softmax"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Loss::Squared => "squared",
            Loss::Logistic => "logistic",
            Loss::Hinge => "hinge",
            Loss::Softmax => "softmax",
        }
    }

    /// Whether the loss is a binary classification loss on labels ±1 (logistic, hinge).
    pub fn is_classification(&self) -> bool {
        matches!(self, Loss::Logistic | Loss::Hinge)
    }

    /// Whether the loss has a Lipschitz gradient (what FISTA needs): squared and logistic.
    pub fn is_smooth(&self) -> bool {
        !matches!(self, Loss::Hinge)
    }

    /// The normalized loss L(ŷ, y) of one output (vectors of length n).
    pub fn value<T: Real>(&self, yhat: &[T], y: &[T]) -> f64 {
        self.value_outputs(yhat, y, 1)
    }

    /// `out = ∇_ŷ L(ŷ, y)` of one output.
    pub fn gradient<T: Real>(&self, yhat: &[T], y: &[T], out: &mut [T]) {
        self.gradient_outputs(yhat, y, 1, out)
    }

    /// The Bregman divergence L(a) − L(b) − ⟨∇L(b), a − b⟩ of one output between predictions
    /// `a` and `b`, summed sample by sample so that the three terms' cancellation stays within
    /// each sample (the backtracking test of a proximal gradient step near a fixed point compares
    /// it with ‖step‖²/2η, far below the rounding of L itself). `None` for the losses without it.
    pub fn divergence<T: Real>(&self, a: &[T], b: &[T], y: &[T]) -> Option<f64> {
        let entries = y.len() as f64;
        let pairs = a.iter().zip(b).zip(y);
        match self {
            Loss::Squared => Some(
                pairs
                    .map(|((a, b), _)| 0.5 * (a.as_f64() - b.as_f64()).powi(2))
                    .sum::<f64>()
                    / entries,
            ),
            Loss::Logistic => Some(
                pairs
                    .map(|((a, b), y)| {
                        let (a, b, y) = (a.as_f64(), b.as_f64(), y.as_f64());
                        let delta = a - b;
                        // g(t) = softplus(−y t) has g′ = −y p, g″ = p(1 − p) and
                        // g‴ = −y p(1 − p)(1 − 2p), p = σ(−y t) (y = ±1).
                        let p = sigmoid(-y * b);
                        if delta.abs() < 1e-3 {
                            let curv = p * (1.0 - p);
                            0.5 * curv * delta * delta
                                - y * curv * (1.0 - 2.0 * p) * delta.powi(3) / 6.0
                        } else {
                            softplus(-y * a) - softplus(-y * b) + y * p * delta
                        }
                    })
                    .sum::<f64>()
                    / entries,
            ),
            Loss::Hinge | Loss::Softmax => None,
        }
    }

    /// The dual value at θ = −s ∇_ŷ L(ŷ, y) of one output (see [`Loss::dual_value_outputs`]).
    pub fn dual_value<T: Real>(&self, yhat: &[T], y: &[T], s: f64) -> f64 {
        self.dual_value_outputs(yhat, y, 1, s)
    }

    /// The normalized loss of c outputs: `yhat` and `y` are n × c, column-major (output k in
    /// entries k·n .. (k+1)·n). Squared, logistic and hinge treat the n·c entries alike and divide
    /// by n·c (scnn's normalization (M4)); softmax divides by n (M52).
    pub fn value_outputs<T: Real>(&self, yhat: &[T], y: &[T], c: usize) -> f64 {
        let entries = y.len() as f64;
        let entry_sum = |f: &dyn Fn(f64, f64) -> f64| -> f64 {
            yhat.iter()
                .zip(y)
                .map(|(a, b)| f(a.as_f64(), b.as_f64()))
                .sum::<f64>()
                / entries
        };
        match self {
            Loss::Squared => entry_sum(&|a, b| 0.5 * (a - b).powi(2)),
            Loss::Logistic => entry_sum(&|a, b| softplus(-a * b)),
            Loss::Hinge => entry_sum(&|a, b| (1.0 - a * b).max(0.0)),
            Loss::Softmax => {
                let n = y.len() / c.max(1);
                (0..n)
                    .map(|j| {
                        let row = |k: usize| yhat[k * n + j].as_f64();
                        let fit: f64 = (0..c).map(|k| y[k * n + j].as_f64() * row(k)).sum();
                        log_sum_exp((0..c).map(row)) - fit
                    })
                    .sum::<f64>()
                    / n.max(1) as f64
            }
        }
    }

    /// `out = ∇_Ŷ L(Ŷ, Y)` of c outputs (layout of [`Loss::value_outputs`]); for the hinge loss the
    /// subgradient −y/N on margins y ŷ < 1 and 0 elsewhere; for softmax (p_j − y_j)/n with p_j
    /// the softmax of row j.
    pub fn gradient_outputs<T: Real>(&self, yhat: &[T], y: &[T], c: usize, out: &mut [T]) {
        let entries = y.len() as f64;
        if *self == Loss::Softmax {
            let n = y.len() / c.max(1);
            let mut p = vec![0.0; c];
            for j in 0..n {
                softmax_row(yhat, n, j, &mut p);
                for (k, pk) in p.iter().enumerate() {
                    out[k * n + j] = T::lit((pk - y[k * n + j].as_f64()) / n as f64);
                }
            }
            return;
        }
        for ((o, a), b) in out.iter_mut().zip(yhat).zip(y) {
            let (a, b) = (a.as_f64(), b.as_f64());
            *o = T::lit(match self {
                Loss::Squared => (a - b) / entries,
                Loss::Logistic => -b * sigmoid(-a * b) / entries,
                Loss::Hinge | Loss::Softmax => {
                    if a * b < 1.0 {
                        -b / entries
                    } else {
                        0.0
                    }
                }
            });
        }
    }

    /// Dual objective at Θ = −s ∇_Ŷ L(Ŷ, Y) (a feasible dual point once `s` ≤ λ over the largest
    /// dual norm of the penalty's groups of A*Θ), with N = n·c entries: squared ⟨Θ, Y⟩ − (N/2)‖Θ‖²
    /// (M13); logistic (1/N) Σ H(s p), p = σ(−y ŷ) (M23); hinge (s/N)·#{y ŷ < 1} (the dual of
    /// Corollary 4.1, see [`crate::program::hinge`]); softmax (1/n) Σ_j H(s p_j + (1 − s) y_j),
    /// the entropy of the mixture of row j's softmax p_j and its one-hot target (M54).
    pub fn dual_value_outputs<T: Real>(&self, yhat: &[T], y: &[T], c: usize, s: f64) -> f64 {
        let entries = y.len() as f64;
        let pairs = || yhat.iter().zip(y).map(|(a, b)| (a.as_f64(), b.as_f64()));
        match self {
            Loss::Squared => pairs()
                .map(|(a, b)| {
                    let th = s * (b - a) / entries;
                    th * b - 0.5 * entries * th * th
                })
                .sum(),
            Loss::Logistic => {
                pairs()
                    .map(|(a, b)| entropy(s * sigmoid(-a * b)))
                    .sum::<f64>()
                    / entries
            }
            Loss::Hinge => s * pairs().filter(|(a, b)| a * b < 1.0).count() as f64 / entries,
            Loss::Softmax => {
                let n = y.len() / c.max(1);
                let mut p = vec![0.0; c];
                let h = |q: f64| if q > 0.0 { -q * q.ln() } else { 0.0 };
                (0..n)
                    .map(|j| {
                        softmax_row(yhat, n, j, &mut p);
                        (0..c)
                            .map(|k| h(s * p[k] + (1.0 - s) * y[k * n + j].as_f64()))
                            .sum::<f64>()
                    })
                    .sum::<f64>()
                    / n.max(1) as f64
            }
        }
    }

    /// Curvature bound of L in ŷ times its normalizing count: 1 (squared), 1/4 (logistic) or 1/2
    /// (softmax: the Hessian diag(p) − ppᵀ of log-sum-exp has norm ≤ 1/2), so that the Lipschitz
    /// constant of the smooth part is `factor · ‖A‖² / N` (M19, M23); infinite for the nonsmooth
    /// hinge loss.
    pub fn curvature(&self) -> f64 {
        match self {
            Loss::Squared => 1.0,
            Loss::Logistic => 0.25,
            Loss::Softmax => 0.5,
            Loss::Hinge => f64::INFINITY,
        }
    }
}

/// log Σ exp(t) without overflow (−∞ for no terms).
pub fn log_sum_exp(t: impl Iterator<Item = f64> + Clone) -> f64 {
    let m = t.clone().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + t.map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// `p` = the softmax of row j of the n × c column-major `yhat`.
fn softmax_row<T: Real>(yhat: &[T], n: usize, j: usize, p: &mut [f64]) {
    let c = p.len();
    let m = (0..c)
        .map(|k| yhat[k * n + j].as_f64())
        .fold(f64::NEG_INFINITY, f64::max);
    let mut total = 0.0;
    for (k, pk) in p.iter_mut().enumerate() {
        *pk = (yhat[k * n + j].as_f64() - m).exp();
        total += *pk;
    }
    for pk in p.iter_mut() {
        *pk /= total;
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
    fn softmax_gradient_and_duality() {
        // n = 3 samples, c = 3 classes, column-major; one-hot targets.
        let y = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
        let yhat = [0.3, -1.0, 2.0, 0.1, 0.5, -0.7, 1.2, 0.0, 0.4];
        let l = Loss::Softmax;
        let mut g = [0.0; 9];
        l.gradient_outputs(&yhat, &y, 3, &mut g);
        for q in 0..9 {
            let h = 1e-6;
            let (mut a, mut b) = (yhat, yhat);
            a[q] += h;
            b[q] -= h;
            let fd = (l.value_outputs(&a, &y, 3) - l.value_outputs(&b, &y, 3)) / (2.0 * h);
            assert!((fd - g[q]).abs() < 1e-8, "{q}: {fd} vs {}", g[q]);
        }
        // Weak duality for every s in [0, 1]; at ŷ = 0 and s = 1 the gap is zero (H(uniform) = ln c).
        for s in [0.0, 0.4, 1.0] {
            assert!(l.dual_value_outputs(&yhat, &y, 3, s) <= l.value_outputs(&yhat, &y, 3));
        }
        let zero = [0.0; 9];
        let gap = l.value_outputs(&zero, &y, 3) - l.dual_value_outputs(&zero, &y, 3, 1.0);
        assert!(gap.abs() < 1e-15 && (l.value_outputs(&zero, &y, 3) - 3f64.ln()).abs() < 1e-15);
    }

    #[test]
    fn softplus_is_stable() {
        assert_eq!(softplus(1000.0), 1000.0);
        assert!(softplus(-1000.0) >= 0.0 && softplus(-1000.0) < 1e-300);
        assert!((softplus(0.0) - 2f64.ln()).abs() < 1e-15);
    }
}

#[cfg(test)]
mod divergence_tests {
    use super::Loss;

    /// The divergence equals L(a) − L(b) − ⟨∇L(b), a − b⟩ where that difference is well
    /// resolved, on both sides of the logistic loss's Taylor threshold.
    #[test]
    fn divergence_matches_the_difference_of_values() {
        let y = [1.0, -1.0, 1.0, -1.0];
        let b = [0.3, -1.2, 2.0, 0.5];
        for loss in [Loss::Squared, Loss::Logistic] {
            for h in [0.5, 2e-3, 5e-4] {
                let a: Vec<f64> = b
                    .iter()
                    .enumerate()
                    .map(|(j, v)| v + h * (j as f64 - 1.5))
                    .collect();
                let mut g = [0.0; 4];
                loss.gradient(&b, &y, &mut g);
                let lin: f64 = g
                    .iter()
                    .zip(&a)
                    .zip(&b)
                    .map(|((g, a), b)| g * (a - b))
                    .sum();
                let direct = loss.value(&a, &y) - loss.value(&b, &y) - lin;
                let div = loss.divergence(&a, &b, &y).unwrap();
                assert!(
                    (div - direct).abs() <= 1e-6 * direct.abs() + 1e-15,
                    "{loss:?} h {h}: {div} vs {direct}"
                );
            }
        }
        assert!(Loss::Hinge.divergence(&b, &b, &y).is_none());
    }
}
