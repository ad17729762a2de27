//! The exact backend: the convex programs written as conic programs (second-order and exponential
//! cones) and solved to high accuracy by the interior-point solver Clarabel (Goulart & Chen, 2024),
//! following docs/programs.md (M22).
//!
//! Clarabel solves `min ½xᵀQx + qᵀx  s.t.  Ax + s = b, s ∈ K`. The variables are, in this order,
//!
//! ```text
//! [ group weights (G·d) | group norms t (G) | predictions r (n) | logistic only: e (n) | a (n) | b (n) ]
//!                                                                  | hinge only: h (n) ]
//! ```
//!
//! with `G = P` groups `u_i` for gated ReLU (M11) and `G = 2P` groups `[v_1..v_P, w_1..w_P]` for ReLU
//! (M6). The cone blocks, in order:
//!
//! - Zero (n rows): `Σ_k ±D_{i(k)} X x_k − r = y` (squared loss, `r = ŷ − y`) or `= 0` (logistic
//!   and hinge, `r = ŷ`); the sign is − for the `w` groups.
//! - Nonnegative: ReLU only, `2nP` rows `−X̃_i v_i + s = 0` then `−X̃_i w_i + s = 0`, i.e.
//!   `X̃_i v_i ≥ 0`, `X̃_i w_i ≥ 0`; logistic only, `n` rows `a_j + b_j ≤ 1`; hinge only, `2n` rows
//!   `h_j ≥ 0` then `h_j ≥ 1 − y_j r_j` (the epigraph of the hinge, Ergen et al. 2023, Corollary 4.1).
//! - Second-order, one `SOC_{d+1}` per group: `(t_k, x_k)`, `‖x_k‖ ≤ t_k`.
//! - Exponential, logistic only, two per sample: `(−y_j r_j − e_j, 1, a_j)` and `(−e_j, 1, b_j)` in
//!   `K_exp = {(x, y, z) : y·exp(x/y) ≤ z, y > 0}`, which together say
//!   `exp(−y_j ŷ_j − e_j) + exp(−e_j) ≤ 1`, i.e. `log(1 + exp(−y_j ŷ_j)) ≤ e_j`.
//!
//! Objective: `Q = (1/n) I` on `r` and `q = λ` on `t` (squared loss), or `Q = 0`, `q = λ` on `t` and
//! `1/n` on `e` (logistic) or on `h` (hinge; then the program is a linear program when d = 1, the
//! threshold Lasso). The conic objective is therefore exactly `F` in the normalization of
//! docs/programs.md (M3), so Clarabel's dual variables need no rescaling: the multipliers `z` of the
//! nonnegative rows are the `γ_i, ξ_i ≥ 0` of the Lagrangian `F − Σ_i (γ_iᵀ X̃_i v_i + ξ_iᵀ X̃_i w_i)`,
//! which enter the dual (M9) of Pilanci & Ergen (ICML 2020).
//!
//! With [`ExactSettings::pooling`] K > 1 the program is the convolutional one (M35a): X is the
//! stacked patch matrix (nK rows, K per sample), the data rows read `Σ_k ±Π M_{i(k)} X x_k` with Π
//! the average over each sample's K rows, and the nonnegative block has one row per patch row,
//! `(2D_i − I) X x_k ≥ 0` on all nK rows (cones for every patch, (M35a)).

use std::time::Instant;

use clarabel::algebra::CscMatrix;
use clarabel::solver::{
    DefaultSettingsBuilder, DefaultSolver, IPSolver, SolverStatus, SupportedConeT,
};
use faer::{Mat, MatRef};

use crate::error::{Error, Result};
use crate::features::PatternSet;
use crate::program::datafit::{entropy, sigmoid, softplus};
use crate::program::{Formulation, Loss};
use crate::solver::{Info, Status};

/// Settings of the exact backend.
#[derive(Clone, Debug, PartialEq)]
pub struct ExactSettings {
    /// Clarabel's absolute and relative gap tolerances and its feasibility tolerance.
    pub tol: f64,
    /// Interior-point iteration cap.
    pub max_iter: u32,
    /// Wall-clock limit in seconds for the interior-point iterations, if any.
    pub time_limit: Option<f64>,
    /// Rows of X per sample K of the average pooling of a convolutional program (M35a); 1 (the
    /// default) for a fully connected network.
    pub pooling: usize,
}

impl Default for ExactSettings {
    fn default() -> Self {
        ExactSettings {
            tol: 1e-10,
            max_iter: 500,
            time_limit: None,
            pooling: 1,
        }
    }
}

/// What the exact backend returns.
#[derive(Clone, Debug)]
pub struct ExactSolution {
    /// The dual point θ of the data rows (before the clipping and scaling of the certificate) that
    /// gave the reported bound: Clarabel's multipliers or the point the predictions induce.
    pub theta: Vec<f64>,
    /// Gated: d × P (`u_i` in column i). ReLU, leaky ReLU, abs: d × 2P, `[V | W]` (`v_i` in column
    /// i, `w_i` in column P + i).
    pub weights: Mat<f64>,
    /// ReLU only: the nonnegative-cone multipliers n × 2P (nK × 2P with pooling), `[Γ | Ξ]` (`γ_i`, `ξ_i` of docs/programs.md
    /// (M9)), in the normalization of (M3) so that they can be plugged into the dual (M9): at the
    /// optimum, `Xᵀ(M_iθ + S_iγ_i) = λ v_i/‖v_i‖` and `Xᵀ(M_iθ − S_iξ_i) = −λ w_i/‖w_i‖` for nonzero
    /// `v_i`, `w_i`, with `θ = (y − ŷ)/n` (squared loss) or `y∘σ(−y∘ŷ)/n` (logistic), and M_i = D_i
    /// for ReLU, aI + (1 − a)D_i for leaky ReLU, S_i for abs (M40). `None` for gated ReLU.
    pub cone_multipliers: Option<Mat<f64>>,
    /// `objective`: (M3) recomputed from `weights`. `gap`: the larger of Clarabel's primal–dual gap
    /// and `objective` minus the certified dual bound of (M9)/(M13)/(M23) at the better of two dual
    /// points (the one the predictions induce and Clarabel's own), scaled to feasibility;
    /// `dual_objective = objective − gap`. `violation`: largest cone violation of `weights` (ReLU).
    /// `status`: with the certificate test `gap ≤ c·tol·max(1, |objective|)` and
    /// `violation ≤ c·tol·max(1, max_j ‖x_j‖·max_k ‖x_k‖)`: Clarabel solved → converged if it holds
    /// with c = 1000, else reduced accuracy; almost solved or insufficient progress → converged if it
    /// holds with c = 1, reduced accuracy with c = 1000, else reduced accuracy (almost solved) or
    /// stalled (insufficient progress); iteration and time caps → max iterations and time limit;
    /// infeasibility certificates and numerical failures → numerical error.
    pub info: Info,
}

