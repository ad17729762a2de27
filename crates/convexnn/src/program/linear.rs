//! The convex programs of linear networks (docs/programs.md §3f, (M35), (M36)): a two-layer network
//! with the identity activation and weight decay is a linear model whose weight decay becomes a norm
//! of its end-to-end linear map.
//!
//! - Fully connected, f(x) = Σ_j (xᵀu_j) α_j: min_w L(Xw) + λ‖w‖₂ (one group; one neuron reads it out).
//! - Convolutional with one output weight per patch position, f(x) = Σ_j Σ_k (x_kᵀu_j) α_{jk}
//!   (the linear CNN of Pilanci & Ergen 2020, §5): with Z = Σ_j u_j α_jᵀ (h × K),
//!   (M35) min_Z L(Σ_k X_k z_k) + λ‖Z‖_*, whose SVD reads out the filters and output weights.
//! - Circular with a full-size filter (patches = the K = N cyclic shifts of an N-pixel image): the
//!   end-to-end map is w(s) = Σ_k Z[s − k, k], and min{‖Z‖_* : Z ↦ w} = ‖Fw‖₁/√N with the unitary
//!   N-point DFT F (2-D DFT for images), so (M36) min_w L(Xw) + (λ/√N)‖Fw‖₁. In the real Fourier
//!   basis this is a group Lasso with groups of two coefficients (the cosine and sine of one
//!   frequency pair ±f; one coefficient for the self-conjugate frequencies), solved here over scaled
//!   basis columns so that every group has weight one ([`LinearFeatures::fourier`]).
//!
//! All three are min_U L(A vec(U)) + λ R(U) for a dense matrix A and a [`GroupPenalty`] R on the
//! columns of U; [`LinearProblem`] is its smooth part for FISTA.

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef};

use super::penalty::GroupPenalty;
use super::Loss;
use crate::error::{Error, Result};
use crate::features::patches::Convolution;
use crate::solver::fista::Smooth;

/// Which of the three programs of the module docs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LinearForm {
    /// λ‖w‖₂ on the fully connected linear map.
    FullyConnected,
    /// (M35): the nuclear norm of the h × K filter-by-position matrix Z.
    Positions,
    /// (M36): the Fourier-domain ℓ1 norm of a circular full-size filter's linear map.
    Fourier,
}

impl LinearForm {
    /// The program in words, for the certificate.
    pub fn normalization(&self, loss: Loss) -> String {
        let fit = match loss {
            Loss::Logistic => "(1/n) sum_j log(1 + exp(-y_j yhat_j))",
            _ => "(1/(2n))||yhat - y||^2",
        };
        let (pred, penalty) = match self {
            LinearForm::FullyConnected => ("yhat = X w", "||w||_2"),
            LinearForm::Positions => ("yhat = sum_k X_k z_k", "||Z||_* (M35)"),
            LinearForm::Fourier => (
                "yhat = X w",
                "||F w||_1 / sqrt(N), F the unitary DFT of the N-pixel image (M36)",
            ),
        };
        format!("{fit}, {pred}, + lambda * {penalty}; the papers' beta = n * lambda")
    }
}

/// The dense matrix A, the shape of U (`rows` × `groups`) and the penalty of a linear network's
/// program, with what is needed to map U back to the filter-by-position matrix Z.
pub struct LinearFeatures {
    /// A, n × (rows · groups): ŷ = A vec(U) (column-major).
    pub a: Mat<f64>,
    /// Rows of U.
    pub rows: usize,
    /// Columns (groups) of U.
    pub groups: usize,
    /// R, on the columns of U.
    pub penalty: GroupPenalty,
    /// Which program.
    pub form: LinearForm,
    /// The convolution (none for the fully connected network).
    pub conv: Option<Convolution>,
    /// Fourier form: the N × 2G matrix B with w = B vec(U).
    basis: Option<Mat<f64>>,
}

