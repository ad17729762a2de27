//! Regularization path (docs/programs.md §4f): a decreasing sequence λ_k = λ_max ε^{k/(K−1)} solved with warm
//! starts over one shared pattern set.

use faer::MatRef;

use crate::error::{Error, Result};
use crate::model::{
    build_patterns, program_patches, train, Certificate, PatternSource, TrainOptions,
};
use crate::network::Network;
use crate::program::Formulation;
use crate::solver::{Observe, StopFlag};

/// One solved point of a path.
pub struct PathPoint {
    /// λ at this point.
    pub lambda: f64,
    /// Its certificate.
    pub certificate: Certificate,
    /// The network at this λ.
    pub network: Network,
}

/// K values from `lambda_max` down to `ratio · lambda_max`, evenly spaced in log scale.
pub fn lambda_grid(lambda_max: f64, ratio: f64, count: usize) -> Vec<f64> {
    if count <= 1 {
        return vec![lambda_max];
    }
    (0..count)
        .map(|k| lambda_max * ratio.powf(k as f64 / (count - 1) as f64))
        .collect()
}

/// Solves the program of `opts` at each λ of `lambdas` (sorted decreasing first), warm-starting each
/// solve from the previous solution over the same patterns.
pub fn regularization_path(
    x: MatRef<'_, f64>,
    y: &[f64],
    opts: &TrainOptions,
    lambdas: &[f64],
    observer: &mut dyn Observe,
    stop: &StopFlag,
) -> Result<Vec<PathPoint>> {
    if lambdas.is_empty() || lambdas.iter().any(|l| !(l.is_finite() && *l > 0.0)) {
        return Err(Error::InvalidSetting(
            "a path needs at least one positive, finite lambda".into(),
        ));
    }
    let mut sorted = lambdas.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut o = opts.clone();
    // A 1-D dictionary depends on the data alone and a linear network has no patterns; other
    // programs share one pattern set (of the patches, for a convolutional network).
    if !opts.dictionary && opts.formulation != Formulation::Linear {
        let patches = program_patches(x, opts)?;
        let rows = patches.as_ref().map_or(x, |p| p.as_ref());
        o.patterns = PatternSource::Set(build_patterns(rows, opts)?);
    }
    let mut points = Vec::with_capacity(sorted.len());
    for &lambda in &sorted {
        if stop.is_set() {
            break;
        }
        o.lambda = lambda;
        let fit = train(x, y, &o, observer, stop)?;
        o.warm_start = Some(fit.weights);
        points.push(PathPoint {
            lambda,
            certificate: fit.certificate,
            network: fit.network,
        });
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::patches::Convolution;
    use crate::model::PatternSource;
    use crate::rng::Rng;
    use crate::solver::{Silent, Status};
    use faer::Mat;

    #[test]
    fn grid_is_geometric_and_path_objectives_decrease() {
        let g = lambda_grid(1.0, 1e-2, 3);
        assert!((g[1] - 0.1).abs() < 1e-12 && (g[2] - 0.01).abs() < 1e-12);
        let mut r = Rng::new(4);
        let x = Mat::from_fn(40, 3, |_, k| if k == 2 { 1.0 } else { r.normal() });
        let y: Vec<f64> = (0..40)
            .map(|i| x[(i, 0)].max(0.0) + 0.1 * r.normal())
            .collect();
        let opts = TrainOptions {
            patterns: PatternSource::Sample { count: 15 },
            tol: 1e-8,
            ..TrainOptions::default()
        };
        let pts = regularization_path(
            x.as_ref(),
            &y,
            &opts,
            &lambda_grid(0.5, 1e-3, 6),
            &mut Silent,
            &StopFlag::new(),
        )
        .unwrap();
        assert_eq!(pts.len(), 6);
        for w in pts.windows(2) {
            assert!(w[1].certificate.info.objective <= w[0].certificate.info.objective + 1e-12);
        }
        assert!(pts
            .iter()
            .all(|p| p.certificate.info.status == Status::Converged));
        // at λ ≥ λ_max the network is empty
        let lmax = pts[0].certificate.lambda_max;
        let top = regularization_path(
            x.as_ref(),
            &y,
            &opts,
            &[lmax * 1.01],
            &mut Silent,
            &StopFlag::new(),
        )
        .unwrap();
        assert_eq!(top[0].network.width(), 0);
        let below = regularization_path(
            x.as_ref(),
            &y,
            &opts,
            &[lmax * 0.9],
            &mut Silent,
            &StopFlag::new(),
        )
        .unwrap();
        assert!(below[0].network.width() > 0);
    }

    #[test]
    fn convolutional_paths_share_patterns_of_the_patches() {
        let mut r = Rng::new(9);
        let x = Mat::from_fn(30, 16, |_, _| r.normal());
        let y: Vec<f64> = (0..30).map(|i| (x[(i, 5)] - x[(i, 10)]).max(0.0)).collect();
        let opts = TrainOptions {
            patterns: PatternSource::Sample { count: 8 },
            convolution: Some(Convolution::square(4, 2, 2)),
            tol: 1e-8,
            ..TrainOptions::default()
        };
        let pts = regularization_path(
            x.as_ref(),
            &y,
            &opts,
            &[1e-2, 1e-3],
            &mut Silent,
            &StopFlag::new(),
        )
        .unwrap();
        assert_eq!(pts.len(), 2);
        for p in &pts {
            assert_eq!(p.network.conv, opts.convolution);
            assert!(
                p.certificate.relative_gap <= 1e-5,
                "{}",
                p.certificate.relative_gap
            );
        }
        assert!(pts[1].certificate.info.objective <= pts[0].certificate.info.objective);
        // The path's patterns are those a single fit samples on the patches.
        let one = train(
            x.as_ref(),
            &y,
            &TrainOptions {
                lambda: 1e-2,
                ..opts.clone()
            },
            &mut Silent,
            &StopFlag::new(),
        )
        .unwrap();
        assert_eq!(one.certificate.n_patterns, pts[0].certificate.n_patterns);
        let (a, b) = (
            one.certificate.info.objective,
            pts[0].certificate.info.objective,
        );
        assert!((a - b).abs() <= 1e-5 * a, "{a} vs {b}");
    }
}
