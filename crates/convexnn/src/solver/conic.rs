//! A conic program under construction in Clarabel's form, `min ½xᵀPx + qᵀx s.t. Ax + s = b, s ∈ K`
//! with a diagonal P, built row by row from triplets, and its interior-point solve. Used by the
//! programs whose cones are assembled piece by piece: the vector-output programs
//! ([`crate::solver::exact_outputs`]) and the nuclear-norm heuristic ([`crate::solver::nuclear`]).
//!
//! Semidefinite cones (for nuclear norms) need Clarabel's `sdp` support, which links a system BLAS
//! and LAPACK: available with the `nuclear` cargo feature, an error without it.

use crate::error::{Error, Result};

/// An affine expression c + Σ coef · x_var.
pub struct Affine {
    /// The constant c.
    pub constant: f64,
    /// (variable, coefficient) pairs.
    pub terms: Vec<(usize, f64)>,
}

impl Affine {
    /// The constant expression c.
    pub fn constant(c: f64) -> Self {
        Affine {
            constant: c,
            terms: vec![],
        }
    }
}

/// One cone block of rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cone {
    /// s = 0 on this many rows.
    Zero(usize),
    /// s ≥ 0 on this many rows.
    Nonnegative(usize),
    /// (t, x) with ‖x‖ ≤ t, of this dimension (1 + len x).
    SecondOrder(usize),
    /// (x, y, z) with y·exp(x/y) ≤ z, y > 0 (three rows).
    Exponential,
    /// The upper triangle (by columns, off-diagonals scaled by √2) of a PSD matrix of this order.
    Semidefinite(usize),
}

/// The number of entries of the triangle of a symmetric matrix of order `order`.
pub fn tri(order: usize) -> usize {
    order * (order + 1) / 2
}

/// The program under construction.
#[derive(Default)]
pub struct Conic {
    /// Row indices of A's entries.
    pub rows: Vec<usize>,
    /// Column indices of A's entries.
    pub cols: Vec<usize>,
    /// A's entries.
    pub vals: Vec<f64>,
    /// Right-hand side, one per row.
    pub b: Vec<f64>,
    /// Linear objective, one per variable (its length is the number of variables).
    pub q: Vec<f64>,
    /// Diagonal entries (variable, value) of P.
    pub quadratic: Vec<(usize, f64)>,
    /// The cone blocks in row order.
    pub cones: Vec<Cone>,
}

/// What a solve returns.
pub struct ConicSolution {
    /// Primal variables.
    pub x: Vec<f64>,
    /// Dual variables (one per row).
    pub z: Vec<f64>,
    /// Primal objective.
    pub objective: f64,
    /// Dual objective.
    pub dual_objective: f64,
    /// Interior-point iterations.
    pub iterations: usize,
    /// Clarabel reported a solution (possibly of reduced accuracy) with finite entries.
    pub solved: bool,
    /// Clarabel's own test held to full accuracy.
    pub accurate: bool,
    /// The time limit ended the solve.
    pub timed_out: bool,
}

impl Conic {
    /// Adds `v` at (row, col) of A (zeros are skipped).
    pub fn push(&mut self, row: usize, col: usize, v: f64) {
        if v != 0.0 {
            self.rows.push(row);
            self.cols.push(col);
            self.vals.push(v);
        }
    }

    /// Appends `count` new variables with objective coefficient `cost`; returns the first index.
    pub fn add_variables(&mut self, count: usize, cost: f64) -> usize {
        let first = self.q.len();
        self.q.resize(first + count, cost);
        first
    }

    /// Appends `count` rows (right-hand side 0) in the cone `cone`; returns the first row.
    pub fn add_rows(&mut self, count: usize, cone: Cone) -> usize {
        let first = self.b.len();
        self.b.resize(first + count, 0.0);
        self.cones.push(cone);
        first
    }

