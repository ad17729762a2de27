//! Threshold networks built from the complete-arrangement program (Ergen et al. 2023, Theorem 2.3,
//! §5 and App. B.4/B.5; docs/programs.md (M30)–(M31)):
//!
//! 1. **Random lift**: Z = [1[XH ≥ 0], 1] with a seeded Gaussian H ∈ ℝ^{d×M} (M = 1000 in the paper)
//!    and a ones column for the next layer's bias. When rank Z = n (the *completeness
//!    certificate*), every 0/1 pattern h is realizable on Z (w = Z⁺(2h − 1) gives Zw = 2h − 1), so
//!    the Lasso over the arrangement of Z is the complete-arrangement program (M30), solved in
//!    closed form ([`crate::program::threshold`]).
//! 2. **Staircase** (M31): the optimal output δ is Σ_k c_k h_k with at most n patterns h_k and cost
//!    Σ|c_k| = ‖δ₊‖_∞ + ‖δ₋‖_∞.
//! 3. **Hidden weights** realizing each h_k on Z:
//!    - *Convex-PI*: w = Z⁺h (so Zw = h), neuron 1[zᵀw ≥ ½], the −½ folded into the bias weight;
//!    - *Convex-SVM*: the max-margin separator of the labels 2h − 1 ([`crate::solver::svm`]),
//!      thresholded at 0. The authors' code (pilancilab/Threshold-networks, `convexnn.py`) fits
//!      scikit-learn's `SVC(kernel='linear')`, a soft margin with C = 1 and a free intercept; we
//!      solve the hard-margin problem with the intercept as the weight of Z's ones column, so that
//!      every pattern is realized with margin at least 1, which a soft margin does not guarantee.
//!
//! The result is a three-layer network x ↦ Σ_k s_k α_k 1[[1[xᵀH ≥ 0], 1] w_k ≥ 0] with a frozen random
//! first layer, whose training output is exactly δ and whose objective (M28) is the optimum of (M30).

use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::features::deep::{DeepArrangement, Unit};
use crate::program::threshold::{
    complete_arrangement_dual, complete_arrangement_objective, complete_arrangement_output,
    staircase,
};
use crate::program::Loss;
use crate::rng::Rng;
use crate::solver::svm::{hard_margin_svm, SvmSettings};
use crate::solver::Status;

/// How a threshold network is obtained from its convex program.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Construction {
    /// Convex-Lasso: the Lasso (M29) over sampled (or enumerated) arrangement columns, each column
    /// realized by the gate that produced it (the default).
    #[default]
    Lasso,
    /// Convex-PI on the random lift: hidden weights Z⁺h, neurons 1[zᵀw ≥ ½].
    Pi,
    /// Convex-SVM on the random lift: hidden weights by a hard-margin SVM on 2h − 1.
    Svm,
}

impl Construction {
    /// `"lasso"`, `"pi"` or `"svm"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Construction::Lasso => "lasso",
            Construction::Pi => "pi",
            Construction::Svm => "svm",
        }
    }

    /// Whether this is the default (for leaving it out of model files).
    pub fn is_lasso(&self) -> bool {
        *self == Construction::Lasso
    }
}

/// The frozen random first layer and the lifted data it produces.
pub struct Lift {
    /// Gaussian directions, d × M.
    pub h: Mat<f64>,
    /// Z = [1[XH ≥ 0], 1], n × (M + 1).
    pub z: Mat<f64>,
}

/// Draws H (d × M) from `seed` and lifts the rows of `x` (000 App. B.4).
pub fn random_lift(x: MatRef<'_, f64>, m: usize, seed: u64) -> Result<Lift> {
    if m == 0 {
        return Err(Error::InvalidSetting(
            "the random lift needs at least one hidden unit (--lift-width)".into(),
        ));
    }
    let (n, d) = (x.nrows(), x.ncols());
    let mut rng = Rng::new(seed);
    let h = Mat::from_fn(d, m, |_, _| rng.normal());
    let z = Mat::from_fn(n, m + 1, |j, k| {
        if k == m {
            1.0
        } else {
            let v: f64 = (0..d).map(|c| x[(j, c)] * h[(c, k)]).sum();
            f64::from(v >= 0.0)
        }
    });
    Ok(Lift { h, z })
}

/// The pseudo-inverse Z⁺ of a matrix of full row rank, and its numerical rank.
pub struct RankCertificate {
    /// Numerical rank: singular values above max(n, M + 1) · ε · σ_max (NumPy's `matrix_rank`).
    pub rank: usize,
    /// Smallest singular value counted in the rank.
    pub smallest: f64,
    /// Z⁺ ((M + 1) × n) over the counted singular values.
    pub pinv: Mat<f64>,
}

