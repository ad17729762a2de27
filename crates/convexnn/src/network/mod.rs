//! The non-convex networks read back out of a convex solution (docs/programs.md §2–3), their predictions and
//! their weight-decay objectives (M5), (M38).
//!
//! - ReLU: f(x) = Σ_j (xᵀu_j)₊ α_j. From (M6): each v_i ≠ 0 gives (u, α) = (v_i/√‖v_i‖, √‖v_i‖), each
//!   w_i ≠ 0 gives (w_i/√‖w_i‖, −√‖w_i‖) (Pilanci & Ergen 2020, eq. (6) of the report). Then
//!   (λ/2)(‖u‖² + α²) = λ‖v_i‖ and, on the training data, (Xu)₊α = ±D_iXv_i, so the non-convex objective
//!   equals the convex one.
//! - Leaky ReLU and absolute value (M40): f(x) = Σ_j σ(xᵀu_j) α_j with σ(z) = max(z, c z), c = a or
//!   −1, read out exactly as for ReLU: on the training data σ(Xu)α = ±M_iXv_i (cone constraint and
//!   positive homogeneity).
//! - Gated ReLU: f(x) = Σ_j 1[xᵀg_j ≥ 0] (xᵀw_j) α_j with fixed gates g_j; from (M11) w = u_i/√‖u_i‖,
//!   α = √‖u_i‖.
//! - Threshold: f(x) = Σ_j s_j 1[xᵀh_j ≥ 0] α_j with trainable amplitudes s_j (Ergen et al. 2023,
//!   eq. (1)–(2)); from the Lasso (M29), a coefficient z_k ≠ 0 gives h = any gate realizing the k-th
//!   column, s = √|z_k|, α = sign(z_k)√|z_k|, so that (λ/2)(s² + α²) = λ|z_k|. The hidden weights h are
//!   not penalized (their scale does not change 1[·]).
//! - Convolutional (any of the above but threshold, with [`Network::conv`] set): the neurons are
//!   filters applied to each of an image's K patches x_k and averaged, f(x) = (1/K) Σ_k Σ_j σ(x_kᵀu_j)α_j
//!   (docs/programs.md (M35)–(M35c)); read out of the pooled program exactly as above, since the cone
//!   constraints hold on every patch.
//! - Linear networks (identity activation; docs/programs.md §3f): fully connected,
//!   f(x) = Σ_j (xᵀu_j) α_j, or convolutional with one output weight per patch position,
//!   f(x) = Σ_j Σ_k (x_kᵀu_j) α_{jk} (no pooling: [`Network::output`] holds K weights per neuron).
//!   Read out of the convex weights Z = Σ_j u_j α_jᵀ by its SVD, one neuron (√σ a, √σ b) per
//!   singular value, so that (λ/2)Σ_j(‖u_j‖² + ‖α_j‖²) = λ‖Z‖_* (M35).
//! - 1-D dictionary networks (docs/programs.md (M47)–(M50)): scalar input x, neuron j computes
//!   σ(w_j x + b_j) with an *unpenalized* bias b_j ([`Network::bias`]), and the output adds an
//!   unpenalized intercept ξ ([`Network::intercept`]); the weight decay acts on w_j and α_j only.

pub mod construct;
pub mod narrow;
pub mod sgd;
pub mod ste;

use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::features::deep::DeepArrangement;
use crate::features::patches::Convolution;
use crate::features::PatternSet;
use crate::program::{Formulation, Loss};

