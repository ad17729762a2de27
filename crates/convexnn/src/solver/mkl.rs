//! Gated ReLU as multiple kernel learning, solved by iterative reweighting (docs/programs.md §3,
//! (M42)–(M46); Dwaraknath, Ergen & Pilanci).
//!
//! With A_i = D_iX and kernel weights η, K_η = Σ_i η_i A_iA_iᵀ = (XXᵀ) ∘ (M diag(η) Mᵀ) (M42), M the
//! n × P pattern matrix. One step solves a kernel ridge regression with K_η by a Cholesky
//! factorization of the n × n matrix K_η + μI and reads the group weights off its dual vector (M44).
//! With η on the simplex and μ = β fixed, moving η to the normalized group norms (M45) is the literal
//! algorithm of the MKL program (M34). At the user's λ the solver instead minimizes J(η) (M46) over
//! unnormalized η ≥ 0 with μ = nλ, which is (M34) with β = nλ / Σ_iη_i folded into the weights (M43),
//! so no outer search over β is needed; each step is a projected Newton step on J, or the
//! reweighting (M45) when the Newton step does not decrease J.
//!
//! Every iteration is certified with the gated dual bound (M13) at θ = μα/n (α the ridge dual vector,
//! y − ŷ = μα), which costs nothing beyond the adjoint product the update needs. The cost is one
//! n × n × P product and one n³/3 factorization per iteration, so the solver is for small and moderate
//! n ([`MKL_MAX_ROWS`]); its memory is [`mkl_memory`].

use std::time::Instant;

use faer::linalg::matmul::matmul;
use faer::linalg::solvers::Llt;
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, Par, Side};

use super::{IterRecord, Observe, Status, StopFlag};
use crate::error::{Error, Result};
use crate::operator::{for_each_set_bit, MaskedOperator};
use crate::program::penalty::{column_norm, max_column_norm};

/// Largest number of samples the reweighting solver accepts: each iteration factors an n × n matrix
/// (n³/3 flops, about 4·10¹⁰ at this size).
pub const MKL_MAX_ROWS: usize = 5000;

/// Which program the reweighting solves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MklPenalty {
    /// The gated program (M11) at this λ: the ridge parameter follows μ = nλ / Σ_i‖u_i‖ (M43).
    Lambda(f64),
    /// The MKL program (M34) at this fixed β (the ridge parameter of every iteration).
    Beta(f64),
}

/// Settings of [`mkl_reweighting`], with documented defaults.
#[derive(Clone, Debug)]
pub struct MklSettings {
    /// Stop when the relative duality gap (M13) is ≤ this. Default 1e-6.
    pub tol: f64,
    /// Iteration cap (one factorization each). Default 1000.
    pub max_iter: usize,
    /// Smallest kernel weight kept in an update (M45): a zero weight would stay zero for ever, so
    /// weights are floored at this before renormalizing. Default 1e-12.
    pub floor: f64,
    /// Pass a progress record to the observer every this many iterations. Default 1.
    pub report_every: usize,
    /// Wall-clock limit in seconds, counted from the `start` given to the solver.
    pub time_limit: Option<f64>,
}

impl Default for MklSettings {
    fn default() -> Self {
        MklSettings {
            tol: 1e-6,
            max_iter: 1000,
            floor: 1e-12,
            report_every: 1,
            time_limit: None,
        }
    }
}

/// What [`mkl_reweighting`] returns.
#[derive(Clone, Debug)]
pub struct MklOutput {
    /// Group weights U (d × P) of the last ridge step (M44).
    pub u: Mat<f64>,
    /// Kernel weights η ∈ Δ: the normalized group norms of `u` (M45), zero where `u` is zero.
    pub eta: Vec<f64>,
    /// The MKL parameter β = nλ / Σ_i‖u_i‖ that makes `u` optimal for (M34) when it is optimal for
    /// (M11) at `lambda` (M43); infinite when U = 0.
    pub beta: f64,
    /// The λ of (M11) the certificate refers to (the given λ, or βΣ‖u_i‖/n for [`MklPenalty::Beta`], (M43)).
    pub lambda: f64,
    /// Objective (M11) of `u` at `lambda`.
    pub objective: f64,
    /// Dual bound (M13) at `lambda`.
    pub dual: f64,
    /// Ridge steps done.
    pub iterations: usize,
    /// How it ended.
    pub status: Status,
}

