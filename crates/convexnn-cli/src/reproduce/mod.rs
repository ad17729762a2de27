//! `convexnn reproduce <name>`: one-command reproductions of the papers' experiments, offline and
//! seeded, each writing CSV files, plots (SVG and PNG) and `report.md` into `--out DIR`.
//!
//! One module per experiment; each returns the process exit code: 0 when the report's key claim holds,
//! 1 when it does not (the files are written either way).

pub(crate) mod binary_images;
mod cnn_mnist_binary;
mod fig2;
mod pwl_1d;
mod relu_1d;
mod threshold_fig5;
mod threshold_table2;

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use convexnn::data::atomic::write_atomic;
use convexnn::faer::MatRef;
use convexnn::network::sgd::{train_nonconvex_observed, Optimizer, SgdSettings};
use convexnn::network::Network;
use convexnn::program::Loss;
use convexnn::solver::StopFlag;
use convexnn::{Error, Result};

use crate::curves::Curve;
use crate::progress::Progress;

/// The reproductions available.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Experiment {
    /// 1-D regression with all patterns: optimal fit and knots vs gradient descent.
    #[value(name = "relu-1d")]
    Relu1d,
    /// Zeger et al.: 1-D ReLU, leaky ReLU, |z| and threshold networks with free biases as a Lasso
    /// over an explicit dictionary, against Adam / STE runs; fits with knots and objectives.
    #[value(name = "pwl-1d")]
    Pwl1d,
    /// Pilanci & Ergen 2020 Fig. 2 (seed §7): small random data, SGD from several initializations
    /// with m = 5 and a larger m against the certified global optimum.
    #[value(name = "relu-fig2-small")]
    ReluFig2Small,
    /// Seed §8: larger n; the exact program, the approximate program over sampled patterns
    /// (Remark 3.3) and SGD on one plot.
    #[value(name = "relu-fig2-large")]
    ReluFig2Large,
    /// Seed §9: two classes of MNIST and of Fashion-MNIST (CIFAR-10 is not available offline): SGD
    /// from several initializations vs the approximate convex program, objective and test accuracy.
    #[value(name = "relu-binary-images")]
    ReluBinaryImages,
    /// 1-D threshold network (Ergen et al. 2023, Fig. 5): the exhaustive convex optimum vs the four
    /// straight-through estimators from several initializations.
    #[value(name = "threshold-fig5")]
    ThresholdFig5,
    /// Ergen et al. 2023, Table 2: test accuracy and time of Convex-Lasso vs the four STE variants
    /// on the UCI data sets of the table and MNIST 3 vs 5 (CIFAR-10 is not available offline).
    #[value(name = "threshold-table2")]
    ThresholdTable2,
    /// Seed §5: the convex two-layer ReLU CNN with global average pooling vs SGD on the same CNN,
    /// certified with every pattern on small 1-D signals, and with sampled patterns on MNIST 3 vs 5.
    #[value(name = "cnn-mnist-binary")]
    CnnMnistBinary,
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
    /// No progress display.
    #[arg(long, short)]
    pub quiet: bool,
    /// The folder holding the real datasets (mnist/, fashion-mnist/, uci121/); default: ../shared/data
    /// (or two levels up) from the working directory.
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
}

/// Runs `convexnn reproduce`.
pub fn run(a: &ReproduceArgs) -> Result<i32> {
    std::fs::create_dir_all(&a.out).map_err(|e| Error::io(&a.out, e))?;
    match a.name {
        Experiment::Relu1d => relu_1d::run(a),
        Experiment::Pwl1d => pwl_1d::run(a),
        Experiment::ThresholdFig5 => threshold_fig5::run(a),
        Experiment::ThresholdTable2 => threshold_table2::run(a),
        Experiment::ReluFig2Small => fig2::run_small(a),
        Experiment::ReluFig2Large => fig2::run_large(a),
        Experiment::ReluBinaryImages => binary_images::run(a),
        Experiment::CnnMnistBinary => cnn_mnist_binary::run(a),
    }
}

/// A metric of a network measured along a run (e.g. test accuracy).
pub(crate) type Monitor<'a> = &'a dyn Fn(&Network) -> Result<f64>;

/// Non-convex runs of one network, one per seed.
pub(crate) struct Runs<'a> {
    /// Method name shown in plots and tables.
    pub method: String,
    /// Training settings; the seed is replaced by each run's.
    pub settings: SgdSettings,
    /// Seeds of the runs.
    pub seeds: std::ops::Range<u64>,
    /// Evaluated at each logged point (e.g. test accuracy), if given.
    pub monitor: Option<Monitor<'a>>,
}

