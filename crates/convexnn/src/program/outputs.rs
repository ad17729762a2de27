//! Vector outputs (docs/programs.md §3e, (M52)–(M56)): c outputs predicted by the gated program
//!
//! ```text
//! min_{U_1..U_P ∈ ℝ^{d×c}}  L(Σ_i D_i X U_i, Y) + λ Σ_i r(U_i)
//! ```
//!
//! with the squared loss (1/(2nc))‖Ŷ − Y‖_F² (one-hot Y for classification, scnn's normalization
//! (M4)) or the softmax cross-entropy (M52), and one of three block norms r ([`OutputPenalty`]):
//!
//! - `separate`, r(U_i) = Σ_k ‖u_{k,i}‖: one group per (output, pattern), scnn's penalty (M4). It is
//!   the exact program of c networks whose neurons each feed one output; for the network with shared
//!   hidden neurons its optimum is an upper bound, attained by the network it reads out.
//! - `group`, r(U_i) = ‖U_i‖_F: the group penalty over each neuron's d × c block. A *relaxation*
//!   (‖Z‖_F ≤ ‖Z‖_*): its optimum is a lower bound on the shared-neuron network's objective, and the
//!   network read out of it (an SVD per block) has an objective at or above it; both are reported.
//! - `nuclear`, r(U_i) = ‖U_i‖_*: the *exact* convex program of the gated ReLU network with shared
//!   hidden neurons and vector outputs (M55): neurons with gate pattern D_i contribute
//!   D_i X Σ_j w_jα_jᵀ, and min Σ_j ‖w_j‖‖α_j‖ over the factorizations of Z = Σ_j w_jα_jᵀ is ‖Z‖_*.
//!
//! So p(group) ≤ p(nuclear) = p(network) ≤ p(separate) over the same patterns (M56).
//!
//! The weights are stored as one (d·c) × P matrix whose column i is vec(U_i) (column-major), so
//! rows k·d .. (k+1)·d hold output k's weights for all patterns and each output's predictions are
//! the masked operator applied to that slice.

use faer::{Mat, MatMut, MatRef};
use serde::{Deserialize, Serialize};

use super::penalty::GroupPenalty;
use super::Loss;
use crate::operator::MaskedOperator;
use crate::real::Real;
use crate::solver::fista::Smooth;

/// The block norm of the vector-output program (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputPenalty {
    /// Σ_i Σ_k ‖u_{k,i}‖: scnn's per-output groups (M4); an upper bound for shared neurons.
    Separate,
    /// Σ_i ‖U_i‖_F: the group penalty over each neuron's d × c block; a relaxation (lower bound).
    #[default]
    Group,
    /// Σ_i ‖U_i‖_*: exact for gated ReLU networks with shared hidden neurons (M55).
    Nuclear,
}

impl OutputPenalty {
    /// `"separate"`, `"group"` or `"nuclear"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            OutputPenalty::Separate => "separate",
            OutputPenalty::Group => "group",
            OutputPenalty::Nuclear => "nuclear",
        }
    }

    /// Parses [`OutputPenalty::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "separate" => Some(OutputPenalty::Separate),
            "group" => Some(OutputPenalty::Group),
            "nuclear" => Some(OutputPenalty::Nuclear),
            _ => None,
        }
    }

    /// The penalty over the (d·c) × P weight matrix for inputs of dimension `d`.
    pub fn penalty(&self, d: usize) -> GroupPenalty {
        match self {
            OutputPenalty::Separate => GroupPenalty::Split { block: d },
            OutputPenalty::Group => GroupPenalty::Columns,
            OutputPenalty::Nuclear => GroupPenalty::Nuclear { rows: d },
        }
    }

    /// What the program's optimum is for the network with shared hidden neurons, in words.
    pub fn meaning(&self) -> &'static str {
        match self {
            OutputPenalty::Separate => {
                "upper bound: exact for networks whose neurons each feed one output (scnn's penalty)"
            }
            OutputPenalty::Group => {
                "relaxation: a lower bound on the shared-neuron network; the network read out of it \
                 may have a larger objective"
            }
            OutputPenalty::Nuclear => "exact for the gated network with shared hidden neurons",
        }
    }

    /// Whether the network read out of a solution has exactly the convex objective.
    pub fn reads_out_exactly(&self) -> bool {
        !matches!(self, OutputPenalty::Group)
    }

    /// The penalty in words, for the objective's normalization.
    pub fn formula(&self) -> &'static str {
        match self {
            OutputPenalty::Separate => "sum_i sum_k ||u_ki||",
            OutputPenalty::Group => "sum_i ||U_i||_F",
            OutputPenalty::Nuclear => "sum_i ||U_i||_*",
        }
    }
}

