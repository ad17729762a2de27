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

/// The optimal output δ of (M30): δ_j = min(y_j, τ₊) on y_j > 0 and −min(|y_j|, τ₋) on y_j < 0,
/// with the clip levels of β = nλ.
pub fn complete_arrangement_output(y: &[f64], lambda: f64) -> Vec<f64> {
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

/// The objective of (M30) at δ.
pub fn complete_arrangement_objective(delta: &[f64], y: &[f64], lambda: f64) -> f64 {
    let n = y.len() as f64;
    let fit: f64 = delta
        .iter()
        .zip(y)
        .map(|(d, t)| (d - t).powi(2))
        .sum::<f64>()
        / (2.0 * n);
    let top = delta.iter().cloned().fold(0.0, f64::max);
    let bottom = delta.iter().map(|v| -v).fold(0.0, f64::max);
    fit + lambda * (top + bottom)
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
    /// backend, and the staircase rebuilds δ at the Lasso cost ‖δ₊‖_∞ + ‖δ₋‖_∞.
    #[test]
    fn closed_form_matches_lasso_over_every_pattern() {
        let n = 7;
        for seed in 0..4 {
            let mut r = Rng::new(seed);
            let y: Vec<f64> = (0..n).map(|_| r.normal()).collect();
            let lambda = [0.01, 0.05, 0.2, 1.0][seed as usize];
            let delta = complete_arrangement_output(&y, lambda);
            let closed = complete_arrangement_objective(&delta, &y, lambda);
            let masks: Vec<Vec<bool>> = (1u32..(1 << n))
                .map(|m| (0..n).map(|j| m >> j & 1 == 1).collect())
                .collect();
            let x = Mat::from_fn(n, 1, |_, _| 1.0);
            let opts = TrainOptions {
                formulation: Formulation::Threshold,
                lambda,
                patterns: PatternSource::Masks(masks),
                solver: SolverChoice::Clarabel,
                ..TrainOptions::default()
            };
            let fit = train(x.as_ref(), &y, &opts, &mut Silent, &StopFlag::new()).unwrap();
            let lasso = fit.certificate.info.objective;
            assert!(
                (lasso - closed).abs() <= 1e-7 * closed,
                "seed {seed}: {lasso} vs {closed}"
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
        let d = complete_arrangement_output(&y, 10.0);
        assert!(d.iter().all(|v| *v == 0.0));
        // Σ (v − τ)₊ = β for τ = 1.5 with v = [3, 1], β = 1.5
        assert!((clip_level(&[3.0, 1.0], 1.5) - 1.5).abs() < 1e-15);
        assert!((clip_level(&[3.0, 2.0], 1.0) - 2.0).abs() < 1e-15);
    }
}
