//! The structured interior point's reduced Newton system `S = G/n + M` (docs/programs.md (M62))
//! solved through the Woodbury identity, for programs with fewer samples than P·d rows
//! (docs/programs.md (M66)):
//!
//! ```text
//! S⁻¹ = M⁻¹ − M⁻¹Fᵀ K⁻¹ F M⁻¹,   K = nI + F M⁻¹ Fᵀ = nI + Σ_i F_i M_i⁻¹ F_iᵀ   (n × n),
//! ```
//!
//! with F = [F_1 … F_P] the data operator (F_i = D_i X, averaged over each sample's rows for a
//! convolutional program) and M = blockdiag(M_i) the patterns' d × d Schur blocks. With
//! M_i = L_iL_iᵀ, F_i M_i⁻¹ F_iᵀ = (F_i L_i⁻ᵀ)(F_i L_i⁻ᵀ)ᵀ, so forming K costs one product
//! X [L_1⁻ᵀ … L_P⁻ᵀ] (rows·P·d² multiply–adds, the d × d triangular inverses beside it), masked by
//! the patterns, and n²·P·d/2 multiply–adds for the product, and factoring it n³/6, against
//! (Pd)³/6 for S itself; the Gram matrix G = FᵀF is never formed.
//!
//! Near the optimum the blocks M_i are ill-conditioned (the active cone rows carry huge barrier
//! weights), and the identity's two terms cancel in those directions. The solve is therefore
//! refined by conjugate gradients on S itself, products with S going through the operator
//! (S v = Fᵀ(F v)/n + M v), with the factored identity as the preconditioner.
//!
//! Where n is large (thousands of samples) K itself is the cost: n²·P·d/2 multiply–adds per
//! iteration. The sampled form ([`Woodbury::sampled`], (M73)) builds the same identity over a
//! uniform sample of m samples instead, which is the exact inverse of M + F_mᵀF_m/m, F_m the sampled
//! rows of F, and uses it only as the preconditioner of conjugate gradients on S (its products
//! through the whole operator): a few dozen steps per solve, where forming K costs m²·P·d/2.
//!
//! Since the refinement restores the digits, K's product, most of the cost, can run in single
//! precision ([`Precision::Single`], twice the multiply–add rate) while K is well enough
//! conditioned for the rounding to cost few refinement steps; the caller watches
//! [`Woodbury::refinement`] to tell when it no longer is (docs/programs.md (M66)).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt::factor::{
    cholesky_in_place as llt_in_place, cholesky_in_place_scratch,
};
use faer::linalg::matmul::triangular::{matmul as triangular_matmul, BlockStructure};
use faer::linalg::solvers::{Llt, Solve};
use faer::linalg::triangular_inverse::invert_lower_triangular;
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::{Accum, Mat, MatMut, MatRef, Side};
use rayon::prelude::*;

use crate::operator::MaskedOperator;

/// Relative residual ‖r − S x‖ ≤ this · ‖r‖ at which the refinement stops.
const REFINE_TOL: f64 = 1e-11;
/// Most conjugate-gradient iterations of the refinement.
pub const MAX_REFINE: usize = 50;
/// Most conjugate-gradient iterations with the sampled form as the preconditioner (M73): 20 to 45
/// per solve at n = 10000, d = 50, P = 500 with a sixth of the samples.
const MAX_SAMPLED_REFINE: usize = 300;
/// Entries of the rows × (chunk · d) block of X L_i⁻ᵀ (and of the d × (chunk · d) inverses) formed
/// at a time.
const CHUNK_ENTRIES: usize = 1 << 19;

/// Whether the Woodbury form is the cheaper way to solve a reduced system of `pd` = P·d rows for
/// `samples` samples: n²·Pd/2 + n³/6 multiply–adds against (Pd)³/6.
pub fn woodbury_cheaper(samples: usize, pd: usize) -> bool {
    let (n, m) = (samples as f64, pd as f64);
    3.0 * n * n * m + n * n * n < m * m * m
}

