//! Features: the activation patterns `D_i = diag(1[X g_i >= 0])` (docs/programs.md §1, §5) that the convex
//! programs work on, stored as bits.
//!
//! A [`PatternSet`] holds P distinct, nonzero 0/1 columns of length n, with the gate that realizes
//! each column where one is known (sampled or enumerated gates; user-supplied masks have none), and a
//! flag saying whether the set is the complete arrangement of the data (then the convex program is
//! exact, 001 Theorem 1).

pub mod deep;
pub mod dictionary;
pub mod enumerate;
pub mod narrow;
pub mod patches;
pub mod sample;

use std::collections::HashSet;

use faer::{Mat, MatRef};

use crate::error::{Error, Result};

/// Distinct, nonzero activation patterns over n samples, column-major bits.
#[derive(Clone, Debug)]
pub struct PatternSet {
    n: usize,
    words: usize,
    bits: Vec<u64>,
    gates: Option<Mat<f64>>,
    exhaustive: bool,
}

/// Whether each row of `x` lies on the nonnegative side of `g`: the pattern 1[X g >= 0] (docs/programs.md §1).
pub fn pattern_of_gate(x: MatRef<'_, f64>, g: &[f64]) -> Vec<bool> {
    (0..x.nrows())
        .map(|j| (0..x.ncols()).map(|k| x[(j, k)] * g[k]).sum::<f64>() >= 0.0)
        .collect()
}

impl PatternSet {
    /// Builds a set from 0/1 columns, dropping all-zero and duplicate columns (this leaves the optimum
    /// unchanged, docs/programs.md §1). `gates`, if given, holds one gate per input column (d × columns); the
    /// gates of kept columns are kept.
    pub fn from_columns(
        n: usize,
        columns: &[Vec<bool>],
        gates: Option<MatRef<'_, f64>>,
        exhaustive: bool,
    ) -> Result<Self> {
        if n == 0 {
            return Err(Error::InvalidData("patterns over zero samples".into()));
        }
        if let Some(g) = gates {
            if g.ncols() != columns.len() {
                return Err(Error::InvalidData(format!(
                    "{} gates for {} pattern columns",
                    g.ncols(),
                    columns.len()
                )));
            }
        }
        let words = n.div_ceil(64);
        let mut seen: HashSet<Vec<u64>> = HashSet::new();
        let mut bits = Vec::new();
        let mut kept = Vec::new();
        for (i, col) in columns.iter().enumerate() {
            if col.len() != n {
                return Err(Error::InvalidData(format!(
                    "pattern column {i} has length {}, expected n = {n}",
                    col.len()
                )));
            }
            let mut w = vec![0u64; words];
            for (j, &b) in col.iter().enumerate() {
                if b {
                    w[j / 64] |= 1u64 << (j % 64);
                }
            }
            if w.iter().all(|&x| x == 0) || !seen.insert(w.clone()) {
                continue;
            }
            bits.extend_from_slice(&w);
            kept.push(i);
        }
        let gates = gates.map(|g| Mat::from_fn(g.nrows(), kept.len(), |k, c| g[(k, kept[c])]));
        Ok(PatternSet {
            n,
            words,
            bits,
            gates,
            exhaustive,
        })
    }

    /// The patterns 1[X g_i >= 0] of the columns of `gates` (d × P), deduplicated.
    pub fn from_gates(
        x: MatRef<'_, f64>,
        gates: MatRef<'_, f64>,
        exhaustive: bool,
    ) -> Result<Self> {
        if gates.nrows() != x.ncols() {
            return Err(Error::InvalidData(format!(
                "gates have {} rows but X has {} columns (gates must be d × P)",
                gates.nrows(),
                x.ncols()
            )));
        }
        let cols: Vec<Vec<bool>> = (0..gates.ncols())
            .map(|i| {
                let g: Vec<f64> = (0..gates.nrows()).map(|k| gates[(k, i)]).collect();
                pattern_of_gate(x, &g)
            })
            .collect();
        Self::from_columns(x.nrows(), &cols, Some(gates), exhaustive)
    }

    /// Number of samples n.
    pub fn n_samples(&self) -> usize {
        self.n
    }

    /// Number of distinct nonzero patterns P.
    pub fn len(&self) -> usize {
        self.bits.len().checked_div(self.words).unwrap_or(0)
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the set is the complete arrangement of the data (exact enumeration).
    pub fn is_exhaustive(&self) -> bool {
        self.exhaustive
    }

    /// Interior gates (d × P) realizing each pattern, where known.
    pub fn gates(&self) -> Option<MatRef<'_, f64>> {
        self.gates.as_ref().map(|g| g.as_ref())
    }

    /// `(D_i)_jj`.
    #[inline]
    pub fn get(&self, j: usize, i: usize) -> bool {
        (self.bits[i * self.words + j / 64] >> (j % 64)) & 1 == 1
    }

    /// The 64-bit words of pattern `i` (bit j of the column is bit j%64 of word j/64).
    #[inline]
    pub fn column_words(&self, i: usize) -> &[u64] {
        &self.bits[i * self.words..(i + 1) * self.words]
    }

    /// Pattern `i` as booleans.
    pub fn column(&self, i: usize) -> Vec<bool> {
        (0..self.n).map(|j| self.get(j, i)).collect()
    }

