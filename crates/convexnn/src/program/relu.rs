//! The ReLU program (docs/programs.md (M6)): min over v_i, w_i of
//! L(Σ_i D_i X (v_i − w_i), y) + λ Σ_i (‖v_i‖₂ + ‖w_i‖₂) subject to X̃_i v_i ≥ 0, X̃_i w_i ≥ 0, with
//! X̃_i = (2D_i − I) X. Weights are stored as one d × 2P matrix U = [V | W].
//!
//! The same code solves the leaky ReLU and absolute-value programs (M40): D_i is replaced by the
//! two-level mask M_i = cI + (1 − c)D_i of the operator ([`MaskedOperator::with_off_value`]; c = 0
//! ReLU, c = a leaky ReLU, c = −1 absolute value) in the data term and in the dual's D_iθ; the cones
//! are the same.
//!
//! The operator may pool (docs/programs.md (M35a), a convolutional network on the stacked patch
//! matrix): then the cone terms, multipliers and signs live on the nK rows of X while the
//! predictions, the residual and θ live on the n samples, and the data term is ΠΣ_i M_i X(v_i − w_i).
//!
//! Here: the augmented Lagrangian's smooth part (M20) and multiplier update (M21), feasibility
//! restoration with interior gates (M10), the cone decomposition of a gated solution (M12), and the
//! certified duality gap of the Lagrangian dual (M9).

use faer::{Mat, MatMut, MatRef};

use super::penalty::{col, col_mut, column_norm, group_norm_sum};
use super::Loss;
use crate::operator::MaskedOperator;
use crate::real::Real;
use crate::solver::fista::Smooth;

/// The image `Z = X U` (n × 2P) of the weights and the predictions ŷ = Σ_i M_i (Z_i − Z_{P+i}).
#[derive(Clone)]
pub struct ReluCache<T: Real> {
    /// X [V | W].
    pub z: Mat<T>,
    /// Predictions.
    pub yhat: Vec<T>,
}

/// Sign `(S_i)_jj = 2(D_i)_jj − 1` as ±1.
#[inline]
fn sign<T: Real>(bit: bool) -> T {
    if bit {
        T::one()
    } else {
        -T::one()
    }
}

/// Fills `yhat = Σ_i M_i (z_i − z_{P+i})` from `z` = X [V | W] (M_i = D_i for ReLU, (M40)), pooled
/// to `Π Σ_i M_i (z_i − z_{P+i})` by a pooling operator (M35a).
pub fn predictions_from_z<T: Real>(op: &MaskedOperator<T>, z: MatRef<'_, T>, yhat: &mut [T]) {
    let (rows, p) = (op.nrows(), op.n_patterns());
    let pooled = op.pooling() > 1;
    let mut acc = if pooled {
        vec![T::zero(); rows]
    } else {
        Vec::new()
    };
    let out: &mut [T] = if pooled { &mut acc } else { yhat };
    out.fill(T::zero());
    let mut diff = vec![T::zero(); rows];
    for i in 0..p {
        for ((t, &a), &b) in diff.iter_mut().zip(col(z, i)).zip(col(z, p + i)) {
            *t = a - b;
        }
        op.add_masked(i, out, &diff);
    }
    if pooled {
        op.pool_rows(&acc, yhat);
    }
}

/// θ spread over the rows of X: Π*θ for a pooling operator (M35a), θ itself otherwise.
fn spread<T: Real>(op: &MaskedOperator<T>, theta: Vec<T>) -> Vec<T> {
    if op.pooling() == 1 {
        return theta;
    }
    let mut rows = vec![T::zero(); op.nrows()];
    op.spread_samples(&theta, &mut rows);
    rows
}

/// The augmented Lagrangian's smooth part (M20):
/// L(ŷ, y) + (δ/2) Σ_i ‖(γ_i/δ − X̃_i v_i)₊‖² + ‖(ξ_i/δ − X̃_i w_i)₊‖².
pub struct ReluAlProblem<T: Real> {
    /// The masked operator (its patterns define D_i and S_i).
    pub op: MaskedOperator<T>,
    y: Vec<T>,
    loss: Loss,
    /// Penalty parameter δ.
    pub delta: f64,
    /// Multipliers [Γ | Ξ], n × 2P, nonnegative.
    pub mult: Mat<T>,
    m: Mat<T>,
    /// ∇L(ŷ) per sample.
    resid: Vec<T>,
    /// Π*∇L(ŷ) over the rows (pooling operators only).
    resid_rows: Vec<T>,
    /// (S_i)_jj = ±1, n × P, precomputed so that the elementwise loops are branch-free.
    signs: Mat<T>,
}

impl<T: Real> ReluAlProblem<T> {
    /// The program for targets `y`, with zero multipliers and penalty `delta`.
    pub fn new(op: MaskedOperator<T>, y: &[f64], loss: Loss, delta: f64) -> Self {
        let (n, p) = (op.nrows(), op.n_patterns());
        let (samples, pooled) = (op.n_samples(), op.pooling() > 1);
        let mut signs = Mat::zeros(n, p);
        for i in 0..p {
            fill_signs(op.patterns().column_words(i), signs.col_as_slice_mut(i));
        }
        ReluAlProblem {
            op,
            y: y.iter().map(|&v| T::lit(v)).collect(),
            loss,
            delta,
            mult: Mat::zeros(n, 2 * p),
            m: Mat::zeros(n, 2 * p),
            resid: vec![T::zero(); samples],
            resid_rows: if pooled {
                vec![T::zero(); n]
            } else {
                Vec::new()
            },
            signs,
        }
    }

