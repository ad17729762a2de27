//! The threshold Lasso with the hinge loss (Ergen et al. 2023, Corollary 4.1, eq. (16)–(18), dual
//! eq. (32); docs/programs.md (M29) with ℓ = hinge), in the normalization of [`crate::program`]:
//!
//! ```text
//! primal   min_z  ℓ(Kz) + λ‖z‖₁,            ℓ(ŷ) = (1/n) Σ_j max(0, 1 − y_j ŷ_j),  y_j = ±1,
//! dual     max_θ  −ℓ*(−θ) = Σ_j y_j θ_j    s.t.  0 ≤ y_j θ_j ≤ 1/n,  ‖Kᵀθ‖_∞ ≤ λ.
//! ```
//!
//! The conjugate: per sample, sup_u v u − (1/n)(1 − y u)₊ = y v when −1/n ≤ y v ≤ 0 and +∞ otherwise,
//! so −ℓ*(−θ) = Σ_j y_j θ_j on the box above. Any θ becomes dual feasible by clipping y_j θ_j to
//! [0, 1/n] and scaling by s = min(1, λ/‖Kᵀθ‖_∞) (the box contains 0 and is convex); its value is
//! then a certified lower bound on the optimum. Both programs are linear programs: the primal–dual
//! method [`crate::solver::pdhg`] solves them to a certified gap, the interior-point backend
//! [`crate::solver::exact`] exactly.

/// In place, θ_j ← y_j · clamp(y_j θ_j, 0, 1/n): the projection onto the box of the dual.
pub fn project_dual_box(theta: &mut [f64], y: &[f64]) {
    let inv_n = 1.0 / y.len() as f64;
    for (t, &yj) in theta.iter_mut().zip(y) {
        *t = yj * (yj * *t).clamp(0.0, inv_n);
    }
}

/// The dual objective Σ_j y_j θ_j of a point θ of the box.
pub fn dual_value(theta: &[f64], y: &[f64]) -> f64 {
    theta.iter().zip(y).map(|(t, yj)| t * yj).sum()
}

/// The certified lower bound s Σ_j y_j θ_j at θ of the box, given c = ‖Kᵀθ‖_∞:
/// s = min(1, λ / c) restores the constraint ‖Kᵀ(sθ)‖_∞ ≤ λ.
pub fn certified_bound(theta: &[f64], y: &[f64], kt_theta_max: f64, lambda: f64) -> f64 {
    let s = if kt_theta_max > lambda {
        lambda / kt_theta_max
    } else {
        1.0
    };
    s * dual_value(theta, y)
}

/// The primal objective ℓ(ŷ) + λ‖z‖₁ from the predictions ŷ = Kz and the coefficients z.
pub fn primal_value(yhat: &[f64], y: &[f64], z: &[f64], lambda: f64) -> f64 {
    super::Loss::Hinge.value(yhat, y) + lambda * z.iter().map(|v| v.abs()).sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projection_lands_in_the_box_and_bound_is_weak_duality() {
        let y = [1.0, -1.0, 1.0, -1.0];
        let mut theta = vec![2.0, 2.0, -0.1, -0.1];
        project_dual_box(&mut theta, &y);
        assert_eq!(theta, vec![0.25, 0.0, 0.0, -0.1]);
        // K = I: primal at z = 0 is 1; any certified bound lies below every primal value.
        let c = theta.iter().map(|v: &f64| v.abs()).fold(0.0, f64::max);
        for lambda in [0.01, 0.1, 1.0] {
            let b = certified_bound(&theta, &y, c, lambda);
            assert!(b <= primal_value(&[0.0; 4], &y, &[0.0; 4], lambda));
            let z = [1.0, -1.0, 1.0, -1.0];
            assert!(b <= primal_value(&z, &y, &z, lambda) + 1e-15);
        }
    }
}