/// Bytes the Woodbury form allocates for `rows` rows of X (`samples` samples): K and its factor
/// (n² each), K's product in single precision (n²/2 in eight-byte units), one chunk of X L_i⁻ᵀ (and
/// of its pooled rows, for a convolutional program, and its single-precision copy) with the chunk's
/// inverses L_i⁻ᵀ side by side, and the blocks M_i with their factors and inverses.
pub fn woodbury_memory(rows: usize, samples: usize, d: usize, p: usize) -> usize {
    let chunk = rows.max(d).saturating_mul(d).max(CHUNK_ENTRIES);
    let pooled = if rows > samples { chunk } else { 0 };
    samples
        .saturating_mul(samples)
        .saturating_mul(5)
        .saturating_div(2)
        .saturating_add(chunk.saturating_mul(3))
        .saturating_add(pooled)
        .saturating_add(p.saturating_mul(d * d * 3))
        .saturating_mul(8)
}

/// The precision of K's product Σ_i (F_i L_i⁻ᵀ)(F_i L_i⁻ᵀ)ᵀ; K is factored and used in double
/// precision either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// Double precision.
    Double,
    /// The columns F_i L_i⁻ᵀ rounded to single precision and their product formed in single
    /// precision, at twice the multiply–add rate. K's entries then carry relative errors of about
    /// 1e-7 of its largest, which the refinement absorbs while K is well conditioned; near the
    /// optimum, where K spans many orders of magnitude, it loses the nI term (M66).
    Single,
}

/// The Cholesky factor of M + δI for the smallest δ in {0, 1e-14, 1e-12, …, 1e-4} · max diag(M)
/// that has one, else of M with its eigenvalues clamped from below. The Schur blocks, and K, are positive definite in exact arithmetic but can lose
/// the last digits of their smallest eigenvalues to cancellation near the optimum; the shift only
/// changes the preconditioner, since the refinement multiplies by the unshifted blocks.
pub fn shifted_factor(m: &Mat<f64>) -> Option<Llt<f64>> {
    if let Ok(f) = m.llt(Side::Lower) {
        return Some(f);
    }
    let scale = (0..m.nrows()).map(|j| m[(j, j)].abs()).fold(0.0, f64::max);
    let mut shift = 1e-14;
    while shift <= 1e-4 {
        let mut shifted = m.clone();
        for j in 0..m.nrows() {
            shifted[(j, j)] += shift * scale;
        }
        if let Ok(f) = shifted.llt(Side::Lower) {
            return Some(f);
        }
        shift *= 100.0;
    }
    // Cancellation larger than the block's own diagonal: the factor of its eigenvalues clamped to
    // at least 1e-10 of the largest magnitude.
    let sym = Mat::from_fn(m.nrows(), m.ncols(), |r, c| 0.5 * (m[(r, c)] + m[(c, r)]));
    let eig = sym.self_adjoint_eigen(Side::Lower).ok()?;
    let values: Vec<f64> = (0..m.nrows()).map(|j| eig.S().column_vector()[j]).collect();
    let top = values.iter().fold(0.0f64, |a, v| a.max(v.abs()));
    if !(top.is_finite() && top > 0.0) {
        return None;
    }
    let u = eig.U();
    let clamped = Mat::from_fn(m.nrows(), m.ncols(), |r, c| {
        values
            .iter()
            .enumerate()
            .map(|(k, v)| u[(r, k)] * v.max(1e-10 * top) * u[(c, k)])
            .sum::<f64>()
    });
    clamped.llt(Side::Lower).ok()
}

/// The factored Woodbury form of S = FᵀF/n + blockdiag(M_i).
pub struct Woodbury {
    /// The blocks M_i (d × d).
    blocks: Vec<Mat<f64>>,
    /// Their Cholesky factors.
    factors: Vec<Llt<f64>>,
    /// The Cholesky factor of K = nI + F M⁻¹ Fᵀ.
    k: KFactor,
    /// The precision of K's product.
    precision: Precision,
    /// The most refinement iterations of a solve so far.
    refinement: AtomicUsize,
    /// For the sampled form: the operator over the sampled samples, through which the factored
    /// identity is applied (its products need exclusive access).
    sample: Option<Box<Mutex<MaskedOperator<f64>>>>,
}

