//! The interior-point backend (Clarabel) for ℓ1 programs with a dense design, homogeneous linear
//! constraints and an optional free intercept (docs/programs.md (M50)):
//!
//! ```text
//! min_{u, ξ} (1/(2n))‖B u + ξ1 − y‖² + λ Σ_{k penalized} |u_k|   s.t.  G u ≥ 0.
//! ```
//!
//! Two programs of the project have this form: the 1-D dictionary Lasso (M47) (B = the dictionary,
//! every coefficient penalized, no constraints), and the pattern program of 1-D data with free
//! biases (M51) (B = [M_iX, −M_iX]_i, G the cone rows X̃_i, only the slope coordinate of each block
//! penalized). Variables `[u (N) | t (one per penalized k) | r (n) | ξ]`; rows: zero `B u + ξ1 − r = y`,
//! nonnegative `G u ≥ 0`, `t_k − u_k ≥ 0`, `t_k + u_k ≥ 0`; objective `(1/(2n))‖r‖² + λ Σ t_k`.

use std::time::Instant;

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};
use faer::MatRef;

use super::exact::ExactSettings;
use super::Status;
use crate::error::{Error, Result};

/// The data of an ℓ1 program (see the module docs).
pub struct L1Program<'a> {
    /// B, n × N.
    pub design: MatRef<'a, f64>,
    /// y, length n.
    pub targets: &'a [f64],
    /// λ ≥ 0.
    pub lambda: f64,
    /// Which coordinates of u carry the penalty λ|u_k| (length N).
    pub penalized: &'a [bool],
    /// G (m × N) of the constraints G u ≥ 0, if any.
    pub constraints: Option<MatRef<'a, f64>>,
    /// Whether the free intercept ξ is part of the model.
    pub intercept: bool,
}

/// What [`solve_l1_exact`] returns.
#[derive(Clone, Debug)]
pub struct L1Solution {
    /// u.
    pub u: Vec<f64>,
    /// ξ (0 without an intercept).
    pub intercept: f64,
    /// The objective recomputed from (u, ξ).
    pub objective: f64,
    /// Clarabel's primal–dual gap.
    pub gap: f64,
    /// Clarabel's multipliers of the data rows with the sign of the dual point θ of the
    /// normalized program (stationarity in r gives θ = −z there).
    pub theta: Vec<f64>,
    /// Largest constraint violation max_j (−G u)_j₊.
    pub violation: f64,
    /// How the interior-point method ended.
    pub status: Status,
    /// Interior-point iterations.
    pub iterations: usize,
    /// Seconds.
    pub seconds: f64,
}

impl L1Program<'_> {
    fn check(&self) -> Result<()> {
        let (n, nv) = (self.design.nrows(), self.design.ncols());
        if n == 0 || self.targets.len() != n || self.penalized.len() != nv {
            return Err(Error::InvalidData(format!(
                "l1 program: design {n} × {nv}, {} targets and {} penalty flags do not match",
                self.targets.len(),
                self.penalized.len()
            )));
        }
        if self.constraints.is_some_and(|g| g.ncols() != nv) {
            return Err(Error::InvalidData(
                "l1 program: the constraint matrix must have one column per variable".into(),
            ));
        }
        let finite = (0..nv).all(|k| (0..n).all(|i| self.design[(i, k)].is_finite()))
            && self.targets.iter().all(|v| v.is_finite());
        if !(finite && self.lambda.is_finite() && self.lambda >= 0.0) {
            return Err(Error::InvalidData(
                "l1 program: the design, the targets and λ ≥ 0 must be finite".into(),
            ));
        }
        Ok(())
    }

    /// The objective at (u, ξ) and the constraint violation.
    pub fn evaluate(&self, u: &[f64], xi: f64) -> (f64, f64) {
        let (n, nv) = (self.design.nrows(), self.design.ncols());
        let fit: f64 = (0..n)
            .map(|i| {
                let f: f64 = (0..nv).map(|k| self.design[(i, k)] * u[k]).sum::<f64>() + xi;
                0.5 * (f - self.targets[i]).powi(2)
            })
            .sum::<f64>()
            / n as f64;
        let pen: f64 = u
            .iter()
            .zip(self.penalized)
            .filter(|(_, &p)| p)
            .map(|(v, _)| v.abs())
            .sum();
        let violation = self.constraints.map_or(0.0, |g| {
            (0..g.nrows())
                .map(|j| -(0..nv).map(|k| g[(j, k)] * u[k]).sum::<f64>())
                .fold(0.0, f64::max)
        });
        (fit + self.lambda * pen, violation)
    }
}

