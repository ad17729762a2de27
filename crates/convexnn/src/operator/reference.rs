//! A direct, unblocked implementation of the masked operator: the dense matrix A_D = [D_1X … D_PX]
//! (n × dP), or with two-level masks [M_1X … M_PX], M_i = cI + (1 − c)D_i, used only to test
//! [`super::MaskedOperator`] against.

use faer::{Mat, MatRef};

use crate::features::PatternSet;

/// The explicit matrix `[D_1 X, …, D_P X]`.
pub struct DenseReferenceOperator {
    a: Mat<f64>,
    d: usize,
}

impl DenseReferenceOperator {
    /// Materializes `[D_1 X, …, D_P X]`.
    pub fn new(x: MatRef<'_, f64>, patterns: &PatternSet) -> Self {
        Self::with_off_value(x, patterns, 0.0)
    }

    /// Materializes `[M_1 X, …, M_P X]` with M_i = cI + (1 − c)D_i.
    pub fn with_off_value(x: MatRef<'_, f64>, patterns: &PatternSet, c: f64) -> Self {
        let (n, d, p) = (x.nrows(), x.ncols(), patterns.len());
        let a = Mat::from_fn(n, d * p, |j, col| {
            let (i, k) = (col / d, col % d);
            if patterns.get(j, i) {
                x[(j, k)]
            } else {
                c * x[(j, k)]
            }
        });
        DenseReferenceOperator { a, d }
    }

    /// `Σ_i D_i X u_i` for `u` d × P.
    pub fn apply(&self, u: MatRef<'_, f64>) -> Vec<f64> {
        (0..self.a.nrows())
            .map(|j| {
                (0..self.a.ncols())
                    .map(|c| self.a[(j, c)] * u[(c % self.d, c / self.d)])
                    .sum()
            })
            .collect()
    }

    /// `[Xᵀ D_i r]_i` as d × P.
    pub fn adjoint(&self, r: &[f64]) -> Mat<f64> {
        let p = self.a.ncols() / self.d;
        Mat::from_fn(self.d, p, |k, i| {
            (0..self.a.nrows())
                .map(|j| self.a[(j, i * self.d + k)] * r[j])
                .sum()
        })
    }

    /// ‖A_D‖₂² (largest eigenvalue of A_Dᵀ A_D).
    pub fn norm_squared(&self) -> f64 {
        let s = self
            .a
            .singular_values()
            .expect("svd of a small test matrix");
        s.iter().cloned().fold(0.0, f64::max).powi(2)
    }
}