/// K's Cholesky factor.
enum KFactor {
    /// In K's own buffer (lower triangle): no copy of the n × n matrix.
    InPlace(Mat<f64>),
    /// Of K with a small diagonal shift, where rounding left K itself without one.
    Shifted(Llt<f64>),
}

impl KFactor {
    /// In place, `v ← K⁻¹ v`.
    fn solve(&self, v: MatMut<'_, f64>) {
        match self {
            KFactor::InPlace(l) => {
                let par = faer::get_global_parallelism();
                let mut v = v;
                solve_lower_triangular_in_place(l.as_ref(), v.as_mut(), par);
                solve_upper_triangular_in_place(l.transpose(), v, par);
            }
            KFactor::Shifted(llt) => llt.solve_in_place(v),
        }
    }
}

/// In place, the Cholesky factor of the symmetric positive definite `m` in its lower triangle
/// (the upper triangle is left as it was). `false` when `m` has no factor; its lower triangle is
/// then lost.
pub fn cholesky_in_place(m: &mut Mat<f64>) -> bool {
    let par = faer::get_global_parallelism();
    let mut mem = MemBuffer::new(cholesky_in_place_scratch::<f64>(
        m.nrows(),
        par,
        Default::default(),
    ));
    llt_in_place(
        m.as_mut(),
        Default::default(),
        par,
        MemStack::new(&mut mem),
        Default::default(),
    )
    .is_ok()
}

impl Woodbury {
    /// Factors the form for the operator's F and the blocks `blocks` (one d × d symmetric positive
    /// definite matrix per pattern), with K's product in `precision`. `None` when a factorization
    /// fails.
    pub fn new(
        op: &MaskedOperator<f64>,
        blocks: Vec<Mat<f64>>,
        precision: Precision,
    ) -> Option<Self> {
        let factors: Vec<Llt<f64>> = blocks
            .par_iter()
            .map(shifted_factor)
            .collect::<Option<_>>()?;
        let mut k = Self::k_matrix(op, &factors, precision);
        // With nearly singular blocks K's entries dwarf nI, and rounding can leave it without a
        // factorization; a small shift changes only the preconditioner (see `solve`). The failed
        // attempt has overwritten K, which is formed again for it (rare: near the optimum).
        let k = if cholesky_in_place(&mut k) {
            KFactor::InPlace(k)
        } else {
            KFactor::Shifted(shifted_factor(&Self::k_matrix(op, &factors, precision))?)
        };
        Some(Woodbury {
            blocks,
            factors,
            k,
            precision,
            refinement: AtomicUsize::new(0),
            sample: None,
        })
    }

    /// The sampled form (M73): the identity over the samples `samples` of the operator's data
    /// (K of size m = `samples.len()`, in double precision), the exact inverse of
    /// M + F_mᵀF_m/m, used as the preconditioner of conjugate gradients on S itself. `None` when a
    /// factorization fails.
    pub fn sampled(
        op: &MaskedOperator<f64>,
        blocks: Vec<Mat<f64>>,
        samples: &[usize],
    ) -> Option<Self> {
        let sub = op.sample(samples);
        let mut form = Self::new(&sub, blocks, Precision::Double)?;
        form.sample = Some(Box::new(Mutex::new(sub)));
        Some(form)
    }

    /// The precision of K's product.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// The most refinement iterations any solve with this form has taken so far.
    pub fn refinement(&self) -> usize {
        self.refinement.load(Ordering::Relaxed)
    }