/// Bytes the solver allocates for n samples and P patterns: X Xᵀ, K_η + μI and its Cholesky factor
/// (three n × n matrices), the pattern matrix and its scaled copy (two n × P).
pub fn mkl_memory(n: usize, p: usize) -> usize {
    8 * (3 * n * n + 2 * n * p)
}

/// An error unless n is within [`MKL_MAX_ROWS`].
pub fn check_mkl_size(n: usize) -> Result<()> {
    if n > MKL_MAX_ROWS {
        let gflop = (n as f64).powi(3) / 3.0 / 1e9;
        return Err(Error::InvalidSetting(format!(
            "the reweighting (mkl) solver factors an n × n kernel matrix every iteration (about \
             {gflop:.0} GFLOP each for n = {n}) and accepts at most n = {MKL_MAX_ROWS} samples: use \
             --solver fista (the default for gated networks) or fewer rows"
        )));
    }
    Ok(())
}

/// K_η + μI = (XXᵀ) ∘ (M diag(η) Mᵀ) + μI (M42), built from parts computed once.
struct KernelBuilder {
    /// X Xᵀ.
    gram: Mat<f64>,
    /// The mask values M (n × P): 1 where the pattern bit is set, the operator's off value elsewhere.
    masks: Mat<f64>,
    /// M diag(√η), and the n × P scratch of the Newton step.
    scaled: Mat<f64>,
    /// K_η + μI before factoring.
    kernel: Mat<f64>,
}

/// A factored ridge problem (K_η + μI) α = y at kernel weights η.
struct Ridge {
    eta: Vec<f64>,
    llt: Llt<f64>,
    alpha: Vec<f64>,
    /// The (M46) objective J(η) = (μ/2)(yᵀα + Σ_i η_i) (meaningful for [`MklPenalty::Lambda`]).
    value: f64,
}

impl KernelBuilder {
    fn new(op: &MaskedOperator<f64>) -> Self {
        let (x, n, p) = (op.x(), op.nrows(), op.n_patterns());
        let mut gram = Mat::<f64>::zeros(n, n);
        matmul(
            gram.as_mut(),
            Accum::Replace,
            x,
            x.transpose(),
            1.0,
            op.par(),
        );
        let off = op.off_value();
        let mut masks = Mat::<f64>::from_fn(n, p, |_, _| off);
        for i in 0..p {
            let col = masks.col_as_slice_mut(i);
            for_each_set_bit(op.patterns().column_words(i), n, |j| col[j] = 1.0);
        }
        KernelBuilder {
            gram,
            scaled: Mat::zeros(n, p),
            masks,
            kernel: Mat::zeros(n, n),
        }
    }

    /// Factors K_η + μI by Cholesky and solves for α; `None` if the factorization fails.
    fn factor(&mut self, eta: Vec<f64>, mu: f64, y: &[f64], par: Par) -> Option<Ridge> {
        let n = y.len();
        for (i, &e) in eta.iter().enumerate() {
            let s = e.sqrt();
            for (o, m) in self
                .scaled
                .col_as_slice_mut(i)
                .iter_mut()
                .zip(self.masks.col_as_slice(i))
            {
                *o = s * m;
            }
        }
        matmul(
            self.kernel.as_mut(),
            Accum::Replace,
            self.scaled.as_ref(),
            self.scaled.transpose(),
            1.0,
            par,
        );
        for k in 0..n {
            let (kc, gc) = (self.kernel.col_as_slice_mut(k), self.gram.col_as_slice(k));
            for (a, g) in kc.iter_mut().zip(gc) {
                *a *= g;
            }
            kc[k] += mu;
        }
        let llt = self.kernel.llt(Side::Lower).ok()?;
        let mut alpha = Mat::from_fn(n, 1, |j, _| y[j]);
        llt.solve_in_place(alpha.as_mut());
        let alpha: Vec<f64> = alpha.col_as_slice(0).to_vec();
        let fit: f64 = alpha.iter().zip(y).map(|(a, b)| a * b).sum();
        let value = 0.5 * mu * (fit + eta.iter().sum::<f64>());
        (value.is_finite() && alpha.iter().all(|v| v.is_finite())).then_some(Ridge {
            eta,
            llt,
            alpha,
            value,
        })
    }

