//! Data sets: a feature matrix X (n × d) and a target vector y (or n × c targets), their loaders,
//! scaling and splits.
//!
//! Loaders keep the data exactly as the file holds it: no standardization, no bias column and no
//! rescaling unless asked for ([`Dataset::standardize`], [`Dataset::add_bias`]).

pub mod atomic;
pub mod csv;
pub mod idx;
pub mod npy;
pub mod uci;

use std::io::Read;
use std::path::Path;

use faer::Mat;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::rng::Rng;

/// A feature matrix and its targets.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Features, n × d.
    pub x: Mat<f64>,
    /// Targets, length n; with several target columns ([`Dataset::targets`]), the first of them.
    pub y: Vec<f64>,
    /// Column names (length d).
    pub feature_names: Vec<String>,
    /// Several target columns (vector regression), else `None` (one target, `y`).
    pub targets: Option<Targets>,
}

/// The targets of a data set with c ≥ 2 target columns.
#[derive(Clone, Debug)]
pub struct Targets {
    /// The values, n × c.
    pub values: Mat<f64>,
    /// The columns' names (length c).
    pub names: Vec<String>,
}

/// Per-column affine map x → (x − mean) / scale learned on training data, saved with a model so that
/// new data is transformed the same way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Column means.
    pub mean: Vec<f64>,
    /// Column standard deviations (1 for constant columns).
    pub scale: Vec<f64>,
}

impl Dataset {
    /// Validates and wraps X and y: both nonempty, same number of rows, every value finite.
    pub fn new(x: Mat<f64>, y: Vec<f64>, feature_names: Option<Vec<String>>) -> Result<Self> {
        if x.nrows() == 0 || x.ncols() == 0 {
            return Err(Error::InvalidData(format!(
                "empty data: X is {} × {}",
                x.nrows(),
                x.ncols()
            )));
        }
        if x.nrows() != y.len() {
            return Err(Error::InvalidData(format!(
                "X has {} rows but y has {} values",
                x.nrows(),
                y.len()
            )));
        }
        check_finite_matrix(&x, "X")?;
        if let Some(j) = y.iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidData(format!(
                "y[{j}] = {} is not finite",
                y[j]
            )));
        }
        let feature_names =
            feature_names.unwrap_or_else(|| (0..x.ncols()).map(|k| format!("x{k}")).collect());
        if feature_names.len() != x.ncols() {
            return Err(Error::InvalidData(format!(
                "{} feature names for {} columns",
                feature_names.len(),
                x.ncols()
            )));
        }
        Ok(Dataset {
            x,
            y,
            feature_names,
            targets: None,
        })
    }

    /// Validates and wraps X and targets Y (n × c): with one column this is [`Dataset::new`]; with
    /// c ≥ 2 columns [`Dataset::targets`] holds them (named `names`, by default `y0, y1, …`) and `y`
    /// their first column.
    pub fn with_targets(
        x: Mat<f64>,
        targets: Mat<f64>,
        feature_names: Option<Vec<String>>,
        names: Option<Vec<String>>,
    ) -> Result<Self> {
        let c = targets.ncols();
        if c == 0 {
            return Err(Error::InvalidData("the targets have no columns".into()));
        }
        if x.nrows() != targets.nrows() {
            return Err(Error::InvalidData(format!(
                "X has {} rows but the targets have {}",
                x.nrows(),
                targets.nrows()
            )));
        }
        check_finite_matrix(&targets, "Y")?;
        let mut data = Dataset::new(x, targets.col_as_slice(0).to_vec(), feature_names)?;
        if c == 1 {
            return Ok(data);
        }
        let names = names.unwrap_or_else(|| (0..c).map(|k| format!("y{k}")).collect());
        if names.len() != c {
            return Err(Error::InvalidData(format!(
                "{} target names for {c} target columns",
                names.len()
            )));
        }
        data.targets = Some(Targets {
            values: targets,
            names,
        });
        Ok(data)
    }

    /// Number of samples n.
    pub fn n(&self) -> usize {
        self.x.nrows()
    }

    /// Number of features d.
    pub fn d(&self) -> usize {
        self.x.ncols()
    }

    /// Number of target columns c (1 without [`Dataset::targets`]).
    pub fn outputs(&self) -> usize {
        self.targets.as_ref().map_or(1, |t| t.values.ncols())
    }

    /// The targets as an n × c matrix (n × 1 for one target).
    pub fn target_matrix(&self) -> Mat<f64> {
        match &self.targets {
            Some(t) => t.values.clone(),
            None => Mat::from_fn(self.y.len(), 1, |i, _| self.y[i]),
        }
    }

    /// The rows listed in `idx`, in that order.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        Dataset {
            x: Mat::from_fn(idx.len(), self.d(), |i, k| self.x[(idx[i], k)]),
            y: idx.iter().map(|&i| self.y[i]).collect(),
            feature_names: self.feature_names.clone(),
            targets: self.targets.as_ref().map(|t| Targets {
                values: Mat::from_fn(idx.len(), t.values.ncols(), |i, k| t.values[(idx[i], k)]),
                names: t.names.clone(),
            }),
        }
    }

    /// A seeded random split: returns (train, test) with `round(test_fraction · n)` test rows.
    pub fn split(&self, test_fraction: f64, seed: u64) -> Result<(Dataset, Dataset)> {
        if !(0.0..1.0).contains(&test_fraction) {
            return Err(Error::InvalidSetting(format!(
                "test fraction {test_fraction} must be in [0, 1)"
            )));
        }
        let n = self.n();
        let n_test = (test_fraction * n as f64).round() as usize;
        if n_test >= n {
            return Err(Error::InvalidSetting(format!(
                "test fraction {test_fraction} leaves no training rows out of {n}"
            )));
        }
        let mut idx: Vec<usize> = (0..n).collect();
        Rng::new(seed).shuffle(&mut idx);
        let (test, train) = idx.split_at(n_test);
        Ok((self.subset(train), self.subset(test)))
    }

    /// Appends a column of ones (the bias; its weight is penalized like the others, docs/programs.md §1).
    pub fn add_bias(&mut self) {
        let (n, d) = (self.n(), self.d());
        let x = &self.x;
        self.x = Mat::from_fn(n, d + 1, |i, k| if k < d { x[(i, k)] } else { 1.0 });
        self.feature_names.push("bias".into());
    }

    /// Learns a [`Standardizer`] from this data and applies it.
    pub fn standardize(&mut self) -> Standardizer {
        let s = Standardizer::fit(&self.x);
        s.apply(&mut self.x);
        s
    }
}