/// The objective's normalization in words for c outputs.
pub fn normalization(loss: Loss, penalty: OutputPenalty) -> String {
    let fit = match loss {
        Loss::Softmax => "(1/n) sum_j [log sum_k exp(Yhat_jk) - Yhat_j,class(j)]",
        _ => "(1/(2nc))||Yhat - Y||_F^2",
    };
    format!(
        "{fit} + lambda * {}; the papers' beta = n * lambda",
        penalty.formula()
    )
}

/// The smooth part of the vector-output program for FISTA; the cache is Ŷ (n × c, column-major).
pub struct OutputsProblem<T: Real> {
    /// The masked operator A, applied to each output's slice of the weights.
    pub op: MaskedOperator<T>,
    y: Vec<T>,
    outputs: usize,
    loss: Loss,
    penalty: GroupPenalty,
    resid: Vec<T>,
}

impl<T: Real> OutputsProblem<T> {
    /// The program for targets `y` (n × c column-major; one-hot rows for softmax).
    pub fn new(
        op: MaskedOperator<T>,
        y: &[f64],
        outputs: usize,
        loss: Loss,
        penalty: OutputPenalty,
    ) -> Self {
        let penalty = penalty.penalty(op.ncols());
        OutputsProblem {
            op,
            y: y.iter().map(|&v| T::lit(v)).collect(),
            outputs,
            loss,
            penalty,
            resid: vec![T::zero(); y.len()],
        }
    }

    fn n(&self) -> usize {
        self.op.n_samples()
    }

    /// λ_max = max_i r°((A*∇L(0))_i): the zero network is optimal iff λ ≥ λ_max (M15 with the
    /// dual block norm).
    pub fn lambda_max(&mut self) -> f64 {
        let zero = vec![T::zero(); self.y.len()];
        let mut g = Mat::<T>::zeros(self.op.ncols() * self.outputs, self.op.n_patterns());
        self.gradient(&zero, g.as_mut());
        self.penalty.dual_max(g.as_ref())
    }
}

impl<T: Real> Smooth<T> for OutputsProblem<T> {
    type Cache = Vec<T>;

    fn dims(&self) -> (usize, usize) {
        (self.op.ncols() * self.outputs, self.op.n_patterns())
    }

    fn new_cache(&self) -> Vec<T> {
        vec![T::zero(); self.y.len()]
    }

    fn forward(&mut self, u: MatRef<'_, T>, cache: &mut Vec<T>) {
        let (n, d) = (self.n(), self.op.ncols());
        for (k, out) in cache.chunks_mut(n).enumerate() {
            self.op.apply(u.subrows(k * d, d), out);
        }
    }

    fn extrapolate(&self, out: &mut Vec<T>, new: &Vec<T>, old: &Vec<T>, beta: T) {
        for ((o, a), b) in out.iter_mut().zip(new).zip(old) {
            *o = *a + beta * (*a - *b);
        }
    }

    fn copy_cache(&self, dst: &mut Vec<T>, src: &Vec<T>) {
        dst.copy_from_slice(src);
    }

    fn combine(&self, out: &mut Vec<T>, parts: &[&Vec<T>], weights: &[f64]) {
        crate::solver::fista::combine_vecs(out, parts, weights);
    }

    fn value(&self, cache: &Vec<T>) -> f64 {
        self.loss.value_outputs(cache, &self.y, self.outputs)
    }

    fn gradient(&mut self, cache: &Vec<T>, mut grad: MatMut<'_, T>) {
        let (n, d) = (self.n(), self.op.ncols());
        self.loss
            .gradient_outputs(cache, &self.y, self.outputs, &mut self.resid);
        for (k, r) in self.resid.chunks(n).enumerate() {
            self.op.adjoint(r, grad.as_mut().subrows_mut(k * d, d));
        }
    }

    /// θ = −∇L(Ŷ), s = min(1, λ / max_i r°((A*θ)_i)), bound = the dual value at sθ (M54).
    fn dual_bound(&self, cache: &Vec<T>, grad: MatRef<'_, T>, lambda: f64) -> Option<f64> {
        let c = self.penalty.dual_max(grad);
        let s = if c > lambda { lambda / c } else { 1.0 };
        Some(
            self.loss
                .dual_value_outputs(cache, &self.y, self.outputs, s),
        )
    }

