//! The floating-point types the solvers run in: `f64` (default, for exact certificates) and `f32`.

use std::fmt::Debug;

/// A real scalar usable by the operator (faer's GEMM) and the solvers.
///
/// Objectives, gaps and certificates are always accumulated and reported in `f64`, whatever `Self` is.
pub trait Real:
    faer::traits::RealField + num_traits::Float + Copy + Send + Sync + Debug + Default + 'static
{
    /// "f32" or "f64", as printed and saved with a model.
    const NAME: &'static str;
    /// Converts from `f64` (rounding for `f32`).
    fn lit(x: f64) -> Self;
    /// Converts to `f64` exactly.
    fn as_f64(self) -> f64;
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    #[inline(always)]
    fn lit(x: f64) -> Self {
        x
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self
    }
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    #[inline(always)]
    fn lit(x: f64) -> Self {
        x as f32
    }
    #[inline(always)]
    fn as_f64(self) -> f64 {
        self as f64
    }
}
