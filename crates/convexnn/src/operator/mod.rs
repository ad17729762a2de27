//! The masked operator, the hot loop of every solver (docs/programs.md (M1), (M2)):
//!
//! ```text
//! A(U)  = Σ_i D_i X u_i = rowsum(D ∘ (X U))      (n × d) · (d × P) → n
//! A*(r) = [Xᵀ D_1 r, …, Xᵀ D_P r] = Xᵀ (D ∘ r 1ᵀ)  n → d × P
//! ```
//!
//! Both are one dense GEMM per tile of rows: the n × P product is formed a tile of rows at a time in
//! scratch allocated once, so it never lives in memory whole, and the patterns are read as bits.
//! The rows are split into one contiguous range per thread; each thread runs a sequential GEMM on a
//! tile small enough to stay in its cache and applies the masks to the tile while it is there. The
//! masks are expanded a byte at a time through a table of 0/1 values, so the masked sum and the
//! masked copy are branch-free loops that the compiler vectorizes.
//!
//! The masks may be two-level: value 1 where the pattern bit is 1 and `c` where it is 0, i.e.
//! M_i = cI + (1 − c)D_i in place of D_i (docs/programs.md (M40): c = 0 ReLU and gated ReLU, c = a
//! leaky ReLU, c = −1 absolute value). Only the table's entries change, so the loops are the same. The plain products `X U` and
//! `Xᵀ M` used by the cone terms of the ReLU program are here too, so that every solver goes through
//! this one type.
//!
//! The rows may be grouped: with [`MaskedOperator::with_pooling`], X is the stacked patch matrix of
//! a convolutional network (K consecutive rows per sample, docs/programs.md (M35a)) and the operator
//! is the pooled one, A(U) = Π rowsum(D ∘ XU) with Π the average over each sample's K rows, and
//! A*(r) = Xᵀ(D ∘ (Π*r)1ᵀ) with Π*r = r_j/K on each of sample j's rows. The masked products are
//! the same loops over the nK rows; only the pooling map is added, so every program and solver that
//! goes through `apply` and `adjoint` works on the pooled operator unchanged.

pub mod reference;

use faer::linalg::matmul::matmul;
use faer::{Accum, Mat, MatMut, MatRef, Par};
use rayon::prelude::*;

use crate::features::PatternSet;
use crate::real::Real;

/// Default bound on the rows of scratch held at once, over all threads (a multiple of 64).
pub const DEFAULT_BLOCK_ROWS: usize = 4096;

/// Bytes of one thread's tile of the n × P product, aimed at its share of the cache.
const TILE_BYTES: usize = 1 << 19;

/// `rowsum(D ∘ XU)` and its adjoint `Xᵀ(D ∘ r1ᵀ)`, blocked over rows.
pub struct MaskedOperator<T: Real> {
    x: Mat<T>,
    patterns: PatternSet,
    tile: usize,
    par: Par,
    workers: Vec<Worker<T>>,
    /// Entry b holds bit k of the byte b as the mask value (1 or `off`) in slot k.
    byte_masks: Vec<[T; 8]>,
    /// The mask value where a pattern bit is 0 (0 unless set by [`MaskedOperator::with_off_value`]).
    off: T,
    /// Forward products computed so far (each one `X U` over all rows).
    pub forward_calls: usize,
    /// Adjoint products computed so far (each one `Xᵀ M` over all rows).
    pub adjoint_calls: usize,
    /// Rows per sample K of the average pooling Π (1: no pooling).
    pool: usize,
    /// The unpooled vector over all rows (pooled operators only).
    stacked: Vec<T>,
}

/// One thread's buffers: a tile of the n × P product and its share of the adjoint.
struct Worker<T: Real> {
    scratch: Mat<T>,
    partial: Mat<T>,
}

/// The shared, read-only parts of the operator that the threads use.
struct Kernel<'a, T: Real> {
    x: MatRef<'a, T>,
    patterns: &'a PatternSet,
    byte_masks: &'a [[T; 8]],
    off: T,
    tile: usize,
}

