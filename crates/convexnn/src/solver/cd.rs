//! Coordinate descent for the squared-loss Lasso (docs/programs.md (M29), (M29a)–(M29b))
//!
//! ```text
//! min_z (1/(2n))‖y − K z‖² + λ‖z‖₁,
//! ```
//!
//! the two-layer threshold program over the arrangement columns K_j = 1[X w_j ≥ 0].
//!
//! One coordinate step minimizes the objective in z_j exactly: with the correlation
//! g_j = K_jᵀ(y − K z) and a_j = ‖K_j‖², z_j ← S(z_j + g_j/a_j, nλ/a_j) (S the soft threshold).
//! The steps run in the usual active-set pattern (Friedman, Hastie & Tibshirani 2010): a sweep over
//! every column, then sweeps over the nonzero coordinates until a sweep no longer lowers the
//! objective by a tenth of the tolerance, then another full sweep. After each full sweep the
//! duality gap is evaluated and the solve stops when it is below the tolerance.
//!
//! Arrangement columns are strongly correlated, and plain coordinate descent then crawls. Between
//! full sweeps the solver therefore takes a Newton step on the active set A with signs s: on the
//! orthant of s the objective is the quadratic whose minimizer over the coordinates in A solves
//! G_AA Δ = g_A − nλ s_A ((M29b)); the step stops at the first coordinate that would change sign
//! (never an ascent: the objective is convex along the segment and least at its end), or, when that
//! is better, goes all the way with every sign-changing coordinate set to zero. Once the support and
//! signs are right one step lands on the optimum.
//!
//! The algorithm sees the columns only through [`Coordinates`], which has two implementations:
//! - [`GramCoordinates`] (covariance form, (M29b)), for 0/1 columns stored as bits: the Gram matrix
//!   G = KᵀK has the integer entries G_ij = popcount(K_i ∧ K_j), computed once with word-wide ANDs,
//!   and the correlations g = Kᵀy − G z are kept up to date in O(P) per changed coordinate, so a
//!   sweep costs O(P²) whatever n is, and the gap is evaluated in O(P) from
//!   ‖r‖² = ‖y‖² − zᵀKᵀy − zᵀg and yᵀr = ‖y‖² − zᵀKᵀy.
//! - [`ResidualCoordinates`] (residual form), for any dense matrix: the residual r = y − K z is
//!   kept, a correlation costs one column dot product and a change one column update, O(n) each;
//!   the gap needs a full Kᵀr. This is the textbook dense solver; `convexnn bench threshold`
//!   measures the bit-packed Gram form against it.

use std::time::Instant;

use faer::linalg::matmul::matmul;
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, MatRef, Par, Side};

use super::{IterRecord, Observe, Status, StopFlag};
use crate::features::PatternSet;

/// Settings of [`lasso_cd`], with documented defaults.
#[derive(Clone, Debug)]
pub struct CdSettings {
    /// Stop when the relative duality gap is ≤ this. Default 1e-6.
    pub tol: f64,
    /// Cap on sweeps (full and active-set sweeps together). Default 10 000.
    pub max_sweeps: usize,
    /// Wall-clock limit in seconds, counted from the `start` passed to [`lasso_cd`].
    pub time_limit: Option<f64>,
    /// Cap on active-set sweeps between two full sweeps. Default 10.
    pub active_sweeps: usize,
    /// Largest active set on which the Newton step is taken (it factors a |A| × |A| matrix).
    /// Default 3000; 0 turns the step off.
    pub newton_max_active: usize,
}

impl Default for CdSettings {
    fn default() -> Self {
        Self {
            tol: 1e-6,
            max_sweeps: 10_000,
            time_limit: None,
            active_sweeps: 10,
            newton_max_active: 3000,
        }
    }
}

