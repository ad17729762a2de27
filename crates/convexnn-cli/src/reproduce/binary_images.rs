//! `relu-binary-images`: seed 001 §9 (Pilanci & Ergen 2020) — binary image classification with a
//! two-layer ReLU network: SGD from several initializations against the approximate convex program
//! (sampled patterns, Remark 3.3), objective and test accuracy over iterations.
//!
//! The seed asks for two classes of CIFAR-10, which is not available offline; two classes of MNIST
//! and of Fashion-MNIST (from `../shared/data`) take its place. Images are averaged over 2 × 2 blocks
//! (14 × 14 = 196 features, in [0, 1]) with a bias column; labels are ±1 and the loss is squared, as
//! in the paper's experiments.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use convexnn::data::idx::{load_idx, IdxOptions};
use convexnn::faer::Mat;
use convexnn::model::{train, PatternSource, SolverChoice, TrainOptions};
use convexnn::network::sgd::{LogRecord, Optimizer, Schedule, SgdSettings};
use convexnn::network::Network;
use convexnn::program::{Formulation, Loss};
use convexnn::solver::{IterRecord, Observe};
use convexnn::{Error, Result};

use super::{optimizer_name, solve_summary, write_text, ReproduceArgs, Runs};
use crate::compare::network_metric;
use crate::curves::{figure, summary_table, write_csv, Curve, Level, Quantity};
use crate::plot::Plot;
use crate::progress::Progress;
use crate::train::stop_flag;

/// λ of (1/(2n))‖ŷ − y‖² + (λ/2)Σ(‖u_j‖² + α_j²).
const LAMBDA: f64 = 1e-3;
const OPTIMIZER: Optimizer = Optimizer::Sgd { momentum: 0.9 };
const LEARNING_RATE: f64 = 0.01;
const BATCH: usize = 32;

/// One binary task.
struct Task {
    /// Short name used in file names.
    key: &'static str,
    /// Title.
    name: &'static str,
    /// Folder under the shared data folder.
    dir: &'static str,
    /// The two classes (first → −1, second → +1) and their names.
    classes: (u8, u8),
    class_names: &'static str,
}

const TASKS: [Task; 2] = [
    Task {
        key: "mnist",
        name: "MNIST 3 vs 5",
        dir: "mnist",
        classes: (3, 5),
        class_names: "digits 3 (−1) and 5 (+1)",
    },
    Task {
        key: "fashion",
        name: "Fashion-MNIST T-shirt vs shirt",
        dir: "fashion-mnist",
        classes: (0, 6),
        class_names: "T-shirt/top (−1) and shirt (+1), classes 0 and 6",
    },
];

/// Sizes of a run.
struct Sizes {
    n_train: usize,
    n_test: usize,
    patterns: usize,
    runs: usize,
    epochs: usize,
    admm_iterations: usize,
}

/// The shared data folder: `--data`, else `../shared/data` or `../../shared/data` from the working
/// directory (the project's layout beside the shared folder).
pub(super) fn data_root(a: &ReproduceArgs) -> Result<PathBuf> {
    if let Some(d) = &a.data {
        return Ok(d.clone());
    }
    super::default_data_root("mnist").ok_or_else(|| {
        Error::InvalidSetting(
            "relu-binary-images needs the MNIST and Fashion-MNIST folders: pass --data DIR \
                 (the folder holding mnist/ and fashion-mnist/)"
                .into(),
        )
    })
}

/// IDX file `name` in `dir`, plain or gzipped.
fn idx_file(dir: &Path, name: &str) -> PathBuf {
    let plain = dir.join(name);
    if plain.is_file() {
        plain
    } else {
        dir.join(format!("{name}.gz"))
    }
}

/// 28 × 28 images averaged over 2 × 2 blocks, a ones column appended; labels 0/1 → ±1.
pub(crate) fn load(
    dir: &Path,
    prefix: &str,
    classes: (u8, u8),
    limit: usize,
) -> Result<(Mat<f64>, Vec<f64>)> {
    let opts = IdxOptions {
        binary_pair: Some(classes),
        limit: Some(limit),
        ..IdxOptions::default()
    };
    let images = idx_file(dir, &format!("{prefix}-images-idx3-ubyte"));
    let labels = idx_file(dir, &format!("{prefix}-labels-idx1-ubyte"));
    let data = load_idx(&images, &labels, &opts)?;
    if data.d() != 28 * 28 {
        return Err(Error::InvalidData(format!(
            "{}: expected 28 × 28 images, found {} pixels per image",
            images.display(),
            data.d()
        )));
    }
    let x = Mat::from_fn(data.n(), 14 * 14 + 1, |i, k| {
        if k == 14 * 14 {
            return 1.0;
        }
        let (r, c) = (2 * (k / 14), 2 * (k % 14));
        0.25 * (data.x[(i, r * 28 + c)]
            + data.x[(i, r * 28 + c + 1)]
            + data.x[(i, (r + 1) * 28 + c)]
            + data.x[(i, (r + 1) * 28 + c + 1)])
    });
    let y = data.y.iter().map(|&v| 2.0 * v - 1.0).collect();
    Ok((x, y))
}

