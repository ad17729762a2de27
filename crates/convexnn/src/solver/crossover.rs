//! Crossover to the optimal face of the squared-loss ReLU program (docs/programs.md (M69)).
//!
//! Near its optimum the interior point (M61) tells which weight blocks are nonzero and which cone
//! rows hold at zero. On that face the program is smooth: with N_b an orthonormal basis of the null
//! space of block b's zero rows X̃_{R_b} (u_b = N_b ξ_b),
//!
//! ```text
//! f(ξ) = (1/2n)‖Σ_b σ_b D_{i(b)} X N_b ξ_b − y‖² + λ Σ_b ‖ξ_b‖    (σ = +1 for v, −1 for w),
//! ```
//!
//! and Newton's method on it converges quadratically, where the interior point's own last steps
//! lose digits to the barrier's conditioning (the dual residual grows as μ → 0, (M68)). On a face
//! of at most [`DENSE_MAX`] coordinates (the optimum's blocks mostly lie on extreme rays of their
//! cones: one coordinate each) the Newton systems are formed from the face's Jacobian, once per face,
//! and factored; on larger faces they are solved by conjugate gradients through the operator,
//! preconditioned block by block with N_bᵀ(X_cᵀD_iX_c)N_b/(K²n) plus the norm's curvature (K rows
//! per sample, averaged). The result is checked: every cone row
//! the face left free must keep its sign, else the rows it crossed are added to the face and the
//! Newton steps run again.

use faer::linalg::solvers::{Llt, Solve};
use faer::{Mat, MatMut, MatRef, Side};

use crate::operator::MaskedOperator;
use crate::solver::interior::pattern_grams;

/// Newton steps per face.
const NEWTON_STEPS: usize = 8;
/// Default largest face (Σ_b m_b coordinates) whose Newton systems are formed and factored
/// densely ([`FaceProgram::dense_max`]); the rows × m Jacobian and its m × m Gram matrix are formed
/// once per face.
pub const DENSE_MAX: usize = 2000;
/// Most entries of that Jacobian.
const DENSE_ENTRIES: usize = 1 << 25;
/// Conjugate-gradient iterations per Newton step.
const CG_STEPS: usize = 400;
/// Faces tried: the first guess and the rows that a polished point crossed, added.
const ROUNDS: usize = 3;
/// Singular values below this times the largest count as zero in a face's rows.
const RANK_TOL: f64 = 1e-10;
/// Slack below −this × ‖x_j‖‖u_b‖ on a free row is a crossing.
const CROSSING_TOL: f64 = 1e-12;

/// The face the interior point identified: for each of the 2P blocks, `None` where the block is
/// zero, else the cone rows (indices into the cone rows of X) held at zero.
pub struct Face {
    pub rows: Vec<Option<Vec<usize>>>,
}

/// The program's data as the crossover needs it.
pub struct FaceProgram<'a> {
    /// Cone rows of X (rows × d).
    pub xc: MatRef<'a, f64>,
    /// Signs 2D_i − I of the cone rows (rows × P).
    pub signs: MatRef<'a, f64>,
    /// Targets (n).
    pub y: &'a [f64],
    pub lambda: f64,
    /// Rows of X per sample (K; 1 for a fully connected program).
    pub pooling: usize,
    /// Largest face factored densely; larger ones go by conjugate gradients. Usually
    /// [`DENSE_MAX`].
    pub dense_max: usize,
}

/// One block on the face: its index b, basis N_b (d × m_b) and coordinates ξ_b.
struct Block {
    b: usize,
    basis: Mat<f64>,
    xi: Vec<f64>,
}

