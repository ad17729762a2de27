//! The masked operator, the hot loop of every solver (docs/programs.md (M1), (M2)):
//!
//! ```text
//! A(U)  = Σ_i D_i X u_i = rowsum(D ∘ (X U))      (n × d) · (d × P) → n
//! A*(r) = [Xᵀ D_1 r, …, Xᵀ D_P r] = Xᵀ (D ∘ r 1ᵀ)  n → d × P
//! ```
//!
//! Both are one dense GEMM per block of rows: the n × P product is formed `block_rows` rows at a time
//! in a scratch buffer allocated once, so it never lives in memory whole, and the patterns are read
//! as bits. The plain products `X U` and `Xᵀ M` used by the cone terms of the ReLU program are here
//! too, so that every solver goes through this one type.

pub mod reference;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};

use crate::features::PatternSet;
use crate::real::Real;

/// Default number of rows per block (a multiple of 64, so blocks start on whole words of the bits).
pub const DEFAULT_BLOCK_ROWS: usize = 4096;

/// `rowsum(D ∘ XU)` and its adjoint `Xᵀ(D ∘ r1ᵀ)`, blocked over rows.
pub struct MaskedOperator<T: Real> {
    x: Mat<T>,
    patterns: PatternSet,
    block: usize,
    par: Par,
    scratch: Mat<T>,
    /// Forward products computed so far (each one `X U` over all rows).
    pub forward_calls: usize,
    /// Adjoint products computed so far (each one `Xᵀ M` over all rows).
    pub adjoint_calls: usize,
}

/// Bytes the operator allocates for `n × d` data, `p` patterns and a given block size.
pub fn operator_memory(n: usize, d: usize, p: usize, block_rows: usize, bytes: usize) -> usize {
    n * d * bytes + n.div_ceil(64) * 8 * p + block_rows.min(n) * p * bytes
}

impl<T: Real> MaskedOperator<T> {
    /// Builds the operator for `x` (n × d, converted to `T`) and the patterns (over the same n rows).
    /// `block_rows` is rounded up to a multiple of 64; `threads` = 0 uses every core.
    pub fn new(
        x: MatRef<'_, f64>,
        patterns: PatternSet,
        block_rows: usize,
        threads: usize,
    ) -> Self {
        assert_eq!(x.nrows(), patterns.n_samples(), "patterns over other rows");
        let n = x.nrows();
        let block = block_rows.max(64).div_ceil(64) * 64;
        let block = block.min(n.div_ceil(64) * 64);
        let p = patterns.len();
        MaskedOperator {
            x: Mat::from_fn(n, x.ncols(), |i, k| T::lit(x[(i, k)])),
            scratch: Mat::zeros(block, p),
            patterns,
            block,
            par: if threads == 1 {
                Par::Seq
            } else {
                Par::rayon(threads)
            },
            forward_calls: 0,
            adjoint_calls: 0,
        }
    }

    /// n.
    pub fn nrows(&self) -> usize {
        self.x.nrows()
    }

    /// d.
    pub fn ncols(&self) -> usize {
        self.x.ncols()
    }

    /// P.
    pub fn n_patterns(&self) -> usize {
        self.patterns.len()
    }

    /// The patterns.
    pub fn patterns(&self) -> &PatternSet {
        &self.patterns
    }

