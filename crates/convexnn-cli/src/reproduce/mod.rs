//! `convexnn reproduce <name>`: one-command reproductions of the papers' experiments, offline and
//! seeded, each writing CSV files, plots (SVG and PNG) and `report.md` into `--out DIR`.
//!
//! One module per experiment; each returns the process exit code: 0 when the report's key claim holds,
//! 1 when it does not (the files are written either way).

mod relu_1d;
mod threshold_fig5;

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use convexnn::data::atomic::write_atomic;
use convexnn::{Error, Result};

/// The reproductions available.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Experiment {
    /// 1-D regression with all patterns: optimal fit and knots vs gradient descent.
    #[value(name = "relu-1d")]
    Relu1d,
    /// 1-D threshold network (Ergen et al. 2023, Fig. 5): the exhaustive convex optimum vs the four
    /// straight-through estimators from several initializations.
    #[value(name = "threshold-fig5")]
    ThresholdFig5,
}

/// Options of `convexnn reproduce`.
#[derive(Args, Debug)]
pub struct ReproduceArgs {
    /// Which experiment.
    #[arg(value_enum)]
    pub name: Experiment,
    /// Small sizes (for CI).
    #[arg(long)]
    pub quick: bool,
    /// Output folder.
    #[arg(long, default_value = "reproduce-out")]
    pub out: PathBuf,
    /// Seed of the data and of the runs.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Runs `convexnn reproduce`.
pub fn run(a: &ReproduceArgs) -> Result<i32> {
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    match a.name {
        Experiment::Relu1d => relu_1d::run(a),
        Experiment::ThresholdFig5 => threshold_fig5::run(a),
    }
}

/// Writes a text file atomically.
pub(crate) fn write_text(path: PathBuf, text: &str) -> Result<()> {
    write_atomic(&path, |w| w.write_all(text.as_bytes()))
}