/// The real Fourier basis of `height × width` images as N × 2G columns B (N = height · width): for
/// each frequency pair ±f with f ≠ −f, the columns (√N/√2)·√(2/N)(cos θ_f, sin θ_f), θ_f(t) =
/// 2π(f₁t₁/height + f₂t₂/width); for each self-conjugate f, (√N)·(1/√N)cos θ_f and a zero column.
/// The scaling makes (λ/√N)‖Fw‖₁ = λ Σ_g ‖u_g‖₂ for w = B vec(U) (docs/programs.md (M36)).
fn fourier_basis(height: usize, width: usize) -> Mat<f64> {
    let n = height * width;
    let mut freqs = vec![];
    for f1 in 0..height {
        for f2 in 0..width {
            let (g1, g2) = ((height - f1) % height, (width - f2) % width);
            // Keep f when it is self-conjugate or precedes its conjugate.
            if (f1, f2) <= (g1, g2) {
                freqs.push((f1, f2, (f1, f2) == (g1, g2)));
            }
        }
    }
    let mut b = Mat::zeros(n, 2 * freqs.len());
    for (g, &(f1, f2, selfconj)) in freqs.iter().enumerate() {
        for t1 in 0..height {
            for t2 in 0..width {
                let theta = 2.0
                    * std::f64::consts::PI
                    * ((f1 * t1) as f64 / height as f64 + (f2 * t2) as f64 / width as f64);
                let t = t1 * width + t2;
                if selfconj {
                    b[(t, 2 * g)] = theta.cos();
                } else {
                    b[(t, 2 * g)] = theta.cos();
                    b[(t, 2 * g + 1)] = theta.sin();
                }
            }
        }
    }
    b
}

impl LinearFeatures {
    /// The program of a linear network on the rows of `x`: fully connected without a convolution,
    /// (M36) for a circular full-size filter without a bias ([`Convolution::is_cyclic_shifts`]),
    /// (M35) for any other convolution.
    pub fn new(x: MatRef<'_, f64>, conv: Option<&Convolution>) -> Result<Self> {
        match conv {
            None => Ok(LinearFeatures {
                a: x.to_owned(),
                rows: x.ncols(),
                groups: 1,
                penalty: GroupPenalty::Columns,
                form: LinearForm::FullyConnected,
                conv: None,
                basis: None,
            }),
            Some(c) if c.is_cyclic_shifts() => Self::fourier(x, c),
            Some(c) => Self::positions(x, c),
        }
    }

    /// (M35): A = [X_1 … X_K] (column k·h + r is entry r of patch k), U = vec(Z) as one column.
    pub fn positions(x: MatRef<'_, f64>, conv: &Convolution) -> Result<Self> {
        let p = conv.patches(x)?;
        let (k, h) = (conv.patch_count(), conv.patch_dim());
        let a = Mat::from_fn(x.nrows(), k * h, |j, col| p[(j * k + col / h, col % h)]);
        Ok(LinearFeatures {
            a,
            rows: h * k,
            groups: 1,
            penalty: GroupPenalty::Nuclear { rows: h },
            form: LinearForm::Positions,
            conv: Some(*conv),
            basis: None,
        })
    }

    /// (M36) for a circular full-size filter: A = X B with the scaled real Fourier basis B, U the
    /// 2 × G coefficients of the frequency groups.
    pub fn fourier(x: MatRef<'_, f64>, conv: &Convolution) -> Result<Self> {
        if !conv.is_cyclic_shifts() {
            return Err(Error::InvalidSetting(
                "the Fourier form (M36) needs a circular full-size filter at stride 1 without a \
                 bias"
                    .into(),
            ));
        }
        if x.ncols() != conv.input_dim() {
            return Err(Error::InvalidData(format!(
                "the convolution takes {} pixels per image but the data has {} columns",
                conv.input_dim(),
                x.ncols()
            )));
        }
        let b = fourier_basis(conv.height, conv.width);
        let mut a = Mat::zeros(x.nrows(), b.ncols());
        matmul(
            a.as_mut(),
            Accum::Replace,
            x,
            b.as_ref(),
            1.0,
            faer::get_global_parallelism(),
        );
        Ok(LinearFeatures {
            a,
            rows: 2,
            groups: b.ncols() / 2,
            penalty: GroupPenalty::Columns,
            form: LinearForm::Fourier,
            conv: Some(*conv),
            basis: Some(b),
        })
    }

    /// The end-to-end weights of U read as the network's convex variable: w (d × 1) for the fully
    /// connected network, Z (h × K) for a convolution, with Z[t, k] = w(k + t)/N (indices modulo
    /// the image) in the Fourier form, whose nuclear norm is the penalty (M36).
    pub fn weights(&self, u: MatRef<'_, f64>) -> Mat<f64> {
        let flat = flatten(u);
        match (self.form, &self.conv, &self.basis) {
            (LinearForm::Fourier, Some(c), Some(b)) => {
                let w: Vec<f64> = (0..b.nrows())
                    .map(|t| (0..b.ncols()).map(|q| b[(t, q)] * flat[q]).sum())
                    .collect();
                let (hh, ww) = (c.height, c.width);
                let nf = (hh * ww) as f64;
                Mat::from_fn(hh * ww, hh * ww, |t, k| {
                    let (r, s) = ((k / ww + t / ww) % hh, (k % ww + t % ww) % ww);
                    w[r * ww + s] / nf
                })
            }
            (LinearForm::Positions, Some(c), _) => {
                let h = c.patch_dim();
                Mat::from_fn(h, c.patch_count(), |r, k| flat[k * h + r])
            }
            _ => Mat::from_fn(flat.len(), 1, |r, _| flat[r]),
        }
    }
}

