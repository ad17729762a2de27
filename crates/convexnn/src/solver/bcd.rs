//! Block coordinate descent on the Gram form of the squared-loss gated program (docs/programs.md §4,
//! (M57)).
//!
//! With the features F = [D_1X … D_PX] ∈ ℝ^{n×Pd} (pooled over each image's patches, Π D_iX, for a
//! convolutional program), the program (M11) with the squared loss reads
//!
//! ```text
//! min_u (1/(2n)) (uᵀGu − 2bᵀu + yᵀy) + λ Σ_i ‖u_i‖,   G = FᵀF,  b = Fᵀy.
//! ```
//!
//! G (Pd × Pd) is formed once, block of samples by block of samples (F is never held whole). Each
//! sweep visits the groups in turn and minimizes the objective over u_i exactly: with
//! H = G_ii/n and c = (b_i − (Gu)_i + G_ii u_i)/n, u_i = 0 when ‖c‖ ≤ λ (a test of d numbers, so a
//! zero group costs nothing), else the group's strongly convex subproblem ½vᵀHv − cᵀv + λ‖v‖ is solved by
//! proximal gradient steps on the d × d block; a changed group updates Gu by one Pd × d product. The
//! duality gap (M13) after each sweep needs only Gu, b and yᵀy: ‖Fu − y‖² = uᵀGu − 2bᵀu + yᵀy,
//! Fᵀ(y − Fu) = b − Gu, θ = s(y − Fu)/n with s = min(1, λ / max_i ‖(b − Gu)_i‖/n).
//!
//! It wins where Pd is small next to the work of one operator product: convolutional programs
//! (K patches per sample make each product K times dearer, the Gram form does not grow with K).

use std::time::Instant;

use faer::linalg::matmul::matmul;
use faer::linalg::matmul::triangular::{matmul as triangular_matmul, BlockStructure};
use faer::linalg::solvers::Solve;
use faer::{Accum, Mat, MatRef};

use super::{IterRecord, Observe, Status, StopFlag};
use crate::error::{Error, Result};
use crate::features::PatternSet;

/// Samples per block when G is formed.
const FORM_BLOCK: usize = 512;

/// Bytes [`GramForm::new`] allocates for `p` = P·d weights (G, and one block of features).
pub fn gram_form_memory(p: usize) -> usize {
    p.saturating_mul(p)
        .saturating_add(FORM_BLOCK.saturating_mul(p))
        .saturating_add(8 * p)
        .saturating_mul(8)
}

/// The Gram form of the squared-loss gated program.
pub struct GramForm {
    /// G = FᵀF (Pd × Pd; group i is rows and columns i·d .. (i+1)·d).
    pub g: Mat<f64>,
    /// b = Fᵀy.
    pub b: Vec<f64>,
    /// yᵀy.
    pub yy: f64,
    /// Samples n.
    pub n: usize,
    /// Group size d.
    pub d: usize,
}