impl Standardizer {
    /// Column means and (population) standard deviations of `x`; constant columns get scale 1.
    pub fn fit(x: &Mat<f64>) -> Self {
        let n = x.nrows() as f64;
        let mut mean = Vec::with_capacity(x.ncols());
        let mut scale = Vec::with_capacity(x.ncols());
        for k in 0..x.ncols() {
            let col = x.col_as_slice(k);
            let m = col.iter().sum::<f64>() / n;
            let v = col.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / n;
            mean.push(m);
            scale.push(if v > 0.0 { v.sqrt() } else { 1.0 });
        }
        Standardizer { mean, scale }
    }

    /// Applies the map in place; `x` must have as many columns as the data it was fitted on.
    pub fn apply(&self, x: &mut Mat<f64>) {
        for k in 0..x.ncols().min(self.mean.len()) {
            let (m, s) = (self.mean[k], self.scale[k]);
            for v in x.col_as_slice_mut(k) {
                *v = (*v - m) / s;
            }
        }
    }
}

/// Errors on the first NaN or infinite entry of `x`, naming its row and column.
pub fn check_finite_matrix(x: &Mat<f64>, name: &str) -> Result<()> {
    for k in 0..x.ncols() {
        if let Some(i) = x.col_as_slice(k).iter().position(|v| !v.is_finite()) {
            return Err(Error::InvalidData(format!(
                "{name}[{i}, {k}] = {} is not finite",
                x[(i, k)]
            )));
        }
    }
    Ok(())
}

/// Reads a whole file, decompressing it when it is gzipped (a `.gz` name or the gzip magic bytes).
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let gz_name = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    if !gz_name && !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| Error::parse(path, "gzip stream", format!("cannot decompress: {e}")))?;
    Ok(out)
}

/// Reads a whole (possibly gzipped) text file, naming the first byte that is not UTF-8.
pub fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_maybe_gzip(path)?).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        Error::parse(
            path,
            format!("byte {at}"),
            "the file is not valid UTF-8 text",
        )
    })
}

/// Maps binary labels in {0, 1} or {−1, +1} to ±1 for the logistic loss (docs/programs.md §4d).
pub fn to_pm1_labels(y: &[f64]) -> Result<Vec<f64>> {
    let zero_one = y.iter().all(|&v| v == 0.0 || v == 1.0);
    let pm = y.iter().all(|&v| v == -1.0 || v == 1.0);
    if zero_one {
        Ok(y.iter().map(|&v| 2.0 * v - 1.0).collect())
    } else if pm {
        Ok(y.to_vec())
    } else {
        let bad = y
            .iter()
            .find(|&&v| v != 0.0 && v != 1.0 && v != -1.0)
            .copied()
            .unwrap_or(f64::NAN);
        Err(Error::InvalidData(format!(
            "the logistic and hinge losses need binary labels in {{0, 1}} or {{-1, +1}}; found {bad}"
        )))
    }
}

/// Helpers shared by the loaders' tests.
#[cfg(test)]
pub(crate) mod testutil {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static COUNTER: AtomicUsize = AtomicUsize::new(0);