/// Bytes the operator allocates for `n × d` data, `p` patterns and a given block size.
pub fn operator_memory(n: usize, d: usize, p: usize, block_rows: usize, bytes: usize) -> usize {
    n * d * bytes + n.div_ceil(64) * 8 * p + block_rows.min(n) * p * bytes
}

/// Rows per tile: a multiple of 64 (tiles start on whole words of the bits), at most `block` rows
/// over all `workers`, and about [`TILE_BYTES`] of scratch.
fn tile_rows(n: usize, p: usize, block: usize, workers: usize, bytes: usize) -> usize {
    let round = |r: usize| (r / 64).max(1) * 64;
    let by_cache = round(TILE_BYTES / (p.max(1) * bytes));
    let by_memory = round(block / workers);
    let by_rows = n.div_ceil(workers).div_ceil(64) * 64;
    by_cache.min(by_memory).min(by_rows.max(64))
}

impl<T: Real> MaskedOperator<T> {
    /// Builds the operator for `x` (n × d, converted to `T`) and the patterns (over the same n rows).
    /// `block_rows` (rounded up to a multiple of 64) bounds the rows of scratch held at once over
    /// all threads; `threads` = 0 uses every core.
    pub fn new(
        x: MatRef<'_, f64>,
        patterns: PatternSet,
        block_rows: usize,
        threads: usize,
    ) -> Self {
        assert_eq!(x.nrows(), patterns.n_samples(), "patterns over other rows");
        let (n, d) = (x.nrows(), x.ncols());
        let block = block_rows.max(64).div_ceil(64) * 64;
        let p = patterns.len();
        let par = if threads == 1 {
            Par::Seq
        } else {
            Par::rayon(threads)
        };
        let workers = par
            .degree()
            .max(1)
            .min(block / 64)
            .min(n.div_ceil(64))
            .max(1);
        let tile = tile_rows(n, p, block, workers, std::mem::size_of::<T>());
        MaskedOperator {
            x: Mat::from_fn(n, d, |i, k| T::lit(x[(i, k)])),
            workers: (0..workers)
                .map(|_| Worker {
                    scratch: Mat::zeros(tile, p),
                    partial: Mat::zeros(d, p),
                })
                .collect(),
            patterns,
            tile,
            par,
            byte_masks: byte_masks(T::zero()),
            off: T::zero(),
            forward_calls: 0,
            adjoint_calls: 0,
            pool: 1,
            stacked: Vec::new(),
        }
    }

    /// The same operator with average pooling over groups of `k` consecutive rows (the K patches of
    /// one sample, docs/programs.md (M35a)): `apply` returns one value per sample and `adjoint` takes
    /// one. `k` must divide the number of rows (it does for a patch matrix); k = 1 is no pooling.
    pub fn with_pooling(mut self, k: usize) -> Self {
        assert!(
            k >= 1 && self.x.nrows().is_multiple_of(k),
            "pooling groups of {k} rows do not divide {} rows",
            self.x.nrows()
        );
        self.pool = k;
        self.stacked = if k > 1 {
            vec![T::zero(); self.x.nrows()]
        } else {
            Vec::new()
        };
        self
    }

    /// Rows per sample K of the pooling (1 when there is none).
    pub fn pooling(&self) -> usize {
        self.pool
    }

    /// Number of samples n: the length of `apply`'s output (rows / K).
    pub fn n_samples(&self) -> usize {
        self.x.nrows() / self.pool
    }

    /// `out = Π z`: the average of each sample's K rows (`z` over all rows, `out` per sample).
    pub fn pool_rows(&self, z: &[T], out: &mut [T]) {
        average_groups(self.pool, z, out);
    }

    /// `out = Π* r`: r_j / K on each of sample j's K rows (the adjoint of [`Self::pool_rows`]).
    pub fn spread_samples(&self, r: &[T], out: &mut [T]) {
        spread_groups(self.pool, r, out);
    }

