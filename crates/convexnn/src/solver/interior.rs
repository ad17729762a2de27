//! A structured interior point for the squared-loss ReLU program (docs/programs.md (M6),
//! (M61)–(M62)): Mehrotra's predictor–corrector on the program's own structure, instead of a
//! general conic solver's sparse factorization.
//!
//! Variables: one block `(u_b, t_b)` per weight vector (b < P: v_b, b ≥ P: w_{b−P}), with the
//! constraints `X̃_i u_b ≥ 0` (slacks s = X̃_i u_b, multipliers z) and the second-order cone
//! `(t_b, u_b) ∈ Q` (multipliers z_q ∈ Q, Nesterov–Todd scaling). Objective
//! `(1/2n)‖Σ_i D_i X(v_i − w_i) − y‖² + λ Σ_b t_b`.
//!
//! Each iteration solves the Newton system of the perturbed KKT conditions (M62) twice (predictor
//! with target 0, corrector with target σμ and Mehrotra's second-order term) with one
//! factorization, and where a factorization costs many solves up to twice more for Gondzio's
//! centrality correctors (M70). Eliminating the slacks and multipliers leaves a symmetric
//! positive definite system in the blocks (u_b, t_b): the barrier blocks
//!
//! ```text
//! B_b = X_cᵀ diag(z_b / s_b) X_c + W_b⁻²   (W_b the cone's Nesterov–Todd scaling)
//! ```
//!
//! on the diagonal, and the data term, which sees only a = v − w through G = FᵀF, the Gram form of
//! the gated program ([`GramForm`], F = [D_1X … D_PX], formed once). In the variables
//! (v_i, t_{v_i}, t_{w_i}, a_i) (w = v − a) the pivot over y_i = (v_i, t_{v_i}, t_{w_i}) is
//! block-diagonal across patterns; one block Cholesky step per pattern leaves the P·d system
//! S = G/n + blockdiag(B_{w_i}^{uu} − C_iᵀY_i⁻¹C_i) in a. An iteration costs P·n·d² flops for the
//! blocks (one product of the rows' pairwise products x_ja·x_jc with the barrier weights z/s, see
//! `barrier_weights`) and (Pd)³/3 for the factorization (in place, in a buffer each iteration
//! reuses), about a tenth of the 2P(d+1) system of all blocks.
//! (Eliminating the blocks through explicit inverses B_b⁻¹ instead loses the last digits: B_b is
//! ill-conditioned near the optimum.) With fewer samples than about half of P·d, S is solved
//! through the Woodbury identity over an n × n matrix instead, and G is not formed
//! ([`crate::solver::woodbury`], (M66)); the objective and its gradient then go through the
//! operator.
//!
//! Only a working set of each block's cone rows carries multipliers and barrier terms (M71): the
//! rows nearest the start, which hold nearly all of the cone's facets; the other rows are implied
//! by the facets, and only bound the steps until a step would cross one, which then joins.
//!
//! The iterates stay strictly inside the cones (the cone violation is zero), and the multipliers z
//! are the γ_i, ξ_i of the Lagrangian dual (M9), so the certificate of [`crate::program::relu`]
//! bounds the optimum with them. The start is each pattern's gate, which lies strictly inside its
//! cone when no sample sits on its hyperplane ([`interior_start`]), moved to the analytic center
//! of the cone within the unit ball: with the gate itself the samples near its hyperplane give
//! tiny slacks, huge multipliers μ₀/s and a dual residual a hundred times larger, and the solve
//! took 50 iterations instead of 27 (n = 1000, d = 10, P = 100).

use std::time::Instant;

use faer::linalg::matmul::matmul;
use faer::linalg::solvers::Solve;
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use super::bcd::GramForm;
use super::cd::dot;
use super::crossover::{polish_on_face, Face, FaceProgram, DENSE_MAX};
use super::woodbury::{
    cholesky_in_place, refined_solve, shifted_factor, woodbury_cheaper, woodbury_memory, Precision,
    Woodbury, MAX_REFINE,
};
use super::{IterRecord, Observe, Status, StopFlag};
use crate::error::{Error, Result};
use crate::features::PatternSet;
use crate::operator::{MaskedOperator, DEFAULT_BLOCK_ROWS};
use crate::program::relu::{certificate, dual_direction, exact_multipliers};
use crate::program::Loss;

/// Settings of [`relu_interior`].
#[derive(Clone, Debug)]
pub struct InteriorSettings {
    /// Stop when the certified relative duality gap (M9), with the interior point's multipliers,
    /// is at most this. It is evaluated once the duality measure (the sum of the complementarity
    /// products) is below a tenth of it. Default 1e-6.
    pub tol: f64,
    /// Iteration cap. Default 200.
    pub max_iter: usize,
    /// Wall-clock limit in seconds, counted from the `start` passed to [`relu_interior`].
    pub time_limit: Option<f64>,
    /// Rows of X per sample K of a convolutional program (M35a); 1 for a fully connected one.
    pub pooling: usize,
    /// How the reduced P·d system is solved. Default [`NewtonSystem::Auto`].
    pub system: NewtonSystem,
    /// Most centrality correctors per iteration (M70), each one more solve with the iteration's
    /// factorization. Default [`CORRECTORS`]; [`corrector_count`] gives the number that pays for a
    /// problem's shape.
    pub correctors: usize,
    /// Rows per column of X in each block's starting working set of cone rows (M71): the rows
    /// closest to the start, by normalized slack, carry the barrier and multipliers; every other
    /// row only bounds the steps, and joins the working set when it would block one. 0 keeps every
    /// row in the working set. Default [`WORKING_ROWS`].
    pub working_rows: usize,
    /// With the Woodbury form, K's product in single precision while the refinement of every
    /// solve takes at most [`SINGLE_REFINEMENT`] steps, then in double precision for the rest of
    /// the solve (M66). Default true.
    pub mixed_precision: bool,
    /// Samples in the sample of the sampled Newton system ([`NewtonSystem::Sampled`], (M73));
    /// 0 takes [`sample_size`]. Default 0.
    pub sample: usize,
    /// Seed of that sample. Default 0.
    pub seed: u64,
}

/// Most refinement steps per solve for which K's product stays in single precision
/// ([`InteriorSettings::mixed_precision`]). A step costs about as much as a further solve, and
/// K's product in single precision saves about a third of an iteration at n = 1000–2000, d = 20,
/// P = 200: it pays up to about three steps per solve (four solves per iteration with the
/// centrality correctors).
pub const SINGLE_REFINEMENT: usize = 3;

/// Default of [`InteriorSettings::working_rows`]: 10·d rows per block. A pattern's cone is cut
/// out by about 4d (d = 10) to 6d (d = 20) of its n rows, its facets; the rest are implied by them
/// but still bend the central path. On planted data (n = 1000, d = 20, P = 200) the 10·d rows
/// closest to the start held 99% of the facets, and the solve took 24 iterations instead of 40.
pub const WORKING_ROWS: usize = 10;

/// Default of [`InteriorSettings::correctors`]: at most two per iteration.
pub const CORRECTORS: usize = 2;

/// Fewest multiply–adds of a factorization per multiply–add of one solve for which centrality
/// correctors pay (M70): they cut the iterations by a fifth to a quarter, and each costs a solve
/// and a few passes over the cone rows. Measured: ratios of about 120 (n = 1000, d = 20, P = 200:
/// 13% slower with them; n = 1000, d = 50, P = 500: 3% slower) against 230 and 330
/// (n = 2000, d = 20, P = 200 and n = 5000, d = 20, P = 200: 7% and 11% faster).
pub const CORRECTOR_RATIO: f64 = 170.0;

/// The centrality correctors per iteration for `rows` rows of X (`samples` samples), `d` columns
/// and `p` patterns (M70): [`CORRECTORS`] where a factorization of the reduced system costs at
/// least [`CORRECTOR_RATIO`] times a solve with it, else none. The Woodbury form costs
/// n²·Pd/2 + n³/6 to factor and 2n² + 4·rows·Pd (K's triangular solves and the operator's
/// products) to solve; the direct factorization (Pd)³/6 and 2(Pd)²; the sampled form (M73), over m
/// samples, m²·Pd/2 + m³/6 to factor and about [`SAMPLED_STEPS`] conjugate-gradient steps of
/// 2m² + 4·(rows + m)·Pd to solve (so it takes none).
pub fn corrector_count(
    rows: usize,
    samples: usize,
    d: usize,
    p: usize,
    system: NewtonSystem,
) -> usize {
    let (n, r, pd) = (samples as f64, rows as f64, (p * d) as f64);
    let (factor, solve) = if let Some(m) = system.sampled(samples, p * d) {
        // The sampled form (M73): a solve is a few dozen conjugate-gradient steps through the
        // whole operator.
        let m = m as f64;
        (
            m * m * pd / 2.0 + m * m * m / 6.0,
            SAMPLED_STEPS * (2.0 * m * m + 4.0 * (r + m) * pd),
        )
    } else if system.uses_woodbury(samples, p * d) {
        (
            n * n * pd / 2.0 + n * n * n / 6.0,
            2.0 * n * n + 4.0 * r * pd,
        )
    } else {
        (pd * pd * pd / 6.0, 2.0 * pd * pd)
    };
    if factor >= CORRECTOR_RATIO * solve {
        CORRECTORS
    } else {
        0
    }
}

/// Fewest rows P·d for which [`NewtonSystem::Auto`] takes the Woodbury form. Below, the direct
/// factorization costs milliseconds, and it is the more robust of the two: on 15 samples of 1-D
/// data with 29 enumerated patterns (λ = 1e-4) the Woodbury form stalled at a gap of 2e-2 where
/// the direct factorization converged.
pub const WOODBURY_MIN_SYSTEM: usize = 1000;

/// How the structured interior point solves its reduced P·d system S = G/n + M (M62).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewtonSystem {
    /// The Woodbury form where it is cheaper ([`woodbury_cheaper`]: fewer samples than about half
    /// of P·d) and the system has at least [`WOODBURY_MIN_SYSTEM`] rows, else the direct
    /// factorization.
    Auto,
    /// Cholesky factorization of S, formed from the Gram matrix G (Pd × Pd).
    Direct,
    /// The Woodbury identity over an n × n matrix, refined by conjugate gradients (M66).
    Woodbury,
    /// Conjugate gradients on S, preconditioned by the Woodbury identity over a uniform sample
    /// of the samples ([`sample_size`] of them, an m × m matrix, (M73)).
    Sampled,
}

impl NewtonSystem {
    /// Whether the Woodbury form, over every sample or a sample of them, is used for `samples`
    /// samples and P·d = `pd` rows (the Gram matrix G is then not formed).
    pub fn uses_woodbury(self, samples: usize, pd: usize) -> bool {
        match self {
            NewtonSystem::Auto => pd >= WOODBURY_MIN_SYSTEM && woodbury_cheaper(samples, pd),
            NewtonSystem::Direct => false,
            NewtonSystem::Woodbury | NewtonSystem::Sampled => true,
        }
    }

    /// The size m of the sampled form's sample where it is used: [`NewtonSystem::Sampled`], or
    /// [`NewtonSystem::Auto`] choosing the Woodbury form with at least [`SAMPLED_MIN_SAMPLES`]
    /// samples.
    pub fn sampled(self, samples: usize, pd: usize) -> Option<usize> {
        let used = match self {
            NewtonSystem::Auto => samples >= SAMPLED_MIN_SAMPLES && self.uses_woodbury(samples, pd),
            NewtonSystem::Sampled => true,
            NewtonSystem::Direct | NewtonSystem::Woodbury => false,
        };
        used.then(|| sample_size(samples))
    }
}

/// Fewest samples for which [`NewtonSystem::Auto`] takes the sampled form (M73) where it would
/// take the Woodbury form. At n = 2000, d = 20, P = 200 K's product costs 80 ms of an iteration
/// and the Woodbury form was faster (2.8–3.0 s against 3.3 s); at n = 10000, d = 50, P = 500, where
/// K's product is 1.25e12 multiply–adds, the sampled form took 59 s against 536 s.
pub const SAMPLED_MIN_SAMPLES: usize = 5000;

/// One sample in this many is in the sampled form's sample (M73).
pub const SAMPLE_FRACTION: usize = 6;