/// Solves the ℓ1 program by Clarabel (see the module docs). Bad input is an error; how the
/// interior-point method ended is the solution's status.
pub fn solve_l1_exact(p: &L1Program<'_>, settings: &ExactSettings) -> Result<L1Solution> {
    p.check()?;
    let start = Instant::now();
    let (n, nv) = (p.design.nrows(), p.design.ncols());
    let pen: Vec<usize> = (0..nv).filter(|&k| p.penalized[k]).collect();
    let m = p.constraints.map_or(0, |g| g.nrows());
    let (t_off, r_off) = (nv, nv + pen.len());
    let xi_off = r_off + n;
    let n_vars = xi_off + usize::from(p.intercept);
    let n_rows = n + m + 2 * pen.len();
    let (mut ri, mut ci, mut vals) = (Vec::new(), Vec::new(), Vec::new());
    let mut push = |r: usize, c: usize, v: f64| {
        if v != 0.0 {
            ri.push(r);
            ci.push(c);
            vals.push(v);
        }
    };
    let mut b = vec![0.0; n_rows];
    b[..n].copy_from_slice(p.targets);
    for j in 0..n {
        for k in 0..nv {
            push(j, k, p.design[(j, k)]);
        }
        push(j, r_off + j, -1.0);
        if p.intercept {
            push(j, xi_off, 1.0);
        }
    }
    if let Some(g) = p.constraints {
        for j in 0..m {
            for k in 0..nv {
                push(n + j, k, -g[(j, k)]);
            }
        }
    }
    for (i, &k) in pen.iter().enumerate() {
        let row = n + m + 2 * i;
        push(row, t_off + i, -1.0);
        push(row, k, 1.0);
        push(row + 1, t_off + i, -1.0);
        push(row + 1, k, -1.0);
    }
    let a_mat = CscMatrix::new_from_triplets(n_rows, n_vars, ri, ci, vals);
    let mut q = vec![0.0; n_vars];
    q[t_off..r_off].fill(p.lambda);
    let idx: Vec<usize> = (r_off..r_off + n).collect();
    let p_mat =
        CscMatrix::new_from_triplets(n_vars, n_vars, idx.clone(), idx, vec![1.0 / n as f64; n]);
    let mut cones = vec![SupportedConeT::ZeroConeT(n)];
    if m + pen.len() > 0 {
        cones.push(SupportedConeT::NonnegativeConeT(m + 2 * pen.len()));
    }
    let cs = DefaultSettingsBuilder::default()
        .verbose(false)
        .max_iter(settings.max_iter)
        .time_limit(settings.time_limit.unwrap_or(f64::INFINITY))
        .tol_gap_abs(settings.tol)
        .tol_gap_rel(settings.tol)
        .tol_feas(settings.tol)
        .build()
        .map_err(|e| Error::Backend(format!("settings: {e}")))?;
    let mut solver = DefaultSolver::new(&p_mat, &q, &a_mat, &b, &cones, cs)
        .map_err(|e| Error::Backend(e.to_string()))?;
    solver.solve();
    let sol = &solver.solution;
    let clean = |v: f64| if v.is_finite() { v } else { 0.0 };
    let u: Vec<f64> = sol.x[..nv].iter().map(|&v| clean(v)).collect();
    let xi = if p.intercept {
        clean(sol.x[xi_off])
    } else {
        0.0
    };
    let (objective, violation) = p.evaluate(&u, xi);
    let status = match sol.status {
        SolverStatus::Solved => Status::Converged,
        SolverStatus::AlmostSolved => Status::ReducedAccuracy,
        SolverStatus::InsufficientProgress => Status::Stalled,
        SolverStatus::MaxIterations => Status::MaxIterations,
        SolverStatus::MaxTime => Status::TimeLimit,
        _ => Status::NumericalError,
    };
    Ok(L1Solution {
        u,
        intercept: xi,
        objective,
        gap: (sol.obj_val - sol.obj_val_dual).abs(),
        theta: sol.z[..n].iter().map(|&v| -clean(v)).collect(),
        violation,
        status,
        iterations: sol.iterations as usize,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    #[test]
    fn one_variable_lasso_has_the_soft_threshold_solution() {
        // min (1/(2n))‖b u + ξ − y‖² + λ|u| with centered b: u = soft(bᵀy_c/n, λ)/(‖b‖²/n).
        let b = Mat::from_fn(4, 1, |i, _| [1.0, -1.0, 2.0, -2.0][i]);
        let y = [3.0, 1.0, 5.0, -1.0];
        let lam = 0.2;
        let prog = L1Program {
            design: b.as_ref(),
            targets: &y,
            lambda: lam,
            penalized: &[true],
            constraints: None,
            intercept: true,
        };
        let s = solve_l1_exact(&prog, &ExactSettings::default()).unwrap();
        let ybar = 2.0;
        let corr: f64 = (0..4).map(|i| b[(i, 0)] * (y[i] - ybar)).sum::<f64>() / 4.0;
        let curv = 10.0 / 4.0;
        let u = (corr.abs() - lam).max(0.0) * corr.signum() / curv;
        assert_eq!(s.status, Status::Converged);
        assert!((s.u[0] - u).abs() < 1e-7, "{} vs {u}", s.u[0]);
        assert!((s.intercept - ybar).abs() < 1e-7);
        // A constraint −u ≥ 0 forces u = 0 (u > 0 here).
        let g = Mat::from_fn(1, 1, |_, _| -1.0);
        let con = L1Program {
            constraints: Some(g.as_ref()),
            ..prog
        };
        let s = solve_l1_exact(&con, &ExactSettings::default()).unwrap();
        assert!(u > 0.0 && s.u[0].abs() < 1e-7 && s.violation < 1e-7);
    }
}
