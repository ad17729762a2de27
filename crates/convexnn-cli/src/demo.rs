//! `convexnn demo`: the main job on built-in data, no files needed.
//!
//! 1. A gated ReLU network with logistic loss on the Breast Cancer Wisconsin data (compiled into
//!    the binary), standardized, 80/20 seeded split, sampled gates.
//! 2. A ReLU network on generated 1-D data with every activation pattern enumerated, so that the
//!    result is certified globally optimal.

use std::path::Path;

use clap::Args;
use convexnn::data::csv::{parse_csv, CsvOptions, TargetColumn};
use convexnn::faer::Mat;
use convexnn::model::{train, PatternSource, TrainOptions};
use convexnn::program::{Formulation, Loss};
use convexnn::rng::Rng;
use convexnn::Result;

use crate::progress::Progress;
use crate::report::{certificate_text, evaluate};
use crate::train::{model_file, prepare, stop_flag};

const BREAST_CANCER: &str = include_str!("../data/breast_cancer.csv");

/// Options of `convexnn demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Seed of the split and the gates.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
}

/// Runs the demo.
pub fn run(a: &DemoArgs) -> Result<i32> {
    let stop = stop_flag();
    let opts = CsvOptions {
        target: TargetColumn::Name("benign".into()),
        ..CsvOptions::default()
    };
    let data = parse_csv(
        BREAST_CANCER,
        Path::new("breast_cancer.csv (built in)"),
        &opts,
    )?;
    println!(
        "== 1. Breast cancer diagnosis: a two-layer gated ReLU network trained by convex optimization =="
    );
    println!(
        "   {} samples, {} features, labels benign (1) / malignant (0); standardized, bias added, 20% held out",
        data.n(),
        data.d()
    );
    let prep = prepare(&data, None, 0.2, a.seed, true, true)?;
    let opts = TrainOptions {
        formulation: Formulation::Gated,
        loss: Loss::Logistic,
        lambda: 1e-3,
        patterns: PatternSource::Sample { count: 100 },
        seed: a.seed,
        tol: 1e-8,
        max_iter: 50_000,
        ..TrainOptions::default()
    };
    let mut progress = Progress::new("demo 1/2", a.quiet);
    let fit = train(
        prep.x.as_ref(),
        &prep.train_raw.y,
        &opts,
        &mut progress,
        &stop,
    );
    progress.finish();
    let fit = fit?;
    let model = model_file(
        &fit,
        &opts,
        "sample:100",
        prep.preprocessing.clone(),
        &prep.train_raw.y,
    );
    print!("{}", certificate_text(&fit.certificate));
    println!(
        "  train             {}",
        evaluate(&model, &prep.train_raw.x, &prep.train_raw.y)?.line()
    );
    if let Some(t) = &prep.test_raw {
        println!(
            "  test              {}",
            evaluate(&model, &t.x, &t.y)?.line()
        );
    }
    if stop.is_set() {
        return Ok(130);
    }
    println!();
    println!("== 2. 1-D regression with every activation pattern: a certified global optimum ==");
    let n = 40;
    let mut rng = Rng::new(a.seed);
    let xs: Vec<f64> = (0..n)
        .map(|i| -2.0 + 4.0 * i as f64 / (n - 1) as f64)
        .collect();
    let x = Mat::from_fn(n, 2, |i, k| if k == 0 { xs[i] } else { 1.0 });
    let y: Vec<f64> = xs
        .iter()
        .map(|&t| (2.0 * t).sin() + 0.1 * rng.normal())
        .collect();
    println!("   y = sin(2x) + noise at {n} points in [-2, 2]; inputs [x, 1]");
    let opts = TrainOptions {
        formulation: Formulation::Relu,
        loss: Loss::Squared,
        lambda: 1e-3,
        patterns: PatternSource::Exact,
        tol: 1e-8,
        ..TrainOptions::default()
    };
    let mut progress = Progress::new("demo 2/2", a.quiet);
    let fit = train(x.as_ref(), &y, &opts, &mut progress, &stop);
    progress.finish();
    let fit = fit?;
    print!("{}", certificate_text(&fit.certificate));
    println!(
        "  knots of the fitted function (x where a neuron switches): {}",
        knots(&fit.network)
    );
    Ok(if stop.is_set() { 130 } else { 0 })
}

/// The knots of a 1-D network's fit, for reports.
pub(crate) fn knots(net: &convexnn::network::Network) -> String {
    let k = net.knots_1d(1e-3);
    k.iter()
        .map(|v| format!("{v:.3}"))
        .collect::<Vec<_>>()
        .join(", ")
}