/// The weights [V | W] (d × 2P) that minimize the program on `face`, from `u`: `None` when the
/// face cannot hold a minimizer (a block's basis is empty, a block collapses to zero, or the rows
/// keep crossing).
pub fn polish_on_face(
    op: &mut MaskedOperator<f64>,
    prog: &FaceProgram<'_>,
    u: MatRef<'_, f64>,
    face: &Face,
) -> Option<Mat<f64>> {
    let (d, p2) = (u.nrows(), u.ncols());
    let mut rows = face.rows.clone();
    // X_cᵀ D_i X_c per pattern, for the conjugate gradients' preconditioner only: formed at most
    // once, when a face is too large for the dense Newton steps.
    let mut grams: Option<Vec<Mat<f64>>> = None;
    for _ in 0..ROUNDS {
        // Blocks whose face rows leave no direction (a degenerate vertex: d rows of a block
        // nearly dependent) keep the interior point's weights.
        let mut fixed = Mat::<f64>::zeros(d, p2);
        let mut blocks = Vec::new();
        for (b, r) in rows.iter().enumerate() {
            let Some(r) = r else { continue };
            let Some(basis) = null_basis(prog, b, r) else {
                for a in 0..d {
                    fixed[(a, b)] = u[(a, b)];
                }
                continue;
            };
            let xi = (0..basis.ncols())
                .map(|k| (0..d).map(|a| basis[(a, k)] * u[(a, b)]).sum())
                .collect();
            blocks.push(Block { b, basis, xi });
        }
        let fixed_patterns = Mat::from_fn(d, p2 / 2, |a, i| fixed[(a, i)] - fixed[(a, p2 / 2 + i)]);
        let fixed_penalty: f64 = (0..p2)
            .map(|b| (0..d).map(|a| fixed[(a, b)].powi(2)).sum::<f64>().sqrt())
            .sum();
        let offset = Offset {
            patterns: fixed_patterns,
            penalty: fixed_penalty,
        };
        newton(op, prog, &offset, &mut blocks, &mut grams, d, p2)?;
        let mut out = weights(&blocks, d, p2);
        let crossed = crossings(prog, out.as_ref(), &rows);
        if crossed.iter().all(Vec::is_empty) {
            out += &fixed;
            return Some(out);
        }
        for (r, extra) in rows.iter_mut().zip(crossed) {
            if let Some(r) = r {
                r.extend(extra);
            }
        }
    }
    None
}

/// The blocks held at the interior point's weights: their pattern-space sum (d × P) and the sum
/// of their norms.
struct Offset {
    patterns: Mat<f64>,
    penalty: f64,
}

/// An orthonormal basis (d × m) of the null space of block b's face rows; `None` when it is empty.
fn null_basis(prog: &FaceProgram<'_>, b: usize, rows: &[usize]) -> Option<Mat<f64>> {
    let d = prog.xc.ncols();
    if rows.is_empty() {
        return Some(Mat::identity(d, d));
    }
    let p = prog.signs.ncols();
    let a = Mat::from_fn(rows.len(), d, |k, c| {
        prog.signs[(rows[k], b % p)] * prog.xc[(rows[k], c)]
    });
    // With more rows than columns, the null space of A is that of its d × d triangular factor.
    let a = if a.nrows() > d {
        a.qr().thin_R().to_owned()
    } else {
        a
    };
    let svd = a.svd().ok()?;
    let s = svd.S().column_vector();
    let top = if s.nrows() > 0 { s[0] } else { 0.0 };
    let rank = (0..s.nrows()).filter(|&k| s[k] > RANK_TOL * top).count();
    if rank >= d {
        return None;
    }
    let v = svd.V();
    Some(Mat::from_fn(d, d - rank, |a, k| v[(a, rank + k)]))
}

/// [V | W] (d × 2P) of the blocks, zero elsewhere.
fn weights(blocks: &[Block], d: usize, p2: usize) -> Mat<f64> {
    let mut u = Mat::<f64>::zeros(d, p2);
    for blk in blocks {
        for a in 0..d {
            u[(a, blk.b)] = (0..blk.xi.len())
                .map(|k| blk.basis[(a, k)] * blk.xi[k])
                .sum();
        }
    }
    u
}

/// For each block, the free rows whose slack went negative beyond rounding.
fn crossings(
    prog: &FaceProgram<'_>,
    u: MatRef<'_, f64>,
    rows: &[Option<Vec<usize>>],
) -> Vec<Vec<usize>> {
    let (nc, d, p) = (prog.xc.nrows(), prog.xc.ncols(), prog.signs.ncols());
    let row_norm: Vec<f64> = (0..nc)
        .map(|j| (0..d).map(|a| prog.xc[(j, a)].powi(2)).sum::<f64>().sqrt())
        .collect();
    rows.iter()
        .enumerate()
        .map(|(b, r)| {
            let Some(r) = r else { return Vec::new() };
            let norm = (0..d).map(|a| u[(a, b)].powi(2)).sum::<f64>().sqrt();
            let mut held = vec![false; nc];
            r.iter().for_each(|&j| held[j] = true);
            (0..nc)
                .filter(|&j| !held[j])
                .filter(|&j| {
                    let s = prog.signs[(j, b % p)]
                        * (0..d).map(|a| prog.xc[(j, a)] * u[(a, b)]).sum::<f64>();
                    s < -CROSSING_TOL * row_norm[j] * norm
                })
                .collect()
        })
        .collect()
}