    /// Targets in working precision.
    pub fn targets(&self) -> &[T] {
        &self.y
    }

    /// The loss of the datafit.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// Calls `f(c, s, z)` for each column c of the n × 2P cone matrix, with `s` the signs (S_i)_jj
    /// of its pattern and `z` the column of X [V | W].
    fn for_each_cone_column(&self, z: MatRef<'_, T>, mut f: impl FnMut(usize, &[T], &[T])) {
        let p = self.op.n_patterns();
        for c in 0..2 * p {
            f(c, self.signs.col_as_slice(c % p), col(z, c));
        }
    }

    /// Σ ‖(−X̃_i v_i)₊‖² + ‖(−X̃_i w_i)₊‖² and the largest single violation.
    pub fn violation(&self, cache: &ReluCache<T>) -> (f64, f64) {
        let (mut sq, mut mx) = (0.0f64, 0.0f64);
        self.for_each_cone_column(cache.z.as_ref(), |_, s, z| {
            for (&s, &z) in s.iter().zip(z) {
                let v = (-(s * z)).as_f64().max(0.0);
                sq += v * v;
                mx = mx.max(v);
            }
        });
        (sq, mx)
    }

    /// The multiplier update (M21): γ ← (γ − δ X̃ v)₊, ξ ← (ξ − δ X̃ w)₊.
    pub fn update_multipliers(&mut self, cache: &ReluCache<T>) {
        let delta = T::lit(self.delta);
        let (n, p) = (self.op.nrows(), self.op.n_patterns());
        for c in 0..2 * p {
            let zc = col(cache.z.as_ref(), c);
            let words = self.op.patterns().column_words(c % p);
            let mc = self.mult.col_as_slice_mut(c);
            for j in 0..n {
                let s: T = sign((words[j / 64] >> (j % 64)) & 1 == 1);
                let v = mc[j] - delta * s * zc[j];
                mc[j] = if v > T::zero() { v } else { T::zero() };
            }
        }
    }
}

impl<T: Real> Smooth<T> for ReluAlProblem<T> {
    type Cache = ReluCache<T>;

    fn dims(&self) -> (usize, usize) {
        (self.op.ncols(), 2 * self.op.n_patterns())
    }

    fn new_cache(&self) -> ReluCache<T> {
        let (n, p) = (self.op.nrows(), self.op.n_patterns());
        ReluCache {
            z: Mat::zeros(n, 2 * p),
            yhat: vec![T::zero(); self.op.n_samples()],
        }
    }

    fn forward(&mut self, u: MatRef<'_, T>, cache: &mut ReluCache<T>) {
        self.op.linear(u, cache.z.as_mut());
        predictions_from_z(&self.op, cache.z.as_ref(), &mut cache.yhat);
    }

    fn extrapolate(&self, out: &mut ReluCache<T>, new: &ReluCache<T>, old: &ReluCache<T>, b: T) {
        for c in 0..out.z.ncols() {
            let (a, o) = (new.z.col_as_slice(c), old.z.col_as_slice(c));
            for ((t, a), o) in out.z.col_as_slice_mut(c).iter_mut().zip(a).zip(o) {
                *t = *a + b * (*a - *o);
            }
        }
        for ((t, a), o) in out.yhat.iter_mut().zip(&new.yhat).zip(&old.yhat) {
            *t = *a + b * (*a - *o);
        }
    }

    fn copy_cache(&self, dst: &mut ReluCache<T>, src: &ReluCache<T>) {
        dst.z.copy_from(&src.z);
        dst.yhat.copy_from_slice(&src.yhat);
    }

    fn combine(&self, out: &mut ReluCache<T>, parts: &[&ReluCache<T>], weights: &[f64]) {
        use crate::solver::fista::{combine_slices, combine_vecs};
        for c in 0..out.z.ncols() {
            let cols: Vec<&[T]> = parts.iter().map(|p| p.z.col_as_slice(c)).collect();
            combine_slices(out.z.col_as_slice_mut(c), &cols, weights);
        }
        let yhats: Vec<&Vec<T>> = parts.iter().map(|p| &p.yhat).collect();
        combine_vecs(&mut out.yhat, &yhats, weights);
    }

    fn value(&self, cache: &ReluCache<T>) -> f64 {
        let delta = self.delta;
        let inv = T::lit(1.0 / delta);
        let mut pen = 0.0f64;
        self.for_each_cone_column(cache.z.as_ref(), |c, s, z| {
            let m = self.mult.col_as_slice(c);
            let mut acc = T::zero();
            for ((&s, &z), &g) in s.iter().zip(z).zip(m) {
                let v = (g * inv - s * z).max(T::zero());
                acc += v * v;
            }
            pen += acc.as_f64();
        });
        self.loss.value(&cache.yhat, &self.y) + 0.5 * delta * pen
    }

