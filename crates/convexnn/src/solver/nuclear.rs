//! The nuclear-norm heuristic with sequential convex relaxation (docs/programs.md (M37), (M37a)–(M37e)),
//! after Doelman's "Training neural networks with convex optimization", which applies Doelman &
//! Verhaegen (ECC 2016) to a two-layer ReLU network. A heuristic: it looks for a network that fits
//! the training data **exactly**, and nothing certifies that it finds one or that the network it
//! finds has a small weight-decay objective.
//!
//! The network f(x) = Σ_j α_j (u_jᵀx)₊ (a bias input column, if any, is part of x; no output bias)
//! fits y exactly iff there are H, S ∈ ℝ^{m×n} with (M37a)
//!
//! ```text
//! H − S = U Xᵀ,  H ≥ 0,  S ≥ 0   (affine)        αᵀH = yᵀ,  H ∘ S = 0   (bilinear)
//! ```
//!
//! Each bilinear equality AB = C is the rank condition rank M = k of (M37) for any fixed (A₀, B₀);
//! the two terms are (M37b) M₁ (A = αᵀ, B = H, C = yᵀ, k = m) and (M37c) M₂ (A = diag(vec H),
//! B = vec S, C = 0, k = mn). One relaxation solves the semidefinite program (M37d)
//!
//! ```text
//! min ‖M₁‖_* + γ‖M₂‖_*  over the affine constraints,   ‖M‖_* = min ½(tr W₁ + tr W₂) s.t. [[W₁, M], [Mᵀ, W₂]] ⪰ 0,
//! ```
//!
//! and the sequence (M37e) sets (A₀, B₀) ← the optimum and solves again, until the network read
//! from the optimum (U, α) fits y to the tolerance or the relaxation cap is reached.
//!
//! The semidefinite blocks are dense: one relaxation holds matrices of order 1 + 2m + n and
//! 3mn + 1 (see [`nuclear_size`]), and the interior-point solver factors a dense matrix with a row
//! per entry of their triangles. Only small problems are accepted.

use std::time::Instant;

use faer::{Mat, MatRef};

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::solver::conic::{tri, Affine, Cone, Conic};
use crate::solver::{IterRecord, Observe, Status, StopFlag};

/// How the first relaxation's (A₀, B₀) = (α₀, H₀, S₀) are chosen (the seed's parameter options 1, 2
/// and 4).
#[derive(Clone, Debug, PartialEq)]
pub enum NuclearInit {
    /// α₀ = 0, H₀ = S₀ = 0.
    Zero,
    /// α₀ ~ N(0, 1), H₀ and S₀ with |N(0, 1)| entries, from the seed of [`NuclearSettings`].
    Random,
    /// From a network of the same width: α₀ = α, H₀ = (U Xᵀ)₊, S₀ = (−U Xᵀ)₊.
    Network {
        /// Hidden weights u_j (each of length d).
        hidden: Vec<Vec<f64>>,
        /// Output weights α_j.
        output: Vec<f64>,
    },
}

impl NuclearInit {
    /// The name printed and saved ("zero", "random", "network").
    pub fn as_str(&self) -> &'static str {
        match self {
            NuclearInit::Zero => "zero",
            NuclearInit::Random => "random",
            NuclearInit::Network { .. } => "network",
        }
    }
}

/// Settings of the heuristic, with documented defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct NuclearSettings {
    /// Hidden width m. Default 2.
    pub width: usize,
    /// Weight γ of the complementarity term ‖M₂‖_*. Default 1 (the seed's value is not known).
    pub gamma: f64,
    /// First (A₀, B₀). Default zero.
    pub init: NuclearInit,
    /// Most relaxations (semidefinite solves). Default 50 (the seed reports 30 and 50).
    pub max_relaxations: usize,
    /// Stop once max_i |f(x_i) − y_i| ≤ tol · max(1, max_i |y_i|) for the network read from the
    /// optimum. Default 1e-6.
    pub tol: f64,
    /// Largest order of a semidefinite block accepted (the complementarity block has order
    /// 3mn + 1). Default 64.
    pub max_order: usize,
    /// Refuse runs estimated to need more bytes than this. Default 4 GiB.
    pub memory_limit: usize,
    /// Seed of the random initialization. Default 0.
    pub seed: u64,
    /// Wall-clock limit in seconds. Default none.
    pub time_limit: Option<f64>,
}

