//! Deep narrow ReLU networks on scalar inputs (docs/programs.md (M59)–(M60)): a sum of chains, each
//! a stack of L − 1 ReLU layers of width one with unpenalized biases,
//!
//! ```text
//! h_1 = x,   h_{l+1} = (w_l h_l + b_l)₊,   f(x) = Σ_j α_j h_{j,L}(x) + ξ,
//! ```
//!
//! trained with the weight decay (λ/L) Σ_j (Σ_l |w_{j,l}|^L + |α_j|^L) (the seed's ℓ_L penalty; for
//! L = 2 it is the usual (λ/2)(w² + α²)). Read out of the Lasso (M58) by [`from_chains`], trained
//! non-convexly by [`train_narrow`] (Adam, full batch) for the comparisons.

use std::time::Instant;

use faer::MatRef;
use serde::{Deserialize, Serialize};

use super::sgd::{adam_update, LogRecord};
use super::Network;
use crate::error::{Error, Result};
use crate::features::dictionary::scalar_inputs;
use crate::features::narrow::Chain;
use crate::program::{Formulation, Loss};
use crate::rng::Rng;
use crate::solver::StopFlag;

/// One neuron of a deep narrow network: the weights w_l and biases b_l of its L − 1 layers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChainUnit {
    /// The layer weights w_1 … w_{L−1} (penalized).
    pub weights: Vec<f64>,
    /// The layer biases b_1 … b_{L−1} (not penalized).
    pub biases: Vec<f64>,
}

impl ChainUnit {
    /// The chain's output h_L(x).
    pub fn eval(&self, x: f64) -> f64 {
        self.weights
            .iter()
            .zip(&self.biases)
            .fold(x, |h, (&w, &b)| (w * h + b).max(0.0))
    }

    /// The breakpoints of the chain in input space: where a layer's pre-activation crosses zero
    /// while its input is not constant, found by inverting the layers below (a positive value of
    /// (w h + b)₊ has one preimage h; zero is the flat part, which adds no breakpoint).
    pub fn knots(&self) -> Vec<f64> {
        let mut out = Vec::new();
        for l in 0..self.weights.len() {
            if self.weights[l] == 0.0 {
                continue;
            }
            let mut t = -self.biases[l] / self.weights[l];
            let mut ok = true;
            for k in (0..l).rev() {
                if t <= 0.0 || self.weights[k] == 0.0 {
                    ok = false;
                    break;
                }
                t = (t - self.biases[k]) / self.weights[k];
            }
            if ok && t.is_finite() {
                out.push(t);
            }
        }
        out
    }
}

/// The network (M60) of the Lasso coefficients `z` over the `chains` (all of one depth L) with
/// output intercept `intercept`: a coefficient z ≠ 0 of the chain with signs s_l and offsets c_l
/// gives the unit w_l = s_l t, b_l = −s_l t^l c_l, α = sign(z) t with t = |z|^{1/L}, whose output
/// is z φ(x) (each layer multiplies by t) and whose penalty is (λ/L)·L·t^L = λ|z|.
pub fn from_chains(chains: &[Chain], z: &[f64], intercept: f64) -> Network {
    let (mut units, mut output) = (Vec::new(), Vec::new());
    for (chain, &c) in chains.iter().zip(z) {
        if c == 0.0 {
            continue;
        }
        let depth = chain.depth();
        let t = c.abs().powf(1.0 / depth as f64);
        let offsets = chain.offsets();
        let weights = chain.signs.iter().map(|s| s * t).collect();
        let biases = chain
            .signs
            .iter()
            .zip(&offsets)
            .enumerate()
            .map(|(l, (s, o))| -s * t.powi(l as i32 + 1) * o)
            .collect();
        units.push(ChainUnit { weights, biases });
        output.push(c.signum() * t);
    }
    Network {
        chains: Some(units),
        intercept: Some(intercept),
        ..Network::plain(Formulation::Relu, vec![], output, None)
    }
}

/// The depth L of a deep narrow network (one more than the layers of its units; 2 when empty).
pub fn depth(units: &[ChainUnit]) -> usize {
    units.first().map_or(2, |u| u.weights.len() + 1)
}

/// Σ_j (Σ_l |w_{j,l}|^L + |α_j|^L) / L: the weight decay of (M59) divided by λ.
pub fn penalty(units: &[ChainUnit], output: &[f64]) -> f64 {
    let l = depth(units) as i32;
    let pow = |v: f64| v.abs().powi(l);
    let sum: f64 = units
        .iter()
        .map(|u| u.weights.iter().copied().map(pow).sum::<f64>())
        .sum::<f64>()
        + output.iter().copied().map(pow).sum::<f64>();
    sum / l as f64
}