    fn gradient(&mut self, cache: &ReluCache<T>, grad: MatMut<'_, T>) {
        self.loss.gradient(&cache.yhat, &self.y, &mut self.resid);
        let (n, p) = (self.op.nrows(), self.op.n_patterns());
        let resid = if self.op.pooling() > 1 {
            self.op.spread_samples(&self.resid, &mut self.resid_rows);
            &self.resid_rows
        } else {
            &self.resid
        };
        let delta = T::lit(self.delta);
        let inv = T::lit(1.0 / self.delta);
        // (M_i)_jj = h0 + h1 s with h0 = (1 + c)/2, h1 = (1 − c)/2: (1 + s)/2 = (D_i)_jj for ReLU.
        let off = self.op.off_value();
        let h0 = T::lit(0.5) * (T::one() + off);
        let h1 = T::lit(0.5) * (T::one() - off);
        for c in 0..2 * p {
            let signs = self.signs.col_as_slice(c % p);
            let (zc, mc) = (col(cache.z.as_ref(), c), self.mult.col_as_slice(c));
            let out = col_mut(self.m.as_mut(), c);
            let (a0, a1) = if c < p { (h0, h1) } else { (-h0, -h1) };
            for j in 0..n {
                let s = signs[j];
                let hinge = (mc[j] * inv - s * zc[j]).max(T::zero());
                // The data term ±(M_i)_jj r_j.
                out[j] = (a0 + a1 * s) * resid[j] - delta * s * hinge;
            }
        }
        self.op.linear_adjoint(self.m.as_ref(), grad);
    }

    fn lipschitz_estimate(&mut self) -> f64 {
        let n = self.op.n_samples() as f64;
        let a2 = self.op.norm_squared_estimate(15);
        // ‖X‖² ≤ ‖A‖² is false in general; bound it by the Frobenius norm squared.
        let x2 = self.op.x().squared_norm_l2().as_f64();
        2.0 * self.loss.curvature() * a2 / n + self.delta * x2
    }
}

/// Writes (S_i)_jj = ±1 for the pattern with bits `words`.
fn fill_signs<T: Real>(words: &[u64], signs: &mut [T]) {
    for (j, s) in signs.iter_mut().enumerate() {
        *s = if (words[j / 64] >> (j % 64)) & 1 == 1 {
            T::one()
        } else {
            -T::one()
        };
    }
}

/// `X G` for gates `g` (d × P), in working precision.
fn gate_image<T: Real>(op: &mut MaskedOperator<T>, gates: MatRef<'_, f64>) -> Mat<T> {
    let g = Mat::from_fn(gates.nrows(), gates.ncols(), |k, i| T::lit(gates[(k, i)]));
    let mut xg = Mat::zeros(op.nrows(), gates.ncols());
    op.linear(g.as_ref(), xg.as_mut());
    xg
}

/// Smallest τ ≥ 0 with X̃_i (z_i + τ X g_i) ≥ 0 given X̃_i g_i > 0 (M10, M12).
fn shift_to_cone<T: Real>(op: &MaskedOperator<T>, i: usize, z: &[T], xg: &[T]) -> f64 {
    let mut tau = 0.0f64;
    for (j, (&zj, &gj)) in z.iter().zip(xg).enumerate() {
        let s: T = sign(op.patterns().get(j, i));
        let (a, b) = ((s * zj).as_f64(), (s * gj).as_f64());
        if a < 0.0 && b > 0.0 {
            tau = tau.max(-a / b);
        }
    }
    tau
}

/// How [`restore_feasibility`] shifts a block pair along its gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Restoration {
    /// (M10): v_i and w_i move by the same τ_i, so the predictions are unchanged.
    SamePredictions,
    /// v_i and w_i move by their own smallest shifts: a smaller penalty, slightly other predictions.
    SmallestShift,
}

/// Feasibility restoration (M10): v_i += τ_i g_i, w_i += τ'_i g_i with the smallest shifts that put
/// both in the cone K_i (τ_i = τ'_i for [`Restoration::SamePredictions`]). `u` is d × 2P.
pub fn restore_feasibility<T: Real>(
    op: &mut MaskedOperator<T>,
    u: &mut Mat<T>,
    gates: MatRef<'_, f64>,
    how: Restoration,
) {
    let p = op.n_patterns();
    let xg = gate_image(op, gates);
    let mut z = Mat::<T>::zeros(op.nrows(), 2 * p);
    op.linear(u.as_ref(), z.as_mut());
    for i in 0..p {
        let gcol = xg.col_as_slice(i);
        let tv = shift_to_cone(op, i, z.col_as_slice(i), gcol);
        let tw = shift_to_cone(op, i, z.col_as_slice(p + i), gcol);
        let (tv, tw) = match how {
            Restoration::SamePredictions => (tv.max(tw), tv.max(tw)),
            Restoration::SmallestShift => (tv, tw),
        };
        for (c, tau) in [(i, tv), (p + i, tw)] {
            if tau > 0.0 {
                let t = T::lit(tau);
                for k in 0..u.nrows() {
                    u[(k, c)] += t * T::lit(gates[(k, i)]);
                }
            }
        }
    }
}

/// Cone decomposition of a gated solution (M12): v_i = u_i + t_i g_i, w_i = t_i g_i, feasible for
/// (M6) with the same predictions. Returns [V | W] (d × 2P).
pub fn cone_decomposition<T: Real>(
    op: &mut MaskedOperator<T>,
    u: MatRef<'_, T>,
    gates: MatRef<'_, f64>,
) -> Mat<T> {
    let (d, p) = (u.nrows(), u.ncols());
    let mut vw = Mat::zeros(d, 2 * p);
    for i in 0..p {
        for k in 0..d {
            vw[(k, i)] = u[(k, i)];
        }
    }
    restore_feasibility(op, &mut vw, gates, Restoration::SamePredictions);
    vw
}

