//! The Lasso over a dense matrix with an unpenalized intercept (docs/programs.md (M47), (M49)):
//!
//! ```text
//! min_{z, ξ} (1/(2n))‖A z + ξ1 − y‖² + λ‖z‖₁.
//! ```
//!
//! For the squared loss ξ is eliminated exactly: for fixed z the best ξ is mean(y − Az), and the
//! objective becomes (1/(2n))‖A_c z − y_c‖² + λ‖z‖₁ with the centered columns A_c = (I − 11ᵀ/n)A and
//! targets y_c = y − ȳ1. So the program is a plain Lasso on centered data, solved by FISTA with
//! groups of size one (the group penalty Σ_i ‖u_i‖₂ of a 1 × P matrix is ‖z‖₁). Its dual (M49),
//! max θᵀy_c − (n/2)‖θ‖² s.t. ‖A_cᵀθ‖_∞ ≤ λ, gives the certified gap at θ = s(y_c − A_cz)/n,
//! s = min(1, λ/‖A_cᵀ(y_c − A_cz)/n‖_∞), and λ_max = ‖A_cᵀy_c‖_∞/n.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};

use super::penalty::max_column_norm;
use super::Loss;
use crate::solver::fista::Smooth;

/// The centered Lasso (M49) for FISTA: the cache is the prediction vector A_c z.
pub struct InterceptLasso {
    a: Mat<f64>,
    y: Vec<f64>,
    mean_y: f64,
    col_means: Vec<f64>,
    resid: Vec<f64>,
    /// Products with A_c so far.
    pub forward_calls: usize,
    /// Products with A_cᵀ so far.
    pub adjoint_calls: usize,
}

impl InterceptLasso {
    /// The program for the dictionary `a` (n × P) and targets `y`.
    pub fn new(a: MatRef<'_, f64>, y: &[f64]) -> Self {
        let n = a.nrows();
        let nf = n as f64;
        let col_means: Vec<f64> = (0..a.ncols())
            .map(|k| (0..n).map(|i| a[(i, k)]).sum::<f64>() / nf)
            .collect();
        let mean_y = y.iter().sum::<f64>() / nf;
        InterceptLasso {
            a: Mat::from_fn(n, a.ncols(), |i, k| a[(i, k)] - col_means[k]),
            y: y.iter().map(|v| v - mean_y).collect(),
            mean_y,
            col_means,
            resid: vec![0.0; n],
            forward_calls: 0,
            adjoint_calls: 0,
        }
    }

    /// The optimal intercept for coefficients `z` (1 × P): ξ = mean(y − Az) = ȳ − Σ_k mean(A_k) z_k.
    pub fn intercept(&self, z: MatRef<'_, f64>) -> f64 {
        self.mean_y
            - (0..z.ncols())
                .map(|k| self.col_means[k] * z[(0, k)])
                .sum::<f64>()
    }

    /// The objective (M47) at z with its best intercept (equal to (M49)'s).
    pub fn objective(&mut self, z: MatRef<'_, f64>, lambda: f64) -> f64 {
        let mut cache = self.new_cache();
        self.forward(z, &mut cache);
        self.value(&cache) + lambda * (0..z.ncols()).map(|k| z[(0, k)].abs()).sum::<f64>()
    }

    /// λ_max = ‖A_cᵀy_c‖_∞/n: z = 0 (the constant fit ȳ) is optimal iff λ ≥ λ_max.
    pub fn lambda_max(&mut self) -> f64 {
        let zero = vec![0.0; self.y.len()];
        let mut g = Mat::zeros(1, self.a.ncols());
        self.gradient(&zero, g.as_mut());
        max_column_norm(g.as_ref())
    }

    /// The dual value (M49) at any point θ (length n), scaled into feasibility: with
    /// s = min(1, λ/‖A_cᵀθ‖_∞), sθᵀy_c − (n/2)s²‖θ‖², a lower bound on the optimum.
    pub fn dual_at(&self, theta: &[f64], lambda: f64) -> f64 {
        let c = (0..self.a.ncols())
            .map(|k| {
                self.a
                    .col_as_slice(k)
                    .iter()
                    .zip(theta)
                    .map(|(a, t)| a * t)
                    .sum::<f64>()
                    .abs()
            })
            .fold(0.0, f64::max);
        let s = if c > lambda { lambda / c } else { 1.0 };
        let n = theta.len() as f64;
        let ty: f64 = theta.iter().zip(&self.y).map(|(t, y)| t * y).sum();
        let tt: f64 = theta.iter().map(|t| t * t).sum();
        s * ty - 0.5 * n * s * s * tt
    }

