//! Straight-through estimator (STE) baselines for threshold networks (Ergen et al. 2023, §5): the
//! network f(x) = Σ_j s_j 1[xᵀh_j ≥ 0] α_j is trained by SGD where the zero derivative of the step is
//! replaced by a surrogate in the backward pass. The objective logged is the exact one, (M28)
//! without the scale-free first-layer term, on the same axis as the Lasso (M29). With
//! [`SteSettings::free_biases`] the neurons get biases b_j and the output an intercept ξ, both
//! unpenalized: the threshold network of the 1-D dictionary program (docs/programs.md (M47)).

use std::time::Instant;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatRef, Par};

use super::sgd::LogRecord;
use super::Network;
use crate::error::{Error, Result};
use crate::program::{Formulation, Loss};
use crate::rng::Rng;
use crate::solver::StopFlag;

/// The derivative used for 1[z ≥ 0] in the backward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surrogate {
    /// 1 everywhere (the plain straight-through estimator).
    Identity,
    /// 1[z ≥ 0].
    Relu,
    /// 1 for z ≥ 0, 0.01 otherwise.
    LeakyRelu,
    /// 1[0 ≤ z ≤ 1].
    ClippedRelu,
}

impl Surrogate {
    /// The four surrogates of Ergen et al. (2023, §5), in the paper's order.
    pub const ALL: [Surrogate; 4] = [
        Surrogate::Identity,
        Surrogate::Relu,
        Surrogate::LeakyRelu,
        Surrogate::ClippedRelu,
    ];

    /// The method's name as in the paper: Nonconvex-STE, -ReLU, -LReLU, -CReLU.
    pub fn method_name(self) -> &'static str {
        match self {
            Surrogate::Identity => "Nonconvex-STE",
            Surrogate::Relu => "Nonconvex-ReLU",
            Surrogate::LeakyRelu => "Nonconvex-LReLU",
            Surrogate::ClippedRelu => "Nonconvex-CReLU",
        }
    }

    fn derivative(self, z: f64) -> f64 {
        match self {
            Surrogate::Identity => 1.0,
            Surrogate::Relu => f64::from(z >= 0.0),
            Surrogate::LeakyRelu => {
                if z >= 0.0 {
                    1.0
                } else {
                    0.01
                }
            }
            Surrogate::ClippedRelu => f64::from((0.0..=1.0).contains(&z)),
        }
    }
}

/// Settings of [`train_ste`], with documented defaults.
#[derive(Clone, Debug)]
pub struct SteSettings {
    /// Hidden neurons m. Default 50.
    pub width: usize,
    /// Backward surrogate. Default identity.
    pub surrogate: Surrogate,
    /// Initial learning rate of full-batch SGD. Default 1e-2.
    pub learning_rate: f64,
    /// Halve the learning rate when the objective has not improved for this many steps
    /// (ReduceLROnPlateau). Default 50.
    pub patience: usize,
    /// Steps. Default 2000.
    pub steps: usize,
    /// Seed of the initialization. Default 0.
    pub seed: u64,
    /// Log every this many steps. Default 10.
    pub log_every: usize,
    /// Train unpenalized neuron biases (through the surrogate, like the hidden weights) and an
    /// unpenalized output intercept. Default false.
    pub free_biases: bool,
}

impl Default for SteSettings {
    fn default() -> Self {
        SteSettings {
            width: 50,
            surrogate: Surrogate::Identity,
            learning_rate: 1e-2,
            patience: 50,
            steps: 2000,
            seed: 0,
            log_every: 10,
            free_biases: false,
        }
    }
}

struct Params {
    h: Mat<f64>,
    s: Vec<f64>,
    a: Vec<f64>,
    /// Free biases and intercept, when trained.
    free: Option<(Vec<f64>, f64)>,
}

impl Params {
    fn network(&self) -> Network {
        Network {
            kind: Formulation::Threshold,
            hidden: (0..self.h.ncols())
                .map(|j| self.h.col_as_slice(j).to_vec())
                .collect(),
            output: self.a.clone(),
            gates: None,
            amplitude: Some(self.s.clone()),
            deep: None,
            bias: self.free.as_ref().map(|f| f.0.clone()),
            intercept: self.free.as_ref().map(|f| f.1),
            conv: None,
            chains: None,
            outputs: 1,
        }
    }
}