    /// The Newton direction of J(η) (M46) for [`MklPenalty::Lambda`] (μ = γ = nλ): gradient
    /// (γ/2)(1 − ‖g_i‖²), Hessian γ v_iᵀ(K_η + γI)⁻¹v_j with v_i = M_iXg_i, over the free weights
    /// (η_i above `tiny` or a negative gradient); weights held at their bound go to zero.
    fn newton_direction(
        &mut self,
        x: faer::MatRef<'_, f64>,
        ridge: &Ridge,
        g: &Mat<f64>,
        gamma: f64,
        par: Par,
    ) -> Option<(Vec<f64>, Vec<f64>)> {
        let p = ridge.eta.len();
        let grad: Vec<f64> = (0..p)
            .map(|i| {
                let c = column_norm(g.col_as_slice(i));
                0.5 * gamma * (1.0 - c * c)
            })
            .collect();
        let top = ridge.eta.iter().cloned().fold(0.0, f64::max);
        let tiny = 1e-9 * top;
        let free: Vec<usize> = (0..p)
            .filter(|&i| ridge.eta[i] > tiny || grad[i] < 0.0)
            .collect();
        let mut dir: Vec<f64> = ridge.eta.iter().map(|e| -e).collect();
        if free.is_empty() {
            return Some((dir, grad));
        }
        // V_F = [M_i X g_i] (n × |F|) in the scratch, then W = L⁻¹V_F and H = γ WᵀW.
        let f = free.len();
        let mut v = self.scaled.as_mut().subcols_mut(0, f);
        let gf = Mat::from_fn(g.nrows(), f, |k, c| g[(k, free[c])]);
        matmul(v.as_mut(), Accum::Replace, x, gf.as_ref(), 1.0, par);
        for (c, &i) in free.iter().enumerate() {
            for (o, m) in v
                .as_mut()
                .col_mut(c)
                .iter_mut()
                .zip(self.masks.col_as_slice(i))
            {
                *o *= m;
            }
        }
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(
            ridge.llt.L(),
            v.as_mut(),
            par,
        );
        let mut h = Mat::<f64>::zeros(f, f);
        let v = v.as_ref();
        matmul(h.as_mut(), Accum::Replace, v.transpose(), v, gamma, par);
        let scale = (0..f).map(|c| h[(c, c)]).fold(0.0, f64::max).max(1e-300);
        let rhs = Mat::from_fn(f, 1, |c, _| -grad[free[c]]);
        let mut damping = 1e-12 * scale;
        for _ in 0..6 {
            let mut hd = h.clone();
            for c in 0..f {
                hd[(c, c)] += damping;
            }
            if let Ok(llt) = hd.llt(Side::Lower) {
                let mut step = rhs.clone();
                llt.solve_in_place(step.as_mut());
                if step.col_as_slice(0).iter().all(|s| s.is_finite()) {
                    for (c, &i) in free.iter().enumerate() {
                        dir[i] = step[(c, 0)];
                    }
                    return Some((dir, grad));
                }
            }
            damping *= 100.0;
        }
        None
    }
}

/// Group norms ‖u_i‖ and their sum.
fn group_norms(u: &Mat<f64>) -> (Vec<f64>, f64) {
    let norms: Vec<f64> = (0..u.ncols())
        .map(|i| column_norm(u.col_as_slice(i)))
        .collect();
    let total = norms.iter().sum();
    (norms, total)
}

/// The reweighting step (M45): η_i = ‖u_i‖, normalized onto Δ for [`MklPenalty::Beta`], floored at
/// `floor` times the largest weight; `None` when U = 0.
fn reweight(u: &Mat<f64>, floor: f64, simplex: bool) -> Option<Vec<f64>> {
    let (norms, total) = group_norms(u);
    if !(total > 0.0 && total.is_finite()) {
        return None;
    }
    let top = norms.iter().cloned().fold(0.0, f64::max);
    let floored: Vec<f64> = norms.iter().map(|v| v.max(floor * top)).collect();
    let s: f64 = if simplex { floored.iter().sum() } else { 1.0 };
    Some(floored.iter().map(|v| v / s).collect())
}

/// The kernel weights of group weights U: their normalized norms (M45 without the floor), and
/// β = nλ/Σ‖u_i‖ (M43). Zero weights and β = ∞ for U = 0.
pub fn kernel_weights(u: &Mat<f64>, n: usize, lambda: f64) -> (Vec<f64>, f64) {
    let (norms, total) = group_norms(u);
    if !(total > 0.0 && total.is_finite()) {
        return (vec![0.0; u.ncols()], f64::INFINITY);
    }
    (
        norms.iter().map(|v| v / total).collect(),
        n as f64 * lambda / total,
    )
}

