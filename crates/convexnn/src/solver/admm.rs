//! ADMM for the cone-constrained ReLU program (M6) with an exact linear step (docs/programs.md (M24)).
//!
//! The splitting (in the spirit of Bai, Gautam & Sojoudi 2022 and CRONOS, Feng, Frangella & Pilanci
//! 2024) copies the weights three ways, so that every step but one is a closed-form proximal map:
//!
//! ```text
//! min  L(z / a) + λ Σ_c ‖Q_c‖₂ + I(S ≥ 0)
//! s.t. U = Q,   g · S∘(X U) = S,   a · F U = z
//! ```
//!
//! with U = [V | W] (d × 2P), F U = Σ_i M_i X (v_i − w_i) the predictions (M_i = D_i for ReLU,
//! cI + (1 − c)D_i for leaky ReLU and absolute value, (M40); m_i its diagonal), S∘(XU) the signed cone
//! images X̃_i v_i, X̃_i w_i, and constants g = √d/‖X‖_F, a = 10/‖F‖₂ that balance the three blocks.
//! The U-step solves (I + g²(I ⊗ XᵀX) + a²FᵀF) U = R exactly. Since (S_i)² = I, the middle term is
//! block diagonal with one d × d block K = I + g²XᵀX, and the Woodbury identity leaves an n × n system
//! with the matrix
//!
//! ```text
//! C = I + a² F (I ⊗ K)⁻¹ Fᵀ = I + 2a² (X K⁻¹ Xᵀ) ∘ (M Mᵀ),   M = [m_1 … m_P] (n × P),
//! ```
//!
//! factored once (Cholesky); every iteration then costs two operator products, two GEMMs with X and
//! two triangular solves. The Q-step is group soft-thresholding, the S-step a projection, the z-step the
//! loss's proximal map (closed form for the squared loss, a few Newton steps for the logistic loss).
//! The penalty ρ adapts by residual balancing without refactoring (the U-step does not depend on it).
//!
//! Stopping is certified like the augmented Lagrangian's: every `check_every` iterations the iterates
//! are made feasible along interior gates (M10) and bounded below by the Lagrangian dual (M9) with the
//! cone multipliers γ = (−ρ g Λ_S)₊ that ADMM estimates.

use std::time::Instant;

use faer::linalg::matmul::matmul;
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, MatRef, Side};

use super::{IterRecord, Observe, Status, StopFlag};
use crate::error::{Error, Result};
use crate::operator::MaskedOperator;
use crate::program::datafit::sigmoid;
use crate::program::penalty::prox_group;
use crate::program::relu::{best_feasible, ReluCertificate};
use crate::program::Loss;

/// Weight of the cone block: g = BALANCE_X·√d/‖X‖_F, so that g²XᵀX has eigenvalues of order one
/// on average (its trace is d·BALANCE_X²).
const BALANCE_X: f64 = 1.0;
/// Weight of the prediction block: a = BALANCE_F/‖F‖₂ (measured on MNIST pairs, where it converges
/// several times faster than 1).
const BALANCE_F: f64 = 10.0;
/// Accelerated projected-gradient steps that improve the cone multipliers of each certificate.
const POLISH: usize = 30;

/// Settings of [`admm`], with documented defaults.
#[derive(Clone, Debug)]
pub struct AdmmSettings {
    /// Relative duality gap of the restored feasible point at which to stop. Default 1e-6.
    pub tol: f64,
    /// Iteration cap. Default 20 000.
    pub max_iter: usize,
    /// Certify (and report) every this many iterations. Default 50.
    pub check_every: usize,
    /// Wall-clock limit in seconds.
    pub time_limit: Option<f64>,
    /// Initial penalty ρ. Default 1.
    pub rho0: f64,
}

impl Default for AdmmSettings {
    fn default() -> Self {
        AdmmSettings {
            tol: 1e-6,
            max_iter: 20_000,
            check_every: 50,
            time_limit: None,
            rho0: 1.0,
        }
    }
}