/// What [`lasso_cd`] returns.
#[derive(Clone, Debug)]
pub struct CdOutput {
    /// The coefficients z.
    pub z: Vec<f64>,
    /// Primal objective at `z` (as tracked by the solver).
    pub objective: f64,
    /// The best dual bound found.
    pub dual: f64,
    /// How the solve ended.
    pub status: Status,
    /// Sweeps done (full and active-set).
    pub sweeps: usize,
    /// Full sweeps done (each followed by a gap evaluation).
    pub full_sweeps: usize,
    /// Coordinate steps that changed a coefficient.
    pub updates: usize,
    /// Newton steps on the active set taken.
    pub newton_steps: usize,
}

/// The columns of the Lasso and the correlations at the current point, as coordinate descent
/// needs them.
pub trait Coordinates {
    /// Rows n.
    fn rows(&self) -> usize;
    /// Columns P.
    fn cols(&self) -> usize;
    /// ‖y‖².
    fn target_sq_norm(&self) -> f64;
    /// ‖K_j‖².
    fn sq_norm(&self, j: usize) -> f64;
    /// g_j = K_jᵀ(y − K z) at the current point.
    fn correlation(&self, j: usize) -> f64;
    /// Records z_j ← z_j + δ.
    fn shift(&mut self, j: usize, delta: f64);
    /// (‖r‖², yᵀr, max_j |g_j|) at the current point z (r = y − K z).
    fn gap_terms(&mut self, z: &[f64]) -> (f64, f64, f64);
    /// The Gram block K_Aᵀ K_A of the columns `idx`.
    fn gram_block(&self, idx: &[usize]) -> Mat<f64>;
}

/// Primal and dual values (docs/programs.md (M29a)) from ‖r‖², yᵀr and ‖Kᵀr‖_∞: the dual point is
/// θ = s r/n with s = min(1, nλ/‖Kᵀr‖_∞), so that ‖Kᵀθ‖_∞ ≤ λ, and
/// D(θ) = yᵀθ − (n/2)‖θ‖².
pub fn primal_dual(n: usize, z: &[f64], lambda: f64, terms: (f64, f64, f64)) -> (f64, f64) {
    let (r2, yr, gmax) = terms;
    let nf = n as f64;
    let l1: f64 = z.iter().map(|v| v.abs()).sum();
    let primal = r2 / (2.0 * nf) + lambda * l1;
    let s = if gmax > nf * lambda {
        nf * lambda / gmax
    } else {
        1.0
    };
    let dual = s * yr / nf - s * s * r2 / (2.0 * nf);
    (primal, dual)
}

/// Soft threshold S(v, t) = sign(v)(|v| − t)₊.
fn soft(v: f64, t: f64) -> f64 {
    if v > t {
        v - t
    } else if v < -t {
        v + t
    } else {
        0.0
    }
}

/// One exact coordinate step on z_j; returns the decrease of the objective.
fn step<C: Coordinates + ?Sized>(
    c: &mut C,
    z: &mut [f64],
    j: usize,
    n_lambda: f64,
    nf: f64,
) -> f64 {
    let a = c.sq_norm(j);
    if a <= 0.0 {
        return 0.0;
    }
    let g = c.correlation(j);
    let old = z[j];
    let new = soft(old + g / a, n_lambda / a);
    let delta = new - old;
    if delta == 0.0 {
        return 0.0;
    }
    c.shift(j, delta);
    z[j] = new;
    // f(z + δe_j) − f(z) = (−gδ + aδ²/2)/n + λ(|new| − |old|).
    (g * delta - 0.5 * a * delta * delta) / nf - n_lambda / nf * (new.abs() - old.abs())
}

