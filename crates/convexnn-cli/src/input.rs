//! Reading the data a command works on, from any supported format.

use std::path::PathBuf;

use clap::Args;
use convexnn::data::csv::{load_csv, CsvOptions, TargetColumn};
use convexnn::data::idx::{load_idx, IdxOptions};
use convexnn::data::npy::{load_npy_xy, read_npy_matrix};
use convexnn::data::uci::load_uci_dir;
use convexnn::data::Dataset;
use convexnn::{Error, Result};

/// Where the data comes from (exactly one source).
#[derive(Args, Clone, Debug, Default)]
pub struct DataArgs {
    /// Features as a 2-D .npy file (n × d; f32 or f64, C or Fortran order).
    #[arg(long, value_name = "X.npy", requires = "y", help_heading = "Data")]
    pub x: Option<PathBuf>,
    /// Targets as a 1-D .npy file (n), or a 2-D one (n × c, c >= 2) for vector regression
    /// (squared loss, gated model).
    #[arg(long, value_name = "y.npy", help_heading = "Data")]
    pub y: Option<PathBuf>,
    /// A CSV file with a header row (optionally gzipped).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["x", "uci", "mnist"], help_heading = "Data")]
    pub csv: Option<PathBuf>,
    /// Target column of the CSV: a name, or a 0-based index (default: the last column); several
    /// comma-separated columns (e.g. y1,y2) give n × c targets for vector regression.
    #[arg(long, value_name = "NAME|INDEX", help_heading = "Data")]
    pub target: Option<String>,
    /// The CSV has no header row.
    #[arg(long, help_heading = "Data")]
    pub no_header: bool,
    /// A folder of the UCI "121 data sets" format (<name>_R.dat and fold files).
    #[arg(long, value_name = "DIR", conflicts_with_all = ["x", "mnist"], help_heading = "Data")]
    pub uci: Option<PathBuf>,
    /// With --uci: use fold K (0-3) of conxuntos_kfold.dat as the train/test split.
    #[arg(long, value_name = "K", requires = "uci", help_heading = "Data")]
    pub fold: Option<usize>,
    /// A folder with the MNIST IDX files (train-images-idx3-ubyte, ... optionally .gz).
    #[arg(long, value_name = "DIR", conflicts_with = "x", help_heading = "Data")]
    pub mnist: Option<PathBuf>,
    /// With --mnist: two digits for a binary task, e.g. 0,1 (labels become 0 and 1).
    #[arg(long, value_name = "A,B", requires = "mnist", help_heading = "Data")]
    pub classes: Option<String>,
    /// With --mnist: use the t10k (test) files instead of the training files.
    #[arg(long, requires = "mnist", help_heading = "Data")]
    pub mnist_test: bool,
    /// Keep only the first N rows.
    #[arg(long, value_name = "N", help_heading = "Data")]
    pub limit: Option<usize>,
}

/// A loaded data set, with a predefined train/test split where the format has one.
pub struct Loaded {
    /// The rows.
    pub data: Dataset,
    /// (train, test) row indices from the file's fold definition.
    pub split: Option<(Vec<usize>, Vec<usize>)>,
    /// A short description for reports.
    pub description: String,
}

fn parse_column(s: &str) -> TargetColumn {
    match s.parse::<usize>() {
        Ok(i) => TargetColumn::Index(i),
        Err(_) => TargetColumn::Name(s.to_string()),
    }
}

fn parse_target(t: &Option<String>) -> Result<TargetColumn> {
    match t {
        None => Ok(TargetColumn::Last),
        Some(s) if s.contains(',') => {
            let parts: Vec<&str> = s.split(',').map(str::trim).collect();
            if parts.iter().any(|p| p.is_empty()) {
                return Err(Error::InvalidSetting(format!(
                    "--target expects a column or comma-separated columns like y1,y2; got {s:?}"
                )));
            }
            Ok(TargetColumn::Columns(
                parts.into_iter().map(parse_column).collect(),
            ))
        }
        Some(s) => Ok(parse_column(s)),
    }
}

