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
pub mod lasso;
pub mod linear;
pub mod outputs;
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
        Loss::Softmax => "(1/n) sum_j [log sum_k exp(yhat_jk) - yhat_j,class(j)]",
    };
    let penalty = match formulation {
        Formulation::Gated => "sum_i ||u_i||",
        Formulation::Relu | Formulation::LeakyRelu { .. } | Formulation::Abs => {
            "sum_i (||v_i|| + ||w_i||)"
        }
        Formulation::Threshold => "sum_i |z_i|",
        Formulation::Linear => "||w||_2",
    };
    let fit = match formulation {
        Formulation::Threshold => fit.replace("yhat", "K z"),
        _ => fit.to_string(),
    };
    format!("{fit} + lambda * {penalty}; the papers' beta = n * lambda")
}

/// Which convex program (and so which network) is trained.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Formulation {
    /// Gated ReLU network, unconstrained group lasso (docs/programs.md (M11)).
    Gated,
    /// ReLU network, cone-constrained group lasso (docs/programs.md (M6)); exact for the non-convex problem
    /// (M5) when the pattern set is complete.
    Relu,
    /// Leaky ReLU network, activation max(z, a z) with slope a in [0, 1): the ReLU program with D_i
    /// replaced by M_i = aI + (1 − a)D_i in the data term (docs/programs.md (M40)).
    LeakyRelu {
        /// The slope a of the activation for z < 0.
        slope: f64,
    },
    /// Absolute-value network, activation |z| = max(z, −z): the ReLU program with D_i replaced by
    /// S_i = 2D_i − I in the data term (docs/programs.md (M40) with a = −1).
    Abs,
    /// Threshold (step) activation network, a Lasso over the 0/1 arrangement columns (M29): the
    /// gated program with X replaced by a column of ones.
    Threshold,
    /// Linear network (identity activation), f(x) = Σ_j (xᵀu_j) α_j: the convex program is a norm
    /// penalty on the end-to-end linear map, λ‖w‖₂ for a fully connected network and, for a
    /// convolutional network with one output weight per patch position, the nuclear norm (M35) or
    /// for the circular one an ℓ1 norm in the Fourier domain (M36) (docs/programs.md §3f). No
    /// activation patterns are involved.
    Linear,
}

impl Formulation {
    /// `"gated"`, `"relu"`, `"leaky_relu"`, `"abs"`, `"threshold"` or `"linear"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Formulation::Gated => "gated",
            Formulation::Relu => "relu",
            Formulation::LeakyRelu { .. } => "leaky_relu",
            Formulation::Abs => "abs",
            Formulation::Threshold => "threshold",
            Formulation::Linear => "linear",
        }
    }

    /// For the networks with a piecewise-linear activation σ(z) = max(z, c z) solved by the
    /// cone-constrained program (M6)/(M40), the slope c for z < 0: 0 (ReLU), a (leaky ReLU) or −1
    /// (absolute value). On the cone K_i, σ(Xu) = M_i X u with M_i = cI + (1 − c)D_i, the diagonal
    /// with 1 where the pattern bit is 1 and c where it is 0. `None` for gated and threshold networks.
    pub fn negative_slope(&self) -> Option<f64> {
        match self {
            Formulation::Relu => Some(0.0),
            Formulation::LeakyRelu { slope } => Some(*slope),
            Formulation::Abs => Some(-1.0),
            Formulation::Gated | Formulation::Threshold | Formulation::Linear => None,
        }
    }

    /// Whether the program is the cone-constrained one (M6)/(M40), with weights [V | W] (d × 2P).
    pub fn is_cone_program(&self) -> bool {
        self.negative_slope().is_some()
    }

    /// The value of the masks M_i where a pattern bit is 0 (1 where it is 1): the negative slope
    /// for the cone programs, 0 (D_i itself) for gated and threshold networks, 1 for the linear
    /// network (whose activation is the identity).
    pub fn mask_off_value(&self) -> f64 {
        match self {
            Formulation::Linear => 1.0,
            f => f.negative_slope().unwrap_or(0.0),
        }
    }

    /// An error unless the settings of the formulation are valid (the leaky slope in [0, 1)).
    pub fn validate(&self) -> crate::error::Result<()> {
        match self {
            Formulation::LeakyRelu { slope } if !(0.0..1.0).contains(slope) => {
                Err(crate::error::Error::InvalidSetting(format!(
                    "the leaky ReLU slope must be in [0, 1), got {slope} (slope 0 is the ReLU; \
                     use the abs model for |z|)"
                )))
            }
            _ => Ok(()),
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