impl GramForm {
    /// The form of the program over `patterns` of the rows of `x` (nK × d with `pooling` = K rows
    /// per sample, averaged) for targets `y` (n).
    pub fn new(
        x: MatRef<'_, f64>,
        y: &[f64],
        patterns: &PatternSet,
        pooling: usize,
    ) -> Result<Self> {
        let (k, d, groups) = (pooling.max(1), x.ncols(), patterns.len());
        let n = y.len();
        if x.nrows() != n * k || patterns.n_samples() != x.nrows() {
            return Err(Error::InvalidData(format!(
                "the Gram form needs {n} samples of {k} rows: X has {} rows, the patterns {}",
                x.nrows(),
                patterns.n_samples()
            )));
        }
        let p = groups * d;
        let mut g = Mat::<f64>::zeros(p, p);
        let mut b = vec![0.0; p];
        let scale = 1.0 / k as f64;
        let mut f = Mat::<f64>::zeros(FORM_BLOCK.min(n), p);
        let mut mask = vec![false; FORM_BLOCK.min(n) * k];
        for start in (0..n).step_by(FORM_BLOCK) {
            let len = FORM_BLOCK.min(n - start);
            // F's rows for these samples: (Π D_i X)_j = (1/K) Σ_k D_i(jK+k) x_{jK+k}, column by
            // column, with each pattern's bits over the block's rows unpacked once.
            let first = start * k;
            for i in 0..groups {
                for (r, m) in mask[..len * k].iter_mut().enumerate() {
                    *m = patterns.get(first + r, i);
                }
                for a in 0..d {
                    let col = &mut f.col_as_slice_mut(i * d + a)[..len];
                    for (r, out) in col.iter_mut().enumerate() {
                        *out = scale
                            * (r * k..(r + 1) * k)
                                .filter(|&row| mask[row])
                                .map(|row| x[(first + row, a)])
                                .sum::<f64>();
                    }
                }
            }
            let block = f.as_ref().subrows(0, len);
            // The lower triangle of G += FᵀF (mirrored below).
            triangular_matmul(
                g.as_mut(),
                BlockStructure::TriangularLower,
                Accum::Add,
                block.transpose(),
                BlockStructure::Rectangular,
                block,
                BlockStructure::Rectangular,
                1.0,
                faer::get_global_parallelism(),
            );
            for (c, bc) in b.iter_mut().enumerate() {
                let col = &f.col_as_slice(c)[..len];
                *bc += col
                    .iter()
                    .zip(&y[start..start + len])
                    .map(|(f, y)| f * y)
                    .sum::<f64>();
            }
        }
        for c in 0..p {
            for r in 0..c {
                g[(r, c)] = g[(c, r)];
            }
        }
        Ok(GramForm {
            g,
            b,
            yy: y.iter().map(|v| v * v).sum(),
            n,
            d,
        })
    }

    /// Number of groups P.
    pub fn groups(&self) -> usize {
        self.b.len() / self.d.max(1)
    }
}

/// Settings of [`group_bcd`].
#[derive(Clone, Debug)]
pub struct BcdSettings {
    /// Stop when the relative duality gap is ≤ this. Default 1e-6.
    pub tol: f64,
    /// Cap on sweeps. Default 10 000.
    pub max_sweeps: usize,
    /// Wall-clock limit in seconds, counted from the `start` passed to [`group_bcd`].
    pub time_limit: Option<f64>,
    /// Largest active set (weights |A|·d) on which Newton steps follow each sweep (they factor an
    /// |A|d × |A|d matrix). Default 10 000; 0 turns them off.
    pub newton_max_weights: usize,
    /// Sweeps after which, unless converged, the solve goes on by ADMM on the Gram form
    /// (`admm_phase`). Default 5; `usize::MAX` turns it off.
    pub admm_after: usize,
    /// Largest Pd for the ADMM phase (it factors a Pd × Pd matrix beside G). Default 20 000.
    pub admm_max_weights: usize,
}

impl Default for BcdSettings {
    fn default() -> Self {
        BcdSettings {
            tol: 1e-6,
            max_sweeps: 10_000,
            time_limit: None,
            newton_max_weights: 10_000,
            admm_after: 5,
            admm_max_weights: 20_000,
        }
    }
}

