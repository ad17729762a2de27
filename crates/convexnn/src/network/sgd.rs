//! Non-convex baselines: a two-layer ReLU network f(x) = Σ_j (xᵀu_j)₊ α_j with weight decay, trained by
//! SGD (with momentum) or Adam on the non-convex objective (M5), in the same normalization as the
//! convex programs so that both sit on one axis:
//!
//! ```text
//! L(f(X), y) + (λ/2) Σ_j (‖u_j‖² + α_j²)
//! ```
//!
//! A mini-batch step uses the batch's loss (1/|B|) Σ_{j∈B} ℓ_j plus the same penalty; the logged
//! objective is always the full one.
//!
//! With [`SgdSettings::convolution`] the network is the convolutional one of docs/programs.md (M35):
//! f(x) = (1/K) Σ_k Σ_j σ(x_kᵀu_j) α_j over the K patches of each image (filters u_j, global average
//! pooling), trained on the same objective; the patches are cut once, and a step works on the rows of
//! its batch's images in the stacked patch matrix.
//!
//! Linear networks ([`Formulation::Linear`], the identity activation) train the same way: fully
//! connected, f(x) = Σ_j (xᵀu_j) α_j, or with a convolution the linear CNN of docs/programs.md §3f,
//! f(x) = Σ_j Σ_k (x_kᵀu_j) α_{jk}, with one output weight per neuron and patch position and no
//! pooling. Separable CNNs (one position per neuron) are refused: the filters here are shared.
//!
//! With [`SgdSettings::free_biases`] each neuron gets an unpenalized bias b_j and the output an
//! unpenalized intercept ξ, f(x) = Σ_j σ(xᵀu_j + b_j) α_j + ξ: the network of the 1-D dictionary
//! programs (docs/programs.md (M47)), whose weight decay acts on u_j and α_j only. Free biases are
//! for fully connected networks: together with a convolution they are refused.

use std::time::Instant;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};

use super::{activation, Network};
use crate::error::{Error, Result};
use crate::features::patches::Convolution;
use crate::program::{Formulation, Loss};
use crate::rng::Rng;
use crate::solver::StopFlag;

/// The update rule.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Optimizer {
    /// Stochastic gradient descent with heavy-ball momentum (0 for plain SGD).
    Sgd {
        /// Momentum coefficient in [0, 1).
        momentum: f64,
    },
    /// Adam (Kingma & Ba 2015) with the usual defaults β₁ = 0.9, β₂ = 0.999, ε = 1e-8; the weight
    /// decay is part of the gradient (not decoupled), so the objective is (M5).
    Adam,
}

/// How the learning rate changes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Schedule {
    /// Fixed.
    Constant,
    /// Multiplied by `factor` every `every` epochs.
    Step {
        /// Epochs between decays.
        every: usize,
        /// Decay factor.
        factor: f64,
    },
    /// Multiplied by `factor` when the full objective has not improved for `patience` logs.
    Plateau {
        /// Logs without improvement before a decay.
        patience: usize,
        /// Decay factor.
        factor: f64,
    },
}

/// Settings of [`train_nonconvex`], with documented defaults.
#[derive(Clone, Debug)]
pub struct SgdSettings {
    /// The network: ReLU, leaky ReLU or absolute value (a piecewise-linear activation max(z, c z),
    /// (M5) with that activation). Default ReLU.
    pub model: Formulation,
    /// Hidden neurons m. Default 10.
    pub width: usize,
    /// Update rule. Default Adam.
    pub optimizer: Optimizer,
    /// Initial learning rate. Default 1e-2.
    pub learning_rate: f64,
    /// Learning-rate schedule. Default constant.
    pub schedule: Schedule,
    /// Mini-batch size; `None` for full-batch gradient descent. Default none.
    pub batch_size: Option<usize>,
    /// Passes over the data. Default 100.
    pub epochs: usize,
    /// Seed of the initialization and of the batch order. Default 0.
    pub seed: u64,
    /// Log the full objective every this many steps. Default 10.
    pub log_every: usize,
    /// A convolutional network with this patch geometry (the data rows are then images), or a
    /// fully connected one (`None`, default).
    pub convolution: Option<Convolution>,
    /// Train unpenalized neuron biases and an unpenalized output intercept (both start at 0).
    /// Fully connected networks only (refused with `convolution`). Default false.
    pub free_biases: bool,
}