/// A two-layer network. A bias input column, if any, is part of x and its weight is penalized like
/// the others; the 1-D dictionary networks instead carry unpenalized neuron biases and an unpenalized
/// output intercept (both absent, i.e. zero, elsewhere; model files without them still load).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Network {
    /// The network's kind (gated ReLU, ReLU, leaky ReLU with its slope, abs, threshold).
    pub kind: Formulation,
    /// Hidden weights u_j, one vector of length d per neuron.
    pub hidden: Vec<Vec<f64>>,
    /// Output weights α_j: one number per neuron, or with c = [`Network::outputs`] > 1 outputs the
    /// vectors α_j ∈ ℝᶜ one after the other (entry j·c + k is neuron j's weight on output k).
    pub output: Vec<f64>,
    /// Number of outputs c (absent in the file: 1). Vector-output networks share their hidden
    /// neurons across the outputs, f(x) = Σ_j σ_j(x) α_j ∈ ℝᶜ (docs/programs.md §3e).
    #[serde(default = "one_output", skip_serializing_if = "is_one_output")]
    pub outputs: usize,
    /// Gates g_j (gated ReLU only; `None` when the model was trained from masks without gates).
    pub gates: Option<Vec<Vec<f64>>>,
    /// Amplitudes s_j of the threshold activations s·1[z ≥ 0] (threshold networks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amplitude: Option<Vec<f64>>,
    /// Deep threshold networks: the hidden layers, and for each neuron j the unit of the last layer
    /// whose 0/1 output it scales (`hidden` is then empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deep: Option<DeepThreshold>,
    /// Unpenalized neuron biases b_j: neuron j sees xᵀu_j + b_j (1-D dictionary networks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<Vec<f64>>,
    /// Unpenalized output intercept ξ added to every prediction (1-D dictionary networks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intercept: Option<f64>,
    /// Convolutional networks: the patch geometry. The hidden weights are then filters of length
    /// h (the patch size), applied to every patch of an image and averaged (global average pooling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conv: Option<Convolution>,
    /// Deep narrow ReLU networks on scalar inputs (docs/programs.md (M59)): neuron j is a chain of
    /// width-one ReLU layers with unpenalized biases, scaled by `output[j]` (`hidden` is then
    /// empty; the weight decay is (λ/L)Σ|weights|^L).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chains: Option<Vec<narrow::ChainUnit>>,
}

fn one_output() -> usize {
    1
}

fn is_one_output(c: &usize) -> bool {
    *c == 1
}

/// Images per chunk when a convolutional network predicts (bounds the patch matrix held at once).
const PREDICT_CHUNK: usize = 1024;

/// The hidden layers of a deep threshold network (Ergen et al. 2023, eq. (10)): neuron j of the
/// output sums s_j α_j times the output of unit `units[j]` of the last hidden layer.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeepThreshold {
    /// Hidden layers, first to last.
    pub layers: DeepArrangement,
    /// For each neuron, its unit in the last layer.
    pub units: Vec<usize>,
}

/// X Wᵀ (n × m) for the weight vectors `w` (each of length d).
fn image(x: MatRef<'_, f64>, w: &[Vec<f64>]) -> Mat<f64> {
    let wm = Mat::from_fn(x.ncols(), w.len(), |k, j| w[j][k]);
    let mut out = Mat::zeros(x.nrows(), w.len());
    faer::linalg::matmul::matmul(
        out.as_mut(),
        faer::Accum::Replace,
        x,
        wm.as_ref(),
        1.0,
        faer::Par::Seq,
    );
    out
}

/// The piecewise-linear activation σ(z) = z for z ≥ 0 and c z below (c = 0 ReLU, a leaky ReLU,
/// −1 absolute value; max(z, c z) for c ≤ 1).
pub fn activation(c: f64, z: f64) -> f64 {
    if z >= 0.0 {
        z
    } else {
        c * z
    }
}

fn norm(a: &[f64]) -> f64 {
    a.iter().map(|v| v * v).sum::<f64>().sqrt()
}