/// Fewest samples in the sampled form's sample (all of them where there are fewer).
pub const SAMPLE_MIN: usize = 500;

/// The sample size of the sampled form for `samples` samples: a [`SAMPLE_FRACTION`]th of them,
/// at least [`SAMPLE_MIN`] (all where there are fewer). At n = 10000, d = 50, P = 500 a sample
/// of 1500 took 26–44 conjugate-gradient steps per solve and 59 s in all; one of 2500 took 20–29
/// steps, but each of its factorizations cost three times as much (66 s).
pub fn sample_size(samples: usize) -> usize {
    samples
        .div_ceil(SAMPLE_FRACTION)
        .max(SAMPLE_MIN)
        .min(samples)
}

/// Conjugate-gradient steps per solve that the choice of correctors assumes for the sampled form
/// (M73): 20 to 45 were measured.
pub const SAMPLED_STEPS: f64 = 30.0;

impl Default for InteriorSettings {
    fn default() -> Self {
        InteriorSettings {
            tol: 1e-6,
            max_iter: 200,
            time_limit: None,
            pooling: 1,
            system: NewtonSystem::Auto,
            correctors: CORRECTORS,
            working_rows: WORKING_ROWS,
            mixed_precision: true,
            sample: 0,
            seed: 0,
        }
    }
}

/// What [`relu_interior`] returns.
pub struct InteriorOutput {
    /// [V | W], d × 2P, strictly inside the cones.
    pub u: Mat<f64>,
    /// The cone multipliers [Γ | Ξ] (rows of X × 2P), the z of the last iterate.
    pub mult: Mat<f64>,
    /// How the solve ended ([`Status::Converged`] when the duality measure reached the tolerance).
    pub status: Status,
    /// Interior-point iterations.
    pub iterations: usize,
    /// The duality measure Σ zᵀs + Σ z_qᵀ(t, u) of the last iterate, relative to its objective.
    pub relative_measure: f64,
    /// Cone rows in the working sets at the end, summed over the 2P blocks (M71).
    pub working_rows: usize,
}

/// Bytes [`relu_interior`] allocates for `rows` rows of X (`samples` samples), `d` columns and `p`
/// patterns: the reduced system (the Gram form, the system, and a shifted copy with its factor,
/// (Pd)² each, or the Woodbury form's n × n matrices, or the sampled form's m × m ones with its
/// copy of the sampled rows, as `system` chooses), about a dozen rows × 2P
/// matrices (slacks, multipliers, two steps' targets and directions, the barrier weights, the
/// certificate; the multipliers, targets and directions live on the working rows (M71), which can
/// grow to every row, so this bounds them), and a block of the rows' pairwise products with the
/// barrier blocks (d(d+1)/2 × 2P).
pub fn interior_memory(
    rows: usize,
    samples: usize,
    d: usize,
    p: usize,
    system: NewtonSystem,
) -> usize {
    let pd = p.saturating_mul(d);
    let reduced = if let Some(m) = system.sampled(samples, pd) {
        let sampled_rows = m.saturating_mul(rows / samples.max(1));
        woodbury_memory(sampled_rows, m, d, p)
            .saturating_add(sampled_rows.saturating_mul(d + p).saturating_mul(8))
    } else if system.uses_woodbury(samples, pd) {
        woodbury_memory(rows, samples, d, p)
    } else {
        // G, S (factored in place), and where S loses its factor to rounding a shifted copy and
        // its factor.
        pd.saturating_mul(pd).saturating_mul(4).saturating_mul(8)
    };
    let pairs = d * (d + 1) / 2;
    rows.saturating_mul(2 * p)
        .saturating_mul(13)
        .saturating_add(p.saturating_mul((d + 2) * (d + 2) * 4))
        .saturating_add((2 * p).saturating_mul(pairs))
        .saturating_add(PAIR_BLOCK_ENTRIES.max(pairs))
        .saturating_mul(8)
        .saturating_add(reduced)
}

/// The start of the interior point: each pattern's gate scaled to unit norm (d × P), when every
/// gate lies strictly inside its cone, (2D_i − I) X g_i > 0 on every nonzero row of X. `None`
/// when the patterns carry no gates or a sample sits on a gate's hyperplane.
pub fn interior_start(x: MatRef<'_, f64>, patterns: &PatternSet) -> Option<Mat<f64>> {
    let g = patterns.gates()?;
    let (n, d) = (x.nrows(), x.ncols());
    if g.nrows() != d || g.ncols() != patterns.len() {
        return None;
    }
    let mut xg = Mat::<f64>::zeros(n, g.ncols());
    matmul(
        xg.as_mut(),
        Accum::Replace,
        x,
        g,
        1.0,
        faer::get_global_parallelism(),
    );
    let nonzero: Vec<bool> = (0..n).map(|j| (0..d).any(|a| x[(j, a)] != 0.0)).collect();
    for i in 0..g.ncols() {
        for (j, &nz) in nonzero.iter().enumerate() {
            let m = sign(patterns.get(j, i)) * xg[(j, i)];
            if nz && m.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
                return None;
            }
        }
    }
    Some(Mat::from_fn(d, g.ncols(), |a, i| {
        let norm = (0..d).map(|b| g[(b, i)].powi(2)).sum::<f64>().sqrt();
        g[(a, i)] / norm
    }))
}

/// Values on each block's working rows (M71), in the order of [`Iterate::rows`].
type Ragged = Vec<Vec<f64>>;

/// A [`Ragged`] over the working rows `rows`, block b written by `fill(b, rows[b], values)`, the
/// blocks in parallel.
fn ragged(rows: &[Vec<usize>], fill: impl Fn(usize, &[usize], &mut [f64]) + Sync) -> Ragged {
    rows.par_iter()
        .enumerate()
        .map(|(b, idx)| {
            let mut out = vec![0.0; idx.len()];
            fill(b, idx, &mut out);
            out
        })
        .collect()
}

/// A rows × cols matrix filled column by column by `fill(column, slice)`, the columns in parallel.
fn columns(rows: usize, cols: usize, fill: impl Fn(usize, &mut [f64]) + Sync) -> Mat<f64> {
    let mut out = Mat::<f64>::zeros(rows, cols);
    for_columns(out.as_mut(), fill);
    out
}

/// `fill(column, slice)` on every column of `m`, the columns in parallel.
fn for_columns(m: MatMut<'_, f64>, fill: impl Fn(usize, &mut [f64]) + Sync) {
    m.par_col_iter_mut().enumerate().for_each(|(c, col)| {
        fill(
            c,
            col.try_as_col_major_mut()
                .expect("contiguous columns")
                .as_slice_mut(),
        )
    });
}

fn sign(bit: bool) -> f64 {
    if bit {
        1.0
    } else {
        -1.0
    }
}

/// The primal–dual iterate: weights U (d × 2P), norms t, cone slacks S (rows × 2P, over the
/// nonzero rows of X), the multipliers Z of each block's working rows (M71), and the second-order
/// cones' multipliers (z₀, z₁) ((d+1) × 2P, z₀ first) of (t_b, u_b) ∈ Q.
struct Iterate {
    u: Mat<f64>,
    t: Vec<f64>,
    /// The slacks of every cone row (rows × 2P).
    s: Mat<f64>,
    /// Each block's working set of cone rows (M71).
    rows: Vec<Vec<usize>>,
    /// The multipliers of the working rows.
    z: Ragged,
    zq: Mat<f64>,
}

impl Iterate {
    /// (t_b, u_b), the point of block b's second-order cone.
    fn cone_point(&self, b: usize) -> Vec<f64> {
        std::iter::once(self.t[b])
            .chain(self.u.col_as_slice(b).iter().copied())
            .collect()
    }
}

/// A Newton direction for every part of the iterate.
struct Direction {
    du: Mat<f64>,
    dt: Vec<f64>,
    /// Of the working rows.
    ds: Ragged,
    /// Of the working rows.
    dz: Ragged,
    dzq: Mat<f64>,
}

impl Direction {
    /// (Δt_b, Δu_b).
    fn cone_step(&self, b: usize) -> Vec<f64> {
        std::iter::once(self.dt[b])
            .chain(self.du.col_as_slice(b).iter().copied())
            .collect()
    }
}

/// The Nesterov–Todd scaling of one second-order cone pair (s, z) (Vandenberghe 2010, "The CVXOPT
/// linear and quadratic cone program solvers", §4): the scaling point w̄ = (s̄ + Jz̄)/(2γ) of the
/// normalized s̄, z̄, and W = η(2vvᵀ − J), J = diag(1, −I), v = (w̄ + e)/√(2(w̄₀ + 1)), so that
/// W z = W⁻¹ s = λ. Vectors in the order (t, u). W is kept as (v, η): its products cost O(d)
/// (W⁻¹ = (2qqᵀ − J)/η with q = Jv, since vᵀJv = 1).
struct NtScaling {
    v: Vec<f64>,
    eta: f64,
    lambda: Vec<f64>,
}

/// xᵀJy.
fn jdot(x: &[f64], y: &[f64]) -> f64 {
    2.0 * x[0] * y[0] - dot(x, y)
}

impl NtScaling {
    /// W x = η(2v(vᵀx) − Jx).
    fn w(&self, x: &[f64]) -> Vec<f64> {
        let c = 2.0 * dot(&self.v, x);
        let mut out: Vec<f64> = self.v.iter().zip(x).map(|(v, a)| c * v + a).collect();
        out[0] -= 2.0 * x[0];
        out.iter_mut().for_each(|o| *o *= self.eta);
        out
    }

    /// W⁻¹ x = (2q(qᵀx) − Jx)/η, q = Jv.
    fn winv(&self, x: &[f64]) -> Vec<f64> {
        let c = 2.0 * jdot(&self.v, x);
        let mut out: Vec<f64> = self.v.iter().zip(x).map(|(v, a)| a - c * v).collect();
        out[0] += 2.0 * c * self.v[0] - 2.0 * x[0];
        out.iter_mut().for_each(|o| *o /= self.eta);
        out
    }

    /// W⁻² = (I + 4(qᵀq)qqᵀ − 2(qvᵀ + vqᵀ))/η² as a matrix (order (t, u)).
    fn winv_squared(&self) -> Mat<f64> {
        let e = self.v.len();
        let q: Vec<f64> = (0..e)
            .map(|k| if k == 0 { self.v[0] } else { -self.v[k] })
            .collect();
        let qq = dot(&q, &q);
        let scale = 1.0 / (self.eta * self.eta);
        Mat::from_fn(e, e, |r, c| {
            let id = if r == c { 1.0 } else { 0.0 };
            scale * (id + 4.0 * qq * q[r] * q[c] - 2.0 * (q[r] * self.v[c] + self.v[r] * q[c]))
        })
    }
}

fn nt_scaling(s: &[f64], z: &[f64]) -> NtScaling {
    let e = s.len();
    let (sjs, zjz) = (jdot(s, s).max(1e-300), jdot(z, z).max(1e-300));
    let sn: Vec<f64> = s.iter().map(|v| v / sjs.sqrt()).collect();
    let zn: Vec<f64> = z.iter().map(|v| v / zjz.sqrt()).collect();
    let gamma = (0.5 * (1.0 + dot(&sn, &zn))).sqrt();
    let wb: Vec<f64> = (0..e)
        .map(|k| {
            if k == 0 {
                (sn[0] + zn[0]) / (2.0 * gamma)
            } else {
                (sn[k] - zn[k]) / (2.0 * gamma)
            }
        })
        .collect();
    // The matrix is built on v = (w̄ + e)/√(2(w̄₀ + 1)), which also has vᵀJv = 1.
    let norm = (2.0 * (wb[0] + 1.0)).sqrt();
    let v: Vec<f64> = (0..e)
        .map(|k| (wb[k] + if k == 0 { 1.0 } else { 0.0 }) / norm)
        .collect();
    let mut nt = NtScaling {
        v,
        eta: (sjs / zjz).powf(0.25),
        lambda: Vec::new(),
    };
    nt.lambda = nt.w(z);
    nt
}

/// The Jordan product x ∘ y = (xᵀy, x₀y₁ + y₀x₁).
fn jordan(x: &[f64], y: &[f64]) -> Vec<f64> {
    std::iter::once(x.iter().zip(y).map(|(a, b)| a * b).sum())
        .chain((1..x.len()).map(|k| x[0] * y[k] + y[0] * x[k]))
        .collect()
}