/// Objective (M11) and dual bound (M13) of a point.
struct Check {
    objective: f64,
    dual: f64,
}

/// Certifies U whose ridge dual vector is α: objective (M11) at λ from one forward product, dual
/// bound (M13) at θ = (μ/n)α, using ‖A_iᵀθ‖ = (μ/n)‖g_i‖.
fn certify(
    op: &mut MaskedOperator<f64>,
    y: &[f64],
    (u, g): (&Mat<f64>, &Mat<f64>),
    theta_scale: f64,
    alpha: &[f64],
    lambda: f64,
) -> Check {
    let n = y.len();
    let mut pred = vec![0.0; n];
    op.apply(u.as_ref(), &mut pred);
    let loss: f64 = pred
        .iter()
        .zip(y)
        .map(|(p, t)| (p - t) * (p - t))
        .sum::<f64>()
        / (2.0 * n as f64);
    let c = theta_scale * max_column_norm(g.as_ref());
    let s = if c > lambda { lambda / c } else { 1.0 };
    let ty: f64 = alpha.iter().zip(y).map(|(a, t)| a * t).sum::<f64>() * theta_scale;
    let tt: f64 = alpha.iter().map(|a| a * a).sum::<f64>() * theta_scale * theta_scale;
    Check {
        objective: loss + lambda * group_norms(u).1,
        dual: s * ty - 0.5 * n as f64 * s * s * tt,
    }
}

/// The next kernel weights after `ridge` for [`MklPenalty::Lambda`]: a projected Newton step on
/// J(η) (M46) with an Armijo search along the projection arc, when it decreases J; `None` otherwise.
fn newton_step(
    kb: &mut KernelBuilder,
    op: &MaskedOperator<f64>,
    ridge: &Ridge,
    g: &Mat<f64>,
    (y, gamma): (&[f64], f64),
) -> Option<Ridge> {
    let par = op.par();
    let (dir, grad) = kb.newton_direction(op.x(), ridge, g, gamma, par)?;
    let slack = 8.0 * f64::EPSILON * ridge.value.abs();
    let mut s = 1.0;
    for _ in 0..8 {
        let eta: Vec<f64> = ridge
            .eta
            .iter()
            .zip(&dir)
            .map(|(e, d)| (e + s * d).max(0.0))
            .collect();
        let decrease: f64 = eta
            .iter()
            .zip(&ridge.eta)
            .zip(&grad)
            .map(|((a, b), g)| g * (a - b))
            .sum();
        let trial = kb.factor(eta, gamma, y, par)?;
        if trial.value <= ridge.value + 1e-4 * decrease.min(0.0) + slack {
            return Some(trial);
        }
        s *= 0.5;
    }
    None
}

