//! Explicit dictionaries for scalar data (Zeger, Wang, Mishkin, Ergen, Candès & Pilanci; docs/programs.md
//! (M47)–(M50)): for 1-D inputs the training problem of a two-layer network with free neuron biases
//! and a free output intercept is a Lasso over a fixed matrix whose columns are the activation
//! evaluated at ramps s(x − x_j) with their knot x_j at a data point,
//!
//! ```text
//! A_{i,(j,s)} = σ(s (x_i − x_j)),   x_j a distinct data value, s = ±1.
//! ```
//!
//! Which (j, s) are kept (M48): ReLU and leaky ReLU both signs; |z| only s = +1 (s = −1 repeats the
//! column); the threshold 1[z ≥ 0] only s = +1 (1[x ≤ x_j] = 1 − 1[x ≥ x_{j+1}] repeats a column up
//! to sign and a constant, which the free intercept absorbs). Columns that are constant on the data
//! (the ReLU ramps beyond the data, 1[x ≥ min x]) are dropped: the intercept realizes them at no cost.

use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::network::activation;
use crate::program::Formulation;

/// One dictionary column: the feature σ(s (x − knot)).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Atom {
    /// The knot x_j (a data value).
    pub knot: f64,
    /// The direction s = ±1 of the ramp.
    pub sign: f64,
}

/// The dictionary of an activation on scalar data: its columns and the matrix A (n × P).
#[derive(Clone, Debug)]
pub struct Dictionary {
    /// The network whose features the columns are (ReLU, leaky ReLU, abs or threshold).
    pub kind: Formulation,
    /// The columns, in the order of the matrix.
    pub atoms: Vec<Atom>,
    /// A_{i,k} = σ(s_k (x_i − knot_k)), not centered.
    pub matrix: Mat<f64>,
}

/// The activation of a dictionary network at pre-activation `z`: max(z, c z) with the slope c of
/// [`Formulation::negative_slope`] for the piecewise-linear networks, 1[z ≥ 0] for threshold ones.
pub fn feature(kind: Formulation, z: f64) -> f64 {
    match kind.negative_slope() {
        Some(c) => activation(c, z),
        None => f64::from(z >= 0.0),
    }
}

/// The signs s of the ramps a network of this kind needs (M48).
fn signs(kind: Formulation) -> &'static [f64] {
    match kind {
        Formulation::Relu | Formulation::LeakyRelu { .. } => &[1.0, -1.0],
        _ => &[1.0],
    }
}