/// The Newton step on the active set `active` (all nonzero in `z`) described in the module docs;
/// returns whether it moved. A singular Gram block (dependent columns) skips the step.
///
/// Two candidate steps are compared by their exact change of the objective (a quadratic in the
/// step on A, plus the ℓ₁ change): the step cut at the first sign change, which never increases the
/// objective, and the full step with every coordinate that would change sign set to zero instead,
/// which drops many coordinates at once when it is better.
fn newton_step<C: Coordinates + ?Sized>(
    c: &mut C,
    z: &mut [f64],
    active: &[usize],
    n_lambda: f64,
) -> bool {
    let m = active.len();
    let gram = c.gram_block(active);
    let Ok(llt) = gram.llt(Side::Lower) else {
        return false;
    };
    let g: Vec<f64> = active.iter().map(|&j| c.correlation(j)).collect();
    let za: Vec<f64> = active.iter().map(|&j| z[j]).collect();
    let mut delta = Mat::from_fn(m, 1, |k, _| g[k] - n_lambda * za[k].signum());
    llt.solve_in_place(delta.as_mut());
    if (0..m).any(|k| !delta[(k, 0)].is_finite()) {
        return false;
    }
    // n × (objective change) of the step s on A: −gᵀs + ½sᵀGs + nλ(‖z + s‖₁ − ‖z‖₁).
    let change = |s: &[f64]| {
        let mut quad = 0.0;
        for (b, &sb) in s.iter().enumerate() {
            if sb != 0.0 {
                let col = gram.col(b);
                let gs: f64 = s.iter().zip(col.iter()).map(|(x, y)| x * y).sum();
                quad += sb * gs;
            }
        }
        let lin: f64 = g.iter().zip(s).map(|(a, b)| a * b).sum();
        let l1: f64 = za.iter().zip(s).map(|(a, b)| (a + b).abs() - a.abs()).sum();
        -lin + 0.5 * quad + n_lambda * l1
    };
    // The step cut at the first zero crossing.
    let mut t = 1.0;
    let mut blocking = None;
    for k in 0..m {
        let d = delta[(k, 0)];
        if za[k] * (za[k] + d) < 0.0 {
            let tk = -za[k] / d;
            if tk < t {
                t = tk;
                blocking = Some(k);
            }
        }
    }
    let cut: Vec<f64> = (0..m)
        .map(|k| {
            if blocking == Some(k) {
                -za[k]
            } else {
                t * delta[(k, 0)]
            }
        })
        .collect();
    let step = if blocking.is_some() {
        let projected: Vec<f64> = (0..m)
            .map(|k| {
                let v = za[k] + delta[(k, 0)];
                if v * za[k] < 0.0 {
                    -za[k]
                } else {
                    delta[(k, 0)]
                }
            })
            .collect();
        if change(&projected) < change(&cut).min(0.0) {
            projected
        } else {
            cut
        }
    } else {
        cut
    };
    let mut moved = false;
    for (k, &j) in active.iter().enumerate() {
        if step[k] != 0.0 {
            c.shift(j, step[k]);
            // za + (−za) is exactly 0: dropped coordinates leave the support.
            z[j] = za[k] + step[k];
            moved = true;
        }
    }
    moved
}