/// Trains a two-layer threshold network by full-batch SGD with the straight-through estimator and a
/// plateau learning-rate decay; returns the final network and the log of the objective (M28).
pub fn train_ste(
    x: MatRef<'_, f64>,
    y: &[f64],
    loss: Loss,
    lambda: f64,
    settings: &SteSettings,
    stop: &StopFlag,
) -> Result<(Network, Vec<LogRecord>)> {
    let (n, d, m) = (x.nrows(), x.ncols(), settings.width);
    if n == 0
        || n != y.len()
        || m == 0
        || settings.learning_rate.is_nan()
        || settings.learning_rate <= 0.0
    {
        return Err(Error::InvalidSetting(format!(
            "STE training needs matching nonempty data (X has {n} rows, y {}), width ≥ 1 and a \
             positive learning rate",
            y.len()
        )));
    }
    let mut r = Rng::new(settings.seed);
    let (bh, bo) = (1.0 / (d as f64).sqrt(), 1.0 / (m as f64).sqrt());
    let mut p = Params {
        h: Mat::from_fn(d, m, |_, _| bh * (2.0 * r.uniform() - 1.0)),
        s: vec![1.0; m],
        a: (0..m).map(|_| bo * (2.0 * r.uniform() - 1.0)).collect(),
        free: None,
    };
    if settings.free_biases {
        p.free = Some((
            (0..m).map(|_| bh * (2.0 * r.uniform() - 1.0)).collect(),
            0.0,
        ));
    }
    let start = Instant::now();
    let objective = |p: &Params| p.network().objective(x, y, loss, lambda);
    let mut log = vec![LogRecord {
        step: 0,
        seconds: 0.0,
        objective: objective(&p)?,
    }];
    let (mut lr, mut best, mut since) = (settings.learning_rate, f64::INFINITY, 0);
    let mut pre = Mat::<f64>::zeros(n, m);
    let mut resid = vec![0.0; n];
    for step in 1..=settings.steps {
        if stop.is_set() {
            break;
        }
        matmul(pre.as_mut(), Accum::Replace, x, p.h.as_ref(), 1.0, Par::Seq);
        let xi = p.free.as_ref().map_or(0.0, |f| f.1);
        if let Some((b, _)) = &p.free {
            for (j, bj) in b.iter().enumerate() {
                for i in 0..n {
                    pre[(i, j)] += bj;
                }
            }
        }
        let yhat: Vec<f64> = (0..n)
            .map(|i| {
                (0..m)
                    .filter(|&j| pre[(i, j)] >= 0.0)
                    .map(|j| p.s[j] * p.a[j])
                    .sum::<f64>()
                    + xi
            })
            .collect();
        loss.gradient(&yhat, y, &mut resid);
        let on = |i: usize, j: usize| f64::from(pre[(i, j)] >= 0.0);
        let ga: Vec<f64> = (0..m)
            .map(|j| (0..n).map(|i| resid[i] * on(i, j)).sum::<f64>() * p.s[j] + lambda * p.a[j])
            .collect();
        let gs: Vec<f64> = (0..m)
            .map(|j| (0..n).map(|i| resid[i] * on(i, j)).sum::<f64>() * p.a[j] + lambda * p.s[j])
            .collect();
        let back = Mat::from_fn(n, m, |i, j| {
            resid[i] * settings.surrogate.derivative(pre[(i, j)]) * p.s[j] * p.a[j]
        });
        let mut gh = Mat::<f64>::zeros(d, m);
        matmul(
            gh.as_mut(),
            Accum::Replace,
            x.transpose(),
            back.as_ref(),
            1.0,
            Par::Seq,
        );
        if let Some((b, xi)) = &mut p.free {
            for (j, bj) in b.iter_mut().enumerate() {
                *bj -= lr * (0..n).map(|i| back[(i, j)]).sum::<f64>();
            }
            *xi -= lr * resid.iter().sum::<f64>();
        }
        for j in 0..m {
            p.a[j] -= lr * ga[j];
            p.s[j] -= lr * gs[j];
            for k in 0..d {
                p.h[(k, j)] -= lr * gh[(k, j)];
            }
        }
        if step % settings.log_every.max(1) == 0 || step == settings.steps {
            let f = objective(&p)?;
            if !f.is_finite() {
                return Err(Error::InvalidSetting(format!(
                    "STE training diverged at step {step}: lower the learning rate ({})",
                    settings.learning_rate
                )));
            }
            log.push(LogRecord {
                step,
                seconds: start.elapsed().as_secs_f64(),
                objective: f,
            });
            if f < best * (1.0 - 1e-6) {
                (best, since) = (f, 0);
            } else {
                since += settings.log_every.max(1);
                if since >= settings.patience {
                    lr *= 0.5;
                    since = 0;
                }
            }
        }
    }
    Ok((p.network(), log))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_surrogate_trains_and_lowers_the_objective() {
        let mut r = Rng::new(1);
        let x = Mat::from_fn(30, 2, |_, k| if k == 1 { 1.0 } else { r.normal() });
        let y: Vec<f64> = (0..30).map(|i| f64::from(x[(i, 0)] > 0.0)).collect();
        for surrogate in [
            Surrogate::Identity,
            Surrogate::Relu,
            Surrogate::LeakyRelu,
            Surrogate::ClippedRelu,
        ] {
            let s = SteSettings {
                surrogate,
                width: 10,
                steps: 300,
                ..SteSettings::default()
            };
            let (net, log) =
                train_ste(x.as_ref(), &y, Loss::Squared, 1e-3, &s, &StopFlag::new()).unwrap();
            assert!(
                log.last().unwrap().objective < log[0].objective,
                "{surrogate:?}"
            );
            let direct = net.objective(x.as_ref(), &y, Loss::Squared, 1e-3).unwrap();
            assert_eq!(direct, log.last().unwrap().objective);
        }
    }

    #[test]
    fn free_biases_and_intercept_are_trained_and_logged() {
        // Scalar inputs with mean 3.5: the untrained network has intercept 0, training moves it.
        let x = Mat::from_fn(20, 1, |i, _| i as f64 / 19.0);
        let y: Vec<f64> = (0..20)
            .map(|i| 2.0 + 3.0 * f64::from(x[(i, 0)] >= 0.5))
            .collect();
        let s = SteSettings {
            width: 4,
            surrogate: Surrogate::Relu,
            learning_rate: 0.1,
            steps: 2000,
            free_biases: true,
            ..SteSettings::default()
        };
        let (net, log) =
            train_ste(x.as_ref(), &y, Loss::Squared, 1e-4, &s, &StopFlag::new()).unwrap();
        assert!(net.bias.as_ref().is_some_and(|b| b.len() == 4));
        assert!(net.intercept.is_some_and(|xi| xi != 0.0));
        let last = log.last().unwrap().objective;
        assert!(
            last < 0.2 * log[0].objective,
            "{} -> {last}",
            log[0].objective
        );
        let direct = net.objective(x.as_ref(), &y, Loss::Squared, 1e-4).unwrap();
        assert_eq!(direct, last);
    }
}