fn parse_classes(s: &str) -> Result<(u8, u8)> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let digit = |p: &str| {
        p.parse::<u8>().ok().filter(|d| *d <= 9).ok_or_else(|| {
            Error::InvalidSetting(format!("--classes expects two digits like 3,8; got {s:?}"))
        })
    };
    if parts.len() != 2 {
        return Err(Error::InvalidSetting(format!(
            "--classes expects two digits like 3,8; got {s:?}"
        )));
    }
    Ok((digit(parts[0])?, digit(parts[1])?))
}

fn find(dir: &std::path::Path, stem: &str) -> PathBuf {
    let plain = dir.join(stem);
    if plain.exists() {
        plain
    } else {
        dir.join(format!("{stem}.gz"))
    }
}

impl Loaded {
    /// Errors when the data has several target columns: `command` takes one.
    pub fn require_single_target(&self, command: &str) -> Result<()> {
        match &self.data.targets {
            Some(t) => Err(Error::InvalidSetting(format!(
                "{command} takes one target column; {} has {} ({}): use convexnn train for vector \
                 regression",
                self.description,
                t.names.len(),
                t.names.join(", ")
            ))),
            None => Ok(()),
        }
    }
}

impl DataArgs {
    /// Loads the data set.
    pub fn load(&self) -> Result<Loaded> {
        let mut loaded = if let (Some(x), Some(y)) = (&self.x, &self.y) {
            Loaded {
                data: load_npy_xy(x, y)?,
                split: None,
                description: format!("{} / {}", x.display(), y.display()),
            }
        } else if let Some(path) = &self.csv {
            let opts = CsvOptions {
                target: parse_target(&self.target)?,
                has_header: !self.no_header,
                ..CsvOptions::default()
            };
            Loaded {
                data: load_csv(path, &opts)?,
                split: None,
                description: path.display().to_string(),
            }
        } else if let Some(dir) = &self.uci {
            let u = load_uci_dir(dir)?;
            let split = match self.fold {
                None => None,
                Some(k) => {
                    let f = u.folds.get(k).ok_or_else(|| {
                        Error::InvalidSetting(format!(
                            "--fold {k}: {} has {} folds",
                            dir.display(),
                            u.folds.len()
                        ))
                    })?;
                    Some(f.clone())
                }
            };
            Loaded {
                data: u.dataset,
                split,
                description: format!("UCI {}", u.name),
            }
        } else if let Some(dir) = &self.mnist {
            let prefix = if self.mnist_test { "t10k" } else { "train" };
            let opts = IdxOptions {
                binary_pair: self.classes.as_deref().map(parse_classes).transpose()?,
                ..IdxOptions::default()
            };
            let images = find(dir, &format!("{prefix}-images-idx3-ubyte"));
            let labels = find(dir, &format!("{prefix}-labels-idx1-ubyte"));
            Loaded {
                data: load_idx(&images, &labels, &opts)?,
                split: None,
                description: format!(
                    "MNIST {prefix} {}",
                    self.classes.as_deref().unwrap_or("all digits")
                ),
            }
        } else {
            return Err(Error::InvalidSetting(
                "no data given: use --x X.npy --y y.npy, --csv FILE, --uci DIR or --mnist DIR"
                    .into(),
            ));
        };
        if let Some(limit) = self.limit {
            let n = loaded.data.n().min(limit);
            let idx: Vec<usize> = (0..n).collect();
            loaded.data = loaded.data.subset(&idx);
            loaded.split = None;
        }
        Ok(loaded)
    }
}

/// Reads a features-only matrix for prediction: .npy, or CSV (header row, every column a feature).
pub fn load_features(path: &std::path::Path) -> Result<convexnn::faer::Mat<f64>> {
    let is_npy = path.extension().is_some_and(|e| e == "npy");
    if is_npy {
        read_npy_matrix(path)
    } else {
        Ok(convexnn::data::csv::load_csv_matrix(path)?.0)
    }
}
