//! Arrangements of deep threshold networks (Ergen et al. 2023, eq. (13), Lemma 3.5): the patterns a
//! last hidden layer can produce,
//!
//! ```text
//! H_2 = H(X),   H_{l+1} = ∪_{S ⊂ cols(H_l), |S| ≤ m_{l−1}} H([ [H_l]_S, 1 ]),
//! ```
//!
//! where H(Z) = {1[Z w ≥ 0]} is the set of patterns of Z (the all-zero pattern included) and m_{l−1}
//! is the width of hidden layer l − 1. Exact on tiny data only: the count grows like n^{r·Π m}.

use std::collections::BTreeSet;

use faer::{Mat, MatRef};

use super::enumerate::enumerate;
use crate::error::{Error, Result};

/// Every pattern of `z`, the all-zero pattern included, or an error when exact enumeration does not
/// apply to `z`'s shape.
fn patterns_of(z: MatRef<'_, f64>) -> Result<BTreeSet<Vec<bool>>> {
    let set = enumerate(z)?.ok_or_else(|| {
        Error::InvalidSetting(format!(
            "the arrangement of a {} × {} layer input is too large to enumerate exactly",
            z.nrows(),
            z.ncols()
        ))
    })?;
    let mut out: BTreeSet<Vec<bool>> = (0..set.len()).map(|i| set.column(i)).collect();
    out.insert(vec![false; z.nrows()]);
    Ok(out)
}

/// Calls `f` with every subset of `0..p` of size 1..=k (as sorted index lists).
fn for_each_subset(p: usize, k: usize, f: &mut dyn FnMut(&[usize]) -> Result<()>) -> Result<()> {
    fn rec(
        start: usize,
        p: usize,
        k: usize,
        cur: &mut Vec<usize>,
        f: &mut dyn FnMut(&[usize]) -> Result<()>,
    ) -> Result<()> {
        if !cur.is_empty() {
            f(cur)?;
        }
        if cur.len() == k {
            return Ok(());
        }
        for i in start..p {
            cur.push(i);
            rec(i + 1, p, k, cur, f)?;
            cur.pop();
        }
        Ok(())
    }
    rec(0, p, k, &mut Vec::new(), f)
}

/// The last-hidden-layer arrangement H_L of a deep threshold network on `x` (bias column included
/// by the caller) with hidden widths `widths` = [m_1, …, m_{L−2}] feeding the last hidden layer:
/// `widths` empty gives H_2 = H(X). Fails with a clear error past `max_patterns` patterns.
pub fn deep_arrangement(
    x: MatRef<'_, f64>,
    widths: &[usize],
    max_patterns: usize,
) -> Result<Vec<Vec<bool>>> {
    let n = x.nrows();
    let mut layer: Vec<Vec<bool>> = patterns_of(x)?.into_iter().collect();
    for &m in widths {
        if m == 0 {
            return Err(Error::InvalidSetting(
                "hidden widths must be at least 1".into(),
            ));
        }
        let mut next = BTreeSet::new();
        next.insert(vec![false; n]);
        let cols = layer.clone();
        for_each_subset(cols.len(), m, &mut |s: &[usize]| {
            let z = Mat::from_fn(n, s.len() + 1, |j, k| {
                if k < s.len() {
                    f64::from(u8::from(cols[s[k]][j]))
                } else {
                    1.0
                }
            });
            next.extend(patterns_of(z.as_ref())?);
            if next.len() > max_patterns {
                return Err(Error::InvalidSetting(format!(
                    "the deep arrangement exceeds {max_patterns} patterns: use sampled layers instead"
                )));
            }
            Ok(())
        })?;
        layer = next.into_iter().collect();
    }
    Ok(layer)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Example 3.1: x ∈ {−1, 0, 1} with a bias has the 6 monotone patterns (010 and 101 missing);
    /// one more layer of width 2 makes the arrangement complete, 8 = 2³ patterns.
    #[test]
    fn example_3_1() {
        let x = Mat::from_fn(3, 2, |i, k| if k == 0 { i as f64 - 1.0 } else { 1.0 });
        let h2 = deep_arrangement(x.as_ref(), &[], 100).unwrap();
        assert_eq!(h2.len(), 6);
        assert!(!h2.contains(&vec![false, true, false]) && !h2.contains(&vec![true, false, true]));
        let h3 = deep_arrangement(x.as_ref(), &[2], 100).unwrap();
        assert_eq!(h3.len(), 8);
        // Width 1 adds nothing: a single 0/1 feature with a bias only reproduces its own patterns.
        let h3_narrow = deep_arrangement(x.as_ref(), &[1], 100).unwrap();
        assert_eq!(h3_narrow.len(), 6);
    }

    #[test]
    fn refuses_to_grow_past_the_limit() {
        let x = Mat::from_fn(5, 2, |i, k| if k == 0 { i as f64 } else { 1.0 });
        assert!(deep_arrangement(x.as_ref(), &[3], 10).is_err());
    }
}