/// v with λ ∘ v = r (the arrow matrix of λ inverted).
fn jordan_solve(l: &[f64], r: &[f64]) -> Vec<f64> {
    let v0 =
        (l[0] * r[0] - l[1..].iter().zip(&r[1..]).map(|(a, b)| a * b).sum::<f64>()) / jdot(l, l);
    std::iter::once(v0)
        .chain((1..l.len()).map(|k| (r[k] - v0 * l[k]) / l[0]))
        .collect()
}

/// The problem data the iterations share.
struct Structure<'a> {
    /// Nonzero rows of X (the cone rows).
    xc: Mat<f64>,
    /// Their transpose (d × rows): each row's entries side by side, for the working rows' sums.
    xr: Mat<f64>,
    /// Sign (2D_i − I) of each cone row for each pattern (rows × P).
    signs: Mat<f64>,
    /// The Gram form, formed only for the direct factorization.
    form: Option<&'a GramForm>,
    /// The targets (n).
    y: &'a [f64],
    lambda: f64,
}

/// The rows of X that are not zero (the cone rows).
fn nonzero_rows(x: MatRef<'_, f64>) -> Vec<usize> {
    (0..x.nrows())
        .filter(|&j| (0..x.ncols()).any(|a| x[(j, a)] != 0.0))
        .collect()
}

/// X_cᵀ D_i X_c (d × d) for each pattern i, D_i the rows where `signs` (rows × P) is positive: one
/// product with the pairwise products ([`weighted_grams`]).
pub(crate) fn pattern_grams(xc: MatRef<'_, f64>, signs: MatRef<'_, f64>) -> Vec<Mat<f64>> {
    let d = xc.ncols();
    let on = Mat::from_fn(signs.nrows(), signs.ncols(), |j, i| {
        if signs[(j, i)] > 0.0 {
            1.0
        } else {
            0.0
        }
    });
    let packed = weighted_grams(xc, on.as_ref());
    (0..signs.ncols())
        .map(|i| Mat::from_fn(d, d, |a, c| packed[(pair_index(a.min(c), a.max(c)), i)]))
        .collect()
}

/// Column of the pair (a, c), a ≤ c < d, among the d(d+1)/2 pairwise products (column-major upper
/// triangle).
fn pair_index(a: usize, c: usize) -> usize {
    c * (c + 1) / 2 + a
}

/// Entries of the block of pairwise products formed at a time by [`weighted_grams`].
const PAIR_BLOCK_ENTRIES: usize = 1 << 20;

/// X_cᵀ diag(w_k) X_c for every column w_k of `w` (rows × K), packed (d(d+1)/2 × K, entry (a, c)
/// at row [`pair_index`]): one matrix product Qᵀw with the rows' pairwise products
/// Q_{j,(a,c)} = x_ja·x_jc, formed a block of rows at a time so that Q is never held whole.
fn weighted_grams(xc: MatRef<'_, f64>, w: MatRef<'_, f64>) -> Mat<f64> {
    let d = xc.ncols();
    let pairs = d * (d + 1) / 2;
    let mut out = Mat::<f64>::zeros(pairs, w.ncols());
    let block = (PAIR_BLOCK_ENTRIES / pairs.max(1)).max(1);
    let mut q = Mat::<f64>::zeros(block.min(xc.nrows()), pairs);
    for first in (0..xc.nrows()).step_by(block) {
        let len = block.min(xc.nrows() - first);
        for c in 0..d {
            for a in 0..=c {
                let col = &mut q.col_as_slice_mut(pair_index(a, c))[..len];
                for (j, o) in col.iter_mut().enumerate() {
                    *o = xc[(first + j, a)] * xc[(first + j, c)];
                }
            }
        }
        matmul(
            out.as_mut(),
            Accum::Add,
            q.as_ref().subrows(0, len).transpose(),
            w.subrows(first, len),
            1.0,
            faer::get_global_parallelism(),
        );
    }
    out
}

/// The analytic center of each pattern's cone within the unit ball, argmin −Σ_j log(x̃_jᵀu) −
/// log(1 − ‖u‖²) over the pattern's signed rows x̃_j = ±x_j, by damped Newton steps from g/2 (g the
/// pattern's interior gate, a column of `gates`); returned at unit norm (d × P). Its margins to the samples' hyperplanes
/// are as even as the cone allows: the start of the structured interior point (M61), and interior
/// gates for the feasibility restoration (M10) that do not blow up on samples close to a raw
/// gate's hyperplane.
pub fn analytic_centers(
    x: MatRef<'_, f64>,
    patterns: &PatternSet,
    gates: MatRef<'_, f64>,
) -> Mat<f64> {
    centers(&Structure::cones(x, patterns, &nonzero_rows(x)), gates)
}

/// The analytic centers (see [`analytic_centers`]) of every pattern's cone, by damped Newton steps
/// on all patterns at once: each step's Hessians X̃ᵀdiag(1/s²)X̃ + 4uuᵀ/q² + 2I/q (q = 1 − ‖u‖²)
/// take one product of the rows' pairwise products with the weights 1/s² ([`weighted_grams`]),
/// and the gradients 2u/q − X̃ᵀ(1/s) one product with X_c, for the patterns not yet converged.
/// Each pattern then solves its d × d system and searches its own step.
fn centers(st: &Structure<'_>, gates: MatRef<'_, f64>) -> Mat<f64> {
    let (d, p) = (st.d(), st.p());
    let mut u = Mat::from_fn(d, p, |a, i| 0.5 * gates[(a, i)]);
    let mut slacks = st.slacks(u.as_ref());
    let mut active: Vec<usize> = (0..p).collect();
    for _ in 0..CENTER_STEPS {
        if active.is_empty() {
            break;
        }
        let k = active.len();
        // The weights ±1/s of the gradients and 1/s² of the Hessians.
        let signed = columns(slacks.nrows(), k, |c, out| {
            let sign = st.signs.col_as_slice(active[c]);
            for ((o, &v), &g) in out.iter_mut().zip(slacks.col_as_slice(active[c])).zip(sign) {
                *o = g / v;
            }
        });
        let squared = columns(slacks.nrows(), k, |c, out| {
            for (o, &v) in out.iter_mut().zip(signed.col_as_slice(c)) {
                *o = v * v;
            }
        });
        let packed = weighted_grams(st.xc.as_ref(), squared.as_ref());
        let mut pulled = Mat::<f64>::zeros(d, k);
        matmul(
            pulled.as_mut(),
            Accum::Replace,
            st.xc.transpose(),
            signed.as_ref(),
            1.0,
            faer::get_global_parallelism(),
        );
        let steps: Vec<Option<(Vec<f64>, Vec<f64>)>> = (0..k)
            .into_par_iter()
            .map(|c| {
                let i = active[c];
                center_step(
                    st,
                    i,
                    u.col_as_slice(i),
                    slacks.col_as_slice(i),
                    packed.col_as_slice(c),
                    pulled.col_as_slice(c),
                )
            })
            .collect();
        let mut next = Vec::with_capacity(k);
        for (c, step) in steps.into_iter().enumerate() {
            if let Some((ui, si)) = step {
                let i = active[c];
                u.col_as_slice_mut(i).copy_from_slice(&ui);
                slacks.col_as_slice_mut(i).copy_from_slice(&si);
                next.push(i);
            }
        }
        active = next;
    }
    columns(d, p, |i, out| out.copy_from_slice(&unit(u.col_as_slice(i))))
}

/// Most Newton steps of the analytic centers.
const CENTER_STEPS: usize = 20;

/// One damped Newton step of pattern i's analytic center from u with slacks `s` = X̃u, given the
/// packed X̃ᵀdiag(1/s²)X̃ (`packed`, at [`pair_index`]) and X̃ᵀ(1/s) (`pulled`): the next point and
/// its slacks, or `None` once the Newton decrement is below 1e-4 (or no step decreases the
/// barrier −Σ log s_j − log(1 − ‖u‖²)).
fn center_step(
    st: &Structure<'_>,
    i: usize,
    u: &[f64],
    s: &[f64],
    packed: &[f64],
    pulled: &[f64],
) -> Option<(Vec<f64>, Vec<f64>)> {
    let d = u.len();
    let sign = st.signs.col_as_slice(i);
    let barrier = |u: &[f64], s: &[f64]| -> f64 {
        let uu = dot(u, u);
        if uu >= 1.0 || s.iter().any(|&v| v <= 0.0) {
            return f64::INFINITY;
        }
        -s.iter().map(|v| v.ln()).sum::<f64>() - (1.0 - uu).ln()
    };
    let q = 1.0 - dot(u, u);
    let grad: Vec<f64> = (0..d).map(|a| 2.0 * u[a] / q - pulled[a]).collect();
    let h = Mat::from_fn(d, d, |a, b| {
        packed[pair_index(a.min(b), a.max(b))]
            + 4.0 * u[a] * u[b] / (q * q)
            + if a == b { 2.0 / q } else { 0.0 }
    });
    let llt = h.llt(faer::Side::Lower).ok()?;
    let mut step = Mat::from_fn(d, 1, |a, _| -grad[a]);
    llt.solve_in_place(step.as_mut());
    let step = step.col_as_slice(0);
    let decrement = -dot(&grad, step);
    if decrement < 1e-4 {
        return None;
    }
    let phi = barrier(u, s);
    let mut alpha = 1.0;
    while alpha >= 1e-10 {
        let next: Vec<f64> = (0..d).map(|a| u[a] + alpha * step[a]).collect();
        let sn: Vec<f64> = (0..s.len())
            .map(|j| sign[j] * dot(st.xr.col_as_slice(j), &next))
            .collect();
        if barrier(&next, &sn) <= phi - 0.25 * alpha * decrement {
            return Some((next, sn));
        }
        alpha *= 0.5;
    }
    None
}