/// Sizes of the conic program of docs/programs.md (M22).
struct Layout {
    /// Samples (data rows).
    n: usize,
    /// Rows of X: n, or nK with pooling.
    rows: usize,
    /// Rows per sample K.
    pool: usize,
    d: usize,
    p: usize,
    groups: usize,
    relu: bool,
    /// The value of the masks M_i where a pattern bit is 0 (M40; 0 for D_i itself).
    off: f64,
    logistic: bool,
    hinge: bool,
}

impl Layout {
    fn new(
        rows: usize,
        pool: usize,
        d: usize,
        p: usize,
        formulation: Formulation,
        loss: Loss,
    ) -> Self {
        let relu = formulation.is_cone_program();
        Layout {
            n: rows / pool,
            rows,
            pool,
            d,
            p,
            groups: if relu { 2 * p } else { p },
            relu,
            off: formulation.mask_off_value(),
            logistic: loss == Loss::Logistic,
            hinge: loss == Loss::Hinge,
        }
    }
    /// Extra variables after `r`: (e, a, b) for logistic, h for hinge.
    fn extra_vars(&self) -> usize {
        if self.logistic {
            3 * self.n
        } else if self.hinge {
            self.n
        } else {
            0
        }
    }
    /// Whether `r` holds the predictions ŷ (logistic, hinge) rather than the residual ŷ − y.
    fn r_is_prediction(&self) -> bool {
        self.logistic || self.hinge
    }
    fn t_off(&self) -> usize {
        self.groups * self.d
    }
    fn r_off(&self) -> usize {
        self.t_off() + self.groups
    }
    fn e_off(&self) -> usize {
        self.r_off() + self.n
    }
    fn a_off(&self) -> usize {
        self.e_off() + self.n
    }
    fn b_off(&self) -> usize {
        self.a_off() + self.n
    }
    fn n_vars(&self) -> usize {
        self.r_off() + self.n + self.extra_vars()
    }
    fn cone_rows(&self) -> usize {
        if self.relu {
            self.groups * self.rows
        } else {
            0
        }
    }
    fn nonneg_rows(&self) -> usize {
        self.cone_rows()
            + if self.logistic {
                self.n
            } else if self.hinge {
                2 * self.n
            } else {
                0
            }
    }
    fn soc_base(&self) -> usize {
        self.n + self.nonneg_rows()
    }
    fn exp_base(&self) -> usize {
        self.soc_base() + self.groups * (self.d + 1)
    }
    fn n_rows(&self) -> usize {
        self.exp_base() + if self.logistic { 6 * self.n } else { 0 }
    }
    /// (M_i)_jj for a pattern bit: 1, or the off value (0 for D_i; a leaky, −1 abs, (M40)).
    fn mask(&self, bit: bool) -> f64 {
        if bit {
            1.0
        } else {
            self.off
        }
    }
    /// Pattern index and sign (+1 for `u_i`, `v_i`; −1 for `w_i`) of group `k`.
    fn group(&self, k: usize) -> (usize, f64) {
        if k < self.p {
            (k, 1.0)
        } else {
            (k - self.p, -1.0)
        }
    }
}

/// Upper estimate of the bytes Clarabel needs for a problem of this size (the constraint matrix, its
/// scaled copy, the KKT matrix and an LDLᵀ factor whose fill is bounded by the dense coupling of the
/// `n` data rows and of each group's `d + 1` second-order rows), for refusing huge problems up front.
/// The ReLU program has about `3ndP` nonzeros (docs/programs.md (M22)).
pub fn exact_memory_estimate(
    n: usize,
    d: usize,
    p: usize,
    formulation: Formulation,
    loss: Loss,
) -> usize {
    let logistic = loss == Loss::Logistic;
    let g = match formulation {
        Formulation::Gated | Formulation::Threshold => p,
        _ => p.saturating_mul(2),
    };
    let cone_rows = match formulation {
        Formulation::Gated | Formulation::Threshold => 0,
        _ => g.saturating_mul(n),
    };
    let hinge = loss == Loss::Hinge;
    let extra = if logistic {
        n.saturating_mul(3)
    } else if hinge {
        n
    } else {
        0
    };
    let n_vars = g
        .saturating_mul(d.saturating_add(1))
        .saturating_add(n)
        .saturating_add(extra);
    let n_rows = n
        .saturating_add(cone_rows)
        .saturating_add(g.saturating_mul(d.saturating_add(1)))
        .saturating_add(if logistic {
            n.saturating_mul(7)
        } else if hinge {
            n.saturating_mul(2)
        } else {
            0
        });
    // Nonzeros of A: data rows (at most n·d per group), cone rows, second-order rows, extras.
    let nnz_a = g
        .saturating_mul(n)
        .saturating_mul(d)
        .saturating_add(cone_rows.saturating_mul(d))
        .saturating_add(g.saturating_mul(d.saturating_add(1)))
        .saturating_add(n.saturating_mul(if logistic { 10 } else { 1 }));
    let dim = n_vars.saturating_add(n_rows);
    let kkt = nnz_a.saturating_add(dim).saturating_add(n);
    // Fill of the factor: dense n × n block of the data rows, the coupling of the data rows with every
    // weight, and a dense (d + 1)² block per group.
    let d1 = d.saturating_add(1);
    let fill = n
        .saturating_mul(n)
        .saturating_add(g.saturating_mul(d).saturating_mul(n))
        .saturating_add(g.saturating_mul(d1.saturating_mul(d1)));
    // 16 bytes per stored entry (value and row index); three copies of A/KKT, two of the factor;
    // about 40 working vectors of length dim.
    let entries = kkt
        .saturating_mul(3)
        .saturating_add(kkt.saturating_add(fill).saturating_mul(2));
    entries
        .saturating_mul(16)
        .saturating_add(dim.saturating_mul(40 * 8))
}