/// The pattern-space vector a = Σ_b σ_b N_b ξ_b (d × P, pattern i in column i) of direction `v`
/// (one slice per block).
fn to_patterns(blocks: &[Block], v: &[Vec<f64>], d: usize, p: usize) -> Mat<f64> {
    let mut a = Mat::<f64>::zeros(d, p);
    for (blk, vb) in blocks.iter().zip(v) {
        let (i, sigma) = (blk.b % p, if blk.b < p { 1.0 } else { -1.0 });
        for r in 0..d {
            a[(r, i)] += sigma
                * (0..vb.len())
                    .map(|k| blk.basis[(r, k)] * vb[k])
                    .sum::<f64>();
        }
    }
    a
}

/// Per block σ_b N_bᵀ g_i of a pattern-space gradient g (d × P).
fn from_patterns(blocks: &[Block], g: MatRef<'_, f64>, p: usize) -> Vec<Vec<f64>> {
    blocks
        .iter()
        .map(|blk| {
            let (i, sigma) = (blk.b % p, if blk.b < p { 1.0 } else { -1.0 });
            (0..blk.basis.ncols())
                .map(|k| {
                    sigma
                        * (0..g.nrows())
                            .map(|r| blk.basis[(r, k)] * g[(r, i)])
                            .sum::<f64>()
                })
                .collect()
        })
        .collect()
}

/// (1/2n)‖F a − y‖² + λΣ‖ξ_b‖ and the residual F a − y at the blocks' coordinates.
fn value(
    op: &mut MaskedOperator<f64>,
    prog: &FaceProgram<'_>,
    offset: &Offset,
    blocks: &[Block],
    xi: &[Vec<f64>],
    d: usize,
    p: usize,
) -> (f64, Vec<f64>) {
    let n = prog.y.len();
    let a = to_patterns(blocks, xi, d, p) + &offset.patterns;
    let mut r = vec![0.0; n];
    op.apply(a.as_ref(), &mut r);
    for (ri, yi) in r.iter_mut().zip(prog.y) {
        *ri -= yi;
    }
    let fit = 0.5 * r.iter().map(|v| v * v).sum::<f64>() / n as f64;
    let penalty: f64 = xi.iter().map(|v| norm(v)).sum();
    (fit + prog.lambda * (penalty + offset.penalty), r)
}

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|a| a * a).sum::<f64>().sqrt()
}

fn dot(a: &[Vec<f64>], b: &[Vec<f64>]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| x.iter().zip(y).map(|(s, t)| s * t).sum::<f64>())
        .sum()
}

