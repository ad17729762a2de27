//! `convexnn train`: load data, preprocess, build patterns, solve, save.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use convexnn::data::npy::{read_npy_matrix, write_npz, NpyData};
use convexnn::data::Dataset;
use convexnn::faer::Mat;
use convexnn::features::patches::Convolution;
use convexnn::model::file::{ModelFile, Preprocessing};
use convexnn::model::outputs::{train_classes, train_outputs};
use convexnn::model::{train, Fit, PatternSource, Precision, SolverChoice, TrainOptions};
use convexnn::network::construct::Construction;
use convexnn::program::outputs::OutputPenalty;
use convexnn::program::{Formulation, Loss};
use convexnn::solver::nuclear::{NuclearInit, NuclearSettings};
use convexnn::solver::path::{lambda_grid, regularization_path};
use convexnn::solver::{Status, StopFlag};
use convexnn::{Error, Result};
use serde_json::json;

use crate::input::DataArgs;
use crate::progress::Progress;
use crate::report::{certificate_json, certificate_text, evaluate_data, Metrics};

/// Program choice on the command line.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelArg {
    /// Gated ReLU network (unconstrained group lasso).
    Gated,
    /// ReLU network (cone-constrained group lasso; exact with all patterns).
    Relu,
    /// Leaky ReLU network max(z, a z), slope a from --slope (the ReLU program with masks
    /// aI + (1 - a)D_i; exact with all patterns).
    LeakyRelu,
    /// Absolute-value network |z| (the ReLU program with masks 2D_i - I; exact with all patterns).
    Abs,
    /// Threshold (step) activation network (Lasso over the arrangement columns).
    Threshold,
    /// Linear network (identity activation): lambda*||w||_2 fully connected; with --conv, the
    /// linear CNN with one output weight per patch position (nuclear norm of the filter-by-position
    /// matrix, M35), or with --circular and a full-size filter the circular CNN (Fourier-domain l1,
    /// M36). No activation patterns; squared or logistic loss.
    Linear,
}

/// Loss choice.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LossArg {
    /// Squared loss (regression).
    Squared,
    /// Logistic loss (binary labels 0/1 or -1/+1).
    Logistic,
    /// Hinge loss (binary labels 0/1 or -1/+1; threshold networks only).
    Hinge,
    /// Softmax cross-entropy over c >= 2 classes (any label values; one output per class;
    /// gated networks, solver fista or clarabel).
    Softmax,
}

/// Block norm of a vector-output program (multi-column targets, or multi-class).
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OutputsArg {
    /// One group per (output, pattern), scnn's penalty: an upper bound, attained by its network.
    Separate,
    /// Frobenius norm of each pattern's d × c block: a relaxation (lower bound); the network read
    /// out may have a larger objective (both are reported).
    Group,
    /// Nuclear norm of each block: the exact program of the gated network with shared neurons.
    Nuclear,
}

impl LossArg {
    /// The library's loss.
    pub fn loss(self) -> Loss {
        match self {
            LossArg::Squared => Loss::Squared,
            LossArg::Logistic => Loss::Logistic,
            LossArg::Hinge => Loss::Hinge,
            LossArg::Softmax => Loss::Softmax,
        }
    }
}

/// How a threshold network is built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ConstructArg {
    /// Convex-Lasso: the Lasso over sampled or enumerated arrangement columns.
    Lasso,
    /// Convex-PI: closed form on a random lift (rank-certified complete), pseudo-inverse neurons.
    Pi,
    /// Convex-SVM: closed form on a random lift (rank-certified complete), max-margin neurons.
    Svm,
}

/// Solver choice.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SolverArg {
    /// For gated: block coordinate descent where its Gram form is small (f64), else Anderson for
    /// the squared loss and FISTA for the logistic loss; coordinate descent for the squared-loss
    /// threshold Lasso (up to 5000
    /// columns); for ReLU with the squared loss the structured interior point where its
    /// P d system has at most 4000 rows or its n × n Woodbury form is as cheap, the
    /// interior-point backend on small problems, else ADMM where its
    /// n × n factorization fits, else the augmented Lagrangian; for the hinge loss, the interior
    /// point with column generation up to n = 2000, else pdhg.
    Auto,
    /// Restarted FISTA (gated).
    Fista,
    /// Guarded Anderson acceleration of the proximal gradient method (gated; the programs FISTA
    /// solves).
    Anderson,
    /// Augmented Lagrangian (ReLU).
    Al,
    /// ADMM with a factored linear step (ReLU; memory grows as n²).
    Admm,
    /// Interior-point backend (exact, small problems).
    Clarabel,
    /// Structured interior point for the squared-loss ReLU program (one factorization of a P d
    /// system per iteration, or of an n × n matrix by the Woodbury identity when n < P d / 2;
    /// needs sampled gates; memory grows as (P d)^2, or n^2).
    Interior,
    /// Restarted primal-dual hybrid gradient (threshold networks with the hinge loss).
    Pdhg,
    /// Coordinate descent over the popcount Gram matrix (threshold networks, squared loss).
    Cd,
    /// Gated ReLU as multiple kernel learning: iterative reweighting of the kernel weights with
    /// Newton steps, one n × n Cholesky factorization per step (gated or threshold, squared loss,
    /// n <= 5000; memory grows as n²). Reports the learned kernel weights.
    Mkl,
    /// Nuclear-norm heuristic with sequential convex relaxation (--model relu, squared loss, tiny
    /// data): looks for a network of width --width that fits the data exactly; no certificate.
    Nuclear,
    /// Block coordinate descent on the Gram form of the squared-loss gated program (memory grows
    /// as (P d)^2; auto picks it for gated convolutional programs of moderate P d).
    Bcd,
}