fn check_inputs(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    loss: Loss,
    lambda: f64,
    settings: &ExactSettings,
) -> Result<()> {
    let rows = patterns.n_samples();
    if patterns.is_empty() {
        return Err(Error::InvalidData("the pattern set is empty".into()));
    }
    if x.nrows() != rows {
        return Err(Error::InvalidData(format!(
            "X has {} rows but the patterns cover {rows} rows",
            x.nrows()
        )));
    }
    let k = settings.pooling;
    if k == 0 || !rows.is_multiple_of(k) {
        return Err(Error::InvalidSetting(format!(
            "pooling groups of {k} rows do not divide the {rows} rows of X"
        )));
    }
    let n = rows / k;
    if x.ncols() == 0 {
        return Err(Error::InvalidData("X has no columns".into()));
    }
    if y.len() != n {
        return Err(Error::InvalidData(format!(
            "y has length {} but X has {n} samples",
            y.len()
        )));
    }
    for j in 0..rows {
        for c in 0..x.ncols() {
            if !x[(j, c)].is_finite() {
                return Err(Error::InvalidData(format!(
                    "X[{j}, {c}] = {} is not finite",
                    x[(j, c)]
                )));
            }
        }
    }
    if let Some(j) = y.iter().position(|v| !v.is_finite()) {
        return Err(Error::InvalidData(format!(
            "y[{j}] = {} is not finite",
            y[j]
        )));
    }
    match loss {
        Loss::Squared => {
            if !(lambda.is_finite() && lambda >= 0.0) {
                return Err(Error::InvalidSetting(format!(
                    "lambda = {lambda} must be finite and >= 0"
                )));
            }
        }
        Loss::Logistic | Loss::Hinge => {
            if !(lambda.is_finite() && lambda > 0.0) {
                return Err(Error::InvalidSetting(format!(
                    "lambda = {lambda} must be finite and > 0 for the {} loss",
                    loss.as_str()
                )));
            }
            if let Some(j) = y.iter().position(|&v| v != 1.0 && v != -1.0) {
                return Err(Error::InvalidSetting(format!(
                    "the {} loss needs labels -1 or +1, y[{j}] = {}",
                    loss.as_str(),
                    y[j]
                )));
            }
        }
        Loss::Softmax => {
            return Err(Error::InvalidSetting(
                "the softmax loss is a vector-output program: solve it with \
                 solver::exact_outputs"
                    .into(),
            ))
        }
    }
    if !(settings.tol.is_finite() && settings.tol > 0.0) {
        return Err(Error::InvalidSetting(format!(
            "exact tolerance {} must be finite and > 0",
            settings.tol
        )));
    }
    if settings.max_iter == 0 {
        return Err(Error::InvalidSetting(
            "exact max_iter must be at least 1".into(),
        ));
    }
    if let Some(t) = settings.time_limit {
        if t.is_nan() || t <= 0.0 {
            return Err(Error::InvalidSetting(format!(
                "exact time limit {t} must be > 0 seconds"
            )));
        }
    }
    Ok(())
}