    /// The data in the operator's precision.
    pub fn x(&self) -> MatRef<'_, T> {
        self.x.as_ref()
    }

    /// The parallelism used by the products.
    pub fn par(&self) -> Par {
        self.par
    }

    /// The row blocks (start, length); a plain range, so the loops allocate nothing.
    fn blocks(&self) -> impl Iterator<Item = (usize, usize)> + use<T> {
        let (n, b) = (self.x.nrows(), self.block);
        (0..n.div_ceil(b)).map(move |k| (k * b, b.min(n - k * b)))
    }

    /// `out = A(U) = rowsum(D ∘ XU)` (M1); `u` is d × P, `out` has length n.
    pub fn apply(&mut self, u: MatRef<'_, T>, out: &mut [T]) {
        self.forward_calls += 1;
        let p = self.patterns.len();
        for (start, len) in self.blocks() {
            let xb = self.x.as_ref().subrows(start, len);
            matmul(
                self.scratch.as_mut().subrows_mut(0, len),
                Accum::Replace,
                xb,
                u,
                T::one(),
                self.par,
            );
            let ob = &mut out[start..start + len];
            ob.fill(T::zero());
            for i in 0..p {
                let col = &self.scratch.col_as_slice(i)[..len];
                let words = &self.patterns.column_words(i)[start / 64..];
                for_each_set_bit(words, len, |j| ob[j] += col[j]);
            }
        }
    }

    /// `out = A*(r) = Xᵀ(D ∘ r1ᵀ)` (M2); `r` has length n, `out` is d × P.
    pub fn adjoint(&mut self, r: &[T], mut out: MatMut<'_, T>) {
        self.adjoint_calls += 1;
        let p = self.patterns.len();
        for (k, (start, len)) in self.blocks().enumerate() {
            let rb = &r[start..start + len];
            for i in 0..p {
                let words = &self.patterns.column_words(i)[start / 64..];
                let col = &mut self.scratch.col_as_slice_mut(i)[..len];
                col.fill(T::zero());
                for_each_set_bit(words, len, |j| col[j] = rb[j]);
            }
            let xb = self.x.as_ref().subrows(start, len);
            let accum = if k == 0 { Accum::Replace } else { Accum::Add };
            matmul(
                out.as_mut(),
                accum,
                xb.transpose(),
                self.scratch.as_ref().subrows(0, len),
                T::one(),
                self.par,
            );
        }
    }

    /// `out = X U` for any number of columns (the cone terms of the ReLU program).
    pub fn linear(&mut self, u: MatRef<'_, T>, out: MatMut<'_, T>) {
        self.forward_calls += 1;
        matmul(out, Accum::Replace, self.x.as_ref(), u, T::one(), self.par);
    }

    /// `out = Xᵀ M` for an n × Q matrix `m`.
    pub fn linear_adjoint(&mut self, m: MatRef<'_, T>, out: MatMut<'_, T>) {
        self.adjoint_calls += 1;
        matmul(
            out,
            Accum::Replace,
            self.x.as_ref().transpose(),
            m,
            T::one(),
            self.par,
        );
    }

    /// Estimates ‖A‖₂² by power iteration on A*A (docs/programs.md (M19)); a lower bound that the line search
    /// corrects.
    pub fn norm_squared_estimate(&mut self, iterations: usize) -> f64 {
        let (n, d, p) = (self.nrows(), self.ncols(), self.n_patterns());
        let mut u = Mat::from_fn(d, p, |k, i| T::lit(1.0 + ((k * 31 + i * 17) % 7) as f64));
        let mut r = vec![T::zero(); n];
        let mut est = 0.0;
        for _ in 0..iterations {
            let nu = u.norm_l2().as_f64();
            if nu == 0.0 {
                return 0.0;
            }
            let inv = T::lit(1.0 / nu);
            for k in 0..p {
                for v in u.col_as_slice_mut(k) {
                    *v *= inv;
                }
            }
            self.apply(u.as_ref(), &mut r);
            est = r.iter().map(|v| v.as_f64() * v.as_f64()).sum::<f64>();
            self.adjoint(&r, u.as_mut());
        }
        est
    }
}

