//! The gated ReLU program (docs/programs.md (M11)): min_U L(Σ_i D_i X u_i, y) + λ Σ_i ‖u_i‖₂, with its dual
//! bound (M13)/(M23) and λ_max (M15).

use faer::{Mat, MatMut, MatRef};

use super::penalty::max_column_norm;
use super::Loss;
use crate::operator::MaskedOperator;
use crate::real::Real;
use crate::solver::fista::Smooth;

/// The smooth part of (M11) for FISTA: the cache is the prediction vector ŷ = A(U).
pub struct GatedProblem<T: Real> {
    /// The masked operator A.
    pub op: MaskedOperator<T>,
    y: Vec<T>,
    loss: Loss,
    resid: Vec<T>,
}

impl<T: Real> GatedProblem<T> {
    /// The program for targets `y` (±1 labels for the logistic loss).
    pub fn new(op: MaskedOperator<T>, y: &[f64], loss: Loss) -> Self {
        let n = y.len();
        GatedProblem {
            op,
            y: y.iter().map(|&v| T::lit(v)).collect(),
            loss,
            resid: vec![T::zero(); n],
        }
    }

    /// The targets in working precision.
    pub fn targets(&self) -> &[T] {
        &self.y
    }

    /// λ_max = max_i ‖Xᵀ D_i ∇L(0)‖ (M15; (M23) for logistic): U = 0 is optimal iff λ ≥ λ_max.
    pub fn lambda_max(&mut self) -> f64 {
        let n = self.y.len();
        let zero = vec![T::zero(); n];
        self.loss.gradient(&zero, &self.y, &mut self.resid);
        let mut g = Mat::<T>::zeros(self.op.ncols(), self.op.n_patterns());
        self.op.adjoint(&self.resid, g.as_mut());
        max_column_norm(g.as_ref())
    }
}

impl<T: Real> Smooth<T> for GatedProblem<T> {
    type Cache = Vec<T>;

    fn dims(&self) -> (usize, usize) {
        (self.op.ncols(), self.op.n_patterns())
    }

    fn new_cache(&self) -> Vec<T> {
        vec![T::zero(); self.y.len()]
    }

    fn forward(&mut self, u: MatRef<'_, T>, cache: &mut Vec<T>) {
        self.op.apply(u, cache);
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
        self.loss.value(cache, &self.y)
    }

    fn divergence(&self, new: &Vec<T>, old: &Vec<T>) -> Option<f64> {
        self.loss.divergence(new, old, &self.y)
    }

    fn gradient(&mut self, cache: &Vec<T>, grad: MatMut<'_, T>) {
        self.loss.gradient(cache, &self.y, &mut self.resid);
        self.op.adjoint(&self.resid, grad);
    }

    /// (M13): θ = −∇L(ŷ), s = min(1, λ / max_i ‖Xᵀ D_i θ‖), bound = dual value at sθ.
    fn dual_bound(&self, cache: &Vec<T>, grad: MatRef<'_, T>, lambda: f64) -> Option<f64> {
        let c = max_column_norm(grad);
        let s = if c > lambda { lambda / c } else { 1.0 };
        Some(self.loss.dual_value(cache, &self.y, s))
    }

    fn lipschitz_estimate(&mut self) -> f64 {
        let n = self.y.len() as f64;
        self.loss.curvature() * self.op.norm_squared_estimate(15) / n
    }
}
