//! Arrangements of deep threshold networks (Ergen et al. 2023, eq. (13), Lemma 3.5): the patterns a
//! last hidden layer can produce,
//!
//! ```text
//! H_2 = H(X),   H_{l+1} = ∪_{S ⊂ cols(H_l), |S| ≤ m_{l−1}} H([ [H_l]_S, 1 ]),
//! ```
//!
//! where H(Z) = {1[Z w ≥ 0]} is the set of patterns of Z (the all-zero pattern included) and m_{l−1}
//! is the width of hidden layer l − 1. Exact on tiny data only: the count grows like n^{r·Π m}.

use std::collections::BTreeMap;

use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

use super::enumerate::enumerate;
use crate::error::{Error, Result};

/// One threshold unit: 1[xᵀw ≥ 0] on the input (first hidden layer, `inputs` empty) or
/// 1\[Σ_k w_k h_{inputs\[k\]} + w_last ≥ 0\] on units of the previous layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unit {
    /// Units of the previous layer it reads (empty for the first hidden layer).
    pub inputs: Vec<usize>,
    /// Weights on the input, or on [inputs…, 1].
    pub weights: Vec<f64>,
}

/// The layers of a deep threshold arrangement: every unit of the last layer produces one pattern.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DeepArrangement {
    /// Units per hidden layer, first to last.
    pub layers: Vec<Vec<Unit>>,
}

impl DeepArrangement {
    /// The 0/1 outputs of every unit of every layer on the rows of `x`.
    pub fn evaluate(&self, x: MatRef<'_, f64>) -> Vec<Vec<Vec<bool>>> {
        let n = x.nrows();
        let mut out: Vec<Vec<Vec<bool>>> = Vec::with_capacity(self.layers.len());
        for (l, layer) in self.layers.iter().enumerate() {
            let values = layer
                .iter()
                .map(|u| {
                    (0..n)
                        .map(|j| {
                            let z: f64 = if l == 0 {
                                u.weights
                                    .iter()
                                    .enumerate()
                                    .map(|(k, w)| w * x[(j, k)])
                                    .sum()
                            } else {
                                let prev = &out[l - 1];
                                let last = u.weights[u.inputs.len()];
                                u.inputs
                                    .iter()
                                    .zip(&u.weights)
                                    .map(|(&i, w)| if prev[i][j] { *w } else { 0.0 })
                                    .sum::<f64>()
                                    + last
                            };
                            z >= 0.0
                        })
                        .collect()
                })
                .collect();
            out.push(values);
        }
        out
    }

    /// The patterns of the last layer on the training rows, aligned with its units.
    pub fn last_patterns(&self, x: MatRef<'_, f64>) -> Vec<Vec<bool>> {
        self.evaluate(x).pop().unwrap_or_default()
    }
}

