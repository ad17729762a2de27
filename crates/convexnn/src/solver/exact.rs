//! placeholder until the interior-point backend lands
use super::Info;
use crate::error::{Error, Result};
use crate::features::PatternSet;
use crate::program::{Formulation, Loss};
use faer::{Mat, MatRef};
#[derive(Clone, Debug, Default)]
pub struct ExactSettings {
    pub tol: f64,
    pub max_iter: u32,
    pub time_limit: Option<f64>,
}
pub struct ExactSolution {
    pub weights: Mat<f64>,
    pub cone_multipliers: Option<Mat<f64>>,
    pub info: Info,
}
pub fn solve_exact(
    _x: MatRef<f64>,
    _y: &[f64],
    _p: &PatternSet,
    _f: Formulation,
    _l: Loss,
    _lambda: f64,
    _s: &ExactSettings,
) -> Result<ExactSolution> {
    Err(Error::Backend("missing".into()))
}
pub fn exact_memory_estimate(n: usize, d: usize, p: usize, _f: Formulation, _l: Loss) -> usize {
    64 * n * d * p
}