/// What [`admm`] returns.
pub struct AdmmOutput {
    /// Weights [V | W] (d × 2P), feasible when gates were given.
    pub u: Mat<f64>,
    /// Cone multipliers [Γ | Ξ] (n × 2P).
    pub mult: Mat<f64>,
    /// Objective of `u`.
    pub objective: f64,
    /// Best dual bound (M9).
    pub dual: f64,
    /// Cone violation of the last sparse iterate Q before restoration.
    pub violation: f64,
    /// Iterations.
    pub iterations: usize,
    /// How it ended.
    pub status: Status,
}

/// Bytes [`admm`] allocates for its n × n factorization (the factor and one work matrix).
pub fn admm_memory(n: usize) -> usize {
    2 * n * n * std::mem::size_of::<f64>()
}

/// The factored U-step: (I ⊗ K) and C of the module docs.
struct LinearStep {
    /// Cholesky factor of K = I + g²XᵀX (d × d).
    k: faer::linalg::solvers::Llt<f64>,
    /// Cholesky factor of C (n × n).
    c: faer::linalg::solvers::Llt<f64>,
    a: f64,
}

impl LinearStep {
    fn new(op: &MaskedOperator<f64>, g: f64, a: f64) -> Result<Self> {
        let (x, n, d, p) = (op.x(), op.nrows(), op.ncols(), op.n_patterns());
        let par = op.par();
        let mut kmat = Mat::<f64>::identity(d, d);
        matmul(kmat.as_mut(), Accum::Add, x.transpose(), x, g * g, par);
        let k = kmat
            .llt(Side::Lower)
            .map_err(|e| Error::Backend(format!("ADMM: factoring I + g²XᵀX failed: {e:?}")))?;
        // H = X K⁻¹ Xᵀ = (L⁻¹Xᵀ)ᵀ (L⁻¹Xᵀ).
        let mut lx = x.transpose().to_owned();
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(k.L(), lx.as_mut(), par);
        let mut c = Mat::<f64>::zeros(n, n);
        matmul(
            c.as_mut(),
            Accum::Replace,
            lx.transpose(),
            lx.as_ref(),
            1.0,
            par,
        );
        drop(lx);
        // C = I + 2a² H ∘ (M Mᵀ), M Mᵀ by blocks of rows; M holds the mask values (1 where the
        // pattern bit is set, the operator's off value c elsewhere: 0 for ReLU, (M40)).
        let off = op.off_value();
        let mut m = Mat::<f64>::from_fn(n, p, |_, _| off);
        for i in 0..p {
            let col = m.col_as_slice_mut(i);
            crate::operator::for_each_set_bit(op.patterns().column_words(i), n, |j| col[j] = 1.0);
        }
        const BLOCK: usize = 512;
        let mut counts = Mat::<f64>::zeros(BLOCK.min(n), n);
        for r0 in (0..n).step_by(BLOCK) {
            let rows = BLOCK.min(n - r0);
            let mut t = counts.as_mut().subrows_mut(0, rows);
            matmul(
                t.as_mut(),
                Accum::Replace,
                m.as_ref().subrows(r0, rows),
                m.transpose(),
                1.0,
                par,
            );
            for k2 in 0..n {
                for r in 0..rows {
                    c[(r0 + r, k2)] *= 2.0 * a * a * t[(r, k2)];
                }
            }
        }
        for j in 0..n {
            c[(j, j)] += 1.0;
        }
        let c = c.llt(Side::Lower).map_err(|e| {
            Error::Backend(format!("ADMM: factoring the n × n system failed: {e:?}"))
        })?;
        Ok(LinearStep { k, c, a })
    }

