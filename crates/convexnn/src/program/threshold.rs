//! Threshold networks on a complete arrangement (Ergen et al. 2023, Theorem 2.3; docs/programs.md
//! (M30)–(M31)): when every 0/1 pattern is realizable (e.g. rank X = n), the Lasso (M29) over all
//! 2ⁿ columns collapses to a program over the network's output δ itself,
//!
//! ```text
//! min_δ (1/(2n))‖δ − y‖² + λ (‖δ₊‖_∞ + ‖δ₋‖_∞),
//! ```
//!
//! solved in closed form by two proximal steps (one per sign), and the optimal network is read out of
//! δ as a staircase of at most n threshold neurons.
//!
//! With the hinge loss (Corollary 4.1, eq. (17)) the program
//! `min_δ (1/n) Σ_j (1 − y_j δ_j)₊ + λ(‖δ₊‖_∞ + ‖δ₋‖_∞)` separates by class too: on the n₊ samples
//! with y_j = +1 the best δ is a common level t ∈ [0, 1] (higher costs penalty without reducing the
//! loss), at cost (n₊/n)(1 − t) + λt, linear in t; so δ_j = y_j when λ < n_{±}/n for the class of j,
//! and 0 otherwise.
//!
//! Both are the Lasso (M29) over all 2ⁿ − 1 nonzero 0/1 columns, whose dual constraint
//! ‖Kᵀθ‖_∞ ≤ λ reads max(Σ_j (θ_j)₊, Σ_j (θ_j)₋) ≤ λ (the worst column collects one sign), which
//! [`complete_arrangement_dual`] uses to certify the closed forms.

use crate::error::{Error, Result};
use crate::program::Loss;

/// Largest τ ≥ 0 with Σ_j (v_j − τ)₊ = β for nonnegative `v` (0 when Σ v_j ≤ β): the level at which
/// the prox of β‖·‖_∞ clips `v`.
fn clip_level(v: &[f64], beta: f64) -> f64 {
    let total: f64 = v.iter().sum();
    if total <= beta {
        return 0.0;
    }
    let mut sorted = v.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut prefix = 0.0;
    for (k, &s) in sorted.iter().enumerate() {
        prefix += s;
        // With the k+1 largest values above τ: Σ (v_j − τ) = prefix − (k+1)τ = β.
        let tau = (prefix - beta) / (k + 1) as f64;
        let next = sorted.get(k + 1).copied().unwrap_or(0.0);
        if tau >= next {
            return tau.max(0.0);
        }
    }
    0.0
}

/// The optimal output δ of the complete-arrangement program: (M30) for the squared loss, its hinge
/// analogue (Corollary 4.1) for labels ±1. The logistic loss has no closed form here (solve the
/// Lasso instead): an error, as are labels other than ±1 for the hinge loss.
pub fn complete_arrangement_output(y: &[f64], lambda: f64, loss: Loss) -> Result<Vec<f64>> {
    match loss {
        Loss::Squared => Ok(squared_output(y, lambda)),
        Loss::Hinge => {
            check_labels(y)?;
            let (pos, neg) = class_fractions(y);
            Ok(y.iter()
                .map(|&v| {
                    let frac = if v > 0.0 { pos } else { neg };
                    if lambda < frac {
                        v
                    } else {
                        0.0
                    }
                })
                .collect())
        }
        Loss::Logistic | Loss::Softmax => Err(Error::InvalidSetting(format!(
            "the complete-arrangement program has a closed form for the squared and hinge losses; \
             train the {} loss with the Lasso (--construct lasso)",
            loss.as_str()
        ))),
    }
}

fn check_labels(y: &[f64]) -> Result<()> {
    match y.iter().position(|&v| v != 1.0 && v != -1.0) {
        Some(j) => Err(Error::InvalidData(format!(
            "the hinge loss needs labels -1 or +1, y[{j}] = {}",
            y[j]
        ))),
        None => Ok(()),
    }
}

/// (n₊/n, n₋/n).
fn class_fractions(y: &[f64]) -> (f64, f64) {
    let n = y.len() as f64;
    let pos = y.iter().filter(|&&v| v > 0.0).count() as f64;
    (pos / n, 1.0 - pos / n)
}