/// Every pattern of `z` with a unit realizing it (interior gates from exact enumeration), plus the
/// all-zero pattern when `zero` gives a unit for it.
fn units_of(
    z: MatRef<'_, f64>,
    inputs: &[usize],
    zero: Option<Vec<f64>>,
    into: &mut BTreeMap<Vec<bool>, Unit>,
) -> Result<()> {
    let set = enumerate(z)?.ok_or_else(|| {
        Error::InvalidSetting(format!(
            "the arrangement of a {} × {} layer input is too large to enumerate exactly",
            z.nrows(),
            z.ncols()
        ))
    })?;
    let gates = set
        .gates()
        .ok_or_else(|| Error::InvalidData("enumeration returned no gates".into()))?;
    for i in 0..set.len() {
        let weights = (0..gates.nrows()).map(|k| gates[(k, i)]).collect();
        into.entry(set.column(i)).or_insert(Unit {
            inputs: inputs.to_vec(),
            weights,
        });
    }
    if let Some(weights) = zero {
        into.entry(vec![false; z.nrows()]).or_insert(Unit {
            inputs: inputs.to_vec(),
            weights,
        });
    }
    Ok(())
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

/// The weights of a first-layer unit that is 0 on every row: minus the bias direction, when `x`
/// has a constant positive column.
fn zero_unit_on_input(x: MatRef<'_, f64>) -> Option<Vec<f64>> {
    (0..x.ncols())
        .find(|&k| {
            let c = x[(0, k)];
            c > 0.0 && (0..x.nrows()).all(|j| x[(j, k)] == c)
        })
        .map(|k| {
            (0..x.ncols())
                .map(|i| if i == k { -1.0 } else { 0.0 })
                .collect()
        })
}

/// The arrangement H_L of a deep threshold network on `x` (bias column included by the caller) with
/// hidden widths `widths` = [m_1, …, m_{L−2}] below the last hidden layer; `widths` empty gives
/// H_2 = H(X). Every pattern comes with the units that compute it. Fails with a clear error past
/// `max_patterns` patterns.
pub fn deep_arrangement(
    x: MatRef<'_, f64>,
    widths: &[usize],
    max_patterns: usize,
) -> Result<DeepArrangement> {
    let n = x.nrows();
    let mut first = BTreeMap::new();
    units_of(x, &[], zero_unit_on_input(x), &mut first)?;
    let mut patterns: Vec<Vec<bool>> = first.keys().cloned().collect();
    let mut layers = vec![first.into_values().collect::<Vec<_>>()];
    for &m in widths {
        if m == 0 {
            return Err(Error::InvalidSetting(
                "hidden widths must be at least 1".into(),
            ));
        }
        let mut next = BTreeMap::new();
        for_each_subset(patterns.len(), m, &mut |s: &[usize]| {
            let z = Mat::from_fn(n, s.len() + 1, |j, k| {
                if k < s.len() {
                    f64::from(u8::from(patterns[s[k]][j]))
                } else {
                    1.0
                }
            });
            let mut zero = vec![0.0; s.len()];
            zero.push(-1.0);
            units_of(z.as_ref(), s, Some(zero), &mut next)?;
            if next.len() > max_patterns {
                return Err(Error::InvalidSetting(format!(
                    "the deep arrangement exceeds {max_patterns} patterns: use sampled layers instead"
                )));
            }
            Ok(())
        })?;
        patterns = next.keys().cloned().collect();
        layers.push(next.into_values().collect());
    }
    Ok(DeepArrangement { layers })
}

/// The sampled version used in practice (Ergen et al. 2023, §5): hidden layers of widths `widths`
/// with i.i.d. N(0, 1) weights (each unit reads every unit of the layer below and a bias), then a
/// last layer of `count` random units whose patterns are the Lasso's columns. Seeded.
pub fn sampled_deep_arrangement(
    x: MatRef<'_, f64>,
    widths: &[usize],
    count: usize,
    seed: u64,
) -> Result<DeepArrangement> {
    if count == 0 || widths.contains(&0) {
        return Err(Error::InvalidSetting(
            "layer widths and the number of sampled patterns must be at least 1".into(),
        ));
    }
    let mut rng = crate::rng::Rng::new(seed);
    let mut layers = Vec::with_capacity(widths.len() + 1);
    let mut below: Option<usize> = None;
    for &m in widths.iter().chain(std::iter::once(&count)) {
        let layer = (0..m)
            .map(|_| match below {
                None => Unit {
                    inputs: vec![],
                    weights: (0..x.ncols()).map(|_| rng.normal()).collect(),
                },
                Some(k) => Unit {
                    inputs: (0..k).collect(),
                    weights: (0..=k).map(|_| rng.normal()).collect(),
                },
            })
            .collect();
        layers.push(layer);
        below = Some(m);
    }
    Ok(DeepArrangement { layers })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Example 3.1: x ∈ {−1, 0, 1} with a bias has the 6 monotone patterns (010 and 101 missing);
    /// one more layer of width 2 makes the arrangement complete, 8 = 2³ patterns.
    #[test]
    fn example_3_1() {
        let x = Mat::from_fn(3, 2, |i, k| if k == 0 { i as f64 - 1.0 } else { 1.0 });
        let h2 = deep_arrangement(x.as_ref(), &[], 100)
            .unwrap()
            .last_patterns(x.as_ref());
        assert_eq!(h2.len(), 6);
        assert!(!h2.contains(&vec![false, true, false]) && !h2.contains(&vec![true, false, true]));
        let deep = deep_arrangement(x.as_ref(), &[2], 100).unwrap();
        let h3 = deep.last_patterns(x.as_ref());
        assert_eq!(h3.len(), 8);
        // The units compute distinct patterns: all of {0, 1}³.
        let mut sorted = h3.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 8);
        // Width 1 adds nothing: a single 0/1 feature with a bias only reproduces its own patterns.
        let narrow = deep_arrangement(x.as_ref(), &[1], 100).unwrap();
        assert_eq!(narrow.last_patterns(x.as_ref()).len(), 6);
    }

    #[test]
    fn sampled_layers_are_seeded_and_shaped() {
        let x = Mat::from_fn(20, 3, |i, k| {
            if k == 2 {
                1.0
            } else {
                (i * (k + 2)) as f64 % 7.0 - 3.0
            }
        });
        let a = sampled_deep_arrangement(x.as_ref(), &[5, 4], 30, 1).unwrap();
        let b = sampled_deep_arrangement(x.as_ref(), &[5, 4], 30, 1).unwrap();
        assert_eq!(a.layers.len(), 3);
        assert_eq!(a.layers[2].len(), 30);
        assert_eq!(a.layers[1][0].inputs.len(), 5);
        assert_eq!(a.last_patterns(x.as_ref()), b.last_patterns(x.as_ref()));
        assert!(sampled_deep_arrangement(x.as_ref(), &[0], 3, 1).is_err());
    }

    #[test]
    fn refuses_to_grow_past_the_limit() {
        let x = Mat::from_fn(5, 2, |i, k| if k == 0 { i as f64 } else { 1.0 });
        assert!(deep_arrangement(x.as_ref(), &[3], 10).is_err());
    }
}