/// What [`group_bcd`] returns.
pub struct BcdOutput {
    /// The weights U (d × P).
    pub u: Mat<f64>,
    /// The best dual bound found.
    pub dual: f64,
    /// How the solve ended.
    pub status: Status,
    /// Sweeps done.
    pub sweeps: usize,
    /// Group updates that changed a group (each one Pd × d product).
    pub updates: usize,
    /// Newton steps on the active set taken.
    pub newton_steps: usize,
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

/// The largest eigenvalue of the symmetric positive semidefinite block `h` (d × d), by power
/// iteration, with a small margin so that 1/L is a safe step.
fn top_eigenvalue(h: &Mat<f64>) -> f64 {
    let d = h.nrows();
    let mut v: Vec<f64> = (0..d).map(|a| 1.0 + 0.1 * (a % 5) as f64).collect();
    let mut lam = 0.0;
    for _ in 0..100 {
        let w: Vec<f64> = (0..d)
            .map(|r| (0..d).map(|c| h[(r, c)] * v[c]).sum())
            .collect();
        let nw = norm(&w);
        if nw == 0.0 {
            return 0.0;
        }
        lam = nw / norm(&v);
        v = w.iter().map(|a| a / nw).collect();
    }
    // Power iteration approaches from below; the Frobenius norm bounds from above.
    let frob = (0..d)
        .flat_map(|r| (0..d).map(move |c| (r, c)))
        .map(|(r, c)| h[(r, c)] * h[(r, c)])
        .sum::<f64>()
        .sqrt();
    (1.05 * lam).min(frob).max(lam)
}

/// min ½vᵀHv − cᵀv + λ‖v‖ from `v` (in place) by proximal gradient steps with step 1/`l`.
fn solve_block(h: &Mat<f64>, c: &[f64], lambda: f64, l: f64, v: &mut [f64]) {
    let d = v.len();
    let mut next = vec![0.0; d];
    for _ in 0..200 {
        for r in 0..d {
            let hv: f64 = (0..d).map(|q| h[(r, q)] * v[q]).sum();
            next[r] = v[r] - (hv - c[r]) / l;
        }
        let nn = norm(&next);
        let shrink = if nn > lambda / l {
            1.0 - lambda / (l * nn)
        } else {
            0.0
        };
        let mut change = 0.0;
        for r in 0..d {
            let new = shrink * next[r];
            change += (new - v[r]) * (new - v[r]);
            v[r] = new;
        }
        if change.sqrt() <= 1e-13 * norm(v).max(1e-300) {
            break;
        }
    }
}

/// One Newton step on the active groups `active` (u_i ≠ 0), where the penalty is smooth: gradient
/// (Gu − b)_A/n + λ u_i/‖u_i‖, Hessian G_AA/n + λ (I − û_iû_iᵀ)/‖u_i‖ per group; a backtracking
/// line search on the exact objective along the step (a quadratic in t plus the group norms)
/// keeps only steps that lower it. Updates `u` and `q` = Gu; returns whether a step was taken.
fn newton_step(
    form: &GramForm,
    lambda: f64,
    active: &[usize],
    damping: &mut f64,
    u: &mut [f64],
    q: &mut [f64],
) -> bool {
    let (d, n) = (form.d, form.n as f64);
    let m = active.len() * d;
    let idx = |a: usize| active[a / d] * d + a % d;
    let mut h = Mat::<f64>::from_fn(m, m, |r, c| form.g[(idx(r), idx(c))] / n);
    let mut grad = Mat::<f64>::zeros(m, 1);
    for (t, &i) in active.iter().enumerate() {
        let ui = &u[i * d..(i + 1) * d];
        let nu = norm(ui);
        for r in 0..d {
            grad[(t * d + r, 0)] = (q[i * d + r] - form.b[i * d + r]) / n + lambda * ui[r] / nu;
            for c in 0..d {
                let eye = if r == c { 1.0 } else { 0.0 };
                h[(t * d + r, t * d + c)] += lambda * (eye - ui[r] * ui[c] / (nu * nu)) / nu;
            }
        }
    }
    let scale = (0..m).map(|r| h[(r, r)]).sum::<f64>() / m as f64;
    for _attempt in 0..4 {
        let mut hd = h.clone();
        for r in 0..m {
            hd[(r, r)] += *damping * scale;
        }
        let Ok(llt) = hd.llt(faer::Side::Lower) else {
            *damping = (*damping * 100.0).min(1.0);
            continue;
        };
        let mut step = grad.clone();
        llt.solve_in_place(step.as_mut());
        let delta: Vec<f64> = (0..m).map(|r| -step[(r, 0)]).collect();
        match newton_move(form, lambda, active, &delta, u, q) {
            Some(t) => {
                // A full step trusts the model more; a cut one trusts it less.
                *damping = if t == 1.0 {
                    (*damping * 0.1).max(1e-12)
                } else {
                    (*damping * 4.0).min(1.0)
                };
                return true;
            }
            None => *damping = (*damping * 100.0).min(1.0),
        }
    }
    false
}

/// A step along `delta` on the active groups: w = G[:, A]Δ, and the largest t in 1, ½, … ≥ 1e-6
/// that lowers the objective, with the objective reached (None when no t does).
struct Step {
    w: Vec<f64>,
    t: f64,
    objective: f64,
}

fn search(
    form: &GramForm,
    lambda: f64,
    active: &[usize],
    delta: &[f64],
    u: &[f64],
    q: &[f64],
) -> Option<Step> {
    let (d, n, m) = (form.d, form.n as f64, delta.len());
    let idx = |a: usize| active[a / d] * d + a % d;
    let mut w = vec![0.0; q.len()];
    for (a, &da) in delta.iter().enumerate() {
        if da != 0.0 {
            for (wv, gv) in w.iter_mut().zip(form.g.col_as_slice(idx(a))) {
                *wv += gv * da;
            }
        }
    }
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let (bu, uq) = (dot(&form.b, u), dot(u, q));
    let (bd, dq, dw): (f64, f64, f64) = (
        (0..m).map(|a| form.b[idx(a)] * delta[a]).sum(),
        (0..m).map(|a| q[idx(a)] * delta[a]).sum(),
        (0..m).map(|a| w[idx(a)] * delta[a]).sum(),
    );
    // The objective along the step: a quadratic in t plus the active groups' norms (the others
    // do not move).
    let objective = |t: f64| {
        let res2 = form.yy - 2.0 * (bu + t * bd) + uq + 2.0 * t * dq + t * t * dw;
        let pen: f64 = active
            .iter()
            .enumerate()
            .map(|(s, &i)| {
                let moved: Vec<f64> = (0..d)
                    .map(|r| u[i * d + r] + t * delta[s * d + r])
                    .collect();
                norm(&moved)
            })
            .sum();
        res2 / (2.0 * n) + lambda * pen
    };
    let base = objective(0.0);
    let mut t = 1.0;
    while t >= 1e-6 {
        let value = objective(t);
        if value < base {
            return Some(Step {
                w,
                t,
                objective: value,
            });
        }
        t *= 0.5;
    }
    None
}

/// The better of two steps on the Newton direction `delta`: the direction itself, and the
/// direction with every group whose segment passes closest to zero inside (0, 1) sent to zero
/// (the Newton model does not see the kink of ‖u_i‖ at 0, so groups leaving the active set
/// otherwise cut the step short). Applies it to `u` and `q`; returns the step length t of the
/// plain direction's search (1 for the dropping step), None when neither lowers the objective.
fn newton_move(
    form: &GramForm,
    lambda: f64,
    active: &[usize],
    delta: &[f64],
    u: &mut [f64],
    q: &mut [f64],
) -> Option<f64> {
    let d = form.d;
    let mut dropping = delta.to_vec();
    let mut drops = false;
    for (s, &i) in active.iter().enumerate() {
        let (ui, di) = (&u[i * d..(i + 1) * d], &delta[s * d..(s + 1) * d]);
        let dd: f64 = di.iter().map(|v| v * v).sum();
        let t_min = -ui.iter().zip(di).map(|(a, b)| a * b).sum::<f64>() / dd.max(1e-300);
        if t_min > 0.0 && t_min < 1.0 {
            drops = true;
            for r in 0..d {
                dropping[s * d + r] = -ui[r];
            }
        }
    }
    let plain = search(form, lambda, active, delta, u, q);
    let dropped = if drops {
        search(form, lambda, active, &dropping, u, q).filter(|s| s.t == 1.0)
    } else {
        None
    };
    let (step, dir, t_plain) = match (plain, dropped) {
        (Some(a), Some(b)) if b.objective < a.objective => (b, &dropping, 1.0),
        (Some(a), _) => {
            let t = a.t;
            (a, &delta.to_vec(), t)
        }
        (None, Some(b)) => (b, &dropping, 1.0),
        (None, None) => return None,
    };
    for (a, &da) in dir.iter().enumerate() {
        u[active[a / d] * d + a % d] += step.t * da;
    }
    for (qv, wv) in q.iter_mut().zip(&step.w) {
        *qv += step.t * wv;
    }
    Some(t_plain)
}

/// The objective and the dual bound (M13) at `u` from q = Gu, b and yᵀy: ‖Fu − y‖² =
/// uᵀGu − 2bᵀu + yᵀy, Fᵀ(y − Fu) = b − Gu, θ = s(y − Fu)/n with s = min(1, λ / max_i ‖(b − Gu)_i‖/n).
fn primal_dual(form: &GramForm, lambda: f64, u: &[f64], q: &[f64]) -> (f64, f64) {
    let (d, groups, n) = (form.d, form.groups(), form.n as f64);
    let bu: f64 = form.b.iter().zip(u).map(|(a, b)| a * b).sum();
    let uq: f64 = u.iter().zip(q).map(|(a, b)| a * b).sum();
    let res2 = (form.yy - 2.0 * bu + uq).max(0.0);
    let penalty: f64 = u.chunks(d).map(norm).sum();
    let primal = res2 / (2.0 * n) + lambda * penalty;
    let top = (0..groups)
        .map(|i| {
            let g: Vec<f64> = (0..d)
                .map(|r| (form.b[i * d + r] - q[i * d + r]) / n)
                .collect();
            norm(&g)
        })
        .fold(0.0, f64::max);
    let s = if top > lambda { lambda / top } else { 1.0 };
    let dual = s * (form.yy - bu) / n - s * s * res2 / (2.0 * n);
    (primal, dual)
}

/// What the ADMM phase needs besides the problem.
struct AdmmRun<'a> {
    settings: &'a BcdSettings,
    observer: &'a mut dyn Observe,
    stop: &'a StopFlag,
    start: Instant,
}