    fn lipschitz_estimate(&mut self) -> f64 {
        // The loss is normalized by n·c entries (squared) or n samples (softmax).
        let count = match self.loss {
            Loss::Softmax => self.n(),
            _ => self.y.len(),
        } as f64;
        self.loss.curvature() * self.op.norm_squared_estimate(15) / count
    }

    fn penalty(&self) -> GroupPenalty {
        self.penalty
    }
}

/// The one-hot n × c matrix (column-major) of `labels` over the sorted distinct `classes`.
pub fn one_hot(labels: &[f64], classes: &[f64]) -> Vec<f64> {
    let n = labels.len();
    let mut y = vec![0.0; n * classes.len()];
    for (j, l) in labels.iter().enumerate() {
        if let Some(k) = classes.iter().position(|c| c == l) {
            y[k * n + j] = 1.0;
        }
    }
    y
}

/// The sorted distinct values of `labels` (NaN-free input).
pub fn classes_of(labels: &[f64]) -> Vec<f64> {
    let mut c = labels.to_vec();
    c.sort_by(|a, b| a.total_cmp(b));
    c.dedup();
    c
}

/// Reads the network's neurons out of the weights (d·c) × P (docs/programs.md (M55)): for
/// `separate` each nonzero piece u_{k,i} gives the neuron (u/√‖u‖, √‖u‖ e_k); for `group` and
/// `nuclear` each block's SVD U_i = Σ_r σ_r a_r b_rᵀ gives the neurons (√σ_r a_r, √σ_r b_r), whose
/// weight decay (λ/2)Σ_r 2σ_r is λ‖U_i‖_*. Every neuron of pattern i keeps gate g_i. Returns the
/// hidden weights, the output vectors (concatenated) and the pattern of each neuron.
pub fn read_out(
    weights: MatRef<'_, f64>,
    d: usize,
    outputs: usize,
    penalty: OutputPenalty,
) -> (Vec<Vec<f64>>, Vec<f64>, Vec<usize>) {
    let (mut hidden, mut output, mut pattern) = (vec![], vec![], vec![]);
    for i in 0..weights.ncols() {
        let col = super::penalty::col(weights, i);
        if col.iter().all(|&v| v == 0.0) {
            continue;
        }
        match penalty {
            OutputPenalty::Separate => {
                for (k, piece) in col.chunks(d).enumerate() {
                    let nrm = piece.iter().map(|v| v * v).sum::<f64>().sqrt();
                    if nrm == 0.0 {
                        continue;
                    }
                    let s = nrm.sqrt();
                    hidden.push(piece.iter().map(|v| v / s).collect());
                    output.extend((0..outputs).map(|o| if o == k { s } else { 0.0 }));
                    pattern.push(i);
                }
            }
            OutputPenalty::Group | OutputPenalty::Nuclear => {
                let block = Mat::from_fn(d, outputs, |r, k| col[k * d + r]);
                let Ok(svd) = block.thin_svd() else {
                    continue;
                };
                let s = svd.S().column_vector();
                let top = if s.nrows() > 0 { s[0] } else { 0.0 };
                for t in 0..s.nrows() {
                    // Singular values at rounding level of the largest carry no neuron.
                    if s[t].is_nan() || s[t] <= 1e-13 * top {
                        continue;
                    }
                    let r = s[t].sqrt();
                    hidden.push((0..d).map(|a| r * svd.U()[(a, t)]).collect());
                    output.extend((0..outputs).map(|k| r * svd.V()[(k, t)]));
                    pattern.push(i);
                }
            }
        }
    }
    (hidden, output, pattern)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::PatternSet;
    use crate::rng::Rng;

    fn problem(penalty: OutputPenalty, loss: Loss) -> (OutputsProblem<f64>, usize, usize) {
        let mut r = Rng::new(3);
        let (n, d, p, c) = (12, 3, 5, 3);
        let x = Mat::from_fn(n, d, |_, _| r.normal());
        let g = Mat::from_fn(d, p, |_, _| r.normal());
        let patterns = PatternSet::from_gates(x.as_ref(), g.as_ref(), false).unwrap();
        let p = patterns.len();
        let op = MaskedOperator::new(x.as_ref(), patterns, 4, 1);
        let labels: Vec<f64> = (0..n).map(|j| (j % c) as f64).collect();
        let y = match loss {
            Loss::Softmax => one_hot(&labels, &classes_of(&labels)),
            _ => (0..n * c).map(|_| r.normal()).collect(),
        };
        (OutputsProblem::new(op, &y, c, loss, penalty), d * c, p)
    }

    #[test]
    fn gradient_matches_finite_differences() {
        for loss in [Loss::Squared, Loss::Softmax] {
            let (mut prob, rows, p) = problem(OutputPenalty::Group, loss);
            let mut r = Rng::new(5);
            let u = Mat::from_fn(rows, p, |_, _| 0.3 * r.normal());
            let mut cache = prob.new_cache();
            prob.forward(u.as_ref(), &mut cache);
            let mut g = Mat::zeros(rows, p);
            prob.gradient(&cache, g.as_mut());
            for (a, b) in [(0, 0), (rows - 1, p - 1), (2, 1)] {
                let h = 1e-6;
                let (mut up, mut dn) = (u.clone(), u.clone());
                up[(a, b)] += h;
                dn[(a, b)] -= h;
                let mut c1 = prob.new_cache();
                prob.forward(up.as_ref(), &mut c1);
                let mut c2 = prob.new_cache();
                prob.forward(dn.as_ref(), &mut c2);
                let fd = (prob.value(&c1) - prob.value(&c2)) / (2.0 * h);
                assert!(
                    (fd - g[(a, b)]).abs() < 1e-7,
                    "{loss:?}: {fd} vs {}",
                    g[(a, b)]
                );
            }
        }
    }

    #[test]
    fn dual_bound_is_below_the_objective_everywhere() {
        for penalty in [
            OutputPenalty::Separate,
            OutputPenalty::Group,
            OutputPenalty::Nuclear,
        ] {
            for loss in [Loss::Squared, Loss::Softmax] {
                let (mut prob, rows, p) = problem(penalty, loss);
                let mut r = Rng::new(9);
                for scale in [0.0, 0.1, 1.0] {
                    let u = Mat::from_fn(rows, p, |_, _| scale * r.normal());
                    let u2 = Mat::from_fn(rows, p, |_, _| scale * r.normal());
                    let (obj, _) = prob.certify(u.as_ref(), 0.05);
                    let (_, dual) = prob.certify(u2.as_ref(), 0.05);
                    assert!(dual <= obj + 1e-12, "{penalty:?} {loss:?}: {dual} > {obj}");
                }
            }
        }
    }

    #[test]
    fn read_out_keeps_predictions_and_gives_the_block_nuclear_norm() {
        let mut r = Rng::new(1);
        let (d, c, p) = (4, 3, 2);
        let w = Mat::from_fn(d * c, p, |_, _| r.normal());
        for penalty in [
            OutputPenalty::Separate,
            OutputPenalty::Group,
            OutputPenalty::Nuclear,
        ] {
            let (hidden, output, pattern) = read_out(w.as_ref(), d, c, penalty);
            // Σ_j over the neurons of pattern i of w_j α_jᵀ = U_i.
            for i in 0..p {
                for a in 0..d {
                    for k in 0..c {
                        let sum: f64 = (0..hidden.len())
                            .filter(|&j| pattern[j] == i)
                            .map(|j| hidden[j][a] * output[j * c + k])
                            .sum();
                        assert!((sum - w[(k * d + a, i)]).abs() < 1e-12);
                    }
                }
            }
            let decay: f64 = hidden.iter().flatten().map(|v| v * v).sum::<f64>()
                + output.iter().map(|v| v * v).sum::<f64>();
            let reg = match penalty {
                OutputPenalty::Separate => penalty.penalty(d).value(w.as_ref()),
                _ => OutputPenalty::Nuclear.penalty(d).value(w.as_ref()),
            };
            assert!((0.5 * decay - reg).abs() < 1e-10, "{penalty:?}");
        }
    }

    #[test]
    fn one_hot_and_classes() {
        let labels = [2.0, 0.0, 2.0, 5.0];
        let classes = classes_of(&labels);
        assert_eq!(classes, vec![0.0, 2.0, 5.0]);
        let y = one_hot(&labels, &classes);
        assert_eq!(y, vec![0., 1., 0., 0., 1., 0., 1., 0., 0., 0., 0., 1.]);
    }
}