/// vec(U), column-major.
fn flatten(u: MatRef<'_, f64>) -> Vec<f64> {
    (0..u.ncols())
        .flat_map(|q| (0..u.nrows()).map(move |r| u[(r, q)]))
        .collect()
}

/// The smooth part L(A vec(U)) of a linear network's program for FISTA; the cache is ŷ.
pub struct LinearProblem {
    /// The program's matrix, shape and penalty.
    pub features: LinearFeatures,
    rows: usize,
    groups: usize,
    penalty: GroupPenalty,
    y: Vec<f64>,
    loss: Loss,
    resid: Vec<f64>,
    flat: Mat<f64>,
    /// Products with A so far.
    pub forward_calls: usize,
    /// Products with Aᵀ so far.
    pub adjoint_calls: usize,
}

impl LinearProblem {
    /// The program of `features` for targets `y` (±1 labels for the logistic loss).
    pub fn new(features: LinearFeatures, y: &[f64], loss: Loss) -> Self {
        LinearProblem {
            rows: features.rows,
            groups: features.groups,
            penalty: features.penalty,
            flat: Mat::zeros(features.rows * features.groups, 1),
            features,
            y: y.to_vec(),
            loss,
            resid: vec![0.0; y.len()],
            forward_calls: 0,
            adjoint_calls: 0,
        }
    }

    /// The loss.
    pub fn loss(&self) -> Loss {
        self.loss
    }

    /// λ_max = R°(∇f(0)): U = 0 is optimal iff λ ≥ λ_max.
    pub fn lambda_max(&mut self) -> f64 {
        let zero = vec![0.0; self.y.len()];
        let mut g = Mat::zeros(self.rows, self.groups);
        self.gradient(&zero, g.as_mut());
        self.penalty.dual_max(g.as_ref())
    }
}

impl Smooth<f64> for LinearProblem {
    type Cache = Vec<f64>;

    fn dims(&self) -> (usize, usize) {
        (self.rows, self.groups)
    }

    fn new_cache(&self) -> Vec<f64> {
        vec![0.0; self.y.len()]
    }