impl Default for SgdSettings {
    fn default() -> Self {
        SgdSettings {
            model: Formulation::Relu,
            width: 10,
            optimizer: Optimizer::Adam,
            learning_rate: 1e-2,
            schedule: Schedule::Constant,
            batch_size: None,
            epochs: 100,
            seed: 0,
            log_every: 10,
            convolution: None,
            free_biases: false,
        }
    }
}

/// One logged point of a run.
#[derive(Clone, Debug)]
pub struct LogRecord {
    /// Steps taken.
    pub step: usize,
    /// Seconds since the start.
    pub seconds: f64,
    /// The full objective (M5).
    pub objective: f64,
}

/// The weights of the network being trained: U (d × m), α (m), and the free biases b (m) and
/// intercept ξ (kept at 0 unless trained).
#[derive(Clone)]
struct Weights {
    u: Mat<f64>,
    alpha: Vec<f64>,
    b: Vec<f64>,
    xi: f64,
    kind: Formulation,
    free_biases: bool,
    conv: Option<Convolution>,
    /// Linear CNNs: one output weight per neuron and patch position (α_{jk} at j·K + k) and no
    /// pooling, f(x) = Σ_j Σ_k (x_kᵀu_j) α_{jk} (docs/programs.md (M35)).
    positions: bool,
}

impl Weights {
    /// PyTorch's default initialization: U(±1/√fan_in) for both layers, seeded.
    /// With free biases, b is drawn like the hidden weights (PyTorch's bias initialization).
    fn init(
        d: usize,
        m: usize,
        seed: u64,
        kind: Formulation,
        free_biases: bool,
        conv: Option<Convolution>,
    ) -> Self {
        let mut r = Rng::new(seed);
        let (a, b) = (1.0 / (d as f64).sqrt(), 1.0 / (m as f64).sqrt());
        let u = Mat::from_fn(d, m, |_, _| a * (2.0 * r.uniform() - 1.0));
        let positions = kind == Formulation::Linear && conv.is_some();
        let per_neuron = match conv {
            Some(c) if positions => c.patch_count(),
            _ => 1,
        };
        let alpha = (0..m * per_neuron)
            .map(|_| b * (2.0 * r.uniform() - 1.0))
            .collect();
        let bias = if free_biases {
            (0..m).map(|_| a * (2.0 * r.uniform() - 1.0)).collect()
        } else {
            vec![0.0; m]
        };
        Weights {
            u,
            alpha,
            b: bias,
            xi: 0.0,
            kind,
            free_biases,
            conv,
            positions,
        }
    }

    /// The zero-initialized moments of the same shapes.
    fn zeros_like(&self) -> Self {
        let (d, m) = (self.u.nrows(), self.u.ncols());
        Weights {
            u: Mat::zeros(d, m),
            alpha: vec![0.0; self.alpha.len()],
            b: vec![0.0; m],
            xi: 0.0,
            ..*self
        }
    }

    fn network(&self) -> Network {
        Network {
            kind: self.kind,
            hidden: (0..self.u.ncols())
                .map(|j| self.u.col_as_slice(j).to_vec())
                .collect(),
            output: self.alpha.clone(),
            gates: None,
            amplitude: None,
            deep: None,
            bias: self.free_biases.then(|| self.b.clone()),
            intercept: self.free_biases.then_some(self.xi),
            conv: self.conv,
            chains: None,
            outputs: 1,
        }
    }
}

