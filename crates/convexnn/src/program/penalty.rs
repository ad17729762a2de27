//! The group penalty R(U) = Σ_i ‖u_i‖₂ over the columns of U (one group per neuron), its proximal
//! operator (docs/programs.md (M17)) and the min-norm subgradient distance (M14); and the penalties of
//! the vector-output programs ([`GroupPenalty`], (M53)), which read each column as a d × c block.

use faer::{Mat, MatMut, MatRef};

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

/// The penalty R(U) = Σ_i r(u_i) over the columns u_i of U, where r is a norm of the column:
/// the Euclidean norm (one group per neuron, (M11)), or for vector outputs a norm of the column read as
/// the d × c block U_i of a pattern, column-major (docs/programs.md (M53)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GroupPenalty {
    /// r(u) = ‖u‖₂ (for a block: the Frobenius norm ‖U_i‖_F).
    #[default]
    Columns,
    /// The column is c consecutive pieces of length `block` (the outputs' weight vectors) and
    /// r(u) = Σ_k ‖u_k‖₂: one group per (output, pattern), scnn's penalty (M4).
    Split {
        /// Length d of each piece.
        block: usize,
    },
    /// The column is the `rows` × c matrix U_i (column-major) and r(u) = ‖U_i‖_*, the nuclear norm.
    Nuclear {
        /// Rows d of each block.
        rows: usize,
    },
}

/// The singular values of a block and its factors, in f64.
struct BlockSvd {
    s: Vec<f64>,
    u: Mat<f64>,
    v: Mat<f64>,
}

/// The `rows` × (len/rows) matrix of a column, column-major, in f64.
fn block_of<T: Real>(c: &[T], rows: usize) -> Mat<f64> {
    Mat::from_fn(rows, c.len() / rows, |r, k| c[k * rows + r].as_f64())
}

fn block_svd(m: &Mat<f64>) -> BlockSvd {
    match m.thin_svd() {
        Ok(svd) => {
            let s = svd.S().column_vector();
            BlockSvd {
                s: (0..s.nrows()).map(|i| s[i]).collect(),
                u: svd.U().to_owned(),
                v: svd.V().to_owned(),
            }
        }
        // A failed SVD (non-finite entries) reads as an infinite norm, so that no solver accepts it.
        Err(_) => BlockSvd {
            s: vec![f64::INFINITY],
            u: Mat::zeros(m.nrows(), 1),
            v: Mat::zeros(m.ncols(), 1),
        },
    }
}

/// Σ_r f(σ_r) a_r b_rᵀ, written into the column `c`.
fn write_spectral<T: Real>(svd: &BlockSvd, f: impl Fn(f64) -> f64, c: &mut [T]) {
    let (rows, cols) = (svd.u.nrows(), svd.v.nrows());
    let scaled: Vec<f64> = svd.s.iter().map(|&s| f(s)).collect();
    for k in 0..cols {
        for r in 0..rows {
            let v: f64 = (0..scaled.len())
                .filter(|&t| scaled[t] != 0.0)
                .map(|t| svd.u[(r, t)] * scaled[t] * svd.v[(k, t)])
                .sum();
            c[k * rows + r] = T::lit(v);
        }
    }
}

impl GroupPenalty {
    /// r(u) of one column.
    pub fn group_value<T: Real>(&self, c: &[T]) -> f64 {
        match *self {
            GroupPenalty::Columns => column_norm(c),
            GroupPenalty::Split { block } => c.chunks(block.max(1)).map(column_norm).sum(),
            GroupPenalty::Nuclear { rows } => {
                if c.iter().all(|v| *v == T::zero()) {
                    return 0.0;
                }
                block_svd(&block_of(c, rows)).s.iter().sum()
            }
        }
    }

    /// The dual norm r°(g) of one column: ‖g‖₂, max_k ‖g_k‖₂, or the spectral norm of the block.
    pub fn dual_group_norm<T: Real>(&self, g: &[T]) -> f64 {
        match *self {
            GroupPenalty::Columns => column_norm(g),
            GroupPenalty::Split { block } => {
                g.chunks(block.max(1)).map(column_norm).fold(0.0, f64::max)
            }
            GroupPenalty::Nuclear { rows } => block_svd(&block_of(g, rows))
                .s
                .iter()
                .cloned()
                .fold(0.0, f64::max),
        }
    }

    /// R(U) = Σ_i r(u_i).
    pub fn value<T: Real>(&self, u: MatRef<'_, T>) -> f64 {
        (0..u.ncols()).map(|i| self.group_value(col(u, i))).sum()
    }

    /// max_i r°(g_i): the dual constraint of the program reads max_i r°((A*θ)_i) ≤ λ.
    pub fn dual_max<T: Real>(&self, g: MatRef<'_, T>) -> f64 {
        (0..g.ncols())
            .map(|i| self.dual_group_norm(col(g, i)))
            .fold(0.0, f64::max)
    }