    /// The same operator with two-level masks M_i = cI + (1 − c)D_i: value 1 where a pattern bit
    /// is 1 and `c` where it is 0 (docs/programs.md (M40)); `c = 0` is the plain D_i.
    pub fn with_off_value(mut self, c: f64) -> Self {
        self.off = T::lit(c);
        self.byte_masks = byte_masks(self.off);
        self
    }

    /// The same operator over the listed samples only (all K rows of each, for a pooled operator),
    /// with the same patterns restricted to them, pooling, mask values and threads.
    pub fn sample(&self, samples: &[usize]) -> Self {
        let k = self.pool;
        let rows: Vec<usize> = samples.iter().flat_map(|&s| s * k..(s + 1) * k).collect();
        let x = Mat::from_fn(rows.len(), self.ncols(), |r, c| {
            self.x[(rows[r], c)].as_f64()
        });
        let threads = match self.par {
            Par::Seq => 1,
            Par::Rayon(n) => n.get(),
        };
        let mut out = MaskedOperator::new(
            x.as_ref(),
            self.patterns.sample_rows(&rows),
            self.workers.len() * self.tile,
            threads,
        )
        .with_pooling(k);
        out.off = self.off;
        out.byte_masks = self.byte_masks.clone();
        out
    }

    /// The mask value where a pattern bit is 0.
    pub fn off_value(&self) -> T {
        self.off
    }

    /// `acc += M_i col` (both of length n): the masked sum of one pattern over all rows.
    pub fn add_masked(&self, i: usize, acc: &mut [T], col: &[T]) {
        let words = self.patterns.column_words(i);
        masked_add(acc, col, words, &self.byte_masks, self.off);
    }

    /// Rows of X: n, or nK for a pooled operator.
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

    /// Rows per thread: whole tiles, as evenly as the tiles allow.
    fn rows_per_worker(&self) -> usize {
        let tiles = self.x.nrows().div_ceil(self.tile);
        tiles.div_ceil(self.workers.len()) * self.tile
    }

    /// `out = A(U) = rowsum(D ∘ XU)` (M1), pooled to `Π rowsum(D ∘ XU)` (M35a) when the operator
    /// pools; `u` is d × P, `out` has length n (samples).
    pub fn apply(&mut self, u: MatRef<'_, T>, out: &mut [T]) {
        assert_eq!(out.len(), self.n_samples(), "output of length n");
        if self.pool > 1 {
            let mut stacked = std::mem::take(&mut self.stacked);
            self.apply_unpooled(u, &mut stacked);
            average_groups(self.pool, &stacked, out);
            self.stacked = stacked;
        } else {
            self.apply_unpooled(u, out);
        }
    }

    /// `out = rowsum(D ∘ XU)` over all rows, unpooled.
    fn apply_unpooled(&mut self, u: MatRef<'_, T>, out: &mut [T]) {
        self.forward_calls += 1;
        let per = self.rows_per_worker();
        let kernel = Kernel {
            x: self.x.as_ref(),
            patterns: &self.patterns,
            byte_masks: &self.byte_masks,
            off: self.off,
            tile: self.tile,
        };
        if self.workers.len() == 1 {
            kernel.apply_rows(u, 0, out, self.workers[0].scratch.as_mut());
        } else {
            self.workers
                .par_iter_mut()
                .zip(out.par_chunks_mut(per))
                .enumerate()
                .for_each(|(w, (worker, ob))| {
                    kernel.apply_rows(u, w * per, ob, worker.scratch.as_mut());
                });
        }
    }