impl Default for NuclearSettings {
    fn default() -> Self {
        NuclearSettings {
            width: 2,
            gamma: 1.0,
            init: NuclearInit::Zero,
            max_relaxations: 50,
            tol: 1e-6,
            max_order: 64,
            memory_limit: 4 << 30,
            seed: 0,
            time_limit: None,
        }
    }
}

/// The size of one relaxation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NuclearSize {
    /// Order 1 + 2m + n of the fit block (M37b).
    pub fit_order: usize,
    /// Order 3mn + 1 of the complementarity block (M37c).
    pub complementarity_order: usize,
    /// Variables of the conic program.
    pub variables: usize,
    /// Constraint rows of the conic program.
    pub rows: usize,
    /// Estimated bytes: the interior-point solver keeps a dense t × t block per semidefinite cone
    /// with t = order(order + 1)/2 entries, in the KKT matrix and again in its factor.
    pub bytes: usize,
}

/// The size of a relaxation on n samples, d inputs and width m (for refusing large runs before
/// allocating anything).
pub fn nuclear_size(n: usize, d: usize, m: usize) -> NuclearSize {
    let fit_order = 1 + 2 * m + n;
    let complementarity_order = 3 * m * n + 1;
    let (t1, t2) = (tri(fit_order), tri(complementarity_order));
    let (r1, c1) = (1 + m, n + m);
    let (r2, c2) = (2 * m * n, 1 + m * n);
    let variables = m * d + m + 2 * m * n + tri(r1) + tri(c1) + tri(r2) + tri(c2);
    let rows = 3 * m * n + t1 + t2;
    let dense = t1.saturating_mul(t1).saturating_add(t2.saturating_mul(t2));
    let bytes = dense
        .saturating_mul(2 * 8)
        .saturating_add(variables.saturating_add(rows).saturating_mul(200));
    NuclearSize {
        fit_order,
        complementarity_order,
        variables,
        rows,
        bytes,
    }
}

/// One relaxation as recorded in [`NuclearRun::history`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RelaxationRecord {
    /// Optimal value ‖M₁‖_* + γ‖M₂‖_* of the relaxation.
    pub nuclear_objective: f64,
    /// max_i |(αᵀH)_i − y_i| at the optimum (the bilinear fit equality).
    pub fit_violation: f64,
    /// max |H ∘ S| at the optimum (the bilinear complementarity).
    pub complementarity_violation: f64,
    /// max_i |f(x_i) − y_i| of the network (U, α) read from the optimum.
    pub network_residual: f64,
    /// Interior-point iterations of this relaxation.
    pub ipm_iterations: usize,
}

/// What the heuristic returns: the network with the smallest training residual over all
/// relaxations.
#[derive(Clone, Debug)]
pub struct NuclearRun {
    /// Hidden weights, m × d (row j is u_jᵀ).
    pub hidden: Mat<f64>,
    /// Output weights α (m).
    pub output: Vec<f64>,
    /// max_i |f(x_i) − y_i| of the returned network.
    pub residual: f64,
    /// Which relaxation (1-based) gave the returned network.
    pub best_relaxation: usize,
    /// One record per relaxation solved.
    pub history: Vec<RelaxationRecord>,
    /// Interior-point iterations over all relaxations.
    pub ipm_iterations: usize,
    /// Converged (the network fits to the tolerance), MaxIterations (relaxation cap), TimeLimit,
    /// Interrupted, or NumericalError (no relaxation was solved).
    pub status: Status,
}

/// The variables of one relaxation, in order: U (m × d, row-major), α (m), H and S (m × n each,
/// row-major), then the W₁, W₂ triangles of each nuclear-norm block.
#[derive(Clone, Copy)]
struct Layout {
    n: usize,
    d: usize,
    m: usize,
}