impl Structure<'_> {
    /// The cone rows `rows` of X and their signs, without the data term.
    fn cones(x: MatRef<'_, f64>, patterns: &PatternSet, rows: &[usize]) -> Self {
        let (d, p) = (x.ncols(), patterns.len());
        Structure {
            xc: Mat::from_fn(rows.len(), d, |j, a| x[(rows[j], a)]),
            xr: Mat::from_fn(d, rows.len(), |a, j| x[(rows[j], a)]),
            signs: Mat::from_fn(rows.len(), p, |j, i| sign(patterns.get(rows[j], i))),
            form: None,
            y: &[],
            lambda: 0.0,
        }
    }

    fn p(&self) -> usize {
        self.signs.ncols()
    }
    fn d(&self) -> usize {
        self.xc.ncols()
    }

    /// S ∘ (X_c U): the cone slacks of weights U (d × 2P, or d × P: column b is pattern b mod P's).
    fn slacks(&self, u: MatRef<'_, f64>) -> Mat<f64> {
        let p = self.p();
        let mut out = Mat::<f64>::zeros(self.xc.nrows(), u.ncols());
        matmul(
            out.as_mut(),
            Accum::Replace,
            self.xc.as_ref(),
            u,
            1.0,
            faer::get_global_parallelism(),
        );
        for_columns(out.as_mut(), |b, col| {
            for (o, &s) in col.iter_mut().zip(self.signs.col_as_slice(b % p)) {
                *o *= s;
            }
        });
        out
    }

    /// Each pattern's starting working set of cone rows (M71), from the start's slacks `s`
    /// (rows × 2P; both blocks of a pattern start along the same direction): the `per_column`·d
    /// rows with the smallest slack per unit row norm, or every row where that is all of them or
    /// `per_column` is 0. The rows of each pattern, in increasing order.
    fn working_sets(&self, s: &Mat<f64>, per_column: usize) -> Vec<Vec<usize>> {
        let (nc, d) = (self.xc.nrows(), self.d());
        let keep = per_column.saturating_mul(d);
        if per_column == 0 || keep >= nc {
            return vec![(0..nc).collect(); self.p()];
        }
        let norms: Vec<f64> = (0..nc)
            .map(|j| (0..d).map(|a| self.xc[(j, a)].powi(2)).sum::<f64>().sqrt())
            .collect();
        (0..self.p())
            .into_par_iter()
            .map(|i| {
                let col = s.col_as_slice(i);
                let mut order: Vec<usize> = (0..nc).collect();
                let margin = |j: usize| col[j] / norms[j];
                order.select_nth_unstable_by(keep, |&a, &b| margin(a).total_cmp(&margin(b)));
                order.truncate(keep);
                order.sort_unstable();
                order
            })
            .collect()
    }

    /// The slacks' change (S ∘ X_c U)_jb on each block's working rows `rows` (M71) for weights U
    /// (d × 2P).
    fn working_slacks(&self, rows: &[Vec<usize>], u: &Mat<f64>) -> Ragged {
        let p = self.p();
        ragged(rows, |b, idx, out| {
            let (ub, sign) = (u.col_as_slice(b), self.signs.col_as_slice(b % p));
            for (o, &j) in out.iter_mut().zip(idx) {
                let x = self.xr.col_as_slice(j);
                *o = sign[j] * dot(x, ub);
            }
        })
    }

    /// X_cᵀ(S ∘ W) (d × 2P) for values W on each block's working rows `rows` (M71): the adjoint of
    /// [`Structure::working_slacks`].
    fn working_adjoint(&self, rows: &[Vec<usize>], w: &Ragged) -> Mat<f64> {
        let p = self.p();
        columns(self.d(), rows.len(), |b, out| {
            let sign = self.signs.col_as_slice(b % p);
            for (&j, &v) in rows[b].iter().zip(&w[b]) {
                let scale = sign[j] * v;
                for (o, &x) in out.iter_mut().zip(self.xr.col_as_slice(j)) {
                    *o += scale * x;
                }
            }
        })
    }

    /// a = v − w as one P·d vector (group i at i·d).
    fn difference(&self, u: MatRef<'_, f64>) -> Vec<f64> {
        let (p, d) = (self.p(), self.d());
        let mut a = vec![0.0; p * d];
        for i in 0..p {
            for r in 0..d {
                a[i * d + r] = u[(r, i)] - u[(r, p + i)];
            }
        }
        a
    }

    /// The objective (1/2n)‖Fa − y‖² + λΣt and the data gradient Fᵀ(Fa − y)/n of a = v − w: from
    /// the Gram form when it is formed ((aᵀGa − 2bᵀa + yᵀy)/2n, gradient (Ga − b)/n), else by two
    /// operator products.
    fn objective(
        &self,
        op: &mut MaskedOperator<f64>,
        u: MatRef<'_, f64>,
        t: &[f64],
    ) -> (f64, Vec<f64>) {
        let (p, d) = (self.p(), self.d());
        let a = self.difference(u);
        let n = self.y.len();
        let inv_n = 1.0 / n as f64;
        let penalty = self.lambda * t.iter().sum::<f64>();
        if let Some(form) = self.form {
            let mut q = Mat::<f64>::zeros(p * d, 1);
            matmul(
                q.as_mut(),
                Accum::Replace,
                form.g.as_ref(),
                MatRef::from_column_major_slice(&a, p * d, 1),
                1.0 / form.n as f64,
                faer::get_global_parallelism(),
            );
            let q = q.col_as_slice(0);
            let nf = form.n as f64;
            let quad: f64 = a.iter().zip(q).map(|(x, y)| x * y).sum::<f64>();
            let lin: f64 = a.iter().zip(&form.b).map(|(x, y)| x * y).sum::<f64>() / nf;
            let value = 0.5 * quad - lin + 0.5 * form.yy / nf + penalty;
            let grad = q.iter().zip(&form.b).map(|(qi, bi)| qi - bi / nf).collect();
            return (value, grad);
        }
        let mut r = vec![0.0; n];
        op.apply(MatRef::from_column_major_slice(&a, d, p), &mut r);
        for (ri, yi) in r.iter_mut().zip(self.y) {
            *ri -= yi;
        }
        let value = 0.5 * inv_n * r.iter().map(|v| v * v).sum::<f64>() + penalty;
        let mut grad = vec![0.0; p * d];
        op.adjoint(
            &r,
            faer::MatMut::from_column_major_slice_mut(&mut grad, d, p),
        );
        grad.iter_mut().for_each(|g| *g *= inv_n);
        (value, grad)
    }
}

/// Largest α ≥ 0 with ‖u + α du‖ ≤ t + α dt (∞ if every α is), from inside the cone.
fn soc_step(u: &[f64], t: f64, du: &[f64], dt: f64) -> f64 {
    let qa = dt * dt - dot(du, du);
    let qb = 2.0 * (t * dt - dot(u, du));
    let qc = t * t - dot(u, u);
    let mut alpha = if dt < 0.0 { -t / dt } else { f64::INFINITY };
    let root = if qa.abs() <= 1e-300 {
        if qb < 0.0 {
            -qc / qb
        } else {
            f64::INFINITY
        }
    } else {
        let disc = qb * qb - 4.0 * qa * qc;
        if disc < 0.0 {
            f64::INFINITY
        } else {
            // The roots, computed without cancellation; the smallest positive one.
            let sq = disc.sqrt();
            let q = -0.5 * (qb + qb.signum() * sq);
            let r1 = q / qa;
            let r2 = if q != 0.0 { qc / q } else { f64::INFINITY };
            [r1, r2]
                .into_iter()
                .filter(|r| *r > 0.0)
                .fold(f64::INFINITY, f64::min)
        }
    };
    alpha = alpha.min(root);
    alpha
}

/// Largest α ≤ `alpha` keeping x + α dx ≥ 0 for positive x (0 where an entry of x is not
/// positive; entries with x = dx = 0 are absent): the smallest −x_j/dx_j over dx_j < 0, kept in
/// eight independent lanes with the smallest x_j so that the loop vectorizes (a select, no branch,
/// no loop-carried minimum).
fn positive_step(x: &[f64], dx: &[f64], alpha: f64) -> f64 {
    const LANES: usize = 8;
    let mut bound = [alpha; LANES];
    let mut least = [f64::INFINITY; LANES];
    let split = x.len() - x.len() % LANES;
    for (xs, ds) in x[..split]
        .chunks_exact(LANES)
        .zip(dx[..split].chunks_exact(LANES))
    {
        for k in 0..LANES {
            // Divided for every entry and then selected: a branch on the sign mispredicts.
            let r = -xs[k] / ds[k];
            let r = if ds[k] < 0.0 { r } else { f64::INFINITY };
            bound[k] = if r < bound[k] { r } else { bound[k] };
            let present = xs[k] != 0.0 || ds[k] != 0.0;
            least[k] = if present && xs[k] < least[k] {
                xs[k]
            } else {
                least[k]
            };
        }
    }
    for (k, (&v, &dv)) in x[split..].iter().zip(&dx[split..]).enumerate() {
        if dv < 0.0 {
            bound[k] = bound[k].min(-v / dv);
        }
        if v != 0.0 || dv != 0.0 {
            least[k] = least[k].min(v);
        }
    }
    if least.iter().any(|&v| v <= 0.0) {
        return 0.0;
    }
    bound.iter().fold(alpha, |a, &b| a.min(b))
}

/// The Newton matrix of one iteration (M62), factored in the variables (v_i, t_{v_i}, t_{w_i}, a_i)
/// with a = v − w: per pattern the Cholesky factor of the pivot Y_i over (v_i, t_{v_i}, t_{w_i})
/// and the coupling C_i to a_i, and the Cholesky factor of the P·d Schur complement
/// S = G/n + blockdiag(B_{w_i}^{uu} − C_iᵀY_i⁻¹C_i) in a.
struct Factored {
    pivots: Vec<(faer::linalg::solvers::Llt<f64>, Mat<f64>)>,
    system: System,
    /// The Nesterov–Todd scaling of each block's second-order cone.
    nt: Vec<NtScaling>,
}

/// The barrier block B_b ((d+1) × (d+1), over (u, t)) of block `b`: X_cᵀ diag(z/s) X_c on the
/// weights, read from its column `weighted` of the pairwise products' product (see
/// [`barrier_weights`]), plus W⁻² of the second-order cone's Nesterov–Todd scaling.
fn barrier_block(weighted: &[f64], d: usize, nt: &NtScaling) -> Mat<f64> {
    let e = d + 1;
    let mut blk = Mat::<f64>::zeros(e, e);
    for c in 0..d {
        for a in 0..=c {
            let v = weighted[pair_index(a, c)];
            blk[(a, c)] = v;
            blk[(c, a)] = v;
        }
    }
    let winv2 = nt.winv_squared();
    // Block order (u, t) against the cone's order (t, u).
    let cone_index = |k: usize| if k < d { k + 1 } else { 0 };
    for c in 0..e {
        for r in 0..e {
            blk[(r, c)] += winv2[(cone_index(r), cone_index(c))];
        }
    }
    blk
}

/// X_cᵀ diag(z_b/s_b) X_c of every block b at once, as the columns of one product of the pairwise
/// products with the weights z/s (d(d+1)/2 × 2P): 2P·rows·d²/2 multiply–adds in one matrix
/// product, instead of 2P small ones.
fn barrier_weights(st: &Structure<'_>, it: &Iterate) -> Mat<f64> {
    let (rows, d) = (st.xc.nrows(), st.d());
    let working: usize = it.rows.iter().map(Vec::len).sum();
    // One product over every row runs at the matrix-multiply rate; block by block over the
    // working rows alone pays where these are a small share of the rows (a gathered product of
    // |W_b| × d per block at a fraction of that rate).
    if working.saturating_mul(d) * SPARSE_GRAMS < rows * it.rows.len() * (d + 1) / 2 {
        return working_grams(st, it);
    }
    let weights = columns(it.s.nrows(), it.s.ncols(), |b, out| {
        let s = it.s.col_as_slice(b);
        for (&j, &z) in it.rows[b].iter().zip(&it.z[b]) {
            out[j] = z / s[j];
        }
    });
    weighted_grams(st.xc.as_ref(), weights.as_ref())
}

/// The block-by-block sums of [`barrier_weights`] are chosen where their multiply–adds times this
/// are below the dense product's. Measured: at n = 10000, d = 50, P = 500 (the working rows 5% of
/// the rows, a ratio of 5) they took an iteration's blocks from 145 to about 20 ms; at n = 2000,
/// d = 20, P = 200 (a ratio of 1.3) the solve was 2% slower with them.
const SPARSE_GRAMS: usize = 8;

/// [`barrier_weights`] block by block: X_Wᵀdiag(z/s)X_W over each block's working rows W, packed
/// like [`weighted_grams`].
fn working_grams(st: &Structure<'_>, it: &Iterate) -> Mat<f64> {
    let d = st.d();
    let pairs = d * (d + 1) / 2;
    let mut out = Mat::<f64>::zeros(pairs, it.rows.len());
    let packed: Vec<Vec<f64>> = (0..it.rows.len())
        .into_par_iter()
        .map(|b| {
            let (idx, z, s) = (&it.rows[b], &it.z[b], it.s.col_as_slice(b));
            // The working rows side by side (d × |W|), and scaled by z/s.
            let mut xw = Mat::<f64>::zeros(d, idx.len());
            let mut scaled = Mat::<f64>::zeros(d, idx.len());
            for (r, &j) in idx.iter().enumerate() {
                let w = z[r] / s[j];
                let row = st.xr.col_as_slice(j);
                xw.col_as_slice_mut(r).copy_from_slice(row);
                for (o, &v) in scaled.col_as_slice_mut(r).iter_mut().zip(row) {
                    *o = v * w;
                }
            }
            let mut g = Mat::<f64>::zeros(d, d);
            matmul(
                g.as_mut(),
                Accum::Replace,
                xw.as_ref(),
                scaled.transpose(),
                1.0,
                Par::Seq,
            );
            let mut col = vec![0.0; pairs];
            for c in 0..d {
                for a in 0..=c {
                    col[pair_index(a, c)] = g[(a, c)];
                }
            }
            col
        })
        .collect();
    for (b, col) in packed.into_iter().enumerate() {
        out.col_as_slice_mut(b).copy_from_slice(&col);
    }
    out
}

/// The reduced system's factorization.
enum System {
    /// The Cholesky factor of S in the lower triangle of S's own buffer (factored in place; the
    /// buffer is recycled by the next iteration).
    Direct(Mat<f64>),
    /// Where rounding left S without a factor near the optimum: the factor of S with a small
    /// diagonal shift, and S for the refinement.
    Shifted(faer::linalg::solvers::Llt<f64>, Mat<f64>),
    /// The Woodbury form (M66).
    Woodbury(Woodbury),
}