/// Calls `f(j)` for every set bit j < len of the bit string `words`.
#[inline]
pub fn for_each_set_bit(words: &[u64], len: usize, mut f: impl FnMut(usize)) {
    for (w, &word) in words.iter().enumerate().take(len.div_ceil(64)) {
        let mut bits = word;
        if (w + 1) * 64 > len {
            bits &= (1u64 << (len - w * 64)) - 1;
        }
        while bits != 0 {
            let t = bits.trailing_zeros() as usize;
            f(w * 64 + t);
            bits &= bits - 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::reference::DenseReferenceOperator;
    use super::*;
    use crate::features::sample::sample_patterns;
    use crate::rng::Rng;
    use proptest::prelude::*;

    fn random(n: usize, d: usize, seed: u64) -> Mat<f64> {
        let mut r = Rng::new(seed);
        Mat::from_fn(n, d, |_, _| r.normal())
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// ⟨A(U), r⟩ = ⟨U, A*(r)⟩ and the blocked operator equals the dense reference.
        #[test]
        fn adjoint_and_reference(n in 1usize..300, d in 1usize..6, m in 1usize..20,
                                 block in 1usize..200, seed in 0u64..1000) {
            let x = random(n, d, seed);
            let pats = sample_patterns(x.as_ref(), m, seed + 1).unwrap();
            prop_assume!(!pats.is_empty());
            let p = pats.len();
            let reference = DenseReferenceOperator::new(x.as_ref(), &pats);
            let mut op = MaskedOperator::<f64>::new(x.as_ref(), pats, block, 1);
            let u = random(d, p, seed + 2);
            let r: Vec<f64> = random(n, 1, seed + 3).col_as_slice(0).to_vec();
            let mut au = vec![0.0; n];
            op.apply(u.as_ref(), &mut au);
            let mut atr = Mat::zeros(d, p);
            op.adjoint(&r, atr.as_mut());
            let lhs = dot(&au, &r);
            let rhs: f64 = (0..p).map(|i| dot(u.col_as_slice(i), atr.col_as_slice(i))).sum();
            prop_assert!((lhs - rhs).abs() <= 1e-12 * (1.0 + lhs.abs()));
            let au_ref = reference.apply(u.as_ref());
            let atr_ref = reference.adjoint(&r);
            for j in 0..n { prop_assert!((au[j] - au_ref[j]).abs() <= 1e-12 * (1.0 + au_ref[j].abs())); }
            for i in 0..p { for k in 0..d {
                prop_assert!((atr[(k, i)] - atr_ref[(k, i)]).abs() <= 1e-12 * (1.0 + atr_ref[(k, i)].abs()));
            }}
        }
    }

    #[test]
    fn f32_operator_matches_f64() {
        let x = random(200, 4, 9);
        let pats = sample_patterns(x.as_ref(), 12, 3).unwrap();
        let p = pats.len();
        let mut op64 = MaskedOperator::<f64>::new(x.as_ref(), pats.clone(), 64, 1);
        let mut op32 = MaskedOperator::<f32>::new(x.as_ref(), pats, 64, 1);
        let u = random(4, p, 1);
        let u32m = Mat::from_fn(4, p, |k, i| u[(k, i)] as f32);
        let (mut a, mut b) = (vec![0.0; 200], vec![0.0f32; 200]);
        op64.apply(u.as_ref(), &mut a);
        op32.apply(u32m.as_ref(), &mut b);
        for j in 0..200 {
            assert!((a[j] - b[j] as f64).abs() < 1e-4 * (1.0 + a[j].abs()));
        }
    }

    #[test]
    fn bits_iteration_respects_length() {
        let mut seen = vec![];
        for_each_set_bit(&[u64::MAX, 0b101], 66, |j| seen.push(j));
        assert_eq!(seen.len(), 64 + 1);
        assert_eq!(*seen.last().unwrap(), 64);
    }

    #[test]
    fn power_iteration_bounds_the_norm() {
        let x = random(50, 3, 4);
        let pats = sample_patterns(x.as_ref(), 8, 5).unwrap();
        let reference = DenseReferenceOperator::new(x.as_ref(), &pats);
        let exact = reference.norm_squared();
        let mut op = MaskedOperator::<f64>::new(x.as_ref(), pats, 64, 1);
        let est = op.norm_squared_estimate(100);
        assert!(
            est <= exact * (1.0 + 1e-9) && est >= 0.9 * exact,
            "{est} vs {exact}"
        );
    }
}