/// A certified evaluation of ReLU weights: objective, dual bound (M9) and the largest violation.
#[derive(Clone, Copy, Debug)]
pub struct ReluCertificate {
    /// F(V, W) (M6's objective).
    pub objective: f64,
    /// Lagrangian dual value at the scaled (θ, Γ, Ξ).
    pub dual: f64,
    /// max_{i,j} (−X̃_i v_i)_j₊ and the same for w.
    pub violation: f64,
}

/// Evaluates (M6) at `u` = [V | W] and bounds the optimum from below with the Lagrangian dual (M9):
/// θ = −∇L(ŷ), c = max_i max(‖Xᵀ(D_iθ + S_iγ_i)‖, ‖Xᵀ(D_iθ − S_iξ_i)‖), s = min(1, λ/c), dual value at sθ.
/// `mult` = [Γ | Ξ] (n × 2P) or `None` for zero multipliers (the weaker gated bound).
pub fn certificate<T: Real>(
    op: &mut MaskedOperator<T>,
    y: &[T],
    loss: Loss,
    lambda: f64,
    u: MatRef<'_, T>,
    mult: Option<MatRef<'_, T>>,
) -> ReluCertificate {
    let (n, p) = (op.nrows(), op.n_patterns());
    let mut z = Mat::<T>::zeros(n, 2 * p);
    op.linear(u, z.as_mut());
    let mut yhat = vec![T::zero(); op.n_samples()];
    predictions_from_z(op, z.as_ref(), &mut yhat);
    let mut violation = 0.0f64;
    for c in 0..2 * p {
        for (j, &zj) in z.col_as_slice(c).iter().enumerate() {
            let s: T = sign(op.patterns().get(j, c % p));
            violation = violation.max((-(s * zj)).as_f64());
        }
    }
    let objective = loss.value(&yhat, y) + lambda * group_norm_sum(u);
    let mut theta = vec![T::zero(); op.n_samples()];
    loss.gradient(&yhat, y, &mut theta);
    // [M∘θ + S∘Γ, M∘θ − S∘Ξ] with θ = −∇L (reuse z as storage); M_i = D_i for ReLU (M40); over the
    // rows, θ is Π*θ for a pooling operator (M35b).
    let theta_rows = spread(op, theta.clone());
    let off = op.off_value();
    for c in 0..2 * p {
        let out = z.col_as_slice_mut(c);
        for j in 0..n {
            let bit = op.patterns().get(j, c % p);
            let th = if bit {
                -theta_rows[j]
            } else {
                -off * theta_rows[j]
            };
            let g = mult.map_or(T::zero(), |m| m[(j, c)]);
            let sg: T = sign::<T>(bit) * g;
            out[j] = if c < p { th + sg } else { th - sg };
        }
    }
    let mut g = Mat::<T>::zeros(op.ncols(), 2 * p);
    op.linear_adjoint(z.as_ref(), g.as_mut());
    // Any γ ≥ 0 gives a valid bound, so each block uses the better of its multipliers and zero
    // (‖Xᵀ D_i θ‖, the gated bound).
    let mut g0 = Mat::<T>::zeros(op.ncols(), p);
    if mult.is_some() {
        let neg: Vec<T> = theta.iter().map(|&t| -t).collect();
        op.adjoint(&neg, g0.as_mut());
    }
    let c = (0..2 * p)
        .map(|c| {
            let with = column_norm(col(g.as_ref(), c));
            if mult.is_some() {
                with.min(column_norm(col(g0.as_ref(), c % p)))
            } else {
                with
            }
        })
        .fold(0.0, f64::max);
    let s = if c > lambda { lambda / c } else { 1.0 };
    ReluCertificate {
        objective,
        dual: loss.dual_value(&yhat, y, s),
        violation: violation.max(0.0),
    }
}