/// Solves the Lasso by coordinate descent from `z0` (zeros when `None`), stopping on the relative
/// duality gap. Progress goes to `observer` after every full sweep.
pub fn lasso_cd<C: Coordinates + ?Sized>(
    c: &mut C,
    lambda: f64,
    z0: Option<&[f64]>,
    settings: &CdSettings,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> CdOutput {
    let (n, p) = (c.rows(), c.cols());
    let nf = n as f64;
    let n_lambda = nf * lambda;
    let mut z = vec![0.0; p];
    if let Some(z0) = z0 {
        for (j, &v) in z0.iter().enumerate().take(p) {
            if v != 0.0 {
                c.shift(j, v);
                z[j] = v;
            }
        }
    }
    let mut out = CdOutput {
        z: Vec::new(),
        objective: f64::INFINITY,
        dual: f64::NEG_INFINITY,
        status: Status::MaxIterations,
        sweeps: 0,
        full_sweeps: 0,
        updates: 0,
        newton_steps: 0,
    };
    let mut active: Vec<usize> = Vec::with_capacity(p);
    while out.sweeps < settings.max_sweeps {
        for j in 0..p {
            if step(c, &mut z, j, n_lambda, nf) != 0.0 {
                out.updates += 1;
            }
        }
        out.sweeps += 1;
        out.full_sweeps += 1;

        let (primal, dual) = primal_dual(n, &z, lambda, c.gap_terms(&z));
        if !primal.is_finite() || !dual.is_finite() {
            out.status = Status::NumericalError;
            break;
        }
        out.objective = primal;
        out.dual = out.dual.max(dual);
        let gap = (primal - out.dual).max(0.0);
        let record = IterRecord {
            iteration: out.sweeps,
            outer: out.full_sweeps,
            objective: primal,
            gap,
            violation: 0.0,
            seconds: start.elapsed().as_secs_f64(),
        };
        if gap <= settings.tol * primal.abs().max(1e-12) {
            out.status = Status::Converged;
            observer.on_iter(&record);
            break;
        }
        if !observer.on_iter(&record) || stop.is_set() {
            out.status = Status::Interrupted;
            break;
        }
        if settings.time_limit.is_some_and(|t| record.seconds >= t) {
            out.status = Status::TimeLimit;
            break;
        }

        // Sweeps over the nonzero coordinates until one gains less than a tenth of the tolerance.
        active.clear();
        active.extend((0..p).filter(|&j| z[j] != 0.0));
        let enough = 0.1 * settings.tol * primal.abs().max(1e-12);
        for _ in 0..settings.active_sweeps {
            if out.sweeps >= settings.max_sweeps {
                break;
            }
            let mut gain = 0.0;
            for &j in &active {
                let g = step(c, &mut z, j, n_lambda, nf);
                if g != 0.0 {
                    out.updates += 1;
                }
                gain += g;
            }
            out.sweeps += 1;
            if gain <= enough {
                break;
            }
        }
        active.retain(|&j| z[j] != 0.0);
        if !active.is_empty()
            && active.len() <= settings.newton_max_active
            && newton_step(c, &mut z, &active, n_lambda)
        {
            out.newton_steps += 1;
        }
    }
    if out.status == Status::MaxIterations && out.full_sweeps > 0 {
        // Certify the final point (active sweeps may have moved it since the last full sweep).
        let (primal, dual) = primal_dual(n, &z, lambda, c.gap_terms(&z));
        out.objective = primal;
        out.dual = out.dual.max(dual);
    }
    out.z = z;
    out
}

/// Covariance form over 0/1 columns stored as bits: the popcount Gram matrix and the correlations.
pub struct GramCoordinates {
    n: usize,
    p: usize,
    /// G = KᵀK, P × P, row-major (symmetric).
    gram: Vec<f64>,
    /// Kᵀy.
    kty: Vec<f64>,
    /// g = Kᵀy − G z.
    g: Vec<f64>,
    y_sq: f64,
}

/// Bytes [`GramCoordinates`] allocates for P columns.
pub fn gram_memory(p: usize) -> usize {
    8 * p * p + 24 * p
}

/// popcount(a ∧ b) summed over two equally long word slices.
fn and_count(a: &[u64], b: &[u64]) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x & y).count_ones()).sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn and_count_popcnt(a: &[u64], b: &[u64]) -> u32 {
    // The same loop, compiled with the popcnt instruction.
    and_count(a, b)
}

/// Fills row `i` of the Gram matrix from column `i` on (the upper triangle).
fn gram_row(patterns: &PatternSet, i: usize, row: &mut [f64]) {
    let a = patterns.column_words(i);
    #[cfg(target_arch = "x86_64")]
    let fast = std::arch::is_x86_feature_detected!("popcnt");
    for (j, slot) in row.iter_mut().enumerate().skip(i) {
        let b = patterns.column_words(j);
        #[cfg(target_arch = "x86_64")]
        let count = if fast {
            // SAFETY: the CPU supports popcnt (checked above).
            unsafe { and_count_popcnt(a, b) }
        } else {
            and_count(a, b)
        };
        #[cfg(not(target_arch = "x86_64"))]
        let count = and_count(a, b);
        *slot = count as f64;
    }
}