/// The completeness certificate of Z: its rank and pseudo-inverse.
pub fn rank_certificate(z: MatRef<'_, f64>) -> Result<RankCertificate> {
    let svd = z
        .thin_svd()
        .map_err(|e| Error::Backend(format!("SVD of the lifted data failed: {e:?}")))?;
    let s = svd.S().column_vector();
    let smax = (0..s.nrows()).map(|i| s[i]).fold(0.0, f64::max);
    let cut = z.nrows().max(z.ncols()) as f64 * f64::EPSILON * smax;
    let kept: Vec<usize> = (0..s.nrows()).filter(|&i| s[i] > cut).collect();
    let (u, v) = (svd.U(), svd.V());
    let pinv = Mat::from_fn(z.ncols(), z.nrows(), |a, j| {
        kept.iter().map(|&i| v[(a, i)] * u[(j, i)] / s[i]).sum()
    });
    Ok(RankCertificate {
        rank: kept.len(),
        smallest: kept.iter().map(|&i| s[i]).fold(f64::INFINITY, f64::min),
        pinv,
    })
}

/// The pattern 1[Zw ≥ 0] of weights `w` on the rows of `z`.
pub fn realized(z: MatRef<'_, f64>, w: &[f64]) -> Vec<bool> {
    (0..z.nrows())
        .map(|j| (0..z.ncols()).map(|k| z[(j, k)] * w[k]).sum::<f64>() >= 0.0)
        .collect()
}

/// Convex-PI weights for pattern `h`: w = Z⁺h with ½ subtracted from the bias weight (the last,
/// on the ones column), so that 1[zᵀw ≥ 0] = 1[zᵀZ⁺h ≥ ½].
pub fn pi_weights(cert: &RankCertificate, h: &[bool]) -> Vec<f64> {
    let m1 = cert.pinv.nrows();
    let mut w: Vec<f64> = (0..m1)
        .map(|a| {
            h.iter()
                .enumerate()
                .filter(|(_, &on)| on)
                .map(|(j, _)| cert.pinv[(a, j)])
                .sum()
        })
        .collect();
    w[m1 - 1] -= 0.5;
    w
}

/// Convex-SVM weights for pattern `h`: the hard-margin separator of 2h − 1 on the rows of Z, with
/// the passes it took and whether its duality gap closed to `tol`.
pub fn svm_weights(z: MatRef<'_, f64>, h: &[bool], tol: f64) -> Result<(Vec<f64>, usize, Status)> {
    let t: Vec<f64> = h.iter().map(|&on| if on { 1.0 } else { -1.0 }).collect();
    let settings = SvmSettings {
        tol,
        ..SvmSettings::default()
    };
    let out = hard_margin_svm(z, &t, &settings)?;
    Ok((out.w, out.epochs, out.status))
}

/// A threshold network built on the random lift, with its certificate.
pub struct Constructed {
    /// The two hidden layers: the M random units, then one unit per staircase step.
    pub layers: DeepArrangement,
    /// Staircase coefficients c_k (the Lasso coefficients of the steps).
    pub coefficients: Vec<f64>,
    /// Staircase patterns h_k on the training rows.
    pub patterns: Vec<Vec<bool>>,
    /// Objective of (M30) at the optimal δ.
    pub objective: f64,
    /// Certified lower bound ([`complete_arrangement_dual`]).
    pub dual: f64,
    /// Numerical rank of Z (= n: the certificate).
    pub rank: usize,
    /// SVM passes over all neurons (0 for Convex-PI).
    pub iterations: usize,
    /// Converged, or reduced accuracy when an SVM stopped at its pass cap (its weights still
    /// realize the pattern).
    pub status: Status,
}

/// The choices of [`construct_on_lift`].
#[derive(Clone, Copy, Debug)]
pub struct LiftOptions {
    /// Pi or Svm.
    pub construction: Construction,
    /// M, the width of the random first layer.
    pub width: usize,
    /// Seed of H.
    pub seed: u64,
    /// Relative duality gap of the SVMs.
    pub tol: f64,
}

