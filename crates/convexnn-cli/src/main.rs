//! The `convexnn` command: train two-layer (gated) ReLU networks to global optimality by convex
//! optimization, predict with them and evaluate them.

mod bench;
mod compare;
mod curves;
mod demo;
mod input;
mod plot;
mod predict;
mod progress;
mod report;
mod reproduce;
mod train;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use convexnn::Error;

/// Train neural networks to their global optimum by solving their exact convex reformulation.
#[derive(Parser, Debug)]
#[command(name = "convexnn", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train a network and print (or save) it with its optimality certificate.
    Train(Box<train::TrainArgs>),
    /// Predict with a saved model.
    Predict(predict::PredictArgs),
    /// Evaluate a saved model on labelled data.
    Evaluate(predict::EvaluateArgs),
    /// Run the main job on built-in data (no files needed).
    Demo(demo::DemoArgs),
    /// Measure the operator against plain GEMM, the memory of a fit and the solvers on generated data.
    Bench(bench::BenchArgs),
    /// Train the convex program and non-convex SGD/Adam runs of the same network; write curves,
    /// plots (SVG and PNG) and a summary.
    Compare(Box<compare::CompareArgs>),
    /// Reproduce an experiment of the papers (offline, seeded): CSV, plots (SVG, PNG) and report.md.
    Reproduce(reproduce::ReproduceArgs),
}

/// Exit codes: 0 success, 1 runtime failure, 2 bad input or settings, 3 out of memory budget,
/// 130 interrupted (what was computed is still written).
fn code_of(e: &Error) -> u8 {
    match e {
        Error::Parse { .. } | Error::InvalidData(_) | Error::InvalidSetting(_) => 2,
        Error::Memory(_) => 3,
        Error::Io { .. } | Error::Backend(_) => 1,
    }
}

/// Keeps freed blocks of up to 32 MiB in the heap instead of returning them to the system. The
/// solvers allocate and free temporaries of a few MiB every iteration (the interior point's
/// rows × 2P matrices); above glibc's default threshold each one is a fresh mapping whose pages
/// fault in again, and whose unmapping interrupts every thread of the pool. Measured on the exact
/// ReLU program (`--solver interior`, 2 cores): n = 1000, d = 20, P = 200 took 1.23 s instead of
/// 1.40–1.49 s (65 000 page faults down to 15 000), and n = 2000 took 3.44 s instead of 3.93 s.
/// The peak memory is unchanged; the process just keeps it until it exits.
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any thread starts.
    unsafe {
        // 32 MiB is the largest threshold glibc accepts.
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Train(a) => train::run(a),
        Command::Predict(a) => predict::run_predict(a),
        Command::Evaluate(a) => predict::run_evaluate(a),
        Command::Demo(a) => demo::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Compare(a) => compare::run(a),
        Command::Reproduce(a) => reproduce::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(code_of(&e))
        }
    }
}