/// First relaxation of --solver nuclear.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum NuclearInitArg {
    /// Zero parameters.
    Zero,
    /// Random parameters (seeded by --seed).
    Random,
}

impl SolverArg {
    /// The library's solver choice.
    pub fn choice(self) -> SolverChoice {
        match self {
            SolverArg::Auto => SolverChoice::Auto,
            SolverArg::Fista => SolverChoice::Fista,
            SolverArg::Anderson => SolverChoice::Anderson,
            SolverArg::Bcd => SolverChoice::Bcd,
            SolverArg::Al => SolverChoice::Al,
            SolverArg::Admm => SolverChoice::Admm,
            SolverArg::Clarabel => SolverChoice::Clarabel,
            SolverArg::Interior => SolverChoice::Interior,
            SolverArg::Pdhg => SolverChoice::Pdhg,
            SolverArg::Cd => SolverChoice::Cd,
            SolverArg::Mkl => SolverChoice::Mkl,
            SolverArg::Nuclear => SolverChoice::Nuclear,
        }
    }
}

/// Precision choice.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PrecisionArg {
    /// Single precision.
    F32,
    /// Double precision.
    F64,
}

/// Options of `convexnn train`.
#[derive(Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Which network to train.
    #[arg(long, value_enum, default_value = "gated", help_heading = "Program")]
    pub model: ModelArg,
    /// Slope a in [0, 1) of the leaky ReLU max(z, a z) (--model leaky-relu only).
    #[arg(long, value_name = "A", help_heading = "Program")]
    pub slope: Option<f64>,
    /// Loss.
    #[arg(long, value_enum, default_value = "squared", help_heading = "Program")]
    pub loss: LossArg,
    /// Deep threshold networks: widths of the hidden layers below the last one, e.g. 2 or 3,2 (every
    /// last-layer pattern is enumerated exactly: tiny data only).
    #[arg(long, value_name = "M1,M2,...", help_heading = "Program")]
    pub hidden_widths: Option<String>,
    /// Threshold networks: lasso (default) solves the Lasso over the pattern columns; pi and svm
    /// solve the complete-arrangement program in closed form on a seeded random lift
    /// Z = [1[X H >= 0], 1] of width --lift-width (a three-layer network with a frozen random first
    /// layer; squared or hinge loss).
    #[arg(long, value_enum, default_value = "lasso", help_heading = "Program")]
    pub construct: ConstructArg,
    /// Width M of the random first layer of --construct pi|svm (at least n).
    #[arg(
        long,
        default_value_t = 1000,
        value_name = "M",
        help_heading = "Program"
    )]
    pub lift_width: usize,
    /// Scalar inputs (one column, no --bias): solve the explicit 1-D dictionary Lasso of the relu,
    /// leaky-relu, abs or threshold network, whose neurons have unpenalized biases with knots at the
    /// data points and whose output has an unpenalized intercept (squared loss; solver fista or
    /// clarabel).
    #[arg(long, conflicts_with_all = ["gates", "patterns", "sample", "exact", "hidden_widths", "bias"], help_heading = "Program")]
    pub dictionary: bool,
    /// With --dictionary and --model relu: the depth L of the network. 2 is the two-layer
    /// network; 3 and 4 the deep narrow ReLU network, a sum of chains of width-one ReLU layers
    /// with unpenalized biases and weight decay (lambda/L) * sum |weights|^L, whose Lasso is over
    /// the chain features (docs/programs.md (M58)).
    #[arg(
        long,
        value_name = "L",
        default_value_t = 2,
        requires = "dictionary",
        help_heading = "Program"
    )]
    pub depth: usize,
    /// A convolutional network with global average pooling (docs/programs.md §3d): the rows of X
    /// are HxW-pixel images (one channel, row by row), each filter sees FHxFW patches taken every
    /// STRIDE pixels, plus a bias; patterns are sampled over the patches (--sample, or --gates
    /// with one row per patch entry and the bias). Options after the stride: :circular (patches
    /// wrap around the edges), :separable (each neuron sees one patch position; gated or relu),
    /// :nobias (filters without a bias). With --model linear the network has one output weight per
    /// patch position instead of the pooling, and 1xN:1xN:1:circular:nobias (a full-size circular
    /// filter) is the circular CNN (docs/programs.md §3f).
    #[arg(long, value_name = "HxW:FHxFW:STRIDE[:OPTION]", conflicts_with_all = ["patterns", "exact", "hidden_widths", "bias", "dictionary"], help_heading = "Program")]
    pub conv: Option<String>,
    /// Multi-class classification with the squared loss on one-hot targets (one output per class,
    /// c >= 2 label values; gated networks). The softmax loss is --loss softmax.
    #[arg(long, help_heading = "Program")]
    pub one_hot: bool,
    /// Block norm of a vector-output program (multi-column targets, --loss softmax or --one-hot):
    /// see docs/programs.md §3e.
    #[arg(long, value_enum, default_value = "group", help_heading = "Program")]
    pub outputs: OutputsArg,
    /// Regularization λ in (1/(2n))‖ŷ − y‖² + λ Σ group norms.
    #[arg(long, default_value_t = 1e-3, help_heading = "Program")]
    pub lambda: f64,
    /// Gates as a d × P .npy file: pattern i is 1[X g_i >= 0].
    #[arg(long, value_name = "G.npy", conflicts_with_all = ["patterns", "sample", "exact"], help_heading = "Patterns")]
    pub gates: Option<PathBuf>,
    /// Patterns as an n × P .npy file of 0/1 (uint8, bool or float), used as given.
    #[arg(long, value_name = "D.npy", conflicts_with_all = ["sample", "exact"], help_heading = "Patterns")]
    pub patterns: Option<PathBuf>,
    /// Sample P Gaussian gates (seeded by --seed).
    #[arg(
        long,
        value_name = "P",
        conflicts_with = "exact",
        help_heading = "Patterns"
    )]
    pub sample: Option<usize>,
    /// Enumerate every pattern (1-D or 2-D data with --bias); fails where not feasible.
    #[arg(long, help_heading = "Patterns")]
    pub exact: bool,
    /// Seed for gates and the train/test split.
    #[arg(long, default_value_t = 0, help_heading = "Patterns")]
    pub seed: u64,
    /// Standardize features (statistics of the training rows; saved with the model).
    #[arg(long, help_heading = "Preprocessing")]
    pub standardize: bool,
    /// Append a ones column (a bias in every neuron).
    #[arg(long, help_heading = "Preprocessing")]
    pub bias: bool,
    /// Hold out this fraction of rows (seeded) for testing.
    #[arg(long, default_value_t = 0.0, help_heading = "Preprocessing")]
    pub test_fraction: f64,
    /// Solver.
    #[arg(long, value_enum, default_value = "auto", help_heading = "Solver")]
    pub solver: SolverArg,
    /// Relative duality gap (and cone violation) at which to stop.
    #[arg(long, default_value_t = 1e-6, help_heading = "Solver")]
    pub tol: f64,
    /// Iteration cap (ten times this for the primal-dual solver of the hinge loss).
    #[arg(long, default_value_t = 10_000, help_heading = "Solver")]
    pub max_iter: usize,
    /// Wall-clock limit in seconds.
    #[arg(long, value_name = "SECONDS", help_heading = "Solver")]
    pub time_limit: Option<f64>,
    /// Working precision of the iterative solvers (certificates are computed in f64).
    #[arg(long, value_enum, default_value = "f64", help_heading = "Solver")]
    pub precision: PrecisionArg,
    /// Rows per block of the operator (memory: block × P numbers).
    #[arg(long, default_value_t = 4096, help_heading = "Solver")]
    pub block_rows: usize,
    /// Threads for the matrix products (0 = all cores).
    #[arg(long, default_value_t = 0, help_heading = "Solver")]
    pub threads: usize,
    /// Interior point: rows per column of X in each block's starting working set of cone rows
    /// (0 = every row); the other rows join when a step would cross them. The optimum is the same.
    #[arg(long, default_value_t = convexnn::solver::interior::WORKING_ROWS, value_name = "ROWS", help_heading = "Solver")]
    pub working_rows: usize,
    /// Refuse fits estimated to need more than this many GiB (default: 80% of available memory).
    #[arg(long, value_name = "GIB", help_heading = "Solver")]
    pub max_memory: Option<f64>,
    /// Solve a regularization path of K values of λ from λ_max down to λ_max·--path-ratio.
    #[arg(long, value_name = "K", help_heading = "Solver")]
    pub path: Option<usize>,
    /// Smallest λ of the path relative to λ_max.
    #[arg(long, default_value_t = 1e-3, help_heading = "Solver")]
    pub path_ratio: f64,
    /// --solver nuclear: hidden width m of the network it looks for.
    #[arg(
        long,
        default_value_t = 2,
        value_name = "M",
        help_heading = "Nuclear-norm heuristic"
    )]
    pub width: usize,
    /// --solver nuclear: weight gamma of the complementarity term.
    #[arg(long, default_value_t = 1.0, help_heading = "Nuclear-norm heuristic")]
    pub gamma: f64,
    /// --solver nuclear: most relaxations (semidefinite solves).
    #[arg(
        long,
        default_value_t = 50,
        value_name = "K",
        help_heading = "Nuclear-norm heuristic"
    )]
    pub relaxations: usize,
    /// --solver nuclear: parameters of the first relaxation.
    #[arg(
        long,
        value_enum,
        default_value = "zero",
        help_heading = "Nuclear-norm heuristic"
    )]
    pub nuclear_init: NuclearInitArg,
    /// --solver nuclear: largest order 3 m n + 1 of a semidefinite block accepted.
    #[arg(
        long,
        default_value_t = 64,
        value_name = "ORDER",
        help_heading = "Nuclear-norm heuristic"
    )]
    pub nuclear_max_order: usize,
    /// Write the model (JSON) here.
    #[arg(long, value_name = "FILE", help_heading = "Output")]
    pub out: Option<PathBuf>,
    /// Write the convex solution as .npz: D (n × P uint8) and W (gated) or V, W (ReLU, leaky ReLU,
    /// abs), d × P each, or z (P, threshold); with --dictionary, z, knots and signs (P each); for
    /// c > 1 outputs (multi-column targets, --loss softmax, --one-hot) W is c × d × P; for --model linear, Z (h × K, the
    /// filter-by-position matrix, or d × 1 without --conv).
    #[arg(long, value_name = "W.npz", help_heading = "Output")]
    pub weights_out: Option<PathBuf>,
    /// Print one JSON object on stdout instead of the report.
    #[arg(long, help_heading = "Output")]
    pub json: bool,
    /// Write the solver's progress records as CSV (iteration, outer, seconds, objective, gap,
    /// violation), one per check of the stopping test.
    #[arg(long, value_name = "FILE.csv", help_heading = "Output")]
    pub trace: Option<PathBuf>,
    /// No progress display.
    #[arg(long, short, help_heading = "Output")]
    pub quiet: bool,
}