/// Σ_{i : bit i set} v_i over a bit column.
pub fn masked_sum(words: &[u64], v: &[f64]) -> f64 {
    let mut total = 0.0;
    for (k, &w) in words.iter().enumerate() {
        let chunk = &v[64 * k..(64 * k + 64).min(v.len())];
        let mut acc = [0.0f64; 4];
        for (b, &x) in chunk.iter().enumerate() {
            let mask = ((w >> b) & 1).wrapping_neg();
            acc[b % 4] += f64::from_bits(x.to_bits() & mask);
        }
        total += (acc[0] + acc[1]) + (acc[2] + acc[3]);
    }
    total
}

impl GramCoordinates {
    /// Builds G = KᵀK (popcounts, rows in parallel) and Kᵀy for the columns of `patterns`.
    pub fn new(patterns: &PatternSet, y: &[f64]) -> Self {
        use rayon::prelude::*;
        let (n, p) = (patterns.n_samples(), patterns.len());
        let mut gram = vec![0.0; p * p];
        gram.par_chunks_mut(p.max(1))
            .enumerate()
            .for_each(|(i, row)| gram_row(patterns, i, row));
        for i in 0..p {
            for j in 0..i {
                gram[i * p + j] = gram[j * p + i];
            }
        }
        let kty: Vec<f64> = (0..p)
            .map(|j| masked_sum(patterns.column_words(j), y))
            .collect();
        Self {
            n,
            p,
            gram,
            g: kty.clone(),
            kty,
            y_sq: y.iter().map(|v| v * v).sum(),
        }
    }
}

impl Coordinates for GramCoordinates {
    fn rows(&self) -> usize {
        self.n
    }
    fn cols(&self) -> usize {
        self.p
    }
    fn target_sq_norm(&self) -> f64 {
        self.y_sq
    }
    fn sq_norm(&self, j: usize) -> f64 {
        self.gram[j * self.p + j]
    }
    fn correlation(&self, j: usize) -> f64 {
        self.g[j]
    }
    fn shift(&mut self, j: usize, delta: f64) {
        let row = &self.gram[j * self.p..(j + 1) * self.p];
        for (g, &c) in self.g.iter_mut().zip(row) {
            *g -= delta * c;
        }
    }
    fn gram_block(&self, idx: &[usize]) -> Mat<f64> {
        Mat::from_fn(idx.len(), idx.len(), |a, b| {
            self.gram[idx[a] * self.p + idx[b]]
        })
    }
    fn gap_terms(&mut self, z: &[f64]) -> (f64, f64, f64) {
        // Recompute g = Kᵀy − G z from scratch (O(P · nnz z)) so rounding does not accumulate.
        self.g.copy_from_slice(&self.kty);
        for (j, &zj) in z.iter().enumerate() {
            if zj != 0.0 {
                self.shift(j, zj);
            }
        }
        let ztky: f64 = z.iter().zip(&self.kty).map(|(a, b)| a * b).sum();
        let ztg: f64 = z.iter().zip(&self.g).map(|(a, b)| a * b).sum();
        let gmax = self.g.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        // ‖y − Kz‖² = ‖y‖² − 2zᵀKᵀy + zᵀGz = ‖y‖² − zᵀKᵀy − zᵀg.
        let r2 = (self.y_sq - ztky - ztg).max(0.0);
        (r2, self.y_sq - ztky, gmax)
    }
}

/// Residual form over a dense column-major matrix.
pub struct ResidualCoordinates<'a> {
    k: MatRef<'a, f64>,
    norms: Vec<f64>,
    r: Vec<f64>,
    y: Vec<f64>,
}