    /// Appends the epigraph rows of weight·‖M‖_* for an r × c matrix M(x) given entrywise: new
    /// variables for the triangles of W₁ (r × r) and W₂ (c × c), objective (weight/2)(tr W₁ + tr W₂),
    /// and the PSD-triangle rows s = svec([[W₁, M], [Mᵀ, W₂]]) (upper triangle by columns,
    /// off-diagonal entries scaled by √2, Clarabel's convention). At the optimum the added objective
    /// is weight·‖M‖_*.
    pub fn nuclear_norm(
        &mut self,
        r: usize,
        c: usize,
        weight: f64,
        entry: impl Fn(usize, usize) -> Affine,
    ) {
        let order = r + c;
        let (w1, w2) = (self.q.len(), self.q.len() + tri(r));
        self.q.resize(w2 + tri(c), 0.0);
        for k in 0..r {
            self.q[w1 + tri(k) + k] = 0.5 * weight;
        }
        for k in 0..c {
            self.q[w2 + tri(k) + k] = 0.5 * weight;
        }
        let base = self.b.len();
        self.b.resize(base + tri(order), 0.0);
        for col in 0..order {
            for row in 0..=col {
                let idx = base + tri(col) + row;
                let scale = if row == col {
                    1.0
                } else {
                    std::f64::consts::SQRT_2
                };
                if col < r {
                    self.push(idx, w1 + tri(col) + row, -scale);
                } else if row >= r {
                    self.push(idx, w2 + tri(col - r) + (row - r), -scale);
                } else {
                    let e = entry(row, col - r);
                    self.b[idx] = scale * e.constant;
                    for (var, coef) in e.terms {
                        self.push(idx, var, -scale * coef);
                    }
                }
            }
        }
        self.cones.push(Cone::Semidefinite(order));
    }

    /// Whether the program has a semidefinite cone (which needs the `nuclear` feature).
    pub fn has_semidefinite(&self) -> bool {
        self.cones
            .iter()
            .any(|c| matches!(c, Cone::Semidefinite(_)))
    }

    /// Solves the program with Clarabel at tolerance `tol` (gap and feasibility), within
    /// `max_iter` iterations and `time_limit` seconds.
    pub fn solve(&self, tol: f64, max_iter: u32, time_limit: f64) -> Result<ConicSolution> {
        use clarabel::algebra::CscMatrix;
        use clarabel::solver::{
            DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
        };
        let nv = self.q.len();
        let a = CscMatrix::new_from_triplets(
            self.b.len(),
            nv,
            self.rows.clone(),
            self.cols.clone(),
            self.vals.clone(),
        );
        let (pi, pv): (Vec<usize>, Vec<f64>) = self.quadratic.iter().cloned().unzip();
        let p = CscMatrix::new_from_triplets(nv, nv, pi.clone(), pi, pv);
        let mut cones: Vec<SupportedConeT<f64>> = Vec::with_capacity(self.cones.len());
        for &c in &self.cones {
            cones.push(match c {
                Cone::Zero(k) => SupportedConeT::ZeroConeT(k),
                Cone::Nonnegative(k) => SupportedConeT::NonnegativeConeT(k),
                Cone::SecondOrder(k) => SupportedConeT::SecondOrderConeT(k),
                Cone::Exponential => SupportedConeT::ExponentialConeT(),
                Cone::Semidefinite(order) => semidefinite(order)?,
            });
        }
        let settings = DefaultSettingsBuilder::default()
            .verbose(false)
            .max_iter(max_iter)
            .time_limit(time_limit)
            .tol_gap_abs(tol)
            .tol_gap_rel(tol)
            .tol_feas(tol)
            .build()
            .map_err(|e| Error::Backend(format!("settings: {e}")))?;
        let mut solver = DefaultSolver::new(&p, &self.q, &a, &self.b, &cones, settings)
            .map_err(|e| Error::Backend(e.to_string()))?;
        solver.solve();
        let sol = &solver.solution;
        let finite = sol.x.iter().all(|v| v.is_finite());
        Ok(ConicSolution {
            x: sol.x.clone(),
            z: sol.z.clone(),
            objective: sol.obj_val,
            dual_objective: sol.obj_val_dual,
            iterations: sol.iterations as usize,
            solved: finite
                && matches!(
                    sol.status,
                    SolverStatus::Solved
                        | SolverStatus::AlmostSolved
                        | SolverStatus::InsufficientProgress
                        | SolverStatus::MaxIterations
                ),
            accurate: finite && sol.status == SolverStatus::Solved,
            timed_out: sol.status == SolverStatus::MaxTime,
        })
    }
}

#[cfg(feature = "nuclear")]
fn semidefinite(order: usize) -> Result<clarabel::solver::SupportedConeT<f64>> {
    Ok(clarabel::solver::SupportedConeT::PSDTriangleConeT(order))
}

#[cfg(not(feature = "nuclear"))]
fn semidefinite(_: usize) -> Result<clarabel::solver::SupportedConeT<f64>> {
    Err(Error::InvalidSetting(
        "this build of convexnn has no semidefinite solver (needed for nuclear norms): rebuild \
         with the `nuclear` feature (it links a system BLAS and LAPACK)"
            .into(),
    ))
}