impl Network {
    /// Reads the network out of a convex solution: `weights` is d × P (gated) or d × 2P = [V | W]
    /// (ReLU); `gates` (d × P) are the gates of the patterns. Zero groups give no neuron.
    pub fn from_convex(
        kind: Formulation,
        weights: MatRef<'_, f64>,
        gates: Option<MatRef<'_, f64>>,
    ) -> Self {
        if kind == Formulation::Threshold {
            return Self::threshold_from_lasso(weights, gates);
        }
        let d = weights.nrows();
        let p = if kind.is_cone_program() {
            weights.ncols() / 2
        } else {
            weights.ncols()
        };
        let (mut hidden, mut output, mut gate_list) = (vec![], vec![], vec![]);
        for c in 0..weights.ncols() {
            let u: Vec<f64> = (0..d).map(|k| weights[(k, c)]).collect();
            let nu = norm(&u);
            if nu == 0.0 {
                continue;
            }
            let s = nu.sqrt();
            hidden.push(u.iter().map(|v| v / s).collect());
            output.push(if c < p { s } else { -s });
            if let Some(g) = gates {
                gate_list.push((0..d).map(|k| g[(k, c % p)]).collect());
            }
        }
        let gates = match kind {
            Formulation::Gated if gates.is_some() => Some(gate_list),
            _ => None,
        };
        Network::plain(kind, hidden, output, gates)
    }

    /// A fully connected two-layer network with one output: hidden weights, output weights and
    /// gates (gated ReLU) as given; no amplitudes, deep layers, biases, intercept or convolution.
    pub fn plain(
        kind: Formulation,
        hidden: Vec<Vec<f64>>,
        output: Vec<f64>,
        gates: Option<Vec<Vec<f64>>>,
    ) -> Self {
        Network {
            kind,
            hidden,
            output,
            gates,
            amplitude: None,
            deep: None,
            bias: None,
            intercept: None,
            conv: None,
            chains: None,
            outputs: 1,
        }
    }

    /// The linear network of the convex weights `z` (docs/programs.md §3f): d × 1 (w, fully
    /// connected, `conv` None) or h × K (the filter-by-position matrix Z of a convolution). Each
    /// singular value σ > 1e-12 σ_max of Z gives one neuron, filter √σ a and output weights √σ b
    /// (one per patch position), so the network computes Σ_k x_kᵀ z_k and its weight decay is
    /// λ‖Z‖_* (λ‖w‖₂ for one column).
    pub fn from_linear(z: MatRef<'_, f64>, conv: Option<Convolution>) -> Self {
        let (mut hidden, mut output) = (vec![], vec![]);
        if let Ok(svd) = z.thin_svd() {
            let s = svd.S().column_vector();
            let top = (0..s.nrows()).map(|r| s[r]).fold(0.0, f64::max);
            for r in 0..s.nrows() {
                if s[r] > 1e-12 * top && s[r].is_finite() {
                    let scale = s[r].sqrt();
                    hidden.push((0..z.nrows()).map(|t| scale * svd.U()[(t, r)]).collect());
                    output.extend((0..z.ncols()).map(|k| scale * svd.V()[(k, r)]));
                }
            }
        }
        Network::plain(Formulation::Linear, hidden, output, None).with_convolution(conv)
    }

    /// A 1-D network with free biases from the dictionary Lasso (M47) (docs/programs.md (M50)): each
    /// coefficient z_k ≠ 0 of the column σ(s(x − x_j)) gives one neuron. For ReLU, leaky ReLU and |z|
    /// it is w = s√|z_k|, b = −s√|z_k| x_j, α = sign(z_k)√|z_k|, so σ(wx + b)α = z_k σ(s(x − x_j)) by
    /// positive homogeneity and (λ/2)(w² + α²) = λ|z_k|. For threshold networks the step does not
    /// see the scale of (w, b): w = s, b = −s x_j, amplitude √|z_k| and α = sign(z_k)√|z_k|, the
    /// penalty (λ/2)(amplitude² + α²) = λ|z_k|. `intercept` is the free output bias ξ.
    pub fn from_dictionary(
        kind: Formulation,
        atoms: &[crate::features::dictionary::Atom],
        z: &[f64],
        intercept: f64,
    ) -> Self {
        let threshold = kind == Formulation::Threshold;
        let (mut hidden, mut bias, mut output, mut amplitude) = (vec![], vec![], vec![], vec![]);
        for (a, &c) in atoms.iter().zip(z) {
            if c == 0.0 {
                continue;
            }
            let r = c.abs().sqrt();
            let scale = if threshold { 1.0 } else { r };
            hidden.push(vec![a.sign * scale]);
            bias.push(-a.sign * scale * a.knot);
            output.push(c.signum() * r);
            amplitude.push(r);
        }
        Network {
            kind,
            hidden,
            output,
            gates: None,
            amplitude: threshold.then_some(amplitude),
            deep: None,
            bias: Some(bias),
            intercept: Some(intercept),
            conv: None,
            chains: None,
            outputs: 1,
        }
    }