impl Layout {
    fn u(&self, j: usize, c: usize) -> usize {
        j * self.d + c
    }
    fn a(&self, j: usize) -> usize {
        self.m * self.d + j
    }
    fn h(&self, j: usize, i: usize) -> usize {
        self.m * self.d + self.m + j * self.n + i
    }
    fn s(&self, j: usize, i: usize) -> usize {
        self.h(j, i) + self.m * self.n
    }
    fn network_vars(&self) -> usize {
        self.m * self.d + self.m + 2 * self.m * self.n
    }
}

/// The parameters (A₀, B₀) of one relaxation: α₀ (m), H₀ and S₀ (m × n).
struct Anchor {
    alpha: Vec<f64>,
    h: Mat<f64>,
    s: Mat<f64>,
}

/// The fit block (M37b): M₁ = [[yᵀ − α₀ᵀH − αᵀH₀ + α₀ᵀH₀, (α − α₀)ᵀ], [H − H₀, I_m]], (1 + m) × (n + m).
fn fit_entry(l: &Layout, y: &[f64], p: &Anchor, r: usize, c: usize) -> Affine {
    let (n, m) = (l.n, l.m);
    match (r, c) {
        (0, c) if c < n => {
            let mut e =
                Affine::constant(y[c] + (0..m).map(|j| p.alpha[j] * p.h[(j, c)]).sum::<f64>());
            for j in 0..m {
                e.terms.push((l.h(j, c), -p.alpha[j]));
                e.terms.push((l.a(j), -p.h[(j, c)]));
            }
            e
        }
        (0, c) => Affine {
            constant: -p.alpha[c - n],
            terms: vec![(l.a(c - n), 1.0)],
        },
        (r, c) if c < n => Affine {
            constant: -p.h[(r - 1, c)],
            terms: vec![(l.h(r - 1, c), 1.0)],
        },
        (r, c) => Affine::constant(if r - 1 == c - n { 1.0 } else { 0.0 }),
    }
}

/// The complementarity block (M37c), k = mn, entry ℓ = (j, i):
/// M₂ = [[−h₀∘s − h∘s₀ + h₀∘s₀, diag(h − h₀)], [s − s₀, I_k]], 2k × (1 + k).
fn complementarity_entry(l: &Layout, p: &Anchor, r: usize, c: usize) -> Affine {
    let (n, k) = (l.n, l.m * l.n);
    let at = |e: usize| (e / n, e % n);
    match (r, c) {
        (r, 0) if r < k => {
            let (j, i) = at(r);
            let (h0, s0) = (p.h[(j, i)], p.s[(j, i)]);
            Affine {
                constant: h0 * s0,
                terms: vec![(l.s(j, i), -h0), (l.h(j, i), -s0)],
            }
        }
        (r, 0) => {
            let (j, i) = at(r - k);
            Affine {
                constant: -p.s[(j, i)],
                terms: vec![(l.s(j, i), 1.0)],
            }
        }
        (r, c) if r < k && c - 1 == r => {
            let (j, i) = at(r);
            Affine {
                constant: -p.h[(j, i)],
                terms: vec![(l.h(j, i), 1.0)],
            }
        }
        (r, c) => Affine::constant(if r >= k && r - k == c - 1 { 1.0 } else { 0.0 }),
    }
}

/// The relaxation (M37d) at the anchor `p`.
fn relaxation(x: MatRef<'_, f64>, y: &[f64], l: &Layout, gamma: f64, p: &Anchor) -> Conic {
    let (n, m) = (l.n, l.m);
    let mut cp = Conic {
        q: vec![0.0; l.network_vars()],
        ..Conic::default()
    };
    // Zero rows: H − S − U Xᵀ = 0.
    for j in 0..m {
        for i in 0..n {
            let row = j * n + i;
            cp.push(row, l.h(j, i), 1.0);
            cp.push(row, l.s(j, i), -1.0);
            for c in 0..l.d {
                cp.push(row, l.u(j, c), -x[(i, c)]);
            }
        }
    }
    cp.b.resize(m * n, 0.0);
    cp.cones.push(Cone::Zero(m * n));
    // Nonnegative rows: H ≥ 0, S ≥ 0 (s = x).
    for j in 0..m {
        for i in 0..n {
            cp.push(m * n + j * n + i, l.h(j, i), -1.0);
            cp.push(2 * m * n + j * n + i, l.s(j, i), -1.0);
        }
    }
    cp.b.resize(3 * m * n, 0.0);
    cp.cones.push(Cone::Nonnegative(2 * m * n));
    cp.nuclear_norm(1 + m, n + m, 1.0, |r, c| fit_entry(l, y, p, r, c));
    let k = m * n;
    cp.nuclear_norm(2 * k, 1 + k, gamma, |r, c| {
        complementarity_entry(l, p, r, c)
    });
    cp
}