    /// `out = A*(r) = Xᵀ(D ∘ r1ᵀ)` (M2), or `Xᵀ(D ∘ (Π*r)1ᵀ)` (M35a) when the operator pools; `r`
    /// has length n (samples), `out` is d × P.
    pub fn adjoint(&mut self, r: &[T], out: MatMut<'_, T>) {
        assert_eq!(r.len(), self.n_samples(), "residual of length n");
        if self.pool > 1 {
            let mut stacked = std::mem::take(&mut self.stacked);
            spread_groups(self.pool, r, &mut stacked);
            self.adjoint_unpooled(&stacked, out);
            self.stacked = stacked;
        } else {
            self.adjoint_unpooled(r, out);
        }
    }

    /// `out = Xᵀ(D ∘ r1ᵀ)` with `r` over all rows, unpooled.
    fn adjoint_unpooled(&mut self, r: &[T], mut out: MatMut<'_, T>) {
        self.adjoint_calls += 1;
        let per = self.rows_per_worker();
        let used = self.x.nrows().div_ceil(per);
        let kernel = Kernel {
            x: self.x.as_ref(),
            patterns: &self.patterns,
            byte_masks: &self.byte_masks,
            off: self.off,
            tile: self.tile,
        };
        if used == 1 {
            kernel.adjoint_rows(r, 0, out, self.workers[0].scratch.as_mut());
            return;
        }
        self.workers[..used]
            .par_iter_mut()
            .zip(r.par_chunks(per))
            .enumerate()
            .for_each(|(w, (worker, rb))| {
                let Worker { scratch, partial } = worker;
                kernel.adjoint_rows(rb, w * per, partial.as_mut(), scratch.as_mut());
            });
        out.copy_from(&self.workers[0].partial);
        for worker in &self.workers[1..used] {
            out += &worker.partial;
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
        let (n, d, p) = (self.n_samples(), self.ncols(), self.n_patterns());
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

impl MaskedOperator<f64> {
    /// The columns Π(σ_g M_{i_g} X v) for the columns v of `basis` (d × m), as the structured
    /// interior point's Woodbury form (X L_i⁻ᵀ) and the crossover's Jacobian (X N_b) need them:
    /// group g = (i_g, σ_g, k_g) covers the next k_g columns, masked by pattern i_g (the
    /// operator's off value outside it), signed by σ_g and pooled. X·basis is one product into
    /// the first m columns of `scratch` (rows × at least m); a pooling operator averages them
    /// into `pooled` (n × at least m). Returns the n × m result, in whichever of the two holds it.
    pub fn masked_columns<'a>(
        &self,
        basis: MatRef<'_, f64>,
        groups: &[(usize, f64, usize)],
        scratch: &'a mut Mat<f64>,
        pooled: &'a mut Mat<f64>,
    ) -> MatRef<'a, f64> {
        let m = basis.ncols();
        debug_assert_eq!(groups.iter().map(|g| g.2).sum::<usize>(), m);
        matmul(
            scratch.as_mut().subcols_mut(0, m),
            Accum::Replace,
            self.x(),
            basis,
            1.0,
            self.par(),
        );
        let mut col = 0;
        for &(i, sign, k) in groups {
            // The mask as weights: a product the compiler vectorizes, where a branch on random
            // bits mispredicts.
            let weight: Vec<f64> = self
                .patterns
                .column(i)
                .into_iter()
                .map(|on| sign * if on { 1.0 } else { self.off })
                .collect();
            for _ in 0..k {
                let c = scratch.col_as_slice_mut(col);
                c.iter_mut().zip(&weight).for_each(|(v, w)| *v *= w);
                if self.pool > 1 {
                    self.pool_rows(c, pooled.col_as_slice_mut(col));
                }
                col += 1;
            }
        }
        if self.pool > 1 {
            pooled.as_ref().subcols(0, m)
        } else {
            scratch.as_ref().subcols(0, m)
        }
    }
}

impl<T: Real> Kernel<'_, T> {
    /// `ob = rowsum(D ∘ XU)` over the rows `start..start + ob.len()` (`start` a multiple of 64).
    fn apply_rows(&self, u: MatRef<'_, T>, start: usize, ob: &mut [T], mut scratch: MatMut<'_, T>) {
        let p = self.patterns.len();
        for (t, obt) in ob.chunks_mut(self.tile).enumerate() {
            let s0 = start + t * self.tile;
            let len = obt.len();
            let mut sc = scratch.as_mut().subrows_mut(0, len);
            matmul(
                sc.as_mut(),
                Accum::Replace,
                self.x.subrows(s0, len),
                u,
                T::one(),
                Par::Seq,
            );
            obt.fill(T::zero());
            let sc = sc.as_ref();
            for i in 0..p {
                let col = sc.col(i).try_as_col_major().expect("contiguous scratch");
                let words = &self.patterns.column_words(i)[s0 / 64..];
                masked_add(obt, col.as_slice(), words, self.byte_masks, self.off);
            }
        }
    }