/// Newton's method on f over the blocks' coordinates, in place; `grams` keeps the per-pattern Gram
/// blocks of the conjugate-gradient path from one call to the next.
fn newton(
    op: &mut MaskedOperator<f64>,
    prog: &FaceProgram<'_>,
    offset: &Offset,
    blocks: &mut [Block],
    grams: &mut Option<Vec<Mat<f64>>>,
    d: usize,
    p2: usize,
) -> Option<()> {
    let p = p2 / 2;
    let n = prog.y.len() as f64;
    let lambda = prog.lambda;
    let mut last = f64::INFINITY;
    let gauss_newton = gauss_newton(op, blocks, p, prog.dense_max);
    for _ in 0..NEWTON_STEPS {
        let xi: Vec<Vec<f64>> = blocks.iter().map(|b| b.xi.clone()).collect();
        if xi.iter().any(|v| norm(v) == 0.0) {
            return None;
        }
        let (f0, r) = value(op, prog, offset, blocks, &xi, d, p);
        let mut g = Mat::<f64>::zeros(d, p);
        op.adjoint(&r, g.as_mut());
        let mut grad = from_patterns(blocks, g.as_ref(), p);
        for (gb, x) in grad.iter_mut().zip(&xi) {
            let nx = norm(x);
            for (gk, xk) in gb.iter_mut().zip(x) {
                *gk = *gk / n + lambda * xk / nx;
            }
        }
        // Stop once the gradient is at the level of rounding in the penalty's gradient.
        let scale = lambda * (blocks.len().max(1) as f64).sqrt();
        let gnorm = dot(&grad, &grad).sqrt();
        // Converged, or stagnating at the level of rounding.
        if gnorm <= 1e-12 * scale || gnorm > 0.5 * last {
            break;
        }
        last = gnorm;
        let hess = |v: &[Vec<f64>], out: &mut Vec<Vec<f64>>| {
            let a = to_patterns(blocks, v, d, p);
            let mut fv = vec![0.0; prog.y.len()];
            op.apply(a.as_ref(), &mut fv);
            let mut back = Mat::<f64>::zeros(d, p);
            op.adjoint(&fv, back.as_mut());
            *out = from_patterns(blocks, back.as_ref(), p);
            for ((ob, vb), x) in out.iter_mut().zip(v).zip(&xi) {
                let nx = norm(x);
                let along: f64 = vb.iter().zip(x).map(|(s, t)| s * t).sum::<f64>() / (nx * nx);
                for k in 0..vb.len() {
                    ob[k] = ob[k] / n + lambda / nx * (vb[k] - along * x[k]);
                }
            }
        };
        let step = match gauss_newton
            .as_ref()
            .and_then(|jtj| dense_step(jtj, blocks, &xi, &grad, n, lambda))
        {
            Some(step) => step,
            None => {
                let grams = grams.get_or_insert_with(|| pattern_grams(prog.xc, prog.signs));
                let precond = preconditioner(prog, grams, blocks, &xi, p)?;
                conjugate_gradients(hess, &precond, &grad)
            }
        };
        let slope = -dot(&grad, &step);
        if slope >= 0.0 {
            break;
        }
        // Backtracking on f (ξ stays away from zero: a block that collapses leaves the face).
        let mut alpha = 1.0;
        let mut accepted = false;
        while alpha >= 1e-6 {
            let trial: Vec<Vec<f64>> = xi
                .iter()
                .zip(&step)
                .map(|(x, s)| x.iter().zip(s).map(|(a, b)| a - alpha * b).collect())
                .collect();
            let (f1, _) = value(op, prog, offset, blocks, &trial, d, p);
            if f1 <= f0 + 1e-4 * alpha * slope + 1e-15 * f0.abs() {
                for (blk, t) in blocks.iter_mut().zip(trial) {
                    blk.xi = t;
                }
                accepted = true;
                break;
            }
            alpha *= 0.5;
        }
        if !accepted {
            break;
        }
    }
    Some(())
}

/// JᵀJ (m × m) for the face's Jacobian J = [σ_b Π M_{i(b)} X N_b] (n × m, m = Σ_b m_b; M_i the
/// operator's masks, Π its pooling), from one product X·[N_b]; `None` for a face of more than
/// `dense_max` coordinates.
fn gauss_newton(
    op: &MaskedOperator<f64>,
    blocks: &[Block],
    p: usize,
    dense_max: usize,
) -> Option<Mat<f64>> {
    let (d, n, rows) = (op.ncols(), op.n_samples(), op.nrows());
    let m: usize = blocks.iter().map(|b| b.basis.ncols()).sum();
    if m > dense_max || rows.saturating_mul(m) > DENSE_ENTRIES {
        return None;
    }
    let mut basis = Mat::<f64>::zeros(d, m);
    let mut col = 0;
    for blk in blocks {
        for k in 0..blk.basis.ncols() {
            for a in 0..d {
                basis[(a, col)] = blk.basis[(a, k)];
            }
            col += 1;
        }
    }
    let groups: Vec<(usize, f64, usize)> = blocks
        .iter()
        .map(|b| (b.b % p, if b.b < p { 1.0 } else { -1.0 }, b.basis.ncols()))
        .collect();
    let mut xb = Mat::<f64>::zeros(rows, m);
    let mut pooled = Mat::<f64>::zeros(if op.pooling() > 1 { n } else { 0 }, m);
    let j = op.masked_columns(basis.as_ref(), &groups, &mut xb, &mut pooled);
    Some(j.transpose() * j)
}