    /// A ReLU network from hidden weights (m × d, row j is u_jᵀ) and output weights α, each neuron
    /// rescaled to (t u_j, α_j / t) with t = √(|α_j| / ‖u_j‖): the same function (t > 0) with the
    /// least weight decay (λ/2)(‖u‖² + α²) = λ‖u‖|α| (docs/programs.md §2, rescaling). Neurons with
    /// u_j = 0 or α_j = 0 compute zero and are dropped.
    pub fn relu_balanced(hidden: MatRef<'_, f64>, output: &[f64]) -> Self {
        let (mut h, mut o) = (vec![], vec![]);
        for (j, &a) in output.iter().enumerate() {
            let u: Vec<f64> = (0..hidden.ncols()).map(|c| hidden[(j, c)]).collect();
            let nu = norm(&u);
            if nu == 0.0 || a == 0.0 || !(nu.is_finite() && a.is_finite()) {
                continue;
            }
            let t = (a.abs() / nu).sqrt();
            h.push(u.iter().map(|v| v * t).collect());
            o.push(a / t);
        }
        Network {
            kind: Formulation::Relu,
            hidden: h,
            output: o,
            gates: None,
            amplitude: None,
            deep: None,
            bias: None,
            intercept: None,
            conv: None,
            chains: None,
            outputs: 1,
        }
    }

    /// A deep threshold network from Lasso coefficients `z` (1 × P) over the last-layer patterns of
    /// `layers` (as deduplicated in `patterns`, on the training rows `x`).
    pub fn deep_threshold(
        layers: DeepArrangement,
        patterns: &PatternSet,
        x: MatRef<'_, f64>,
        z: MatRef<'_, f64>,
    ) -> Self {
        let last = layers.last_patterns(x);
        let mut net = Self::threshold_from_lasso(z, None);
        net.hidden = vec![];
        net.deep = Some(DeepThreshold {
            units: (0..z.ncols())
                .filter(|&c| z[(0, c)] != 0.0)
                .map(|c| {
                    let col = patterns.column(c);
                    last.iter().position(|p| *p == col).unwrap_or(0)
                })
                .collect(),
            layers,
        });
        net
    }

    /// A three-layer threshold network on a random lift (see [`construct`]): `layers` holds the
    /// frozen random layer and one unit per coefficient; coefficient c_k gives the amplitude
    /// s_k = √|c_k| and output weight α_k = sign(c_k)√|c_k| of unit k (so (λ/2)(s² + α²) = λ|c_k|).
    pub fn lifted_threshold(layers: DeepArrangement, coefficients: &[f64]) -> Self {
        let z = Mat::from_fn(1, coefficients.len(), |_, k| coefficients[k]);
        let mut net = Self::threshold_from_lasso(z.as_ref(), None);
        net.hidden = vec![];
        net.deep = Some(DeepThreshold {
            units: (0..coefficients.len())
                .filter(|&k| coefficients[k] != 0.0)
                .collect(),
            layers,
        });
        net
    }