/// (M30) for the squared loss: δ_j = min(y_j, τ₊) on y_j > 0 and −min(|y_j|, τ₋) on y_j < 0, with
/// the clip levels of β = nλ.
fn squared_output(y: &[f64], lambda: f64) -> Vec<f64> {
    let beta = lambda * y.len() as f64;
    let pos: Vec<f64> = y.iter().map(|v| v.max(0.0)).collect();
    let neg: Vec<f64> = y.iter().map(|v| (-v).max(0.0)).collect();
    let (tp, tn) = (clip_level(&pos, beta), clip_level(&neg, beta));
    y.iter()
        .map(|&v| {
            if v > 0.0 {
                v.min(tp)
            } else if v < 0.0 {
                -(-v).min(tn)
            } else {
                0.0
            }
        })
        .collect()
}

/// ‖δ₊‖_∞ + ‖δ₋‖_∞.
fn staircase_cost(delta: &[f64]) -> f64 {
    let top = delta.iter().cloned().fold(0.0, f64::max);
    let bottom = delta.iter().map(|v| -v).fold(0.0, f64::max);
    top + bottom
}

/// The objective L(δ, y) + λ(‖δ₊‖_∞ + ‖δ₋‖_∞) of (M30) (or its analogue for `loss`) at δ.
pub fn complete_arrangement_objective(delta: &[f64], y: &[f64], lambda: f64, loss: Loss) -> f64 {
    loss.value(delta, y) + lambda * staircase_cost(delta)
}

/// A certified lower bound on the optimum of the complete-arrangement program at the optimal δ of
/// [`complete_arrangement_output`]: the Lasso dual over all 0/1 columns at θ = (y − δ)/n (squared
/// loss, (M13)) or θ_j = y_j min(λ/n_{±}, 1/n) (hinge, [`crate::program::hinge`]), scaled by
/// s = min(1, λ / max(Σ θ₊, Σ θ₋)) into feasibility. Equal to the objective at the optimum up to
/// rounding.
pub fn complete_arrangement_dual(delta: &[f64], y: &[f64], lambda: f64, loss: Loss) -> Result<f64> {
    let n = y.len() as f64;
    let theta: Vec<f64> = match loss {
        Loss::Squared => delta.iter().zip(y).map(|(d, t)| (t - d) / n).collect(),
        Loss::Hinge => {
            check_labels(y)?;
            let (pos, neg) = class_fractions(y);
            y.iter()
                .map(|&v| {
                    let count = n * if v > 0.0 { pos } else { neg };
                    v * (lambda / count).min(1.0 / n)
                })
                .collect()
        }
        Loss::Logistic | Loss::Softmax => {
            return complete_arrangement_output(y, lambda, loss).map(|_| 0.0)
        }
    };
    let plus: f64 = theta.iter().map(|t| t.max(0.0)).sum();
    let minus: f64 = theta.iter().map(|t| (-t).max(0.0)).sum();
    let c = plus.max(minus);
    let s = if c > lambda { lambda / c } else { 1.0 };
    let ty: f64 = theta.iter().zip(y).map(|(t, v)| t * v).sum();
    Ok(match loss {
        Loss::Squared => s * ty - 0.5 * n * s * s * theta.iter().map(|t| t * t).sum::<f64>(),
        _ => s * ty,
    })
}