/// Improves the cone multipliers [Γ | Ξ] ≥ 0 of the dual bound (M9) for fixed θ, in place; `theta`
/// is over the rows of X (see [`dual_direction`]).
///
/// The bound at θ is valid for any multipliers and tight when every block norm
/// ‖Xᵀ(D_iθ ± S_iγ)‖ is at most λ; this runs `iters` steps of accelerated projected gradient on
/// Σ_c ½(‖R_c‖ − λ)₊², R_c = Xᵀ(M∘θ + S∘Γ_c) for v-blocks and Xᵀ(M∘θ − S∘Ξ_c) for w-blocks
/// (M the operator's mask: D for ReLU),
/// starting from `mult` (e.g. a solver's estimate). The step is 1/‖X‖₂² (power iteration).
pub fn polish_multipliers<T: Real>(
    op: &mut MaskedOperator<T>,
    theta: &[T],
    lambda: f64,
    mult: &mut Mat<T>,
    iters: usize,
) {
    if iters == 0 {
        return;
    }
    let (n, p, d) = (op.nrows(), op.n_patterns(), op.ncols());
    let x = op.x().to_owned();
    // ‖X‖₂² by power iteration on XᵀX.
    let mut v = vec![T::one(); d];
    let mut xv = vec![T::zero(); n];
    let mut lip = 0.0f64;
    for _ in 0..30 {
        let nv = column_norm(&v).max(1e-300);
        v.iter_mut().for_each(|t| *t *= T::lit(1.0 / nv));
        for (j, o) in xv.iter_mut().enumerate() {
            *o = (0..d)
                .map(|k| x[(j, k)] * v[k])
                .fold(T::zero(), |a, b| a + b);
        }
        for (k, o) in v.iter_mut().enumerate() {
            *o = (0..n)
                .map(|j| x[(j, k)] * xv[j])
                .fold(T::zero(), |a, b| a + b);
        }
        lip = column_norm(&v);
    }
    let step = T::lit(1.0 / (1.05 * lip).max(1e-300));
    let off = op.off_value();
    let signs = |c: usize, j: usize| -> (T, T) {
        // (M∘θ)_j (M_i = cI + (1 − c)D_i, (M40)) and ±(S)_jj for block c.
        let bit = op.patterns().get(j, c % p);
        let d_theta = if bit { theta[j] } else { off * theta[j] };
        let s: T = sign(bit);
        (d_theta, if c < p { s } else { -s })
    };
    let table: Vec<Vec<(T, T)>> = (0..2 * p)
        .map(|c| (0..n).map(|j| signs(c, j)).collect())
        .collect();
    let mut yk = mult.clone();
    let mut prev = mult.clone();
    let mut m = Mat::<T>::zeros(n, 2 * p);
    let mut r = Mat::<T>::zeros(d, 2 * p);
    let mut back = Mat::<T>::zeros(n, 2 * p);
    let mut t = 1.0f64;
    for _ in 0..iters {
        for (c, tc) in table.iter().enumerate() {
            let (mc, yc) = (m.col_as_slice_mut(c), yk.col_as_slice(c));
            for (j, (dt, s)) in tc.iter().enumerate() {
                mc[j] = *dt + *s * yc[j];
            }
        }
        op.linear_adjoint(m.as_ref(), r.as_mut());
        for c in 0..2 * p {
            let rc = col_mut(r.as_mut(), c);
            let nrm = column_norm(rc);
            let f = if nrm > lambda {
                1.0 - lambda / nrm
            } else {
                0.0
            };
            rc.iter_mut().for_each(|v| *v *= T::lit(f));
        }
        op.linear(r.as_ref(), back.as_mut());
        let t_next = 0.5 * (1.0 + (1.0 + 4.0 * t * t).sqrt());
        let beta = T::lit((t - 1.0) / t_next);
        for (c, tc) in table.iter().enumerate() {
            let (bc, yc, pc) = (
                back.col_as_slice(c),
                yk.col_as_slice_mut(c),
                prev.col_as_slice_mut(c),
            );
            let mc = mult.col_as_slice_mut(c);
            for (j, (_, s)) in tc.iter().enumerate() {
                let new = yc[j] - step * *s * bc[j];
                let new = if new > T::zero() { new } else { T::zero() };
                pc[j] = mc[j];
                mc[j] = new;
                yc[j] = new + beta * (new - pc[j]);
            }
        }
        t = t_next;
    }
}

/// The best cone multipliers [Γ | Ξ] ≥ 0 of the dual bound (M9) for fixed θ, block by block, in
/// place; `theta` is over the rows of X (see [`dual_direction`]).
///
/// For block c the bound needs ‖g + Σ_j γ_j a_j‖ ≤ λ with g = Xᵀ(M∘θ) and a_j = ±(S)_jj x_j (+
/// for v-blocks, − for w-blocks), so the best γ ≥ 0 solves a nonnegative least-squares problem in d
/// dimensions. It is solved exactly by the active-set method of Lawson & Hanson (1974, ch. 23),
/// started from the largest entries of `mult` (e.g. an interior point's multipliers), so the
/// certificate is as tight as θ allows. Blocks are independent and run in parallel; a block costs
/// one product with X per active-set change.
pub fn exact_multipliers<T: Real>(op: &MaskedOperator<T>, theta: &[T], mult: &mut Mat<T>) {
    use rayon::prelude::*;
    let (n, p, d) = (op.nrows(), op.n_patterns(), op.ncols());
    let x = Mat::from_fn(n, d, |j, a| op.x()[(j, a)].as_f64());
    let off = op.off_value().as_f64();
    let patterns = op.patterns();
    let solved: Vec<Vec<f64>> = (0..2 * p)
        .into_par_iter()
        .map(|c| {
            // Row signs σ_j (a_j = σ_j x_j, negated for w-blocks) and g = Σ_j (M∘θ)_j x_j.
            let flip = if c < p { 1.0 } else { -1.0 };
            let sigma: Vec<f64> = (0..n)
                .map(|j| if patterns.get(j, c % p) { flip } else { -flip })
                .collect();
            let mut g = vec![0.0; d];
            for j in 0..n {
                let th = theta[j].as_f64() * if patterns.get(j, c % p) { 1.0 } else { off };
                for (a, ga) in g.iter_mut().enumerate() {
                    *ga += th * x[(j, a)];
                }
            }
            let start: Vec<f64> = mult.col_as_slice(c).iter().map(|v| v.as_f64()).collect();
            let found = nnls_block(x.as_ref(), &sigma, &g, &start);
            // Rounding can stall the active set on degenerate blocks: keep the better of the two.
            if block_norm(x.as_ref(), &sigma, &g, &found)
                <= block_norm(x.as_ref(), &sigma, &g, &start)
            {
                found
            } else {
                start
            }
        })
        .collect();
    for (c, gamma) in solved.into_iter().enumerate() {
        for (o, v) in mult.col_as_slice_mut(c).iter_mut().zip(gamma) {
            *o = T::lit(v);
        }
    }
}