    /// A threshold network from Lasso coefficients `z` (1 × P) and the gates (d × P) of the columns.
    /// Without gates the network has no hidden weights and cannot predict.
    fn threshold_from_lasso(z: MatRef<'_, f64>, gates: Option<MatRef<'_, f64>>) -> Self {
        let (mut hidden, mut output, mut amplitude) = (vec![], vec![], vec![]);
        for c in 0..z.ncols() {
            let v = z[(0, c)];
            if v == 0.0 {
                continue;
            }
            let s = v.abs().sqrt();
            amplitude.push(s);
            output.push(v.signum() * s);
            if let Some(g) = gates {
                hidden.push((0..g.nrows()).map(|k| g[(k, c)]).collect());
            }
        }
        let complete = hidden.len() == output.len();
        Network {
            kind: Formulation::Threshold,
            hidden: if complete { hidden } else { vec![] },
            output,
            gates: None,
            amplitude: Some(amplitude),
            deep: None,
            bias: None,
            intercept: None,
            conv: None,
            chains: None,
            outputs: 1,
        }
    }

    /// Number of neurons m.
    pub fn width(&self) -> usize {
        self.output.len() / self.output_weights_per_neuron()
    }

    /// Output weights per neuron: c, or the K patch positions of a linear convolutional network.
    fn output_weights_per_neuron(&self) -> usize {
        match (self.kind, &self.conv) {
            (Formulation::Linear, Some(c)) => c.patch_count().max(1),
            _ => self.outputs.max(1),
        }
    }

    /// Input dimension d (0 for an empty network); for a convolutional network the patch size h.
    pub fn input_dim(&self) -> usize {
        self.hidden.first().map_or(0, |u| u.len())
    }

    /// The same network with the patch geometry `conv` (a convolutional network whose filters are
    /// the hidden weights).
    pub fn with_convolution(mut self, conv: Option<Convolution>) -> Self {
        self.conv = conv;
        self
    }

    /// Predictions f(x) for each row of `x`. A gated network needs its gates, a threshold network
    /// its hidden weights. A convolutional network takes images (one per row) and averages its
    /// outputs on their patches. With c > 1 outputs the n × c predictions come column-major (output
    /// k in entries k·n .. (k+1)·n); [`Network::predict_outputs`] gives them as a matrix.
    pub fn predict(&self, x: MatRef<'_, f64>) -> Result<Vec<f64>> {
        let out = self.predict_outputs(x)?;
        Ok((0..out.ncols())
            .flat_map(|k| out.col_as_slice(k).to_vec())
            .collect())
    }

    /// Predictions as an n × c matrix (c = [`Network::outputs`]).
    pub fn predict_outputs(&self, x: MatRef<'_, f64>) -> Result<Mat<f64>> {
        if let Some(units) = &self.chains {
            let f = narrow::predict(self, units, x)?;
            return Ok(Mat::from_fn(f.len(), 1, |i, _| f[i]));
        }
        let Some(conv) = &self.conv else {
            return self.predict_rows(x);
        };
        if self.kind == Formulation::Threshold || self.deep.is_some() {
            return Err(Error::InvalidSetting(
                "convolutional threshold networks are not implemented".into(),
            ));
        }
        if self.kind == Formulation::Linear {
            return self.predict_positions(conv, x);
        }
        let (k, c) = (conv.patch_count(), self.outputs.max(1));
        let mut out = Mat::zeros(x.nrows(), c);
        for start in (0..x.nrows()).step_by(PREDICT_CHUNK) {
            let len = PREDICT_CHUNK.min(x.nrows() - start);
            let patches = conv.patches(x.subrows(start, len))?;
            let rows = self.predict_rows(patches.as_ref())?;
            for o in 0..c {
                for (i, g) in rows.col_as_slice(o).chunks_exact(k).enumerate() {
                    out[(start + i, o)] = g.iter().sum::<f64>() / k as f64;
                }
            }
        }
        Ok(out)
    }