impl Runs<'_> {
    /// Trains every run on (x, y), with a progress line per run; stops early (keeping what was
    /// logged) when `stop` is set.
    pub fn train(
        &self,
        (x, y): (MatRef<'_, f64>, &[f64]),
        (loss, lambda): (Loss, f64),
        quiet: bool,
        stop: &StopFlag,
    ) -> Result<Vec<Curve>> {
        let mut curves = Vec::new();
        for seed in self.seeds.clone() {
            if stop.is_set() {
                break;
            }
            let settings = SgdSettings {
                seed,
                ..self.settings.clone()
            };
            let progress = Progress::new(&format!("{} seed {seed}", self.method), quiet);
            let mut metric = Vec::new();
            let (_, log) =
                train_nonconvex_observed(x, y, loss, lambda, &settings, stop, &mut |r, net| {
                    progress.message(format!("step {:>7}  objective {:.6e}", r.step, r.objective));
                    if let Some(m) = self.monitor {
                        metric.push(m(net)?);
                    }
                    Ok(())
                })?;
            progress.finish();
            curves.push(Curve {
                method: self.method.clone(),
                seed,
                log,
                metric,
            });
        }
        Ok(curves)
    }
}

/// Short name of an update rule for labels.
pub(crate) fn optimizer_name(o: Optimizer) -> &'static str {
    match o {
        Optimizer::Sgd { momentum } if momentum > 0.0 => "SGD+momentum",
        Optimizer::Sgd { .. } => "SGD",
        Optimizer::Adam => "Adam",
    }
}

/// Writes a text file atomically.
pub(crate) fn write_text(path: PathBuf, text: &str) -> Result<()> {
    write_atomic(&path, |w| w.write_all(text.as_bytes()))
}

/// The shared data folder (`shared/data` beside the project, found from the working directory or
/// up to two levels below it) when it holds `entry`.
pub(crate) fn default_data_root(entry: &str) -> Option<PathBuf> {
    [
        "../shared/data",
        "../../shared/data",
        "../../../shared/data",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.join(entry).exists())
}

/// One run's fit on the grid of a 1-D figure.
pub(crate) struct RunFit {
    /// Its CSV column.
    pub column: String,
    /// Its legend label.
    pub label: String,
    /// Its outputs on the grid.
    pub values: Vec<f64>,
}

/// A 1-D fit figure (`name.svg`, `name.png`) and its numbers (`name.csv`: x, the convex optimum,
/// one column per run): the data as points, up to six runs dashed, the convex optimum and, when
/// given, its knots.
pub(crate) struct Fits1d<'a> {
    pub data: Vec<(f64, f64)>,
    pub grid: &'a [f64],
    pub optimal: &'a [f64],
    pub runs: Vec<RunFit>,
    pub knots: Option<Vec<(f64, f64)>>,
    pub title: String,
}

/// Writes the CSV and the figure of [`Fits1d`] into `out`.
pub(crate) fn write_fits_1d(out: &std::path::Path, name: &str, f: &Fits1d<'_>) -> Result<()> {
    use crate::plot::{write_figure, Plot, Series, COLORS};
    use std::fmt::Write as _;
    let mut csv = String::from("x,optimal");
    for r in &f.runs {
        let _ = write!(csv, ",{}", r.column);
    }
    csv.push('\n');
    for (i, g) in f.grid.iter().enumerate() {
        let _ = write!(csv, "{g},{}", f.optimal[i]);
        for r in &f.runs {
            let _ = write!(csv, ",{}", r.values[i]);
        }
        csv.push('\n');
    }
    write_text(out.join(format!("{name}.csv")), &csv)?;
    let line = |points: &[f64]| f.grid.iter().cloned().zip(points.iter().cloned()).collect();
    let mut series = vec![Series {
        label: "data".into(),
        points: f.data.clone(),
        color: "#000000",
        dashed: false,
        markers: true,
    }];
    for (k, r) in f.runs.iter().enumerate().take(6) {
        series.push(Series {
            label: r.label.clone(),
            points: line(&r.values),
            color: COLORS[k % COLORS.len()],
            dashed: true,
            markers: false,
        });
    }
    series.push(Series {
        label: "convex optimum".into(),
        points: line(f.optimal),
        color: "#d62728",
        dashed: false,
        markers: false,
    });
    if let Some(knots) = &f.knots {
        series.push(Series {
            label: "knots".into(),
            points: knots.clone(),
            color: "#d62728",
            dashed: false,
            markers: true,
        });
    }
    let plot = Plot {
        title: &f.title,
        x_label: "input x",
        y_label: "output f(x)",
        log_y: false,
    };
    write_figure(out, name, &plot, &series).map(|_| ())
}

/// How a solve ended, for a report line: "objective …, certified gap … (relative …), status …, …
/// iterations, … s; … neurons".
pub(crate) fn solve_summary(c: &convexnn::model::Certificate) -> String {
    format!(
        "objective {:.8e}, certified gap {:.2e} (relative {:.2e}), status {}, {} iterations, \
         {:.2} s; {} neurons",
        c.info.objective,
        c.info.gap,
        c.relative_gap,
        c.info.status,
        c.info.iterations,
        c.info.seconds,
        c.active_neurons
    )
}