/// The Newton step H⁻¹g with H = JᵀJ/n + blockdiag(λ/‖ξ_b‖(I − ξ̂_bξ̂_bᵀ)), factored densely;
/// `None` where H has no Cholesky factor.
fn dense_step(
    jtj: &Mat<f64>,
    blocks: &[Block],
    xi: &[Vec<f64>],
    grad: &[Vec<f64>],
    n: f64,
    lambda: f64,
) -> Option<Vec<Vec<f64>>> {
    let mut h = Mat::from_fn(jtj.nrows(), jtj.ncols(), |r, c| jtj[(r, c)] / n);
    let mut at = 0;
    for (blk, x) in blocks.iter().zip(xi) {
        let (m, nx) = (blk.basis.ncols(), norm(x));
        for r in 0..m {
            for c in 0..m {
                let eye = if r == c { 1.0 } else { 0.0 };
                h[(at + r, at + c)] += lambda / nx * (eye - x[r] * x[c] / (nx * nx));
            }
        }
        at += m;
    }
    let llt = h.llt(Side::Lower).ok()?;
    let mut rhs = Mat::<f64>::zeros(at, 1);
    let mut at = 0;
    for g in grad {
        for (k, v) in g.iter().enumerate() {
            rhs[(at + k, 0)] = *v;
        }
        at += g.len();
    }
    llt.solve_in_place(rhs.as_mut());
    let mut at = 0;
    Some(
        grad.iter()
            .map(|g| {
                let out = (0..g.len()).map(|k| rhs[(at + k, 0)]).collect();
                at += g.len();
                out
            })
            .collect(),
    )
}

/// Per block the Cholesky factor of N_bᵀ(X_cᵀD_iX_c)N_b/(K²n) + λ/‖ξ‖(I − ξ̂ξ̂ᵀ) (for K > 1 an
/// approximation of the pooled block's curvature: it only preconditions).
fn preconditioner(
    prog: &FaceProgram<'_>,
    grams: &[Mat<f64>],
    blocks: &[Block],
    xi: &[Vec<f64>],
    p: usize,
) -> Option<Vec<Llt<f64>>> {
    let n = prog.y.len() as f64;
    let pool = prog.pooling.max(1) as f64;
    blocks
        .iter()
        .zip(xi)
        .map(|(blk, x)| {
            let m = blk.basis.ncols();
            let c = &grams[blk.b % p];
            let cn = c.as_ref() * blk.basis.as_ref();
            let mut h = blk.basis.transpose() * cn.as_ref();
            let nx = norm(x);
            let mut top = 0.0f64;
            for r in 0..m {
                for k in 0..m {
                    h[(r, k)] = h[(r, k)] / (n * pool * pool)
                        + prog.lambda / nx
                            * (if r == k { 1.0 } else { 0.0 } - x[r] * x[k] / (nx * nx));
                }
                top = top.max(h[(r, r)]);
            }
            for r in 0..m {
                h[(r, r)] += 1e-12 * top;
            }
            h.llt(Side::Lower).ok()
        })
        .collect()
}