impl System {
    /// In place, `r ← S⁻¹ r`.
    fn solve(&self, op: &mut MaskedOperator<f64>, r: &mut Mat<f64>) {
        match self {
            System::Direct(l) => {
                let par = faer::get_global_parallelism();
                solve_lower_triangular_in_place(l.as_ref(), r.as_mut(), par);
                solve_upper_triangular_in_place(l.transpose(), r.as_mut(), par);
            }
            System::Shifted(llt, s) => {
                let pd = s.nrows();
                refined_solve(
                    |v, out| {
                        let mut o = MatMut::from_column_major_slice_mut(out, pd, 1);
                        let v = MatRef::from_column_major_slice(v, pd, 1);
                        matmul(o.as_mut(), Accum::Replace, s.as_ref(), v, 1.0, Par::Seq);
                    },
                    |v, out| {
                        out.copy_from_slice(v);
                        llt.solve_in_place(MatMut::from_column_major_slice_mut(out, pd, 1));
                    },
                    r.col_as_slice_mut(0),
                    MAX_REFINE,
                );
            }
            System::Woodbury(w) => {
                w.solve(op, r.col_as_slice_mut(0));
            }
        }
    }

    /// The P·d × P·d buffer of a direct factorization, for the next iteration to reuse.
    fn into_buffer(self) -> Option<Mat<f64>> {
        match self {
            System::Direct(m) | System::Shifted(_, m) => Some(m),
            System::Woodbury(_) => None,
        }
    }
}

/// `out = G/n + blockdiag(m_i)`, the reduced system S from the Gram form and the Schur blocks.
fn assemble(form: &GramForm, blocks: &[Mat<f64>], out: &mut Mat<f64>) {
    let d = form.d;
    let inv_n = 1.0 / form.n as f64;
    for c in 0..out.ncols() {
        for (o, &g) in out
            .col_as_slice_mut(c)
            .iter_mut()
            .zip(form.g.col_as_slice(c))
        {
            *o = g * inv_n;
        }
    }
    for (i, m) in blocks.iter().enumerate() {
        for col in 0..d {
            for row in 0..d {
                out[(i * d + row, i * d + col)] += 0.5 * (m[(row, col)] + m[(col, row)]);
            }
        }
    }
}

/// The Newton matrix's factorization at iterate `it`; `spare`, the buffer of the previous
/// iteration's direct factorization, is reused; `precision` is that of the Woodbury form's
/// product, and `sample` the samples of the sampled form (M73), if it is used.
fn factor(
    st: &Structure<'_>,
    it: &Iterate,
    op: &MaskedOperator<f64>,
    spare: Option<Mat<f64>>,
    precision: Precision,
    sample: Option<&[usize]>,
) -> Option<Factored> {
    let (p, d) = (st.p(), st.d());
    let nt: Vec<NtScaling> = (0..2 * p)
        .map(|b| nt_scaling(&it.cone_point(b), it.zq.col_as_slice(b)))
        .collect();
    let weighted = barrier_weights(st, it);
    let per: Vec<Option<PatternPivot>> = (0..p)
        .into_par_iter()
        .map(|i| pattern_pivot(st, &weighted, i, &nt))
        .collect();
    let per: Vec<PatternPivot> = per.into_iter().collect::<Option<_>>()?;
    let symmetric = |m: &Mat<f64>| Mat::from_fn(d, d, |r, c| 0.5 * (m[(r, c)] + m[(c, r)]));
    let mut pivots = Vec::with_capacity(p);
    let mut blocks = Vec::with_capacity(p);
    for (llt, c, m) in per {
        blocks.push(m);
        pivots.push((llt, c));
    }
    let system = match st.form {
        Some(form) => {
            let mut k = spare
                .filter(|m| m.nrows() == p * d && m.ncols() == p * d)
                .unwrap_or_else(|| Mat::zeros(p * d, p * d));
            assemble(form, &blocks, &mut k);
            if cholesky_in_place(&mut k) {
                System::Direct(k)
            } else {
                assemble(form, &blocks, &mut k);
                System::Shifted(shifted_factor(&k)?, k)
            }
        }
        None => {
            let blocks = blocks.iter().map(symmetric).collect();
            System::Woodbury(match sample {
                Some(samples) => Woodbury::sampled(op, blocks, samples)?,
                None => Woodbury::new(op, blocks, precision)?,
            })
        }
    };
    Some(Factored { pivots, system, nt })
}

/// A pattern's pivot factor, its coupling C_i and its Schur block B_{w_i}^{uu} − C_iᵀY_i⁻¹C_i.
type PatternPivot = (faer::linalg::solvers::Llt<f64>, Mat<f64>, Mat<f64>);

/// The change of variables w = v − a turns the data term into (1/2n)aᵀGa and leaves the barrier
/// blocks B_v on (v, t_v) and B_w on (v − a, t_w): the pivot over y = (v, t_v, t_w) is
/// block-diagonal across patterns, so eliminating it is a block Cholesky step (stable, unlike
/// eliminating through explicit inverses of the B blocks).
fn pattern_pivot(
    st: &Structure<'_>,
    weighted: &Mat<f64>,
    i: usize,
    nt: &[NtScaling],
) -> Option<PatternPivot> {
    let (p, d) = (st.p(), st.d());
    let bv = barrier_block(weighted.col_as_slice(i), d, &nt[i]);
    let bw = barrier_block(weighted.col_as_slice(p + i), d, &nt[p + i]);
    let mut y = Mat::<f64>::zeros(d + 2, d + 2);
    for c in 0..d {
        for r in 0..d {
            y[(r, c)] = bv[(r, c)] + bw[(r, c)];
        }
        y[(c, d)] = bv[(c, d)];
        y[(d, c)] = bv[(d, c)];
        y[(c, d + 1)] = bw[(c, d)];
        y[(d + 1, c)] = bw[(d, c)];
    }
    y[(d, d)] = bv[(d, d)];
    y[(d + 1, d + 1)] = bw[(d, d)];
    let c = Mat::from_fn(d + 2, d, |r, col| match r {
        r if r < d => -bw[(r, col)],
        r if r == d => 0.0,
        _ => -bw[(d, col)],
    });
    let llt = y.llt(faer::Side::Lower).ok()?;
    let mut yc = c.clone();
    llt.solve_in_place(yc.as_mut());
    let mut m = Mat::from_fn(d, d, |r, col| bw[(r, col)]);
    matmul(
        m.as_mut(),
        Accum::Add,
        c.transpose(),
        yc.as_ref(),
        -1.0,
        Par::Seq,
    );
    Some((llt, c, m))
}

/// The Newton direction for the complementarity targets `rc` (on the working rows, for z∘s) and
/// `rq` ((d+1) × 2P, for λ∘λ of the second-order cones in the scaled variables) (M62), from the
/// dual residual `rd` ((d+1) × 2P, over (u, t)).
fn direction(
    st: &Structure<'_>,
    op: &mut MaskedOperator<f64>,
    it: &Iterate,
    f: &Factored,
    rd: &Mat<f64>,
    rc: &Ragged,
    rq: &Mat<f64>,
) -> Direction {
    let (p, d) = (st.p(), st.d());
    let e = d + 1;
    // r = −r_d − Σ ∇f_j rc_j / s_j: for the cone rows ∇f = −x̃, so + X_cᵀ(S ∘ rc/s).
    let scaled = ragged(&it.rows, |b, idx, out| {
        let s = it.s.col_as_slice(b);
        for ((o, &j), &r) in out.iter_mut().zip(idx).zip(&rc[b]) {
            *o = r / s[j];
        }
    });
    let back = st.working_adjoint(&it.rows, &scaled);
    // The cones: W Δz + W⁻¹ Δs = λ ⋄ r, so Δz = W⁻¹(λ ⋄ r) − W⁻² Δs.
    let shift: Vec<Vec<f64>> = (0..2 * p)
        .into_par_iter()
        .map(|b| {
            let nt = &f.nt[b];
            nt.winv(&jordan_solve(&nt.lambda, rq.col_as_slice(b)))
        })
        .collect();
    let rhs = Mat::from_fn(e, 2 * p, |r, b| {
        let (cone, q) = if r < d {
            (back[(r, b)], shift[b][r + 1])
        } else {
            (0.0, shift[b][0])
        };
        -rd[(r, b)] + cone + q
    });
    // In the variables (y_i, a_i), y = (v, t_v, t_w): the right-hand side is (r_v + r_w, r_{t_v},
    // r_{t_w}) for y and −r_w for a; y is eliminated per pattern, then S Δa = r_a − Σ C_iᵀY_i⁻¹r_y.
    let ry: Vec<Mat<f64>> = (0..p)
        .map(|i| {
            Mat::from_fn(d + 2, 1, |r, _| match r {
                r if r < d => rhs[(r, i)] + rhs[(r, p + i)],
                r if r == d => rhs[(d, i)],
                _ => rhs[(d, p + i)],
            })
        })
        .collect();
    let schur_rhs: Vec<Vec<f64>> = (0..p)
        .into_par_iter()
        .map(|i| {
            let (llt, c) = &f.pivots[i];
            let mut q = ry[i].clone();
            llt.solve_in_place(q.as_mut());
            (0..d)
                .map(|r| -rhs[(r, p + i)] - (0..d + 2).map(|k| c[(k, r)] * q[(k, 0)]).sum::<f64>())
                .collect()
        })
        .collect();
    let mut da = Mat::from_fn(p * d, 1, |r, _| schur_rhs[r / d][r % d]);
    f.system.solve(op, &mut da);
    let dys: Vec<Mat<f64>> = (0..p)
        .into_par_iter()
        .map(|i| {
            let (llt, c) = &f.pivots[i];
            let mut dy = Mat::from_fn(d + 2, 1, |r, _| {
                ry[i][(r, 0)] - (0..d).map(|k| c[(r, k)] * da[(i * d + k, 0)]).sum::<f64>()
            });
            llt.solve_in_place(dy.as_mut());
            dy
        })
        .collect();
    let mut du = Mat::<f64>::zeros(d, 2 * p);
    let mut dt = vec![0.0; 2 * p];
    for (i, dy) in dys.iter().enumerate() {
        for r in 0..d {
            du[(r, i)] = dy[(r, 0)];
            du[(r, p + i)] = dy[(r, 0)] - da[(i * d + r, 0)];
        }
        dt[i] = dy[(d, 0)];
        dt[p + i] = dy[(d + 1, 0)];
    }
    let ds = st.working_slacks(&it.rows, &du);
    let dz = ragged(&it.rows, |b, idx, out| {
        let (r, z) = (&rc[b], &it.z[b]);
        let (dsb, sb) = (&ds[b], it.s.col_as_slice(b));
        for (k, &j) in idx.iter().enumerate() {
            out[k] = (r[k] - z[k] * dsb[k]) / sb[j];
        }
    });
    let dzq = columns(e, 2 * p, |b, out| {
        let ds = std::iter::once(dt[b])
            .chain(du.col_as_slice(b).iter().copied())
            .collect::<Vec<_>>();
        let nt = &f.nt[b];
        let scaled = nt.winv(&nt.winv(&ds));
        for k in 0..e {
            out[k] = shift[b][k] - scaled[k];
        }
    });
    Direction {
        du,
        dt,
        ds,
        dz,
        dzq,
    }
}

/// Largest step in [0, 1] that keeps the working rows' slacks (M71), the multipliers and the
/// cones strictly feasible.
fn max_step(it: &Iterate, dir: &Direction) -> f64 {
    (0..it.u.ncols())
        .into_par_iter()
        .map(|b| {
            let (s, ds) = (it.s.col_as_slice(b), &dir.ds[b]);
            let alpha = it.rows[b].iter().zip(ds).fold(1.0f64, |a, (&j, &dv)| {
                if dv < 0.0 {
                    a.min(-s[j] / dv)
                } else {
                    a
                }
            });
            let alpha = positive_step(&it.z[b], &dir.dz[b], alpha);
            let (zq, dzq) = (it.zq.col_as_slice(b), dir.dzq.col_as_slice(b));
            alpha
                .min(soc_step(
                    it.u.col_as_slice(b),
                    it.t[b],
                    dir.du.col_as_slice(b),
                    dir.dt[b],
                ))
                .min(soc_step(&zq[1..], zq[0], &dzq[1..], dzq[0]))
        })
        .reduce(|| 1.0, f64::min)
}

