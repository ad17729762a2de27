//! The exact backend for the vector-output programs (docs/programs.md (M52)–(M55)): the program as a
//! conic program solved by Clarabel, the reference for the iterative solvers on small problems.
//!
//! Variables, in order: the weights (column i of the (d·c) × P matrix, i.e. vec(U_i), for each
//! pattern i), the predictions' residuals r = Ŷ − Y (squared loss) or the predictions r = Ŷ
//! (softmax), both n × c column-major; then the penalty's epigraph variables; then for softmax the
//! log-sum-exp bounds e (n) and the exponentials a (n × c). Cone blocks, in order:
//!
//! - Zero (n·c rows): Σ_i D_i X u_{k,i} − r_k = y_k (squared) or 0 (softmax), output by output.
//! - Softmax only, nonnegative (n rows): Σ_k a_jk ≤ 1; exponential (one per entry):
//!   (r_jk − e_j, 1, a_jk) ∈ K_exp, i.e. exp(r_jk − e_j) ≤ a_jk, so e_j ≥ log Σ_k exp(r_jk).
//! - The penalty: `separate`, one SOC_{d+1} (t_{k,i}, u_{k,i}) per output and pattern; `group`, one
//!   SOC_{dc+1} (t_i, vec U_i) per pattern; `nuclear`, one semidefinite block
//!   [[W₁, U_i], [U_iᵀ, W₂]] ⪰ 0 per pattern with objective (λ/2)(tr W₁ + tr W₂) = λ‖U_i‖_* at the
//!   optimum (needs the `nuclear` cargo feature).
//!
//! Objective: (1/(2nc))‖r‖² (squared) or (1/n)Σ_j (e_j − Σ_k y_jk r_jk) (softmax), plus λ times the
//! epigraph variables: exactly the normalization of [`crate::program::outputs`].

use std::time::Instant;

use faer::{Mat, MatRef};

use super::conic::{Affine, Cone, Conic};
use crate::error::{Error, Result};
use crate::features::PatternSet;
use crate::program::outputs::OutputPenalty;
use crate::program::Loss;

/// What the vector-output exact backend returns.
pub struct ExactOutputs {
    /// The weights, (d·c) × P (column i is vec(U_i), column-major).
    pub weights: Mat<f64>,
    /// Clarabel's primal objective.
    pub objective: f64,
    /// Clarabel's dual objective (a bound only when `accurate`).
    pub dual_objective: f64,
    /// Interior-point iterations.
    pub iterations: usize,
    /// Clarabel's own test held to full accuracy.
    pub accurate: bool,
    /// The time limit ended the solve.
    pub timed_out: bool,
    /// Seconds spent.
    pub seconds: f64,
}

/// The conic variables' layout.
struct Layout {
    n: usize,
    d: usize,
    c: usize,
    p: usize,
}

impl Layout {
    fn w(&self, i: usize, k: usize, a: usize) -> usize {
        i * self.d * self.c + k * self.d + a
    }
    fn r(&self, j: usize, k: usize) -> usize {
        self.p * self.d * self.c + k * self.n + j
    }
    fn end(&self) -> usize {
        self.p * self.d * self.c + self.n * self.c
    }
}

/// Solves the vector-output program (gated ReLU) over `patterns` for targets `y` (n × c
/// column-major, one-hot rows for softmax) at λ, to Clarabel tolerance `tol`.
#[allow(clippy::too_many_arguments)]
pub fn solve_exact_outputs(
    x: MatRef<'_, f64>,
    y: &[f64],
    outputs: usize,
    patterns: &PatternSet,
    loss: Loss,
    penalty: OutputPenalty,
    lambda: f64,
    tol: f64,
    time_limit: Option<f64>,
) -> Result<ExactOutputs> {
    let start = Instant::now();
    let (n, d, p, c) = (x.nrows(), x.ncols(), patterns.len(), outputs);
    if y.len() != n * c || patterns.n_samples() != n || c == 0 {
        return Err(Error::InvalidData(format!(
            "the vector-output program needs n × c targets: X has {n} rows, the patterns {} and \
             y {} values for {c} outputs",
            patterns.n_samples(),
            y.len()
        )));
    }
    if !matches!(loss, Loss::Squared | Loss::Softmax) {
        return Err(Error::InvalidSetting(format!(
            "vector outputs take the squared or softmax loss, not {}",
            loss.as_str()
        )));
    }
    let l = Layout { n, d, c, p };
    let mut cp = Conic::default();
    cp.add_variables(l.end(), 0.0);
    // Data rows.
    let data = cp.add_rows(n * c, Cone::Zero(n * c));
    for k in 0..c {
        for j in 0..n {
            let row = data + k * n + j;
            for i in 0..p {
                if patterns.get(j, i) {
                    for a in 0..d {
                        cp.push(row, l.w(i, k, a), x[(j, a)]);
                    }
                }
            }
            cp.push(row, l.r(j, k), -1.0);
            if loss == Loss::Squared {
                cp.b[row] = y[k * n + j];
            }
        }
    }
    let (nf, entries) = (n as f64, (n * c) as f64);
    // Softmax epigraph.
    if loss == Loss::Softmax {
        let e = cp.add_variables(n, 1.0 / nf);
        let a = cp.add_variables(n * c, 0.0);
        for k in 0..c {
            for j in 0..n {
                cp.q[l.r(j, k)] = -y[k * n + j] / nf;
            }
        }
        let sum_rows = cp.add_rows(n, Cone::Nonnegative(n));
        for j in 0..n {
            cp.b[sum_rows + j] = 1.0;
            for k in 0..c {
                cp.push(sum_rows + j, a + k * n + j, 1.0);
            }
        }
        for k in 0..c {
            for j in 0..n {
                let row = cp.add_rows(3, Cone::Exponential);
                cp.push(row, l.r(j, k), -1.0);
                cp.push(row, e + j, 1.0);
                cp.b[row + 1] = 1.0;
                cp.push(row + 2, a + k * n + j, -1.0);
            }
        }
    } else {
        cp.quadratic = (0..n * c)
            .map(|q| (l.r(q % n, q / n), 1.0 / entries))
            .collect();
    }
    // Penalty.
    match penalty {
        OutputPenalty::Separate | OutputPenalty::Group => {
            let piece = if penalty == OutputPenalty::Separate {
                d
            } else {
                d * c
            };
            let groups = p * d * c / piece;
            let t = cp.add_variables(groups, lambda);
            for g in 0..groups {
                let row = cp.add_rows(piece + 1, Cone::SecondOrder(piece + 1));
                cp.push(row, t + g, -1.0);
                for v in 0..piece {
                    // Weights are stored group after group, so piece g is variables g·piece.. .
                    cp.push(row + 1 + v, g * piece + v, -1.0);
                }
            }
        }
        OutputPenalty::Nuclear => {
            for i in 0..p {
                cp.nuclear_norm(d, c, lambda, |a, k| Affine {
                    constant: 0.0,
                    terms: vec![(l.w(i, k, a), 1.0)],
                });
            }
        }
    }
    let sol = cp.solve(tol, 500, time_limit.unwrap_or(f64::INFINITY))?;
    if !sol.solved {
        return Err(Error::Backend(
            "the interior-point solver found no solution of the vector-output program".into(),
        ));
    }
    let weights = Mat::from_fn(d * c, p, |row, i| sol.x[i * d * c + row]);
    Ok(ExactOutputs {
        weights,
        objective: sol.objective,
        dual_objective: sol.dual_objective,
        iterations: sol.iterations,
        accurate: sol.accurate,
        timed_out: sol.timed_out,
        seconds: start.elapsed().as_secs_f64(),
    })
}
