//! The primal–dual hybrid gradient method (Chambolle & Pock, 2011) with restarts to averages and an
//! adaptive primal weight (after PDLP, Applegate et al. 2021) for the hinge-loss threshold Lasso of
//! [`crate::program::hinge`] (Ergen et al. 2023, Corollary 4.1):
//!
//! ```text
//! min_z max_θ  λ‖z‖₁ − θᵀKz + yᵀθ    over   0 ≤ y_j θ_j ≤ 1/n,
//! ```
//!
//! whose inner max is ℓ(Kz) with ℓ the normalized hinge loss. One iteration is
//!
//! ```text
//! θ⁺ = Π_box(θ + σ (y − K z̄)),   z⁺ = soft_{τλ}(z + τ Kᵀθ⁺),   z̄⁺ = 2z⁺ − z,
//! ```
//!
//! with diagonal steps τ_i = η/(ω c_i) and σ_j = ηω/r_j, c_i and r_j the column and row sums of K,
//! η < 1 (Pock & Chambolle 2011, preconditioning with α = 1) and ω the primal weight. An iteration
//! costs one forward product (K z⁺) and one adjoint (Kᵀθ⁺), the image of z̄ being the same
//! combination of images. It stops on the certified duality gap of the best primal and the best dual
//! point seen (the dual scaled to feasibility, [`crate::program::hinge`]), never on iterations alone.
//! The problem is a linear program, on which restarted PDHG converges linearly in theory; in
//! practice it is slow on degenerate instances with many near-duplicate columns (n = 100,
//! P = 1000: a relative gap of about 1e-4 after 10⁵ iterations), where column generation with the
//! interior-point backend ([`crate::solver::working_set`]) is the better choice up to a few
//! thousand samples.

use std::time::Instant;

use faer::Mat;

use super::{IterRecord, Observe, Status, StopFlag};
use crate::operator::MaskedOperator;
use crate::program::hinge::{certified_bound, primal_value, project_dual_box};

/// Settings of [`hinge_lasso_pdhg`], with documented defaults.
#[derive(Clone, Debug)]
pub struct PdhgSettings {
    /// Stop when (best objective − best dual bound) ≤ `tol` · max(|objective|, 1e-12). Default 1e-6.
    pub tol: f64,
    /// Iteration cap. Default 100 000.
    pub max_iter: usize,
    /// Evaluate the gap and consider a restart every this many iterations. Default 10.
    pub check_every: usize,
    /// Wall-clock limit in seconds, counted from the `start` passed in.
    pub time_limit: Option<f64>,
}

impl Default for PdhgSettings {
    fn default() -> Self {
        PdhgSettings {
            tol: 1e-6,
            max_iter: 100_000,
            check_every: 10,
            time_limit: None,
        }
    }
}

/// What [`hinge_lasso_pdhg`] returns.
pub struct PdhgOutput {
    /// The primal point of least objective seen, 1 × P.
    pub z: Mat<f64>,
    /// The dual point (in the box, before scaling) of the best certified bound.
    pub theta: Vec<f64>,
    /// Objective of `z`.
    pub objective: f64,
    /// Certified lower bound from `theta`.
    pub dual: f64,
    /// Iterations done.
    pub iterations: usize,
    /// How it ended.
    pub status: Status,
}

/// A primal–dual pair with the images K z and Kᵀθ that the gap needs.
#[derive(Clone)]
struct Point {
    z: Mat<f64>,
    kz: Vec<f64>,
    theta: Vec<f64>,
    kt: Mat<f64>,
}

impl Point {
    fn zeros(n: usize, p: usize) -> Self {
        Point {
            z: Mat::zeros(1, p),
            kz: vec![0.0; n],
            theta: vec![0.0; n],
            kt: Mat::zeros(1, p),
        }
    }

    /// (primal objective, certified dual bound).
    fn values(&self, y: &[f64], lambda: f64) -> (f64, f64) {
        let zs: Vec<f64> = (0..self.z.ncols()).map(|i| self.z[(0, i)]).collect();
        let primal = primal_value(&self.kz, y, &zs, lambda);
        let c = (0..self.kt.ncols())
            .map(|i| self.kt[(0, i)].abs())
            .fold(0.0, f64::max);
        (primal, certified_bound(&self.theta, y, c, lambda))
    }

    /// `self += w · other` on every component.
    fn add_scaled(&mut self, other: &Point, w: f64) {
        for i in 0..self.z.ncols() {
            self.z[(0, i)] += w * other.z[(0, i)];
            self.kt[(0, i)] += w * other.kt[(0, i)];
        }
        for (a, b) in self.kz.iter_mut().zip(&other.kz) {
            *a += w * b;
        }
        for (a, b) in self.theta.iter_mut().zip(&other.theta) {
            *a += w * b;
        }
    }

    /// (‖z − other.z‖, ‖θ − other.θ‖).
    fn distances(&self, other: &Point) -> (f64, f64) {
        let dz = (0..self.z.ncols())
            .map(|i| (self.z[(0, i)] - other.z[(0, i)]).powi(2))
            .sum::<f64>()
            .sqrt();
        let dt = self
            .theta
            .iter()
            .zip(&other.theta)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f64>()
            .sqrt();
        (dz, dt)
    }
}