/// An error unless the network kind has a 1-D dictionary here (two-layer ReLU, leaky ReLU, |z|,
/// threshold).
pub fn check_kind(kind: Formulation) -> Result<()> {
    kind.validate()?;
    match kind {
        Formulation::Gated => Err(Error::InvalidSetting(
            "1-D dictionaries are implemented for relu, leaky_relu, abs and threshold networks, \
             not gated ReLU (its gates are part of the model, not free biases)"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// The scalar inputs of `x`, which must have exactly one column of finite values.
pub fn scalar_inputs(x: MatRef<'_, f64>) -> Result<Vec<f64>> {
    if x.ncols() != 1 {
        return Err(Error::InvalidData(format!(
            "the 1-D dictionary needs scalar inputs (X of shape n × 1), but X is {} × {}; the \
             dictionary has its own unpenalized biases, so do not append a bias column",
            x.nrows(),
            x.ncols()
        )));
    }
    let v: Vec<f64> = (0..x.nrows()).map(|i| x[(i, 0)]).collect();
    if let Some(i) = v.iter().position(|a| !a.is_finite()) {
        return Err(Error::InvalidData(format!(
            "input row {i} is {} (inputs must be finite)",
            v[i]
        )));
    }
    Ok(v)
}

impl Dictionary {
    /// The dictionary (M47)–(M48) of `kind` on the scalar inputs `x` (n × 1).
    pub fn new(kind: Formulation, x: MatRef<'_, f64>) -> Result<Self> {
        check_kind(kind)?;
        let xs = scalar_inputs(x)?;
        let mut knots = xs.clone();
        knots.sort_by(f64::total_cmp);
        knots.dedup();
        let mut atoms = Vec::new();
        let mut cols: Vec<Vec<f64>> = Vec::new();
        for &knot in &knots {
            for &sign in signs(kind) {
                let col: Vec<f64> = xs
                    .iter()
                    .map(|&v| feature(kind, sign * (v - knot)))
                    .collect();
                if col.iter().all(|&c| c == col[0]) {
                    continue;
                }
                atoms.push(Atom { knot, sign });
                cols.push(col);
            }
        }
        if atoms.is_empty() {
            return Err(Error::InvalidData(
                "every input has the same value: a 1-D dictionary needs at least two distinct \
                 inputs (the best fit is then the constant mean of y)"
                    .into(),
            ));
        }
        let matrix = Mat::from_fn(xs.len(), atoms.len(), |i, k| cols[k][i]);
        Ok(Dictionary {
            kind,
            atoms,
            matrix,
        })
    }

    /// Number of columns P.
    pub fn len(&self) -> usize {
        self.atoms.len()
    }

    /// Whether there are no columns (never, for a dictionary built by [`Dictionary::new`]).
    pub fn is_empty(&self) -> bool {
        self.atoms.is_empty()
    }

    /// The 0/1 activation pattern 1[s(x_i − x_j) ≥ 0] of each column on the training inputs (the
    /// pattern on which the column is the linear piece of the activation).
    pub fn patterns(&self, x: MatRef<'_, f64>) -> Vec<Vec<bool>> {
        self.atoms
            .iter()
            .map(|a| {
                (0..x.nrows())
                    .map(|i| a.sign * (x[(i, 0)] - a.knot) >= 0.0)
                    .collect()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(d: &Dictionary, k: usize) -> Vec<f64> {
        (0..d.matrix.nrows()).map(|i| d.matrix[(i, k)]).collect()
    }

    #[test]
    fn column_counts_and_values() {
        // Distinct values −1, 0, 2 (0 repeated): q = 3.
        let x = Mat::from_fn(4, 1, |i, _| [0.0, -1.0, 2.0, 0.0][i]);
        let relu = Dictionary::new(Formulation::Relu, x.as_ref()).unwrap();
        // 2q ramps minus the two that vanish on the data: (max, +1), (min, −1).
        assert_eq!(relu.len(), 4);
        let k = relu
            .atoms
            .iter()
            .position(|a| a.knot == 0.0 && a.sign == -1.0)
            .unwrap();
        assert_eq!(column(&relu, k), vec![0.0, 1.0, 0.0, 0.0]);
        let leaky = Dictionary::new(Formulation::LeakyRelu { slope: 0.5 }, x.as_ref()).unwrap();
        assert_eq!(leaky.len(), 6);
        let k = leaky
            .atoms
            .iter()
            .position(|a| a.knot == 2.0 && a.sign == 1.0)
            .unwrap();
        assert_eq!(column(&leaky, k), vec![-1.0, -1.5, 0.0, -1.0]);
        let abs = Dictionary::new(Formulation::Abs, x.as_ref()).unwrap();
        assert_eq!(abs.len(), 3);
        let thr = Dictionary::new(Formulation::Threshold, x.as_ref()).unwrap();
        // 1[x ≥ −1] is all ones (dropped); 1[x ≥ 0], 1[x ≥ 2] remain.
        assert_eq!(thr.len(), 2);
        assert_eq!(column(&thr, 0), vec![1.0, 0.0, 1.0, 1.0]);
        assert_eq!(thr.patterns(x.as_ref())[1], vec![false, false, true, false]);
    }

    #[test]
    fn bad_inputs_are_errors() {
        let two = Mat::from_fn(3, 2, |i, k| (i + k) as f64);
        let e = Dictionary::new(Formulation::Relu, two.as_ref()).unwrap_err();
        assert!(e.to_string().contains("3 × 2"), "{e}");
        let flat = Mat::from_fn(3, 1, |_, _| 1.0);
        assert!(Dictionary::new(Formulation::Relu, flat.as_ref()).is_err());
        let nan = Mat::from_fn(2, 1, |i, _| if i == 1 { f64::NAN } else { 0.0 });
        assert!(Dictionary::new(Formulation::Abs, nan.as_ref()).is_err());
        let ok = Mat::from_fn(2, 1, |i, _| i as f64);
        assert!(Dictionary::new(Formulation::Gated, ok.as_ref()).is_err());
        let bad_slope = Formulation::LeakyRelu { slope: 1.5 };
        assert!(Dictionary::new(bad_slope, ok.as_ref()).is_err());
    }
}
