//! Dictionaries of deep narrow ReLU networks on scalar data (Zeger, Wang, Mishkin, Ergen, Candès &
//! Pilanci; docs/programs.md (M58)–(M60)). The network is a sum of *chains*, each a stack of L − 1
//! ReLU layers of width one with free biases, f(x) = Σ_j α_j h_j(x) + ξ, weight decay
//! (λ/L) Σ |weights|^L. Its convex program is the Lasso (M47) over the chain features
//!
//! ```text
//! φ¹(x) = x,   φ^{l+1}(x) = (s_l (φ^l(x) − φ^l(a_l)))₊,   l = 1 … L − 1,
//! ```
//!
//! with signs s_l = ±1 and anchors a_l at data values; for L = 4 a second family has its innermost
//! anchor at the reflection a_1 = 2x_{j₂} − x_{j₁} of one data value about the next layer's anchor
//! x_{j₂} (M58). Columns constant on the data are dropped (the intercept realizes them), and of
//! columns equal up to a constant and a nonzero factor only the largest is kept (the others are
//! dominated: the same fit costs less on it).

use std::collections::HashMap;

use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::features::dictionary::scalar_inputs;

/// Depths with a dictionary here (the seed's deep narrow networks).
pub const DEPTHS: [usize; 2] = [3, 4];

/// Candidate columns enumerated at most (before dropping constant and duplicate columns).
pub const MAX_CANDIDATES: usize = 20_000_000;

/// One column of a deep narrow dictionary: the chain with signs s_l and anchors a_l (M58).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chain {
    /// The anchors a_1 … a_{L−1} (data values, or for L = 4 possibly a reflection as a_1).
    pub anchors: Vec<f64>,
    /// The signs s_1 … s_{L−1}.
    pub signs: Vec<f64>,
    /// Whether a_1 is the reflection 2a₂ − x_{j₁} (the second family of depth 4).
    #[serde(default)]
    pub reflected: bool,
}

impl Chain {
    /// The depth L of the network whose feature this is (one more than its ReLU layers).
    pub fn depth(&self) -> usize {
        self.anchors.len() + 1
    }

    /// The offsets c_l = φ^l(a_l): the chain is h_{l+1} = (s_l (h_l − c_l))₊ from h_1 = x.
    pub fn offsets(&self) -> Vec<f64> {
        let mut c: Vec<f64> = Vec::with_capacity(self.anchors.len());
        for (l, &a) in self.anchors.iter().enumerate() {
            let value = c
                .iter()
                .zip(&self.signs)
                .fold(a, |h, (&cl, &s)| (s * (h - cl)).max(0.0));
            debug_assert_eq!(c.len(), l);
            c.push(value);
        }
        c
    }

    /// The feature φ^L at each of `xs`.
    pub fn column(&self, xs: &[f64]) -> Vec<f64> {
        let c = self.offsets();
        xs.iter()
            .map(|&x| {
                c.iter()
                    .zip(&self.signs)
                    .fold(x, |h, (&cl, &s)| (s * (h - cl)).max(0.0))
            })
            .collect()
    }
}

/// The dictionary of the deep narrow ReLU network of depth L on scalar data: its chains and the
/// matrix A (n × P).
#[derive(Clone, Debug)]
pub struct NarrowDictionary {
    /// The depth L (3 or 4).
    pub depth: usize,
    /// The columns, in the order of the matrix.
    pub chains: Vec<Chain>,
    /// A_{i,k} = φ_k(x_i), not centered.
    pub matrix: Mat<f64>,
}

/// An error unless `depth` has a deep narrow dictionary here.
pub fn check_depth(depth: usize) -> Result<()> {
    if DEPTHS.contains(&depth) {
        Ok(())
    } else {
        Err(Error::InvalidSetting(format!(
            "deep narrow dictionaries exist for depth 3 and 4 (depth 2 is the two-layer \
             dictionary), not depth {depth}"
        )))
    }
}

/// The number of candidate chains of depth L over q distinct values: (2q)^{L−1}, twice that for
/// L = 4 (the reflected family of [`NarrowDictionary::new`]).
pub fn candidates(q: usize, depth: usize) -> usize {
    let base = (2 * q).saturating_pow(depth.saturating_sub(1) as u32);
    if depth == 4 {
        base.saturating_mul(2)
    } else {
        base
    }
}

impl NarrowDictionary {
    /// The dictionary (M58) of depth `depth` on the scalar inputs `x` (n × 1): anchors at the
    /// distinct data values, and for L = 4 the reflected family. `memory_limit` bounds the bytes
    /// of the kept columns (with their centered copy).
    pub fn new(x: MatRef<'_, f64>, depth: usize, memory_limit: usize) -> Result<Self> {
        check_depth(depth)?;
        let xs = scalar_inputs(x)?;
        let mut values = xs.clone();
        values.sort_by(f64::total_cmp);
        values.dedup();
        if values.len() < 2 {
            return Err(Error::InvalidData(
                "every input has the same value: a 1-D dictionary needs at least two distinct \
                 inputs (the best fit is then the constant mean of y)"
                    .into(),
            ));
        }
        Self::from_anchors(&xs, &values, depth, depth == 4, memory_limit)
    }