    /// Predictions (n × 1) of a linear convolutional network, Σ_j Σ_k (x_kᵀu_j) α_{jk}.
    fn predict_positions(&self, conv: &Convolution, x: MatRef<'_, f64>) -> Result<Mat<f64>> {
        let (k, h, m) = (conv.patch_count(), conv.patch_dim(), self.width());
        if self.outputs.max(1) != 1
            || self.output.len() != m * k
            || self.hidden.len() != m
            || self.hidden.iter().any(|u| u.len() != h)
        {
            return Err(Error::InvalidData(format!(
                "a linear convolutional network with {k} patch positions of {h} entries needs {k} output weights per neuron and filters of length {h}: this one has {} filters and {} output weights",
                self.hidden.len(),
                self.output.len()
            )));
        }
        let mut out = Mat::zeros(x.nrows(), 1);
        for start in (0..x.nrows()).step_by(PREDICT_CHUNK) {
            let len = PREDICT_CHUNK.min(x.nrows() - start);
            let patches = conv.patches(x.subrows(start, len))?;
            let z = image(patches.as_ref(), &self.hidden);
            for i in 0..len {
                out[(start + i, 0)] = (0..m)
                    .map(|j| {
                        (0..k)
                            .map(|p| z[(i * k + p, j)] * self.output[j * k + p])
                            .sum::<f64>()
                    })
                    .sum();
            }
        }
        Ok(out)
    }

    /// Predictions (n × c) of the fully connected network on each row of `x` (for a convolutional
    /// network, on each patch).
    fn predict_rows(&self, x: MatRef<'_, f64>) -> Result<Mat<f64>> {
        if let Some(deep) = &self.deep {
            let inputs = deep
                .layers
                .layers
                .first()
                .and_then(|l| l.first())
                .map_or(x.ncols(), |u| u.weights.len());
            if inputs != x.ncols() {
                return Err(Error::InvalidData(format!(
                    "the network takes {inputs} inputs but the data has {} columns",
                    x.ncols()
                )));
            }
            let yhat = self.predict_deep(deep, x);
            return Ok(Mat::from_fn(x.nrows(), 1, |r, _| yhat[r]));
        }
        let missing = match self.kind {
            Formulation::Gated => self.gates.is_none(),
            Formulation::Threshold => self.hidden.len() != self.width(),
            _ => false,
        };
        if missing && self.width() > 0 {
            return Err(Error::InvalidSetting(format!(
                "this {} model was trained from pattern masks without gates, so it cannot \
                 predict on data: train it with --gates or sampled patterns",
                self.kind.as_str()
            )));
        }
        if self.width() > 0 && x.ncols() != self.input_dim() {
            return Err(Error::InvalidData(format!(
                "the network takes {} inputs but the data has {} columns",
                self.input_dim(),
                x.ncols()
            )));
        }
        if self.bias.as_ref().is_some_and(|b| b.len() != self.width()) {
            return Err(Error::InvalidData(format!(
                "the network has {} neurons but {} biases",
                self.width(),
                self.bias.as_ref().map_or(0, Vec::len)
            )));
        }
        let c = self.outputs.max(1);
        if self.output.len() != self.width() * c || self.hidden.len() > self.width() {
            return Err(Error::InvalidData(format!(
                "the network has {} output weights for {} outputs and {} hidden neurons",
                self.output.len(),
                c,
                self.hidden.len()
            )));
        }
        let ones = vec![1.0; self.width()];
        let amp = self.amplitude.as_deref().unwrap_or(&ones);
        let zeros = vec![0.0; self.width()];
        let bias = self.bias.as_deref().unwrap_or(&zeros);
        let intercept = self.intercept.unwrap_or(0.0);
        // Pre-activations Z = X Uᵀ (and the gates' G = X Gᵀ) as matrix products.
        let z = image(x, &self.hidden);
        let gz = match (self.kind, &self.gates) {
            (Formulation::Gated, Some(g)) => Some(image(x, g)),
            _ => None,
        };
        let mut out = Mat::from_fn(x.nrows(), c, |_, _| intercept);
        for r in 0..x.nrows() {
            for j in 0..self.width() {
                let z = z[(r, j)] + bias[j];
                let act = match (self.kind, &gz) {
                    (Formulation::Gated, Some(g)) => {
                        if g[(r, j)] >= 0.0 {
                            z
                        } else {
                            0.0
                        }
                    }
                    (Formulation::Threshold, _) => {
                        if z >= 0.0 {
                            amp[j]
                        } else {
                            0.0
                        }
                    }
                    (kind, _) => activation(kind.mask_off_value(), z),
                };
                if act != 0.0 {
                    for k in 0..c {
                        out[(r, k)] += act * self.output[j * c + k];
                    }
                }
            }
        }
        Ok(out)
    }