/// Solves H s = g by preconditioned conjugate gradients (to a relative residual of 1e-12, or
/// [`CG_STEPS`] iterations).
fn conjugate_gradients(
    mut hess: impl FnMut(&[Vec<f64>], &mut Vec<Vec<f64>>),
    precond: &[Llt<f64>],
    g: &[Vec<f64>],
) -> Vec<Vec<f64>> {
    let apply_precond = |r: &[Vec<f64>]| -> Vec<Vec<f64>> {
        r.iter()
            .zip(precond)
            .map(|(rb, f)| {
                let mut z = rb.clone();
                f.solve_in_place(MatMut::from_column_major_slice_mut(&mut z, rb.len(), 1));
                z
            })
            .collect()
    };
    let target = 1e-12 * dot(g, g).sqrt();
    let mut x: Vec<Vec<f64>> = g.iter().map(|v| vec![0.0; v.len()]).collect();
    let mut r: Vec<Vec<f64>> = g.to_vec();
    let mut z = apply_precond(&r);
    let mut dir = z.clone();
    let mut rz = dot(&r, &z);
    let mut hd = Vec::new();
    for _ in 0..CG_STEPS {
        if dot(&r, &r).sqrt() <= target {
            break;
        }
        hess(&dir, &mut hd);
        let curvature = dot(&dir, &hd);
        if curvature <= 0.0 {
            break;
        }
        let alpha = rz / curvature;
        for b in 0..x.len() {
            for k in 0..x[b].len() {
                x[b][k] += alpha * dir[b][k];
                r[b][k] -= alpha * hd[b][k];
            }
        }
        z = apply_precond(&r);
        let next = dot(&r, &z);
        let beta = next / rz;
        rz = next;
        for b in 0..dir.len() {
            for k in 0..dir[b].len() {
                dir[b][k] = z[b][k] + beta * dir[b][k];
            }
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::relu::{certificate, dual_direction, exact_multipliers};
    use crate::program::Loss;
    use crate::solver::interior::{planted_problem, solve_planted, InteriorSettings};

    /// From an interior-point solution at a loose tolerance, Newton's method on the face its
    /// multipliers point to reaches a point whose certificate closes the gap to rounding, with
    /// the cone rows kept (to rounding) and an objective no worse.
    #[test]
    fn polishing_on_the_face_closes_the_gap() {
        let (x, y, pats) = planted_problem();
        let (n, d, lambda) = (x.nrows(), x.ncols(), 1e-3);
        let p = pats.len();
        let settings = InteriorSettings {
            tol: 1e-5,
            ..InteriorSettings::default()
        };
        let out = solve_planted(&x, &y, &pats, &settings);
        let mut op = MaskedOperator::<f64>::new(x.as_ref(), pats.clone(), 64, 1);
        let gap = |op: &mut MaskedOperator<f64>, u: MatRef<'_, f64>, mult: &mut Mat<f64>| {
            let theta = dual_direction(op, &y, Loss::Squared, u);
            exact_multipliers(op, &theta, mult);
            let c = certificate(op, &y, Loss::Squared, lambda, u, Some(mult.as_ref()));
            (
                (c.objective - c.dual) / c.objective,
                c.objective,
                c.violation,
            )
        };
        let mut mult = out.mult.clone();
        let (before, objective, _) = gap(&mut op, out.u.as_ref(), &mut mult);
        // The face: blocks with weight, and their rows whose multiplier outweighs the slack.
        let signs = Mat::from_fn(n, p, |j, i| if pats.get(j, i) { 1.0 } else { -1.0 });
        let top = (0..2 * p)
            .map(|b| out.u.col(b).norm_l2())
            .fold(0.0f64, f64::max);
        let rows: Vec<Option<Vec<usize>>> = (0..2 * p)
            .map(|b| {
                let norm = out.u.col(b).norm_l2();
                (norm > 1e-4 * top).then(|| {
                    (0..n)
                        .filter(|&j| {
                            let xj = x.row(j).norm_l2();
                            let s = signs[(j, b % p)]
                                * (0..d).map(|a| x[(j, a)] * out.u[(a, b)]).sum::<f64>();
                            out.mult[(j, b)] * xj / lambda > s / (xj * norm)
                        })
                        .collect()
                })
            })
            .collect();
        // The dense Newton systems, and conjugate gradients (no face is dense with 0).
        for dense_max in [DENSE_MAX, 0] {
            let prog = FaceProgram {
                xc: x.as_ref(),
                signs: signs.as_ref(),
                y: &y,
                lambda,
                pooling: 1,
                dense_max,
            };
            let polished =
                polish_on_face(&mut op, &prog, out.u.as_ref(), &Face { rows: rows.clone() })
                    .expect("the face holds the minimizer");
            let (after, polished_objective, violation) = gap(&mut op, polished.as_ref(), &mut mult);
            assert!(before > 1e-9, "the loose solve leaves a gap: {before}");
            assert!(
                after < 1e-11,
                "dense up to {dense_max}: gap {before} -> {after}"
            );
            assert!(polished_objective <= objective * (1.0 + 1e-12));
            assert!(violation < 1e-12, "violation {violation}");
        }
    }
}