    /// Solves (I + g²(I ⊗ XᵀX) + a²FᵀF) U = R in place (R is d × 2P).
    fn solve(&self, op: &mut MaskedOperator<f64>, r: &mut Mat<f64>) {
        let p = op.n_patterns();
        // U₀ = (I ⊗ K)⁻¹ R.
        self.k.solve_in_place(r.as_mut());
        // t = C⁻¹ F U₀.
        let diff = Mat::from_fn(r.nrows(), p, |k, i| r[(k, i)] - r[(k, p + i)]);
        let mut t = Mat::<f64>::zeros(op.nrows(), 1);
        op.apply(diff.as_ref(), t.col_as_slice_mut(0));
        self.c.solve_in_place(t.as_mut());
        // U = U₀ − a² (I ⊗ K)⁻¹ Fᵀ t, Fᵀ t = [Aᵀt | −Aᵀt].
        let mut ft = Mat::<f64>::zeros(r.nrows(), p);
        op.adjoint(t.col_as_slice(0), ft.as_mut());
        self.k.solve_in_place(ft.as_mut());
        let s = self.a * self.a;
        for i in 0..p {
            for k in 0..r.nrows() {
                r[(k, i)] -= s * ft[(k, i)];
                r[(k, p + i)] += s * ft[(k, i)];
            }
        }
    }
}

/// The loss's proximal map on z: argmin_z L(z / a) + (ρ/2)‖z − w‖², in place on `w`.
fn prox_loss(loss: Loss, w: &mut [f64], y: &[f64], a: f64, rho: f64) {
    let n = y.len() as f64;
    match loss {
        Loss::Squared => {
            let (c1, c2) = (1.0 / (n * a * a) + rho, 1.0 / (n * a));
            for (wj, &yj) in w.iter_mut().zip(y) {
                *wj = (yj * c2 + rho * *wj) / c1;
            }
        }
        Loss::Logistic => {
            // φ(z) = (1/n) log(1 + exp(−y z/a)) + (ρ/2)(z − w)²: strongly convex, Newton from w.
            for (wj, &yj) in w.iter_mut().zip(y) {
                let target = *wj;
                let mut z = target;
                for _ in 0..30 {
                    let s = sigmoid(-yj * z / a);
                    let grad = -yj * s / (n * a) + rho * (z - target);
                    let hess = s * (1.0 - s) / (n * a * a) + rho;
                    let step = grad / hess;
                    z -= step;
                    if step.abs() <= 1e-14 * (1.0 + z.abs()) {
                        break;
                    }
                }
                *wj = z;
            }
        }
        // Refused by `admm` before any iteration.
        Loss::Softmax => {}
        Loss::Hinge => {
            // (1/n)(1 − y z/a)₊ + (ρ/2)(z − w)²: unchanged above the margin, shifted by y/(naρ)
            // below it, else clamped to the kink y z/a = 1 (not reached today: the hinge loss is
            // for threshold networks, which ADMM does not solve).
            for (wj, &yj) in w.iter_mut().zip(y) {
                let margin = yj * *wj / a;
                let shift = 1.0 / (n * a * a * rho);
                *wj = if margin >= 1.0 {
                    *wj
                } else if margin + shift <= 1.0 {
                    *wj + yj / (n * a * rho)
                } else {
                    a * yj
                };
            }
        }
    }
}