/// How the ADMM phase ended.
struct AdmmPhase {
    status: Status,
    dual: f64,
    iterations: usize,
}

/// q = G u (all threads).
fn gram_times(form: &GramForm, u: &[f64], q: &mut [f64]) {
    let p = u.len();
    let mut qm = Mat::<f64>::zeros(p, 1);
    matmul(
        qm.as_mut(),
        Accum::Replace,
        form.g.as_ref(),
        MatRef::from_column_major_slice(u, p, 1),
        1.0,
        faer::get_global_parallelism(),
    );
    q.copy_from_slice(qm.col_as_slice(0));
}

/// ADMM on the Gram form from the current `u` (with q = Gu): the split z = w of
/// min ½zᵀHz − cᵀz + λΣ‖w_i‖ (H = G/n, c = b/n) with scaled dual v,
///
/// ```text
/// z ← (H + ρI)⁻¹(c + ρ(w − v)),   w_i ← prox_{(λ/ρ)‖·‖}(z_i + v_i),   v ← v + z − w,
/// ```
///
/// one Cholesky factorization of H + ρI per value of ρ. Unlike the sweeps it is not slowed by
/// correlated groups (the factor holds all of H); ρ starts at the mean eigenvalue of H and is
/// balanced between the primal and dual residuals (at most 8 refactorizations). Every 10
/// iterations q = Gw and the gap (M13) at w are evaluated, and every 50 Newton steps on the
/// support of w try to finish the solve; `u`, `q` end at the best point found. Returns None when H + ρI cannot be factored (the sweeps go on).
fn admm_phase(
    form: &GramForm,
    lambda: f64,
    (u, q): (&mut Vec<f64>, &mut Vec<f64>),
    run: AdmmRun<'_>,
) -> Option<AdmmPhase> {
    let (d, n) = (form.d, form.n as f64);
    let p = u.len();
    let c: Vec<f64> = form.b.iter().map(|v| v / n).collect();
    let mut rho = (0..p).map(|r| form.g[(r, r)]).sum::<f64>() / (n * p as f64);
    if !(rho.is_finite() && rho > 0.0) {
        return None;
    }
    let factor = |rho: f64| {
        let mut h = Mat::<f64>::from_fn(p, p, |r, col| form.g[(r, col)] / n);
        for r in 0..p {
            h[(r, r)] += rho;
        }
        h.llt(faer::Side::Lower).ok()
    };
    let mut llt = factor(rho)?;
    let mut w = u.clone();
    let mut v = vec![0.0; p];
    let mut rhs = Mat::<f64>::zeros(p, 1);
    let (mut best, mut best_dual) = (f64::INFINITY, f64::NEG_INFINITY);
    let mut refactors = 0;
    let mut iterations = 0;
    let mut wq = vec![0.0; p];
    let mut damping = 1e-8;
    loop {
        let w_old = w.clone();
        for r in 0..p {
            rhs[(r, 0)] = c[r] + rho * (w[r] - v[r]);
        }
        llt.solve_in_place(rhs.as_mut());
        for i in 0..p / d {
            let range = i * d..(i + 1) * d;
            let zi: Vec<f64> = range.clone().map(|r| rhs[(r, 0)] + v[r]).collect();
            let nz = norm(&zi);
            let shrink = if nz > lambda / rho {
                1.0 - lambda / (rho * nz)
            } else {
                0.0
            };
            for (a, r) in range.enumerate() {
                w[r] = shrink * zi[a];
            }
        }
        let (mut pri, mut dua) = (0.0, 0.0);
        for r in 0..p {
            let z = rhs[(r, 0)];
            v[r] += z - w[r];
            pri += (z - w[r]) * (z - w[r]);
            dua += (w[r] - w_old[r]) * (w[r] - w_old[r]);
        }
        let (pri, dua) = (pri.sqrt(), rho * dua.sqrt());
        iterations += 1;
        if iterations % 10 != 0 {
            continue;
        }
        gram_times(form, &w, &mut wq);
        let (primal, dual) = primal_dual(form, lambda, &w, &wq);
        best_dual = best_dual.max(dual);
        if primal < best {
            best = primal;
            u.copy_from_slice(&w);
            q.copy_from_slice(&wq);
        }
        // Newton steps on the support of w: once ADMM has found the active set they finish
        // the solve (quadratic convergence where its slow tail would crawl).
        if iterations % 50 == 0 {
            let active: Vec<usize> = (0..p / d)
                .filter(|&i| w[i * d..(i + 1) * d].iter().any(|a| *a != 0.0))
                .collect();
            if !active.is_empty() && active.len() * d <= run.settings.newton_max_weights {
                let (mut ut, mut qt) = (w.clone(), wq.clone());
                for _ in 0..5 {
                    if !newton_step(form, lambda, &active, &mut damping, &mut ut, &mut qt) {
                        break;
                    }
                }
                let (primal, dual) = primal_dual(form, lambda, &ut, &qt);
                best_dual = best_dual.max(dual);
                if primal < best {
                    best = primal;
                    u.copy_from_slice(&ut);
                    q.copy_from_slice(&qt);
                }
            }
        }
        let gap = (best - best_dual).max(0.0);
        let seconds = run.start.elapsed().as_secs_f64();
        let record = IterRecord {
            iteration: iterations,
            outer: refactors,
            objective: best,
            gap,
            violation: 0.0,
            seconds,
        };
        let status = if !run.observer.on_iter(&record) || run.stop.is_set() {
            Some(Status::Interrupted)
        } else if gap <= run.settings.tol * best.abs().max(1e-12) {
            Some(Status::Converged)
        } else if run.settings.time_limit.is_some_and(|t| seconds >= t) {
            Some(Status::TimeLimit)
        } else if iterations >= run.settings.max_sweeps {
            Some(Status::MaxIterations)
        } else {
            None
        };
        if let Some(status) = status {
            return Some(AdmmPhase {
                status,
                dual: best_dual,
                iterations,
            });
        }
        // Residual balancing, every 50 iterations.
        if iterations % 50 == 0 && refactors < 8 && (pri > 10.0 * dua || dua > 10.0 * pri) {
            let f = if pri > dua { 5.0 } else { 0.2 };
            if let Some(next) = factor(rho * f) {
                rho *= f;
                // The scaled dual v = y/ρ keeps y.
                v.iter_mut().for_each(|a| *a /= f);
                llt = next;
                refactors += 1;
            }
        }
    }
}

