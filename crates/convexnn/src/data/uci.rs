//! The preprocessed UCI classification collection of Fernández-Delgado et al. (2014), one folder
//! per data set:
//!
//! - `<name>_R.dat`: tab-separated; a header line (a leading tab, the feature names, the class
//!   column's name), then one line per row: a row id (1, 2, … in order), the features and an integer
//!   class label 0…C−1.
//! - `conxuntos.dat` (optional): two lines of 0-based row indices, the training and validation
//!   halves.
//! - `conxuntos_kfold.dat` (optional): pairs of lines of 0-based row indices, (train, test) for
//!   each fold.

use std::path::Path;

use faer::Mat;

use super::csv::parse_cell;
use super::{read_text, Dataset};
use crate::error::{Error, Result};

/// A `(train, test)` pair of 0-based row indices.
pub type IndexSplit = (Vec<usize>, Vec<usize>);

/// One data set of the collection with its predefined splits.
#[derive(Clone, Debug)]
pub struct UciData {
    /// The data set's name (its folder's name).
    pub name: String,
    /// Features and class labels (0…C−1 as floats).
    pub dataset: Dataset,
    /// The (train, validation) split of `conxuntos.dat`; both empty when the file is absent.
    pub validation: IndexSplit,
    /// The (train, test) pairs of `conxuntos_kfold.dat`; empty when the file is absent.
    pub folds: Vec<IndexSplit>,
    /// The number of classes C (the largest label plus one).
    pub n_classes: usize,
}

/// Loads the data set in folder `dir`: `<dir name>_R.dat` and, when present, its split files.
pub fn load_uci_dir(dir: &Path) -> Result<UciData> {
    let name = folder_name(dir)?;
    let dataset = load_uci_dat(&dir.join(format!("{name}_R.dat")))?;
    let n = dataset.n();
    let largest = dataset.y.iter().fold(0.0f64, |m, &v| m.max(v));
    let n_classes = (largest as usize).saturating_add(1);
    let validation = match read_index_lines(&dir.join("conxuntos.dat"), n, Some(2))? {
        Some(mut lines) => {
            let validation = lines.pop().unwrap_or_default();
            (lines.pop().unwrap_or_default(), validation)
        }
        None => (Vec::new(), Vec::new()),
    };
    let folds = read_index_lines(&dir.join("conxuntos_kfold.dat"), n, None)?
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|p| (p[0].clone(), p[1].clone()))
        .collect();
    Ok(UciData {
        name,
        dataset,
        validation,
        folds,
        n_classes,
    })
}

/// The last component of `dir`, resolving `.` and `..` through the file system.
fn folder_name(dir: &Path) -> Result<String> {
    let name = match dir.file_name() {
        Some(name) => name.to_os_string(),
        None => {
            let full = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
            full.file_name().unwrap_or_default().to_os_string()
        }
    };
    name.into_string()
        .ok()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            Error::InvalidSetting(format!(
                "{}: cannot tell the data set's name from this folder",
                dir.display()
            ))
        })
}

/// Loads a `<name>_R.dat` file: features and the class label of every row.
pub fn load_uci_dat(path: &Path) -> Result<Dataset> {
    let text = read_text(path)?;
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((_, header)) = lines.next() else {
        return Err(Error::parse(
            path,
            "end of file",
            "no header and no data rows",
        ));
    };
    let mut names = split_tabs(header);
    if names.first().is_some_and(|s| s.is_empty()) {
        names.remove(0);
    }
    names.pop();
    if names.is_empty() {
        return Err(Error::parse(path, "line 1", "the header names no feature"));
    }
    let mut values = Vec::new();
    let mut y = Vec::new();
    for (line, text) in lines {
        let (features, label) = parse_row(path, line, text, &names, y.len())?;
        values.extend(features);
        y.push(label);
    }
    if y.is_empty() {
        return Err(Error::parse(path, "end of file", "no data rows"));
    }
    let d = names.len();
    let x = Mat::from_fn(y.len(), d, |i, k| values[i * d + k]);
    Dataset::new(x, y, Some(names))
}

/// Splits a line at tabs into trimmed fields.
fn split_tabs(line: &str) -> Vec<String> {
    line.split('\t').map(|s| s.trim().to_string()).collect()
}

/// Parses a data line (row id, features, class label); `row` is its 0-based position.
fn parse_row(
    path: &Path,
    line: usize,
    text: &str,
    names: &[String],
    row: usize,
) -> Result<(Vec<f64>, f64)> {
    let fields = split_tabs(text);
    let d = names.len();
    if fields.len() != d + 2 {
        return Err(Error::parse(
            path,
            format!("line {line}"),
            format!(
                "line {line} has {} fields, expected {} (row id, {d} features, class label)",
                fields.len(),
                d + 2
            ),
        ));
    }
    let id = parse_cell(path, line, 0, Some("row id"), &fields[0])?;
    if id != (row + 1) as f64 {
        return Err(Error::parse(
            path,
            format!("line {line}, column 1 (\"row id\")"),
            format!("row id {} is out of order, expected {}", fields[0], row + 1),
        ));
    }
    let features = (0..d)
        .map(|k| parse_cell(path, line, k + 1, Some(&names[k]), &fields[k + 1]))
        .collect::<Result<Vec<f64>>>()?;
    let label = parse_cell(path, line, d + 1, Some("class"), &fields[d + 1])?;
    if label < 0.0 || label.fract() != 0.0 {
        return Err(Error::parse(
            path,
            format!("line {line}, column {} (\"class\")", d + 2),
            format!(
                "class label \"{}\" is not a non-negative integer",
                fields[d + 1]
            ),
        ));
    }
    Ok((features, label))
}

