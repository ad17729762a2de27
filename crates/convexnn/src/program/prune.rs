//! Pruning a solution of (M6) or (M11) to at most n + 1 nonzero blocks without changing its objective
//! (docs/programs.md (M6), "some optimal solution has m* ≤ n + 1"; Pilanci & Ergen 2020, Theorem 1 and
//! its Carathéodory argument), constructively.
//!
//! Write the active blocks as ŷ = Σ_k c_k a_k with c_k = ‖u_k‖ and a_k = ±D_{i(k)} X u_k / ‖u_k‖ (the sign
//! is − for the W columns of ReLU weights; D_i becomes M_i = cI + (1 − c)D_i for leaky ReLU and abs,
//! (M40)). While the vectors [a_k; 1] ∈ ℝ^{n+1} are linearly dependent,
//! pick ξ ≠ 0 with Σ ξ_k [a_k; 1] = 0 and some ξ_k > 0, and set c ← c − tξ with t = min_{ξ_k>0} c_k/ξ_k:
//! Σ c_k a_k (the predictions) and Σ c_k (the penalty) are unchanged, every c_k stays ≥ 0 and at least
//! one becomes 0. Each block is then rescaled to norm c_k; cones are closed under positive scaling, so
//! ReLU feasibility is kept and the objective is unchanged.

use faer::{Mat, MatRef};

use super::penalty::column_norm;
use super::Formulation;
use crate::features::PatternSet;

/// Singular values below this fraction of the largest count as zero.
const RANK_TOL: f64 = 1e-10;
/// Coefficients below this fraction of the largest initial one are set exactly to zero.
const DEAD_TOL: f64 = 1e-14;

/// Prunes convex weights to at most n + 1 nonzero blocks with the same training predictions and the
/// same penalty Σ‖u_k‖ (so the same objective), see the module documentation.
///
/// `weights` is d × P (gated, (M11): each column is a block) or d × 2P = [V | W] (ReLU, leaky ReLU,
/// abs, (M6)/(M40): each
/// column of V and of W is its own block), over the patterns `patterns` of `x` (n × d). Every
/// surviving block is a positive multiple of the input block, so cone feasibility (X̃_i v_i ≥ 0) is
/// kept. Weights whose shape does not match, or that are not finite, are returned unchanged; so are
/// weights with at most n + 1 nonzero blocks.
///
/// Linear dependence is decided numerically: singular values below 1e-10 of the largest (of the
/// matrix with columns [a_k; s], s the largest ‖a_k‖) count as zero, so the predictions move by at most
/// about that fraction of their scale. Coefficients falling below 1e-14 of the largest are set to zero.
///
/// Cost: the k active blocks are processed in batches of at most 2(n + 1): each batch is reduced to
/// an independent set (≤ n + 1 blocks) with one SVD of an (n + 1) × 2(n + 1) matrix and, per removed
/// block, one Householder update of the null-space basis. Time O(k·n·d + k·n²), memory O(n² + d·k).
pub fn prune_blocks(
    x: MatRef<'_, f64>,
    patterns: &PatternSet,
    formulation: Formulation,
    weights: &Mat<f64>,
) -> Mat<f64> {
    let (n, d) = (x.nrows(), x.ncols());
    let p = patterns.len();
    let expected_cols = match formulation {
        Formulation::Gated | Formulation::Threshold => p,
        _ => 2 * p,
    };
    let off = formulation.mask_off_value();
    if weights.nrows() != d
        || weights.ncols() != expected_cols
        || patterns.n_samples() != n
        || n == 0
    {
        return weights.clone();
    }
    let finite =
        (0..weights.ncols()).all(|c| weights.col_as_slice(c).iter().all(|v| v.is_finite()));
    if !finite || (0..n).any(|j| (0..d).any(|k| !x[(j, k)].is_finite())) {
        return weights.clone();
    }
    let active: Vec<usize> = (0..weights.ncols())
        .filter(|&c| weights.col_as_slice(c).iter().any(|&v| v != 0.0))
        .collect();
    let k = active.len();
    if k <= n + 1 {
        return weights.clone();
    }
    let norms: Vec<f64> = active
        .iter()
        .map(|&c| column_norm(weights.col_as_slice(c)))
        .collect();
    // a_k = ±M_i X u_k / ‖u_k‖ (M_i = D_i but for (M40)), stored column by column (n × k).
    let mut a = Mat::<f64>::zeros(n, k);
    for (slot, &c) in active.iter().enumerate() {
        let (i, sign) = if c < p { (c, 1.0) } else { (c - p, -1.0) };
        let u = weights.col_as_slice(c);
        let scale = sign / norms[slot];
        for j in 0..n {
            let m = if patterns.get(j, i) { 1.0 } else { off };
            if m != 0.0 {
                let dot: f64 = (0..d).map(|l| x[(j, l)] * u[l]).sum();
                a[(j, slot)] = m * scale * dot;
            }
        }
    }
    let row_scale = (0..k)
        .map(|s| column_norm(a.col_as_slice(s)))
        .fold(0.0, f64::max);
    let row_scale = if row_scale > 0.0 { row_scale } else { 1.0 };
    let mut coef = norms.clone();
    let dead_below = DEAD_TOL * norms.iter().cloned().fold(0.0, f64::max);

    let cap = 2 * (n + 1);
    let mut kept: Vec<usize> = Vec::with_capacity(cap);
    let mut next = 0;
    while next < k {
        while kept.len() < cap && next < k {
            kept.push(next);
            next += 1;
        }
        // A batch that could not be reduced (an SVD failure, or rounding that stalled the loop
        // guard) ends the pruning; the coefficients are valid at every stage.
        if !reduce(a.as_ref(), row_scale, &mut coef, &mut kept, dead_below) || kept.len() >= cap {
            break;
        }
    }

    let mut out = Mat::<f64>::zeros(weights.nrows(), weights.ncols());
    for (slot, &c) in active.iter().enumerate() {
        if coef[slot] > 0.0 {
            let f = coef[slot] / norms[slot];
            for (o, &w) in out
                .col_as_slice_mut(c)
                .iter_mut()
                .zip(weights.col_as_slice(c))
            {
                *o = f * w;
            }
        }
    }
    out
}