/// Train, test and preprocessing of one run.
pub struct Prepared {
    /// Raw training rows (before preprocessing).
    pub train_raw: Dataset,
    /// Raw test rows, if any.
    pub test_raw: Option<Dataset>,
    /// Inputs the solver sees.
    pub x: Mat<f64>,
    /// Preprocessing saved with the model.
    pub preprocessing: Preprocessing,
}

/// Splits and preprocesses the data.
pub fn prepare(
    data: &Dataset,
    split: Option<(Vec<usize>, Vec<usize>)>,
    test_fraction: f64,
    seed: u64,
    standardize: bool,
    bias: bool,
) -> Result<Prepared> {
    let (train_raw, test_raw) = match split {
        Some((tr, te)) => (data.subset(&tr), Some(data.subset(&te))),
        None if test_fraction > 0.0 => {
            let (a, b) = data.split(test_fraction, seed)?;
            (a, Some(b))
        }
        None => (data.clone(), None),
    };
    let mut prepared = train_raw.clone();
    let standardizer = standardize.then(|| prepared.standardize());
    if bias {
        prepared.add_bias();
    }
    Ok(Prepared {
        x: prepared.x,
        preprocessing: Preprocessing {
            standardizer,
            bias,
            feature_names: train_raw.feature_names.clone(),
            class_labels: None,
            target_names: train_raw.targets.as_ref().map(|t| t.names.clone()),
        },
        train_raw,
        test_raw,
    })
}