/// Solves the complete-arrangement program on the random lift of `x` and builds the network by
/// `opts.construction` (Pi or Svm). Errors: the lifted data is not of rank n (no completeness
/// certificate), a loss without closed form, or a weight construction that fails to realize its
/// pattern exactly.
pub fn construct_on_lift(
    x: MatRef<'_, f64>,
    y: &[f64],
    loss: Loss,
    lambda: f64,
    opts: &LiftOptions,
) -> Result<Constructed> {
    let LiftOptions {
        construction,
        width: lift_width,
        seed,
        tol,
    } = *opts;
    if construction == Construction::Lasso {
        return Err(Error::InvalidSetting(
            "the Lasso construction is trained by train(), not on the lift".into(),
        ));
    }
    let n = x.nrows();
    let delta = complete_arrangement_output(y, lambda, loss)?;
    let lift = random_lift(x, lift_width, seed)?;
    let cert = rank_certificate(lift.z.as_ref())?;
    if cert.rank < n {
        return Err(Error::InvalidSetting(format!(
            "the lifted data Z = [1[XH >= 0], 1] has rank {} < n = {n}, so the arrangement is not \
             certified complete: widen the lift (M >= n; now {lift_width}; --lift-width), \
             standardize the inputs so that the random hyperplanes cut through the data \
             (--standardize --bias), and make sure no two input rows are equal",
            cert.rank
        )));
    }
    let steps = staircase(&delta);
    let mut second = Vec::with_capacity(steps.len());
    let mut iterations = 0;
    let mut status = Status::Converged;
    for (k, (h, _)) in steps.iter().enumerate() {
        let w = match construction {
            Construction::Pi => pi_weights(&cert, h),
            _ => {
                let (w, epochs, svm_status) = svm_weights(lift.z.as_ref(), h, tol)?;
                iterations += epochs;
                if svm_status != Status::Converged {
                    status = Status::ReducedAccuracy;
                }
                w
            }
        };
        if realized(lift.z.as_ref(), &w) != *h {
            return Err(Error::Backend(format!(
                "the {} weights of neuron {k} do not realize its pattern (smallest singular value \
                 of Z {:.3e}): the lift is too ill-conditioned",
                construction.as_str(),
                cert.smallest
            )));
        }
        second.push(Unit {
            inputs: (0..lift_width).collect(),
            weights: w,
        });
    }
    let first = (0..lift_width)
        .map(|k| Unit {
            inputs: vec![],
            weights: (0..x.ncols()).map(|c| lift.h[(c, k)]).collect(),
        })
        .collect();
    let objective = complete_arrangement_objective(&delta, y, lambda, loss);
    let dual = complete_arrangement_dual(&delta, y, lambda, loss)?.min(objective);
    Ok(Constructed {
        layers: DeepArrangement {
            layers: vec![first, second],
        },
        coefficients: steps.iter().map(|(_, c)| *c).collect(),
        patterns: steps.into_iter().map(|(h, _)| h).collect(),
        objective,
        dual,
        rank: cert.rank,
        iterations,
        status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::Network;

    /// Both constructions reproduce the staircase output δ on the training data exactly, at the
    /// closed-form objective, for the squared and the hinge loss.
    #[test]
    fn constructed_networks_reproduce_the_optimal_output() {
        let mut r = Rng::new(3);
        let n = 40;
        let x = Mat::from_fn(n, 3, |_, k| if k == 2 { 1.0 } else { r.normal() });
        let y: Vec<f64> = (0..n)
            .map(|j| (2.0 * x[(j, 0)]).sin() + x[(j, 1)] + 0.1 * r.normal())
            .collect();
        let labels: Vec<f64> = y.iter().map(|v| v.signum()).collect();
        for (loss, targets, lambda) in [(Loss::Squared, &y, 0.01), (Loss::Hinge, &labels, 0.1)] {
            let delta = complete_arrangement_output(targets, lambda, loss).unwrap();
            for construction in [Construction::Pi, Construction::Svm] {
                let opts = LiftOptions {
                    construction,
                    width: 200,
                    seed: 7,
                    tol: 1e-8,
                };
                let c = construct_on_lift(x.as_ref(), targets, loss, lambda, &opts).unwrap();
                assert_eq!(c.status, Status::Converged);
                assert_eq!(c.rank, n);
                let net = Network::lifted_threshold(c.layers.clone(), &c.coefficients);
                let out = net.predict(x.as_ref()).unwrap();
                for j in 0..n {
                    assert!(
                        (out[j] - delta[j]).abs() <= 1e-12 * (1.0 + delta[j].abs()),
                        "{loss:?} {construction:?} row {j}: {} vs {}",
                        out[j],
                        delta[j]
                    );
                }
                // Inputs of the wrong width are an error, not a panic.
                assert!(net.predict(Mat::<f64>::zeros(2, 5).as_ref()).is_err());
                let obj = net.objective(x.as_ref(), targets, loss, lambda).unwrap();
                assert!((obj - c.objective).abs() <= 1e-12 * c.objective.max(1.0));
                assert!(c.objective - c.dual <= 1e-12 * c.objective.max(1.0));
            }
        }
    }

    #[test]
    fn incomplete_lift_is_refused() {
        let x = Mat::from_fn(30, 2, |j, k| if k == 1 { 1.0 } else { j as f64 });
        let y: Vec<f64> = (0..30).map(|j| j as f64).collect();
        let mut opts = LiftOptions {
            construction: Construction::Pi,
            width: 10,
            seed: 0,
            tol: 1e-6,
        };
        let e = construct_on_lift(x.as_ref(), &y, Loss::Squared, 0.01, &opts)
            .err()
            .unwrap();
        assert!(e.to_string().contains("not certified complete"), "{e}");
        opts.width = 100;
        let e = construct_on_lift(x.as_ref(), &y, Loss::Logistic, 0.01, &opts)
            .err()
            .unwrap();
        assert!(e.to_string().contains("closed form"), "{e}");
    }
}