    /// K = nI + Σ_i (F_i L_i⁻ᵀ)(F_i L_i⁻ᵀ)ᵀ for the blocks' Cholesky factors L_i (lower triangle
    /// only), the product in `precision`.
    fn k_matrix(op: &MaskedOperator<f64>, factors: &[Llt<f64>], precision: Precision) -> Mat<f64> {
        let (rows, d, p) = (op.nrows(), op.ncols(), op.n_patterns());
        let n = op.n_samples();
        let pool = op.pooling();
        let chunk = (CHUNK_ENTRIES / (rows.max(d) * d).max(1)).clamp(1, p.max(1));
        let mut k = Mat::<f64>::zeros(n, n);
        // The single-precision product and a chunk of its columns (empty in double precision).
        let single = if precision == Precision::Single { n } else { 0 };
        let mut k32 = Mat::<f32>::zeros(single, single);
        let mut q32 = Mat::<f32>::zeros(single, if single > 0 { chunk * d } else { 0 });
        let mut xl = Mat::<f64>::zeros(rows, chunk * d);
        // The pooled columns (a convolutional program's samples average their rows).
        let mut q = Mat::<f64>::zeros(if pool > 1 { n } else { 0 }, chunk * d);
        for first in (0..p).step_by(chunk) {
            let last = (first + chunk).min(p);
            let width = (last - first) * d;
            // X [L_first⁻ᵀ … L_last⁻ᵀ] as one product (the triangular inverses are d × d), each
            // pattern's d columns masked by its pattern and pooled: the columns of F_i L_i⁻ᵀ.
            let inverses: Vec<Mat<f64>> = (first..last)
                .into_par_iter()
                .map(|i| {
                    let mut inv = Mat::<f64>::zeros(d, d);
                    invert_lower_triangular(inv.as_mut(), factors[i].L(), faer::Par::Seq);
                    inv
                })
                .collect();
            let lt = Mat::from_fn(d, width, |a, c| inverses[c / d][(c % d, a)]);
            let groups: Vec<(usize, f64, usize)> = (first..last).map(|i| (i, 1.0, d)).collect();
            let qc = op.masked_columns(lt.as_ref(), &groups, &mut xl, &mut q);
            match precision {
                Precision::Double => lower_product(k.as_mut(), qc, op.par()),
                Precision::Single => {
                    for c in 0..width {
                        for (o, &v) in q32.col_as_slice_mut(c).iter_mut().zip(qc.col(c).iter()) {
                            *o = v as f32;
                        }
                    }
                    lower_product(k32.as_mut(), q32.as_ref().subcols(0, width), op.par());
                }
            }
        }
        if precision == Precision::Single {
            for c in 0..n {
                let (out, sum) = (&mut k.col_as_slice_mut(c)[c..], &k32.col_as_slice(c)[c..]);
                for (o, &v) in out.iter_mut().zip(sum) {
                    *o = f64::from(v);
                }
            }
        }
        for j in 0..n {
            k[(j, j)] += n as f64;
        }
        k
    }

    /// `out = S v` through the operator: Fᵀ(F v)/n + M v (v and out are P·d, group i at i·d).
    fn times(&self, op: &mut MaskedOperator<f64>, v: &[f64], out: &mut [f64]) {
        let (d, p, n) = (op.ncols(), op.n_patterns(), op.n_samples());
        let mut fv = vec![0.0; n];
        op.apply(MatRef::from_column_major_slice(v, d, p), &mut fv);
        op.adjoint(&fv, MatMut::from_column_major_slice_mut(out, d, p));
        let inv_n = 1.0 / n as f64;
        for (i, m) in self.blocks.iter().enumerate() {
            let (vi, oi) = (&v[i * d..(i + 1) * d], &mut out[i * d..(i + 1) * d]);
            for (r, o) in oi.iter_mut().enumerate() {
                *o = *o * inv_n + (0..d).map(|c| m[(r, c)] * vi[c]).sum::<f64>();
            }
        }
    }

    /// In place, `v ← M⁻¹ v` block by block.
    fn block_solve(&self, v: &mut [f64], d: usize) {
        for (i, f) in self.factors.iter().enumerate() {
            let vi = MatMut::from_column_major_slice_mut(&mut v[i * d..(i + 1) * d], d, 1);
            f.solve_in_place(vi);
        }
    }

    /// `out = (M⁻¹ − M⁻¹Fᵀ K⁻¹ F M⁻¹) r`, the factored inverse of S.
    fn precondition(&self, op: &mut MaskedOperator<f64>, r: &[f64], out: &mut [f64]) {
        let (d, p, n) = (op.ncols(), op.n_patterns(), op.n_samples());
        out.copy_from_slice(r);
        self.block_solve(out, d);
        let mut fq = vec![0.0; n];
        op.apply(MatRef::from_column_major_slice(out, d, p), &mut fq);
        self.k
            .solve(MatMut::from_column_major_slice_mut(&mut fq, n, 1));
        let mut back = vec![0.0; p * d];
        op.adjoint(&fq, MatMut::from_column_major_slice_mut(&mut back, d, p));
        self.block_solve(&mut back, d);
        for (o, b) in out.iter_mut().zip(&back) {
            *o -= b;
        }
    }

