//! The exact backend of the linear networks' programs (docs/programs.md §3f): the squared-loss
//! program min (1/(2n))‖A vec(U) − y‖² + λ R(U) as a conic program solved by Clarabel.
//!
//! Variables: vec(U), then the residuals r = A vec(U) − y (n), then the penalty's epigraph
//! variables. Cones: a zero cone for the data rows; for R = Σ_g ‖u_g‖₂ one second-order cone
//! (t_g, u_g) per column, for the nuclear norm of the `rows` × c reshaped column one semidefinite
//! block (the `nuclear` cargo feature).

use faer::{Mat, MatRef};

use super::conic::{Affine, Cone, Conic};
use crate::error::{Error, Result};
use crate::program::penalty::GroupPenalty;

/// What [`solve_linear_exact`] returns.
pub struct ExactLinear {
    /// U (rows × groups).
    pub u: Mat<f64>,
    /// Interior-point iterations.
    pub iterations: usize,
    /// Clarabel's own test held to full accuracy.
    pub accurate: bool,
    /// The time limit ended the solve.
    pub timed_out: bool,
}

/// Solves min (1/(2n))‖A vec(U) − y‖² + λ R(U) for U of `rows` × `groups` (A is n × rows·groups,
/// vec column-major) at Clarabel tolerance `tol`.
#[allow(clippy::too_many_arguments)]
pub fn solve_linear_exact(
    a: MatRef<'_, f64>,
    y: &[f64],
    rows: usize,
    groups: usize,
    penalty: GroupPenalty,
    lambda: f64,
    tol: f64,
    time_limit: Option<f64>,
) -> Result<ExactLinear> {
    let (n, m) = (a.nrows(), rows * groups);
    if a.ncols() != m || y.len() != n {
        return Err(Error::InvalidData(format!(
            "the linear program has {} columns and {} targets for {n} rows and {m} weights",
            a.ncols(),
            y.len()
        )));
    }
    let mut cp = Conic::default();
    cp.add_variables(m + n, 0.0);
    let data = cp.add_rows(n, Cone::Zero(n));
    for j in 0..n {
        for c in 0..m {
            cp.push(data + j, c, a[(j, c)]);
        }
        cp.push(data + j, m + j, -1.0);
        cp.b[data + j] = y[j];
    }
    cp.quadratic = (0..n).map(|j| (m + j, 1.0 / n as f64)).collect();
    match penalty {
        GroupPenalty::Columns => {
            let t = cp.add_variables(groups, lambda);
            for g in 0..groups {
                let row = cp.add_rows(rows + 1, Cone::SecondOrder(rows + 1));
                cp.push(row, t + g, -1.0);
                for r in 0..rows {
                    cp.push(row + 1 + r, g * rows + r, -1.0);
                }
            }
        }
        GroupPenalty::Nuclear { rows: h } => {
            for g in 0..groups {
                cp.nuclear_norm(h, rows / h, lambda, |r, k| Affine {
                    constant: 0.0,
                    terms: vec![(g * rows + k * h + r, 1.0)],
                });
            }
        }
        GroupPenalty::Split { .. } => {
            return Err(Error::InvalidSetting(
                "the linear programs' exact backend takes the group or nuclear penalty".into(),
            ))
        }
    }
    let sol = cp.solve(tol, 500, time_limit.unwrap_or(f64::INFINITY))?;
    if !sol.solved {
        return Err(Error::Backend(
            "the interior-point solver found no solution of the linear network's program".into(),
        ));
    }
    Ok(ExactLinear {
        u: Mat::from_fn(rows, groups, |r, g| sol.x[g * rows + r]),
        iterations: sol.iterations,
        accurate: sol.accurate,
        timed_out: sol.timed_out,
    })
}