fn signed_image(op: &MaskedOperator<f64>, z: &mut Mat<f64>, scale: f64) {
    let (n, p) = (op.nrows(), op.n_patterns());
    for c in 0..z.ncols() {
        let words = op.patterns().column_words(c % p);
        let col = z.col_as_slice_mut(c);
        for (j, v) in col.iter_mut().enumerate().take(n) {
            let s = if (words[j / 64] >> (j % 64)) & 1 == 1 {
                scale
            } else {
                -scale
            };
            *v *= s;
        }
    }
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

fn mat_sq_dist(a: &Mat<f64>, b: &Mat<f64>) -> f64 {
    (0..a.ncols())
        .map(|c| sq_dist(a.col_as_slice(c), b.col_as_slice(c)))
        .sum()
}

/// Applies `f` to every entry of `m`.
fn map_in_place(m: &mut Mat<f64>, f: impl Fn(f64) -> f64) {
    for c in 0..m.ncols() {
        for v in m.col_as_slice_mut(c) {
            *v = f(*v);
        }
    }
}

/// Solves (M6) by ADMM from `u0` (d × 2P). `gates` (d × P) make iterates feasible for certification;
/// without them, the last iterate is returned once its cone violation is within `tol`.
#[allow(clippy::too_many_arguments)]
pub fn admm(
    op: &mut MaskedOperator<f64>,
    y: &[f64],
    loss: Loss,
    lambda: f64,
    u0: Mat<f64>,
    gates: Option<MatRef<'_, f64>>,
    settings: &AdmmSettings,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> Result<AdmmOutput> {
    if loss == Loss::Softmax {
        return Err(Error::InvalidSetting(
            "ADMM solves single-output programs; the softmax loss needs c outputs (use --solver auto)"
                .into(),
        ));
    }
    let (n, d, p) = (op.nrows(), op.ncols(), op.n_patterns());
    let xnorm = op.x().norm_l2().max(1e-300);
    let fnorm = op.norm_squared_estimate(20).sqrt().max(1e-300);
    let (g, a) = (BALANCE_X * (d as f64).sqrt() / xnorm, BALANCE_F / fnorm);
    let step = LinearStep::new(op, g, a)?;
    let scale_y = y.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-300);
    let mut rho = settings.rho0;
    let mut u = u0;
    let mut q = u.clone();
    let mut lam_q = Mat::<f64>::zeros(d, 2 * p);
    let mut xu = Mat::<f64>::zeros(n, 2 * p);
    op.linear(u.as_ref(), xu.as_mut());
    signed_image(op, &mut xu, g);
    let mut s = xu.clone();
    map_in_place(&mut s, |v| v.max(0.0));
    let mut lam_s = Mat::<f64>::zeros(n, 2 * p);
    let mut fu = vec![0.0; n];
    let mut z = vec![0.0; n];
    let mut lam_z = vec![0.0; n];
    let mut rhs = Mat::<f64>::zeros(d, 2 * p);
    let mut work_n = Mat::<f64>::zeros(n, 2 * p);
    let mut adj = Mat::<f64>::zeros(d, p);
    let mut best: Option<(Mat<f64>, f64)> = None;
    let mut best_dual = f64::NEG_INFINITY;
    let mut status = Status::MaxIterations;
    let mut violation = f64::INFINITY;
    let mut mult = Mat::<f64>::zeros(n, 2 * p);
    let mut iterations = 0;
    while iterations < settings.max_iter {
        iterations += 1;
        // U-step: R = (Q − Λ_Q) + g Gᵀ(S − Λ_S) + a Fᵀ(z − λ_z).
        for c in 0..2 * p {
            let (wc, sc, lc) = (
                work_n.col_as_slice_mut(c),
                s.col_as_slice(c),
                lam_s.col_as_slice(c),
            );
            for j in 0..n {
                wc[j] = sc[j] - lc[j];
            }
        }
        signed_image(op, &mut work_n, 1.0);
        op.linear_adjoint(work_n.as_ref(), rhs.as_mut());
        let r_z: Vec<f64> = z.iter().zip(&lam_z).map(|(a, b)| a - b).collect();
        op.adjoint(&r_z, adj.as_mut());
        for c in 0..2 * p {
            let sign = if c < p { a } else { -a };
            for k in 0..d {
                rhs[(k, c)] = g * rhs[(k, c)] + q[(k, c)] - lam_q[(k, c)] + sign * adj[(k, c % p)];
            }
        }
        step.solve(op, &mut rhs);
        std::mem::swap(&mut u, &mut rhs);
        // Images of the new U.
        op.linear(u.as_ref(), xu.as_mut());
        signed_image(op, &mut xu, g);
        let diff = Mat::from_fn(d, p, |k, i| u[(k, i)] - u[(k, p + i)]);
        op.apply(diff.as_ref(), &mut fu);
        fu.iter_mut().for_each(|v| *v *= a);
        // Q-step: group soft-thresholding.
        let q_old = q.clone();
        for c in 0..2 * p {
            for k in 0..d {
                q[(k, c)] = u[(k, c)] + lam_q[(k, c)];
            }
        }
        prox_group(q.as_mut(), lambda / rho);
        // S-step: projection on S ≥ 0.
        let s_old = s.clone();
        for c in 0..2 * p {
            let (sc, xc, lc) = (
                s.col_as_slice_mut(c),
                xu.col_as_slice(c),
                lam_s.col_as_slice(c),
            );
            for j in 0..n {
                sc[j] = (xc[j] + lc[j]).max(0.0);
            }
        }
        // z-step: the loss's proximal map.
        let z_old = z.clone();
        for j in 0..n {
            z[j] = fu[j] + lam_z[j];
        }
        prox_loss(loss, &mut z, y, a, rho);
        // Dual updates and residuals.
        let mut primal = 0.0;
        for c in 0..2 * p {
            for k in 0..d {
                let r = u[(k, c)] - q[(k, c)];
                lam_q[(k, c)] += r;
                primal += r * r;
            }
            let (lc, xc, sc) = (
                lam_s.col_as_slice_mut(c),
                xu.col_as_slice(c),
                s.col_as_slice(c),
            );
            for j in 0..n {
                let r = xc[j] - sc[j];
                lc[j] += r;
                primal += r * r;
            }
        }
        for j in 0..n {
            let r = fu[j] - z[j];
            lam_z[j] += r;
            primal += r * r;
        }
        let dual_res =
            rho * (mat_sq_dist(&q, &q_old) + mat_sq_dist(&s, &s_old) + sq_dist(&z, &z_old)).sqrt();
        let primal = primal.sqrt();
        // Residual balancing (Boyd et al. 2011, §3.4.1); the scaled duals move with ρ.
        if iterations % 5 == 0 {
            let factor = if primal > 10.0 * dual_res {
                2.0
            } else if dual_res > 10.0 * primal {
                0.5
            } else {
                1.0
            };
            if factor != 1.0 {
                rho *= factor;
                let inv = 1.0 / factor;
                map_in_place(&mut lam_q, |v| v * inv);
                map_in_place(&mut lam_s, |v| v * inv);
                lam_z.iter_mut().for_each(|v| *v *= inv);
            }
        }
        if !(primal.is_finite() && dual_res.is_finite()) {
            status = Status::NumericalError;
            break;
        }
        let last = iterations == settings.max_iter;
        if iterations % settings.check_every.max(1) != 0 && !last {
            continue;
        }
        // Certification: multipliers γ = (−ρ g Λ_S)₊ of the cone constraints.
        for c in 0..2 * p {
            let (mc, lc) = (mult.col_as_slice_mut(c), lam_s.col_as_slice(c));
            for j in 0..n {
                mc[j] = (-rho * g * lc[j]).max(0.0);
            }
        }
        let (cand, cert): (Mat<f64>, ReluCertificate) = best_feasible(
            op,
            (y, loss, lambda),
            &[q.as_ref(), u.as_ref()],
            gates,
            &mut mult,
            POLISH,
        );
        violation = cert.violation;
        best_dual = best_dual.max(cert.dual);
        let feasible = gates.is_some() || cert.violation <= settings.tol * scale_y;
        if feasible && best.as_ref().is_none_or(|b| cert.objective < b.1) {
            best = Some((cand, cert.objective));
        }
        let objective = best.as_ref().map_or(cert.objective, |b| b.1);
        let gap = objective - best_dual;
        let rec = IterRecord {
            iteration: iterations,
            outer: 0,
            objective,
            gap,
            violation,
            seconds: start.elapsed().as_secs_f64(),
        };
        if !observer.on_iter(&rec) || stop.is_set() {
            status = Status::Interrupted;
            break;
        }
        if best.is_some() && gap <= settings.tol * objective.abs().max(1e-12) {
            status = Status::Converged;
            break;
        }
        if settings
            .time_limit
            .is_some_and(|t| start.elapsed().as_secs_f64() >= t)
        {
            status = Status::TimeLimit;
            break;
        }
    }
    let (u, objective) = match best {
        Some(b) => b,
        None => {
            let (cand, cert) = best_feasible(
                op,
                (y, loss, lambda),
                &[q.as_ref()],
                None,
                &mut mult,
                POLISH,
            );
            best_dual = best_dual.max(cert.dual);
            (cand, cert.objective)
        }
    };
    Ok(AdmmOutput {
        u,
        mult,
        objective,
        dual: best_dual,
        violation,
        iterations,
        status,
    })
}