    /// `out = Xᵀ(D ∘ r1ᵀ)` over the rows `start..start + rb.len()` (`start` a multiple of 64).
    fn adjoint_rows(
        &self,
        rb: &[T],
        start: usize,
        mut out: MatMut<'_, T>,
        mut scratch: MatMut<'_, T>,
    ) {
        let p = self.patterns.len();
        for (t, rbt) in rb.chunks(self.tile).enumerate() {
            let s0 = start + t * self.tile;
            let len = rbt.len();
            let mut sc = scratch.as_mut().subrows_mut(0, len);
            for i in 0..p {
                let col = sc
                    .as_mut()
                    .col_mut(i)
                    .try_as_col_major_mut()
                    .expect("contiguous scratch");
                let words = &self.patterns.column_words(i)[s0 / 64..];
                masked_copy(col.as_slice_mut(), rbt, words, self.byte_masks, self.off);
            }
            let accum = if t == 0 { Accum::Replace } else { Accum::Add };
            matmul(
                out.as_mut(),
                accum,
                self.x.subrows(s0, len).transpose(),
                sc.as_ref(),
                T::one(),
                Par::Seq,
            );
        }
    }
}

/// `out_j = (1/k) Σ_{q<k} z_{jk+q}`: the average pooling Π of (M35a).
fn average_groups<T: Real>(k: usize, z: &[T], out: &mut [T]) {
    let inv = T::lit(1.0 / k as f64);
    for (o, g) in out.iter_mut().zip(z.chunks_exact(k)) {
        *o = g.iter().fold(T::zero(), |a, &b| a + b) * inv;
    }
}

/// `out_{jk+q} = r_j / k`: the adjoint Π* of [`average_groups`].
fn spread_groups<T: Real>(k: usize, r: &[T], out: &mut [T]) {
    let inv = T::lit(1.0 / k as f64);
    for (&rj, g) in r.iter().zip(out.chunks_exact_mut(k)) {
        g.fill(rj * inv);
    }
}

/// The table of mask values of every byte: entry b holds, in slot k, 1 if bit k of b is set and
/// `off` if not.
fn byte_masks<T: Real>(off: T) -> Vec<[T; 8]> {
    (0..256usize)
        .map(|b| std::array::from_fn(|k| if b >> k & 1 == 1 { T::one() } else { off }))
        .collect()
}

/// `acc[j] += m_j col[j]` with m_j = 1 where bit j of `words` is set and `off` elsewhere: a multiply
/// by the entries of the byte table, so the loop has no branches and vectorizes. For finite `col`
/// and `off = 0` this adds exactly what a sum over the set bits adds (a product by 0 is a signed
/// zero, which leaves every sum as it is).
#[inline]
fn masked_add<T: Real>(acc: &mut [T], col: &[T], words: &[u64], table: &[[T; 8]], off: T) {
    let len = acc.len();
    let col = &col[..len];
    let full = len / 8;
    for (k, (a, c)) in acc.chunks_exact_mut(8).zip(col.chunks_exact(8)).enumerate() {
        let m = &table[(words[k / 8] >> (8 * (k % 8))) as usize & 0xff];
        for q in 0..8 {
            a[q] += c[q] * m[q];
        }
    }
    for j in full * 8..len {
        acc[j] += col[j] * mask_value(words, j, off);
    }
}