/// Fraction of points whose prediction has the label's sign (labels ±1).
fn accuracy(net: &Network, x: &Mat<f64>, y: &[f64]) -> Result<f64> {
    network_metric(net, x, y, Loss::Logistic)
}

/// Records the convex solver's certified objective at each report.
struct Trajectory(Vec<LogRecord>, Progress);

impl Observe for Trajectory {
    fn on_iter(&mut self, r: &IterRecord) -> bool {
        self.0.push(LogRecord {
            step: r.iteration,
            seconds: r.seconds,
            objective: r.objective,
        });
        self.1.on_iter(r)
    }
}

/// What one task contributes to the report.
struct Outcome {
    text: String,
    files: Vec<String>,
    reconstruction_ok: bool,
}

fn run_task(a: &ReproduceArgs, root: &Path, task: &Task, s: &Sizes) -> Result<Outcome> {
    let dir = root.join(task.dir);
    let (x, y) = load(&dir, "train", task.classes, s.n_train)?;
    let (xt, yt) = load(&dir, "t10k", task.classes, s.n_test)?;
    let opts = TrainOptions {
        formulation: Formulation::Relu,
        loss: Loss::Squared,
        lambda: LAMBDA,
        patterns: PatternSource::Sample { count: s.patterns },
        seed: a.seed,
        solver: SolverChoice::Admm,
        tol: 1e-6,
        max_iter: s.admm_iterations,
        ..TrainOptions::default()
    };
    let stop = stop_flag();
    let mut traj = Trajectory(
        Vec::new(),
        Progress::new(&format!("{}: convex program", task.name), a.quiet),
    );
    let fit = train(x.as_ref(), &y, &opts, &mut traj, &stop)?;
    traj.1.finish();
    let c = &fit.certificate;
    let convex_acc = accuracy(&fit.network, &xt, &yt)?;
    let width = c.active_neurons.clamp(10, 400);
    let monitor = |net: &Network| accuracy(net, &xt, &yt);
    let steps = s.epochs * x.nrows().div_ceil(BATCH);
    let plan = Runs {
        method: format!(
            "{} lr={LEARNING_RATE} batch {BATCH} m={width}",
            optimizer_name(OPTIMIZER)
        ),
        settings: SgdSettings {
            width,
            optimizer: OPTIMIZER,
            learning_rate: LEARNING_RATE,
            schedule: Schedule::Step {
                every: (s.epochs / 4).max(1),
                factor: 0.5,
            },
            batch_size: Some(BATCH),
            epochs: s.epochs,
            log_every: (steps / 200).max(1),
            ..SgdSettings::default()
        },
        seeds: a.seed + 1..a.seed + 1 + s.runs as u64,
        monitor: Some(&monitor),
    };
    let curves = plan.train((x.as_ref(), &y), (Loss::Squared, LAMBDA), a.quiet, &stop)?;
    let level = Level {
        label: format!("convex: {} sampled patterns (ADMM)", c.n_patterns),
        objective: c.info.objective,
        seconds: c.info.seconds,
        metric: Some(convex_acc),
    };
    let levels = std::slice::from_ref(&level);
    let mut files = Vec::new();
    let csv = format!("curves_{}.csv", task.key);
    write_csv(&a.out.join(&csv), levels, &curves)?;
    files.push(csv);
    let convex_curve = Curve {
        method: "convex program (ADMM iterations)".into(),
        seed: a.seed,
        log: traj.0,
        metric: Vec::new(),
    };
    let mut with_convex: Vec<Curve> = curves.iter().map(clone_curve).collect();
    with_convex.push(convex_curve);
    let title = format!(
        "{}: n = {}, two-layer ReLU, lambda = {LAMBDA}",
        task.name,
        x.nrows()
    );
    let plot = Plot {
        title: &title,
        x_label: "iterations (SGD steps; ADMM iterations)",
        y_label: "training objective (log scale)",
        log_y: true,
    };
    let name = format!("objective_{}", task.key);
    files.extend(figure(
        &a.out,
        &name,
        &plot,
        (Quantity::Objective, false),
        levels,
        &with_convex,
    )?);
    let title = format!("{}: test accuracy of the SGD runs", task.name);
    let plot = Plot {
        title: &title,
        x_label: "SGD steps",
        y_label: "test accuracy (fraction)",
        log_y: false,
    };
    let name = format!("accuracy_{}", task.key);
    files.extend(figure(
        &a.out,
        &name,
        &plot,
        (Quantity::Metric, false),
        levels,
        &curves,
    )?);
    let reconstruction =
        (c.network_objective - c.info.objective).abs() / c.info.objective.abs().max(1e-300);
    let reconstruction_ok = reconstruction <= 1e-6;
    let above = curves
        .iter()
        .filter(|r| r.final_objective() > c.info.objective)
        .count();
    let mut text = String::new();
    let _ = writeln!(text, "## {}\n", task.name);
    let _ = writeln!(
        text,
        "{} training images ({}) and {} test images from `{}`, 2 × 2 average pooling (196 \
         features in [0, 1]) and a bias column, labels ±1, squared loss, λ = {LAMBDA} (β = nλ = {}).\n",
        x.nrows(),
        task.class_names,
        xt.nrows(),
        task.dir,
        x.nrows() as f64 * LAMBDA
    );
    let _ = writeln!(
        text,
        "- Approximate convex program (Remark 3.3): {} Gaussian gates (seed {}), {} distinct \
         patterns, ADMM: {} active; test accuracy {:.4}.",
        s.patterns,
        a.seed,
        c.n_patterns,
        solve_summary(c),
        convex_acc
    );
    let _ = writeln!(
        text,
        "- The network read out of the convex solution has the non-convex objective {:.8e} \
         (relative difference {reconstruction:.1e} from the convex objective).",
        c.network_objective
    );
    let _ = writeln!(
        text,
        "- SGD: {} initializations of a network with m = {width} neurons (the convex solution's \
         count, clamped to [10, 400]), {}, learning rate {LEARNING_RATE} halved every quarter of \
         the run, mini-batches of {BATCH}, {} epochs.\n",
        s.runs,
        optimizer_name(OPTIMIZER),
        s.epochs
    );
    text.push_str(&summary_table(levels, &curves, Some("test accuracy")));
    let _ = writeln!(
        text,
        "\nSGD runs ending above the convex program's objective: {above} of {}. The sampled \
         program's optimum is an upper bound on the global optimum over all patterns, so an SGD run \
         may end below it without contradicting the theory.\n",
        curves.len()
    );
    Ok(Outcome {
        text,
        files,
        reconstruction_ok,
    })
}