    fn predict_deep(&self, deep: &DeepThreshold, x: MatRef<'_, f64>) -> Vec<f64> {
        let last = deep.layers.evaluate(x).pop().unwrap_or_default();
        let ones = vec![1.0; self.width()];
        let amp = self.amplitude.as_deref().unwrap_or(&ones);
        (0..x.nrows())
            .map(|r| {
                (0..self.width())
                    .filter(|&j| last.get(deep.units[j]).is_some_and(|u| u[r]))
                    .map(|j| amp[j] * self.output[j])
                    .sum()
            })
            .collect()
    }

    /// The non-convex training objective (M5)/(M38): L(f(X), y) + (λ/2) Σ_j (‖u_j‖² + ‖α_j‖²),
    /// with the loss normalized as in [`crate::program`] (labels ±1 for the logistic loss; for c > 1
    /// outputs `y` is n × c column-major, one-hot for softmax). Deep narrow networks have the
    /// penalty (λ/L)Σ|weights|^L of (M59). For threshold networks the penalty
    /// is (λ/2) Σ_j (s_j² + α_j²) (M28 without the free first layer).
    pub fn objective(&self, x: MatRef<'_, f64>, y: &[f64], loss: Loss, lambda: f64) -> Result<f64> {
        let yhat = self.predict(x)?;
        if yhat.len() != y.len() {
            return Err(Error::InvalidData(format!(
                "{} targets for {} predictions",
                y.len(),
                yhat.len()
            )));
        }
        if let Some(units) = &self.chains {
            let penalty = narrow::penalty(units, &self.output);
            return Ok(loss.value_outputs(&yhat, y, 1) + lambda * penalty);
        }
        let squares = |v: &[f64]| v.iter().map(|a| a * a).sum::<f64>();
        let first: f64 = match &self.amplitude {
            Some(amp) => squares(amp),
            None => self.hidden.iter().map(|u| squares(u)).sum(),
        };
        let penalty = first + squares(&self.output);
        Ok(loss.value_outputs(&yhat, y, self.outputs.max(1)) + 0.5 * lambda * penalty)
    }

    /// For 1-D inputs with a bias (inputs [x, 1], or scalar inputs with unpenalized biases
    /// [`Network::bias`]): the breakpoints x = −b/w of the neurons (of every layer of a deep
    /// narrow network's chains, [`narrow::ChainUnit::knots`]), sorted, with values closer than
    /// `merge` merged (knots of the piecewise-linear fit).
    pub fn knots_1d(&self, merge: f64) -> Vec<f64> {
        let mut k: Vec<f64> = match &self.bias {
            _ if self.chains.is_some() => self
                .chains
                .iter()
                .flatten()
                .flat_map(narrow::ChainUnit::knots)
                .collect(),
            Some(b) => self
                .hidden
                .iter()
                .zip(b)
                .filter(|(u, _)| u.len() == 1 && u[0] != 0.0)
                .map(|(u, b)| -b / u[0])
                .collect(),
            None => self
                .hidden
                .iter()
                .filter(|u| u.len() == 2 && u[0] != 0.0)
                .map(|u| -u[1] / u[0])
                .collect(),
        };
        k.sort_by(f64::total_cmp);
        k.dedup_by(|a, b| (*a - *b).abs() < merge);
        k
    }