fn pattern_source(a: &TrainArgs, n: usize, d: usize) -> Result<(PatternSource, String)> {
    if let Some(path) = &a.gates {
        let g = read_npy_matrix(path)?;
        if g.nrows() != d {
            return Err(Error::InvalidData(format!(
                "{}: gates must be d × P with d = {d} (the columns of X after preprocessing), got {} × {}",
                path.display(),
                g.nrows(),
                g.ncols()
            )));
        }
        return Ok((PatternSource::Gates(g), format!("gates:{}", path.display())));
    }
    if let Some(path) = &a.patterns {
        let m = read_npy_matrix(path)?;
        if m.nrows() != n {
            return Err(Error::InvalidData(format!(
                "{}: patterns must be n × P with n = {n} rows, got {} × {}",
                path.display(),
                m.nrows(),
                m.ncols()
            )));
        }
        let mut cols = Vec::with_capacity(m.ncols());
        for i in 0..m.ncols() {
            let mut c = Vec::with_capacity(n);
            for j in 0..n {
                let v = m[(j, i)];
                if v != 0.0 && v != 1.0 {
                    return Err(Error::InvalidData(format!(
                        "{}: entry [{j}, {i}] = {v} is not 0 or 1",
                        path.display()
                    )));
                }
                c.push(v == 1.0);
            }
            cols.push(c);
        }
        return Ok((
            PatternSource::Masks(cols),
            format!("masks:{}", path.display()),
        ));
    }
    if a.exact {
        return Ok((PatternSource::Exact, "exact".into()));
    }
    if a.dictionary {
        let name = match a.depth {
            2 => "dictionary:1d".into(),
            l => format!("dictionary:1d:depth{l}"),
        };
        return Ok((PatternSource::Auto { count: 0 }, name));
    }
    if a.construct != ConstructArg::Lasso {
        return Ok((
            PatternSource::Auto { count: 100 },
            format!("lift:{}", a.lift_width),
        ));
    }
    if let Some(p) = a.sample {
        return Ok((PatternSource::Sample { count: p }, format!("sample:{p}")));
    }
    Ok((PatternSource::Auto { count: 100 }, "auto:100".into()))
}

