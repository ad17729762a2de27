//! Solvers for the convex programs, and what every solver returns.
//!
//! - [`cd`]: coordinate descent for the squared-loss threshold Lasso, over a popcount Gram matrix of
//!   the bit-packed columns or over a dense matrix.
//! - [`fista`]: restarted FISTA with backtracking line search (docs/programs.md §4a), for unconstrained
//!   programs (gated ReLU, and the inner problems of the augmented Lagrangian).
//! - [`anderson`]: guarded Anderson acceleration of the proximal gradient method
//!   (docs/programs.md (M64)), for the same programs as FISTA.
//! - [`al`]: augmented Lagrangian outer loop for the cone-constrained ReLU program (docs/programs.md §4b).
//! - [`admm`]: ADMM with an exactly factored linear step for the ReLU program (docs/programs.md (M24)).
//! - [`interior`]: a structured interior point (Mehrotra predictor–corrector) for the squared-loss
//!   ReLU program, factoring one P·d system per iteration (docs/programs.md (M61)–(M63)).
//! - [`crossover`]: Newton's method on the optimal face the interior point identifies, for a
//!   certificate at the tolerance where the barrier's conditioning stalls it (docs/programs.md (M69)).
//! - [`woodbury`]: that system through the Woodbury identity over an n × n matrix, refined by
//!   conjugate gradients, when there are fewer samples than P·d/2 (docs/programs.md (M66)).
//! - [`exact`]: the interior-point backend (Clarabel), the reference on small problems (docs/programs.md §4c).
//! - [`exact_l1`]: the same backend for dense ℓ1 programs with a free intercept (1-D dictionaries).
//! - [`mkl`]: gated ReLU as multiple kernel learning, by iterative reweighting with an n × n
//!   Cholesky factorization per step (docs/programs.md (M42)–(M46)); small and moderate n.
//! - [`nuclear`]: the nuclear-norm heuristic with sequential convex relaxation for ReLU networks that fit
//!   the data exactly (docs/programs.md (M37)); a heuristic without a certificate.
//! - [`path`]: a regularization path of decreasing λ with warm starts (docs/programs.md §4f).
//! - [`pdhg`]: restarted primal–dual hybrid gradient for the hinge-loss threshold Lasso.
//! - [`working_set`]: column generation with the interior-point backend for the same linear program.
//! - [`svm`]: the hard-margin linear SVM (dual coordinate ascent) of the Convex-SVM construction.
//!
//! Every solver stops on a certified optimality measure (a duality gap, and for ReLU also the cone
//! violation), never on an iteration count alone, and reports how it ended as a [`Status`].

pub mod admm;
pub mod al;
pub mod anderson;
pub mod bcd;
pub mod cd;
pub mod conic;
pub mod crossover;
pub mod exact;
pub mod exact_l1;
pub mod exact_linear;
pub mod exact_outputs;
pub mod fista;
pub mod interior;
pub mod mkl;
pub mod nuclear;
pub mod path;
pub mod pdhg;
pub mod svm;
pub mod woodbury;
pub mod working_set;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// How a solve ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The stopping test (gap, and cone violation where there are cones) holds at the requested tolerance.
    Converged,
    /// Stopped with a gap or violation above the tolerance but below 1000× it.
    ReducedAccuracy,
    /// Hit the iteration cap before the tolerance.
    MaxIterations,
    /// Hit the time limit before the tolerance.
    TimeLimit,
    /// Stopped by the user (Ctrl-C or an observer); the iterate is the best so far.
    Interrupted,
    /// No progress was possible (line search failed repeatedly).
    Stalled,
    /// A NaN or infinity appeared, or the exact backend reported a numerical failure.
    NumericalError,
}

impl Status {
    /// The name printed and saved (`"converged"`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Converged => "converged",
            Status::ReducedAccuracy => "reduced_accuracy",
            Status::MaxIterations => "max_iterations",
            Status::TimeLimit => "time_limit",
            Status::Interrupted => "interrupted",
            Status::Stalled => "stalled",
            Status::NumericalError => "numerical_error",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One progress record, passed to an [`Observe`]r every few iterations.
#[derive(Clone, Debug)]
pub struct IterRecord {
    /// Iterations so far (inner iterations for the augmented Lagrangian).
    pub iteration: usize,
    /// Outer iteration (augmented Lagrangian), 0 otherwise.
    pub outer: usize,
    /// Objective of the current (feasible where it matters) iterate, in the normalization of docs/programs.md (M3).
    pub objective: f64,
    /// Duality gap of the current iterate (an upper bound on objective − optimum).
    pub gap: f64,
    /// Cone violation (ReLU), 0 for unconstrained programs.
    pub violation: f64,
    /// Seconds since the solve began.
    pub seconds: f64,
}

/// Receives progress; the library itself never prints. Returning `false` from `on_iter` asks the
/// solver to stop (status [`Status::Interrupted`]).
pub trait Observe {
    /// Called every `report_every` iterations.
    fn on_iter(&mut self, record: &IterRecord) -> bool;
}

/// An observer that records nothing.
pub struct Silent;

impl Observe for Silent {
    fn on_iter(&mut self, _: &IterRecord) -> bool {
        true
    }
}

/// A flag that a signal handler (or another thread) sets to interrupt a solve cleanly.
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks running solves to stop at their next check.
    pub fn stop(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    /// Whether a stop was asked for.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// Counters and measures every solver reports alongside its solution.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Info {
    /// How the solve ended.
    pub status: Status,
    /// Objective (docs/programs.md (M3)) of the returned, feasible solution.
    pub objective: f64,
    /// Dual objective of the certificate; `objective − dual_objective = gap ≥ 0`. NaN (null in
    /// JSON) for a heuristic, which has no dual bound.
    #[serde(deserialize_with = "nan_if_null")]
    pub dual_objective: f64,
    /// Duality gap (absolute, in the objective's normalization); NaN (null in JSON) for a heuristic.
    #[serde(deserialize_with = "nan_if_null")]
    pub gap: f64,
    /// Largest cone violation max_{i,j} (−X̃_i v_i)_j₊ of the solver's iterate before feasibility
    /// restoration (ReLU; 0 otherwise).
    pub violation: f64,
    /// Iterations (inner iterations for the augmented Lagrangian, interior-point iterations for
    /// the exact backend).
    pub iterations: usize,
    /// Outer iterations (augmented Lagrangian), 0 otherwise.
    pub outer_iterations: usize,
    /// Operator applications (forward products X U), the fair unit for comparing solvers.
    pub forward_calls: usize,
    /// Adjoint applications (Xᵀ M).
    pub adjoint_calls: usize,
    /// Wall-clock seconds spent in the solver.
    pub seconds: f64,
}

/// Reads a number that JSON may hold as null (how serde_json writes NaN: a measure that does not
/// exist, such as the gap of a heuristic) back as NaN.
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Relative gap used by stopping tests: gap / max(|objective|, 1e-12).
pub fn relative_gap(gap: f64, objective: f64) -> f64 {
    gap / objective.abs().max(1e-12)
}