/// The staircase (M31): δ₊ = Σ_k (a_k − a_{k−1}) 1[δ ≥ a_k] over the distinct positive values
/// a_1 < … < a_p of δ, and likewise −δ₋; returns (pattern, coefficient) pairs whose Lasso cost
/// Σ|coefficient| is ‖δ₊‖_∞ + ‖δ₋‖_∞. At most n neurons.
pub fn staircase(delta: &[f64]) -> Vec<(Vec<bool>, f64)> {
    let mut out = Vec::new();
    for sign in [1.0, -1.0] {
        let mut levels: Vec<f64> = delta
            .iter()
            .map(|v| sign * v)
            .filter(|v| *v > 0.0)
            .collect();
        levels.sort_by(f64::total_cmp);
        levels.dedup();
        let mut previous = 0.0;
        for a in levels {
            let pattern = delta.iter().map(|v| sign * v >= a).collect();
            out.push((pattern, sign * (a - previous)));
            previous = a;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::PatternSet;
    use crate::model::{train, PatternSource, SolverChoice, TrainOptions};
    use crate::program::Formulation;
    use crate::rng::Rng;
    use crate::solver::{Silent, StopFlag};
    use faer::Mat;

    /// The closed form equals the Lasso over all 2ⁿ − 1 nonzero columns solved by the interior-point
    /// backend (a generic solver), for the squared and the hinge loss; its dual certificate closes
    /// the gap; and the staircase rebuilds δ at the Lasso cost ‖δ₊‖_∞ + ‖δ₋‖_∞.
    #[test]
    fn closed_form_matches_lasso_over_every_pattern() {
        let n = 7;
        for (seed, loss) in (0..8).map(|s| (s, [Loss::Squared, Loss::Hinge][s as usize % 2])) {
            let mut r = Rng::new(seed);
            let y: Vec<f64> = (0..n)
                .map(|_| match loss {
                    Loss::Hinge => [1.0, -1.0][r.below(2)],
                    _ => r.normal(),
                })
                .collect();
            let lambda = [0.01, 0.05, 0.2, 1.0][seed as usize / 2];
            let delta = complete_arrangement_output(&y, lambda, loss).unwrap();
            let closed = complete_arrangement_objective(&delta, &y, lambda, loss);
            let dual = complete_arrangement_dual(&delta, &y, lambda, loss).unwrap();
            assert!(dual <= closed + 1e-15 && closed - dual <= 1e-12 * closed);
            let masks: Vec<Vec<bool>> = (1u32..(1 << n))
                .map(|m| (0..n).map(|j| m >> j & 1 == 1).collect())
                .collect();
            let x = Mat::from_fn(n, 1, |_, _| 1.0);
            let opts = TrainOptions {
                formulation: Formulation::Threshold,
                loss,
                lambda,
                patterns: PatternSource::Masks(masks),
                solver: SolverChoice::Clarabel,
                ..TrainOptions::default()
            };
            let fit = train(x.as_ref(), &y, &opts, &mut Silent, &StopFlag::new()).unwrap();
            let lasso = fit.certificate.info.objective;
            assert!(
                (lasso - closed).abs() <= 1e-7 * closed,
                "seed {seed} {loss:?}: {lasso} vs {closed}"
            );
            let steps = staircase(&delta);
            assert!(steps.len() <= n);
            let cost: f64 = steps.iter().map(|(_, c)| c.abs()).sum();
            let top = delta.iter().cloned().fold(0.0, f64::max);
            let bottom = delta.iter().map(|v| -v).fold(0.0, f64::max);
            assert!((cost - (top + bottom)).abs() < 1e-12);
            for j in 0..n {
                let rebuilt: f64 = steps.iter().filter(|(p, _)| p[j]).map(|(_, c)| c).sum();
                assert!((rebuilt - delta[j]).abs() < 1e-12);
            }
            // The staircase's columns, as a Lasso solution, attain the closed-form objective.
            let cols: Vec<Vec<bool>> = steps.iter().map(|(p, _)| p.clone()).collect();
            assert!(
                PatternSet::from_columns(n, &cols, None, true)
                    .unwrap()
                    .len()
                    == steps.len()
            );
        }
    }

    #[test]
    fn large_lambda_gives_zero_and_clip_level_is_exact() {
        let y = [3.0, 1.0, -2.0];
        let d = complete_arrangement_output(&y, 10.0, Loss::Squared).unwrap();
        assert!(d.iter().all(|v| *v == 0.0));
        // hinge: 2 of 3 positive, so δ = y on the positives iff λ < 2/3, on the negative iff λ < 1/3.
        let y = [1.0, 1.0, -1.0];
        let d = complete_arrangement_output(&y, 0.5, Loss::Hinge).unwrap();
        assert_eq!(d, vec![1.0, 1.0, 0.0]);
        assert!(complete_arrangement_output(&[2.0], 0.5, Loss::Hinge).is_err());
        assert!(complete_arrangement_output(&y, 0.5, Loss::Logistic).is_err());
        // Σ (v − τ)₊ = β for τ = 1.5 with v = [3, 1], β = 1.5
        assert!((clip_level(&[3.0, 1.0], 1.5) - 1.5).abs() < 1e-15);
        assert!((clip_level(&[3.0, 2.0], 1.0) - 2.0).abs() < 1e-15);
    }
}
