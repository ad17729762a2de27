//! `convexnn predict` and `convexnn evaluate`: use a saved model on new data.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use convexnn::data::atomic::write_atomic;
use convexnn::data::npy::{write_npy, NpyData};
use convexnn::faer::Mat;
use convexnn::model::file::ModelFile;
use convexnn::Result;

use crate::input::{load_features, DataArgs};
use crate::report::{certificate_text, evaluate_data};

/// Options of `convexnn predict`.
#[derive(Args, Debug)]
pub struct PredictArgs {
    /// The model file written by `convexnn train --out`.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Inputs: a 2-D .npy file or a CSV with a header (every column an input, in training order).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Where to write predictions: .npy, or CSV (one value per line with a header). Default: stdout.
    /// A vector-regression model writes n × c values: an n × c .npy, or CSV rows of c values under
    /// a header of the target names.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Options of `convexnn evaluate`.
#[derive(Args, Debug)]
pub struct EvaluateArgs {
    /// The model file written by `convexnn train --out`.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `convexnn predict`.
pub fn run_predict(a: &PredictArgs) -> Result<i32> {
    let model = ModelFile::load(&a.model)?;
    let x = load_features(&a.input)?;
    if model.is_vector_regression() {
        return write_outputs(&model, &x, a.out.as_deref());
    }
    let pred = model.predict(&x)?;
    match &a.out {
        Some(p) if p.extension().is_some_and(|e| e == "npy") => write_npy(
            p,
            &NpyData::F64 {
                shape: vec![pred.len()],
                data: &pred,
            },
        )?,
        Some(p) => write_atomic(p, |w| {
            writeln!(w, "prediction")?;
            for v in &pred {
                writeln!(w, "{v}")?;
            }
            Ok(())
        })?,
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            for v in &pred {
                let _ = writeln!(lock, "{v}");
            }
        }
    }
    Ok(0)
}

/// Writes the n × c predictions of a vector-regression model: .npy (n × c), CSV (a header of the
/// target names, then one row of c values per input row), or the CSV rows on stdout.
fn write_outputs(model: &ModelFile, x: &Mat<f64>, out: Option<&Path>) -> Result<i32> {
    let pred = model.predict_outputs(x)?;
    let (n, c) = (pred.nrows(), pred.ncols());
    let row = |i: usize| {
        (0..c)
            .map(|k| pred[(i, k)].to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    match out {
        Some(p) if p.extension().is_some_and(|e| e == "npy") => {
            let data: Vec<f64> = (0..n)
                .flat_map(|i| (0..c).map(move |k| (i, k)))
                .map(|(i, k)| pred[(i, k)])
                .collect();
            write_npy(
                p,
                &NpyData::F64 {
                    shape: vec![n, c],
                    data: &data,
                },
            )?
        }
        Some(p) => write_atomic(p, |w| {
            writeln!(w, "{}", model.output_names().join(","))?;
            for i in 0..n {
                writeln!(w, "{}", row(i))?;
            }
            Ok(())
        })?,
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            for i in 0..n {
                let _ = writeln!(lock, "{}", row(i));
            }
        }
    }
    Ok(0)
}

/// Runs `convexnn evaluate`.
pub fn run_evaluate(a: &EvaluateArgs) -> Result<i32> {
    let model = ModelFile::load(&a.model)?;
    let loaded = a.data.load()?;
    let m = evaluate_data(&model, &loaded.data)?;
    if a.json {
        println!("{}", m.to_json());
    } else {
        println!(
            "{} network ({} loss, lambda {}) on {}",
            model.settings.formulation.as_str(),
            model.settings.loss.as_str(),
            model.settings.lambda,
            loaded.description
        );
        println!("  {}", m.line());
        println!("certificate of the training run:");
        print!("{}", certificate_text(&model.certificate));
    }
    Ok(0)
}
