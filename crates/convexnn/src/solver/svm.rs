//! The hard-margin linear support vector machine by dual coordinate descent (Hsieh et al., ICML 2008,
//! with C = ∞), used by the Convex-SVM construction of threshold networks (Ergen et al. 2023, §5):
//!
//! ```text
//! primal   min_w ½‖w‖²   s.t.  t_j z_jᵀw ≥ 1  (j = 1..n),
//! dual     max_{α ≥ 0} Σ_j α_j − ½‖Σ_j α_j t_j z_j‖²,
//! ```
//!
//! for rows z_j and labels t_j = ±1; the intercept is a ones column of Z (regularized with w, as in
//! liblinear). A coordinate step maximizes the dual in α_j exactly,
//! α_j ← max(0, α_j + (1 − t_j z_jᵀw)/‖z_j‖²), keeping w = Σ α_j t_j z_j. It stops on a certified
//! duality gap: with γ = min_j t_j z_jᵀw > 0, the point w/γ is primal feasible with value ½‖w‖²/γ²,
//! an upper bound on the optimum, and the dual value at α is a lower bound. The returned weights
//! are that feasible w/γ, so every margin is at least 1. When Z has full row rank every labelling
//! is separable and the dual is strongly concave, so the iterates converge linearly.

use faer::MatRef;

use super::Status;
use crate::error::{Error, Result};

/// Settings of [`hard_margin_svm`], with documented defaults.
#[derive(Clone, Debug)]
pub struct SvmSettings {
    /// Stop when (primal − dual) ≤ `tol` · primal. Default 1e-6.
    pub tol: f64,
    /// Cap on passes over the samples. Default 10 000.
    pub max_epochs: usize,
}

impl Default for SvmSettings {
    fn default() -> Self {
        SvmSettings {
            tol: 1e-6,
            max_epochs: 10_000,
        }
    }
}