/// Refuses the options that do not apply to vector regression (targets with c ≥ 2 columns from
/// `source`): the squared-loss, fully connected gated program of docs/programs.md §3e, or the
/// separate program (M53b) of a ReLU, leaky ReLU or abs network.
fn check_vector_targets(a: &TrainArgs, names: &[String], source: &str) -> Result<()> {
    let what = format!(
        "{source} has {} target columns ({}), which train a vector-regression network",
        names.len(),
        names.join(", ")
    );
    let refuse =
        |option: String, why: &str| Err(Error::InvalidSetting(format!("{option}: {what}; {why}")));
    if a.one_hot {
        return refuse(
            "--one-hot".into(),
            "--one-hot makes one output per class of a single label column: drop it",
        );
    }
    if !matches!(a.loss, LossArg::Squared) {
        return refuse(
            format!("--loss {}", arg_name(&a.loss)),
            "vector regression takes the squared loss only",
        );
    }
    let cone = matches!(
        a.model,
        ModelArg::Relu | ModelArg::LeakyRelu | ModelArg::Abs
    );
    if !(matches!(a.model, ModelArg::Gated) || cone && matches!(a.outputs, OutputsArg::Separate)) {
        return refuse(
            format!("--model {}", arg_name(&a.model)),
            "vector outputs are implemented for --model gated, and for relu, leaky-relu and abs \
             with --outputs separate (one program per output over shared patterns)",
        );
    }
    let unsupported = [
        (a.dictionary, "--dictionary"),
        (a.conv.is_some(), "--conv"),
        (a.hidden_widths.is_some(), "--hidden-widths"),
        (a.path.is_some(), "--path"),
        (a.construct != ConstructArg::Lasso, "--construct"),
    ];
    if let Some((_, option)) = unsupported.iter().find(|(set, _)| *set) {
        return refuse(
            option.to_string(),
            "vector outputs are implemented for fully connected two-layer gated networks fitted \
             at one lambda",
        );
    }
    if !cone
        && !matches!(
            a.solver,
            SolverArg::Auto | SolverArg::Fista | SolverArg::Clarabel
        )
    {
        return refuse(
            format!("--solver {}", arg_name(&a.solver)),
            "vector outputs are solved by auto (fista), fista or clarabel",
        );
    }
    Ok(())
}

/// A value of an option as typed on the command line.
fn arg_name<T: ValueEnum + std::fmt::Debug>(value: &T) -> String {
    value
        .to_possible_value()
        .map_or_else(|| format!("{value:?}"), |v| v.get_name().to_string())
}