    /// In place, `u ← prox_{τR}(u)`: group soft-thresholding of each column (M17), of each piece,
    /// or of each block's singular values (M53).
    pub fn prox<T: Real>(&self, mut u: MatMut<'_, T>, tau: f64) {
        match *self {
            GroupPenalty::Columns => prox_group(u, tau),
            GroupPenalty::Split { block } => {
                for i in 0..u.ncols() {
                    for piece in col_mut(u.as_mut(), i).chunks_mut(block.max(1)) {
                        shrink(piece, tau);
                    }
                }
            }
            GroupPenalty::Nuclear { rows } => {
                for i in 0..u.ncols() {
                    let c = col_mut(u.as_mut(), i);
                    if c.iter().all(|v| *v == T::zero()) {
                        continue;
                    }
                    let svd = block_svd(&block_of(c, rows));
                    write_spectral(&svd, |s| (s - tau).max(0.0), c);
                }
            }
        }
    }

    /// Squared norm of the min-norm element of ∇f(U) + λ ∂R(U) (M14), zero exactly at a minimizer.
    pub fn min_norm_subgradient_sq<T: Real>(
        &self,
        u: MatRef<'_, T>,
        grad: MatRef<'_, T>,
        lambda: f64,
    ) -> f64 {
        match *self {
            GroupPenalty::Columns => min_norm_subgradient_sq(u, grad, lambda),
            GroupPenalty::Split { block } => (0..u.ncols())
                .map(|i| {
                    col(u, i)
                        .chunks(block.max(1))
                        .zip(col(grad, i).chunks(block.max(1)))
                        .map(|(ui, gi)| group_subgradient_sq(ui, gi, lambda))
                        .sum::<f64>()
                })
                .sum(),
            GroupPenalty::Nuclear { rows } => (0..u.ncols())
                .map(|i| nuclear_subgradient_sq(col(u, i), col(grad, i), rows, lambda))
                .sum(),
        }
    }
}

/// (1 − τ/‖c‖)₊ c in place.
fn shrink<T: Real>(c: &mut [T], tau: f64) {
    let nrm = column_norm(c);
    let s = T::lit(if nrm > tau { 1.0 - tau / nrm } else { 0.0 });
    for v in c.iter_mut() {
        *v *= s;
    }
}

/// dist(−g, λ∂‖·‖(u))² for one Euclidean group.
fn group_subgradient_sq<T: Real>(u: &[T], g: &[T], lambda: f64) -> f64 {
    let nu = column_norm(u);
    if nu > 0.0 {
        u.iter()
            .zip(g)
            .map(|(a, g)| (g.as_f64() + lambda * a.as_f64() / nu).powi(2))
            .sum()
    } else {
        (column_norm(g) - lambda).max(0.0).powi(2)
    }
}

/// dist(−G, λ∂‖·‖_*(Z))² for one block: with Z = A_r Σ B_rᵀ (rank r), ∂‖Z‖_* = {A_rB_rᵀ + W :
/// A_rᵀW = 0, WB_r = 0, ‖W‖₂ ≤ 1}, so the distance is ‖M − P⊥MQ⊥‖² + Σ_k (σ_k(P⊥GQ⊥) − λ)₊² with
/// M = G + λA_rB_rᵀ, P⊥ = I − A_rA_rᵀ and Q⊥ = I − B_rB_rᵀ.
fn nuclear_subgradient_sq<T: Real>(u: &[T], g: &[T], rows: usize, lambda: f64) -> f64 {
    let gm = block_of(g, rows);
    let cols = gm.ncols();
    let z = block_of(u, rows);
    let zs = if u.iter().all(|v| *v == T::zero()) {
        None
    } else {
        Some(block_svd(&z))
    };
    let rank = zs.as_ref().map_or(0, |s| {
        let top = s.s.first().copied().unwrap_or(0.0);
        s.s.iter().filter(|&&v| v > 1e-12 * top).count()
    });
    let (a, b) = match &zs {
        Some(s) => (
            s.u.subcols(0, rank).to_owned(),
            s.v.subcols(0, rank).to_owned(),
        ),
        None => (Mat::zeros(rows, 0), Mat::zeros(cols, 0)),
    };
    let pa = Mat::<f64>::identity(rows, rows) - &a * a.transpose();
    let qb = Mat::<f64>::identity(cols, cols) - &b * b.transpose();
    let m = &gm + (&a * b.transpose()) * faer::Scale(lambda);
    let perp = &pa * &gm * &qb;
    let inside = (&m - &perp).squared_norm_l2();
    let outside: f64 = block_svd(&perp)
        .s
        .iter()
        .map(|s| (s - lambda).max(0.0).powi(2))
        .sum();
    inside + outside
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