/// `dst[j] = m_j src[j]` with the mask values of [`masked_add`]; branch-free like it.
#[inline]
fn masked_copy<T: Real>(dst: &mut [T], src: &[T], words: &[u64], table: &[[T; 8]], off: T) {
    let len = src.len();
    let dst = &mut dst[..len];
    let full = len / 8;
    for (k, (o, s)) in dst.chunks_exact_mut(8).zip(src.chunks_exact(8)).enumerate() {
        let m = &table[(words[k / 8] >> (8 * (k % 8))) as usize & 0xff];
        for q in 0..8 {
            o[q] = s[q] * m[q];
        }
    }
    for j in full * 8..len {
        dst[j] = src[j] * mask_value(words, j, off);
    }
}

/// The mask value of row j: 1 where bit j of `words` is set, `off` elsewhere.
#[inline]
fn mask_value<T: Real>(words: &[u64], j: usize, off: T) -> T {
    if words[j / 64] >> (j % 64) & 1 == 1 {
        T::one()
    } else {
        off
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
        /// ⟨A(U), r⟩ = ⟨U, A*(r)⟩ and the blocked operator equals the dense reference, for 0/1 masks
        /// and two-level masks (leaky ReLU, absolute value).
        #[test]
        fn adjoint_and_reference(n in 1usize..300, d in 1usize..6, m in 1usize..20,
                                 block in 1usize..200, seed in 0u64..1000,
                                 off in prop::sample::select(vec![0.0, 0.3, -1.0])) {
            let x = random(n, d, seed);
            let pats = sample_patterns(x.as_ref(), m, seed + 1).unwrap();
            prop_assume!(!pats.is_empty());
            let p = pats.len();
            let reference = DenseReferenceOperator::with_off_value(x.as_ref(), &pats, off);
            let mut op = MaskedOperator::<f64>::new(x.as_ref(), pats, block, 1).with_off_value(off);
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

    /// The operator over a sample of the samples predicts what the whole one predicts on them,
    /// with and without pooling and for two-level masks; its adjoint is that of the sampled rows.
    #[test]
    fn sampled_operator_keeps_the_sampled_predictions() {
        for (pool, off) in [(1usize, 0.0), (1, 0.3), (3, 0.0), (2, -1.0)] {
            let n = 90;
            let x = random(n * pool, 4, 3);
            let pats = sample_patterns(x.as_ref(), 12, 4).unwrap();
            let p = pats.len();
            let mut op = MaskedOperator::<f64>::new(x.as_ref(), pats, 128, 1)
                .with_pooling(pool)
                .with_off_value(off);
            let samples = [0usize, 5, 6, 41, 89];
            let mut sub = op.sample(&samples);
            assert_eq!((sub.n_samples(), sub.pooling()), (samples.len(), pool));
            let u = random(4, p, 5);
            let (mut full, mut part) = (vec![0.0; n], vec![0.0; samples.len()]);
            op.apply(u.as_ref(), &mut full);
            sub.apply(u.as_ref(), &mut part);
            for (k, &s) in samples.iter().enumerate() {
                assert!((part[k] - full[s]).abs() < 1e-12, "pool {pool}, off {off}");
            }
            // The adjoint of the sample equals the whole adjoint of r zero off the sample.
            let r: Vec<f64> = (0..samples.len()).map(|k| k as f64 - 1.5).collect();
            let mut spread = vec![0.0; n];
            for (k, &s) in samples.iter().enumerate() {
                spread[s] = r[k];
            }
            let (mut a_full, mut a_part) = (Mat::zeros(4, p), Mat::zeros(4, p));
            op.adjoint(&spread, a_full.as_mut());
            sub.adjoint(&r, a_part.as_mut());
            for i in 0..p {
                for k in 0..4 {
                    assert!((a_full[(k, i)] - a_part[(k, i)]).abs() < 1e-12);
                }
            }
        }
    }

    /// Threads split the rows; the products agree with one thread for any tile and thread count.
    #[test]
    fn threads_match_sequential() {
        for (n, block, threads) in [(1000, 4096, 2), (1000, 128, 3), (70, 64, 4), (513, 200, 2)] {
            let x = random(n, 5, n as u64);
            let pats = sample_patterns(x.as_ref(), 40, 7).unwrap();
            let p = pats.len();
            let mut seq = MaskedOperator::<f64>::new(x.as_ref(), pats.clone(), block, 1);
            let mut par = MaskedOperator::<f64>::new(x.as_ref(), pats, block, threads);
            let u = random(5, p, 1);
            let r: Vec<f64> = random(n, 1, 2).col_as_slice(0).to_vec();
            let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
            seq.apply(u.as_ref(), &mut a);
            par.apply(u.as_ref(), &mut b);
            for j in 0..n {
                assert!((a[j] - b[j]).abs() <= 1e-12 * (1.0 + a[j].abs()));
            }
            let (mut ga, mut gb) = (Mat::zeros(5, p), Mat::zeros(5, p));
            seq.adjoint(&r, ga.as_mut());
            par.adjoint(&r, gb.as_mut());
            for i in 0..p {
                for k in 0..5 {
                    let (s, t) = (ga[(k, i)], gb[(k, i)]);
                    assert!((s - t).abs() <= 1e-12 * (1.0 + s.abs()), "{s} vs {t}");
                }
            }
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

    /// The pooled operator (M35a) is the average of the unpooled one over each sample's rows, and
    /// its adjoint is its adjoint: ⟨ΠA(U), r⟩ = ⟨U, A*(Π*r)⟩.
    #[test]
    fn pooled_operator_averages_rows_and_is_adjoint() {
        for (n, k, threads) in [(7, 4, 1), (40, 9, 2), (3, 1, 1), (100, 13, 3)] {
            let x = random(n * k, 4, (n * k) as u64);
            let pats = sample_patterns(x.as_ref(), 15, 3).unwrap();
            let p = pats.len();
            let mut plain = MaskedOperator::<f64>::new(x.as_ref(), pats.clone(), 128, threads);
            let mut pooled =
                MaskedOperator::<f64>::new(x.as_ref(), pats, 128, threads).with_pooling(k);
            assert_eq!((pooled.n_samples(), pooled.nrows()), (n, n * k));
            let u = random(4, p, 5);
            let r: Vec<f64> = random(n, 1, 6).col_as_slice(0).to_vec();
            let mut rows = vec![0.0; n * k];
            plain.apply(u.as_ref(), &mut rows);
            let mut au = vec![0.0; n];
            pooled.apply(u.as_ref(), &mut au);
            for j in 0..n {
                let avg = rows[j * k..(j + 1) * k].iter().sum::<f64>() / k as f64;
                assert!((au[j] - avg).abs() <= 1e-12 * (1.0 + avg.abs()));
            }
            let mut atr = Mat::zeros(4, p);
            pooled.adjoint(&r, atr.as_mut());
            let lhs = dot(&au, &r);
            let rhs: f64 = (0..p)
                .map(|i| dot(u.col_as_slice(i), atr.col_as_slice(i)))
                .sum();
            assert!(
                (lhs - rhs).abs() <= 1e-12 * (1.0 + lhs.abs()),
                "{lhs} vs {rhs}"
            );
            let mut spread = vec![0.0; n * k];
            pooled.spread_samples(&r, &mut spread);
            let mut back = vec![0.0; n];
            pooled.pool_rows(&spread, &mut back);
            for j in 0..n {
                assert!((back[j] - r[j] / k as f64).abs() <= 1e-14 * (1.0 + r[j].abs()));
            }
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