/// The library options from the command line.
pub fn options(a: &TrainArgs, source: PatternSource) -> Result<TrainOptions> {
    let deep_widths = parse_widths(&a.hidden_widths)?;
    let construction = match a.construct {
        ConstructArg::Lasso => Construction::Lasso,
        ConstructArg::Pi => Construction::Pi,
        ConstructArg::Svm => Construction::Svm,
    };
    let pattern_flags = a.gates.is_some() || a.patterns.is_some() || a.sample.is_some() || a.exact;
    if !construction.is_lasso() && (pattern_flags || a.path.is_some()) {
        return Err(Error::InvalidSetting(format!(
            "--construct {} builds its own arrangement (the random lift) and a single closed-form \
             fit: drop --gates, --patterns, --sample, --exact and --path",
            construction.as_str()
        )));
    }
    if matches!(a.solver, SolverArg::Nuclear) && (pattern_flags || a.path.is_some()) {
        return Err(Error::InvalidSetting(
            "--solver nuclear trains one network directly, without patterns or a path: drop \
             --gates, --patterns, --sample, --exact and --path"
                .into(),
        ));
    }
    if a.one_hot && !matches!(a.loss, LossArg::Squared) {
        return Err(Error::InvalidSetting(format!(
            "--one-hot trains the squared loss on one-hot targets; with --loss {} drop --one-hot \
             (--loss softmax is the multi-class cross-entropy)",
            a.loss.loss().as_str()
        )));
    }
    let multi = a.one_hot || matches!(a.loss, LossArg::Softmax);
    if multi && a.path.is_some() {
        return Err(Error::InvalidSetting(
            "--path solves single-output programs; drop it for --one-hot or --loss softmax".into(),
        ));
    }
    let nuclear = NuclearSettings {
        width: a.width,
        gamma: a.gamma,
        init: match a.nuclear_init {
            NuclearInitArg::Zero => NuclearInit::Zero,
            NuclearInitArg::Random => NuclearInit::Random,
        },
        max_relaxations: a.relaxations,
        max_order: a.nuclear_max_order,
        ..NuclearSettings::default()
    };
    Ok(TrainOptions {
        nuclear,
        formulation: formulation(a.model, a.slope)?,
        loss: a.loss.loss(),
        lambda: a.lambda,
        patterns: source,
        seed: a.seed,
        solver: a.solver.choice(),
        tol: a.tol,
        max_iter: a.max_iter,
        time_limit: a.time_limit,
        precision: match a.precision {
            PrecisionArg::F32 => Precision::F32,
            PrecisionArg::F64 => Precision::F64,
        },
        block_rows: a.block_rows,
        threads: a.threads,
        working_rows: a.working_rows,
        memory_limit: a.max_memory.map(|g| (g * (1u64 << 30) as f64) as usize),
        deep_widths,
        construction,
        lift_width: a.lift_width,
        dictionary: a.dictionary,
        dictionary_depth: a.depth,
        convolution: a.conv.as_deref().map(Convolution::parse).transpose()?,
        outputs: match a.outputs {
            OutputsArg::Separate => OutputPenalty::Separate,
            OutputsArg::Group => OutputPenalty::Group,
            OutputsArg::Nuclear => OutputPenalty::Nuclear,
        },
        ..TrainOptions::default()
    })
}

/// The program of `--model` with its `--slope`: the slope is required by, and only accepted with,
/// the leaky ReLU.
pub fn formulation(model: ModelArg, slope: Option<f64>) -> Result<Formulation> {
    let f = match (model, slope) {
        (ModelArg::LeakyRelu, Some(slope)) => Formulation::LeakyRelu { slope },
        (ModelArg::LeakyRelu, None) => {
            return Err(Error::InvalidSetting(
                "--model leaky-relu needs --slope A with A in [0, 1)".into(),
            ))
        }
        (m, Some(_)) => {
            return Err(Error::InvalidSetting(
                format!("--slope applies to --model leaky-relu only, not {m:?}",).to_lowercase(),
            ))
        }
        (ModelArg::Gated, None) => Formulation::Gated,
        (ModelArg::Relu, None) => Formulation::Relu,
        (ModelArg::Abs, None) => Formulation::Abs,
        (ModelArg::Threshold, None) => Formulation::Threshold,
        (ModelArg::Linear, None) => Formulation::Linear,
    };
    f.validate()?;
    Ok(f)
}