    /// Number of ones in pattern `i`.
    pub fn count_ones(&self, i: usize) -> usize {
        self.column_words(i)
            .iter()
            .map(|w| w.count_ones() as usize)
            .sum()
    }

    /// The patterns as an n × P 0/1 byte matrix, row-major (for `.npz` export).
    pub fn to_u8_row_major(&self) -> Vec<u8> {
        let p = self.len();
        let mut out = vec![0u8; self.n * p];
        for i in 0..p {
            for j in 0..self.n {
                out[j * p + i] = self.get(j, i) as u8;
            }
        }
        out
    }

    /// The set with one pattern of each complementary pair {D, I − D} (the first one met), as
    /// exhaustive as before. For the absolute-value program both give the same features:
    /// S_{I−D} = −S_D and K_{I−D} = −K_D, so S_{I−D} X (−u) = S_D X u (docs/programs.md (M40)); the
    /// optimum is unchanged and the program half the size.
    pub fn without_complements(&self) -> Self {
        let tail = self.n % 64;
        let mut seen: HashSet<&[u64]> = HashSet::new();
        let mut keep = Vec::new();
        for i in 0..self.len() {
            let words = self.column_words(i);
            let mut comp: Vec<u64> = words.iter().map(|w| !w).collect();
            if tail != 0 {
                *comp.last_mut().expect("n > 0") &= (1u64 << tail) - 1;
            }
            if !seen.contains(comp.as_slice()) {
                seen.insert(words);
                keep.push(i);
            }
        }
        PatternSet {
            exhaustive: self.exhaustive,
            ..self.select(&keep)
        }
    }

    /// The same patterns restricted to the listed samples (columns kept as they are, even where
    /// they become empty or repeated).
    pub fn sample_rows(&self, rows: &[usize]) -> Self {
        let words = rows.len().div_ceil(64).max(1);
        let mut bits = vec![0u64; words * self.len()];
        for i in 0..self.len() {
            for (r, &j) in rows.iter().enumerate() {
                if self.get(j, i) {
                    bits[i * words + r / 64] |= 1u64 << (r % 64);
                }
            }
        }
        PatternSet {
            n: rows.len(),
            words,
            bits,
            gates: self.gates.clone(),
            exhaustive: false,
        }
    }

    /// A set holding only the patterns whose indices are listed (e.g. the active ones).
    pub fn select(&self, idx: &[usize]) -> Self {
        let mut bits = Vec::with_capacity(idx.len() * self.words);
        for &i in idx {
            bits.extend_from_slice(self.column_words(i));
        }
        let gates = self
            .gates
            .as_ref()
            .map(|g| Mat::from_fn(g.nrows(), idx.len(), |k, c| g[(k, idx[c])]));
        PatternSet {
            n: self.n,
            words: self.words,
            bits,
            gates,
            exhaustive: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complements_are_dropped_once() {
        let n = 70;
        let col = |f: &dyn Fn(usize) -> bool| (0..n).map(f).collect::<Vec<bool>>();
        let a = col(&|j| j % 3 == 0);
        let not_a = col(&|j| j % 3 != 0);
        let b = col(&|j| j < 65);
        let not_b = col(&|j| j >= 65);
        let c = col(&|j| j % 2 == 0);
        let set = PatternSet::from_columns(n, &[a.clone(), b, not_a, c.clone(), not_b], None, true)
            .unwrap();
        let half = set.without_complements();
        assert_eq!(half.len(), 3);
        assert!(half.is_exhaustive());
        assert_eq!(half.column(0), a);
        assert_eq!(half.column(2), c);
    }

    #[test]
    fn dedup_and_zero_removal() {
        let cols = vec![
            vec![true, false, true],
            vec![false, false, false],
            vec![true, false, true],
            vec![false, true, true],
        ];
        let p = PatternSet::from_columns(3, &cols, None, false).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p.column(0), cols[0]);
        assert_eq!(p.column(1), cols[3]);
        assert_eq!(p.count_ones(1), 2);
    }

    #[test]
    fn gates_follow_kept_columns() {
        let x = Mat::from_fn(4, 2, |i, k| if k == 0 { i as f64 - 1.5 } else { 1.0 });
        // gate 0 and gate 2 give the same pattern; gate 1 gives all-zero.
        let g = Mat::from_fn(2, 3, |k, c| match (k, c) {
            (0, 0) => 1.0,
            (1, 0) => 0.6,
            (0, 1) => 0.0,
            (1, 1) => -1.0,
            (0, 2) => 2.0,
            _ => 1.2,
        });
        let p = PatternSet::from_gates(x.as_ref(), g.as_ref(), false).unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p.column(0), vec![false, true, true, true]);
        assert_eq!(p.gates().unwrap()[(0, 0)], 1.0);
    }

    #[test]
    fn long_columns_cross_word_boundaries() {
        let n = 130;
        let col: Vec<bool> = (0..n).map(|j| j % 3 == 0 || j == 129).collect();
        let p = PatternSet::from_columns(n, std::slice::from_ref(&col), None, false).unwrap();
        assert_eq!(p.column(0), col);
        assert_eq!(p.column_words(0).len(), 3);
    }
}