/// Reads a file of lines of 0-based row indices below `n`; `None` when the file does not exist.
/// With `want_lines`, the file must have exactly that many non-blank lines, else an even number.
fn read_index_lines(
    path: &Path,
    n: usize,
    want_lines: Option<usize>,
) -> Result<Option<Vec<Vec<usize>>>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if !line.trim().is_empty() {
            lines.push(parse_index_line(path, i + 1, line, n)?);
        }
    }
    let count_ok = match want_lines {
        Some(k) => lines.len() == k,
        None => lines.len() % 2 == 0,
    };
    if !count_ok {
        let expected = want_lines.map_or("an even number of".to_string(), |k| k.to_string());
        return Err(Error::parse(
            path,
            "end of file",
            format!(
                "found {} lines of indices, expected {expected}",
                lines.len()
            ),
        ));
    }
    Ok(Some(lines))
}

/// Parses one line of whitespace-separated row indices, each below `n`.
fn parse_index_line(path: &Path, line: usize, text: &str, n: usize) -> Result<Vec<usize>> {
    text.split_whitespace()
        .enumerate()
        .map(|(j, tok)| {
            let at = || format!("line {line}, entry {}", j + 1);
            let v: usize = tok.parse().map_err(|_| {
                Error::parse(path, at(), format!("cannot parse \"{tok}\" as a row index"))
            })?;
            if v >= n {
                return Err(Error::parse(
                    path,
                    at(),
                    format!("row index {v} is out of range: the data has {n} rows"),
                ));
            }
            Ok(v)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::testutil::temp_dir;
    use std::path::PathBuf;

    const DAT: &str = "\tf1\tf2\tclase\n1\t0.5\t-1\t0\n2\t1.5\t2\t1\n3\t-0.5\t0\t2\n4\t0\t0\t1\n";

    fn folder(dat: &str, split: Option<&str>, kfold: Option<&str>) -> PathBuf {
        let dir = temp_dir("uci").join("toy");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("toy_R.dat"), dat).unwrap();
        if let Some(s) = split {
            std::fs::write(dir.join("conxuntos.dat"), s).unwrap();
        }
        if let Some(s) = kfold {
            std::fs::write(dir.join("conxuntos_kfold.dat"), s).unwrap();
        }
        dir
    }

    #[test]
    fn loads_folder_with_splits() {
        let kfold = "0 1 2\n3\n1 2 3\n0\n";
        let dir = folder(DAT, Some("0 2\n1 3 \n"), Some(kfold));
        let u = load_uci_dir(&dir).unwrap();
        assert_eq!(u.name, "toy");
        assert_eq!((u.dataset.n(), u.dataset.d(), u.n_classes), (4, 2, 3));
        assert_eq!(u.dataset.feature_names, vec!["f1", "f2"]);
        assert_eq!(u.dataset.y, vec![0.0, 1.0, 2.0, 1.0]);
        assert_eq!(u.dataset.x[(2, 0)], -0.5);
        assert_eq!(u.validation, (vec![0, 2], vec![1, 3]));
        assert_eq!(u.folds.len(), 2);
        assert_eq!(u.folds[1], (vec![1, 2, 3], vec![0]));
    }

    #[test]
    fn split_files_are_optional() {
        let u = load_uci_dir(&folder(DAT, None, None)).unwrap();
        assert!(u.validation.0.is_empty() && u.validation.1.is_empty());
        assert!(u.folds.is_empty());
    }

    #[test]
    fn ragged_line() {
        let dat = "\tf1\tf2\tclase\n1\t0.5\t-1\t0\n2\t1.5\t1\n";
        let e = load_uci_dir(&folder(dat, None, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("toy_R.dat") && e.contains("line 3 has 3 fields, expected 4"),
            "{e}"
        );
    }

    #[test]
    fn bad_numbers_and_labels() {
        let dat = "\tf1\tf2\tclase\n1\t0.5\t-1\t0\n2\t1.5\tx\t1\n";
        let e = load_uci_dir(&folder(dat, None, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(r#"line 3, column 3 ("f2"): cannot parse "x""#),
            "{e}"
        );
        let dat = "\tf1\tclase\n1\t0.5\t0.5\n";
        let e = load_uci_dir(&folder(dat, None, None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("class label \"0.5\""), "{e}");
        let dat = "\tf1\tclase\n2\t0.5\t0\n";
        let e = load_uci_dir(&folder(dat, None, None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("row id 2 is out of order"), "{e}");
        let e = load_uci_dir(&folder("\tf1\tclase\n", None, None)).unwrap_err();
        assert!(e.to_string().contains("no data rows"));
    }

    #[test]
    fn fold_index_out_of_range() {
        let dir = folder(DAT, Some("0 1\n2 3\n"), Some("0 1 2\n3\n0 1\n2 9\n"));
        let e = load_uci_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("conxuntos_kfold.dat: line 4, entry 2"), "{e}");
        assert!(e.contains("row index 9 is out of range"), "{e}");
        let dir = folder(DAT, Some("0 1\n2 a\n"), None);
        let e = load_uci_dir(&dir).unwrap_err().to_string();
        assert!(
            e.contains("conxuntos.dat: line 2, entry 2") && e.contains("\"a\""),
            "{e}"
        );
        let dir = folder(DAT, Some("0 1 2 3\n"), None);
        let e = load_uci_dir(&dir).unwrap_err().to_string();
        assert!(e.contains("found 1 lines of indices, expected 2"), "{e}");
    }

    #[test]
    fn missing_data_file() {
        let dir = temp_dir("uci-empty");
        let e = load_uci_dir(&dir).unwrap_err();
        assert!(matches!(e, Error::Io { .. }), "{e}");
        assert!(e.to_string().contains("_R.dat"));
    }
}