impl<'a> ResidualCoordinates<'a> {
    /// Starts at z = 0 (r = y).
    pub fn new(k: MatRef<'a, f64>, y: &[f64]) -> Self {
        let norms = (0..k.ncols())
            .map(|j| k.col(j).iter().map(|v| v * v).sum())
            .collect();
        Self {
            k,
            norms,
            r: y.to_vec(),
            y: y.to_vec(),
        }
    }

    fn column(&self, j: usize) -> &[f64] {
        self.k
            .col(j)
            .try_as_col_major()
            .expect("ResidualCoordinates needs a column-major matrix")
            .as_slice()
    }
}

impl Coordinates for ResidualCoordinates<'_> {
    fn rows(&self) -> usize {
        self.k.nrows()
    }
    fn cols(&self) -> usize {
        self.k.ncols()
    }
    fn target_sq_norm(&self) -> f64 {
        self.y.iter().map(|v| v * v).sum()
    }
    fn sq_norm(&self, j: usize) -> f64 {
        self.norms[j]
    }
    fn correlation(&self, j: usize) -> f64 {
        dot(self.column(j), &self.r)
    }
    fn shift(&mut self, j: usize, delta: f64) {
        let col = self
            .k
            .col(j)
            .try_as_col_major()
            .expect("ResidualCoordinates needs a column-major matrix")
            .as_slice();
        for (r, &c) in self.r.iter_mut().zip(col) {
            *r -= delta * c;
        }
    }
    fn gram_block(&self, idx: &[usize]) -> Mat<f64> {
        let ka = Mat::from_fn(self.k.nrows(), idx.len(), |i, b| self.k[(i, idx[b])]);
        let mut g = Mat::zeros(idx.len(), idx.len());
        matmul(
            g.as_mut(),
            Accum::Replace,
            ka.transpose(),
            ka.as_ref(),
            1.0,
            Par::rayon(0),
        );
        g
    }
    fn gap_terms(&mut self, _z: &[f64]) -> (f64, f64, f64) {
        let r2 = dot(&self.r, &self.r);
        let yr = dot(&self.y, &self.r);
        let gmax = (0..self.cols()).fold(0.0f64, |m, j| m.max(self.correlation(j).abs()));
        (r2, yr, gmax)
    }
}