/// A relaxation's optimum.
struct RelaxationSolution {
    x: Vec<f64>,
    objective: f64,
    iterations: usize,
    /// Clarabel reported a solution (possibly of reduced accuracy).
    solved: bool,
    timed_out: bool,
}

/// Solves one relaxation (an error without semidefinite support, see [`Conic::solve`]).
fn solve_conic(cp: &Conic, time_limit: f64) -> Result<RelaxationSolution> {
    let sol = cp.solve(1e-9, 200, time_limit)?;
    Ok(RelaxationSolution {
        x: sol.x,
        objective: sol.objective,
        iterations: sol.iterations,
        solved: sol.solved,
        timed_out: sol.timed_out,
    })
}

fn check(x: MatRef<'_, f64>, y: &[f64], s: &NuclearSettings) -> Result<NuclearSize> {
    let (n, d, m) = (x.nrows(), x.ncols(), s.width);
    if n == 0 || d == 0 || n != y.len() {
        return Err(Error::InvalidData(format!(
            "the nuclear-norm heuristic needs nonempty data with one target per row (X is {n} × {d}, \
             y has {} values)",
            y.len()
        )));
    }
    if x.col_iter().any(|c| c.iter().any(|v| !v.is_finite())) || y.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidData("X and y must be finite".into()));
    }
    if m == 0 {
        return Err(Error::InvalidSetting(
            "the hidden width must be at least 1".into(),
        ));
    }
    if !(s.gamma.is_finite() && s.gamma > 0.0) {
        return Err(Error::InvalidSetting(format!(
            "gamma must be positive, got {}",
            s.gamma
        )));
    }
    if !(s.tol.is_finite() && s.tol > 0.0) || s.max_relaxations == 0 {
        return Err(Error::InvalidSetting(
            "the tolerance must be positive and at least one relaxation allowed".into(),
        ));
    }
    if let NuclearInit::Network { hidden, output } = &s.init {
        if hidden.len() != m || output.len() != m || hidden.iter().any(|u| u.len() != d) {
            return Err(Error::InvalidSetting(format!(
                "the initial network must have width {m} and {d} inputs"
            )));
        }
    }
    let size = nuclear_size(n, d, m);
    if size.complementarity_order > s.max_order {
        return Err(Error::InvalidSetting(format!(
            "the nuclear-norm heuristic would solve semidefinite programs with a block of order \
             3mn + 1 = {} (n = {n} rows, width m = {m}), above the limit {}: it is for tiny problems; \
             use fewer rows, a smaller --width, or raise --nuclear-max-order",
            size.complementarity_order, s.max_order
        )));
    }
    if size.bytes > s.memory_limit {
        let gib = |b: usize| b as f64 / (1u64 << 30) as f64;
        return Err(Error::Memory(format!(
            "the nuclear-norm heuristic needs about {:.2} GiB per relaxation (n = {n}, width {m}) \
             but the limit is {:.2} GiB: use fewer rows, a smaller --width, or raise --max-memory",
            gib(size.bytes),
            gib(s.memory_limit)
        )));
    }
    Ok(size)
}

/// The first anchor (see [`NuclearInit`]).
fn initial_anchor(x: MatRef<'_, f64>, s: &NuclearSettings) -> Anchor {
    let (n, m) = (x.nrows(), s.width);
    match &s.init {
        NuclearInit::Zero => Anchor {
            alpha: vec![0.0; m],
            h: Mat::zeros(m, n),
            s: Mat::zeros(m, n),
        },
        NuclearInit::Random => {
            let mut r = Rng::new(s.seed);
            let alpha = (0..m).map(|_| r.normal()).collect();
            let h = Mat::from_fn(m, n, |_, _| r.normal().abs());
            let sm = Mat::from_fn(m, n, |_, _| r.normal().abs());
            Anchor { alpha, h, s: sm }
        }
        NuclearInit::Network { hidden, output } => {
            let z = |j: usize, i: usize| {
                (0..x.ncols())
                    .map(|c| hidden[j][c] * x[(i, c)])
                    .sum::<f64>()
            };
            Anchor {
                alpha: output.clone(),
                h: Mat::from_fn(m, n, |j, i| z(j, i).max(0.0)),
                s: Mat::from_fn(m, n, |j, i| (-z(j, i)).max(0.0)),
            }
        }
    }
}

