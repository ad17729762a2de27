//! Datafits: losses on the prediction vector ŷ, their gradients and the conjugates used by the gap.

use serde::{Deserialize, Serialize};

/// The loss of the datafit (normalizations in [`crate::program`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// (1/(2n))‖ŷ − y‖².
    Squared,
    /// (1/n) Σ_j log(1 + exp(−y_j ŷ_j)), labels ±1 (MATH.md (M23)).
    Logistic,
}