/// Solves the gated (M11) or ReLU (M6) program over `patterns` with the squared or logistic loss
/// exactly (to `settings.tol`) by the conic form docs/programs.md (M22).
///
/// `x` is n × d (bias column included if wanted), `y` has length n (labels ±1 for the logistic
/// loss), `λ ≥ 0` (`λ > 0` for the logistic loss). Bad input is an error; how the interior-point
/// method ended is `info.status`.
///
/// The objective is accurate to the gap; the weights themselves, where groups sit on the boundary
/// of the dual constraints (`‖c_k‖ = λ`), only to about the square root of the gap (relative
/// optimality conditions of about 1e-6 to 1e-5 at the default tolerance). At `λ = 0` the gap is
/// Clarabel's alone, since the dual constraints are then equalities. The operator counters of
/// `info` are 0: the backend works on the assembled sparse matrix.
pub fn solve_exact(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    formulation: Formulation,
    loss: Loss,
    lambda: f64,
    settings: &ExactSettings,
) -> Result<ExactSolution> {
    let start = Instant::now();
    check_inputs(x, y, patterns, loss, lambda, settings)?;
    let rows = patterns.n_samples();
    if exact_memory_estimate(rows, x.ncols(), patterns.len(), formulation, loss) == usize::MAX {
        return Err(Error::Memory(
            "the conic program is too large to index; use fewer patterns or another solver".into(),
        ));
    }
    let d = x.ncols();
    let k_pool = settings.pooling;
    let l = Layout::new(rows, k_pool, d, patterns.len(), formulation, loss);
    let n = l.n;
    let nf = n as f64;

    let mut ri: Vec<usize> = Vec::new();
    let mut ci: Vec<usize> = Vec::new();
    let mut vals: Vec<f64> = Vec::new();
    let mut push = |r: usize, c: usize, v: f64| {
        if v != 0.0 {
            ri.push(r);
            ci.push(c);
            vals.push(v);
        }
    };
    let mut b = vec![0.0; l.n_rows()];

    // Zero block: Σ_k ±ΠM_i X x_k − r = y (squared) or 0 (logistic); M_i = D_i but for (M40), Π
    // the identity but for (M35a).
    let mut coef = vec![0.0; d];
    for k in 0..l.groups {
        let (i, sign) = l.group(k);
        for j in 0..n {
            coef.fill(0.0);
            for jr in j * k_pool..(j + 1) * k_pool {
                let m = sign * l.mask(patterns.get(jr, i)) / k_pool as f64;
                for (c, v) in coef.iter_mut().enumerate() {
                    *v += m * x[(jr, c)];
                }
            }
            for (c, &v) in coef.iter().enumerate() {
                push(j, k * d + c, v);
            }
        }
    }
    for j in 0..n {
        push(j, l.r_off() + j, -1.0);
        if !l.r_is_prediction() {
            b[j] = y[j];
        }
    }
    // Nonnegative block: −X̃_i x_k + s = 0 (ReLU), then a_j + b_j + s = 1 (logistic).
    if l.relu {
        for k in 0..l.groups {
            let (i, _) = l.group(k);
            for j in 0..rows {
                let s = if patterns.get(j, i) { 1.0 } else { -1.0 };
                for c in 0..d {
                    push(n + k * rows + j, k * d + c, -s * x[(j, c)]);
                }
            }
        }
    }
    if l.logistic {
        let base = n + l.cone_rows();
        for j in 0..n {
            push(base + j, l.a_off() + j, 1.0);
            push(base + j, l.b_off() + j, 1.0);
            b[base + j] = 1.0;
        }
    }
    if l.hinge {
        // −h_j + s = 0 (h_j ≥ 0); −h_j − y_j r_j + s = −1 (h_j ≥ 1 − y_j r_j).
        let base = n + l.cone_rows();
        for (j, &yj) in y.iter().enumerate() {
            push(base + j, l.e_off() + j, -1.0);
            push(base + n + j, l.e_off() + j, -1.0);
            push(base + n + j, l.r_off() + j, -yj);
            b[base + n + j] = -1.0;
        }
    }
    // Second-order block: (t_k, x_k), rows −e_{t_k} and −I on x_k.
    for k in 0..l.groups {
        let row = l.soc_base() + k * (d + 1);
        push(row, l.t_off() + k, -1.0);
        for c in 0..d {
            push(row + 1 + c, k * d + c, -1.0);
        }
    }
    // Exponential block: (−y_j r_j − e_j, 1, a_j), (−e_j, 1, b_j).
    if l.logistic {
        for (j, &yj) in y.iter().enumerate() {
            let row = l.exp_base() + 6 * j;
            push(row, l.r_off() + j, yj);
            push(row, l.e_off() + j, 1.0);
            b[row + 1] = 1.0;
            push(row + 2, l.a_off() + j, -1.0);
            push(row + 3, l.e_off() + j, 1.0);
            b[row + 4] = 1.0;
            push(row + 5, l.b_off() + j, -1.0);
        }
    }
    let a_mat = CscMatrix::new_from_triplets(l.n_rows(), l.n_vars(), ri, ci, vals);

    let mut q = vec![0.0; l.n_vars()];
    for qk in &mut q[l.t_off()..l.t_off() + l.groups] {
        *qk = lambda;
    }
    let p_mat = if l.r_is_prediction() {
        for qj in &mut q[l.e_off()..l.e_off() + n] {
            *qj = 1.0 / nf;
        }
        CscMatrix::zeros((l.n_vars(), l.n_vars()))
    } else {
        let idx: Vec<usize> = (l.r_off()..l.r_off() + n).collect();
        CscMatrix::new_from_triplets(l.n_vars(), l.n_vars(), idx.clone(), idx, vec![1.0 / nf; n])
    };

    let mut cones: Vec<SupportedConeT<f64>> = vec![SupportedConeT::ZeroConeT(n)];
    if l.nonneg_rows() > 0 {
        cones.push(SupportedConeT::NonnegativeConeT(l.nonneg_rows()));
    }
    for _ in 0..l.groups {
        cones.push(SupportedConeT::SecondOrderConeT(d + 1));
    }
    if l.logistic {
        for _ in 0..2 * n {
            cones.push(SupportedConeT::ExponentialConeT());
        }
    }

    let clarabel_settings = DefaultSettingsBuilder::default()
        .verbose(false)
        .max_iter(settings.max_iter)
        .time_limit(settings.time_limit.unwrap_or(f64::INFINITY))
        .tol_gap_abs(settings.tol)
        .tol_gap_rel(settings.tol)
        .tol_feas(settings.tol)
        .iterative_refinement_reltol(1e-15)
        .iterative_refinement_abstol(1e-15)
        .iterative_refinement_max_iter(30)
        .build()
        .map_err(|e| Error::Backend(format!("settings: {e}")))?;
    let mut solver = DefaultSolver::new(&p_mat, &q, &a_mat, &b, &cones, clarabel_settings)
        .map_err(|e| Error::Backend(e.to_string()))?;
    solver.solve();
    let sol = &solver.solution;

    let finite = sol.x.iter().all(|v| v.is_finite()) && sol.z.iter().all(|v| v.is_finite());
    let clean = |v: f64| if v.is_finite() { v } else { 0.0 };
    let weights = Mat::from_fn(d, l.groups, |c, k| clean(sol.x[k * d + c]));
    let cone_multipliers = if l.relu {
        Some(Mat::from_fn(rows, l.groups, |j, k| {
            clean(sol.z[n + k * rows + j])
        }))
    } else {
        None
    };

    let eval = evaluate(x, y, patterns, &l, lambda, weights.as_ref());
    // Two dual points: the one induced by the primal predictions, and Clarabel's own multipliers of
    // the data rows (stationarity in r gives θ = −z there); the better certified bound is kept.
    let multipliers = cone_multipliers.as_ref().map(|m| m.as_ref());
    let theta_dual: Vec<f64> = (0..n).map(|j| -clean(sol.z[j])).collect();
    let primal_bound = dual_bound(x, y, patterns, &l, lambda, &eval.theta, multipliers);
    let clarabel_bound = dual_bound(x, y, patterns, &l, lambda, &theta_dual, multipliers);
    let (bound, theta) = if clarabel_bound >= primal_bound {
        (clarabel_bound, theta_dual)
    } else {
        (primal_bound, eval.theta.clone())
    };
    let clarabel_gap = sol.obj_val - sol.obj_val_dual;
    // At λ = 0 the dual constraints are equalities that no scaling can restore, so only
    // Clarabel's own gap is available there.
    let mut gap = if lambda > 0.0 {
        (eval.objective - bound).max(0.0)
    } else {
        0.0
    };
    if clarabel_gap.is_finite() {
        gap = gap.max(clarabel_gap);
    }
    // The status follows the certificate: Clarabel measures its tolerances on the equilibrated
    // problem, while `gap` and `violation` are measured on the returned solution itself.
    let row_norm = (0..rows)
        .map(|j| (0..d).map(|c| x[(j, c)].powi(2)).sum::<f64>().sqrt())
        .fold(0.0, f64::max);
    let weight_norm = (0..l.groups)
        .map(|k| (0..d).map(|c| weights[(c, k)].powi(2)).sum::<f64>().sqrt())
        .fold(0.0, f64::max);
    let gap_scale = eval.objective.abs().max(1.0);
    let viol_scale = (row_norm * weight_norm).max(1.0);
    let within = |factor: f64| {
        gap <= factor * settings.tol * gap_scale
            && eval.violation <= factor * settings.tol * viol_scale
    };
    let measured = if within(1.0) {
        Some(Status::Converged)
    } else if within(1000.0) {
        Some(Status::ReducedAccuracy)
    } else {
        None
    };
    let status = match sol.status {
        // Clarabel's own test held; the certificate must confirm it up to the factor 1000 that
        // separates measures on the equilibrated and on the original problem.
        SolverStatus::Solved => match measured {
            Some(_) => Status::Converged,
            None => Status::ReducedAccuracy,
        },
        SolverStatus::AlmostSolved => measured.unwrap_or(Status::ReducedAccuracy),
        SolverStatus::InsufficientProgress => measured.unwrap_or(Status::Stalled),
        SolverStatus::MaxIterations => Status::MaxIterations,
        SolverStatus::MaxTime => Status::TimeLimit,
        _ => Status::NumericalError,
    };
    let status = if finite && eval.objective.is_finite() && gap.is_finite() {
        status
    } else {
        Status::NumericalError
    };
    let info = Info {
        status,
        objective: eval.objective,
        dual_objective: eval.objective - gap,
        gap,
        violation: eval.violation,
        iterations: sol.iterations as usize,
        outer_iterations: 0,
        forward_calls: 0,
        adjoint_calls: 0,
        seconds: start.elapsed().as_secs_f64(),
    };
    Ok(ExactSolution {
        weights,
        theta,
        cone_multipliers,
        info,
    })
}