/// g + Σ_j γ_j σ_j x_j over the entries (j, γ_j) (x_j the rows of `x`).
fn block_residual(
    x: MatRef<'_, f64>,
    sigma: &[f64],
    g: &[f64],
    entries: impl Iterator<Item = (usize, f64)>,
) -> Vec<f64> {
    let mut r = g.to_vec();
    for (j, v) in entries {
        for (a, ra) in r.iter_mut().enumerate() {
            *ra += v * sigma[j] * x[(j, a)];
        }
    }
    r
}

/// ‖g + Σ_j γ_j σ_j x_j‖ for a dense γ.
fn block_norm(x: MatRef<'_, f64>, sigma: &[f64], g: &[f64], gamma: &[f64]) -> f64 {
    let entries = gamma.iter().copied().enumerate().filter(|&(_, v)| v != 0.0);
    column_norm(&block_residual(x, sigma, g, entries))
}

/// min over γ ≥ 0 of ‖g + Σ_j γ_j σ_j x_j‖ (x_j the rows of `x`) by Lawson–Hanson, warm-started
/// with the support of the d largest positive entries of `start`.
fn nnls_block(x: MatRef<'_, f64>, sigma: &[f64], g: &[f64], start: &[f64]) -> Vec<f64> {
    use faer::linalg::solvers::Solve;
    let (n, d) = (x.nrows(), x.ncols());
    let column = |j: usize| -> Vec<f64> { (0..d).map(|a| sigma[j] * x[(j, a)]).collect() };
    // Least squares on the passive set: min ‖g + A_P ζ‖ by the normal equations, regularized by a
    // relative 1e-13 so that dependent columns do not break the factorization.
    let least_squares = |set: &[usize]| -> Option<Vec<f64>> {
        let cols: Vec<Vec<f64>> = set.iter().map(|&j| column(j)).collect();
        let k = set.len();
        let dot = |u: &[f64], v: &[f64]| u.iter().zip(v).map(|(a, b)| a * b).sum::<f64>();
        let mut gram = Mat::from_fn(k, k, |r, c| dot(&cols[r], &cols[c]));
        let top = (0..k).map(|r| gram[(r, r)]).fold(0.0, f64::max).max(1e-300);
        for r in 0..k {
            gram[(r, r)] += 1e-13 * top;
        }
        let mut rhs = Mat::from_fn(k, 1, |r, _| -dot(&cols[r], g));
        let llt = gram.llt(faer::Side::Lower).ok()?;
        llt.solve_in_place(rhs.as_mut());
        Some((0..k).map(|r| rhs[(r, 0)]).collect())
    };
    // Warm start: the d largest positive multipliers, kept where their least-squares values are
    // positive.
    let mut order: Vec<usize> = (0..n).filter(|&j| start[j] > 0.0).collect();
    order.sort_by(|&a, &b| start[b].total_cmp(&start[a]));
    order.truncate(d);
    let mut set: Vec<usize> = Vec::new();
    let mut vals: Vec<f64> = Vec::new();
    if !order.is_empty() {
        if let Some(z) = least_squares(&order) {
            for (&j, &v) in order.iter().zip(&z) {
                if v > 0.0 {
                    set.push(j);
                    vals.push(v);
                }
            }
            // The kept subset's own least-squares values may leave the orthant: re-solve once and
            // fall back to a cold start if they do.
            if let Some(z) = least_squares(&set) {
                if z.iter().all(|&v| v > 0.0) {
                    vals = z;
                } else {
                    set.clear();
                    vals.clear();
                }
            }
        }
    }
    let scale = (0..n)
        .map(|j| (0..d).map(|a| x[(j, a)] * x[(j, a)]).sum::<f64>())
        .fold(0.0, f64::max)
        .sqrt();
    // Rows that entered the set and left it at once (rounding on degenerate blocks): not tried
    // again until the set changes otherwise.
    let mut tabu: Vec<usize> = Vec::new();
    for _ in 0..3 * d + 10 {
        let r = block_residual(x, sigma, g, set.iter().copied().zip(vals.iter().copied()));
        let rnorm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
        // Most negative directional derivative −a_jᵀr over the rows outside the set.
        let mut best = (usize::MAX, 1e-13 * scale * rnorm.max(1e-300));
        for j in 0..n {
            let w = -sigma[j] * (0..d).map(|a| x[(j, a)] * r[a]).sum::<f64>();
            if w > best.1 && !set.contains(&j) && !tabu.contains(&j) {
                best = (j, w);
            }
        }
        if best.0 == usize::MAX || set.len() >= d {
            break;
        }
        let before = set.clone();
        set.push(best.0);
        vals.push(0.0);
        // Inner loop: move toward the least-squares solution on the set, dropping the entries that
        // reach zero on the way.
        loop {
            let Some(z) = least_squares(&set) else {
                set.pop();
                vals.pop();
                break;
            };
            if z.iter().all(|&v| v > 0.0) {
                vals = z;
                break;
            }
            let mut alpha = 1.0f64;
            for (&v, &zv) in vals.iter().zip(&z) {
                if zv <= 0.0 {
                    alpha = alpha.min(v / (v - zv));
                }
            }
            let mut keep_set = Vec::with_capacity(set.len());
            let mut keep_vals = Vec::with_capacity(set.len());
            for ((&j, &v), &zv) in set.iter().zip(&vals).zip(&z) {
                let nv = v + alpha * (zv - v);
                if nv > 1e-15 * (v.abs() + zv.abs()) {
                    keep_set.push(j);
                    keep_vals.push(nv);
                }
            }
            set = keep_set;
            vals = keep_vals;
            if set.is_empty() {
                break;
            }
        }
        if set == before {
            tabu.push(best.0);
        } else {
            tabu.clear();
        }
    }
    let mut gamma = vec![0.0; n];
    for (&j, &v) in set.iter().zip(&vals) {
        gamma[j] = v;
    }
    gamma
}

