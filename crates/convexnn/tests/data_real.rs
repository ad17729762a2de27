//! The loaders on the real benchmark files kept beside the repository (`../shared/data`); each
//! test is skipped, with a note, when that folder is absent.

use std::path::PathBuf;

use convexnn::data::csv::{load_csv, CsvOptions, TargetColumn};
use convexnn::data::idx::{load_idx, IdxOptions};
use convexnn::data::uci::load_uci_dir;

/// The shared data folder, or `None` (after printing a note) when it is absent.
fn data_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data"));
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipping: shared data folder {} not found", dir.display());
        None
    }
}

#[test]
fn uci_pima() {
    let Some(dir) = data_dir() else { return };
    let u = load_uci_dir(&dir.join("uci121/pima")).unwrap();
    assert_eq!(u.name, "pima");
    assert_eq!((u.dataset.n(), u.dataset.d(), u.n_classes), (768, 8, 2));
    let ones = u.dataset.y.iter().filter(|&&v| v == 1.0).count();
    let zeros = u.dataset.y.iter().filter(|&&v| v == 0.0).count();
    assert_eq!((zeros, ones), (500, 268));
    assert_eq!((u.validation.0.len(), u.validation.1.len()), (384, 384));
    assert_eq!(u.folds.len(), 4);
    for (train, test) in &u.folds {
        assert_eq!(train.len() + test.len(), 768);
    }
}

#[test]
fn mnist_test_set_zero_vs_one() {
    let Some(dir) = data_dir() else { return };
    let mnist = dir.join("mnist");
    let opts = IdxOptions {
        binary_pair: Some((0, 1)),
        ..IdxOptions::default()
    };
    let d = load_idx(
        &mnist.join("t10k-images-idx3-ubyte"),
        &mnist.join("t10k-labels-idx1-ubyte"),
        &opts,
    )
    .unwrap();
    assert_eq!((d.n(), d.d()), (980 + 1135, 784));
    assert_eq!(d.y.iter().filter(|&&v| v == 0.0).count(), 980);
    assert_eq!(d.y.iter().filter(|&&v| v == 1.0).count(), 1135);
    let (lo, hi) = (0..d.d())
        .flat_map(|k| d.x.col_as_slice(k).to_vec())
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    assert!(lo >= 0.0 && hi <= 1.0 && hi > 0.99, "{lo} {hi}");
}

#[test]
fn fashion_mnist_gzipped_with_limit() {
    let Some(dir) = data_dir() else { return };
    let f = dir.join("fashion-mnist");
    let opts = IdxOptions {
        limit: Some(100),
        ..IdxOptions::default()
    };
    let d = load_idx(
        &f.join("t10k-images-idx3-ubyte.gz"),
        &f.join("t10k-labels-idx1-ubyte.gz"),
        &opts,
    )
    .unwrap();
    assert_eq!((d.n(), d.d()), (100, 784));
}

#[test]
fn breast_cancer_first_line_gives_a_clear_error() {
    let Some(dir) = data_dir() else { return };
    let e = load_csv(
        &dir.join("sklearn/breast_cancer.csv"),
        &CsvOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("breast_cancer.csv"), "{e}");
    assert!(e.contains("line 2 has 31 fields, expected 4"), "{e}");
}

#[test]
fn yacht_gzipped_without_header() {
    let Some(dir) = data_dir() else { return };
    let opts = CsvOptions {
        target: TargetColumn::Last,
        has_header: false,
        delimiter: None,
    };
    let d = load_csv(&dir.join("uci-regression/yacht/data.csv.gz"), &opts).unwrap();
    assert_eq!((d.n(), d.d()), (308, 6));
    assert_eq!(d.feature_names[0], "x0");
}

#[test]
fn diabetes_space_separated() {
    let Some(dir) = data_dir() else { return };
    let opts = CsvOptions {
        has_header: false,
        ..CsvOptions::default()
    };
    let d = load_csv(&dir.join("sklearn/diabetes_data_raw.csv.gz"), &opts).unwrap();
    assert_eq!((d.n(), d.d()), (442, 9));
}