/// Largest step in [0, 1] that keeps every cone row's slack positive, in the working sets or not
/// (M71), for the slacks' change `ds` on every row (rows × 2P).
fn slack_step(it: &Iterate, ds: &Mat<f64>) -> f64 {
    (0..it.u.ncols())
        .into_par_iter()
        .map(|b| positive_step(it.s.col_as_slice(b), ds.col_as_slice(b), 1.0))
        .reduce(|| 1.0, f64::min)
}

/// The rows outside block b's working set that the slacks' change `ds` (every row) crosses
/// within `step` (the working set's own step bound), by block (M71).
fn crossed_rows(it: &Iterate, ds: &Mat<f64>, step: f64) -> Vec<Vec<usize>> {
    (0..it.u.ncols())
        .into_par_iter()
        .map(|b| {
            let (s, ds) = (it.s.col_as_slice(b), ds.col_as_slice(b));
            let mut working = vec![false; s.len()];
            for &j in &it.rows[b] {
                working[j] = true;
            }
            (0..s.len())
                .filter(|&j| !working[j] && s[j] + step * ds[j] <= 0.0)
                .collect()
        })
        .collect()
}

/// Share of the trial step's increase that a centrality corrector must gain to be kept (M70).
const CORRECTOR_GAIN: f64 = 0.1;
/// The box [β_min, β_max]·σμ that a corrector pulls the cone rows' products into (M70).
const CENTERING_BOX: (f64, f64) = (0.1, 10.0);

/// The cone rows' complementarity targets `rc` with the centrality corrector's terms added (M70;
/// Gondzio 1996, "Multiple centrality corrections in a primal-dual method for linear
/// programming"): at the trial step `trial` along `dir`, each cone row's product
/// v = (s + α ds)(z + α dz) is pulled up to β_min·`target` or down to β_max·`target` (by at most
/// β_max·`target`), and left as it is inside the box.
fn centering(it: &Iterate, dir: &Direction, rc: &Ragged, trial: f64, target: f64) -> Ragged {
    let (low, high) = (CENTERING_BOX.0 * target, CENTERING_BOX.1 * target);
    ragged(&it.rows, |b, idx, out| {
        let (z, s) = (&it.z[b], it.s.col_as_slice(b));
        let (dz, ds) = (&dir.dz[b], &dir.ds[b]);
        let r = &rc[b];
        for (k, &j) in idx.iter().enumerate() {
            let v = (s[j] + trial * ds[k]) * (z[k] + trial * dz[k]);
            let pull = if v < low {
                low - v
            } else if v > high {
                (high - v).max(-high)
            } else {
                0.0
            };
            out[k] = r[k] + pull;
        }
    })
}

/// Σ (z + α dz)(s + α ds) over the cone rows and the second-order cones.
fn complementarity(it: &Iterate, dir: Option<(&Direction, f64)>) -> f64 {
    // Per block in parallel, summed in block order, the cone rows' share before the cone's (the
    // same sum on any number of threads).
    let per_block: Vec<(f64, f64)> = (0..it.u.ncols())
        .into_par_iter()
        .map(|b| block_complementarity(it, dir, b))
        .collect();
    per_block
        .iter()
        .fold(0.0, |total, &(rows, cone)| total + rows + cone)
}

/// Block b's shares of [`complementarity`]: its cone rows' and its second-order cone's.
fn block_complementarity(it: &Iterate, dir: Option<(&Direction, f64)>, b: usize) -> (f64, f64) {
    let (idx, z, s) = (&it.rows[b], &it.z[b], it.s.col_as_slice(b));
    let rows = match dir {
        None => idx.iter().zip(z).map(|(&j, &v)| v * s[j]).sum::<f64>(),
        Some((d, a)) => {
            let (dz, ds) = (&d.dz[b], &d.ds[b]);
            idx.iter()
                .enumerate()
                .map(|(k, &j)| (z[k] + a * dz[k]) * (s[j] + a * ds[k]))
                .sum::<f64>()
        }
    };
    let (q, zq) = (it.cone_point(b), it.zq.col_as_slice(b));
    let cone = match dir {
        None => q.iter().zip(zq).map(|(a, b)| a * b).sum::<f64>(),
        Some((d, a)) => {
            let (dq, dzq) = (d.cone_step(b), d.dzq.col_as_slice(b));
            (0..q.len())
                .map(|k| (q[k] + a * dq[k]) * (zq[k] + a * dzq[k]))
                .sum::<f64>()
        }
    };
    (rows, cone)
}

/// The certificate's three tries at the tolerance: the iterate's own multipliers, the exact ones
/// for its θ (M67), and the point polished on the identified face (M69).
#[derive(Clone, Copy)]
enum Attempt {
    Iterate,
    Exact,
    Face,
}

/// The face the iterate points to (M69): block b is nonzero where its norm t_b, relative to the
/// largest, exceeds its cone multiplier's slack (λ − ‖z_q‖)/λ; a cone row of a nonzero block is held
/// at zero where its multiplier, in the units of λ/‖x_j‖, exceeds its slack in the units of
/// ‖x_j‖‖u_b‖ (the two factors of z_j s_j = μ split at the same scale).
fn identify_face(st: &Structure<'_>, it: &Iterate) -> Face {
    let (nc, d) = (st.xc.nrows(), st.d());
    let row_norm: Vec<f64> = (0..nc)
        .map(|j| (0..d).map(|a| st.xc[(j, a)].powi(2)).sum::<f64>().sqrt())
        .collect();
    let t_max = it.t.iter().fold(0.0f64, |a, &v| a.max(v)).max(1e-300);
    let rows = (0..it.u.ncols())
        .map(|b| {
            let zq = it.zq.col_as_slice(b);
            let dual_slack = (st.lambda - zq[1..].iter().map(|v| v * v).sum::<f64>().sqrt())
                .max(0.0)
                / st.lambda;
            if it.t[b] / t_max <= dual_slack {
                return None;
            }
            let norm =
                it.u.col_as_slice(b)
                    .iter()
                    .map(|v| v * v)
                    .sum::<f64>()
                    .sqrt();
            let s = it.s.col_as_slice(b);
            // Rows outside the working set have no multiplier: never on the face.
            let mut face: Vec<usize> = it.rows[b]
                .iter()
                .zip(&it.z[b])
                .filter(|&(&j, &z)| {
                    z * row_norm[j] / st.lambda > s[j] / (row_norm[j] * norm).max(1e-300)
                })
                .map(|(&j, _)| j)
                .collect();
            face.sort_unstable();
            Some(face)
        })
        .collect();
    Face { rows }
}

/// The iterate polished on its face (M69), or `None` where the face holds no minimizer.
fn polish(
    st: &Structure<'_>,
    op: &mut MaskedOperator<f64>,
    it: &Iterate,
    pooling: usize,
) -> Option<Mat<f64>> {
    let prog = FaceProgram {
        xc: st.xc.as_ref(),
        signs: st.signs.as_ref(),
        y: st.y,
        lambda: st.lambda,
        pooling,
        dense_max: DENSE_MAX,
    };
    polish_on_face(op, &prog, it.u.as_ref(), &identify_face(st, it))
}

fn unit(u: &[f64]) -> Vec<f64> {
    let norm = u.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-300);
    u.iter().map(|v| v / norm).collect()
}

/// The multipliers over all rows of X (zero on the rows left out of the cones).
fn multipliers(it: &Iterate, cone_rows: &[usize], rows: usize) -> Mat<f64> {
    let mut mult = Mat::<f64>::zeros(rows, it.z.len());
    for (b, (idx, z)) in it.rows.iter().zip(&it.z).enumerate() {
        for (&j, &v) in idx.iter().zip(z) {
            mult[(cone_rows[j], b)] = v;
        }
    }
    mult
}