/// Predictions Σ_j α_j h_j(x) + ξ on the scalar inputs `x` (n × 1).
pub fn predict(net: &Network, units: &[ChainUnit], x: MatRef<'_, f64>) -> Result<Vec<f64>> {
    if x.ncols() != 1 {
        return Err(Error::InvalidData(format!(
            "the deep narrow network takes scalar inputs but the data has {} columns",
            x.ncols()
        )));
    }
    let l = depth(units) - 1;
    if units.len() != net.output.len()
        || units
            .iter()
            .any(|u| u.weights.len() != l || u.biases.len() != l)
    {
        return Err(Error::InvalidData(format!(
            "the deep narrow network has {} units of unequal depth or {} output weights",
            units.len(),
            net.output.len()
        )));
    }
    let xi = net.intercept.unwrap_or(0.0);
    Ok((0..x.nrows())
        .map(|i| {
            let v = x[(i, 0)];
            xi + units
                .iter()
                .zip(&net.output)
                .map(|(u, a)| a * u.eval(v))
                .sum::<f64>()
        })
        .collect())
}

/// Settings of the non-convex training of a deep narrow network.
#[derive(Clone, Debug)]
pub struct NarrowSettings {
    /// Units m.
    pub width: usize,
    /// Depth L (≥ 2).
    pub depth: usize,
    /// Adam's step size.
    pub learning_rate: f64,
    /// Full-batch steps.
    pub steps: usize,
    /// Seed of the initialization.
    pub seed: u64,
    /// Steps between logged objectives.
    pub log_every: usize,
}

/// The parameters in one vector, per unit [w_1, b_1, …, w_{L−1}, b_{L−1}, α], then ξ.
struct Flat {
    p: Vec<f64>,
    stride: usize,
}

impl Flat {
    fn network(&self) -> Network {
        let layers = (self.stride - 1) / 2;
        let units = self.p[..self.p.len() - 1]
            .chunks_exact(self.stride)
            .map(|c| ChainUnit {
                weights: (0..layers).map(|l| c[2 * l]).collect(),
                biases: (0..layers).map(|l| c[2 * l + 1]).collect(),
            })
            .collect();
        let output = self.p[..self.p.len() - 1]
            .chunks_exact(self.stride)
            .map(|c| c[self.stride - 1])
            .collect();
        Network {
            chains: Some(units),
            intercept: self.p.last().copied(),
            ..Network::plain(Formulation::Relu, vec![], output, None)
        }
    }

    /// The gradient of (1/(2n))‖f − y‖² + (λ/L)Σ|w|^L by backpropagation through each chain.
    fn gradient(&self, xs: &[f64], y: &[f64], lambda: f64, depth: usize) -> Vec<f64> {
        let (n, layers) = (xs.len(), depth - 1);
        let units = (self.p.len() - 1) / self.stride;
        let mut g = vec![0.0; self.p.len()];
        let mut h = vec![0.0; depth];
        let mut pre = vec![0.0; layers];
        let mut r = vec![0.0; n];
        // Residuals r_i = (f(x_i) − y_i)/n.
        let xi = self.p[self.p.len() - 1];
        for (i, &x) in xs.iter().enumerate() {
            let f: f64 = (0..units)
                .map(|j| {
                    let c = &self.p[j * self.stride..(j + 1) * self.stride];
                    c[self.stride - 1]
                        * (0..layers).fold(x, |h, l| (c[2 * l] * h + c[2 * l + 1]).max(0.0))
                })
                .sum();
            r[i] = (f + xi - y[i]) / n as f64;
        }
        for j in 0..units {
            let c = &self.p[j * self.stride..(j + 1) * self.stride];
            let gj = &mut g[j * self.stride..(j + 1) * self.stride];
            for (i, &x) in xs.iter().enumerate() {
                h[0] = x;
                for l in 0..layers {
                    pre[l] = c[2 * l] * h[l] + c[2 * l + 1];
                    h[l + 1] = pre[l].max(0.0);
                }
                gj[self.stride - 1] += r[i] * h[layers];
                let mut back = r[i] * c[self.stride - 1];
                for l in (0..layers).rev() {
                    if pre[l] <= 0.0 {
                        break;
                    }
                    gj[2 * l] += back * h[l];
                    gj[2 * l + 1] += back;
                    back *= c[2 * l];
                }
            }
            let pen = |v: f64| lambda * v.signum() * v.abs().powi(depth as i32 - 1);
            for l in 0..layers {
                gj[2 * l] += pen(c[2 * l]);
            }
            gj[self.stride - 1] += pen(c[self.stride - 1]);
        }
        g[self.p.len() - 1] = r.iter().sum();
        g
    }
}