    /// In place, `r ← S⁻¹ r`: the factored inverse refined by preconditioned conjugate gradients
    /// on S ([`refined_solve`]). Returns the refinement iterations.
    pub fn solve(&self, op: &mut MaskedOperator<f64>, r: &mut [f64]) -> usize {
        let steps = match &self.sample {
            None => {
                let op = std::cell::RefCell::new(op);
                refined_solve(
                    |v, out| self.times(&mut op.borrow_mut(), v, out),
                    |v, out| self.precondition(&mut op.borrow_mut(), v, out),
                    r,
                    MAX_REFINE,
                )
            }
            Some(sub) => {
                let mut sub = sub.lock().unwrap_or_else(|e| e.into_inner());
                refined_solve(
                    |v, out| self.times(op, v, out),
                    |v, out| self.precondition(&mut sub, v, out),
                    r,
                    MAX_SAMPLED_REFINE,
                )
            }
        };
        self.refinement.fetch_max(steps, Ordering::Relaxed);
        steps
    }
}

/// `k += q qᵀ` on the lower triangle of `k`.
fn lower_product<T: faer::traits::ComplexField>(
    k: MatMut<'_, T>,
    q: MatRef<'_, T>,
    par: faer::Par,
) {
    triangular_matmul(
        k,
        BlockStructure::TriangularLower,
        Accum::Add,
        q,
        BlockStructure::Rectangular,
        q.transpose(),
        BlockStructure::Rectangular,
        T::one_impl(),
        par,
    );
}