/// Solves the squared-loss ReLU program (M6) over `patterns` of the rows of `x` (nK × d, K =
/// [`InteriorSettings::pooling`]) for targets `y` (n) by the structured interior point (M61)–(M62),
/// from `start` (d × P unit gates strictly inside their cones, see [`interior_start`]).
#[allow(clippy::too_many_arguments)]
pub fn relu_interior(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    lambda: f64,
    start_gates: MatRef<'_, f64>,
    settings: &InteriorSettings,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> Result<InteriorOutput> {
    let (rows, d, p) = (x.nrows(), x.ncols(), patterns.len());
    if start_gates.nrows() != d || start_gates.ncols() != p {
        return Err(Error::InvalidSetting(format!(
            "the interior point needs one start gate per pattern: {} × {} for X with {d} columns \
             and {p} patterns",
            start_gates.nrows(),
            start_gates.ncols()
        )));
    }
    let samples = rows / settings.pooling.max(1);
    let form = if settings.system.uses_woodbury(samples, p * d) {
        None
    } else {
        Some(GramForm::new(x, y, patterns, settings.pooling)?)
    };
    let mut op = MaskedOperator::<f64>::new(x, patterns.clone(), DEFAULT_BLOCK_ROWS, 0)
        .with_pooling(settings.pooling);
    // The sampled form's samples (M73): uniform, without replacement, from the seed.
    let sample = settings.system.sampled(samples, p * d).map(|auto| {
        let m = match settings.sample {
            0 => auto,
            m => m.min(samples),
        };
        let mut idx: Vec<usize> = (0..samples).collect();
        crate::rng::Rng::new(settings.seed).shuffle(&mut idx);
        idx.truncate(m);
        idx.sort_unstable();
        idx
    });
    let cone_rows = nonzero_rows(x);
    let cones = Structure::cones(x, patterns, &cone_rows);
    let st = Structure {
        form: form.as_ref(),
        y,
        lambda,
        ..cones
    };
    // Start: u_b = c ĝ_i with ĝ_i the analytic center of pattern i's cone in the unit ball and c
    // matching the targets' scale, t = 2‖u‖, μ₀ = F / m.
    let rms = |v: &[f64]| (v.iter().map(|a| a * a).sum::<f64>() / v.len().max(1) as f64).sqrt();
    let centered = centers(&st, start_gates);
    let gates = Mat::from_fn(d, 2 * p, |a, b| centered[(a, b % p)]);
    let xg = st.slacks(gates.as_ref());
    let spread = (0..2 * p)
        .map(|b| rms(xg.col_as_slice(b)))
        .fold(1e-12, f64::max);
    let scale = 0.1 * rms(y).max(1e-12) / spread;
    let u = Mat::from_fn(d, 2 * p, |a, b| scale * gates[(a, b)]);
    let t: Vec<f64> = (0..2 * p).map(|_| 2.0 * scale).collect();
    let s = st.slacks(u.as_ref());
    let working = st.working_sets(&s, settings.working_rows);
    let rows_of: Vec<Vec<usize>> = (0..2 * p).map(|b| working[b % p].clone()).collect();
    // Complementarity pairs: the working rows and the second-order cones.
    let mut m = rows_of.iter().map(Vec::len).sum::<usize>() as f64 + (2 * p) as f64;
    let (f0, _) = st.objective(&mut op, u.as_ref(), &t);
    let mu0 = f0.max(1e-12) / m;
    // The second-order multipliers (λ, 0): the t rows of the dual residual start at zero.
    let zq = Mat::from_fn(d + 1, 2 * p, |k, _| if k == 0 { lambda } else { 0.0 });
    let mut it = Iterate {
        z: ragged(&rows_of, |b, idx, out| {
            for (o, &j) in out.iter_mut().zip(idx) {
                *o = mu0 / s[(j, b)];
            }
        }),
        rows: rows_of,
        zq,
        u,
        t,
        s,
    };
    let mut status = Status::MaxIterations;
    let mut iterations = 0;
    let mut relative_measure = f64::INFINITY;
    let mut small_steps = 0;
    let mut polished = None;
    let mut spare = None;
    let mut precision = if settings.mixed_precision {
        Precision::Single
    } else {
        Precision::Double
    };
    let mut face_tries = 0;
    while iterations < settings.max_iter {
        let (value, grad) = st.objective(&mut op, it.u.as_ref(), &it.t);
        let gap = complementarity(&it, None);
        relative_measure = gap / value.abs().max(1e-12);
        if !value.is_finite() || !gap.is_finite() {
            status = Status::NumericalError;
            break;
        }
        let record = IterRecord {
            iteration: iterations,
            outer: 0,
            objective: value,
            gap,
            violation: 0.0,
            seconds: start.elapsed().as_secs_f64(),
        };
        if !observer.on_iter(&record) || stop.is_set() {
            status = Status::Interrupted;
            break;
        }
        if relative_measure <= settings.tol {
            // The primal iterate is accurate long before the dual residual of the cone
            // inequalities is small (their apex, where unused neurons end, is not smooth): if the
            // interior point's multipliers do not certify, the best ones for the fixed θ of the
            // certificate (M9) are found block by block.
            let mut mult = multipliers(&it, &cone_rows, rows);
            let mut certified = false;
            // The face is tried at most twice (the last iterates lose accuracy, see (M69)).
            let face = face_tries < 2;
            for attempt in [Attempt::Iterate, Attempt::Exact, Attempt::Face] {
                match attempt {
                    Attempt::Iterate => {}
                    Attempt::Exact => {
                        let theta = dual_direction(&mut op, y, Loss::Squared, it.u.as_ref());
                        exact_multipliers(&op, &theta, &mut mult);
                    }
                    Attempt::Face if !face => break,
                    Attempt::Face => {
                        face_tries += 1;
                        // The barrier's conditioning has cost the last digits: Newton's method on
                        // the identified face (M69), kept only if it certifies.
                        let Some(u) = polish(&st, &mut op, &it, settings.pooling) else {
                            break;
                        };
                        let theta = dual_direction(&mut op, y, Loss::Squared, u.as_ref());
                        let mut face_mult = mult.clone();
                        exact_multipliers(&op, &theta, &mut face_mult);
                        let c = certificate(
                            &mut op,
                            y,
                            Loss::Squared,
                            lambda,
                            u.as_ref(),
                            Some(face_mult.as_ref()),
                        );
                        if c.objective - c.dual <= settings.tol * c.objective.abs()
                            && c.violation <= 1e-9 * c.objective.abs().max(1.0)
                        {
                            it.u = u;
                            mult = face_mult;
                            certified = true;
                        }
                        break;
                    }
                }
                let c = certificate(
                    &mut op,
                    y,
                    Loss::Squared,
                    lambda,
                    it.u.as_ref(),
                    Some(mult.as_ref()),
                );
                if c.objective - c.dual <= settings.tol * c.objective.abs() {
                    certified = true;
                    break;
                }
            }
            if certified || relative_measure <= 1e-4 * settings.tol {
                status = if certified {
                    Status::Converged
                } else {
                    Status::Stalled
                };
                polished = Some(mult);
                break;
            }
        }
        if settings
            .time_limit
            .is_some_and(|l| start.elapsed().as_secs_f64() >= l)
        {
            status = Status::TimeLimit;
            break;
        }
        // Dual residual r_d = ∇F − X_cᵀ(S∘Z) − z_q, per block over (u, t).
        let cone = st.working_adjoint(&it.rows, &it.z);
        let rd = Mat::from_fn(d + 1, 2 * p, |r, b| {
            if r < d {
                let g = grad[(b % p) * d + r];
                (if b < p { g } else { -g }) - cone[(r, b)] - it.zq[(r + 1, b)]
            } else {
                lambda - it.zq[(0, b)]
            }
        });
        let Some(fact) = factor(&st, &it, &op, spare.take(), precision, sample.as_deref()) else {
            status = Status::NumericalError;
            break;
        };
        let mu = gap / m;
        // Predictor: complementarity target 0.
        let rc_aff = ragged(&it.rows, |b, idx, out| {
            let s = it.s.col_as_slice(b);
            for ((o, &z), &j) in out.iter_mut().zip(&it.z[b]).zip(idx) {
                *o = -z * s[j];
            }
        });
        let lambda_sq = |b: usize| {
            let l = &fact.nt[b].lambda;
            jordan(l, l)
        };
        let mut rq_aff = Mat::<f64>::zeros(d + 1, 2 * p);
        for b in 0..2 * p {
            for (o, v) in rq_aff.col_as_slice_mut(b).iter_mut().zip(lambda_sq(b)) {
                *o = -v;
            }
        }
        let aff = direction(&st, &mut op, &it, &fact, &rd, &rc_aff, &rq_aff);
        let a_aff = max_step(&it, &aff);
        let mu_aff = complementarity(&it, Some((&aff, a_aff))) / m;
        let sigma = (mu_aff / mu).clamp(0.0, 1.0).powi(3);
        // Corrector: target σμ with Mehrotra's second-order term.
        let rc = ragged(&it.rows, |b, idx, out| {
            let (z, sl) = (&it.z[b], it.s.col_as_slice(b));
            let (ds, dz) = (&aff.ds[b], &aff.dz[b]);
            for (k, &j) in idx.iter().enumerate() {
                out[k] = sigma * mu - ds[k] * dz[k] - z[k] * sl[j];
            }
        });
        let mut rq = Mat::<f64>::zeros(d + 1, 2 * p);
        for b in 0..2 * p {
            let nt = &fact.nt[b];
            let second = jordan(&nt.winv(&aff.cone_step(b)), &nt.w(aff.dzq.col_as_slice(b)));
            let ll = lambda_sq(b);
            for k in 0..=d {
                rq[(k, b)] = if k == 0 { sigma * mu } else { 0.0 } - ll[k] - second[k];
            }
        }
        // The predictor's direction and targets are done with before the correctors' are formed.
        drop((aff, rc_aff));
        let mut dir = direction(&st, &mut op, &it, &fact, &rd, &rc, &rq);
        let mut step = max_step(&it, &dir);
        // Centrality correctors (M70): the cone rows' products at a longer trial step are pulled
        // back into [β_min σμ, β_max σμ], kept while the step grows enough.
        let mut rc = rc;
        for _ in 0..settings.correctors {
            if step >= 0.95 {
                break;
            }
            let trial = (1.5 * step + 0.1).min(1.0);
            let rc_next = centering(&it, &dir, &rc, trial, sigma * mu);
            let next = direction(&st, &mut op, &it, &fact, &rd, &rc_next, &rq);
            let next_step = max_step(&it, &next);
            if next_step < step + CORRECTOR_GAIN * (trial - step) {
                break;
            }
            (dir, rc, step) = (next, rc_next, next_step);
        }
        // K's product in single precision until the refinement pays for it no longer (M66).
        if let System::Woodbury(w) = &fact.system {
            if w.precision() == Precision::Single && w.refinement() > SINGLE_REFINEMENT {
                precision = Precision::Double;
            }
        }
        // Rows outside the working set that the step would cross join it, centered (z s = μ, so
        // μ stays as it is), and the iteration starts over with them (M71).
        let ds = st.slacks(dir.du.as_ref());
        let crossed = if slack_step(&it, &ds) < step {
            crossed_rows(&it, &ds, step)
        } else {
            Vec::new()
        };
        // (The bound over every row can fall below the working set's own by rounding alone.)
        if crossed.iter().any(|rows| !rows.is_empty()) {
            for (b, rows) in crossed.into_iter().enumerate() {
                for &j in &rows {
                    it.z[b].push(mu / it.s[(j, b)]);
                }
                m += rows.len() as f64;
                it.rows[b].extend(rows);
            }
            spare = fact.system.into_buffer();
            iterations += 1;
            continue;
        }
        let alpha = (0.99 * step).min(1.0);
        small_steps = if alpha < 1e-8 { small_steps + 1 } else { 0 };
        if small_steps >= 3 {
            status = Status::Stalled;
            break;
        }
        for b in 0..2 * p {
            for k in 0..d {
                it.u[(k, b)] += alpha * dir.du[(k, b)];
            }
            it.t[b] += alpha * dir.dt[b];
            for k in 0..=d {
                it.zq[(k, b)] += alpha * dir.dzq[(k, b)];
            }
        }
        it.z.par_iter_mut().zip(&dir.dz).for_each(|(z, dz)| {
            for (zj, dzj) in z.iter_mut().zip(dz) {
                *zj += alpha * dzj;
            }
        });
        it.s = st.slacks(it.u.as_ref());
        spare = fact.system.into_buffer();
        iterations += 1;
    }
    Ok(InteriorOutput {
        mult: polished.unwrap_or_else(|| multipliers(&it, &cone_rows, rows)),
        u: it.u,
        status,
        iterations,
        relative_measure,
        working_rows: (m as usize).saturating_sub(2 * p),
    })
}

/// A small planted ReLU program (60 samples, 3 features and a bias column, 10 sampled patterns)
/// for the tests of the interior point and of the crossover.
#[cfg(test)]
pub(crate) fn planted_problem() -> (Mat<f64>, Vec<f64>, PatternSet) {
    let mut rng = crate::rng::Rng::new(4);
    let (n, d) = (60, 4);
    let x = Mat::from_fn(n, d, |_, a| if a == d - 1 { 1.0 } else { rng.normal() });
    let y: Vec<f64> = (0..n)
        .map(|j| (x[(j, 0)] - 0.5 * x[(j, 1)]).max(0.0) + 0.1 * rng.normal())
        .collect();
    let pats = crate::features::sample::sample_patterns(x.as_ref(), 10, 3).unwrap();
    (x, y, pats)
}

/// [`relu_interior`] on a planted problem at λ = 1e-3 from its analytic gates.
#[cfg(test)]
pub(crate) fn solve_planted(
    x: &Mat<f64>,
    y: &[f64],
    pats: &PatternSet,
    settings: &InteriorSettings,
) -> InteriorOutput {
    let gates = interior_start(x.as_ref(), pats).expect("sampled gates are interior");
    relu_interior(
        x.as_ref(),
        y,
        pats,
        1e-3,
        gates.as_ref(),
        settings,
        &mut super::Silent,
        &StopFlag::new(),
        Instant::now(),
    )
    .unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::sample::sample_patterns;
    use crate::rng::Rng;

    #[test]
    fn nesterov_todd_scaling_maps_both_points_to_lambda() {
        let s = [2.0, 0.5, -1.0, 0.3];
        let z = [1.5, -0.2, 0.4, 0.9];
        let nt = nt_scaling(&s, &z);
        let (wz, winv_s) = (nt.w(&z), nt.winv(&s));
        for k in 0..4 {
            assert!((wz[k] - winv_s[k]).abs() < 1e-12, "{wz:?} vs {winv_s:?}");
            assert!((wz[k] - nt.lambda[k]).abs() < 1e-12);
        }
        // W W⁻¹ = I, and λ ∘ (λ ⋄ r) = r.
        let r = [0.3, -0.7, 0.1, 0.2];
        let back = jordan(&nt.lambda, &jordan_solve(&nt.lambda, &r));
        for k in 0..4 {
            assert!((back[k] - r[k]).abs() < 1e-12);
            let unit: Vec<f64> = (0..4).map(|c| f64::from(u8::from(c == k))).collect();
            let e = nt.w(&nt.winv(&unit));
            for (i, v) in e.iter().enumerate() {
                assert!((v - f64::from(u8::from(i == k))).abs() < 1e-12);
            }
            // W⁻² as a matrix: its column k is W⁻¹W⁻¹e_k.
            let w2 = nt.winv_squared();
            let col = nt.winv(&nt.winv(&unit));
            for (i, v) in col.iter().enumerate() {
                assert!((v - w2[(i, k)]).abs() < 1e-12);
            }
        }
    }

    /// The vectorized step bound is the plain minimum of −x_j/dx_j over dx_j < 0, for
    /// lengths with and without a remainder of the eight lanes, and is 0 where x is not positive.
    #[test]
    fn positive_step_matches_the_plain_minimum() {
        let mut rng = Rng::new(3);
        for len in [0usize, 5, 8, 37, 64] {
            let x: Vec<f64> = (0..len).map(|_| 0.01 + rng.uniform()).collect();
            let dx: Vec<f64> = (0..len).map(|_| rng.normal()).collect();
            let plain = x
                .iter()
                .zip(&dx)
                .filter(|(_, &dv)| dv < 0.0)
                .fold(1.0f64, |a, (&v, &dv)| a.min(-v / dv));
            assert_eq!(positive_step(&x, &dx, 1.0), plain, "{len}");
            assert_eq!(positive_step(&x, &dx, 0.25), plain.min(0.25), "{len}");
            if len > 0 {
                let mut bad = x.clone();
                bad[len - 1] = 0.0;
                assert_eq!(positive_step(&bad, &dx, 1.0), 0.0);
                // Entries with x = dx = 0 (multipliers outside the working set) are absent.
                let (mut absent, mut still) = (x.clone(), dx.clone());
                absent[0] = 0.0;
                still[0] = 0.0;
                let rest = x[1..]
                    .iter()
                    .zip(&dx[1..])
                    .filter(|(_, &dv)| dv < 0.0)
                    .fold(1.0f64, |a, (&v, &dv)| a.min(-v / dv));
                assert_eq!(positive_step(&absent, &still, 1.0), rest, "{len}");
            }
        }
    }

    #[test]
    fn soc_step_finds_the_boundary() {
        // From (u, t) = (0, 1) along du = (1, 0), dt = 0: the boundary is at α = 1.
        let a = soc_step(&[0.0, 0.0], 1.0, &[1.0, 0.0], 0.0);
        assert!((a - 1.0).abs() < 1e-12, "{a}");
        // Moving inward never leaves the cone.
        assert_eq!(soc_step(&[0.5, 0.0], 1.0, &[0.0, 0.0], 1.0), f64::INFINITY);
        // Shrinking t at twice the rate of u: ‖(0.5 − α)‖ … boundary where 1 − 2α = 0.5 − α.
        let a = soc_step(&[0.5], 1.0, &[-1.0], -2.0);
        assert!((a - 0.5).abs() < 1e-12, "{a}");
    }

    /// The in-place factor of a symmetric positive definite matrix solves it (through
    /// [`System::Direct`]), and a matrix without a factor is reported as such.
    #[test]
    fn in_place_factor_solves_and_detects_indefinite_matrices() {
        let mut rng = Rng::new(3);
        let m = 40;
        let a = Mat::from_fn(m, m, |_, _| rng.normal());
        let mut s = a.as_ref() * a.transpose();
        for j in 0..m {
            s[(j, j)] += 0.5;
        }
        let rhs = Mat::from_fn(m, 1, |_, _| rng.normal());
        let mut l = s.clone();
        assert!(cholesky_in_place(&mut l));
        let x = Mat::from_fn(1, 1, |_, _| 0.0);
        let patterns = sample_patterns(x.as_ref(), 1, 1).unwrap();
        let mut op = MaskedOperator::<f64>::new(x.as_ref(), patterns, 8, 1);
        let mut got = rhs.clone();
        System::Direct(l).solve(&mut op, &mut got);
        let back = s.as_ref() * got.as_ref();
        for j in 0..m {
            assert!((back[(j, 0)] - rhs[(j, 0)]).abs() < 1e-9, "row {j}");
        }
        let mut indefinite = s.clone();
        indefinite[(m - 1, m - 1)] = -1.0;
        assert!(!cholesky_in_place(&mut indefinite));
    }

    /// The sampled form (M73) is chosen from [`SAMPLED_MIN_SAMPLES`] samples where the Woodbury
    /// form would be, with a [`SAMPLE_FRACTION`]th of the samples, and then takes no correctors.
    #[test]
    fn sampled_form_is_chosen_for_many_samples() {
        let auto = NewtonSystem::Auto;
        assert_eq!(auto.sampled(10_000, 25_000), Some(1667));
        assert_eq!(auto.sampled(2000, 4000), None);
        assert!(auto.uses_woodbury(2000, 4000));
        // More samples than P·d: the direct factorization, not sampled.
        assert_eq!(auto.sampled(20_000, 4000), None);
        assert_eq!(NewtonSystem::Sampled.sampled(300, 40), Some(300));
        assert_eq!(NewtonSystem::Woodbury.sampled(10_000, 25_000), None);
        assert_eq!(sample_size(100), 100);
        assert_eq!(sample_size(1000), 500);
        assert_eq!(corrector_count(10_000, 10_000, 50, 500, auto), 0);
        assert_eq!(
            corrector_count(10_000, 10_000, 50, 500, NewtonSystem::Woodbury),
            CORRECTORS
        );
        // The m × m matrices instead of n × n ones.
        let sampled = interior_memory(10_000, 10_000, 50, 500, auto);
        let whole = interior_memory(10_000, 10_000, 50, 500, NewtonSystem::Woodbury);
        assert!(whole - sampled > 2 * 8 * (10_000 * 10_000 - 2 * 1667 * 1667));
    }

    /// The barrier blocks summed block by block over the working rows equal the dense product's.
    #[test]
    fn working_grams_match_the_dense_product() {
        let mut rng = Rng::new(12);
        let (n, d) = (120, 5);
        let x = Mat::from_fn(n, d, |_, _| rng.normal());
        let y: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
        let pats = sample_patterns(x.as_ref(), 6, 2).unwrap();
        let p = pats.len();
        let cone_rows = nonzero_rows(x.as_ref());
        let st = Structure {
            y: &y,
            lambda: 1e-3,
            ..Structure::cones(x.as_ref(), &pats, &cone_rows)
        };
        let s = Mat::from_fn(n, 2 * p, |_, _| 0.1 + rng.uniform());
        let rows: Vec<Vec<usize>> = (0..2 * p)
            .map(|b| (0..n).filter(|j| (j + b) % 3 == 0).collect())
            .collect();
        let z: Vec<Vec<f64>> = rows
            .iter()
            .map(|r| r.iter().map(|_| rng.uniform()).collect())
            .collect();
        let it = Iterate {
            u: Mat::zeros(d, 2 * p),
            t: vec![1.0; 2 * p],
            s: s.clone(),
            z: z.clone(),
            zq: Mat::zeros(d + 1, 2 * p),
            rows: rows.clone(),
        };
        let weights = Mat::from_fn(n, 2 * p, |j, b| {
            rows[b]
                .iter()
                .position(|&r| r == j)
                .map_or(0.0, |k| z[b][k] / s[(j, b)])
        });
        let dense = weighted_grams(st.xc.as_ref(), weights.as_ref());
        let sparse = working_grams(&st, &it);
        for b in 0..2 * p {
            for k in 0..d * (d + 1) / 2 {
                let (a, e) = (sparse[(k, b)], dense[(k, b)]);
                assert!(
                    (a - e).abs() <= 1e-12 * (1.0 + e.abs()),
                    "block {b}: {a} vs {e}"
                );
            }
        }
    }

    /// The analytic centers are unit vectors strictly inside their patterns' cones.
    #[test]
    fn analytic_centers_are_interior_unit_vectors() {
        let mut rng = Rng::new(8);
        let (n, d) = (200, 5);
        let x = Mat::from_fn(n, d, |_, a| if a == d - 1 { 1.0 } else { rng.normal() });
        let pats = sample_patterns(x.as_ref(), 20, 1).unwrap();
        let gates = interior_start(x.as_ref(), &pats).expect("sampled gates are interior");
        let centers = analytic_centers(x.as_ref(), &pats, gates.as_ref());
        for i in 0..pats.len() {
            let norm = (0..d).map(|a| centers[(a, i)].powi(2)).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-12, "pattern {i}: norm {norm}");
            for j in 0..n {
                let m: f64 =
                    sign(pats.get(j, i)) * (0..d).map(|a| x[(j, a)] * centers[(a, i)]).sum::<f64>();
                assert!(m > 0.0, "pattern {i}, sample {j}: margin {m}");
            }
        }
    }

    /// The certificate (M9) of an interior-point output for the program (x, y, patterns) at
    /// λ = 1e-3, with the output's multipliers.
    fn certify_output(
        x: &Mat<f64>,
        y: &[f64],
        pats: &PatternSet,
        out: &InteriorOutput,
    ) -> crate::program::relu::ReluCertificate {
        let mut op = MaskedOperator::<f64>::new(x.as_ref(), pats.clone(), 64, 1);
        certificate(
            &mut op,
            y,
            Loss::Squared,
            1e-3,
            out.u.as_ref(),
            Some(out.mult.as_ref()),
        )
    }

    /// The working sets of cone rows (M71) reach the optimum of the whole program, every row
    /// holding, in fewer iterations; from d rows per block, the rows the steps would cross join.
    #[test]
    fn working_set_of_cone_rows_keeps_the_optimum() {
        let mut rng = crate::rng::Rng::new(11);
        let (n, d) = (800, 8);
        let x = Mat::from_fn(n, d, |_, a| if a == d - 1 { 1.0 } else { rng.normal() });
        let y: Vec<f64> = (0..n)
            .map(|j| {
                (x[(j, 0)] + 0.5 * x[(j, 1)]).max(0.0) - (x[(j, 2)]).max(0.0) + 0.1 * rng.normal()
            })
            .collect();
        let pats = crate::features::sample::sample_patterns(x.as_ref(), 24, 5).unwrap();
        let p = pats.len();
        let mut runs = Vec::new();
        for working_rows in [0, WORKING_ROWS, 1] {
            let settings = InteriorSettings {
                tol: 1e-8,
                working_rows,
                ..InteriorSettings::default()
            };
            let out = solve_planted(&x, &y, &pats, &settings);
            assert_eq!(out.status, Status::Converged, "working rows {working_rows}");
            let c = certify_output(&x, &y, &pats, &out);
            // Every row holds, also those that never joined a working set (to rounding: the
            // crossover of (M69) puts the rows of its face at zero slack).
            assert!(
                c.violation <= 1e-12 * c.objective,
                "working rows {working_rows}: violation {}",
                c.violation
            );
            assert!((c.objective - c.dual) / c.objective < 1e-8);
            runs.push((c.objective, out.iterations, out.working_rows));
        }
        for r in &runs[1..] {
            assert!((r.0 - runs[0].0).abs() < 1e-8 * runs[0].0, "{runs:?}");
        }
        assert_eq!(runs[0].2, 2 * p * n);
        assert!(runs[1].2 < 2 * p * n / 4, "{runs:?}");
        // From d rows per block, the rows the steps would cross join the working sets.
        assert!(runs[2].2 > 2 * p * d, "{runs:?}");
        // Fewer rows, fewer iterations (25 with every row, 17 with the working sets).
        assert!(runs[1].1 + 4 <= runs[0].1, "{runs:?}");
    }

    /// Every way of solving the reduced system (the direct factorization, the Woodbury form of
    /// M66 with its product in double precision throughout or first in single precision, and the
    /// sampled form of M73 over a third of the samples), with and without centrality correctors
    /// (M70), reaches the same certified optimum, and the correctors take fewer iterations.
    #[test]
    fn interior_point_certifies_small_relu_programs() {
        let (x, y, pats) = planted_problem();
        let (mut objectives, mut iterations) = (Vec::new(), Vec::new());
        for (system, correctors, mixed_precision) in [
            (NewtonSystem::Direct, 0, false),
            (NewtonSystem::Woodbury, 0, false),
            (NewtonSystem::Direct, CORRECTORS, false),
            (NewtonSystem::Woodbury, CORRECTORS, false),
            (NewtonSystem::Woodbury, 0, true),
            (NewtonSystem::Woodbury, CORRECTORS, true),
            (NewtonSystem::Sampled, 0, true),
            (NewtonSystem::Sampled, CORRECTORS, true),
        ] {
            // Every row in the working set: on this small program the correctors' gain shows
            // there (with the working sets both take 15 iterations).
            let settings = InteriorSettings {
                tol: 1e-8,
                system,
                correctors,
                working_rows: 0,
                mixed_precision,
                sample: x.nrows() / 3,
                ..InteriorSettings::default()
            };
            let out = solve_planted(&x, &y, &pats, &settings);
            assert_eq!(
                out.status,
                Status::Converged,
                "{system:?}, {mixed_precision}"
            );
            iterations.push(out.iterations);
            let c = certify_output(&x, &y, &pats, &out);
            assert_eq!(c.violation, 0.0);
            let rel = (c.objective - c.dual) / c.objective;
            assert!(
                rel < 1e-8,
                "{system:?}, {mixed_precision}: relative gap {rel}"
            );
            objectives.push(c.objective);
        }
        for o in &objectives[1..] {
            let diff = (objectives[0] - o).abs() / objectives[0];
            assert!(diff < 1e-8, "objectives {objectives:?}");
        }
        // The centrality correctors lengthen the steps (17 iterations without, 15 with).
        assert!(
            iterations[2] < iterations[0] && iterations[3] < iterations[1],
            "iterations without and with correctors: {iterations:?}"
        );
    }
}
