//! The convex programs: a datafit (loss on the predictions) plus a group penalty, plus the cone
//! constraints for ReLU.
//!
//! # Normalization (the one place it is defined)
//!
//! For one output, every program is written in the normalization of scnn (docs/programs.md (M3)):
//!
//! ```text
//! F(U) = L(ŷ, y) + λ · R(U),   L = (1/(2n))‖ŷ − y‖²  (squared)  or  (1/n) Σ_j log(1 + exp(−y_j ŷ_j))  (logistic)
//! ```
//!
//! with `R(U) = Σ_i ‖u_i‖₂` for gated ReLU (M11) and `R = Σ_i ‖v_i‖₂ + ‖w_i‖₂` for ReLU (M6). The papers
//! write `½‖ŷ − y‖² + β R`; since `n·F = ½‖ŷ − y‖² + nλ R`, the equivalent unnormalized weight is
//! `β = n λ`, and objectives and gaps of the papers are `n` times ours (for the squared loss).

pub mod datafit;
pub mod gated;
pub mod hinge;
pub mod penalty;
pub mod prune;
pub mod relu;
pub mod threshold;

use serde::{Deserialize, Serialize};

pub use datafit::Loss;

/// The objective's normalization in words, printed with every result (see the module docs).
pub fn normalization(formulation: Formulation, loss: Loss) -> String {
    let fit = match loss {
        Loss::Squared => "(1/(2n))||yhat - y||^2",
        Loss::Logistic => "(1/n) sum_j log(1 + exp(-y_j yhat_j))",
        Loss::Hinge => "(1/n) sum_j max(0, 1 - y_j yhat_j)",
    };
    let penalty = match formulation {
        Formulation::Gated => "sum_i ||u_i||",
        Formulation::Relu => "sum_i (||v_i|| + ||w_i||)",
        Formulation::Threshold => "sum_i |z_i|",
    };
    let fit = match formulation {
        Formulation::Threshold => fit.replace("yhat", "K z"),
        _ => fit.to_string(),
    };
    format!("{fit} + lambda * {penalty}; the papers' beta = n * lambda")
}

/// Which convex program (and so which network) is trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Formulation {
    /// Gated ReLU network, unconstrained group lasso (docs/programs.md (M11)).
    Gated,
    /// ReLU network, cone-constrained group lasso (docs/programs.md (M6)); exact for the non-convex problem
    /// (M5) when the pattern set is complete.
    Relu,
    /// Threshold (step) activation network, a Lasso over the 0/1 arrangement columns (M29): the
    /// gated program with X replaced by a column of ones.
    Threshold,
}

impl Formulation {
    /// `"gated"` or `"relu"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Formulation::Gated => "gated",
            Formulation::Relu => "relu",
            Formulation::Threshold => "threshold",
        }
    }

    /// The convex program solved for this network: threshold networks are solved as the gated
    /// program over a column of ones (each group is one coefficient z_i, its norm |z_i|).
    pub fn convex_program(&self) -> Formulation {
        match self {
            Formulation::Threshold => Formulation::Gated,
            f => *f,
        }
    }
}