/// Solves the hinge-loss threshold Lasso over the columns of `op` (X a column of ones, so that
/// the operator is K and the weights are 1 × P) from `z0`; labels `y` are ±1, λ > 0.
#[allow(clippy::too_many_arguments)]
pub fn hinge_lasso_pdhg(
    op: &mut MaskedOperator<f64>,
    y: &[f64],
    lambda: f64,
    z0: Mat<f64>,
    settings: &PdhgSettings,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> PdhgOutput {
    let (n, p) = (y.len(), op.n_patterns());
    // Diagonal steps (Pock & Chambolle 2011, α = 1): τ_i ∝ 1/(column sum of K), σ_j ∝ 1/(row sum),
    // which keep ‖Σ^½ K T^½‖ ≤ 1 whatever the primal weight; the factor 0.95 makes it strict.
    let patterns = op.patterns();
    let col_sums: Vec<f64> = (0..p)
        .map(|i| (patterns.count_ones(i) as f64).max(1.0))
        .collect();
    let row_sums: Vec<f64> = (0..n)
        .map(|j| ((0..p).filter(|&i| patterns.get(j, i)).count() as f64).max(1.0))
        .collect();
    let eta = 0.95;
    // Primal weight ω (τ = η/ω, σ = ηω): ‖θ‖ ≤ 1/√n against coefficients of order one.
    let mut omega = 1.0 / (n as f64).sqrt();

    let mut cur = Point::zeros(n, p);
    cur.z = z0;
    op.apply(cur.z.as_ref(), &mut cur.kz);
    let mut kz_bar = cur.kz.clone();
    let mut sum = Point::zeros(n, p);
    let mut weight = 0.0;
    let mut anchor = cur.clone();
    let (mut best_obj, mut best_dual) = cur.values(y, lambda);
    let mut best_z = cur.z.clone();
    let mut best_theta = cur.theta.clone();
    let mut anchor_gap = best_obj - best_dual;
    let mut since_restart = 0usize;
    let mut last_cand_gap = f64::INFINITY;
    let mut next = Point::zeros(n, p);
    let converged = |obj: f64, dual: f64| obj - dual <= settings.tol * obj.abs().max(1e-12);

    let mut status = None;
    let mut k = 0;
    while status.is_none() {
        if converged(best_obj, best_dual) {
            status = Some(Status::Converged);
            break;
        }
        if k >= settings.max_iter {
            status = Some(Status::MaxIterations);
            break;
        }
        if stop.is_set() {
            status = Some(Status::Interrupted);
            break;
        }
        if settings
            .time_limit
            .is_some_and(|t| start.elapsed().as_secs_f64() > t)
        {
            status = Some(Status::TimeLimit);
            break;
        }
        let (tau, sigma) = (eta / omega, eta * omega);
        // Dual ascent at the extrapolated primal point, then the primal prox step.
        for j in 0..n {
            next.theta[j] = cur.theta[j] + sigma / row_sums[j] * (y[j] - kz_bar[j]);
        }
        project_dual_box(&mut next.theta, y);
        op.adjoint(&next.theta, next.kt.as_mut());
        for (i, c) in col_sums.iter().enumerate() {
            let t = tau / c;
            let v = cur.z[(0, i)] + t * next.kt[(0, i)];
            next.z[(0, i)] = v.signum() * (v.abs() - t * lambda).max(0.0);
        }
        op.apply(next.z.as_ref(), &mut next.kz);
        for ((b, new), old) in kz_bar.iter_mut().zip(&next.kz).zip(&cur.kz) {
            *b = 2.0 * new - old;
        }
        std::mem::swap(&mut cur, &mut next);
        sum.add_scaled(&cur, 1.0);
        weight += 1.0;
        since_restart += 1;
        k += 1;

        if k % settings.check_every.max(1) == 0 {
            let mut avg = Point::zeros(n, p);
            avg.add_scaled(&sum, 1.0 / weight);
            let (cur_obj, cur_dual) = cur.values(y, lambda);
            let (avg_obj, avg_dual) = avg.values(y, lambda);
            if !(cur_obj.is_finite() && cur_dual.is_finite()) {
                status = Some(Status::NumericalError);
                break;
            }
            for (obj, pt) in [(cur_obj, &cur), (avg_obj, &avg)] {
                if obj < best_obj {
                    best_obj = obj;
                    best_z.copy_from(&pt.z);
                }
            }
            for (dual, pt) in [(cur_dual, &cur), (avg_dual, &avg)] {
                if dual > best_dual {
                    best_dual = dual;
                    best_theta.copy_from_slice(&pt.theta);
                }
            }
            // Restart from the better of the current point and the average (PDLP's criteria, with
            // the certified gap as the measure): when its gap fell below 0.2× the gap at the last
            // restart, or below 0.8× and stopped improving, or after 36% of all iterations.
            let (cand, cand_gap) = if avg_obj - avg_dual < cur_obj - cur_dual {
                (avg, avg_obj - avg_dual)
            } else {
                (cur.clone(), cur_obj - cur_dual)
            };
            let no_progress = cand_gap <= 0.8 * anchor_gap && cand_gap > last_cand_gap;
            last_cand_gap = cand_gap;
            if cand_gap <= 0.2 * anchor_gap || no_progress || 100 * since_restart >= 36 * k {
                last_cand_gap = f64::INFINITY;
                let (dz, dt) = cand.distances(&anchor);
                if dz > 1e-14 && dt > 1e-14 {
                    omega = (0.5 * (dt / dz).ln() + 0.5 * omega.ln()).exp();
                }
                cur = cand;
                kz_bar.copy_from_slice(&cur.kz);
                anchor = cur.clone();
                anchor_gap = cand_gap;
                sum = Point::zeros(n, p);
                weight = 0.0;
                since_restart = 0;
            }
            let rec = IterRecord {
                iteration: k,
                outer: 0,
                objective: best_obj,
                gap: best_obj - best_dual,
                violation: 0.0,
                seconds: start.elapsed().as_secs_f64(),
            };
            if !observer.on_iter(&rec) {
                status = Some(Status::Interrupted);
            }
        }
    }
    let status = match status {
        Some(s) if s != Status::Converged && converged(best_obj, best_dual) => Status::Converged,
        Some(s) => s,
        None => Status::MaxIterations,
    };
    PdhgOutput {
        z: best_z,
        theta: best_theta,
        objective: best_obj,
        dual: best_dual,
        iterations: k,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::PatternSet;
    use crate::program::{Formulation, Loss};
    use crate::rng::Rng;
    use crate::solver::exact::{solve_exact, ExactSettings};
    use crate::solver::Silent;

    /// Random 0/1 columns and ±1 labels; K has `p` columns over `n` samples.
    fn problem(seed: u64, n: usize, p: usize) -> (PatternSet, Vec<f64>) {
        let mut r = Rng::new(seed);
        let cols: Vec<Vec<bool>> = (0..p)
            .map(|_| (0..n).map(|_| r.uniform() < 0.5).collect())
            .collect();
        let y = (0..n)
            .map(|_| if r.uniform() < 0.5 { 1.0 } else { -1.0 })
            .collect();
        (PatternSet::from_columns(n, &cols, None, false).unwrap(), y)
    }

    /// The certified PDHG objective agrees with the interior-point LP to 1e-6 (relative), and its
    /// gap is certified: best dual ≤ LP optimum ≤ objective.
    #[test]
    fn agrees_with_the_interior_point_lp() {
        for (seed, lambda) in [(0, 1e-3), (1, 1e-2), (2, 5e-2), (3, 3e-3)] {
            let (n, p) = (40, 30);
            let (patterns, y) = problem(seed, n, p);
            let ones = Mat::from_fn(n, 1, |_, _| 1.0);
            let exact = solve_exact(
                ones.as_ref(),
                &y,
                &patterns,
                Formulation::Gated,
                Loss::Hinge,
                lambda,
                &ExactSettings::default(),
            )
            .unwrap();
            assert_eq!(exact.info.status, Status::Converged);
            let mut op = MaskedOperator::<f64>::new(ones.as_ref(), patterns.clone(), 4096, 1);
            let settings = PdhgSettings {
                tol: 1e-8,
                max_iter: 200_000,
                ..PdhgSettings::default()
            };
            let out = hinge_lasso_pdhg(
                &mut op,
                &y,
                lambda,
                Mat::zeros(1, patterns.len()),
                &settings,
                &mut Silent,
                &StopFlag::new(),
                Instant::now(),
            );
            let lp = exact.info.objective;
            eprintln!(
                "seed {seed}: pdhg {} (dual {}, {} it, {:?}) lp {lp}",
                out.objective, out.dual, out.iterations, out.status
            );
            assert_eq!(out.status, Status::Converged);
            assert!((out.objective - lp).abs() <= 1e-6 * lp);
            assert!(out.dual <= lp + 1e-9 * lp && lp <= out.objective + 1e-9 * lp);
            assert!(out.objective - out.dual <= 1e-8 * out.objective);
        }
    }

    /// A set stop flag ends the solve at once with a valid (if loose) certificate.
    #[test]
    fn stop_flag_interrupts() {
        let (patterns, y) = problem(5, 20, 10);
        let ones = Mat::from_fn(20, 1, |_, _| 1.0);
        let mut op = MaskedOperator::<f64>::new(ones.as_ref(), patterns.clone(), 4096, 1);
        let stop = StopFlag::new();
        stop.stop();
        let out = hinge_lasso_pdhg(
            &mut op,
            &y,
            1e-3,
            Mat::zeros(1, patterns.len()),
            &PdhgSettings::default(),
            &mut Silent,
            &stop,
            Instant::now(),
        );
        assert_eq!(out.status, Status::Interrupted);
        assert!(out.dual <= out.objective && out.objective == 1.0);
    }
}