/// θ = −∇L(ŷ) at the weights `u` (d × 2P), over the rows of X (Π*θ for a pooling operator,
/// (M35b)), as [`polish_multipliers`] takes it.
pub fn dual_direction<T: Real>(
    op: &mut MaskedOperator<T>,
    y: &[T],
    loss: Loss,
    u: MatRef<'_, T>,
) -> Vec<T> {
    let mut z = Mat::<T>::zeros(op.nrows(), u.ncols());
    op.linear(u, z.as_mut());
    let mut yhat = vec![T::zero(); op.n_samples()];
    predictions_from_z(op, z.as_ref(), &mut yhat);
    let mut theta = vec![T::zero(); op.n_samples()];
    loss.gradient(&yhat, y, &mut theta);
    theta.iter_mut().for_each(|t| *t = -*t);
    spread(op, theta)
}

/// The best feasible point obtainable from `candidates` (each d × 2P), with its certificate.
///
/// With gates, every candidate is made feasible both ways (M10) and the one of smallest objective is
/// returned; without gates, the first candidate as it is. The returned certificate has the objective
/// of the returned point, the best dual bound (M9) of every evaluation (each is a valid lower bound) and
/// the cone violation of the first candidate before restoration. With `polish` > 0, the multipliers
/// are first improved in place for θ at the first candidate ([`polish_multipliers`]).
pub fn best_feasible<T: Real>(
    op: &mut MaskedOperator<T>,
    (y, loss, lambda): (&[T], Loss, f64),
    candidates: &[MatRef<'_, T>],
    gates: Option<MatRef<'_, f64>>,
    mult: &mut Mat<T>,
    polish: usize,
) -> (Mat<T>, ReluCertificate) {
    let first = candidates[0];
    if polish > 0 {
        let theta = dual_direction(op, y, loss, first);
        polish_multipliers(op, &theta, lambda, mult, polish);
    }
    let mult = mult.as_ref();
    let mut cert = certificate(op, y, loss, lambda, first, Some(mult));
    let Some(g) = gates else {
        return (first.to_owned(), cert);
    };
    let mut best: Option<(Mat<T>, f64)> = None;
    for cand in candidates {
        for how in [Restoration::SamePredictions, Restoration::SmallestShift] {
            let mut u = cand.to_owned();
            restore_feasibility(op, &mut u, g, how);
            let c = certificate(op, y, loss, lambda, u.as_ref(), Some(mult));
            cert.dual = cert.dual.max(c.dual);
            if best.as_ref().is_none_or(|b| c.objective < b.1) {
                best = Some((u, c.objective));
            }
        }
    }
    let (u, objective) = best.expect("at least one candidate");
    cert.objective = objective;
    (u, cert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::sample::sample_patterns;
    use crate::rng::Rng;

    fn setup(seed: u64) -> (MaskedOperator<f64>, Mat<f64>, Vec<f64>) {
        let mut r = Rng::new(seed);
        let x = Mat::from_fn(30, 3, |_, k| if k == 2 { 1.0 } else { r.normal() });
        let pats = sample_patterns(x.as_ref(), 8, seed).unwrap();
        let gates = pats.gates().unwrap().to_owned();
        let y = (0..30).map(|_| r.normal()).collect();
        (MaskedOperator::new(x.as_ref(), pats, 64, 1), gates, y)
    }

    fn predictions(op: &mut MaskedOperator<f64>, u: &Mat<f64>) -> Vec<f64> {
        let mut z = Mat::zeros(op.nrows(), u.ncols());
        op.linear(u.as_ref(), z.as_mut());
        let mut yhat = vec![0.0; op.nrows()];
        predictions_from_z(op, z.as_ref(), &mut yhat);
        yhat
    }

    #[test]
    fn cone_decomposition_is_feasible_and_keeps_predictions() {
        for seed in 0..5 {
            let (mut op, gates, _) = setup(seed);
            let p = op.n_patterns();
            let mut r = Rng::new(seed + 10);
            let u = Mat::from_fn(3, p, |_, _| r.normal());
            let mut gated = vec![0.0; op.nrows()];
            op.apply(u.as_ref(), &mut gated);
            let vw = cone_decomposition(&mut op, u.as_ref(), gates.as_ref());
            let relu = predictions(&mut op, &vw);
            for j in 0..op.nrows() {
                assert!((gated[j] - relu[j]).abs() < 1e-10 * (1.0 + gated[j].abs()));
            }
            let y = vec![0.0; op.nrows()];
            let c = certificate(&mut op, &y, Loss::Squared, 0.1, vw.as_ref(), None);
            assert!(
                c.violation < 1e-10,
                "seed {seed}: violation {}",
                c.violation
            );
        }
    }

    #[test]
    fn restorations_are_feasible() {
        let (mut op, gates, _) = setup(3);
        let p = op.n_patterns();
        let mut r = Rng::new(4);
        let u = Mat::from_fn(3, 2 * p, |_, _| r.normal());
        for how in [Restoration::SamePredictions, Restoration::SmallestShift] {
            let mut f = u.clone();
            restore_feasibility(&mut op, &mut f, gates.as_ref(), how);
            let y = vec![0.0; op.nrows()];
            let c = certificate(&mut op, &y, Loss::Squared, 0.1, f.as_ref(), None);
            assert!(c.violation < 1e-10);
            if how == Restoration::SamePredictions {
                let (a, b) = (predictions(&mut op, &u), predictions(&mut op, &f));
                assert!(a
                    .iter()
                    .zip(&b)
                    .all(|(x, y)| (x - y).abs() < 1e-10 * (1.0 + x.abs())));
            }
        }
    }

    /// The multipliers of [`exact_multipliers`] satisfy each block's nonnegative least-squares
    /// optimality conditions, and their certificate is at least as tight as a long polish's.
    #[test]
    fn exact_multipliers_solve_each_block() {
        for (seed, off) in [(0u64, 0.0), (1, 0.0), (2, 0.2), (3, 0.0)] {
            let (op, _, y) = setup(seed);
            let mut op = op.with_off_value(off);
            let (n, p, d) = (op.nrows(), op.n_patterns(), op.ncols());
            let mut r = Rng::new(seed + 20);
            let u = Mat::from_fn(d, 2 * p, |_, _| 0.3 * r.normal());
            let theta = dual_direction(&mut op, &y, Loss::Squared, u.as_ref());
            let mut exact = Mat::<f64>::zeros(n, 2 * p);
            exact_multipliers(&op, &theta, &mut exact);
            let x = op.x().to_owned();
            for c in 0..2 * p {
                let flip = if c < p { 1.0 } else { -1.0 };
                let bit = |j: usize| op.patterns().get(j, c % p);
                let sg = |j: usize| flip * if bit(j) { 1.0 } else { -1.0 };
                let mut res = vec![0.0; d];
                for j in 0..n {
                    let m = if bit(j) { 1.0 } else { off };
                    let e = m * theta[j] + sg(j) * exact[(j, c)];
                    for a in 0..d {
                        res[a] += x[(j, a)] * e;
                    }
                }
                for j in 0..n {
                    let gamma = exact[(j, c)];
                    assert!(gamma >= 0.0, "seed {seed}, block {c}: γ_{j} = {gamma}");
                    let slope = sg(j) * (0..d).map(|a| x[(j, a)] * res[a]).sum::<f64>();
                    assert!(
                        slope >= -1e-9,
                        "seed {seed}, block {c}, row {j}: slope {slope}"
                    );
                    if gamma > 0.0 {
                        assert!(
                            slope.abs() <= 1e-9,
                            "seed {seed}, block {c}, row {j}: {slope}"
                        );
                    }
                }
            }
            let mut polished = Mat::<f64>::zeros(n, 2 * p);
            polish_multipliers(&mut op, &theta, 0.0, &mut polished, 5000);
            for lambda in [1e-3, 1e-2, 1e-1] {
                let a = certificate(
                    &mut op,
                    &y,
                    Loss::Squared,
                    lambda,
                    u.as_ref(),
                    Some(exact.as_ref()),
                );
                let b = certificate(
                    &mut op,
                    &y,
                    Loss::Squared,
                    lambda,
                    u.as_ref(),
                    Some(polished.as_ref()),
                );
                assert!(
                    a.dual >= b.dual - 1e-9 * b.dual.abs().max(1.0),
                    "seed {seed}: {} vs {}",
                    a.dual,
                    b.dual
                );
            }
        }
    }

    /// Weak duality holds for any nonnegative multipliers: the dual value (M9), or (M41) with the
    /// leaky ReLU and abs masks, never exceeds the objective of any feasible point.
    #[test]
    fn dual_bound_is_valid_for_any_multipliers() {
        for (seed, off) in (0..5).flat_map(|s| [(s, 0.0), (s, 0.3), (s, -1.0)]) {
            let (op, gates, y) = setup(seed);
            let mut op = op.with_off_value(off);
            let (n, p) = (op.nrows(), op.n_patterns());
            let mut r = Rng::new(seed + 20);
            let mut u = Mat::from_fn(3, 2 * p, |_, _| 0.3 * r.normal());
            restore_feasibility(
                &mut op,
                &mut u,
                gates.as_ref(),
                Restoration::SamePredictions,
            );
            let feasible = certificate(&mut op, &y, Loss::Squared, 0.05, u.as_ref(), None);
            for scale in [0.0, 0.01, 1.0] {
                let mult = Mat::from_fn(n, 2 * p, |_, _| scale * r.uniform());
                // The bound is evaluated at other weights (zero): still below every feasible objective.
                let zero = Mat::zeros(3, 2 * p);
                let c = certificate(
                    &mut op,
                    &y,
                    Loss::Squared,
                    0.05,
                    zero.as_ref(),
                    Some(mult.as_ref()),
                );
                assert!(
                    c.dual <= feasible.objective + 1e-12,
                    "seed {seed}: {} > {}",
                    c.dual,
                    feasible.objective
                );
            }
        }
    }
}