/// Objective, the dual point `θ` it induces, and cone violation of a solution.
struct Evaluation {
    objective: f64,
    theta: Vec<f64>,
    violation: f64,
}

/// Predictions `ŷ = Σ_k ±ΠM_{i(k)} X x_k` of the group weights (Π the average over each sample's
/// rows, (M35a); the identity without pooling).
fn predictions(
    x: MatRef<'_, f64>,
    patterns: &PatternSet,
    l: &Layout,
    weights: MatRef<'_, f64>,
) -> Vec<f64> {
    let mut yhat = vec![0.0; l.n];
    for k in 0..l.groups {
        let (i, sign) = l.group(k);
        for jr in 0..l.rows {
            let m = l.mask(patterns.get(jr, i));
            if m != 0.0 {
                let xw: f64 = (0..l.d).map(|c| x[(jr, c)] * weights[(c, k)]).sum();
                yhat[jr / l.pool] += sign * m * xw / l.pool as f64;
            }
        }
    }
    yhat
}

/// The objective of docs/programs.md (M3) of `weights`, the dual point `θ = (y − ŷ)/n` (squared loss) or
/// `y∘σ(−y∘ŷ)/n` (logistic, (M23)) it induces, and the largest cone violation `max (−X̃_i v_i)_j₊`
/// (ReLU; 0 for gated ReLU).
fn evaluate(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    l: &Layout,
    lambda: f64,
    weights: MatRef<'_, f64>,
) -> Evaluation {
    let n = l.n;
    let nf = n as f64;
    let yhat = predictions(x, patterns, l, weights);
    let penalty: f64 = (0..l.groups)
        .map(|k| {
            (0..l.d)
                .map(|c| weights[(c, k)].powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .sum();
    let (loss, theta): (f64, Vec<f64>) = if l.hinge {
        // θ = −(a subgradient of the hinge at ŷ), in the box of the dual.
        let loss = Loss::Hinge.value(&yhat, y);
        let theta = (0..n)
            .map(|j| if y[j] * yhat[j] < 1.0 { y[j] / nf } else { 0.0 })
            .collect();
        (loss, theta)
    } else if l.logistic {
        let loss = (0..n).map(|j| softplus(-y[j] * yhat[j])).sum::<f64>() / nf;
        let theta = (0..n)
            .map(|j| y[j] * sigmoid(-y[j] * yhat[j]) / nf)
            .collect();
        (loss, theta)
    } else {
        let loss = (0..n).map(|j| (yhat[j] - y[j]).powi(2)).sum::<f64>() / (2.0 * nf);
        let theta = (0..n).map(|j| (y[j] - yhat[j]) / nf).collect();
        (loss, theta)
    };
    let mut violation: f64 = 0.0;
    if l.relu {
        for k in 0..l.groups {
            let (i, _) = l.group(k);
            for j in 0..l.rows {
                let s = if patterns.get(j, i) { 1.0 } else { -1.0 };
                let xv: f64 = (0..l.d).map(|c| x[(j, c)] * weights[(c, k)]).sum();
                violation = violation.max(-s * xv);
            }
        }
    }
    Evaluation {
        objective: loss + lambda * penalty,
        theta,
        violation,
    }
}

/// A certified lower bound on the optimum: the dual objective of docs/programs.md (M9) (squared loss)
/// or (M23) (logistic) or Σ_j y_j θ_j (hinge, [`crate::program::hinge`]) at the point `s·(θ, γ, ξ)`,
/// where `s = min(1, λ / max_k ‖Xᵀ(M_iΠ*θ ± S_iγ_k)‖)` makes it dual feasible (Π*θ = θ without
/// pooling, (M35b)) (for gated ReLU there are
/// no multipliers, (M13)). Any `θ` is accepted; for the logistic and hinge losses it is first clipped
/// to `n y_j θ_j ∈ [0, 1]`, the domain of the conjugate.
fn dual_bound(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    l: &Layout,
    lambda: f64,
    theta: &[f64],
    multipliers: Option<MatRef<'_, f64>>,
) -> f64 {
    let n = l.n;
    let nf = n as f64;
    let theta: Vec<f64> = if l.logistic || l.hinge {
        (0..n)
            .map(|j| y[j] * (nf * y[j] * theta[j]).clamp(0.0, 1.0) / nf)
            .collect()
    } else {
        theta.to_vec()
    };
    let mut cmax: f64 = 0.0;
    let mut r = vec![0.0; l.rows];
    let inv_pool = 1.0 / l.pool as f64;
    for k in 0..l.groups {
        let (i, sign) = l.group(k);
        for (j, rj) in r.iter_mut().enumerate() {
            let on = patterns.get(j, i);
            let mut v = l.mask(on) * theta[j / l.pool] * inv_pool;
            if let Some(m) = multipliers {
                let s = if on { 1.0 } else { -1.0 };
                v += sign * s * m[(j, k)].max(0.0);
            }
            *rj = v;
        }
        let norm = (0..l.d)
            .map(|c| (0..l.rows).map(|j| x[(j, c)] * r[j]).sum::<f64>().powi(2))
            .sum::<f64>()
            .sqrt();
        cmax = cmax.max(norm);
    }
    let s = if cmax > lambda { lambda / cmax } else { 1.0 };
    if l.hinge {
        s * crate::program::hinge::dual_value(&theta, y)
    } else if l.logistic {
        (0..n)
            .map(|j| entropy(s * nf * y[j] * theta[j]))
            .sum::<f64>()
            / nf
    } else {
        let ty: f64 = theta.iter().zip(y).map(|(t, yj)| t * yj).sum();
        let tt: f64 = theta.iter().map(|t| t * t).sum();
        s * ty - 0.5 * nf * s * s * tt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    struct Problem {
        x: Mat<f64>,
        y: Vec<f64>,
        patterns: PatternSet,
    }

    /// Gaussian data, targets from a planted ReLU network plus noise (or their signs), and the
    /// patterns of `m` Gaussian gates.
    fn problem(seed: u64, n: usize, d: usize, m: usize, labels: bool) -> Problem {
        let mut rng = Rng::new(seed);
        let x = Mat::from_fn(n, d, |_, _| rng.normal());
        let planted: Vec<f64> = (0..d).map(|_| rng.normal()).collect();
        let y: Vec<f64> = (0..n)
            .map(|j| {
                let z: f64 = (0..d).map(|c| x[(j, c)] * planted[c]).sum();
                let t = z.max(0.0) - 0.5 + 0.3 * rng.normal();
                if labels {
                    if t >= 0.0 {
                        1.0
                    } else {
                        -1.0
                    }
                } else {
                    t
                }
            })
            .collect();
        let gates = Mat::from_fn(d, m, |_, _| rng.normal());
        let patterns = PatternSet::from_gates(x.as_ref(), gates.as_ref(), false).unwrap();
        Problem { x, y, patterns }
    }

    fn solve(pb: &Problem, f: Formulation, loss: Loss, lambda: f64) -> ExactSolution {
        let sol = solve_exact(
            pb.x.as_ref(),
            &pb.y,
            &pb.patterns,
            f,
            loss,
            lambda,
            &ExactSettings::default(),
        )
        .unwrap();
        assert!(
            sol.info.status == Status::Converged,
            "status {:?} {:?}",
            sol.info.status,
            sol.info
        );
        sol
    }

    fn norm(v: &[f64]) -> f64 {
        v.iter().map(|a| a * a).sum::<f64>().sqrt()
    }

    fn col(m: &Mat<f64>, k: usize) -> Vec<f64> {
        (0..m.nrows()).map(|c| m[(c, k)]).collect()
    }

    /// Xᵀ diag(mask) r.
    fn xt(x: &Mat<f64>, mask: &[bool], r: &[f64]) -> Vec<f64> {
        (0..x.ncols())
            .map(|c| {
                (0..x.nrows())
                    .filter(|&j| mask[j])
                    .map(|j| x[(j, c)] * r[j])
                    .sum()
            })
            .collect()
    }

    /// Predictions computed directly from the definition: Σ_i D_i X u_i (gated) or
    /// Σ_i D_i X (v_i − w_i) (ReLU).
    fn yhat(pb: &Problem, w: &Mat<f64>) -> Vec<f64> {
        let p = pb.patterns.len();
        let n = pb.x.nrows();
        let mut out = vec![0.0; n];
        for k in 0..w.ncols() {
            let i = k % p;
            let sign = if k < p { 1.0 } else { -1.0 };
            let mask = pb.patterns.column(i);
            for j in 0..n {
                if mask[j] {
                    let z: f64 = (0..pb.x.ncols()).map(|c| pb.x[(j, c)] * w[(c, k)]).sum();
                    out[j] += sign * z;
                }
            }
        }
        out
    }

    fn objective(pb: &Problem, w: &Mat<f64>, loss: Loss, lambda: f64) -> f64 {
        let yh = yhat(pb, w);
        let n = pb.y.len() as f64;
        let data = match loss {
            Loss::Squared => {
                yh.iter()
                    .zip(&pb.y)
                    .map(|(a, b)| (a - b) * (a - b))
                    .sum::<f64>()
                    / (2.0 * n)
            }
            Loss::Logistic => {
                yh.iter()
                    .zip(&pb.y)
                    .map(|(a, b)| (1.0 + (-a * b).exp()).ln())
                    .sum::<f64>()
                    / n
            }
            Loss::Hinge | Loss::Softmax => loss.value(&yh, &pb.y),
        };
        let pen: f64 = (0..w.ncols()).map(|k| norm(&col(w, k))).sum();
        data + lambda * pen
    }

    /// θ = (y − ŷ)/n (squared) or y∘σ(−y∘ŷ)/n (logistic).
    fn theta(pb: &Problem, w: &Mat<f64>, loss: Loss) -> Vec<f64> {
        let yh = yhat(pb, w);
        let n = pb.y.len() as f64;
        yh.iter()
            .zip(&pb.y)
            .map(|(a, b)| match loss {
                Loss::Squared => (b - a) / n,
                Loss::Logistic => b / (1.0 + (a * b).exp()) / n,
                Loss::Hinge | Loss::Softmax => {
                    if a * b < 1.0 {
                        b / n
                    } else {
                        0.0
                    }
                }
            })
            .collect()
    }

    /// The optimality conditions of (M11) / (M9): for each group k with correlation vector c_k,
    /// c_k = ±λ x_k/‖x_k‖ when x_k is active and ‖c_k‖ ≤ λ(1 + 1e-6) always. Returns the number of
    /// active groups.
    fn kkt_active(pb: &Problem, sol: &ExactSolution, loss: Loss, lambda: f64, tol: f64) -> usize {
        let th = theta(pb, &sol.weights, loss);
        let p = pb.patterns.len();
        let n = pb.x.nrows();
        let all = vec![true; n];
        let mut active = 0;
        for k in 0..sol.weights.ncols() {
            let i = k % p;
            let sign = if k < p { 1.0 } else { -1.0 };
            let mask = pb.patterns.column(i);
            // r = D_iθ + S_iγ (v groups), D_iθ − S_iξ (w groups), D_iθ (gated).
            let r: Vec<f64> = (0..n)
                .map(|j| {
                    let mut v = if mask[j] { th[j] } else { 0.0 };
                    if let Some(m) = &sol.cone_multipliers {
                        assert!(m[(j, k)] >= -1e-12, "negative multiplier {}", m[(j, k)]);
                        v += sign * if mask[j] { 1.0 } else { -1.0 } * m[(j, k)];
                    }
                    v
                })
                .collect();
            let c = xt(&pb.x, &all, &r);
            let u = col(&sol.weights, k);
            let nu = norm(&u);
            assert!(
                norm(&c) <= lambda * (1.0 + tol),
                "group {k}: ‖c‖ = {} > λ = {lambda}",
                norm(&c)
            );
            if nu > 1e-5 {
                active += 1;
                for a in 0..u.len() {
                    let target = sign * lambda * u[a] / nu;
                    assert!(
                        (c[a] - target).abs() <= tol * (1.0 + lambda),
                        "group {k} (norm {nu}), coordinate {a}: {} vs {target}",
                        c[a]
                    );
                }
            }
        }
        active
    }

    fn check_kkt(pb: &Problem, sol: &ExactSolution, loss: Loss, lambda: f64) {
        assert!(
            kkt_active(pb, sol, loss, lambda, 1e-6) > 0,
            "expected an active group"
        );
    }

    fn lambda_max(pb: &Problem) -> f64 {
        let n = pb.y.len() as f64;
        (0..pb.patterns.len())
            .map(|i| norm(&xt(&pb.x, &pb.patterns.column(i), &pb.y)) / n)
            .fold(0.0, f64::max)
    }

    #[test]
    fn above_lambda_max_gives_zero() {
        let pb = problem(1, 14, 3, 8, false);
        let lam = 1.01 * lambda_max(&pb);
        let n = pb.y.len() as f64;
        let y2 = pb.y.iter().map(|v| v * v).sum::<f64>() / (2.0 * n);
        for f in [Formulation::Gated, Formulation::Relu] {
            let sol = solve(&pb, f, Loss::Squared, lam);
            let wmax = (0..sol.weights.ncols())
                .map(|k| norm(&col(&sol.weights, k)))
                .fold(0.0, f64::max);
            assert!(wmax < 1e-7, "{f:?}: largest group {wmax}");
            assert!((sol.info.objective - y2).abs() < 1e-8 * (1.0 + y2));
            assert!(sol.info.gap >= 0.0 && sol.info.gap < 1e-7);
        }
    }

    #[test]
    fn gated_squared_optimality_and_objective() {
        for seed in [2, 3] {
            let pb = problem(seed, 16, 3, 8, false);
            let lam = 0.1 * lambda_max(&pb);
            let sol = solve(&pb, Formulation::Gated, Loss::Squared, lam);
            assert!(sol.cone_multipliers.is_none());
            assert_eq!(sol.weights.ncols(), pb.patterns.len());
            let obj = objective(&pb, &sol.weights, Loss::Squared, lam);
            assert!((obj - sol.info.objective).abs() < 1e-12 * (1.0 + obj));
            assert!(
                sol.info.gap >= 0.0 && sol.info.gap < 1e-7,
                "{}",
                sol.info.gap
            );
            assert!((sol.info.dual_objective - (obj - sol.info.gap)).abs() < 1e-14);
            assert_eq!(sol.info.violation, 0.0);
            check_kkt(&pb, &sol, Loss::Squared, lam);
        }
    }

    #[test]
    fn relu_squared_kkt_with_multipliers() {
        for seed in [4, 5] {
            let pb = problem(seed, 18, 3, 6, false);
            let lam = 0.05 * lambda_max(&pb);
            let sol = solve(&pb, Formulation::Relu, Loss::Squared, lam);
            let p = pb.patterns.len();
            assert_eq!(sol.weights.ncols(), 2 * p);
            let m = sol.cone_multipliers.as_ref().unwrap();
            assert_eq!((m.nrows(), m.ncols()), (18, 2 * p));
            // Cone feasibility of every v_i and w_i.
            for k in 0..2 * p {
                let mask = pb.patterns.column(k % p);
                for (j, &on) in mask.iter().enumerate() {
                    let z: f64 = (0..3).map(|c| pb.x[(j, c)] * sol.weights[(c, k)]).sum();
                    let s = if on { 1.0 } else { -1.0 };
                    assert!(s * z >= -1e-8, "cone violated: {}", s * z);
                }
            }
            assert!(sol.info.violation <= 1e-8);
            let obj = objective(&pb, &sol.weights, Loss::Squared, lam);
            assert!((obj - sol.info.objective).abs() < 1e-12 * (1.0 + obj));
            assert!(
                sol.info.gap >= 0.0 && sol.info.gap < 1e-7,
                "{}",
                sol.info.gap
            );
            check_kkt(&pb, &sol, Loss::Squared, lam);
        }
    }

    #[test]
    fn gated_lower_bounds_relu() {
        for (seed, loss) in [(6, Loss::Squared), (7, Loss::Squared), (8, Loss::Logistic)] {
            let pb = problem(seed, 15, 3, 8, loss == Loss::Logistic);
            let lam = 0.1 * lambda_max(&pb);
            let g = solve(&pb, Formulation::Gated, loss, lam);
            let r = solve(&pb, Formulation::Relu, loss, lam);
            assert!(
                g.info.objective <= r.info.objective + 1e-8,
                "gated {} > relu {}",
                g.info.objective,
                r.info.objective
            );
        }
    }

    #[test]
    fn logistic_optimality() {
        for (seed, f) in [(9, Formulation::Gated), (10, Formulation::Relu)] {
            let pb = problem(seed, 20, 3, 6, true);
            let lam = 0.5 * lambda_max(&pb) / 2.0;
            let sol = solve(&pb, f, Loss::Logistic, lam);
            let obj = objective(&pb, &sol.weights, Loss::Logistic, lam);
            assert!(obj.is_finite());
            assert!((obj - sol.info.objective).abs() < 1e-10 * (1.0 + obj));
            assert!(
                sol.info.gap >= 0.0 && sol.info.gap < 1e-8,
                "{}",
                sol.info.gap
            );
            assert!(sol.info.violation <= 1e-8);
            check_kkt(&pb, &sol, Loss::Logistic, lam);
        }
    }

    #[test]
    fn one_pattern_scalar_closed_form() {
        // x = (1, −1, 2), pattern D = diag(1, 1, 0): the gated program is the scalar lasso
        // min (1/6)‖a u − y‖² + λ|u| with a = (1, −1, 0), whose solution is the soft threshold
        // u = (aᵀy/n − λ)₊ n/‖a‖². The ReLU cone X̃ v = (v, −v, −2v) ≥ 0 forces v = w = 0.
        let x = Mat::from_fn(3, 1, |j, _| [1.0, -1.0, 2.0][j]);
        let y = vec![1.0, -1.0, 0.5];
        let patterns =
            PatternSet::from_columns(3, &[vec![true, true, false]], None, false).unwrap();
        let pb = Problem { x, y, patterns };
        let lam: f64 = 0.2;
        let g = solve(&pb, Formulation::Gated, Loss::Squared, lam);
        let u = (2.0 / 3.0 - lam) * 3.0 / 2.0;
        assert!(
            (g.weights[(0, 0)] - u).abs() < 1e-8,
            "{}",
            g.weights[(0, 0)]
        );
        let expect = ((u - 1.0).powi(2) + (1.0 - u).powi(2) + 0.25) / 6.0 + lam * u;
        assert!((g.info.objective - expect).abs() < 1e-9);
        let r = solve(&pb, Formulation::Relu, Loss::Squared, lam);
        assert!(r.weights[(0, 0)].abs() < 1e-8 && r.weights[(0, 1)].abs() < 1e-8);
        assert!((r.info.objective - 2.25 / 6.0).abs() < 1e-9);

        // With x = (1, 2, −1) and D = 1[x ≥ 0] the cone is v ≥ 0, w ≥ 0 and both programs reduce
        // to the same scalar lasso: a = (1, 2, 0), y = 1, u = (1 − λ)·3/5.
        let x = Mat::from_fn(3, 1, |j, _| [1.0, 2.0, -1.0][j]);
        let patterns =
            PatternSet::from_columns(3, &[vec![true, true, false]], None, false).unwrap();
        let pb = Problem {
            x,
            y: vec![1.0; 3],
            patterns,
        };
        let lam: f64 = 0.5;
        let u: f64 = (1.0 - lam) * 3.0 / 5.0;
        let expect = ((u - 1.0).powi(2) + (2.0 * u - 1.0).powi(2) + 1.0) / 6.0 + lam * u;
        for f in [Formulation::Gated, Formulation::Relu] {
            let s = solve(&pb, f, Loss::Squared, lam);
            assert!((s.weights[(0, 0)] - u).abs() < 1e-8, "{f:?}");
            assert!((s.info.objective - expect).abs() < 1e-9, "{f:?}");
        }
    }

    #[test]
    fn invalid_inputs_are_errors() {
        let pb = problem(11, 10, 2, 4, false);
        let s = ExactSettings::default();
        let run = |y: &[f64], loss, lam, st: &ExactSettings| {
            solve_exact(
                pb.x.as_ref(),
                y,
                &pb.patterns,
                Formulation::Relu,
                loss,
                lam,
                st,
            )
        };
        assert!(matches!(
            run(&pb.y, Loss::Logistic, 0.1, &s),
            Err(Error::InvalidSetting(_))
        ));
        assert!(matches!(
            run(&pb.y[..9], Loss::Squared, 0.1, &s),
            Err(Error::InvalidData(_))
        ));
        assert!(matches!(
            run(&pb.y, Loss::Squared, -1.0, &s),
            Err(Error::InvalidSetting(_))
        ));
        assert!(matches!(
            run(&pb.y, Loss::Squared, f64::NAN, &s),
            Err(Error::InvalidSetting(_))
        ));
        let signs: Vec<f64> = pb.y.iter().map(|v| v.signum()).collect();
        assert!(matches!(
            run(&signs, Loss::Logistic, 0.0, &s),
            Err(Error::InvalidSetting(_))
        ));
        let bad = ExactSettings {
            tol: 0.0,
            ..ExactSettings::default()
        };
        assert!(matches!(
            run(&pb.y, Loss::Squared, 0.1, &bad),
            Err(Error::InvalidSetting(_))
        ));
        let mut y = pb.y.clone();
        y[3] = f64::INFINITY;
        assert!(matches!(
            run(&y, Loss::Squared, 0.1, &s),
            Err(Error::InvalidData(_))
        ));
        // λ = 0 is allowed for the squared loss.
        let zero = run(&pb.y, Loss::Squared, 0.0, &s).unwrap();
        assert_eq!(zero.info.status, Status::Converged);
        assert!(zero.info.gap < 1e-7);
    }

    #[test]
    fn larger_relu_problem() {
        let pb = problem(12, 20, 4, 10, false);
        let lam = 0.02 * lambda_max(&pb);
        let sol = solve(&pb, Formulation::Relu, Loss::Squared, lam);
        assert!(sol.info.gap < 1e-8 && sol.info.violation <= 1e-8);
        check_kkt(&pb, &sol, Loss::Squared, lam);
        let g = solve(&pb, Formulation::Gated, Loss::Squared, lam);
        assert!(g.info.objective <= sol.info.objective + 1e-8);
    }

    #[test]
    fn iteration_and_time_limits_are_statuses() {
        let pb = problem(13, 12, 3, 6, false);
        let run = |st: ExactSettings| {
            solve_exact(
                pb.x.as_ref(),
                &pb.y,
                &pb.patterns,
                Formulation::Relu,
                Loss::Squared,
                0.05,
                &st,
            )
            .unwrap()
        };
        let few = run(ExactSettings {
            max_iter: 2,
            ..ExactSettings::default()
        });
        assert_eq!(few.info.status, Status::MaxIterations);
        assert!(few.info.objective.is_finite() && few.info.gap >= 0.0);
        let quick = run(ExactSettings {
            time_limit: Some(1e-12),
            ..ExactSettings::default()
        });
        assert_eq!(quick.info.status, Status::TimeLimit);
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let pb = problem(14, 10, 2, 4, false);
        let other = problem(15, 12, 2, 4, false);
        let r = solve_exact(
            other.x.as_ref(),
            &other.y,
            &pb.patterns,
            Formulation::Gated,
            Loss::Squared,
            0.1,
            &ExactSettings::default(),
        );
        assert!(matches!(r, Err(Error::InvalidData(_))));
    }

    #[test]
    fn memory_estimate_grows() {
        let small = exact_memory_estimate(10, 3, 5, Formulation::Relu, Loss::Squared);
        let big = exact_memory_estimate(1000, 3, 5, Formulation::Relu, Loss::Squared);
        let gated = exact_memory_estimate(10, 3, 5, Formulation::Gated, Loss::Squared);
        assert!(small > 0 && big > small && gated < small);
        // ≈ 3ndP nonzeros at 16 bytes each is a floor.
        assert!(small >= 3 * 10 * 3 * 5 * 16);
        assert_eq!(
            exact_memory_estimate(usize::MAX, 2, 2, Formulation::Relu, Loss::Logistic),
            usize::MAX
        );
    }

    /// Certificates and optimality conditions on many random problems at the default tolerance.
    /// The weights of an interior-point solution are accurate to about the square root of its gap
    /// where groups sit on the boundary ‖c_k‖ = λ, so the conditions are checked to 1e-4 here
    /// (the fixed problems above check them to 1e-6); a wrong sign or scale of the multipliers
    /// fails by orders of magnitude more.
    #[test]
    fn random_problems_satisfy_kkt() {
        let settings = ExactSettings::default();
        for seed in 100..120u64 {
            let n = 8 + (seed as usize % 13);
            let d = 2 + (seed as usize % 3);
            let m = 4 + (seed as usize % 7);
            for loss in [Loss::Squared, Loss::Logistic] {
                let pb = problem(seed, n, d, m, loss == Loss::Logistic);
                for frac in [0.3, 0.03] {
                    let lam = frac * lambda_max(&pb);
                    for f in [Formulation::Gated, Formulation::Relu] {
                        let sol = solve_exact(
                            pb.x.as_ref(),
                            &pb.y,
                            &pb.patterns,
                            f,
                            loss,
                            lam,
                            &settings,
                        )
                        .unwrap();
                        assert!(
                            matches!(sol.info.status, Status::Converged | Status::ReducedAccuracy),
                            "seed {seed}: {:?}",
                            sol.info
                        );
                        assert!(
                            sol.info.gap <= 1e3 * settings.tol * sol.info.objective.abs().max(1.0),
                            "seed {seed}: {:?}",
                            sol.info
                        );
                        assert!(sol.info.violation <= 1e-9);
                        kkt_active(&pb, &sol, loss, lam, 1e-4);
                    }
                }
            }
        }
    }
}