/// Reduces the blocks `kept` (indices into the columns of `a`) to a linearly independent set of
/// columns [a_k; s] by moving `coef` along null vectors, removing the blocks whose coefficient
/// reaches zero. Returns false when the SVD fails (the coefficients are then left valid but the set
/// may still be dependent).
fn reduce(
    a: MatRef<'_, f64>,
    row_scale: f64,
    coef: &mut [f64],
    kept: &mut Vec<usize>,
    dead_below: f64,
) -> bool {
    let (n, m) = (a.nrows(), kept.len());
    if m == 0 {
        return true;
    }
    let mat = Mat::from_fn(
        n + 1,
        m,
        |r, j| {
            if r < n {
                a[(r, kept[j])]
            } else {
                row_scale
            }
        },
    );
    let svd = match mat.svd() {
        Ok(s) => s,
        Err(_) => return false,
    };
    let s = svd.S().column_vector();
    let smax = if s.nrows() > 0 { s[0] } else { 0.0 };
    if !(smax.is_finite() && smax > 0.0) {
        return false;
    }
    let rank = (0..s.nrows()).filter(|&i| s[i] > RANK_TOL * smax).count();
    let v = svd.V();
    // Orthonormal basis of the null space, m × r; rows of removed blocks are kept at zero.
    let mut basis = Basis {
        cols: Mat::from_fn(m, m - rank, |i, l| v[(i, rank + l)]),
        first: 0,
    };
    let mut alive = vec![true; m];
    for (slot, &b) in kept.iter().enumerate() {
        if coef[b] <= dead_below {
            coef[b] = 0.0;
            alive[slot] = false;
            basis.eliminate_row(slot);
        }
    }
    let mut guard = 0;
    while basis.dim() > 0 && guard <= m {
        guard += 1;
        let xi: Vec<f64> = basis.lead().to_vec();
        let big = xi
            .iter()
            .cloned()
            .fold(0.0f64, |acc, v| if v.abs() > acc.abs() { v } else { acc });
        let flip = if big < 0.0 { -1.0 } else { 1.0 };
        let mut step = f64::INFINITY;
        let mut arg = usize::MAX;
        for (slot, &b) in kept.iter().enumerate() {
            let e = flip * xi[slot];
            if alive[slot] && e > 0.0 {
                let r = coef[b] / e;
                if r < step {
                    step = r;
                    arg = slot;
                }
            }
        }
        if arg == usize::MAX || !step.is_finite() {
            // The basis vector vanishes on the live blocks; drop it.
            basis.drop_lead();
            continue;
        }
        let mut died = Vec::new();
        for (slot, &b) in kept.iter().enumerate() {
            if !alive[slot] {
                continue;
            }
            let c = if slot == arg {
                0.0
            } else {
                coef[b] - step * flip * xi[slot]
            };
            if c <= dead_below {
                coef[b] = 0.0;
                died.push(slot);
            } else {
                coef[b] = c;
            }
        }
        for slot in died {
            alive[slot] = false;
            basis.eliminate_row(slot);
        }
    }
    let mut slot = 0;
    kept.retain(|_| {
        let keep = alive[slot];
        slot += 1;
        keep
    });
    true
}