/// max_i |Σ_j α_j (u_jᵀx_i)₊ − y_i|.
pub fn network_residual(
    x: MatRef<'_, f64>,
    y: &[f64],
    hidden: MatRef<'_, f64>,
    output: &[f64],
) -> f64 {
    (0..x.nrows())
        .map(|i| {
            let f: f64 = (0..hidden.nrows())
                .map(|j| {
                    let z: f64 = (0..x.ncols()).map(|c| hidden[(j, c)] * x[(i, c)]).sum();
                    output[j] * z.max(0.0)
                })
                .sum();
            (f - y[i]).abs()
        })
        .fold(0.0, f64::max)
}

/// Runs the sequential convex relaxation (M37e) from `settings.init`; see the module docs.
/// `Err` only for bad input, sizes past the limits, or a build without the semidefinite solver.
pub fn nuclear_heuristic(
    x: MatRef<'_, f64>,
    y: &[f64],
    settings: &NuclearSettings,
    observer: &mut dyn Observe,
    stop: &StopFlag,
) -> Result<NuclearRun> {
    check(x, y, settings)?;
    let start = Instant::now();
    let l = Layout {
        n: x.nrows(),
        d: x.ncols(),
        m: settings.width,
    };
    let (n, m) = (l.n, l.m);
    let scale = y.iter().fold(1.0f64, |a, v| a.max(v.abs()));
    let mut anchor = initial_anchor(x, settings);
    let mut run = NuclearRun {
        hidden: Mat::zeros(m, l.d),
        output: vec![0.0; m],
        residual: network_residual(x, y, Mat::<f64>::zeros(m, l.d).as_ref(), &vec![0.0; m]),
        best_relaxation: 0,
        history: vec![],
        ipm_iterations: 0,
        status: Status::MaxIterations,
    };
    for k in 1..=settings.max_relaxations {
        let left = settings
            .time_limit
            .map_or(f64::INFINITY, |t| t - start.elapsed().as_secs_f64());
        if left <= 0.0 {
            run.status = Status::TimeLimit;
            break;
        }
        if stop.is_set() {
            run.status = Status::Interrupted;
            break;
        }
        let sol = solve_conic(&relaxation(x, y, &l, settings.gamma, &anchor), left)?;
        run.ipm_iterations += sol.iterations;
        if !sol.solved {
            run.status = if sol.timed_out {
                Status::TimeLimit
            } else if run.history.is_empty() {
                Status::NumericalError
            } else {
                Status::Stalled
            };
            break;
        }
        let v = &sol.x;
        let hidden = Mat::from_fn(m, l.d, |j, c| v[l.u(j, c)]);
        let output: Vec<f64> = (0..m).map(|j| v[l.a(j)]).collect();
        anchor = Anchor {
            alpha: output.clone(),
            h: Mat::from_fn(m, n, |j, i| v[l.h(j, i)]),
            s: Mat::from_fn(m, n, |j, i| v[l.s(j, i)]),
        };
        let fit_violation = (0..n)
            .map(|i| ((0..m).map(|j| output[j] * anchor.h[(j, i)]).sum::<f64>() - y[i]).abs())
            .fold(0.0, f64::max);
        let complementarity_violation = (0..m)
            .flat_map(|j| (0..n).map(move |i| (j, i)))
            .map(|(j, i)| (anchor.h[(j, i)] * anchor.s[(j, i)]).abs())
            .fold(0.0, f64::max);
        let residual = network_residual(x, y, hidden.as_ref(), &output);
        run.history.push(RelaxationRecord {
            nuclear_objective: sol.objective,
            fit_violation,
            complementarity_violation,
            network_residual: residual,
            ipm_iterations: sol.iterations,
        });
        if residual < run.residual || run.best_relaxation == 0 {
            run.hidden = hidden;
            run.output = output;
            run.residual = residual;
            run.best_relaxation = k;
        }
        let record = IterRecord {
            iteration: k,
            outer: 0,
            objective: sol.objective,
            gap: f64::NAN,
            violation: fit_violation.max(complementarity_violation),
            seconds: start.elapsed().as_secs_f64(),
        };
        if !observer.on_iter(&record) {
            run.status = Status::Interrupted;
            break;
        }
        if run.residual <= settings.tol * scale {
            run.status = Status::Converged;
            break;
        }
    }
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::Silent;

    /// y = f(x) for a planted network of width m on n points in d − 1 dimensions plus a bias.
    pub(crate) fn planted(
        n: usize,
        d: usize,
        m: usize,
        seed: u64,
    ) -> (Mat<f64>, Vec<f64>, Mat<f64>, Vec<f64>) {
        let mut r = Rng::new(seed);
        let x = Mat::from_fn(n, d, |_, c| if c + 1 == d { 1.0 } else { r.normal() });
        let u = Mat::from_fn(m, d, |_, _| r.normal());
        let a: Vec<f64> = (0..m)
            .map(|j| if j % 2 == 0 { 1.0 } else { -1.0 } * (0.5 + r.uniform()))
            .collect();
        let y = (0..n)
            .map(|i| {
                (0..m)
                    .map(|j| a[j] * (0..d).map(|c| u[(j, c)] * x[(i, c)]).sum::<f64>().max(0.0))
                    .sum()
            })
            .collect();
        (x, y, u, a)
    }

    /// The conic rows of a relaxation evaluated at a point reproduce the matrices (M37b), (M37c)
    /// built directly, so the Schur complement of each block is C − AB.
    #[test]
    fn blocks_have_the_schur_complement_of_the_bilinear_residual() {
        let (n, d, m) = (3, 2, 2);
        let l = Layout { n, d, m };
        let mut r = Rng::new(3);
        let y: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let p = Anchor {
            alpha: (0..m).map(|_| r.normal()).collect(),
            h: Mat::from_fn(m, n, |_, _| r.normal()),
            s: Mat::from_fn(m, n, |_, _| r.normal()),
        };
        let v: Vec<f64> = (0..l.network_vars()).map(|_| r.normal()).collect();
        let eval = |e: Affine| e.constant + e.terms.iter().map(|&(k, c)| c * v[k]).sum::<f64>();
        // M₁: top-left minus (α − α₀)ᵀ(H − H₀) = yᵀ − αᵀH.
        for i in 0..n {
            let top = eval(fit_entry(&l, &y, &p, 0, i));
            let corr: f64 = (0..m)
                .map(|j| {
                    eval(fit_entry(&l, &y, &p, 0, n + j)) * eval(fit_entry(&l, &y, &p, 1 + j, i))
                })
                .sum();
            let direct = y[i] - (0..m).map(|j| v[l.a(j)] * v[l.h(j, i)]).sum::<f64>();
            assert!((top - corr - direct).abs() < 1e-12);
        }
        for j in 0..m {
            for j2 in 0..m {
                let want = if j == j2 { 1.0 } else { 0.0 };
                assert_eq!(eval(fit_entry(&l, &y, &p, 1 + j, n + j2)), want);
            }
        }
        // M₂: entry ℓ of the first column minus Σ_ℓ' diag(h − h₀)_{ℓℓ'} (s − s₀)_ℓ' = −h_ℓ s_ℓ.
        let k = m * n;
        for e in 0..k {
            let (j, i) = (e / n, e % n);
            let top = eval(complementarity_entry(&l, &p, e, 0));
            let corr: f64 = (0..k)
                .map(|e2| {
                    eval(complementarity_entry(&l, &p, e, 1 + e2))
                        * eval(complementarity_entry(&l, &p, k + e2, 0))
                })
                .sum();
            assert!((top - corr + v[l.h(j, i)] * v[l.s(j, i)]).abs() < 1e-12);
            for e2 in 0..k {
                let want = if e == e2 { 1.0 } else { 0.0 };
                assert_eq!(eval(complementarity_entry(&l, &p, k + e, 1 + e2)), want);
            }
        }
    }

    /// The semidefinite rows give the nuclear norm: with no other constraint, min ‖M − C‖_* over a
    /// free scalar entry is attained and equals the sum of singular values at the optimum.
    #[cfg(feature = "nuclear")]
    #[test]
    fn epigraph_rows_give_the_nuclear_norm() {
        // M = [[1, 2], [3, x]] over x: the minimum of ‖M‖_* over x; check against a scan.
        let mut cp = Conic {
            q: vec![0.0],
            ..Conic::default()
        };
        cp.nuclear_norm(2, 2, 1.0, |r, c| match (r, c) {
            (0, 0) => Affine::constant(1.0),
            (0, 1) => Affine::constant(2.0),
            (1, 0) => Affine::constant(3.0),
            _ => Affine {
                constant: 0.0,
                terms: vec![(0, 1.0)],
            },
        });
        let sol = solve_conic(&cp, f64::INFINITY).unwrap();
        assert!(sol.solved);
        let nuc = |t: f64| {
            let m = faer::mat![[1.0, 2.0], [3.0, t]];
            m.singular_values().unwrap().iter().sum::<f64>()
        };
        let scan = (0..=4000)
            .map(|i| nuc(-10.0 + i as f64 * 0.005))
            .fold(f64::INFINITY, f64::min);
        assert!(
            (sol.objective - nuc(sol.x[0])).abs() < 1e-6,
            "{} vs {}",
            sol.objective,
            nuc(sol.x[0])
        );
        assert!(sol.objective <= scan + 1e-6 && sol.objective >= scan - 1e-3);
    }

    /// Anchored at the planted network (the seed's parameter option 3), one relaxation returns an
    /// exact fit.
    #[cfg(feature = "nuclear")]
    #[test]
    fn anchored_at_a_planted_network_one_relaxation_fits() {
        let (x, y, u, a) = planted(4, 2, 2, 7);
        let settings = NuclearSettings {
            init: NuclearInit::Network {
                hidden: (0..2)
                    .map(|j| (0..2).map(|c| u[(j, c)]).collect())
                    .collect(),
                output: a.clone(),
            },
            ..NuclearSettings::default()
        };
        let run =
            nuclear_heuristic(x.as_ref(), &y, &settings, &mut Silent, &StopFlag::new()).unwrap();
        eprintln!("{:?}", run.history);
        assert_eq!(run.status, Status::Converged);
        assert_eq!(run.history.len(), 1);
        assert!(run.residual <= 1e-6);
    }

    #[test]
    fn sizes_past_the_limits_are_refused_before_solving() {
        let (x, y, _, _) = planted(30, 4, 3, 1);
        let e = nuclear_heuristic(
            x.as_ref(),
            &y,
            &NuclearSettings::default(),
            &mut Silent,
            &StopFlag::new(),
        )
        .unwrap_err();
        assert!(e.to_string().contains("--nuclear-max-order"), "{e}");
        let small = NuclearSettings {
            max_order: 1000,
            memory_limit: 1 << 20,
            ..NuclearSettings::default()
        };
        let e =
            nuclear_heuristic(x.as_ref(), &y, &small, &mut Silent, &StopFlag::new()).unwrap_err();
        assert!(matches!(e, Error::Memory(_)), "{e}");
        let bad = NuclearSettings {
            gamma: -1.0,
            ..NuclearSettings::default()
        };
        assert!(nuclear_heuristic(x.as_ref(), &y, &bad, &mut Silent, &StopFlag::new()).is_err());
    }

    /// Without the feature the sizes are still checked, and then the heuristic says how to get a
    /// semidefinite solver.
    #[cfg(not(feature = "nuclear"))]
    #[test]
    fn without_the_feature_the_heuristic_says_to_rebuild() {
        let (x, y, _, _) = planted(4, 2, 2, 7);
        let e = nuclear_heuristic(
            x.as_ref(),
            &y,
            &NuclearSettings::default(),
            &mut Silent,
            &StopFlag::new(),
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("rebuild with the `nuclear` feature"),
            "{e}"
        );
    }
}