fn clone_curve(c: &Curve) -> Curve {
    Curve {
        method: c.method.clone(),
        seed: c.seed,
        log: c.log.clone(),
        metric: c.metric.clone(),
    }
}

/// Runs the experiment on both tasks.
pub fn run(a: &ReproduceArgs) -> Result<i32> {
    let s = if a.quick {
        Sizes {
            n_train: 300,
            n_test: 300,
            patterns: 20,
            runs: 2,
            epochs: 5,
            admm_iterations: 400,
        }
    } else {
        Sizes {
            n_train: 2000,
            n_test: 2000,
            patterns: 100,
            runs: 4,
            epochs: 30,
            admm_iterations: 3000,
        }
    };
    let root = data_root(a)?;
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# relu-binary-images: SGD vs the approximate convex program on binary image tasks (seed 001 §9, Pilanci & Ergen 2020)\n"
    );
    let _ = writeln!(
        report,
        "The seed's experiment uses two classes of CIFAR-10, which is not available offline; MNIST \
         and Fashion-MNIST take its place.\n"
    );
    let mut files = vec!["report.md".to_string()];
    let mut ok = true;
    for task in &TASKS {
        let o = run_task(a, &root, task, &s)?;
        report.push_str(&o.text);
        files.extend(o.files);
        ok &= o.reconstruction_ok;
    }
    let _ = writeln!(
        report,
        "Claim checked: the network read out of each convex solution attains the convex objective \
         (within 1e-6 relative): {}.\n",
        if ok { "holds" } else { "VIOLATED" }
    );
    let _ = writeln!(report, "Files: {}.", files.join(", "));
    write_text(a.out.join("report.md"), &report)?;
    println!("{report}");
    Ok(if ok { 0 } else { 1 })
}