    /// A fresh, empty directory under the system temporary directory.
    pub fn temp_dir(tag: &str) -> PathBuf {
        let k = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("convexnn-{tag}-{}-{k}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes `bytes` to `name` inside a fresh temporary directory and returns its path.
    pub fn temp_file(name: &str, bytes: &[u8]) -> PathBuf {
        let path = temp_dir("file").join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Gzip-compresses `bytes`.
    pub fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> Dataset {
        let x = Mat::from_fn(10, 2, |i, k| (i * (k + 1)) as f64);
        Dataset::new(x, (0..10).map(|i| i as f64).collect(), None).unwrap()
    }

    #[test]
    fn rejects_nan_mismatch_and_empty() {
        let x = Mat::from_fn(3, 2, |i, k| if i == 1 && k == 1 { f64::NAN } else { 1.0 });
        let e = Dataset::new(x, vec![0.0; 3], None).unwrap_err().to_string();
        assert!(e.contains("X[1, 1]"), "{e}");
        let e = Dataset::new(Mat::zeros(3, 2), vec![0.0; 4], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("3 rows") && e.contains("4 values"), "{e}");
        assert!(Dataset::new(Mat::zeros(0, 2), vec![], None).is_err());
        let e = Dataset::new(Mat::zeros(2, 1), vec![1.0, f64::INFINITY], None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("y[1]"), "{e}");
    }

    #[test]
    fn split_is_seeded_and_partitions() {
        let d = toy();
        let (a, b) = d.split(0.3, 5).unwrap();
        let (a2, _) = d.split(0.3, 5).unwrap();
        let (a3, _) = d.split(0.3, 6).unwrap();
        assert_eq!((a.n(), b.n()), (7, 3));
        assert_eq!(a.y, a2.y);
        assert_ne!(a.y, a3.y);
        let mut all: Vec<f64> = a.y.iter().chain(b.y.iter()).copied().collect();
        all.sort_by(f64::total_cmp);
        assert_eq!(all, d.y);
    }

    #[test]
    fn standardize_and_bias() {
        let mut d = toy();
        let s = d.standardize();
        for k in 0..2 {
            let c = d.x.col_as_slice(k);
            let m = c.iter().sum::<f64>() / 10.0;
            let v = c.iter().map(|a| a * a).sum::<f64>() / 10.0;
            assert!(m.abs() < 1e-12 && (v - 1.0).abs() < 1e-12);
        }
        assert_eq!(s.mean.len(), 2);
        d.add_bias();
        assert_eq!(d.d(), 3);
        assert!(d.x.col_as_slice(2).iter().all(|&v| v == 1.0));
    }

    #[test]
    fn several_targets_follow_subsets_and_splits() {
        let x = Mat::from_fn(10, 2, |i, k| (i * (k + 1)) as f64);
        let t = Mat::from_fn(10, 2, |i, k| (10 * k + i) as f64);
        let d = Dataset::with_targets(x.clone(), t, None, None).unwrap();
        assert_eq!(d.outputs(), 2);
        assert_eq!(d.y, (0..10).map(|i| i as f64).collect::<Vec<_>>());
        assert_eq!(d.targets.as_ref().unwrap().names, vec!["y0", "y1"]);
        let (a, b) = d.split(0.3, 5).unwrap();
        for part in [&a, &b] {
            let tv = &part.targets.as_ref().unwrap().values;
            assert_eq!(tv.nrows(), part.n());
            for i in 0..part.n() {
                assert_eq!(tv[(i, 0)], part.y[i]);
                assert_eq!(tv[(i, 1)], part.y[i] + 10.0);
                assert_eq!(part.x[(i, 0)], part.y[i]);
            }
        }
        let m = a.target_matrix();
        assert_eq!((m.nrows(), m.ncols()), (7, 2));
        // One column is a plain data set.
        let one = Dataset::with_targets(x.clone(), Mat::zeros(10, 1), None, None).unwrap();
        assert!(one.targets.is_none() && one.outputs() == 1);
        let e = Dataset::with_targets(x.clone(), Mat::zeros(9, 2), None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("10 rows") && e.contains("9"), "{e}");
        let bad = Mat::from_fn(10, 2, |i, k| if (i, k) == (3, 1) { f64::NAN } else { 0.0 });
        let e = Dataset::with_targets(x.clone(), bad, None, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("Y[3, 1]"), "{e}");
        let e = Dataset::with_targets(x, Mat::zeros(10, 2), None, Some(vec!["a".into()]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("1 target names"), "{e}");
    }

    #[test]
    fn labels_map_to_pm1() {
        assert_eq!(to_pm1_labels(&[0.0, 1.0]).unwrap(), vec![-1.0, 1.0]);
        assert_eq!(to_pm1_labels(&[-1.0, 1.0]).unwrap(), vec![-1.0, 1.0]);
        assert!(to_pm1_labels(&[0.0, 2.0]).is_err());
    }
}
