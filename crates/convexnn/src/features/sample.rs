//! Seeded sampling of gate vectors (docs/programs.md §5): G ∈ ℝ^{d×m} with i.i.d. N(0, 1) entries from the
//! project's generator, patterns 1[X g_i ≥ 0], deduplicated, zero pattern dropped.

use faer::{Mat, MatRef};

use super::PatternSet;
use crate::error::{Error, Result};
use crate::rng::Rng;

/// `m` standard Gaussian gates (d × m), column by column from `Rng::new(seed)`.
pub fn gaussian_gates(d: usize, m: usize, seed: u64) -> Mat<f64> {
    let mut rng = Rng::new(seed);
    let mut g = Mat::zeros(d, m);
    for c in 0..m {
        for k in 0..d {
            g[(k, c)] = rng.normal();
        }
    }
    g
}

/// Samples `m` Gaussian gates and returns their distinct nonzero patterns on `x` (at most `m`).
///
/// A Gaussian gate has no ties with probability one (except for zero rows of X, which give a zero row
/// of `D_i X` under any convention), so the stored gates are interior gates of their cells.
pub fn sample_patterns(x: MatRef<'_, f64>, m: usize, seed: u64) -> Result<PatternSet> {
    if m == 0 {
        return Err(Error::InvalidSetting(
            "the number of sampled patterns must be at least 1".into(),
        ));
    }
    let g = gaussian_gates(x.ncols(), m, seed);
    PatternSet::from_gates(x, g.as_ref(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_deduplicated() {
        let x = Mat::from_fn(30, 3, |i, k| ((i * 7 + k * 3) % 11) as f64 - 5.0);
        let a = sample_patterns(x.as_ref(), 50, 1).unwrap();
        let b = sample_patterns(x.as_ref(), 50, 1).unwrap();
        let c = sample_patterns(x.as_ref(), 50, 2).unwrap();
        assert!(a.len() <= 50 && !a.is_empty());
        assert_eq!(a.len(), b.len());
        for i in 0..a.len() {
            assert_eq!(a.column(i), b.column(i));
        }
        let same = (0..a.len().min(c.len())).all(|i| a.column(i) == c.column(i));
        assert!(!same);
        // every kept pattern is realized by its stored gate
        let g = a.gates().unwrap();
        for i in 0..a.len() {
            let gi: Vec<f64> = (0..3).map(|k| g[(k, i)]).collect();
            assert_eq!(super::super::pattern_of_gate(x.as_ref(), &gi), a.column(i));
        }
    }
}