/// Block coordinate descent on `form` at λ from `u0` (d × P, or zero); see the module docs.
pub fn group_bcd(
    form: &GramForm,
    lambda: f64,
    u0: Option<MatRef<'_, f64>>,
    settings: &BcdSettings,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> BcdOutput {
    let (d, groups, n) = (form.d, form.groups(), form.n as f64);
    let p = d * groups;
    let mut u = vec![0.0; p];
    if let Some(u0) = u0.filter(|m| m.nrows() == d && m.ncols() == groups) {
        for i in 0..groups {
            for a in 0..d {
                u[i * d + a] = u0[(a, i)];
            }
        }
    }
    // q = G u.
    let mut q = vec![0.0; p];
    if u.iter().any(|v| *v != 0.0) {
        let um = MatRef::from_column_major_slice(&u, p, 1);
        let mut qm = Mat::<f64>::zeros(p, 1);
        matmul(
            qm.as_mut(),
            Accum::Replace,
            form.g.as_ref(),
            um,
            1.0,
            faer::Par::Seq,
        );
        q.copy_from_slice(qm.col_as_slice(0));
    }
    let blocks: Vec<Mat<f64>> = (0..groups)
        .map(|i| Mat::from_fn(d, d, |r, c| form.g[(i * d + r, i * d + c)] / n))
        .collect();
    let steps: Vec<f64> = blocks.iter().map(top_eigenvalue).collect();
    let (mut best_dual, mut sweeps, mut updates, mut newton_steps) = (f64::NEG_INFINITY, 0, 0, 0);
    let mut status = Status::MaxIterations;
    let (mut c, mut v, mut delta) = (vec![0.0; d], vec![0.0; d], vec![0.0; d]);
    // Levenberg–Marquardt damping of the Newton steps, relative to the mean Hessian diagonal.
    let mut damping = 1e-8;
    while sweeps < settings.max_sweeps {
        for i in 0..groups {
            let range = i * d..(i + 1) * d;
            let old = &u[range.clone()];
            let active = old.iter().any(|a| *a != 0.0);
            for r in 0..d {
                let gu_old: f64 = if active {
                    (0..d).map(|s| blocks[i][(r, s)] * old[s]).sum()
                } else {
                    0.0
                };
                c[r] = (form.b[i * d + r] - q[i * d + r]) / n + gu_old;
            }
            if norm(&c) <= lambda {
                if !active {
                    continue;
                }
                v.iter_mut().for_each(|a| *a = 0.0);
            } else {
                v.copy_from_slice(old);
                solve_block(&blocks[i], &c, lambda, steps[i], &mut v);
            }
            for r in 0..d {
                delta[r] = v[r] - u[i * d + r];
            }
            if delta.iter().all(|a| *a == 0.0) {
                continue;
            }
            // q += G[:, group i] Δ.
            for (r, dr) in delta.iter().enumerate() {
                if *dr != 0.0 {
                    let col = form.g.col_as_slice(i * d + r);
                    for (qv, gv) in q.iter_mut().zip(col) {
                        *qv += gv * dr;
                    }
                }
            }
            u[range].copy_from_slice(&v);
            updates += 1;
        }
        sweeps += 1;
        // Newton steps on the active set: quadratic convergence once the sweeps have found it.
        let active: Vec<usize> = (0..groups)
            .filter(|&i| u[i * d..(i + 1) * d].iter().any(|a| *a != 0.0))
            .collect();
        if !active.is_empty() && active.len() * d <= settings.newton_max_weights {
            for _ in 0..3 {
                if !newton_step(form, lambda, &active, &mut damping, &mut u, &mut q) {
                    break;
                }
                newton_steps += 1;
            }
        }
        let (primal, dual) = primal_dual(form, lambda, &u, &q);
        best_dual = best_dual.max(dual);
        let gap = (primal - best_dual).max(0.0);
        let seconds = start.elapsed().as_secs_f64();
        let record = IterRecord {
            iteration: sweeps,
            outer: 0,
            objective: primal,
            gap,
            violation: 0.0,
            seconds,
        };
        if !observer.on_iter(&record) || stop.is_set() {
            status = Status::Interrupted;
            break;
        }
        if gap <= settings.tol * primal.abs().max(1e-12) {
            status = Status::Converged;
            break;
        }
        if settings.time_limit.is_some_and(|t| seconds >= t) {
            status = Status::TimeLimit;
            break;
        }
        if sweeps >= settings.admm_after && p <= settings.admm_max_weights {
            let run = AdmmRun {
                settings,
                observer: &mut *observer,
                stop,
                start,
            };
            if let Some(phase) = admm_phase(form, lambda, (&mut u, &mut q), run) {
                sweeps += phase.iterations;
                best_dual = best_dual.max(phase.dual);
                status = phase.status;
                break;
            }
        }
    }
    BcdOutput {
        u: Mat::from_fn(d, groups, |a, i| u[i * d + a]),
        dual: best_dual,
        status,
        sweeps,
        updates,
        newton_steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::sample::sample_patterns;
    use crate::operator::MaskedOperator;
    use crate::program::gated::GatedProblem;
    use crate::program::Loss;
    use crate::rng::Rng;
    use crate::solver::fista::Smooth;
    use crate::solver::Silent;

    #[test]
    fn gram_form_matches_the_operator_and_bcd_certifies_its_gap() {
        let mut rng = Rng::new(2);
        for pooling in [1, 3] {
            let (n, d) = (40, 4);
            let x = Mat::from_fn(n * pooling, d, |_, _| rng.normal());
            let y: Vec<f64> = (0..n).map(|_| rng.normal()).collect();
            let pats = sample_patterns(x.as_ref(), 12, 5).unwrap();
            let form = GramForm::new(x.as_ref(), &y, &pats, pooling).unwrap();
            let op =
                MaskedOperator::<f64>::new(x.as_ref(), pats.clone(), 64, 1).with_pooling(pooling);
            let mut prob = GatedProblem::new(op, &y, Loss::Squared);
            let lambda = 0.1 * prob.lambda_max();
            let out = group_bcd(
                &form,
                lambda,
                None,
                &BcdSettings {
                    tol: 1e-10,
                    admm_after: usize::MAX,
                    ..BcdSettings::default()
                },
                &mut Silent,
                &StopFlag::new(),
                Instant::now(),
            );
            assert_eq!(out.status, Status::Converged);
            // The operator's certificate of the same weights agrees.
            let mut cache = prob.new_cache();
            prob.forward(out.u.as_ref(), &mut cache);
            let mut g = Mat::zeros(d, pats.len());
            prob.gradient(&cache, g.as_mut());
            let obj = prob.value(&cache)
                + lambda * crate::program::penalty::group_norm_sum(out.u.as_ref());
            let dual = prob.dual_bound(&cache, g.as_ref(), lambda).unwrap();
            assert!(obj - dual <= 1e-9 * obj, "pooling {pooling}: {obj} {dual}");
            assert!((out.dual - dual).abs() <= 1e-8 * obj.abs());
            // The ADMM phase from the start reaches the same optimum, and its dual bound (from
            // its best iterate) certifies its point through the operator.
            let admm = group_bcd(
                &form,
                lambda,
                None,
                &BcdSettings {
                    tol: 1e-9,
                    admm_after: 0,
                    ..BcdSettings::default()
                },
                &mut Silent,
                &StopFlag::new(),
                Instant::now(),
            );
            assert_eq!(admm.status, Status::Converged);
            let mut cache = prob.new_cache();
            prob.forward(admm.u.as_ref(), &mut cache);
            let obj_admm = prob.value(&cache)
                + lambda * crate::program::penalty::group_norm_sum(admm.u.as_ref());
            assert!(
                obj_admm - admm.dual <= 2e-9 * obj_admm,
                "{obj_admm} {}",
                admm.dual
            );
            assert!(admm.dual <= obj * (1.0 + 1e-12) && obj_admm <= obj * (1.0 + 2e-9));
        }
    }
}