    /// Active-set polishing of near-optimal coefficients (docs/programs.md (M49)): with the support
    /// S and signs σ_S of `z`, the Lasso restricted to {z : z_S has signs σ_S, z_{S^c} = 0} is the
    /// quadratic (1/(2n))‖A_Sz_S − y_c‖² + λσ_Sᵀz_S, whose minimum-norm stationary point is
    /// z_S = A_S⁺(y_c − nλ(A_S⁺)ᵀσ_S). When its signs agree with σ_S it is that restricted optimum,
    /// exactly up to rounding; its residual then gives the dual point θ with A_Sᵀθ = λσ_S, which
    /// certifies far smaller gaps than the first-order iterate when the dictionary is ill
    /// conditioned (the objective of an iterate resolves its gradient only to about the square root
    /// of the rounding error). Coordinates whose sign flips leave the support and the solve is
    /// repeated (at most 8 rounds). `None` if no round keeps its signs; the caller keeps the
    /// polished point only if its certified gap is smaller.
    pub fn polish(&self, z: MatRef<'_, f64>, lambda: f64) -> Option<Mat<f64>> {
        let mut support: Vec<usize> = (0..z.ncols()).filter(|&k| z[(0, k)] != 0.0).collect();
        let n = self.y.len();
        let nl = n as f64 * lambda;
        for _ in 0..8 {
            if support.is_empty() {
                return None;
            }
            let a_s = Mat::from_fn(n, support.len(), |i, c| self.a[(i, support[c])]);
            let pinv = crate::network::construct::rank_certificate(a_s.as_ref())
                .ok()?
                .pinv;
            let sigma: Vec<f64> = support.iter().map(|&k| z[(0, k)].signum()).collect();
            // t = y_c − nλ (A_S⁺)ᵀσ, then z_S = A_S⁺ t.
            let t: Vec<f64> = (0..n)
                .map(|i| {
                    self.y[i]
                        - nl * (0..support.len())
                            .map(|c| pinv[(c, i)] * sigma[c])
                            .sum::<f64>()
                })
                .collect();
            let v: Vec<f64> = (0..support.len())
                .map(|c| (0..n).map(|i| pinv[(c, i)] * t[i]).sum())
                .collect();
            let keep: Vec<usize> = (0..support.len())
                .filter(|&c| v[c] * sigma[c] >= 0.0)
                .collect();
            if keep.len() == support.len() {
                let mut out = Mat::zeros(1, z.ncols());
                for (c, &k) in support.iter().enumerate() {
                    out[(0, k)] = v[c];
                }
                return Some(out);
            }
            support = keep.iter().map(|&c| support[c]).collect();
        }
        None
    }

    /// The centered targets y_c.
    pub fn centered_targets(&self) -> &[f64] {
        &self.y
    }

    /// The centered dictionary A_c.
    pub fn centered_matrix(&self) -> MatRef<'_, f64> {
        self.a.as_ref()
    }
}

impl Smooth<f64> for InterceptLasso {
    type Cache = Vec<f64>;

    fn dims(&self) -> (usize, usize) {
        (1, self.a.ncols())
    }

    fn new_cache(&self) -> Vec<f64> {
        vec![0.0; self.y.len()]
    }

    fn forward(&mut self, u: MatRef<'_, f64>, cache: &mut Vec<f64>) {
        self.forward_calls += 1;
        cache.fill(0.0);
        for k in 0..self.a.ncols() {
            let zk = u[(0, k)];
            if zk != 0.0 {
                for (o, a) in cache.iter_mut().zip(self.a.col_as_slice(k)) {
                    *o += zk * a;
                }
            }
        }
    }

    fn extrapolate(&self, out: &mut Vec<f64>, new: &Vec<f64>, old: &Vec<f64>, beta: f64) {
        for ((o, a), b) in out.iter_mut().zip(new).zip(old) {
            *o = a + beta * (a - b);
        }
    }

    fn copy_cache(&self, dst: &mut Vec<f64>, src: &Vec<f64>) {
        dst.copy_from_slice(src);
    }

    fn combine(&self, out: &mut Vec<f64>, parts: &[&Vec<f64>], weights: &[f64]) {
        crate::solver::fista::combine_vecs(out, parts, weights);
    }

    fn value(&self, cache: &Vec<f64>) -> f64 {
        Loss::Squared.value(cache, &self.y)
    }