/// Trains a deep narrow ReLU network (M59) of `settings.width` units on scalar inputs by Adam
/// (full batch) from a seeded random start: first-layer breakpoints at random data points, deeper
/// biases small. Returns the final network and the log of the full objective.
pub fn train_narrow(
    x: MatRef<'_, f64>,
    y: &[f64],
    lambda: f64,
    settings: &NarrowSettings,
    stop: &StopFlag,
) -> Result<(Network, Vec<LogRecord>)> {
    let xs = scalar_inputs(x)?;
    if xs.is_empty()
        || xs.len() != y.len()
        || settings.width == 0
        || settings.depth < 2
        || settings.learning_rate.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater)
    {
        return Err(Error::InvalidSetting(format!(
            "deep narrow training needs matching nonempty data ({} inputs, {} targets), width ≥ 1, \
             depth ≥ 2 and a positive learning rate",
            xs.len(),
            y.len()
        )));
    }
    let start = Instant::now();
    let (layers, stride) = (settings.depth - 1, 2 * settings.depth - 1);
    let mut rng = Rng::new(settings.seed);
    let mut p = Vec::with_capacity(settings.width * stride + 1);
    for _ in 0..settings.width {
        for l in 0..layers {
            let w = rng.normal();
            let b = if l == 0 {
                -w * xs[rng.below(xs.len())]
            } else {
                0.1 * rng.normal()
            };
            p.extend([w, b]);
        }
        p.push(rng.normal() / (settings.width as f64).sqrt());
    }
    p.push(y.iter().sum::<f64>() / y.len() as f64);
    let mut flat = Flat { p, stride };
    let (mut m1, mut m2) = (vec![0.0; flat.p.len()], vec![0.0; flat.p.len()]);
    let mut log = Vec::new();
    let record = |flat: &Flat, step: usize, log: &mut Vec<LogRecord>| -> Result<()> {
        let objective = flat.network().objective(x, y, Loss::Squared, lambda)?;
        log.push(LogRecord {
            step,
            seconds: start.elapsed().as_secs_f64(),
            objective,
        });
        Ok(())
    };
    record(&flat, 0, &mut log)?;
    for step in 1..=settings.steps {
        if stop.is_set() {
            break;
        }
        let g = flat.gradient(&xs, y, lambda, settings.depth);
        for (k, gk) in g.into_iter().enumerate() {
            adam_update(
                &mut flat.p[k],
                gk,
                (&mut m1[k], &mut m2[k]),
                settings.learning_rate,
                step,
            );
        }
        if step % settings.log_every.max(1) == 0 || step == settings.steps {
            record(&flat, step, &mut log)?;
            if !log.last().is_some_and(|r| r.objective.is_finite()) {
                return Err(Error::InvalidSetting(format!(
                    "the non-convex objective diverged at step {step}: lower the learning rate ({})",
                    settings.learning_rate
                )));
            }
        }
    }
    Ok((flat.network(), log))
}

#[cfg(test)]
mod tests {
    use super::*;
    use faer::Mat;

    #[test]
    fn read_out_computes_the_scaled_feature_with_penalty_lambda_abs_z() {
        let chain = Chain {
            anchors: vec![-0.5, 1.0, 0.3],
            signs: vec![1.0, -1.0, 1.0],
            reflected: false,
        };
        let xs = [-1.0, -0.2, 0.4, 0.9, 1.7];
        let col = chain.column(&xs);
        let net = from_chains(std::slice::from_ref(&chain), &[-0.7], 0.25);
        let x = Mat::from_fn(xs.len(), 1, |i, _| xs[i]);
        let f = net.predict(x.as_ref()).unwrap();
        for i in 0..xs.len() {
            assert!((f[i] - (0.25 - 0.7 * col[i])).abs() < 1e-12, "{i}");
        }
        let units = net.chains.as_ref().unwrap();
        assert!((penalty(units, &net.output) - 0.7).abs() < 1e-12);
        assert_eq!(depth(units), 4);
    }

    #[test]
    fn knots_are_where_the_chain_bends() {
        // h₂ = (x − 1)₊, h₃ = (2 − h₂)₊ = (3 − x)₊ for x ≥ 1: bends at 1 and 3.
        let u = ChainUnit {
            weights: vec![1.0, -1.0],
            biases: vec![-1.0, 2.0],
        };
        assert_eq!(u.knots(), vec![1.0, 3.0]);
        // A last layer that only clips the flat zero adds no knot.
        let u = ChainUnit {
            weights: vec![1.0, 1.0],
            biases: vec![-1.0, 0.0],
        };
        assert_eq!(u.knots(), vec![1.0]);
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let xs = [-1.0, -0.3, 0.2, 0.8, 1.5];
        let y = [0.3, -0.2, 0.5, 1.0, 0.1];
        let mut rng = Rng::new(3);
        for depth in [2, 3, 4] {
            let stride = 2 * depth - 1;
            let p: Vec<f64> = (0..3 * stride + 1).map(|_| rng.normal()).collect();
            let flat = Flat { p, stride };
            let lambda = 0.1;
            let g = flat.gradient(&xs, &y, lambda, depth);
            let x = Mat::from_fn(xs.len(), 1, |i, _| xs[i]);
            let obj = |f: &Flat| {
                f.network()
                    .objective(x.as_ref(), &y, Loss::Squared, lambda)
                    .unwrap()
            };
            for (k, &gk) in g.iter().enumerate() {
                let h = 1e-6;
                let mut a = Flat {
                    p: flat.p.clone(),
                    stride,
                };
                a.p[k] += h;
                let mut b = Flat {
                    p: flat.p.clone(),
                    stride,
                };
                b.p[k] -= h;
                let fd = (obj(&a) - obj(&b)) / (2.0 * h);
                assert!((fd - gk).abs() < 1e-5 * (1.0 + fd.abs()), "{depth} {k}");
            }
        }
    }
}