/// What [`hard_margin_svm`] returns.
#[derive(Clone, Debug)]
pub struct SvmOutput {
    /// Feasible weights: t_j z_jᵀw ≥ 1 for every j.
    pub w: Vec<f64>,
    /// ½‖w‖² of the returned weights (an upper bound on the optimum).
    pub primal: f64,
    /// The dual value (a lower bound on the optimum).
    pub dual: f64,
    /// Passes over the samples.
    pub epochs: usize,
    /// Converged when the relative gap is at most the tolerance, else max iterations.
    pub status: Status,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves the hard-margin SVM on the rows of `z` with labels `t` (±1). An error when the labels
/// are not ±1, a row is zero, or no separating w was found within the epoch cap (the data may not
/// be linearly separable).
pub fn hard_margin_svm(z: MatRef<'_, f64>, t: &[f64], settings: &SvmSettings) -> Result<SvmOutput> {
    let (n, d) = (z.nrows(), z.ncols());
    if t.len() != n {
        return Err(Error::InvalidData(format!(
            "{} labels for {n} rows of the SVM data",
            t.len()
        )));
    }
    if let Some(j) = t.iter().position(|&v| v != 1.0 && v != -1.0) {
        return Err(Error::InvalidData(format!(
            "SVM labels must be -1 or +1, t[{j}] = {}",
            t[j]
        )));
    }
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|j| (0..d).map(|k| z[(j, k)]).collect())
        .collect();
    let sq: Vec<f64> = rows.iter().map(|r| dot(r, r)).collect();
    if let Some(j) = sq.iter().position(|&s| !(s > 0.0 && s.is_finite())) {
        return Err(Error::InvalidData(format!(
            "row {j} of the SVM data is zero or not finite: no margin can separate it"
        )));
    }
    let mut alpha = vec![0.0; n];
    let mut w = vec![0.0; d];
    let mut best: Option<(Vec<f64>, f64)> = None;
    let mut dual = 0.0f64;
    for epoch in 1..=settings.max_epochs {
        for j in 0..n {
            let step = (1.0 - t[j] * dot(&rows[j], &w)) / sq[j];
            let new = (alpha[j] + step).max(0.0);
            let delta = new - alpha[j];
            if delta != 0.0 {
                alpha[j] = new;
                for (wk, zk) in w.iter_mut().zip(&rows[j]) {
                    *wk += delta * t[j] * zk;
                }
            }
        }
        let ww = dot(&w, &w);
        dual = dual.max(alpha.iter().sum::<f64>() - 0.5 * ww);
        let gamma = (0..n)
            .map(|j| t[j] * dot(&rows[j], &w))
            .fold(f64::INFINITY, f64::min);
        if gamma > 0.0 {
            let primal = 0.5 * ww / (gamma * gamma);
            if best.as_ref().is_none_or(|(_, p)| primal < *p) {
                best = Some((w.iter().map(|v| v / gamma).collect(), primal));
            }
        }
        if let Some((wf, primal)) = &best {
            if primal - dual <= settings.tol * primal {
                return Ok(SvmOutput {
                    w: wf.clone(),
                    primal: *primal,
                    dual,
                    epochs: epoch,
                    status: Status::Converged,
                });
            }
        }
    }
    match best {
        Some((w, primal)) => Ok(SvmOutput {
            w,
            primal,
            dual,
            epochs: settings.max_epochs,
            status: Status::MaxIterations,
        }),
        None => Err(Error::InvalidData(format!(
            "no separating hyperplane found in {} passes: the labels may not be linearly separable",
            settings.max_epochs
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use faer::Mat;

    /// On random separable data the certified gap closes, every margin is at least 1, and the
    /// optimum matches the two-point closed form where it is known.
    #[test]
    fn duality_gap_closes_and_margins_hold() {
        for seed in 0..5 {
            let mut r = Rng::new(seed);
            let (n, d) = (30, 40); // full row rank: every labelling is separable
            let z = Mat::from_fn(n, d, |_, k| if k == d - 1 { 1.0 } else { r.normal() });
            let t: Vec<f64> = (0..n).map(|_| [1.0, -1.0][r.below(2)]).collect();
            let out = hard_margin_svm(z.as_ref(), &t, &SvmSettings::default()).unwrap();
            assert_eq!(out.status, Status::Converged, "seed {seed}");
            assert!(out.dual <= out.primal && out.primal - out.dual <= 1e-6 * out.primal);
            for j in 0..n {
                let m: f64 = t[j] * (0..d).map(|k| z[(j, k)] * out.w[k]).sum::<f64>();
                assert!(m >= 1.0 - 1e-12, "seed {seed} row {j}: margin {m}");
            }
            let ww: f64 = out.w.iter().map(|v| v * v).sum();
            assert!((0.5 * ww - out.primal).abs() <= 1e-12 * out.primal);
        }
        // Two points ±e₁: w* = e₁, optimum ½.
        let z = Mat::from_fn(2, 2, |j, k| if k == 0 { [1.0, -1.0][j] } else { 0.0 });
        let out = hard_margin_svm(z.as_ref(), &[1.0, -1.0], &SvmSettings::default()).unwrap();
        assert!((out.primal - 0.5).abs() < 1e-9 && (out.w[0] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn inseparable_and_bad_input_are_errors() {
        // The same point with both labels.
        let z = Mat::from_fn(2, 1, |_, _| 1.0);
        let s = SvmSettings {
            max_epochs: 50,
            ..SvmSettings::default()
        };
        let e = hard_margin_svm(z.as_ref(), &[1.0, -1.0], &s).unwrap_err();
        assert!(e.to_string().contains("separable"), "{e}");
        assert!(hard_margin_svm(z.as_ref(), &[1.0, 0.0], &s).is_err());
        let zero = Mat::<f64>::zeros(2, 1);
        assert!(hard_margin_svm(zero.as_ref(), &[1.0, -1.0], &s).is_err());
    }
}