/// In place, `r ← S⁻¹ r` for the symmetric S that `times` multiplies by, given an approximate
/// inverse `precondition` (a factorization of a shifted or otherwise nearby matrix): the
/// preconditioned solution refined by conjugate gradients on S. Where rounding leaves S without
/// positive curvature along a search direction (the blocks' cancellation, see
/// [`shifted_factor`]), the refinement goes on as plain iterative refinement x ← x + P(r − Sx),
/// kept while it lowers the residual. At most `cap` iterations. Returns the refinement iterations.
pub fn refined_solve(
    mut times: impl FnMut(&[f64], &mut [f64]),
    mut precondition: impl FnMut(&[f64], &mut [f64]),
    r: &mut [f64],
    cap: usize,
) -> usize {
    let m = r.len();
    let norm = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>().sqrt();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let rhs = r.to_vec();
    let target = REFINE_TOL * norm(&rhs);
    let mut x = vec![0.0; m];
    precondition(&rhs, &mut x);
    let mut sx = vec![0.0; m];
    times(&x, &mut sx);
    let mut res: Vec<f64> = rhs.iter().zip(&sx).map(|(b, s)| b - s).collect();
    if norm(&res) <= target {
        r.copy_from_slice(&x);
        return 0;
    }
    let mut z = vec![0.0; m];
    precondition(&res, &mut z);
    let mut dir = z.clone();
    let mut rz = dot(&res, &z);
    let mut iterations = 0;
    let mut sp = vec![0.0; m];
    let mut conjugate = true;
    while norm(&res) > target && iterations < cap {
        iterations += 1;
        if conjugate {
            times(&dir, &mut sp);
            let curvature = dot(&dir, &sp);
            if curvature > 0.0 && rz > 0.0 {
                let alpha = rz / curvature;
                for j in 0..m {
                    x[j] += alpha * dir[j];
                    res[j] -= alpha * sp[j];
                }
                precondition(&res, &mut z);
                let next = dot(&res, &z);
                let beta = next / rz;
                rz = next;
                for (p, zj) in dir.iter_mut().zip(&z) {
                    *p = zj + beta * *p;
                }
                continue;
            }
            conjugate = false;
            precondition(&res, &mut z);
        }
        // Iterative refinement with the step z = P(res).
        times(&z, &mut sp);
        let next: Vec<f64> = res.iter().zip(&sp).map(|(r, s)| r - s).collect();
        if norm(&next) >= norm(&res) {
            break;
        }
        for (xj, zj) in x.iter_mut().zip(&z) {
            *xj += zj;
        }
        res = next;
        precondition(&res, &mut z);
    }
    r.copy_from_slice(&x);
    iterations
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::sample::sample_patterns;
    use crate::rng::Rng;

    /// The refined Woodbury solve agrees with a dense solve of S = FᵀF/n + blockdiag(M_i), with
    /// and without pooling, with two-level masks (a leaky ReLU's), also when the blocks are badly
    /// conditioned, and with K's product in either precision. With well-conditioned blocks and the
    /// product in double precision the factored identity is exact, so the refinement takes at
    /// most one step; in single precision the refinement restores the digits.
    #[test]
    fn woodbury_solve_matches_dense() {
        for ((pool, spread, off), precision) in [
            (1usize, 1.0f64, 0.0),
            (1, 1.0, 0.3),
            (1, 1e8, 0.0),
            (3, 1e4, 0.0),
            (3, 1.0, -1.0),
        ]
        .into_iter()
        .flat_map(|case| [(case, Precision::Double), (case, Precision::Single)])
        {
            let (n, d, p) = (12usize, 4usize, 6usize);
            let rows = n * pool;
            let mut rng = Rng::new(7);
            let x = Mat::from_fn(rows, d, |_, _| rng.normal());
            let patterns = sample_patterns(x.as_ref(), p, 3).unwrap();
            let p = patterns.len();
            let mut op = MaskedOperator::<f64>::new(x.as_ref(), patterns, 64, 1)
                .with_pooling(pool)
                .with_off_value(off);
            let blocks: Vec<Mat<f64>> = (0..p)
                .map(|i| {
                    let a = Mat::from_fn(d, d, |_, _| rng.normal());
                    let mut m = a.as_ref() * a.transpose();
                    for j in 0..d {
                        m[(j, j)] += if j == i % d { spread } else { 0.1 };
                    }
                    m
                })
                .collect();
            // Dense S column by column through the operator.
            let pd = p * d;
            let mut s = Mat::<f64>::zeros(pd, pd);
            let w = Woodbury::new(&op, blocks.clone(), precision).expect("factors");
            for c in 0..pd {
                let mut e = vec![0.0; pd];
                e[c] = 1.0;
                let mut col = vec![0.0; pd];
                w.times(&mut op, &e, &mut col);
                s.col_as_slice_mut(c).copy_from_slice(&col);
            }
            let rhs: Vec<f64> = (0..pd).map(|_| rng.normal()).collect();
            let mut dense = Mat::from_fn(pd, 1, |r, _| rhs[r]);
            s.llt(Side::Lower).unwrap().solve_in_place(dense.as_mut());
            let mut got = rhs.clone();
            let steps = w.solve(&mut op, &mut got);
            assert_eq!(w.refinement(), steps);
            if spread == 1.0 && precision == Precision::Double {
                assert!(
                    steps <= 1,
                    "off {off}, pool {pool}: {steps} refinement steps"
                );
            }
            let scale = dense
                .col_as_slice(0)
                .iter()
                .fold(0.0f64, |a, v| a.max(v.abs()));
            for (g, e) in got.iter().zip(dense.col_as_slice(0)) {
                assert!(
                    (g - e).abs() <= 1e-8 * scale,
                    "pool {pool}, spread {spread}, off {off}, {precision:?}: {g} vs {e}"
                );
            }
            // The sampled form (M73) over half the samples: an inexact preconditioner, so the
            // conjugate gradients take steps, to the same solution.
            let half: Vec<usize> = (0..n).step_by(2).collect();
            let sampled = Woodbury::sampled(&op, blocks.clone(), &half).expect("factors");
            let mut got = rhs.clone();
            let steps = sampled.solve(&mut op, &mut got);
            assert!(
                steps > 0,
                "pool {pool}, spread {spread}: the sample solved exactly"
            );
            for (g, e) in got.iter().zip(dense.col_as_slice(0)) {
                assert!(
                    (g - e).abs() <= 1e-8 * scale,
                    "sampled, pool {pool}, spread {spread}, off {off}: {g} vs {e}"
                );
            }
        }
    }
}