/// An orthonormal basis stored in the columns `first..` of `cols`; dropping the leading column is
/// `first += 1`.
struct Basis {
    cols: Mat<f64>,
    first: usize,
}

impl Basis {
    fn dim(&self) -> usize {
        self.cols.ncols() - self.first
    }

    /// The leading basis vector.
    fn lead(&self) -> &[f64] {
        self.cols.col_as_slice(self.first)
    }

    fn drop_lead(&mut self) {
        self.first += 1;
    }

    /// Restricts the basis to {b ∈ span : b_row = 0}: a Householder reflection on the columns maps
    /// row `row` to a multiple of e_1, then the leading column is dropped. A row that is already zero
    /// (to rounding) only has its entries cleared. Cost O(m·dim).
    fn eliminate_row(&mut self, row: usize) {
        let (m, first, r) = (self.cols.nrows(), self.first, self.dim());
        if r == 0 {
            return;
        }
        let w: Vec<f64> = (first..first + r).map(|l| self.cols[(row, l)]).collect();
        let nw = column_norm(&w);
        if nw > 1e-13 {
            // H = I − 2 h hᵀ / hᵀh with h = w − σ e_1, σ = −sign(w_0)‖w‖, so that H w = σ e_1;
            // the columns become B H = B − (2/hᵀh) (B h) hᵀ.
            let sigma = if w[0] >= 0.0 { -nw } else { nw };
            let mut h = w;
            h[0] -= sigma;
            let hh: f64 = h.iter().map(|v| v * v).sum();
            let mut bh = vec![0.0; m];
            for (l, &hl) in h.iter().enumerate() {
                for (t, &b) in bh.iter_mut().zip(self.cols.col_as_slice(first + l)) {
                    *t += hl * b;
                }
            }
            for (l, &hl) in h.iter().enumerate() {
                let f = 2.0 * hl / hh;
                for (b, &t) in self.cols.col_as_slice_mut(first + l).iter_mut().zip(&bh) {
                    *b -= f * t;
                }
            }
            self.drop_lead();
        }
        for l in self.first..self.cols.ncols() {
            self.cols[(row, l)] = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::sample::sample_patterns;
    use crate::rng::Rng;

    fn data(n: usize, d: usize, seed: u64) -> Mat<f64> {
        let mut r = Rng::new(seed);
        Mat::from_fn(n, d, |_, k| if k + 1 == d { 1.0 } else { r.normal() })
    }

    /// Σ_i D_i X (v_i − w_i) (ReLU) or Σ_i D_i X u_i (gated).
    fn predictions(x: MatRef<'_, f64>, pat: &PatternSet, f: Formulation, u: &Mat<f64>) -> Vec<f64> {
        let p = pat.len();
        let mut y = vec![0.0; x.nrows()];
        for c in 0..u.ncols() {
            let (i, s) = if c < p { (c, 1.0) } else { (c - p, -1.0) };
            if f == Formulation::Gated {
                assert!(c < p);
            }
            for (j, yj) in y.iter_mut().enumerate() {
                if pat.get(j, i) {
                    *yj += s * (0..x.ncols()).map(|l| x[(j, l)] * u[(l, c)]).sum::<f64>();
                }
            }
        }
        y
    }

    fn nonzero_blocks(u: &Mat<f64>) -> usize {
        (0..u.ncols())
            .filter(|&c| u.col_as_slice(c).iter().any(|&v| v != 0.0))
            .count()
    }

    fn penalty(u: &Mat<f64>) -> f64 {
        (0..u.ncols()).map(|c| column_norm(u.col_as_slice(c))).sum()
    }

    fn check(x: MatRef<'_, f64>, pat: &PatternSet, f: Formulation, u: &Mat<f64>) -> Mat<f64> {
        let n = x.nrows();
        let before = nonzero_blocks(u);
        assert!(before > n + 1, "test setup: {before} blocks");
        let pruned = prune_blocks(x, pat, f, u);
        let after = nonzero_blocks(&pruned);
        assert!(after <= n + 1, "{after} blocks remain");
        let (y0, y1) = (predictions(x, pat, f, u), predictions(x, pat, f, &pruned));
        let scale = y0.iter().map(|v| v.abs()).fold(0.0, f64::max);
        for (a, b) in y0.iter().zip(&y1) {
            assert!((a - b).abs() <= 1e-10 * scale, "prediction {a} -> {b}");
        }
        let (r0, r1) = (penalty(u), penalty(&pruned));
        let dy = y0
            .iter()
            .zip(&y1)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        eprintln!(
            "{f:?}: {before} -> {after} blocks, prediction change {:.1e}, penalty change {:.1e}",
            dy / scale,
            (r0 - r1).abs() / r0
        );
        assert!((r0 - r1).abs() <= 1e-10 * r0, "penalty {r0} -> {r1}");
        // every surviving block is a nonnegative multiple of its input block
        for c in 0..u.ncols() {
            let (a, b) = (u.col_as_slice(c), pruned.col_as_slice(c));
            let nb = column_norm(b);
            if nb > 0.0 {
                let na = column_norm(a);
                for (p, q) in a.iter().zip(b) {
                    assert!((p / na - q / nb).abs() <= 1e-12);
                }
            }
        }
        pruned
    }

    #[test]
    fn relu_keeps_predictions_penalty_and_cones() {
        for seed in 0..5 {
            let (n, d) = (6, 3);
            let x = data(n, d, seed);
            let pat = sample_patterns(x.as_ref(), 30, seed + 100).unwrap();
            let p = pat.len();
            let g = pat.gates().unwrap();
            let mut r = Rng::new(seed + 7);
            let mut u = Mat::<f64>::zeros(d, 2 * p);
            for c in 0..2 * p {
                let s = 0.1 + r.uniform();
                for l in 0..d {
                    u[(l, c)] = s * g[(l, c % p)];
                }
            }
            let pruned = check(x.as_ref(), &pat, Formulation::Relu, &u);
            // cone feasibility: (2D_i − I) X v ≥ 0 for every block
            let scale = penalty(&u) * x.norm_max();
            for c in 0..2 * p {
                let i = c % p;
                for j in 0..n {
                    let z: f64 = (0..d).map(|l| x[(j, l)] * pruned[(l, c)]).sum();
                    let s = if pat.get(j, i) { 1.0 } else { -1.0 };
                    assert!(s * z >= -1e-12 * scale, "cone violated: {}", s * z);
                }
            }
        }
    }

    #[test]
    fn gated_keeps_predictions_and_penalty() {
        for seed in 0..5 {
            let (n, d) = (6, 3);
            let x = data(n, d, seed);
            let pat = sample_patterns(x.as_ref(), 30, seed + 200).unwrap();
            let p = pat.len();
            let mut r = Rng::new(seed + 11);
            let u = Mat::from_fn(d, p, |_, _| r.normal());
            check(x.as_ref(), &pat, Formulation::Gated, &u);
        }
    }

    #[test]
    fn many_blocks_in_several_batches() {
        // Far more blocks than one batch of 2(n + 1), with some blocks zero from the start.
        let (n, d) = (10, 4);
        let x = data(n, d, 3);
        let pat = sample_patterns(x.as_ref(), 200, 5).unwrap();
        let p = pat.len();
        let mut r = Rng::new(9);
        let mut u = Mat::from_fn(d, p, |_, _| r.normal());
        for c in (0..p).step_by(7) {
            for l in 0..d {
                u[(l, c)] = 0.0;
            }
        }
        check(x.as_ref(), &pat, Formulation::Gated, &u);
    }

    #[test]
    fn few_blocks_or_bad_shapes_are_left_alone() {
        let x = data(6, 3, 1);
        let pat = sample_patterns(x.as_ref(), 30, 2).unwrap();
        let p = pat.len();
        let mut u = Mat::<f64>::zeros(3, 2 * p);
        for c in 0..5 {
            u[(0, c)] = 1.0;
        }
        let out = prune_blocks(x.as_ref(), &pat, Formulation::Relu, &u);
        assert_eq!(out, u);
        let wrong = Mat::<f64>::from_fn(3, p + 1, |_, _| 1.0);
        assert_eq!(
            prune_blocks(x.as_ref(), &pat, Formulation::Gated, &wrong),
            wrong
        );
        let mut nan = Mat::<f64>::from_fn(3, p, |_, _| 1.0);
        nan[(0, 0)] = f64::NAN;
        let out = prune_blocks(x.as_ref(), &pat, Formulation::Gated, &nan);
        assert!(out[(0, 0)].is_nan());
    }
}