    /// The chain columns of depth `depth` (≥ 2) on the inputs `xs` with every anchor in `values`,
    /// and with `reflections` also the family whose innermost anchor is 2a₂ − a₁ (a₁, a₂ in
    /// `values`). [`NarrowDictionary::new`] takes the data values; other anchor sets serve to
    /// check numerically that nothing is lost by that choice.
    pub fn from_anchors(
        xs: &[f64],
        values: &[f64],
        depth: usize,
        reflections: bool,
        memory_limit: usize,
    ) -> Result<Self> {
        let q = values.len();
        if depth < 2 || q == 0 {
            return Err(Error::InvalidSetting(format!(
                "a chain dictionary needs depth ≥ 2 and anchors (depth {depth}, {q} anchors)"
            )));
        }
        let families = if reflections && depth >= 3 { 2 } else { 1 };
        let total = (2 * q)
            .saturating_pow(depth as u32 - 1)
            .saturating_mul(families);
        if total > MAX_CANDIDATES {
            return Err(Error::Memory(format!(
                "the depth-{depth} dictionary of {q} distinct inputs has {total} candidate columns \
                 (at most {MAX_CANDIDATES} are enumerated): use fewer points or a smaller depth"
            )));
        }
        let n = xs.len();
        // Kept columns by their direction: centered, scaled to unit norm, sign of the first clear
        // entry positive, rounded to 1e-9. Of columns with one direction only the one of largest
        // centered norm is kept: z on any other is the same fit for a smaller |z| on it.
        let mut kept: HashMap<Vec<i64>, usize> = HashMap::new();
        let (mut chains, mut cols, mut norms) = (Vec::new(), Vec::new(), Vec::new());
        let mut keep = |chain: Chain| -> Result<()> {
            let col = chain.column(xs);
            let mean = col.iter().sum::<f64>() / n as f64;
            let norm = col.iter().map(|v| (v - mean).powi(2)).sum::<f64>().sqrt();
            let scale = col.iter().map(|v| v.abs()).fold(0.0, f64::max);
            if norm <= 1e-12 * scale || norm == 0.0 {
                return Ok(());
            }
            let unit: Vec<f64> = col.iter().map(|v| (v - mean) / norm).collect();
            let sign = unit
                .iter()
                .find(|v| v.abs() > 1e-6)
                .map_or(1.0, |v| v.signum());
            let key: Vec<i64> = unit
                .iter()
                .map(|v| (sign * v * 1e9).round() as i64)
                .collect();
            match kept.get(&key) {
                Some(&k) => {
                    if norm > norms[k] {
                        (chains[k], cols[k], norms[k]) = (chain, col, norm);
                    }
                }
                None => {
                    if 2 * 8 * n * (cols.len() + 1) > memory_limit {
                        return Err(Error::Memory(format!(
                            "the depth-{depth} dictionary of n = {n} points has more than {} \
                             distinct columns, over the memory limit of {:.2} GiB: use fewer \
                             points, a smaller depth or raise --max-memory",
                            cols.len(),
                            memory_limit as f64 / (1u64 << 30) as f64
                        )));
                    }
                    kept.insert(key, cols.len());
                    chains.push(chain);
                    cols.push(col);
                    norms.push(norm);
                }
            }
            Ok(())
        };
        let layers = depth - 1;
        let mut index = vec![0usize; 2 * layers];
        for family in 0..families {
            index.iter_mut().for_each(|v| *v = 0);
            'outer: loop {
                // index[2l] picks the anchor's data value, index[2l + 1] the sign of layer l.
                let mut anchors: Vec<f64> = (0..layers).map(|l| values[index[2 * l]]).collect();
                if family == 1 {
                    anchors[0] = 2.0 * anchors[1] - anchors[0];
                }
                let signs = (0..layers)
                    .map(|l| if index[2 * l + 1] == 0 { 1.0 } else { -1.0 })
                    .collect();
                keep(Chain {
                    anchors,
                    signs,
                    reflected: family == 1,
                })?;
                for (pos, v) in index.iter_mut().enumerate() {
                    *v += 1;
                    let radix = if pos % 2 == 0 { q } else { 2 };
                    if *v < radix {
                        continue 'outer;
                    }
                    *v = 0;
                }
                break;
            }
        }
        let matrix = Mat::from_fn(n, cols.len(), |i, k| cols[k][i]);
        Ok(NarrowDictionary {
            depth,
            chains,
            matrix,
        })
    }

    /// Number of columns P.
    pub fn len(&self) -> usize {
        self.chains.len()
    }

    /// Whether there are no columns (never, for a dictionary built by [`NarrowDictionary::new`]).
    pub fn is_empty(&self) -> bool {
        self.chains.is_empty()
    }

    /// The pattern of each column on the training data: where the chain's output is positive.
    pub fn patterns(&self) -> Vec<Vec<bool>> {
        (0..self.len())
            .map(|k| {
                self.matrix
                    .col_as_slice(k)
                    .iter()
                    .map(|&v| v > 0.0)
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chains_compose_ramps_and_reflect() {
        // L = 3: φ³(x) = ((x − 1)₊ − (2 − 1)₊)₊ = (x − 2)₊ for x ≥ 1.
        let c = Chain {
            anchors: vec![1.0, 2.0],
            signs: vec![1.0, 1.0],
            reflected: false,
        };
        assert_eq!(c.offsets(), vec![1.0, 1.0]);
        assert_eq!(c.column(&[0.0, 1.5, 2.0, 3.5]), vec![0.0, 0.0, 0.0, 1.5]);
        // s₂ = −1 gives a clipped ramp: (1 − (x − 1)₊)₊, flat 1 up to x = 1 and 0 from x = 2.
        let c = Chain {
            anchors: vec![1.0, 2.0],
            signs: vec![1.0, -1.0],
            reflected: false,
        };
        assert_eq!(c.column(&[0.0, 1.5, 2.0, 3.5]), vec![1.0, 0.5, 0.0, 0.0]);
        let c = Chain {
            anchors: vec![1.0, 1.0],
            signs: vec![1.0, -1.0],
            reflected: false,
        };
        // offsets (1, 0): (−(x − 1)₊)₊ = 0 everywhere.
        assert!(c.column(&[0.0, 3.0]).iter().all(|&v| v == 0.0));
        let c = Chain {
            anchors: vec![3.0, 1.0],
            signs: vec![-1.0, -1.0],
            reflected: false,
        };
        // h₂ = (3 − x)₊, c₂ = 2: (2 − (3 − x)₊)₊ = clamp(x − 1, 0, 2).
        assert_eq!(c.column(&[0.0, 2.0, 4.0]), vec![0.0, 1.0, 2.0]);
    }

    #[test]
    fn counts_duplicates_and_limits() {
        let x = Mat::from_fn(4, 1, |i, _| [0.0, 1.0, 3.0, 1.0][i]);
        assert_eq!(candidates(3, 3), 36);
        assert_eq!(candidates(3, 4), 432);
        let d3 = NarrowDictionary::new(x.as_ref(), 3, usize::MAX).unwrap();
        let d4 = NarrowDictionary::new(x.as_ref(), 4, usize::MAX).unwrap();
        assert!(!d3.is_empty() && d3.len() <= 36);
        // Depth 4 contains depth 3 up to constants and factors: a last layer (h − min h)₊ shifts
        // h ≥ 0, and a kept column is at least as large as every column of its direction.
        let centered = |a: &[f64]| {
            let m = a.iter().sum::<f64>() / a.len() as f64;
            a.iter().map(|v| v - m).collect::<Vec<f64>>()
        };
        for k in 0..d3.len() {
            let a = centered(d3.matrix.col_as_slice(k));
            let na = a.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!((0..d4.len()).any(|m| {
                let b = centered(d4.matrix.col_as_slice(m));
                let nb = b.iter().map(|v| v * v).sum::<f64>().sqrt();
                let cos = a.iter().zip(&b).map(|(u, v)| u * v).sum::<f64>() / (na * nb);
                cos.abs() > 1.0 - 1e-12 && nb >= na * (1.0 - 1e-12)
            }));
        }
        // Every column is non-constant on the data, and no two have one direction.
        for k in 0..d4.len() {
            let a = centered(d4.matrix.col_as_slice(k));
            let na = a.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(na > 0.0);
            for m in 0..k {
                let b = centered(d4.matrix.col_as_slice(m));
                let nb = b.iter().map(|v| v * v).sum::<f64>().sqrt();
                let cos = a.iter().zip(&b).map(|(u, v)| u * v).sum::<f64>() / (na * nb);
                assert!(cos.abs() < 1.0 - 1e-12, "{k} {m}");
            }
        }
        assert!(NarrowDictionary::new(x.as_ref(), 5, usize::MAX).is_err());
        assert!(NarrowDictionary::new(x.as_ref(), 2, usize::MAX).is_err());
        let e = NarrowDictionary::new(x.as_ref(), 4, 100).unwrap_err();
        assert!(e.to_string().contains("--max-memory"), "{e}");
        let many = Mat::from_fn(400, 1, |i, _| i as f64);
        let e = NarrowDictionary::new(many.as_ref(), 4, usize::MAX).unwrap_err();
        assert!(e.to_string().contains("candidate columns"), "{e}");
    }
}