    /// ∇ = A_cᵀ(A_cz − y_c)/n, as a 1 × P row.
    fn gradient(&mut self, cache: &Vec<f64>, mut grad: MatMut<'_, f64>) {
        self.adjoint_calls += 1;
        Loss::Squared.gradient(cache, &self.y, &mut self.resid);
        for k in 0..self.a.ncols() {
            grad[(0, k)] = self
                .a
                .col_as_slice(k)
                .iter()
                .zip(&self.resid)
                .map(|(a, r)| a * r)
                .sum();
        }
    }

    /// (M49): θ = (y_c − A_cz)/n scaled into ‖A_cᵀθ‖_∞ ≤ λ.
    fn dual_bound(&self, cache: &Vec<f64>, grad: MatRef<'_, f64>, lambda: f64) -> Option<f64> {
        let c = max_column_norm(grad);
        let s = if c > lambda { lambda / c } else { 1.0 };
        Some(Loss::Squared.dual_value(cache, &self.y, s))
    }

    fn lipschitz_estimate(&mut self) -> f64 {
        // ‖A_c‖²/n by power iteration on A_cᵀA_c (the line search corrects an underestimate).
        let (n, p) = (self.a.nrows(), self.a.ncols());
        let mut v = Mat::<f64>::from_fn(p, 1, |k, _| 1.0 + (k % 7) as f64 * 0.1);
        let mut av = Mat::<f64>::zeros(n, 1);
        let mut est = 0.0;
        for _ in 0..30 {
            let nv = v.norm_l2();
            if nv == 0.0 {
                break;
            }
            v = Mat::from_fn(p, 1, |k, _| v[(k, 0)] / nv);
            matmul(
                av.as_mut(),
                Accum::Replace,
                self.a.as_ref(),
                v.as_ref(),
                1.0,
                Par::Seq,
            );
            matmul(
                v.as_mut(),
                Accum::Replace,
                self.a.transpose(),
                av.as_ref(),
                1.0,
                Par::Seq,
            );
            est = v.norm_l2();
        }
        est / n as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn intercept_elimination_matches_the_uncentered_objective() {
        let mut r = Rng::new(3);
        let a = Mat::from_fn(7, 4, |_, _| r.normal() + 2.0);
        let y: Vec<f64> = (0..7).map(|_| r.normal() + 5.0).collect();
        let z = Mat::from_fn(1, 4, |_, k| [0.5, 0.0, -1.0, 2.0][k]);
        let mut lasso = InterceptLasso::new(a.as_ref(), &y);
        let xi = lasso.intercept(z.as_ref());
        let direct: f64 = (0..7)
            .map(|i| {
                let f: f64 = (0..4).map(|k| a[(i, k)] * z[(0, k)]).sum::<f64>() + xi;
                0.5 * (f - y[i]).powi(2)
            })
            .sum::<f64>()
            / 7.0
            + 0.1 * 3.5;
        assert!((lasso.objective(z.as_ref(), 0.1) - direct).abs() < 1e-12);
        // Any other intercept is worse.
        let worse: f64 = (0..7)
            .map(|i| {
                let f: f64 = (0..4).map(|k| a[(i, k)] * z[(0, k)]).sum::<f64>() + xi + 0.1;
                0.5 * (f - y[i]).powi(2)
            })
            .sum::<f64>()
            / 7.0
            + 0.1 * 3.5;
        assert!(worse > direct);
    }

    #[test]
    fn gradient_matches_finite_differences_and_dual_is_below() {
        let mut r = Rng::new(4);
        let a = Mat::from_fn(6, 3, |_, _| r.normal());
        let y: Vec<f64> = (0..6).map(|_| r.normal()).collect();
        let mut lasso = InterceptLasso::new(a.as_ref(), &y);
        let z = Mat::from_fn(1, 3, |_, k| [0.3, -0.2, 0.1][k]);
        let mut cache = lasso.new_cache();
        lasso.forward(z.as_ref(), &mut cache);
        let mut g = Mat::zeros(1, 3);
        lasso.gradient(&cache, g.as_mut());
        for k in 0..3 {
            let h = 1e-6;
            let (mut zp, mut zm) = (z.clone(), z.clone());
            zp[(0, k)] += h;
            zm[(0, k)] -= h;
            let fd =
                (lasso.objective(zp.as_ref(), 0.0) - lasso.objective(zm.as_ref(), 0.0)) / (2.0 * h);
            assert!((fd - g[(0, k)]).abs() < 1e-8);
        }
        let lam = 0.05;
        let d = lasso.dual_bound(&cache, g.as_ref(), lam).unwrap();
        assert!(d <= lasso.objective(z.as_ref(), lam));
        let lmax = lasso.lambda_max();
        assert!(lmax > 0.0);
    }
}