    /// Hidden weights as a d × m matrix.
    pub fn hidden_matrix(&self) -> Mat<f64> {
        Mat::from_fn(self.input_dim(), self.width(), |k, j| self.hidden[j][k])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relu_reconstruction_balances_layers() {
        // One v column and one w column; d = 2.
        let w = Mat::from_fn(
            2,
            2,
            |k, c| if c == 0 { [3.0, 4.0][k] } else { [0.0, 1.0][k] },
        );
        let net = Network::from_convex(Formulation::Relu, w.as_ref(), None);
        assert_eq!(net.width(), 2);
        // (λ/2)(‖u‖² + α²) = λ‖v‖ for each neuron.
        for (u, a) in net.hidden.iter().zip(&net.output) {
            let nu2: f64 = u.iter().map(|v| v * v).sum();
            assert!((nu2 - a * a).abs() < 1e-12);
        }
        assert!(net.output[0] > 0.0 && net.output[1] < 0.0);
        let x = Mat::from_fn(1, 2, |_, k| [1.0, 1.0][k]);
        // f(x) = (3+4)₊ − (0+1)₊ = 6
        assert!((net.predict(x.as_ref()).unwrap()[0] - 6.0).abs() < 1e-12);
    }

    #[test]
    fn leaky_and_abs_networks_use_their_activation_and_keep_it_in_json() {
        // One v column u = (1, 0) (output +1) and one w column (0, 1) (output −1); d = 2.
        let w = Mat::from_fn(2, 2, |k, c| if k == c { 1.0 } else { 0.0 });
        let x = Mat::from_fn(1, 2, |_, k| [-2.0, 3.0][k]);
        // f(x) = σ(−2) − σ(3) = −2c − 3.
        for (kind, c) in [
            (Formulation::LeakyRelu { slope: 0.1 }, 0.1),
            (Formulation::Abs, -1.0),
            (Formulation::Relu, 0.0),
        ] {
            let net = Network::from_convex(kind, w.as_ref(), None);
            let f = net.predict(x.as_ref()).unwrap()[0];
            assert!((f - (-2.0 * c - 3.0)).abs() < 1e-12, "{kind:?}: {f}");
            let back: Network =
                serde_json::from_str(&serde_json::to_string(&net).unwrap()).unwrap();
            assert_eq!(back.kind, kind);
        }
    }

    #[test]
    fn threshold_network_from_lasso() {
        let z = Mat::from_fn(1, 3, |_, c| [4.0, 0.0, -1.0][c]);
        let g = Mat::from_fn(2, 3, |k, c| [[1.0, 0.0, -1.0], [0.0, 1.0, 0.5]][k][c]);
        let net = Network::from_convex(Formulation::Threshold, z.as_ref(), Some(g.as_ref()));
        assert_eq!(net.width(), 2);
        // x = (2, 1): 1[2 ≥ 0]·4 + 1[−2 + 0.5 ≥ 0]·(−1) = 4; x = (−1, 1): 0 + 1·(−1) = −1
        let x = Mat::from_fn(2, 2, |i, k| [[2.0, 1.0], [-1.0, 1.0]][i][k]);
        assert_eq!(net.predict(x.as_ref()).unwrap(), vec![4.0, -1.0]);
        // (λ/2)(s² + α²) = λ|z|: the penalty at λ = 2 is 2·(4 + 1).
        let obj = net
            .objective(x.as_ref(), &[4.0, -1.0], Loss::Squared, 2.0)
            .unwrap();
        assert!((obj - 10.0).abs() < 1e-12);
        let no_gates = Network::from_convex(Formulation::Threshold, z.as_ref(), None);
        assert!(no_gates.predict(x.as_ref()).is_err());
    }

    #[test]
    fn gated_without_gates_cannot_predict() {
        let w = Mat::from_fn(2, 1, |_, _| 1.0);
        let net = Network::from_convex(Formulation::Gated, w.as_ref(), None);
        let e = net.predict(Mat::<f64>::zeros(1, 2).as_ref()).unwrap_err();
        assert!(e.to_string().contains("without gates"));
        let relu = Network::from_convex(Formulation::Relu, w.as_ref(), None);
        let e = relu.predict(Mat::<f64>::zeros(1, 3).as_ref()).unwrap_err();
        assert!(e.to_string().contains("takes 2 inputs"));
    }
}