/// Dot product with four accumulators (lets the compiler vectorize).
pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..4 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::solver::Silent;

    fn random_patterns(n: usize, p: usize, seed: u64) -> (PatternSet, Vec<f64>) {
        let mut rng = Rng::new(seed);
        let cols: Vec<Vec<bool>> = (0..p)
            .map(|_| (0..n).map(|_| rng.uniform() < 0.5).collect())
            .collect();
        let y: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        (PatternSet::from_columns(n, &cols, None, false).unwrap(), y)
    }

    fn dense(p: &PatternSet) -> Mat<f64> {
        Mat::from_fn(p.n_samples(), p.len(), |i, j| f64::from(p.get(i, j) as u8))
    }

    #[test]
    fn masked_sum_matches_a_plain_sum() {
        let (p, y) = random_patterns(150, 5, 1);
        for j in 0..p.len() {
            let plain: f64 = (0..150).filter(|&i| p.get(i, j)).map(|i| y[i]).sum();
            assert!((masked_sum(p.column_words(j), &y) - plain).abs() < 1e-12);
        }
    }

    #[test]
    fn gram_form_matches_the_dense_matrix() {
        let (p, y) = random_patterns(130, 12, 2);
        let k = dense(&p);
        let gram = GramCoordinates::new(&p, &y);
        for i in 0..p.len() {
            for j in 0..p.len() {
                let exact: f64 = (0..130).map(|r| k[(r, i)] * k[(r, j)]).sum();
                assert_eq!(gram.gram[i * p.len() + j], exact);
            }
        }
        // The O(P) gap terms equal those of the residual form at the same point.
        let z: Vec<f64> = (0..p.len())
            .map(|j| if j % 3 == 0 { 0.1 * j as f64 } else { 0.0 })
            .collect();
        let mut g = GramCoordinates::new(&p, &y);
        let mut r = ResidualCoordinates::new(k.as_ref(), &y);
        for (j, &v) in z.iter().enumerate() {
            g.shift(j, v);
            r.shift(j, v);
        }
        let (a, b) = (g.gap_terms(&z), r.gap_terms(&z));
        assert!((a.0 - b.0).abs() < 1e-9 * b.0 && (a.1 - b.1).abs() < 1e-9 * b.1.abs().max(1.0));
        assert!((a.2 - b.2).abs() < 1e-9 * b.2);
    }

    #[test]
    fn both_forms_converge_to_the_same_certified_optimum() {
        for seed in 0..4 {
            let (p, y) = random_patterns(200, 60, 10 + seed);
            let k = dense(&p);
            let lambda = 0.02;
            let settings = CdSettings {
                tol: 1e-10,
                ..CdSettings::default()
            };
            let start = Instant::now();
            let stop = StopFlag::new();
            let mut gram = GramCoordinates::new(&p, &y);
            let a = lasso_cd(
                &mut gram,
                lambda,
                None,
                &settings,
                &mut Silent,
                &stop,
                start,
            );
            let mut res = ResidualCoordinates::new(k.as_ref(), &y);
            let b = lasso_cd(&mut res, lambda, None, &settings, &mut Silent, &stop, start);
            // Plain coordinate descent (no Newton steps) reaches the same optimum, more slowly.
            let plain = CdSettings {
                newton_max_active: 0,
                ..settings.clone()
            };
            let mut gram = GramCoordinates::new(&p, &y);
            let c = lasso_cd(&mut gram, lambda, None, &plain, &mut Silent, &stop, start);
            assert_eq!(c.newton_steps, 0);
            assert!(a.newton_steps > 0);
            assert_eq!(a.status, Status::Converged);
            assert_eq!(b.status, Status::Converged);
            assert_eq!(c.status, Status::Converged);
            assert!((c.objective - a.objective).abs() <= 1e-9 * a.objective);
            assert!(a.objective - a.dual <= 1e-10 * a.objective);
            assert!((a.objective - b.objective).abs() <= 1e-9 * b.objective);
            // The reported objective is the objective of the returned z.
            let mut r = y.clone();
            for (j, &v) in a.z.iter().enumerate() {
                for (i, ri) in r.iter_mut().enumerate() {
                    *ri -= v * k[(i, j)];
                }
            }
            let direct = r.iter().map(|v| v * v).sum::<f64>() / (2.0 * 200.0)
                + lambda * a.z.iter().map(|v| v.abs()).sum::<f64>();
            assert!((direct - a.objective).abs() <= 1e-10 * direct);
        }
    }

    #[test]
    fn the_dual_bound_is_below_the_primal_everywhere() {
        let (p, y) = random_patterns(90, 20, 7);
        let mut rng = Rng::new(3);
        let k = dense(&p);
        for _ in 0..20 {
            let z: Vec<f64> = (0..p.len()).map(|_| 0.3 * rng.normal()).collect();
            let mut res = ResidualCoordinates::new(k.as_ref(), &y);
            for (j, &v) in z.iter().enumerate() {
                res.shift(j, v);
            }
            let (primal, dual) = primal_dual(90, &z, 0.05, res.gap_terms(&z));
            assert!(dual <= primal);
        }
    }

    #[test]
    fn above_lambda_max_the_solution_is_zero() {
        let (p, y) = random_patterns(80, 15, 5);
        let gram = GramCoordinates::new(&p, &y);
        let lmax = gram.kty.iter().fold(0.0f64, |m, v| m.max(v.abs())) / 80.0;
        let mut gram = gram;
        let out = lasso_cd(
            &mut gram,
            1.01 * lmax,
            None,
            &CdSettings::default(),
            &mut Silent,
            &StopFlag::new(),
            Instant::now(),
        );
        assert_eq!(out.status, Status::Converged);
        assert!(out.z.iter().all(|&v| v == 0.0));
    }
}
