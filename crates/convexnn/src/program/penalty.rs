//! The group penalty R(U) = Σ_i ‖u_i‖₂ over the columns of U (one group per neuron), its proximal
//! operator (docs/programs.md (M17)) and the min-norm subgradient distance (M14).

use faer::{MatMut, MatRef};

use crate::real::Real;

/// Euclidean norm of a column, in f64.
pub fn column_norm<T: Real>(c: &[T]) -> f64 {
    c.iter()
        .map(|v| v.as_f64() * v.as_f64())
        .sum::<f64>()
        .sqrt()
}

/// R(U) = Σ_i ‖u_i‖₂.
pub fn group_norm_sum<T: Real>(u: MatRef<'_, T>) -> f64 {
    (0..u.ncols()).map(|i| column_norm(col(u, i))).sum()
}

/// Column `i` of a column-major view as a slice.
pub fn col<'a, T: Real>(u: MatRef<'a, T>, i: usize) -> &'a [T] {
    u.col(i)
        .try_as_col_major()
        .expect("column-major storage")
        .as_slice()
}

/// Mutable column `i` of a column-major view as a slice.
pub fn col_mut<'a, T: Real>(u: MatMut<'a, T>, i: usize) -> &'a mut [T] {
    u.col_mut(i)
        .try_as_col_major_mut()
        .expect("column-major storage")
        .as_slice_mut()
}

/// In place, `u ← prox_{τ‖·‖}(u)` column by column: (1 − τ/‖u_i‖)₊ u_i (group soft-thresholding, M17).
pub fn prox_group<T: Real>(mut u: MatMut<'_, T>, tau: f64) {
    for i in 0..u.ncols() {
        let c = col_mut(u.as_mut(), i);
        let nrm = column_norm(c);
        let scale = if nrm > tau { 1.0 - tau / nrm } else { 0.0 };
        let s = T::lit(scale);
        for v in c.iter_mut() {
            *v *= s;
        }
    }
}

/// Squared norm of the min-norm element of ∇f(U) + λ ∂R(U) (M14): zero exactly at a minimizer.
pub fn min_norm_subgradient_sq<T: Real>(u: MatRef<'_, T>, grad: MatRef<'_, T>, lambda: f64) -> f64 {
    let mut total = 0.0;
    for i in 0..u.ncols() {
        let (ui, gi) = (col(u, i), col(grad, i));
        let nu = column_norm(ui);
        if nu > 0.0 {
            total += ui
                .iter()
                .zip(gi)
                .map(|(a, g)| (g.as_f64() + lambda * a.as_f64() / nu).powi(2))
                .sum::<f64>();
        } else {
            let ng = column_norm(gi);
            total += (ng - lambda).max(0.0).powi(2);
        }
    }
    total
}

/// Largest column norm max_i ‖g_i‖ (the dual constraint of (M13) reads max_i ‖Xᵀ D_i θ‖ ≤ λ).
pub fn max_column_norm<T: Real>(g: MatRef<'_, T>) -> f64 {
    (0..g.ncols())
        .map(|i| column_norm(col(g, i)))
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use faer::Mat;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// (z − prox(z))/τ ∈ ∂‖·‖(prox(z)), and prox is nonexpansive.
        #[test]
        fn prox_optimality_and_nonexpansive(seed in 0u64..10_000, tau in 0.01f64..3.0, d in 1usize..6) {
            let mut r = Rng::new(seed);
            let z = Mat::from_fn(d, 2, |_, _| r.normal());
            let z2 = Mat::from_fn(d, 2, |_, _| r.normal());
            let (mut p, mut p2) = (z.clone(), z2.clone());
            prox_group(p.as_mut(), tau);
            prox_group(p2.as_mut(), tau);
            for i in 0..2 {
                let (pi, zi) = (p.col_as_slice(i), z.col_as_slice(i));
                let g: Vec<f64> = zi.iter().zip(pi).map(|(a, b)| (a - b) / tau).collect();
                let np = column_norm(pi);
                if np > 0.0 {
                    for k in 0..d { prop_assert!((g[k] - pi[k] / np).abs() < 1e-9); }
                } else {
                    prop_assert!(column_norm(&g) <= 1.0 + 1e-12);
                }
            }
            let dist = |a: &Mat<f64>, b: &Mat<f64>| {
                let mut s = 0.0;
                for i in 0..2 { for k in 0..d { s += (a[(k, i)] - b[(k, i)]).powi(2); } }
                s.sqrt()
            };
            prop_assert!(dist(&p, &p2) <= dist(&z, &z2) + 1e-12);
        }
    }

    #[test]
    fn subgradient_vanishes_at_a_group_lasso_optimum() {
        // min ½‖u − a‖² + λ‖u‖ has u* = prox(a); the gradient there is u* − a.
        let a = Mat::from_fn(3, 2, |k, i| if i == 0 { 2.0 + k as f64 } else { 0.1 });
        let lambda = 1.0;
        let mut u = a.clone();
        prox_group(u.as_mut(), lambda);
        let grad = Mat::from_fn(3, 2, |k, i| u[(k, i)] - a[(k, i)]);
        assert!(min_norm_subgradient_sq(u.as_ref(), grad.as_ref(), lambda) < 1e-24);
        assert!(min_norm_subgradient_sq(a.as_ref(), grad.as_ref(), lambda) > 1e-3);
    }
}