/// Gradient of the batch objective (samples `rows`) at `w`, in the shape of the weights (the
/// bias and intercept parts are zero unless they are trained). `x` holds `k` rows per sample (the
/// patches of a convolutional network, averaged; k = 1 for a fully connected one).
fn gradient(
    (x, k): (MatRef<'_, f64>, usize),
    y: &[f64],
    rows: &[usize],
    w: &Weights,
    loss: Loss,
    lambda: f64,
) -> Weights {
    let (d, m, b) = (x.ncols(), w.u.ncols(), rows.len() * k);
    // The output weight of row i (sample i / k, position i % k) for neuron j, and the pooling.
    let alpha_of = |i: usize, j: usize| {
        if w.positions {
            w.alpha[j * k + i % k]
        } else {
            w.alpha[j]
        }
    };
    let xb = Mat::from_fn(b, d, |i, c| x[(rows[i / k] * k + i % k, c)]);
    let yb: Vec<f64> = rows.iter().map(|&i| y[i]).collect();
    let mut h = Mat::<f64>::zeros(b, m);
    matmul(
        h.as_mut(),
        Accum::Replace,
        xb.as_ref(),
        w.u.as_ref(),
        1.0,
        Par::Seq,
    );
    for j in 0..m {
        for i in 0..b {
            h[(i, j)] += w.b[j];
        }
    }
    // σ(z) = max(z, c z), σ'(z) = 1 for z > 0 and c below.
    let c = w.kind.mask_off_value();
    let act = Mat::from_fn(b, m, |i, j| activation(c, h[(i, j)]));
    let inv = if w.positions { 1.0 } else { 1.0 / k as f64 };
    let yhat: Vec<f64> = (0..rows.len())
        .map(|s| {
            let rows_of_s = s * k..(s + 1) * k;
            rows_of_s
                .map(|i| (0..m).map(|j| act[(i, j)] * alpha_of(i, j)).sum::<f64>())
                .sum::<f64>()
                * inv
                + w.xi
        })
        .collect();
    let mut rs = vec![0.0; rows.len()];
    loss.gradient(&yhat, &yb, &mut rs);
    // The residual of each row: its sample's, times the pooling weight 1/K.
    let r: Vec<f64> = (0..b).map(|i| rs[i / k] * inv).collect();
    let ga: Vec<f64> = if w.positions {
        (0..m * k)
            .map(|jp| {
                let (j, p) = (jp / k, jp % k);
                (p..b).step_by(k).map(|i| act[(i, j)] * r[i]).sum::<f64>() + lambda * w.alpha[jp]
            })
            .collect()
    } else {
        (0..m)
            .map(|j| (0..b).map(|i| act[(i, j)] * r[i]).sum::<f64>() + lambda * w.alpha[j])
            .collect()
    };
    let g = Mat::from_fn(b, m, |i, j| {
        let slope = if h[(i, j)] > 0.0 { 1.0 } else { c };
        slope * r[i] * alpha_of(i, j)
    });
    let mut gu = Mat::<f64>::zeros(d, m);
    matmul(
        gu.as_mut(),
        Accum::Replace,
        xb.transpose(),
        g.as_ref(),
        1.0,
        Par::Seq,
    );
    for j in 0..m {
        for k in 0..d {
            gu[(k, j)] += lambda * w.u[(k, j)];
        }
    }
    let mut grad = w.zeros_like();
    grad.u = gu;
    grad.alpha = ga;
    if w.free_biases {
        grad.b = (0..m).map(|j| (0..b).map(|i| g[(i, j)]).sum()).collect();
        grad.xi = r.iter().sum();
    }
    grad
}

/// Trains a ReLU (leaky ReLU, abs: `settings.model`) network of `settings.width` neurons on (M5)
/// from a seeded random start; returns the final network and the log of the full objective.
pub fn train_nonconvex(
    x: MatRef<'_, f64>,
    y: &[f64],
    loss: Loss,
    lambda: f64,
    settings: &SgdSettings,
    stop: &StopFlag,
) -> Result<(Network, Vec<LogRecord>)> {
    train_nonconvex_observed(x, y, loss, lambda, settings, stop, &mut |_, _| Ok(()))
}

/// [`train_nonconvex`], calling `on_log` with each logged point and the network at that point (to
/// record test metrics along the run, for example).
pub fn train_nonconvex_observed(
    x: MatRef<'_, f64>,
    y: &[f64],
    loss: Loss,
    lambda: f64,
    settings: &SgdSettings,
    stop: &StopFlag,
    on_log: &mut dyn FnMut(&LogRecord, &Network) -> Result<()>,
) -> Result<(Network, Vec<LogRecord>)> {
    let n = x.nrows();
    if n == 0
        || n != y.len()
        || settings.width == 0
        || settings.learning_rate.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
    {
        return Err(Error::InvalidSetting(format!(
            "non-convex training needs matching nonempty data (X has {n} rows, y {}), width ≥ 1 \
             and a positive learning rate",
            y.len()
        )));
    }
    let linear = settings.model == Formulation::Linear;
    if !settings.model.is_cone_program() && !linear {
        return Err(Error::InvalidSetting(format!(
            "non-convex training here is for ReLU, leaky ReLU, abs and linear networks, not {}",
            settings.model.as_str()
        )));
    }

    settings.model.validate()?;
    let start = Instant::now();
    let conv = settings.convolution;
    if conv.is_some() && settings.free_biases {
        return Err(Error::InvalidSetting(
            "free biases are for fully connected networks, not convolutional ones".into(),
        ));
    }
    if conv.is_some_and(|c| c.separable) {
        return Err(Error::InvalidSetting(
            "the non-convex trainer shares each filter across the patch positions; separable \
             networks (one position per neuron) are trained by their convex program only"
                .into(),
        ));
    }
    let patches = conv.map(|c| c.patches(x)).transpose()?;
    let (px, k) = match (&patches, conv) {
        (Some(p), Some(c)) => (p.as_ref(), c.patch_count()),
        _ => (x, 1),
    };
    let d = px.ncols();
    let mut w = Weights::init(
        d,
        settings.width,
        settings.seed,
        settings.model,
        settings.free_biases,
        conv,
    );
    let mut rng = Rng::new(settings.seed ^ 0x5eed);
    let batch = settings.batch_size.unwrap_or(n).clamp(1, n);
    let (mut m1, mut m2) = (w.zeros_like(), w.zeros_like());
    let mut lr = settings.learning_rate;
    let mut log = Vec::new();
    let mut record = |w: &Weights, step: usize, log: &mut Vec<LogRecord>| -> Result<f64> {
        let net = w.network();
        let r = LogRecord {
            step,
            seconds: start.elapsed().as_secs_f64(),
            objective: net.objective(x, y, loss, lambda)?,
        };
        on_log(&r, &net)?;
        let f = r.objective;
        log.push(r);
        Ok(f)
    };
    record(&w, 0, &mut log)?;
    let (mut best, mut since_best, mut step) = (f64::INFINITY, 0, 0usize);
    let mut order: Vec<usize> = (0..n).collect();
    for epoch in 0..settings.epochs {
        if batch < n {
            rng.shuffle(&mut order);
        }
        for rows in order.chunks(batch) {
            if stop.is_set() {
                return Ok((w.network(), log));
            }
            let g = gradient((px, k), y, rows, &w, loss, lambda);
            step += 1;
            apply_update(settings.optimizer, lr, step, &mut w, &g, (&mut m1, &mut m2));
            if step % settings.log_every.max(1) == 0 {
                let f = record(&w, step, &mut log)?;
                if let Schedule::Plateau { patience, factor } = settings.schedule {
                    if f < best * (1.0 - 1e-6) {
                        (best, since_best) = (f, 0);
                    } else {
                        since_best += 1;
                        if since_best >= patience {
                            lr *= factor;
                            since_best = 0;
                        }
                    }
                }
                if !f.is_finite() {
                    return Err(Error::InvalidSetting(format!(
                        "the non-convex objective diverged at step {step}: lower the learning rate ({})",
                        settings.learning_rate
                    )));
                }
            }
        }
        if let Schedule::Step { every, factor } = settings.schedule {
            if every > 0 && (epoch + 1) % every == 0 {
                lr *= factor;
            }
        }
    }
    if log.last().is_none_or(|r| r.step != step) {
        record(&w, step, &mut log)?;
    }
    Ok((w.network(), log))
}

/// One Adam step (β₁ = 0.9, β₂ = 0.999, ε = 1e-8) of the parameter `p` with gradient `g`, its first
/// and second moments `m`, step size `lr` and step number `step` (from 1).
pub(crate) fn adam_update(p: &mut f64, g: f64, m: (&mut f64, &mut f64), lr: f64, step: usize) {
    let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
    let (a, b) = m;
    *a = b1 * *a + (1.0 - b1) * g;
    *b = b2 * *b + (1.0 - b2) * g * g;
    let ah = *a / (1.0 - b1.powi(step as i32));
    let bh = *b / (1.0 - b2.powi(step as i32));
    *p -= lr * ah / (bh.sqrt() + eps);
}

/// One SGD-with-momentum or Adam update of (U, α, and b, ξ when trained) with gradients `g`, first
/// moments `m.0` and second moments `m.1` (Adam only).
fn apply_update(
    opt: Optimizer,
    lr: f64,
    step: usize,
    w: &mut Weights,
    g: &Weights,
    m: (&mut Weights, &mut Weights),
) {
    let (m1, m2) = m;
    let (d, m) = (w.u.nrows(), w.u.ncols());
    let update = |p: &mut f64, g: f64, a: &mut f64, b: &mut f64| match opt {
        Optimizer::Sgd { momentum } => {
            *a = momentum * *a + g;
            *p -= lr * *a;
        }
        Optimizer::Adam => adam_update(p, g, (a, b), lr, step),
    };
    for j in 0..m {
        for k in 0..d {
            update(
                &mut w.u[(k, j)],
                g.u[(k, j)],
                &mut m1.u[(k, j)],
                &mut m2.u[(k, j)],
            );
        }
        if w.free_biases {
            update(&mut w.b[j], g.b[j], &mut m1.b[j], &mut m2.b[j]);
        }
    }
    for a in 0..w.alpha.len() {
        update(
            &mut w.alpha[a],
            g.alpha[a],
            &mut m1.alpha[a],
            &mut m2.alpha[a],
        );
    }
    if w.free_biases {
        update(&mut w.xi, g.xi, &mut m1.xi, &mut m2.xi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
        let mut r = Rng::new(seed);
        let x = Mat::from_fn(n, 3, |_, k| if k == 2 { 1.0 } else { r.normal() });
        let y = (0..n)
            .map(|i| (x[(i, 0)] - x[(i, 1)]).max(0.0) + 0.1 * r.normal())
            .collect();
        (x, y)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let (x, y) = data(12, 1);
        let rows: Vec<usize> = (0..12).collect();
        let kinds = [
            Formulation::Relu,
            Formulation::LeakyRelu { slope: 0.2 },
            Formulation::Abs,
        ];
        for ((loss, kind), free) in [Loss::Squared, Loss::Logistic]
            .into_iter()
            .flat_map(|l| kinds.map(|k| (l, k)))
            .flat_map(|lk| [(lk, false), (lk, true)])
        {
            let y: Vec<f64> = match loss {
                Loss::Squared => y.clone(),
                _ => y
                    .iter()
                    .map(|v| if *v > 0.3 { 1.0 } else { -1.0 })
                    .collect(),
            };
            let w = Weights::init(3, 4, 7, kind, free, None);
            let g = gradient((x.as_ref(), 1), &y, &rows, &w, loss, 0.1);
            let (gu, ga) = (&g.u, &g.alpha);
            let f = |w: &Weights| w.network().objective(x.as_ref(), &y, loss, 0.1).unwrap();
            let h = 1e-6;
            for j in 0..4 {
                for k in 0..3 {
                    let (mut a, mut b) = (w.clone(), w.clone());
                    a.u[(k, j)] += h;
                    b.u[(k, j)] -= h;
                    let fd = (f(&a) - f(&b)) / (2.0 * h);
                    assert!(
                        (fd - gu[(k, j)]).abs() < 1e-6,
                        "{loss:?} {kind:?} u[{k},{j}]: {fd} vs {}",
                        gu[(k, j)]
                    );
                }
                let (mut a, mut b) = (w.clone(), w.clone());
                a.alpha[j] += h;
                b.alpha[j] -= h;
                let fd = (f(&a) - f(&b)) / (2.0 * h);
                assert!((fd - ga[j]).abs() < 1e-6, "{loss:?} {kind:?} alpha[{j}]");
                if free {
                    let (mut a, mut b) = (w.clone(), w.clone());
                    a.b[j] += h;
                    b.b[j] -= h;
                    let fd = (f(&a) - f(&b)) / (2.0 * h);
                    assert!((fd - g.b[j]).abs() < 1e-6, "{loss:?} {kind:?} b[{j}]");
                }
            }
            if free {
                let (mut a, mut b) = (w.clone(), w.clone());
                a.xi += h;
                b.xi -= h;
                let fd = (f(&a) - f(&b)) / (2.0 * h);
                assert!((fd - g.xi).abs() < 1e-6, "{loss:?} {kind:?} xi");
            }
        }
    }

    /// The convolutional gradients match finite differences of the network's own objective on
    /// images: ReLU filters with averaged patches (M35c), and the linear CNN with one output weight
    /// per neuron and patch position (M35).
    #[test]
    fn convolutional_gradient_matches_finite_differences() {
        let conv = Convolution::square(4, 2, 1);
        let mut r = Rng::new(3);
        let x = Mat::from_fn(6, 16, |_, _| r.normal());
        let y: Vec<f64> = (0..6).map(|_| r.normal()).collect();
        let rows: Vec<usize> = (0..6).collect();
        let patches = conv.patches(x.as_ref()).unwrap();
        let k = conv.patch_count();
        for kind in [Formulation::Relu, Formulation::Linear] {
            let w = Weights::init(5, 3, 2, kind, false, Some(conv));
            assert_eq!(
                w.alpha.len(),
                if kind == Formulation::Linear {
                    3 * k
                } else {
                    3
                }
            );
            let g = gradient((patches.as_ref(), k), &y, &rows, &w, Loss::Squared, 0.1);
            let (gu, ga) = (&g.u, &g.alpha);
            let f = |w: &Weights| {
                w.network()
                    .objective(x.as_ref(), &y, Loss::Squared, 0.1)
                    .unwrap()
            };
            let h = 1e-6;
            for j in 0..3 {
                for c in 0..5 {
                    let (mut a, mut b) = (w.clone(), w.clone());
                    a.u[(c, j)] += h;
                    b.u[(c, j)] -= h;
                    let fd = (f(&a) - f(&b)) / (2.0 * h);
                    assert!(
                        (fd - gu[(c, j)]).abs() < 1e-7,
                        "{kind:?} u[{c},{j}]: {fd} vs {}",
                        gu[(c, j)]
                    );
                }
            }
            for (q, &gq) in ga.iter().enumerate() {
                let (mut a, mut b) = (w.clone(), w.clone());
                a.alpha[q] += h;
                b.alpha[q] -= h;
                let fd = (f(&a) - f(&b)) / (2.0 * h);
                assert!((fd - gq).abs() < 1e-7, "{kind:?} alpha[{q}]: {fd} vs {gq}");
            }
        }
    }

    #[test]
    fn free_biases_on_a_convolution_are_refused() {
        let conv = Convolution::square(4, 2, 1);
        let x = Mat::from_fn(4, 16, |i, c| (i + c) as f64);
        let y = vec![0.0, 1.0, 0.0, 1.0];
        let s = SgdSettings {
            convolution: Some(conv),
            free_biases: true,
            ..SgdSettings::default()
        };
        let e = train_nonconvex(x.as_ref(), &y, Loss::Squared, 1e-3, &s, &StopFlag::new());
        assert!(matches!(e, Err(Error::InvalidSetting(m)) if m.contains("free biases")));
    }

    #[test]
    fn small_steps_decrease_the_objective() {
        let (x, y) = data(30, 2);
        let s = SgdSettings {
            optimizer: Optimizer::Sgd { momentum: 0.0 },
            learning_rate: 1e-3,
            epochs: 50,
            log_every: 1,
            ..SgdSettings::default()
        };
        let (_, log) =
            train_nonconvex(x.as_ref(), &y, Loss::Squared, 1e-3, &s, &StopFlag::new()).unwrap();
        for pair in log.windows(2) {
            assert!(pair[1].objective <= pair[0].objective + 1e-15);
        }
        assert!(log.last().unwrap().objective < log[0].objective);
    }

    #[test]
    fn wide_network_without_decay_interpolates() {
        let (x, y) = data(8, 3);
        let s = SgdSettings {
            width: 64,
            learning_rate: 1e-2,
            epochs: 4000,
            log_every: 100,
            ..SgdSettings::default()
        };
        let (net, log) =
            train_nonconvex(x.as_ref(), &y, Loss::Squared, 0.0, &s, &StopFlag::new()).unwrap();
        assert!(
            log.last().unwrap().objective < 1e-6,
            "{}",
            log.last().unwrap().objective
        );
        let pred = net.predict(x.as_ref()).unwrap();
        assert!(pred.iter().zip(&y).all(|(p, t)| (p - t).abs() < 1e-2));
    }

    #[test]
    fn seeded_runs_repeat_and_minibatches_run() {
        let (x, y) = data(40, 4);
        let s = SgdSettings {
            batch_size: Some(8),
            schedule: Schedule::Plateau {
                patience: 3,
                factor: 0.5,
            },
            epochs: 5,
            ..SgdSettings::default()
        };
        let a = train_nonconvex(x.as_ref(), &y, Loss::Squared, 1e-3, &s, &StopFlag::new())
            .unwrap()
            .1;
        let b = train_nonconvex(x.as_ref(), &y, Loss::Squared, 1e-3, &s, &StopFlag::new())
            .unwrap()
            .1;
        assert_eq!(a.last().unwrap().objective, b.last().unwrap().objective);
        assert!(a.len() > 2);
    }
}