    fn forward(&mut self, u: MatRef<'_, f64>, cache: &mut Vec<f64>) {
        self.forward_calls += 1;
        for q in 0..self.groups {
            for r in 0..self.rows {
                self.flat[(q * self.rows + r, 0)] = u[(r, q)];
            }
        }
        let mut out = Mat::zeros(cache.len(), 1);
        matmul(
            out.as_mut(),
            Accum::Replace,
            self.features.a.as_ref(),
            self.flat.as_ref(),
            1.0,
            faer::get_global_parallelism(),
        );
        for (c, o) in cache.iter_mut().zip(out.col_as_slice(0)) {
            *c = *o;
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
        self.loss.value(cache, &self.y)
    }

    fn gradient(&mut self, cache: &Vec<f64>, mut grad: MatMut<'_, f64>) {
        self.adjoint_calls += 1;
        self.loss.gradient(cache, &self.y, &mut self.resid);
        let r = MatRef::from_column_major_slice(&self.resid, self.resid.len(), 1);
        matmul(
            self.flat.as_mut(),
            Accum::Replace,
            self.features.a.transpose(),
            r,
            1.0,
            faer::get_global_parallelism(),
        );
        for q in 0..self.groups {
            for row in 0..self.rows {
                grad[(row, q)] = self.flat[(q * self.rows + row, 0)];
            }
        }
    }

    /// θ = −∇L(ŷ), s = min(1, λ / R°(Aᵀθ)), bound = the dual value at sθ.
    fn dual_bound(&self, cache: &Vec<f64>, grad: MatRef<'_, f64>, lambda: f64) -> Option<f64> {
        let c = self.penalty.dual_max(grad);
        let s = if c > lambda { lambda / c } else { 1.0 };
        Some(self.loss.dual_value(cache, &self.y, s))
    }

    fn lipschitz_estimate(&mut self) -> f64 {
        // ‖A‖₂² by power iteration on AᵀA.
        let a = &self.features.a;
        let m = a.ncols();
        let mut v = Mat::from_fn(m, 1, |i, _| 1.0 + (i % 7) as f64 * 0.1);
        let mut norm2 = 0.0;
        for _ in 0..30 {
            let av = a * &v;
            let atav = a.transpose() * &av;
            let nrm = atav.norm_l2();
            if nrm == 0.0 {
                return 1e-12;
            }
            norm2 = nrm / v.norm_l2();
            v = atav * faer::Scale(1.0 / nrm);
        }
        self.loss.curvature() * norm2 / self.y.len() as f64
    }

    fn penalty(&self) -> GroupPenalty {
        self.penalty
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// ‖Fw‖₁/√N computed from the definition of the unitary DFT (1-D or 2-D).
    fn dft_l1(w: &[f64], height: usize, width: usize) -> f64 {
        let n = (height * width) as f64;
        let mut total = 0.0;
        for f1 in 0..height {
            for f2 in 0..width {
                let (mut re, mut im) = (0.0, 0.0);
                for t1 in 0..height {
                    for t2 in 0..width {
                        let th = 2.0
                            * std::f64::consts::PI
                            * ((f1 * t1) as f64 / height as f64 + (f2 * t2) as f64 / width as f64);
                        re += w[t1 * width + t2] * th.cos();
                        im -= w[t1 * width + t2] * th.sin();
                    }
                }
                total += (re * re + im * im).sqrt() / n.sqrt();
            }
        }
        total / n.sqrt()
    }

    #[test]
    fn fourier_groups_carry_the_dft_l1_norm_and_the_nuclear_norm_of_z() {
        let mut rng = Rng::new(3);
        for (h, w) in [(1, 8), (1, 7), (3, 4)] {
            let conv = Convolution::circular_full(h, w);
            let x = Mat::from_fn(2, h * w, |_, _| rng.normal());
            let f = LinearFeatures::fourier(x.as_ref(), &conv).unwrap();
            let u = Mat::from_fn(2, f.groups, |r, g| {
                // Self-conjugate groups have a zero second column: leave that entry 0.
                if r == 1 && f.basis.as_ref().unwrap().col(2 * g + 1).norm_l2() == 0.0 {
                    0.0
                } else {
                    rng.normal()
                }
            });
            let z = f.weights(u.as_ref());
            let b = f.basis.as_ref().unwrap();
            let wv: Vec<f64> = (0..h * w)
                .map(|t| {
                    (0..2 * f.groups)
                        .map(|q| b[(t, q)] * u[(q % 2, q / 2)])
                        .sum()
                })
                .collect();
            let pen = GroupPenalty::Columns.value(u.as_ref());
            assert!((dft_l1(&wv, h, w) - pen).abs() < 1e-9 * pen, "{h}x{w}");
            let nuc = GroupPenalty::Nuclear { rows: h * w }.group_value(&flatten(z.as_ref()));
            assert!((nuc - pen).abs() < 1e-9 * pen, "{h}x{w}: {nuc} vs {pen}");
            // Σ_k x_kᵀ z_k over the cyclic shifts equals xᵀw.
            let p = LinearFeatures::positions(x.as_ref(), &conv).unwrap();
            let zf = flatten(z.as_ref());
            for j in 0..2 {
                let lhs: f64 = (0..zf.len()).map(|c| p.a[(j, c)] * zf[c]).sum();
                let rhs: f64 = (0..h * w).map(|t| x[(j, t)] * wv[t]).sum();
                assert!((lhs - rhs).abs() < 1e-9 * (1.0 + rhs.abs()));
            }
        }
    }

    #[test]
    fn gradient_matches_finite_differences_and_duality_is_weak() {
        let mut rng = Rng::new(5);
        let conv = Convolution::square(4, 2, 1);
        let x = Mat::from_fn(7, 16, |_, _| rng.normal());
        let y: Vec<f64> = (0..7).map(|_| rng.normal().signum()).collect();
        for loss in [Loss::Squared, Loss::Logistic] {
            let f = LinearFeatures::new(x.as_ref(), Some(&conv)).unwrap();
            let (rows, groups) = (f.rows, f.groups);
            let mut prob = LinearProblem::new(f, &y, loss);
            let u = Mat::from_fn(rows, groups, |_, _| 0.3 * rng.normal());
            let mut cache = prob.new_cache();
            prob.forward(u.as_ref(), &mut cache);
            let mut g = Mat::zeros(rows, 1);
            prob.gradient(&cache, g.as_mut());
            for r in [0, 5, 17] {
                let eps = 1e-6;
                let mut up = u.clone();
                up[(r, 0)] += eps;
                let mut c2 = prob.new_cache();
                prob.forward(up.as_ref(), &mut c2);
                let fd = (prob.value(&c2) - prob.value(&cache)) / eps;
                assert!((fd - g[(r, 0)]).abs() < 1e-4, "{loss:?} {fd} {}", g[(r, 0)]);
            }
            let (obj, dual) = prob.certify(u.as_ref(), 1e-2);
            assert!(dual <= obj + 1e-12);
        }
    }
}