fn parse_widths(text: &Option<String>) -> Result<Option<Vec<usize>>> {
    let Some(t) = text else { return Ok(None) };
    t.split(',')
        .map(|w| {
            w.trim()
                .parse::<usize>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    Error::InvalidSetting(format!(
                        "--hidden-widths expects positive integers like 2 or 3,2; got {t:?}"
                    ))
                })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Builds the model file of a fit.
pub fn model_file(
    fit: &Fit,
    opts: &TrainOptions,
    patterns: &str,
    pre: Preprocessing,
    y: &[f64],
) -> ModelFile {
    ModelFile::from_fit(fit, opts, patterns, pre, None, y)
}

/// Writes the coefficients z of a 1-D dictionary fit with the knot and sign of each column.
fn write_dictionary_weights(
    path: &std::path::Path,
    fit: &Fit,
    atoms: &[convexnn::features::dictionary::Atom],
) -> Result<()> {
    let p = atoms.len();
    let z: Vec<f64> = (0..p).map(|k| fit.weights[(0, k)]).collect();
    let knots: Vec<f64> = atoms.iter().map(|a| a.knot).collect();
    let signs: Vec<f64> = atoms.iter().map(|a| a.sign).collect();
    let arr = |data| NpyData::F64 {
        shape: vec![p],
        data,
    };
    write_npz(
        path,
        &[
            ("z", arr(&z)),
            ("knots", arr(&knots)),
            ("signs", arr(&signs)),
        ],
    )
}

/// Writes the coefficients z of a deep narrow dictionary fit with each column's chain: `anchors`
/// and `signs` (P × (L − 1), row k the anchors a_l and signs s_l of column k).
fn write_chain_weights(
    path: &std::path::Path,
    fit: &Fit,
    chains: &[convexnn::features::narrow::Chain],
) -> Result<()> {
    let p = chains.len();
    let layers = chains.first().map_or(0, |c| c.anchors.len());
    let z: Vec<f64> = (0..p).map(|k| fit.weights[(0, k)]).collect();
    let anchors: Vec<f64> = chains.iter().flat_map(|c| c.anchors.clone()).collect();
    let signs: Vec<f64> = chains.iter().flat_map(|c| c.signs.clone()).collect();
    let table = |data| NpyData::F64 {
        shape: vec![p, layers],
        data,
    };
    write_npz(
        path,
        &[
            (
                "z",
                NpyData::F64 {
                    shape: vec![p],
                    data: &z,
                },
            ),
            ("anchors", table(&anchors)),
            ("signs", table(&signs)),
        ],
    )
}

/// Writes the convex solution as .npz (the interop contract); for 1-D dictionary fits, `z`,
/// `knots` and `signs` (one entry per dictionary column); for deep narrow ones `z`, `anchors` and
/// `signs` (one row per column).
pub fn write_weights(path: &std::path::Path, fit: &Fit, formulation: Formulation) -> Result<()> {
    if let Some(atoms) = &fit.dictionary {
        return write_dictionary_weights(path, fit, atoms);
    }
    if let Some(chains) = &fit.chains {
        return write_chain_weights(path, fit, chains);
    }
    if formulation == Formulation::Linear {
        // Z (h × K, row-major), the end-to-end weights: w (d × 1) for a fully connected network.
        let z = &fit.weights;
        let data: Vec<f64> = (0..z.nrows())
            .flat_map(|r| (0..z.ncols()).map(move |k| z[(r, k)]))
            .collect();
        let shape = vec![z.nrows(), z.ncols()];
        return write_npz(path, &[("Z", NpyData::F64 { shape, data: &data })]);
    }
    let (n, p) = (fit.patterns.n_samples(), fit.patterns.len());
    let d = fit.weights.nrows();
    let dmat = fit.patterns.to_u8_row_major();
    let block = |c0: usize| -> Vec<f64> {
        let mut v = Vec::with_capacity(d * p);
        for k in 0..d {
            for i in 0..p {
                v.push(fit.weights[(k, c0 + i)]);
            }
        }
        v
    };
    let mut arrays = vec![(
        "D",
        NpyData::U8 {
            shape: vec![n, p],
            data: &dmat,
        },
    )];
    let (v, w);
    let outputs = fit.certificate.outputs.as_ref().map_or(1, |o| o.outputs);
    match formulation {
        Formulation::Gated => {
            w = block(0);
            // Vector outputs: W[k, :, i] is output k's weight vector of pattern i.
            let shape = if outputs > 1 {
                vec![outputs, d / outputs, p]
            } else {
                vec![d, p]
            };
            arrays.push(("W", NpyData::F64 { shape, data: &w }));
        }
        Formulation::Threshold => {
            w = block(0);
            arrays.push((
                "z",
                NpyData::F64 {
                    shape: vec![p],
                    data: &w,
                },
            ));
        }
        _ => {
            v = block(0);
            w = block(p);
            arrays.push((
                "V",
                NpyData::F64 {
                    shape: vec![d, p],
                    data: &v,
                },
            ));
            arrays.push((
                "W",
                NpyData::F64 {
                    shape: vec![d, p],
                    data: &w,
                },
            ));
        }
    }
    write_npz(path, &arrays)
}

/// Installs a Ctrl-C handler that sets the returned flag (once per process).
pub fn stop_flag() -> StopFlag {
    let flag = StopFlag::new();
    let f = flag.clone();
    let _ = ctrlc::set_handler(move || f.stop());
    flag
}

/// Runs `convexnn train`; returns the process exit code.
pub fn run(a: &TrainArgs) -> Result<i32> {
    let loaded = a.data.load()?;
    if let Some(t) = &loaded.data.targets {
        check_vector_targets(a, &t.names, &loaded.description)?;
    }
    let prep = prepare(
        &loaded.data,
        loaded.split.clone(),
        a.test_fraction,
        a.seed,
        a.standardize,
        a.bias,
    )?;
    let (n, d) = (prep.x.nrows(), prep.x.ncols());
    // With a convolution, gates act on patches (and the bias), not on whole images.
    let gate_dim = match a.conv.as_deref().map(Convolution::parse).transpose()? {
        Some(c) if c.input_dim() != d => {
            return Err(Error::InvalidData(format!(
                "--conv {}: images of {} × {} = {} pixels, but X has {d} columns",
                a.conv.as_deref().unwrap_or_default(),
                c.height,
                c.width,
                c.input_dim()
            )))
        }
        Some(c) => c.patch_dim(),
        None => d,
    };
    let (source, source_name) = pattern_source(a, n, gate_dim)?;
    let opts = options(a, source)?;
    let stop = stop_flag();
    let y = prep.train_raw.y.clone();
    if let Some(k) = a.path {
        return run_path(a, &prep, &opts, &y, k, &stop);
    }
    let mut progress = Progress::new("training", a.quiet || a.json);
    if a.trace.is_some() {
        progress = progress.keep_records();
    }
    let fit = if let Some(t) = &prep.train_raw.targets {
        train_outputs(
            prep.x.as_ref(),
            t.values.as_ref(),
            &opts,
            &mut progress,
            &stop,
        )
    } else if a.one_hot {
        train_classes(prep.x.as_ref(), &y, &opts, &mut progress, &stop)
    } else {
        train(prep.x.as_ref(), &y, &opts, &mut progress, &stop)
    };
    progress.finish();
    if let Some(path) = &a.trace {
        progress.write_trace(path)?;
    }
    let fit = fit?;
    let model = model_file(&fit, &opts, &source_name, prep.preprocessing.clone(), &y);
    if let Some(path) = &a.out {
        model.save(path)?;
    }
    if let Some(path) = &a.weights_out {
        write_weights(path, &fit, opts.formulation)?;
    }
    let train_m = evaluate_data(&model, &prep.train_raw).ok();
    let test_m = match &prep.test_raw {
        Some(t) => Some(evaluate_data(&model, t)?),
        None => None,
    };
    let target_names = prep.train_raw.targets.as_ref().map(|t| &t.names);
    if a.json {
        let mut j = certificate_json(&fit.certificate);
        j["model"] = json!(opts.formulation.as_str());
        if let Formulation::LeakyRelu { slope } = opts.formulation {
            j["slope"] = json!(slope);
        }
        j["loss"] = json!(opts.loss.as_str());
        j["precision"] = json!(format!("{:?}", opts.precision).to_lowercase());
        j["seed"] = json!(opts.seed);
        j["patterns_source"] = json!(source_name);
        j["dictionary"] = json!(opts.dictionary);
        if opts.dictionary {
            j["depth"] = json!(opts.dictionary_depth);
        }
        if let Some(xi) = fit.network.intercept {
            j["intercept"] = json!(xi);
        }
        j["n"] = json!(n);
        j["d"] = json!(d);
        if let Some(names) = target_names {
            j["targets"] = json!(names);
        }
        j["train"] = train_m.as_ref().map_or(json!(null), Metrics::to_json);
        j["test"] = test_m.as_ref().map_or(json!(null), Metrics::to_json);
        println!("{j}");
    } else {
        let name = match fit.certificate.depth {
            Some(l) => format!("deep narrow ReLU (depth {l})"),
            None => crate::report::network_name(opts.formulation).to_string(),
        };
        let c = target_names.map_or(String::new(), |names| {
            format!(", c = {} outputs: {}", names.len(), names.join(", "))
        });
        println!(
            "convexnn: {name} network, {} loss, on {} (n = {n}, d = {d}{c})",
            opts.loss.as_str(),
            loaded.description
        );
        print!("{}", certificate_text(&fit.certificate));
        if let Some(m) = &train_m {
            println!("  train             {}", m.line());
        }
        if let Some(m) = &test_m {
            println!("  test              {}", m.line());
        }
        if let Some(p) = &a.out {
            println!("  model saved to    {}", p.display());
        }
    }
    Ok(exit_code(fit.certificate.info.status))
}

/// 130 for an interrupted run (what was computed is still saved), 0 otherwise.
pub fn exit_code(status: Status) -> i32 {
    if status == Status::Interrupted {
        130
    } else {
        0
    }
}

fn run_path(
    a: &TrainArgs,
    prep: &Prepared,
    opts: &TrainOptions,
    y: &[f64],
    k: usize,
    stop: &StopFlag,
) -> Result<i32> {
    let lmax = convexnn::model::lambda_max(prep.x.as_ref(), y, opts)?;
    let grid = lambda_grid(lmax, a.path_ratio, k);
    let mut progress = Progress::new("path", a.quiet || a.json);
    let points = regularization_path(prep.x.as_ref(), y, opts, &grid, &mut progress, stop);
    progress.finish();
    let points = points?;
    if a.json {
        let arr: Vec<_> = points
            .iter()
            .map(|p| certificate_json(&p.certificate))
            .collect();
        println!("{}", json!({ "lambda_max": lmax, "path": arr }));
    } else {
        println!(
            "regularization path: {} values of lambda from {lmax:.4e}",
            points.len()
        );
        println!(
            "{:>12} {:>16} {:>10} {:>8} {:>10}",
            "lambda", "objective", "rel. gap", "neurons", "status"
        );
        for p in &points {
            let c = &p.certificate;
            println!(
                "{:>12.4e} {:>16.8e} {:>10.2e} {:>8} {:>10}",
                p.lambda, c.info.objective, c.relative_gap, c.active_neurons, c.info.status
            );
        }
    }
    let interrupted = points.len() < grid.len() || stop.is_set();
    Ok(if interrupted { 130 } else { 0 })
}