/// Solves (M11) at λ or (M34) at β from kernel weights `eta0` (for λ the group norms of a previous
/// solution, for β a point of Δ; uniform when `None`), certifying every iterate with (M13). For λ
/// each step is a projected Newton step on J(η) (M46) when it decreases J, else the reweighting
/// (M45); for β it is the reweighting (M45), the literal algorithm of (M34).
#[allow(clippy::too_many_arguments)]
pub fn mkl_reweighting(
    op: &mut MaskedOperator<f64>,
    y: &[f64],
    penalty: MklPenalty,
    eta0: Option<&[f64]>,
    settings: &MklSettings,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> Result<MklOutput> {
    let (n, d, p) = (op.nrows(), op.ncols(), op.n_patterns());
    check_mkl_size(n)?;
    if y.len() != n {
        return Err(Error::InvalidData(format!(
            "y has {} values but X has {n} rows",
            y.len()
        )));
    }
    let (given, simplex) = match penalty {
        MklPenalty::Lambda(v) => (v, false),
        MklPenalty::Beta(v) => (v, true),
    };
    if !(given.is_finite() && given > 0.0) {
        return Err(Error::InvalidSetting(format!(
            "the reweighting solver needs a positive λ or β, got {given}"
        )));
    }
    let nf = n as f64;
    let ysq: f64 = y.iter().map(|v| v * v).sum();
    // λ: μ = γ = nλ and η unnormalized, started at total t₀ = ‖y‖²/(2γ) ≥ Σ‖u_i*‖ (F(U*) ≤ F(0));
    // β: μ = β and η ∈ Δ.
    let mu = match penalty {
        MklPenalty::Lambda(l) => nf * l,
        MklPenalty::Beta(b) => b,
    };
    let total0 = if simplex {
        1.0
    } else {
        (0.5 * ysq / mu).max(1e-300)
    };
    let eta = match eta0 {
        Some(e)
            if e.len() == p
                && e.iter().all(|v| v.is_finite() && *v >= 0.0)
                && e.iter().any(|v| *v > 0.0) =>
        {
            let top = e.iter().cloned().fold(0.0, f64::max);
            let f: Vec<f64> = e.iter().map(|v| v.max(settings.floor * top)).collect();
            let s: f64 = if simplex { f.iter().sum() } else { 1.0 };
            f.iter().map(|v| v / s).collect()
        }
        _ => vec![total0 / p as f64; p],
    };
    if let MklPenalty::Lambda(lambda) = penalty {
        // (M15): for λ ≥ λ_max = max_i ‖A_iᵀy‖/n the zero network is optimal, with gap 0 at θ = y/n.
        let mut g0 = Mat::<f64>::zeros(d, p);
        op.adjoint(y, g0.as_mut());
        if max_column_norm(g0.as_ref()) / nf <= lambda {
            let zero = Mat::zeros(d, p);
            let check = certify(op, y, (&zero, &g0), 1.0 / nf, y, lambda);
            return Ok(MklOutput {
                eta: vec![0.0; p],
                u: zero,
                beta: f64::INFINITY,
                lambda,
                objective: check.objective,
                dual: check.dual,
                iterations: 0,
                status: Status::Converged,
            });
        }
    }
    let mut kb = KernelBuilder::new(op);
    let par = op.par();
    let mut g = Mat::<f64>::zeros(d, p);
    let mut u = Mat::<f64>::zeros(d, p);
    let mut best: Option<(Mat<f64>, Check, f64)> = None;
    let mut status = Status::MaxIterations;
    let mut k = 0;
    let mut ridge = kb.factor(eta, mu, y, par);
    while k < settings.max_iter {
        let Some(current) = ridge.take() else {
            status = Status::NumericalError;
            break;
        };
        if stop.is_set() {
            status = Status::Interrupted;
            break;
        }
        if settings
            .time_limit
            .is_some_and(|t| start.elapsed().as_secs_f64() > t)
        {
            status = Status::TimeLimit;
            break;
        }
        // (M44): u_i = η_i A_iᵀ α.
        op.adjoint(&current.alpha, g.as_mut());
        for (i, &e) in current.eta.iter().enumerate() {
            for (o, v) in u.col_as_slice_mut(i).iter_mut().zip(g.col_as_slice(i)) {
                *o = e * v;
            }
        }
        k += 1;
        let lambda = match penalty {
            MklPenalty::Lambda(l) => l,
            MklPenalty::Beta(b) => b * group_norms(&u).1 / nf,
        };
        let check = certify(op, y, (&u, &g), mu / nf, &current.alpha, lambda);
        if !check.objective.is_finite() {
            status = Status::NumericalError;
            break;
        }
        let gap = check.objective - check.dual;
        let done = gap <= settings.tol * check.objective.abs().max(1e-12);
        let better = best
            .as_ref()
            .is_none_or(|(_, c, _)| gap <= c.objective - c.dual);
        if better || done {
            best = Some((u.clone(), check, lambda));
        }
        if k % settings.report_every.max(1) == 0 || done {
            let (_, c, _) = best.as_ref().expect("set above");
            let rec = IterRecord {
                iteration: k,
                outer: 0,
                objective: c.objective,
                gap: c.objective - c.dual,
                violation: 0.0,
                seconds: start.elapsed().as_secs_f64(),
            };
            if !observer.on_iter(&rec) && !done {
                status = Status::Interrupted;
                break;
            }
        }
        if done {
            status = Status::Converged;
            break;
        }
        let newton = if simplex {
            None
        } else {
            newton_step(&mut kb, op, &current, &g, (y, mu))
        };
        ridge = match newton {
            Some(r) => Some(r),
            None => match reweight(&u, settings.floor, simplex) {
                Some(eta) => kb.factor(eta, mu, y, par),
                None => {
                    // U = 0 exactly although the certificate has not converged: nothing to
                    // reweight from.
                    status = Status::Stalled;
                    break;
                }
            },
        };
    }
    let (u, check, lambda) = match best {
        Some(b) => b,
        None => {
            // No step completed: the zero network, certified at θ = y/n.
            let mut g0 = Mat::<f64>::zeros(d, p);
            op.adjoint(y, g0.as_mut());
            let lambda = match penalty {
                MklPenalty::Lambda(l) => l,
                MklPenalty::Beta(_) => 0.0,
            };
            let zero = Mat::zeros(d, p);
            let check = certify(op, y, (&zero, &g0), 1.0 / nf, y, lambda);
            (zero, check, lambda)
        }
    };
    let (eta, beta) = kernel_weights(&u, n, lambda);
    Ok(MklOutput {
        u,
        eta,
        beta,
        lambda,
        objective: check.objective,
        dual: check.dual,
        iterations: k,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::sample::sample_patterns;
    use crate::operator::DEFAULT_BLOCK_ROWS;
    use crate::program::gated::GatedProblem;
    use crate::program::Loss;
    use crate::rng::Rng;
    use crate::solver::fista::{fista, FistaRun, FistaSettings};
    use crate::solver::Silent;

    fn problem(n: usize, d: usize, p: usize, seed: u64) -> (MaskedOperator<f64>, Vec<f64>) {
        let mut r = Rng::new(seed);
        let x = Mat::from_fn(n, d, |_, k| if k + 1 == d { 1.0 } else { r.normal() });
        let y = (0..n)
            .map(|i| (x[(i, 0)] - 0.5 * x[(i, 1)]).max(0.0) - 0.3 * x[(i, 0)] + 0.1 * r.normal())
            .collect();
        let patterns = sample_patterns(x.as_ref(), p, seed).unwrap();
        (
            MaskedOperator::new(x.as_ref(), patterns, DEFAULT_BLOCK_ROWS, 1),
            y,
        )
    }

    fn solve(op: &mut MaskedOperator<f64>, y: &[f64], penalty: MklPenalty, tol: f64) -> MklOutput {
        let settings = MklSettings {
            tol,
            ..MklSettings::default()
        };
        mkl_reweighting(
            op,
            y,
            penalty,
            None,
            &settings,
            &mut Silent,
            &StopFlag::new(),
            Instant::now(),
        )
        .unwrap()
    }

    fn fista_objective(op: MaskedOperator<f64>, y: &[f64], lambda: f64) -> (f64, Mat<f64>) {
        let (d, p) = (op.ncols(), op.n_patterns());
        let mut prob = GatedProblem::new(op, y, Loss::Squared);
        let settings = FistaSettings {
            tol: 1e-10,
            max_iter: 200_000,
            ..FistaSettings::default()
        };
        let (mut silent, stop) = (Silent, StopFlag::new());
        let run = FistaRun::new(&settings, &mut silent, &stop, Instant::now());
        let out = fista(&mut prob, lambda, Mat::zeros(d, p), run);
        assert_eq!(
            out.status,
            Status::Converged,
            "FISTA: {} iterations",
            out.iterations
        );
        (out.objective, out.u)
    }

    #[test]
    fn reweighting_reaches_the_fista_optimum() {
        for (seed, lambda) in [(1u64, 1e-2), (2, 1e-3), (3, 3e-2), (4, 1e-4)] {
            let (mut op, y) = problem(40 + 10 * seed as usize, 3 + seed as usize % 2, 15, seed);
            let out = solve(&mut op, &y, MklPenalty::Lambda(lambda), 1e-10);
            let (n, p) = (op.nrows(), op.n_patterns());
            let x = op.x().to_owned();
            let (f, uf) = fista_objective(op, &y, lambda);
            let rel = (out.objective - f).abs() / f;
            eprintln!(
                "seed {seed} λ {lambda}: mkl {} ({:?}, {} its, gap {:.1e}) fista {f} rel {rel:.1e}",
                out.objective,
                out.status,
                out.iterations,
                out.objective - out.dual
            );
            assert_eq!(out.status, Status::Converged);
            assert!(out.dual <= f * (1.0 + 1e-12) && f <= out.objective + 1e-10 * f);
            assert!(rel <= 1e-8);
            // Kernel weights: on the simplex, close to FISTA's normalized group norms.
            assert!((out.eta.iter().sum::<f64>() - 1.0).abs() <= 1e-12);
            let (ef, _) = kernel_weights(&uf, n, lambda);
            let diff = out
                .eta
                .iter()
                .zip(&ef)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(diff <= 1e-3, "seed {seed}: kernel weights differ by {diff}");
            assert_eq!(x.nrows(), n);
            assert_eq!(out.eta.len(), p);
        }
    }

    #[test]
    fn the_mkl_program_at_beta_is_the_gated_program_at_the_mapped_lambda() {
        let (mut op, y) = problem(60, 3, 12, 7);
        let n = op.nrows() as f64;
        let mut last_beta = 0.0;
        for lambda in [1e-3, 3e-3, 1e-2, 3e-2] {
            // (M43): β = nλ/Σ‖u_i‖ grows with λ.
            let at_lambda = solve(&mut op, &y, MklPenalty::Lambda(lambda), 1e-12);
            assert_eq!(at_lambda.status, Status::Converged);
            assert!(
                at_lambda.beta > last_beta,
                "β({lambda}) = {} not increasing",
                at_lambda.beta
            );
            last_beta = at_lambda.beta;
            // (M34): the ridge value at (η*, β) equals ½‖r‖² + (β/2)(Σ‖u_i‖)² at U*.
            let beta = at_lambda.beta;
            let t = n * lambda / beta;
            let mut kb = KernelBuilder::new(&op);
            let ridge = kb
                .factor(at_lambda.eta.clone(), beta, &y, op.par())
                .unwrap();
            let mkl_value = ridge.value - 0.5 * beta;
            let mut pred = vec![0.0; y.len()];
            op.apply(at_lambda.u.as_ref(), &mut pred);
            let rr: f64 = pred.iter().zip(&y).map(|(a, b)| (a - b) * (a - b)).sum();
            let g_value = 0.5 * rr + 0.5 * beta * t * t;
            assert!(
                (mkl_value - g_value).abs() <= 1e-9 * g_value,
                "λ {lambda}: MKL {mkl_value} vs {g_value}"
            );
            // The literal reweighting of (M34) at this β lands on the same network and λ.
            let settings = MklSettings {
                tol: 1e-9,
                max_iter: 100_000,
                ..MklSettings::default()
            };
            let at_beta = mkl_reweighting(
                &mut op,
                &y,
                MklPenalty::Beta(beta),
                None,
                &settings,
                &mut Silent,
                &StopFlag::new(),
                Instant::now(),
            )
            .unwrap();
            eprintln!(
                "λ {lambda}: β {beta:.6e}, (M34) reweighting {:?} in {} its, λ {:.9e}",
                at_beta.status, at_beta.iterations, at_beta.lambda
            );
            assert!((at_beta.lambda - lambda).abs() <= 1e-6 * lambda);
            assert!((at_beta.objective - at_lambda.objective).abs() <= 1e-6 * at_lambda.objective);
        }
    }

    #[test]
    fn weights_vanish_above_lambda_max_and_large_problems_are_refused() {
        let (mut op, y) = problem(30, 3, 10, 9);
        let inner = MaskedOperator::<f64>::new(op.x(), op.patterns().clone(), 64, 1);
        let mut prob = GatedProblem::new(inner, &y, Loss::Squared);
        let lmax = prob.lambda_max();
        let out = solve(&mut op, &y, MklPenalty::Lambda(1.01 * lmax), 1e-8);
        assert_eq!(out.status, Status::Converged);
        assert!(out.beta.is_infinite() && group_norms(&out.u).1 == 0.0);
        assert!(out.eta.iter().all(|&e| e == 0.0) && out.objective - out.dual <= 1e-15);
        // Just below λ_max some weight is active.
        let out = solve(&mut op, &y, MklPenalty::Lambda(0.9 * lmax), 1e-8);
        assert_eq!(out.status, Status::Converged);
        assert!(out.beta.is_finite() && (out.eta.iter().sum::<f64>() - 1.0).abs() <= 1e-12);
        let e = check_mkl_size(MKL_MAX_ROWS + 1).unwrap_err().to_string();
        assert!(e.contains("--solver fista") && e.contains("5000"), "{e}");
        let e = mkl_reweighting(
            &mut op,
            &y,
            MklPenalty::Lambda(-1.0),
            None,
            &MklSettings::default(),
            &mut Silent,
            &StopFlag::new(),
            Instant::now(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("positive"));
    }
}
