//! One call from data to a certified network: [`train`] builds the patterns, the operator and the
//! program, runs the chosen solver, and reads the network back out of the convex solution.

use std::time::Instant;

use faer::{Mat, MatRef};
use serde::{Deserialize, Serialize};

use crate::data::to_pm1_labels;
use crate::error::{Error, Result};
use crate::features::deep::{deep_arrangement, sampled_deep_arrangement, DeepArrangement};
use crate::features::enumerate::enumerate;
use crate::features::patches::{separable_patterns, Convolution};
use crate::features::sample::sample_patterns;
use crate::features::PatternSet;
use crate::network::construct::{construct_on_lift, Construction, LiftOptions};
use crate::network::Network;
use crate::operator::{operator_memory, MaskedOperator, DEFAULT_BLOCK_ROWS};
use crate::program::gated::GatedProblem;
use crate::program::outputs::OutputPenalty;
use crate::program::prune::prune_blocks;
use crate::program::relu::{certificate, ReluAlProblem};
use crate::program::{normalization, Formulation, Loss};
use crate::real::Real;
use crate::solver::admm::{admm, admm_memory, AdmmSettings};
use crate::solver::al::{augmented_lagrangian, AlSettings};
use crate::solver::anderson::{anderson, anderson_memory};
use crate::solver::bcd::{gram_form_memory, group_bcd, BcdSettings, GramForm};
use crate::solver::cd::{gram_memory, lasso_cd, CdSettings, GramCoordinates};
use crate::solver::exact::{exact_memory_estimate, solve_exact, ExactSettings};
use crate::solver::fista::{fista, FistaRun, FistaSettings};
use crate::solver::interior::{
    analytic_centers, corrector_count, interior_memory, interior_start, relu_interior,
    InteriorSettings, NewtonSystem, WORKING_ROWS,
};
pub use crate::solver::mkl::MKL_MAX_ROWS;
use crate::solver::mkl::{
    check_mkl_size, kernel_weights, mkl_memory, mkl_reweighting, MklPenalty, MklSettings,
};
use crate::solver::nuclear::{nuclear_heuristic, NuclearSettings};
use crate::solver::pdhg::{hinge_lasso_pdhg, PdhgSettings};
use crate::solver::working_set::{hinge_lasso_working_set, WorkingSetSettings};
use crate::solver::{Info, Observe, Status, StopFlag};

pub mod dictionary;
pub mod file;
pub mod linear;
pub mod outputs;

/// Where the activation patterns come from.
#[derive(Clone, Debug)]
pub enum PatternSource {
    /// `count` Gaussian gates from the seed of [`TrainOptions`] (docs/programs.md §5).
    Sample {
        /// Number of gates drawn (distinct patterns may be fewer).
        count: usize,
    },
    /// User-supplied gates, d × P: pattern i is 1[X g_i ≥ 0].
    Gates(Mat<f64>),
    /// User-supplied 0/1 masks (columns of length n) used as given; no gates are known.
    Masks(Vec<Vec<bool>>),
    /// Every pattern of the data (1-D and 2-D data with a bias column); an error elsewhere.
    Exact,
    /// A pattern set built beforehand (e.g. shared along a regularization path).
    Set(PatternSet),
    /// Exact enumeration where feasible, else `count` sampled gates.
    Auto {
        /// Number of gates sampled when enumeration is not possible.
        count: usize,
    },
}

/// Which solver runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SolverChoice {
    /// For gated ReLU, block coordinate descent on the Gram form for squared-loss programs with
    /// few weights (see [`SolverChoice::Bcd`]), guarded Anderson acceleration for other
    /// squared-loss programs and FISTA for the logistic loss; coordinate descent for the squared-loss threshold Lasso up to
    /// [`CD_MAX_COLUMNS`] columns (FISTA beyond, and for the logistic loss); for ReLU, the interior-point backend on small squared-loss problems
    /// (n·P·d ≤ 200 000, where it is fast and exact), ADMM where its n × n factorization fits
    /// (n ≤ 20 000 and within the memory limit) and the augmented Lagrangian otherwise; for the
    /// hinge loss (a linear program), the interior-point backend by column generation up to
    /// n = 2000 samples and the primal–dual method beyond.
    Auto,
    /// Restarted FISTA (gated ReLU only).
    Fista,
    /// Augmented Lagrangian (ReLU only).
    Al,
    /// ADMM with an exactly factored linear step (ReLU only; memory grows as n²).
    Admm,
    /// The interior-point backend (small problems).
    Clarabel,
    /// The restarted primal–dual hybrid gradient method (threshold networks with the hinge loss).
    Pdhg,
    /// Coordinate descent over the popcount Gram matrix of the arrangement columns (threshold
    /// networks with the squared loss; memory grows as P²).
    Cd,
    /// The nuclear-norm heuristic with sequential convex relaxation (ReLU, squared loss, tiny
    /// data): looks for a network of width [`NuclearSettings::width`] that fits the data exactly.
    /// A heuristic: no certificate, no optimality guarantee (docs/programs.md (M37)).
    Nuclear,
    /// Gated ReLU as multiple kernel learning: iterative reweighting of the kernel weights with
    /// projected Newton steps, one n × n Cholesky factorization per step (gated and threshold
    /// programs, squared loss, n ≤ [`MKL_MAX_ROWS`]; memory grows as n²). Never chosen by `Auto`.
    /// Reports the learned kernel weights in [`Certificate::kernel_weights`].
    Mkl,
    /// Guarded Anderson acceleration of the proximal gradient method (docs/programs.md (M64)) for
    /// the programs FISTA solves (gated and threshold programs with a smooth loss): extrapolation
    /// from the last ten proximal gradient steps, taken only where it lowers the objective, at
    /// FISTA's cost per iteration.
    Anderson,
    /// The structured interior point for the squared-loss ReLU program (docs/programs.md
    /// (M61)–(M62)): Mehrotra's predictor–corrector with one factorization of a P·d system per
    /// iteration (directly, or through the Woodbury identity over an n × n matrix when there are
    /// fewer samples, (M66)) and iterates strictly inside the cones. Needs gates strictly inside
    /// their cones (sampled patterns); `Auto` picks it for squared-loss ReLU programs where
    /// [`interior_affordable`] holds.
    Interior,
    /// Block coordinate descent on the Gram form of the squared-loss gated program
    /// (docs/programs.md (M57)): G = FᵀF (Pd × Pd) formed once, then exact group updates whose
    /// zero groups cost nothing. Memory grows as (Pd)²; fastest where Pd is small next to the work
    /// of an operator product, as in convolutional programs (K patches per sample). `Auto` picks it
    /// for squared-loss gated convolutional programs with Pd ≤ [`BCD_MAX_WEIGHTS`] and
    /// Pd ≤ 500 K, and for squared-loss gated fully connected programs in f64 with
    /// Pd ≤ [`BCD_MAX_WEIGHTS_DENSE`].
    Bcd,
}

/// The most weights P·d for which `auto` takes block coordinate descent on a convolutional
/// program (its Gram matrix then needs up to 1.9 GiB).
pub const BCD_MAX_WEIGHTS: usize = 16_000;

/// The most weights P·d for which `auto` takes block coordinate descent on a fully connected
/// program in f64: forming G costs n(Pd)² and factoring it (Pd)³/3, against 4nPd per FISTA
/// iteration, and FISTA needs thousands of iterations where the program is ill conditioned (small
/// λ, correlated patterns).
pub const BCD_MAX_WEIGHTS_DENSE: usize = 4_000;

/// Working precision of the iterative solvers (certificates are always computed in f64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// Single precision for the bulk of the iterations (half the memory traffic, faster products),
    /// then double precision from that point when the tolerance asks for more than single precision
    /// can certify (about 1e-4 relative gap: the gap is first order in the stationarity error), or
    /// as soon as single precision stops making measurable progress (FISTA's stall test,
    /// [`crate::solver::fista::FistaSettings::stall_checks`]).
    F32,
    /// Double precision (default).
    F64,
}

/// Everything [`train`] needs besides the data, with documented defaults.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    /// The program. Default gated.
    pub formulation: Formulation,
    /// The loss. Default squared.
    pub loss: Loss,
    /// λ in the normalization of [`crate::program`]. Default 1e-3.
    pub lambda: f64,
    /// Patterns. Default: exact where feasible, else 100 sampled gates.
    pub patterns: PatternSource,
    /// Seed of every random choice. Default 0.
    pub seed: u64,
    /// Solver. Default auto.
    pub solver: SolverChoice,
    /// Relative duality gap (and relative cone violation) at which to stop. Default 1e-6.
    pub tol: f64,
    /// Iteration cap (total inner iterations for the augmented Lagrangian; ten times this for the
    /// primal–dual solver of the hinge loss). Default 10 000.
    pub max_iter: usize,
    /// Wall-clock limit in seconds. Default none.
    pub time_limit: Option<f64>,
    /// Working precision. Default f64.
    pub precision: Precision,
    /// Rows per block of the operator. Default 4096.
    pub block_rows: usize,
    /// Threads for the matrix products (0 = all cores). Default 0.
    pub threads: usize,
    /// The structured interior point only: rows per column of X in each block's starting working
    /// set of cone rows (docs/programs.md (M71)); 0 keeps every row. The optimum does not depend on
    /// it. Default [`WORKING_ROWS`] (10).
    pub working_rows: usize,
    /// Refuse runs estimated to need more bytes than this. Default: 80% of the available memory.
    pub memory_limit: Option<usize>,
    /// Report progress every this many iterations. Default 10.
    pub report_every: usize,
    /// Initial convex weights (d × P gated, d × 2P ReLU) over the same patterns, e.g. the solution
    /// at the previous λ of a path. Default none (zeros).
    pub warm_start: Option<Mat<f64>>,
    /// Threshold networks only: widths [m_1, …, m_{L−2}] of the hidden layers below the last one of
    /// a deep network, whose last-layer arrangement is enumerated exactly (tiny data only). Default
    /// none (two layers).
    pub deep_widths: Option<Vec<usize>>,
    /// Prune the solution to at most n + 1 neurons when it has more nonzero blocks, keeping the
    /// training predictions and the penalty, hence the objective (docs/programs.md (M6), Pilanci &
    /// Ergen 2020, Theorem 1; see [`crate::program::prune::prune_blocks`]). The pruned weights are
    /// kept only when their f64 objective is within 1e-9 (relative) of the unpruned one. Default true.
    pub prune: bool,
    /// Threshold networks only: how the network is built (see
    /// [`crate::network::construct`]). Lasso (default) solves (M29) over the pattern source; Pi and
    /// Svm solve the complete-arrangement program (M30) in closed form on a random lift of width
    /// [`TrainOptions::lift_width`] (seeded by `seed`; the pattern source is not used) and realize
    /// its staircase by pseudo-inverse or SVM hidden weights.
    pub construction: Construction,
    /// Width M of the random first layer of the Pi and Svm constructions (≥ n). Default 1000.
    pub lift_width: usize,
    /// [`SolverChoice::Nuclear`] only: width, γ, initialization, relaxation cap and size limit of
    /// the heuristic (its tolerance, seed, time and memory limits are this struct's `tol`, `seed`,
    /// `time_limit` and `memory_limit`). Default [`NuclearSettings::default`].
    pub nuclear: NuclearSettings,
    /// A convolutional network with global average pooling (docs/programs.md (M35a)–(M35c)): the
    /// rows of X are images, the program works on their stacked patches (patterns, cones and
    /// filters of length h = the patch size) and averages each image's K patch outputs. Gated,
    /// ReLU, leaky ReLU and abs networks with the squared or logistic loss. Default none (fully
    /// connected).
    pub convolution: Option<Convolution>,
    /// Scalar inputs only (X of shape n × 1, no bias column): solve the explicit 1-D dictionary
    /// Lasso (docs/programs.md (M47)) of the ReLU, leaky ReLU, |z| or threshold network with
    /// unpenalized neuron biases and output intercept, instead of a pattern program (squared loss,
    /// FISTA or the interior-point backend; see [`dictionary`]). Default false.
    pub dictionary: bool,
    /// Depth L of the 1-D dictionary network (with `dictionary`): 2 is the two-layer dictionary
    /// (M47) of `formulation`; 3 and 4 the deep narrow ReLU network, a sum of chains of
    /// width-one ReLU layers with weight decay (λ/L)Σ|weights|^L, whose Lasso is over the chain
    /// features (M58). Default 2.
    pub dictionary_depth: usize,
    /// Vector outputs only (targets with c > 1 columns, or class labels with the softmax loss): the
    /// block norm of the program (docs/programs.md (M53)). Default group (the relaxation over each
    /// neuron's d × c block); nuclear is the exact shared-neuron program, separate scnn's.
    pub outputs: OutputPenalty,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            formulation: Formulation::Gated,
            loss: Loss::Squared,
            lambda: 1e-3,
            patterns: PatternSource::Auto { count: 100 },
            seed: 0,
            solver: SolverChoice::Auto,
            tol: 1e-6,
            max_iter: 10_000,
            time_limit: None,
            precision: Precision::F64,
            block_rows: DEFAULT_BLOCK_ROWS,
            threads: 0,
            working_rows: WORKING_ROWS,
            memory_limit: None,
            report_every: 10,
            warm_start: None,
            deep_widths: None,
            prune: true,
            construction: Construction::Lasso,
            lift_width: 1000,
            nuclear: NuclearSettings::default(),
            convolution: None,
            dictionary: false,
            dictionary_depth: 2,
            outputs: OutputPenalty::Group,
        }
    }
}

/// The certificate of a fit: how close to optimal it is, and what was solved.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Certificate {
    /// Solver statistics (status, objective, dual objective, gap, violation, iterations, time).
    pub info: Info,
    /// gap / |objective| (NaN, null in JSON, for a heuristic).
    #[serde(deserialize_with = "crate::solver::nan_if_null")]
    pub relative_gap: f64,
    /// Number of distinct patterns used.
    pub n_patterns: usize,
    /// Neurons of the reconstructed network.
    pub active_neurons: usize,
    /// Whether the pattern set is the complete arrangement: then the network is certified globally
    /// optimal among networks of its width or wider (001 Theorem 1) up to the gap.
    pub exhaustive: bool,
    /// λ of the normalized program.
    pub lambda: f64,
    /// The equivalent β = nλ of the papers' ½‖r‖² + β R form.
    pub lambda_unnormalized: f64,
    /// The smallest λ at which the zero network is optimal (over the patterns used; gated bound).
    /// NaN (null in JSON) for a heuristic, which uses no patterns.
    #[serde(deserialize_with = "crate::solver::nan_if_null")]
    pub lambda_max: f64,
    /// The objective's normalization, in words.
    pub normalization: String,
    /// The solver that ran: "fista", "al" or "clarabel".
    pub solver: String,
    /// The program that was solved.
    pub formulation: Formulation,
    /// The non-convex objective of the reconstructed network on the training data (M5)/(M38).
    #[serde(deserialize_with = "crate::solver::nan_if_null")]
    pub network_objective: f64,
    /// Present when a heuristic trained the network: then nothing is certified (gap, dual
    /// objective and relative gap are NaN) and this says so and what the heuristic reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heuristic: Option<HeuristicReport>,
    /// The learned kernel of the multiple-kernel-learning view (docs/programs.md (M42)–(M45)),
    /// reported by the `mkl` solver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_weights: Option<KernelWeights>,
    /// Vector-output fits: the number of outputs, the block norm and what its optimum means for the
    /// network; `network_objective` is then the objective of the shared-neuron network read out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<outputs::OutputsReport>,
    /// Deep narrow 1-D dictionary fits: the depth L of the network (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
}

/// What a fit reports besides its solver statistics: the inputs of [`Certificate::new`].
struct CertificateFacts<'a> {
    /// The options of the run (λ and the formulation).
    opts: &'a TrainOptions,
    /// Number of training samples n (β = nλ).
    samples: usize,
    /// The reconstructed network (its width is the number of active neurons).
    network: &'a Network,
    /// The network's non-convex objective on the training data (M5)/(M38).
    network_objective: f64,
    /// Number of distinct patterns (dictionary columns for 1-D dictionary fits) used.
    n_patterns: usize,
    /// Whether the pattern set is the complete arrangement.
    exhaustive: bool,
    /// λ_max of the program solved (NaN for a heuristic).
    lambda_max: f64,
    /// The objective's normalization, in words.
    normalization: String,
    /// The solver that ran.
    solver: String,
}

impl Certificate {
    /// The certificate of a fit with solver statistics `info`: relative gap = gap / |objective|, λ
    /// and the formulation of the options, β = nλ, and the width of the network as its active
    /// neurons. The optional reports (heuristic, kernel weights, outputs) are `None`; a caller that
    /// has one sets it.
    fn new(info: Info, facts: CertificateFacts<'_>) -> Self {
        let lambda = facts.opts.lambda;
        Certificate {
            relative_gap: info.gap / info.objective.abs().max(1e-300),
            n_patterns: facts.n_patterns,
            active_neurons: facts.network.width(),
            exhaustive: facts.exhaustive,
            lambda,
            lambda_unnormalized: lambda * facts.samples as f64,
            lambda_max: facts.lambda_max,
            normalization: facts.normalization,
            solver: facts.solver,
            formulation: facts.opts.formulation,
            network_objective: facts.network_objective,
            heuristic: None,
            kernel_weights: None,
            outputs: None,
            depth: None,
            info,
        }
    }
}

/// The kernel K_η = Σ_i η_i D_iXXᵀD_i of a gated fit read as multiple kernel learning
/// (docs/programs.md (M34), (M42)–(M45)): η_i = ‖u_i‖ / Σ_j‖u_j‖ on the simplex, and the β of (M34)
/// at which this kernel is optimal, β = nλ / Σ_j‖u_j‖ (M43).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KernelWeights {
    /// β = nλ / Σ_j‖u_j‖ (infinite, saved as null, for the zero network).
    pub beta: Option<f64>,
    /// Pattern (column of the fit's pattern set) of each nonzero weight, ascending: entry k belongs to
    /// neuron k of the network.
    pub patterns: Vec<usize>,
    /// The weights η on those patterns (they sum to 1; empty for the zero network).
    pub weights: Vec<f64>,
}

impl KernelWeights {
    /// The kernel weights of convex gated weights U (d × P) at λ on n samples.
    pub fn of(u: &Mat<f64>, n: usize, lambda: f64) -> Self {
        let (eta, beta) = kernel_weights(u, n, lambda);
        let patterns: Vec<usize> = (0..eta.len()).filter(|&i| eta[i] > 0.0).collect();
        KernelWeights {
            beta: beta.is_finite().then_some(beta),
            weights: patterns.iter().map(|&i| eta[i]).collect(),
            patterns,
        }
    }
}

/// What a heuristic reports in place of a certificate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeuristicReport {
    /// Always "heuristic, no optimality guarantee".
    pub guarantee: String,
    /// The method, e.g. "nuclear-norm heuristic with sequential convex relaxation (M37)".
    pub method: String,
    /// max_i |f(x_i) − y_i| of the returned network on the training data.
    pub fit_residual: f64,
    /// The fit residual of the network read from each relaxation, in order.
    pub residual_history: Vec<f64>,
    /// Which relaxation (1-based) gave the returned network (the smallest residual).
    pub best_relaxation: usize,
    /// Hidden width m the heuristic was run with.
    pub width: usize,
    /// Weight γ of the complementarity term.
    pub gamma: f64,
    /// The first relaxation's parameters: "zero", "random" or "network".
    pub init: String,
}

/// The guarantee string of every heuristic result.
pub const NO_GUARANTEE: &str = "heuristic, no optimality guarantee";

/// The result of [`train`].
pub struct Fit {
    /// The patterns used (deduplicated).
    pub patterns: PatternSet,
    /// The convex solution: d × P (gated) or d × 2P = [V | W] (ReLU).
    pub weights: Mat<f64>,
    /// The non-convex network read out of it.
    pub network: Network,
    /// Its certificate.
    pub certificate: Certificate,
    /// The labels actually used (±1 for the logistic loss).
    pub targets: Vec<f64>,
    /// 1-D dictionary fits: the column (knot, sign) of each coefficient of `weights` (1 × P);
    /// `patterns` then holds the distinct activation patterns of the columns, for information.
    pub dictionary: Option<Vec<crate::features::dictionary::Atom>>,
    /// Deep narrow 1-D dictionary fits (depth 3, 4): the chain (anchors, signs) of each coefficient
    /// of `weights` (1 × P).
    pub chains: Option<Vec<crate::features::narrow::Chain>>,
}

/// The FISTA settings of `opts`: its tolerance, iteration cap, reporting interval (the gap is
/// checked as often as progress is reported) and time limit.
fn fista_settings(opts: &TrainOptions) -> FistaSettings {
    FistaSettings {
        tol: opts.tol,
        max_iter: opts.max_iter,
        check_every: opts.report_every.max(1),
        time_limit: opts.time_limit,
        ..FistaSettings::default()
    }
}

fn available_memory() -> usize {
    let text = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    text.lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<usize>().ok())
        .map_or(8 << 30, |kb| kb * 1024)
}

/// Largest n for which `auto` solves the hinge loss by the interior point with column generation
/// (working sets of a few n columns; each round factors an n-row program).
pub const HINGE_INTERIOR_POINT_MAX_ROWS: usize = 2000;

/// Most arrangement columns for which `auto` solves the squared-loss threshold Lasso by coordinate
/// descent over the Gram matrix (8P² bytes: 200 MB here); beyond, building it costs more than FISTA.
pub const CD_MAX_COLUMNS: usize = 5000;

/// Where `auto` considers block coordinate descent: the Gram form within a quarter of the memory
/// limit.
fn bcd_memory_limit(opts: &TrainOptions) -> usize {
    opts.memory_limit
        .unwrap_or_else(|| available_memory() / 10 * 8)
        / 4
}

/// The solver `auto` stands for on a problem of this size (see [`SolverChoice::Auto`]).
pub fn resolve_solver(opts: &TrainOptions, n: usize, d: usize, p: usize) -> SolverChoice {
    match (opts.solver, opts.formulation) {
        (SolverChoice::Auto, Formulation::Threshold) if !opts.loss.is_smooth() => {
            if n <= HINGE_INTERIOR_POINT_MAX_ROWS {
                SolverChoice::Clarabel
            } else {
                SolverChoice::Pdhg
            }
        }
        (SolverChoice::Auto, Formulation::Threshold)
            if opts.loss == Loss::Squared && p <= CD_MAX_COLUMNS =>
        {
            SolverChoice::Cd
        }
        (SolverChoice::Auto, Formulation::Gated)
            if opts.loss == Loss::Squared
                && gram_form_memory(d * p) <= bcd_memory_limit(opts)
                && match opts.convolution {
                    Some(c) => d * p <= BCD_MAX_WEIGHTS && d * p <= 500 * c.patch_count(),
                    None => d * p <= BCD_MAX_WEIGHTS_DENSE && opts.precision == Precision::F64,
                } =>
        {
            SolverChoice::Bcd
        }
        // Anderson acceleration where it measured faster: the squared-loss gated program (1.3× to
        // 2.3× fewer seconds than FISTA from n = 5000, d = 20, P = 200 to MNIST scale; slower only
        // on problems solved in under half a second). FISTA for the logistic loss and for the
        // threshold Lasso, where Anderson took up to five times longer (docs/programs.md (M64)).
        (SolverChoice::Auto, Formulation::Gated) if opts.loss == Loss::Squared => {
            SolverChoice::Anderson
        }
        (SolverChoice::Auto, Formulation::Gated | Formulation::Threshold) => SolverChoice::Fista,
        (
            SolverChoice::Auto,
            Formulation::Relu | Formulation::LeakyRelu { .. } | Formulation::Abs,
        ) => {
            let limit = opts
                .memory_limit
                .unwrap_or_else(|| available_memory() / 10 * 8);
            if opts.loss == Loss::Squared
                && opts.formulation == Formulation::Relu
                && interior_affordable(n / pooling(opts), d, p)
                && interior_memory(n, n / pooling(opts), d, p, NewtonSystem::Auto) <= limit
            {
                SolverChoice::Interior
            } else if opts.loss == Loss::Squared && n * p * d <= 200_000 {
                SolverChoice::Clarabel
            } else if opts.convolution.is_none() && n <= 20_000 && 2 * admm_memory(n) <= limit {
                SolverChoice::Admm
            } else {
                SolverChoice::Al
            }
        }
        (s, _) => s,
    }
}

/// Most rows P·d of the structured interior point's reduced Newton system for which `auto` picks
/// its direct factorization ((Pd)³/3 flops: about 0.3 s at 4000 rows on two cores).
pub const INTERIOR_MAX_SYSTEM: usize = 4000;

/// Whether `auto` picks the structured interior point for `samples` samples, `d` columns and `p`
/// patterns: its reduced system has at most [`INTERIOR_MAX_SYSTEM`] rows, or its Woodbury form
/// (M66) costs at most twice a direct factorization of that many rows (3n²·Pd + n³ against
/// (Pd)³ multiply–adds, up to a common factor; the Woodbury form's products run nearer the
/// machine's peak than a factorization). Measured at n = 1000, d = 50, P = 500 (P·d = 25000):
/// 29.5 s, 62 iterations.
pub fn interior_affordable(samples: usize, d: usize, p: usize) -> bool {
    let pd = p * d;
    let (n, m, limit) = (samples as f64, pd as f64, INTERIOR_MAX_SYSTEM as f64);
    pd <= INTERIOR_MAX_SYSTEM || 3.0 * n * n * m + n * n * n <= 2.0 * limit * limit * limit
}

/// Bytes a solve is estimated to allocate (operator, iterates, caches, multipliers).
pub fn memory_estimate(n: usize, d: usize, p: usize, opts: &TrainOptions) -> usize {
    let b = match opts.precision {
        Precision::F32 => 4,
        Precision::F64 => 8,
    };
    let op = operator_memory(n, d, p, opts.block_rows, b);
    let solver = match (resolve_solver(opts, n, d, p), opts.formulation) {
        // Column generation: working sets of a few n columns.
        (SolverChoice::Clarabel, f) if opts.loss == Loss::Hinge => {
            exact_memory_estimate(n, d, p.min(4 * n.max(10)), f, opts.loss)
        }
        (SolverChoice::Clarabel, f) => exact_memory_estimate(n, d, p, f, opts.loss),
        (SolverChoice::Interior, _) => {
            interior_memory(n, n / pooling(opts), d, p, NewtonSystem::Auto)
        }
        // the n × n factor and its work copy, eight n × 2P matrices, the d × 2P iterates.
        (SolverChoice::Admm, _) => admm_memory(n) + 16 * n * p * 8 + 12 * d * p * 8,
        // the Gram matrix, the coefficients and their certificate.
        (SolverChoice::Cd, _) => gram_memory(p) + 8 * p * 8 + 4 * n * 8,
        // three n × n matrices, two n × P, the P × P Newton system, the d × P iterates.
        (SolverChoice::Mkl, _) => mkl_memory(n, p) + 16 * p * p + 6 * d * p * 8,
        // the Gram form, the iterate, Gu and the certificate.
        (SolverChoice::Bcd, _) => gram_form_memory(d * p) + 6 * d * p * 8 + 4 * n * 8,
        // plus Anderson's history of points, images and residuals.
        (SolverChoice::Anderson, Formulation::Gated | Formulation::Linear) => {
            8 * d * p * b + 4 * n * b + anderson_memory(d * p, n, b)
        }
        (SolverChoice::Anderson, Formulation::Threshold) => {
            8 * p * b + 4 * n * b + anderson_memory(p, n, b)
        }
        (_, Formulation::Gated | Formulation::Linear) => 8 * d * p * b + 4 * n * b,
        (_, Formulation::Threshold) => 8 * p * b + 4 * n * b,
        // caches (3), multipliers, gradient scratch, certificate: six n × 2P matrices, plus XG.
        (_, Formulation::Relu | Formulation::LeakyRelu { .. } | Formulation::Abs) => {
            12 * n * p * b + n * p * b + 10 * d * p * b
        }
    };
    op + solver
}

fn check_memory(n: usize, d: usize, p: usize, opts: &TrainOptions) -> Result<()> {
    let need = memory_estimate(n, d, p, opts);
    let limit = opts
        .memory_limit
        .unwrap_or_else(|| available_memory() / 10 * 8);
    if need > limit {
        let gib = |b: usize| b as f64 / (1u64 << 30) as f64;
        if resolve_solver(opts, n, d, p) == SolverChoice::Mkl {
            return Err(Error::Memory(format!(
                "the reweighting (mkl) solver needs about {:.2} GiB for n = {n} samples and {p} \
                 patterns (three n × n matrices) but the limit is {:.2} GiB: use fewer rows, \
                 --solver fista (memory linear in n), or raise --max-memory",
                gib(need),
                gib(limit)
            )));
        }
        return Err(Error::Memory(format!(
            "this fit needs about {:.2} GiB (n = {n}, d = {d}, {p} patterns, {} formulation, {:?} \
             precision) but the limit is {:.2} GiB: use fewer patterns (--sample), a smaller block \
             (--block-rows), f32 precision (--precision f32), fewer rows, or raise --max-memory",
            gib(need),
            opts.formulation.as_str(),
            opts.precision,
            gib(limit)
        )));
    }
    Ok(())
}

/// Builds the pattern set the options ask for (for the absolute-value program, one pattern of each
/// complementary pair, see [`PatternSet::without_complements`]).
pub fn build_patterns(x: MatRef<'_, f64>, opts: &TrainOptions) -> Result<PatternSet> {
    let n = x.nrows();
    if let Some(conv) = opts.convolution.filter(|c| c.separable) {
        return separable_patterns_of(x, &conv, opts);
    }
    let set = match &opts.patterns {
        PatternSource::Sample { count } => sample_patterns(x, *count, opts.seed)?,
        PatternSource::Gates(g) => PatternSet::from_gates(x, g.as_ref(), false)?,
        PatternSource::Masks(cols) => PatternSet::from_columns(n, cols, None, false)?,
        PatternSource::Set(set) => {
            if set.n_samples() != n {
                return Err(Error::InvalidData(format!(
                    "the pattern set covers {} samples but X has {n} rows",
                    set.n_samples()
                )));
            }
            set.clone()
        }
        PatternSource::Exact => enumerate(x)?.ok_or_else(|| {
            Error::InvalidSetting(format!(
                "exact enumeration is implemented for 1-D and 2-D data with a bias column \
                 (d = 2 or 3 including the bias); this data has d = {}: sample patterns instead",
                x.ncols()
            ))
        })?,
        PatternSource::Auto { count } => match enumerate(x)? {
            Some(p) => p,
            None => sample_patterns(x, *count, opts.seed)?,
        },
    };
    // Complementary patterns give the same absolute-value features (M40): keep one of each pair.
    let set = match opts.formulation {
        Formulation::Abs => set.without_complements(),
        _ => set,
    };
    if set.is_empty() {
        return Err(Error::InvalidData(
            "every pattern is all-zero (is X all zeros?): no features to fit".into(),
        ));
    }
    Ok(set)
}

/// The per-position patterns of a separable network (docs/programs.md (M35d)) on its embedded
/// patch matrix `x`.
fn separable_patterns_of(
    x: MatRef<'_, f64>,
    conv: &Convolution,
    opts: &TrainOptions,
) -> Result<PatternSet> {
    let sample = |count| separable_patterns(x, conv, count, opts.seed, false);
    let set = match &opts.patterns {
        PatternSource::Sample { count } => sample(*count)?,
        PatternSource::Exact => separable_patterns(x, conv, 0, opts.seed, true)?,
        PatternSource::Auto { count } => {
            separable_patterns(x, conv, 0, opts.seed, true).or_else(|_| sample(*count))?
        }
        PatternSource::Set(set) if set.n_samples() == x.nrows() => set.clone(),
        _ => {
            return Err(Error::InvalidSetting(
                "a separable convolutional network builds its own per-position patterns: sample or enumerate them (no gates or masks)"
                    .into(),
            ))
        }
    };
    if set.is_empty() {
        return Err(Error::InvalidData(
            "every pattern is all-zero (are the images all zeros?): no features to fit".into(),
        ));
    }
    Ok(set)
}

fn validate(x: MatRef<'_, f64>, y: &[f64], opts: &TrainOptions) -> Result<Vec<f64>> {
    if x.nrows() == 0 || x.ncols() == 0 {
        return Err(Error::InvalidData("empty data".into()));
    }
    if x.nrows() != y.len() {
        return Err(Error::InvalidData(format!(
            "X has {} rows but y has {} values",
            x.nrows(),
            y.len()
        )));
    }
    if !(opts.lambda.is_finite() && opts.lambda > 0.0) {
        return Err(Error::InvalidSetting(format!(
            "lambda must be a positive number, got {}",
            opts.lambda
        )));
    }
    if !(opts.tol.is_finite() && opts.tol > 0.0) {
        return Err(Error::InvalidSetting(format!(
            "tol must be positive, got {}",
            opts.tol
        )));
    }
    opts.formulation.validate()?;
    if opts.dictionary_depth != 2 && !opts.dictionary {
        return Err(Error::InvalidSetting(format!(
            "a dictionary depth ({}) is for the 1-D dictionary program: set dictionary too, or \
             drop the depth",
            opts.dictionary_depth
        )));
    }
    if opts.solver == SolverChoice::Nuclear && (opts.convolution.is_some() || opts.dictionary) {
        return Err(Error::InvalidSetting(format!(
            "the nuclear-norm heuristic (solver nuclear) fits fully connected two-layer ReLU \
             networks to vector inputs; it does not take {}: use another solver or drop it",
            if opts.dictionary {
                "the 1-D dictionary program (dictionary)"
            } else {
                "convolutional networks (convolution)"
            }
        )));
    }
    // The dictionary program checks its own solver and loss (model::dictionary).
    let pattern_solver = if opts.dictionary {
        SolverChoice::Auto
    } else {
        opts.solver
    };
    match (pattern_solver, opts.formulation) {
        (SolverChoice::Fista | SolverChoice::Anderson, f) if f.is_cone_program() => {
            return Err(Error::InvalidSetting(format!(
                "--solver {} solves the unconstrained gated program; use --solver admm, al, \
                 interior or clarabel for {}",
                format!("{pattern_solver:?}").to_lowercase(),
                f.as_str()
            )))
        }
        (SolverChoice::Mkl, f) if f.is_cone_program() => {
            return Err(Error::InvalidSetting(format!(
                "the reweighting (mkl) solver solves the unconstrained gated program (and the \
                 threshold Lasso); use --solver admm, al or clarabel for {}",
                f.as_str()
            )))
        }
        (SolverChoice::Mkl, _) if opts.loss != Loss::Squared => {
            return Err(Error::InvalidSetting(format!(
                "the reweighting (mkl) solver is derived for the squared loss (its kernel ridge step \
                 has no closed form for the {} loss); use --solver fista or clarabel",
                opts.loss.as_str()
            )))
        }
        (SolverChoice::Mkl, _) => check_mkl_size(x.nrows())?,
        (SolverChoice::Al | SolverChoice::Admm, Formulation::Gated | Formulation::Threshold) => {
            return Err(Error::InvalidSetting(
                "the augmented Lagrangian and ADMM are for the constrained relu program; use --solver fista for gated".into(),
            ))
        }
        _ => {}
    }
    if !opts.loss.is_smooth() {
        if opts.formulation != Formulation::Threshold {
            return Err(Error::InvalidSetting(format!(
                "the {} loss is implemented for threshold networks (--model threshold); {} networks \
                 take the squared or logistic loss",
                opts.loss.as_str(),
                opts.formulation.as_str()
            )));
        }
        if matches!(opts.solver, SolverChoice::Fista | SolverChoice::Anderson) {
            return Err(Error::InvalidSetting(format!(
                "FISTA and Anderson acceleration need a smooth loss; the {} loss is solved by --solver pdhg or clarabel \
                 (auto picks by size)",
                opts.loss.as_str()
            )));
        }
    } else if opts.solver == SolverChoice::Pdhg {
        return Err(Error::InvalidSetting(
            "the primal-dual solver (pdhg) is for the hinge loss; use fista or clarabel".into(),
        ));
    }
    if opts.solver == SolverChoice::Nuclear
        && (opts.formulation != Formulation::Relu
            || opts.loss != Loss::Squared
            || opts.deep_widths.is_some()
            || !opts.construction.is_lasso())
    {
        return Err(Error::InvalidSetting(format!(
            "the nuclear-norm heuristic (solver nuclear) fits two-layer ReLU networks exactly to \
             real targets: use the relu model with the squared loss, not {} with the {} loss",
            opts.formulation.as_str(),
            opts.loss.as_str()
        )));
    }
    if opts.solver == SolverChoice::Cd
        && (opts.formulation != Formulation::Threshold || opts.loss != Loss::Squared)
    {
        return Err(Error::InvalidSetting(format!(
            "coordinate descent (cd) solves the squared-loss threshold Lasso; for the {} {} \
             program use --solver auto",
            opts.formulation.as_str(),
            opts.loss.as_str()
        )));
    }
    if let Some(conv) = &opts.convolution {
        validate_convolution(x, conv, opts)?;
    }
    match opts.loss {
        Loss::Squared => Ok(y.to_vec()),
        Loss::Logistic | Loss::Hinge => to_pm1_labels(y),
        Loss::Softmax => Err(Error::InvalidSetting(
            "the softmax loss trains c outputs from class labels: use model::outputs::train_classes \
             (train does so for the softmax loss)"
                .into(),
        )),
    }
}

/// The convolutional programs (M35a)–(M35c) cover gated and piecewise-linear networks solved by
/// FISTA, the augmented Lagrangian or the interior-point backend, on images of the stated size
/// (not the ADMM, coordinate-descent, MKL or primal-dual solvers, nor the 1-D dictionary program).
fn validate_convolution(x: MatRef<'_, f64>, conv: &Convolution, opts: &TrainOptions) -> Result<()> {
    if opts.dictionary {
        return Err(Error::InvalidSetting(
            "the 1-D dictionary program is for scalar inputs, not convolutional networks: drop \
             either the dictionary or the convolution"
                .into(),
        ));
    }
    conv.validate()?;
    if x.ncols() != conv.input_dim() {
        return Err(Error::InvalidData(format!(
            "the convolution takes {}x{} = {} pixels per image but the data has {} columns \
             (give the images without a bias column: the filter has its own bias)",
            conv.height,
            conv.width,
            conv.input_dim(),
            x.ncols()
        )));
    }
    if opts.formulation == Formulation::Threshold || opts.deep_widths.is_some() {
        return Err(Error::InvalidSetting(
            "convolutional networks are gated, relu, leaky-relu or abs networks, not threshold \
             networks"
                .into(),
        ));
    }
    // Off its position a separable neuron's mask must vanish: D_i = 0 there, so only gated and
    // ReLU networks (whose masks are D_i) stay separable; M_i = cI + (1 − c)D_i would not.
    if conv.separable && !matches!(opts.formulation, Formulation::Gated | Formulation::Relu) {
        return Err(Error::InvalidSetting(format!(
            "separable convolutional networks are gated or relu networks, not {}",
            opts.formulation.as_str()
        )));
    }
    if matches!(
        opts.solver,
        SolverChoice::Admm | SolverChoice::Cd | SolverChoice::Mkl | SolverChoice::Pdhg
    ) {
        return Err(Error::InvalidSetting(
            format!(
            "the {:?} solver does not take convolutional programs: use auto, fista (gated), al or \
             clarabel",
            opts.solver
        )
            .to_lowercase(),
        ));
    }
    Ok(())
}

/// The stacked patch matrix of a convolutional network (nK × h, docs/programs.md (M35a)), after
/// checking that it fits in the memory limit; `None` for a fully connected network.
pub(crate) fn program_patches(x: MatRef<'_, f64>, opts: &TrainOptions) -> Result<Option<Mat<f64>>> {
    let Some(conv) = &opts.convolution else {
        return Ok(None);
    };
    let need = conv.patch_memory(x.nrows());
    let limit = opts
        .memory_limit
        .unwrap_or_else(|| available_memory() / 10 * 8);
    if need > limit {
        return Err(Error::Memory(format!(
            "the patch matrix of {} images ({} patches of {} entries each) needs {:.2} GiB but the \
             limit is {:.2} GiB: use fewer images, a larger stride or a smaller filter",
            x.nrows(),
            conv.patch_count(),
            conv.patch_dim(),
            need as f64 / (1u64 << 30) as f64,
            limit as f64 / (1u64 << 30) as f64
        )));
    }
    conv.patches(x).map(Some)
}

/// Rows per sample of the operator's average pooling: the patches per image of a convolutional
/// network, 1 otherwise.
fn pooling(opts: &TrainOptions) -> usize {
    opts.convolution.map_or(1, |c| c.patch_count())
}

/// The arrangement of a deep threshold network when the options ask for one, and whether it is
/// exact (enumerated by the layer recursion) rather than sampled.
fn deep_arrangement_of(
    x: MatRef<'_, f64>,
    opts: &TrainOptions,
) -> Result<Option<(DeepArrangement, bool)>> {
    let Some(w) = &opts.deep_widths else {
        return Ok(None);
    };
    if opts.formulation != Formulation::Threshold {
        return Err(Error::InvalidSetting(format!(
            "hidden widths of deep networks apply to threshold networks, not {}",
            opts.formulation.as_str()
        )));
    }
    let sampled = |count| sampled_deep_arrangement(x, w, count, opts.seed).map(|a| (a, false));
    match opts.patterns {
        PatternSource::Exact => deep_arrangement(x, w, 100_000).map(|a| Some((a, true))),
        PatternSource::Sample { count } => sampled(count).map(Some),
        PatternSource::Auto { count } => match deep_arrangement(x, w, 10_000) {
            Ok(a) => Ok(Some((a, true))),
            Err(_) => sampled(count).map(Some),
        },
        _ => Err(Error::InvalidSetting(
            "deep threshold networks build their own patterns: use exact or sampled patterns"
                .into(),
        )),
    }
}

/// The data matrix of the convex program: X itself, or a column of ones for threshold networks,
/// whose program is the Lasso over the arrangement columns K = [D_1 1, …, D_P 1] (M29).
fn program_data(x: MatRef<'_, f64>, formulation: Formulation) -> Option<Mat<f64>> {
    (formulation == Formulation::Threshold).then(|| Mat::from_fn(x.nrows(), 1, |_, _| 1.0))
}

/// The masked operator of the program `opts` asks for: masks M_i = cI + (1 − c)D_i with c the
/// formulation's [`Formulation::mask_off_value`] (D_i itself for gated, threshold and ReLU).
fn operator<T: Real>(
    x: MatRef<'_, f64>,
    patterns: PatternSet,
    opts: &TrainOptions,
) -> MaskedOperator<T> {
    MaskedOperator::new(x, patterns, opts.block_rows, opts.threads)
        .with_off_value(opts.formulation.mask_off_value())
        .with_pooling(pooling(opts))
}

/// λ_max of the gated program over the patterns `opts` builds (M15): the zero network is optimal for
/// every λ ≥ λ_max (for ReLU this is a safe upper bound on the exact threshold (M25)).
pub fn lambda_max(x: MatRef<'_, f64>, y: &[f64], opts: &TrainOptions) -> Result<f64> {
    let targets = validate(x, y, opts)?;
    if opts.formulation == Formulation::Linear {
        return linear::linear_lambda_max(x, &targets, opts);
    }
    if opts.dictionary {
        return dictionary::dictionary_lambda_max(x, &targets, opts);
    }
    let patches = program_patches(x, opts)?;
    let x = patches.as_ref().map_or(x, |p| p.as_ref());
    let patterns = build_patterns(x, opts)?;
    let ones = program_data(x, opts.formulation);
    let px = ones.as_ref().map_or(x, |o| o.as_ref());
    let op = operator::<f64>(px, patterns, opts);
    Ok(GatedProblem::new(op, &targets, opts.loss).lambda_max())
}

/// Trains a network by solving its convex program; see [`TrainOptions`] for the choices.
pub fn train(
    x: MatRef<'_, f64>,
    y: &[f64],
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
) -> Result<Fit> {
    if opts.loss == Loss::Softmax {
        return outputs::train_classes(x, y, opts, observer, stop);
    }
    let targets = validate(x, y, opts)?;
    if opts.formulation == Formulation::Linear {
        return linear::train_linear(x, targets, opts, observer, stop);
    }
    if opts.solver == SolverChoice::Nuclear {
        return train_nuclear(x, targets, opts, observer, stop);
    }
    if opts.dictionary {
        return dictionary::train_dictionary(x, targets, opts, observer, stop);
    }
    if !opts.construction.is_lasso() {
        return train_on_lift(x, targets, opts);
    }
    let deep = deep_arrangement_of(x, opts)?;
    // The data points of the program: the rows of X, or the patches of a convolutional network.
    let patches = program_patches(x, opts)?;
    let xr = patches.as_ref().map_or(x, |p| p.as_ref());
    let patterns = match &deep {
        Some((arr, exact)) => {
            PatternSet::from_columns(x.nrows(), &arr.last_patterns(x), None, *exact)?
        }
        None => build_patterns(xr, opts)?,
    };
    check_memory(xr.nrows(), xr.ncols(), patterns.len(), opts)?;
    let start = Instant::now();
    let solver = resolve_solver(opts, xr.nrows(), xr.ncols(), patterns.len());
    let ones = program_data(xr, opts.formulation);
    let px = ones.as_ref().map_or(xr, |o| o.as_ref());
    let program = TrainOptions {
        formulation: opts.formulation.convex_program(),
        ..opts.clone()
    };
    // The structured interior point starts from the gates; without interior ones `auto` goes on
    // with the solver it would take without it.
    let interior_gates = (solver == SolverChoice::Interior)
        .then(|| interior_start(px, &patterns))
        .flatten();
    let solver = match solver {
        SolverChoice::Interior if interior_gates.is_none() && opts.solver == SolverChoice::Auto => {
            if px.nrows() * patterns.len() * px.ncols() <= 200_000 {
                SolverChoice::Clarabel
            } else {
                SolverChoice::Al
            }
        }
        s => s,
    };
    // The first-order solvers read which of them runs from the options.
    let program = TrainOptions { solver, ..program };
    let (weights, mut info) =
        match (solver, opts.precision) {
            (SolverChoice::Clarabel | SolverChoice::Pdhg, _) if opts.loss == Loss::Hinge => {
                solve_hinge(
                    px, &targets, &patterns, &program, solver, observer, stop, start,
                )?
            }
            (SolverChoice::Interior, _)
                if opts.loss != Loss::Squared || opts.formulation != Formulation::Relu =>
            {
                return Err(Error::InvalidSetting(format!(
                "--solver interior solves the ReLU program with the squared loss, not --model {} \
                 with the {} loss; use --solver clarabel, admm or al",
                opts.formulation.as_str(),
                opts.loss.as_str()
            )))
            }
            (SolverChoice::Interior, _) => match interior_gates {
                Some(gates) => solve_interior(
                    px, &targets, &patterns, &program, gates, observer, stop, start,
                )?,
                None => return Err(Error::InvalidSetting(
                    "--solver interior starts from each pattern's gate and needs gates strictly \
                     inside their cones (sampled patterns, no sample on a gate's hyperplane); use \
                     --solver clarabel or admm"
                        .into(),
                )),
            },
            (SolverChoice::Clarabel, _) => solve_clarabel(px, &targets, &patterns, &program)?,
            (SolverChoice::Admm, _) => {
                solve_admm(px, &targets, &patterns, &program, observer, stop, start)?
            }
            (SolverChoice::Cd, _) => solve_cd(&targets, &patterns, &program, observer, stop, start),
            (SolverChoice::Mkl, _) => {
                solve_mkl(px, &targets, &patterns, &program, observer, stop, start)?
            }
            (SolverChoice::Bcd, _) => {
                solve_bcd(px, &targets, &patterns, &program, observer, stop, start)?
            }
            (_, Precision::F64) => {
                solve_iterative::<f64>(px, &targets, &patterns, &program, observer, stop, start)
            }
            (_, Precision::F32) => {
                solve_mixed(px, &targets, &patterns, &program, observer, stop, start)
            }
        };
    info.seconds = start.elapsed().as_secs_f64();
    let network = match deep {
        Some((arr, _)) => Network::deep_threshold(arr, &patterns, x, weights.as_ref()),
        None => Network::from_convex(opts.formulation, weights.as_ref(), patterns.gates())
            .with_convolution(opts.convolution),
    };
    let network_objective = match network.predict(x) {
        Ok(_) => network.objective(x, &targets, opts.loss, opts.lambda)?,
        Err(_) => f64::NAN,
    };
    let lambda_max = {
        let op = operator::<f64>(px, patterns.clone(), opts);
        GatedProblem::new(op, &targets, opts.loss).lambda_max()
    };
    let kernel_weights =
        (solver == SolverChoice::Mkl).then(|| KernelWeights::of(&weights, x.nrows(), opts.lambda));
    let certificate = Certificate {
        kernel_weights,
        ..Certificate::new(
            info,
            CertificateFacts {
                opts,
                samples: x.nrows(),
                network: &network,
                network_objective,
                n_patterns: patterns.len(),
                exhaustive: patterns.is_exhaustive(),
                lambda_max,
                normalization: normalization(opts.formulation, opts.loss),
                solver: format!("{solver:?}").to_lowercase(),
            },
        )
    };
    Ok(Fit {
        patterns,
        weights,
        network,
        certificate,
        targets,
        dictionary: None,
        chains: None,
    })
}

/// The Pi and Svm constructions (see [`TrainOptions::construction`]): the closed form of the
/// complete-arrangement program on the random lift, certified by rank Z = n and the dual of
/// [`crate::program::threshold::complete_arrangement_dual`]. The fit's patterns and weights are the
/// staircase columns and coefficients.
fn train_on_lift(x: MatRef<'_, f64>, targets: Vec<f64>, opts: &TrainOptions) -> Result<Fit> {
    if opts.formulation != Formulation::Threshold || opts.deep_widths.is_some() {
        return Err(Error::InvalidSetting(format!(
            "the {} construction builds two-layer threshold networks on a random lift: use \
             --model threshold without --hidden-widths",
            opts.construction.as_str()
        )));
    }
    let start = Instant::now();
    let lift = LiftOptions {
        construction: opts.construction,
        width: opts.lift_width,
        seed: opts.seed,
        tol: opts.tol,
    };
    let c = construct_on_lift(x, &targets, opts.loss, opts.lambda, &lift)?;
    let n = x.nrows();
    let patterns = PatternSet::from_columns(n, &c.patterns, None, true)?;
    let weights = Mat::from_fn(1, patterns.len(), |_, i| {
        let col = patterns.column(i);
        c.patterns
            .iter()
            .position(|h| *h == col)
            .map_or(0.0, |k| c.coefficients[k])
    });
    let network = Network::lifted_threshold(c.layers, &c.coefficients);
    let network_objective = network.objective(x, &targets, opts.loss, opts.lambda)?;
    // λ_max of the complete arrangement: ‖Kᵀ∇L(0)‖_∞ over all 0/1 columns = max(Σ g₊, Σ g₋).
    let mut g = vec![0.0; n];
    opts.loss.gradient(&vec![0.0; n], &targets, &mut g);
    let lambda_max = g
        .iter()
        .map(|v| v.max(0.0))
        .sum::<f64>()
        .max(g.iter().map(|v| (-v).max(0.0)).sum());
    let gap = (c.objective - c.dual).max(0.0);
    let info = Info {
        status: final_status(c.status, gap, c.objective, opts.tol, 0.0),
        objective: c.objective,
        dual_objective: c.dual,
        gap,
        violation: 0.0,
        iterations: c.iterations,
        outer_iterations: 0,
        forward_calls: 0,
        adjoint_calls: 0,
        seconds: start.elapsed().as_secs_f64(),
    };
    let certificate = Certificate::new(
        info,
        CertificateFacts {
            opts,
            samples: n,
            network: &network,
            network_objective,
            n_patterns: patterns.len(),
            exhaustive: true,
            lambda_max,
            normalization: normalization(opts.formulation, opts.loss),
            solver: format!("closed_form+{}", opts.construction.as_str()),
        },
    );
    Ok(Fit {
        patterns,
        weights,
        network,
        certificate,
        targets,
        dictionary: None,
        chains: None,
    })
}

/// The nuclear-norm heuristic (docs/programs.md (M37)): the network it finds, balanced neuron by
/// neuron (§2 rescaling: same predictions, least weight decay), its (M5) objective at λ, and a
/// certificate that certifies nothing (see [`HeuristicReport`]). The fit's patterns are those of
/// the network's neurons on the training data and its weights the convex point [V | W] they give
/// (v = α u for α > 0, w = |α| u otherwise, summed over neurons sharing a pattern).
fn train_nuclear(
    x: MatRef<'_, f64>,
    targets: Vec<f64>,
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
) -> Result<Fit> {
    let settings = NuclearSettings {
        tol: opts.tol,
        seed: opts.seed,
        time_limit: opts.time_limit,
        memory_limit: opts
            .memory_limit
            .unwrap_or_else(|| available_memory() / 10 * 8),
        ..opts.nuclear.clone()
    };
    let start = Instant::now();
    let run = nuclear_heuristic(x, &targets, &settings, observer, stop)?;
    let network = Network::relu_balanced(run.hidden.as_ref(), &run.output);
    let d = x.ncols();
    let gates = Mat::from_fn(d, network.width(), |k, j| network.hidden[j][k]);
    let patterns = PatternSet::from_gates(x, gates.as_ref(), false)?;
    let p = patterns.len();
    let mut weights = Mat::zeros(d, 2 * p);
    for (u, &a) in network.hidden.iter().zip(&network.output) {
        let col = crate::features::pattern_of_gate(x, u);
        if let Some(i) = (0..p).find(|&i| patterns.column(i) == col) {
            let c = if a > 0.0 { i } else { p + i };
            for k in 0..d {
                weights[(k, c)] += a.abs() * u[k];
            }
        }
    }
    let objective = network.objective(x, &targets, opts.loss, opts.lambda)?;
    let info = Info {
        status: run.status,
        objective,
        dual_objective: f64::NAN,
        gap: f64::NAN,
        violation: 0.0,
        iterations: run.ipm_iterations,
        outer_iterations: run.history.len(),
        forward_calls: 0,
        adjoint_calls: 0,
        seconds: start.elapsed().as_secs_f64(),
    };
    let heuristic = HeuristicReport {
        guarantee: NO_GUARANTEE.into(),
        method: "nuclear-norm heuristic with sequential convex relaxation (M37)".into(),
        fit_residual: run.residual,
        residual_history: run.history.iter().map(|r| r.network_residual).collect(),
        best_relaxation: run.best_relaxation,
        width: settings.width,
        gamma: settings.gamma,
        init: settings.init.as_str().into(),
    };
    // The gap is NaN, and so is the relative gap.
    let certificate = Certificate {
        heuristic: Some(heuristic),
        ..Certificate::new(
            info,
            CertificateFacts {
                opts,
                samples: x.nrows(),
                network: &network,
                network_objective: objective,
                n_patterns: p,
                exhaustive: false,
                lambda_max: f64::NAN,
                normalization: normalization(opts.formulation, opts.loss),
                solver: "nuclear".into(),
            },
        )
    };
    Ok(Fit {
        patterns,
        weights,
        network,
        certificate,
        targets,
        dictionary: None,
        chains: None,
    })
}

fn to_f64_mat<T: Real>(m: &Mat<T>) -> Mat<f64> {
    Mat::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)].as_f64())
}

/// Runs FISTA (gated) or the augmented Lagrangian (ReLU) in precision `T`; the final certificate is
/// recomputed in f64.
fn solve_iterative<T: Real>(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> (Mat<f64>, Info) {
    let op = operator::<T>(x, patterns.clone(), opts);
    let fista_settings = fista_settings(opts);
    let (d, p) = (x.ncols(), patterns.len());
    let (weights, status, iterations, outer, violation, mult, fwd, adj, solver_dual) =
        match opts.formulation {
            // (A linear network is trained by model::linear; over one all-ones pattern its fully
            // connected program is this one.)
            Formulation::Gated | Formulation::Threshold | Formulation::Linear => {
                let mut gated = GatedProblem::<T>::new(op, y, opts.loss);
                let run = FistaRun::new(&fista_settings, observer, stop, start);
                let u0 = initial::<T>(opts, d, p);
                let out = if opts.solver == SolverChoice::Anderson {
                    anderson(&mut gated, opts.lambda, u0, run)
                } else {
                    fista(&mut gated, opts.lambda, u0, run)
                };
                let calls = (gated.op.forward_calls, gated.op.adjoint_calls);
                let dual = out.dual.unwrap_or(f64::NEG_INFINITY);
                (
                    to_f64_mat(&out.u),
                    out.status,
                    out.iterations,
                    0,
                    0.0,
                    None,
                    calls.0,
                    calls.1,
                    dual,
                )
            }
            Formulation::Relu | Formulation::LeakyRelu { .. } | Formulation::Abs => {
                // δ₀ balances the penalty's curvature δ‖X‖² against the datafit's (≈ ‖A‖²/n ≤ ‖X‖_F²/n).
                let delta0 = 0.3 * opts.loss.curvature() / x.squared_norm_l2().max(1e-300);
                let mut prob = ReluAlProblem::new(op, y, opts.loss, delta0);
                let settings = AlSettings {
                    tol: opts.tol,
                    constraint_tol: opts.tol,
                    max_inner_total: opts.max_iter,
                    time_limit: opts.time_limit,
                    check_every: opts.report_every.max(1),
                    ..AlSettings::default()
                };
                let u0 = initial::<T>(opts, d, 2 * p);
                let centered = restoration_gates(x, patterns, opts);
                let out = augmented_lagrangian(
                    &mut prob,
                    opts.lambda,
                    u0,
                    centered.as_ref().map(|g| g.as_ref()).or(patterns.gates()),
                    &settings,
                    observer,
                    stop,
                    start,
                );
                let calls = (prob.op.forward_calls, prob.op.adjoint_calls);
                let mult = Some(to_f64_mat(&out.mult));
                (
                    to_f64_mat(&out.u),
                    out.status,
                    out.iterations,
                    out.outer,
                    out.violation,
                    mult,
                    calls.0,
                    calls.1,
                    out.dual,
                )
            }
        };
    let mult = mult.as_ref().map(|m| m.as_ref());
    let cert = certify_f64(x, y, patterns, opts, weights.as_ref(), mult);
    let (weights, (objective, dual, violation_now)) =
        maybe_prune(x, y, patterns, opts, weights, mult, cert);
    // Every dual value the solver certified along the way is a valid lower bound (for f32 runs it
    // was computed in f32, so only the f64 one is used).
    let dual = if T::NAME == "f64" {
        dual.max(solver_dual)
    } else {
        dual
    };
    let gap = (objective - dual).max(0.0);
    let status = final_status(status, gap, objective, opts.tol, violation_now);
    let info = Info {
        status,
        objective,
        dual_objective: dual,
        gap,
        violation: violation.max(violation_now),
        iterations,
        outer_iterations: outer,
        forward_calls: fwd,
        adjoint_calls: adj,
        seconds: 0.0,
    };
    (weights, info)
}

/// PDHG iterations allowed per unit of [`TrainOptions::max_iter`]: one costs the products of one
/// FISTA iteration but gains less (first order, nonsmooth), so a solve needs several times more.
pub const PDHG_ITERATIONS_PER_ITERATION: usize = 10;

/// A solve of the hinge-loss threshold Lasso before its f64 certificate.
struct HingeSolve {
    z: Mat<f64>,
    dual: f64,
    status: Status,
    iterations: usize,
    outer: usize,
}

/// The hinge-loss threshold Lasso (in f64 whatever the precision asked): by restarted PDHG (at
/// most [`PDHG_ITERATIONS_PER_ITERATION`] × `max_iter` iterations) or by column generation with
/// the interior-point backend; pruned and certified in f64, with the solver's dual bound (which
/// the primal-induced one rarely beats).
#[allow(clippy::too_many_arguments)]
fn solve_hinge(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    opts: &TrainOptions,
    solver: SolverChoice,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> Result<(Mat<f64>, Info)> {
    let mut op = MaskedOperator::<f64>::new(x, patterns.clone(), opts.block_rows, opts.threads);
    let run = if solver == SolverChoice::Pdhg {
        let settings = PdhgSettings {
            tol: opts.tol,
            max_iter: opts.max_iter.saturating_mul(PDHG_ITERATIONS_PER_ITERATION),
            check_every: opts.report_every.max(1),
            time_limit: opts.time_limit,
        };
        let z0 = initial::<f64>(opts, 1, patterns.len());
        let out = hinge_lasso_pdhg(
            &mut op,
            y,
            opts.lambda,
            z0,
            &settings,
            observer,
            stop,
            start,
        );
        HingeSolve {
            z: out.z,
            dual: out.dual,
            status: out.status,
            iterations: out.iterations,
            outer: 0,
        }
    } else {
        let settings = WorkingSetSettings {
            tol: opts.tol,
            time_limit: opts.time_limit,
            ..WorkingSetSettings::default()
        };
        let out =
            hinge_lasso_working_set(&mut op, y, opts.lambda, &settings, observer, stop, start)?;
        HingeSolve {
            z: out.z,
            dual: out.dual,
            status: out.status,
            iterations: out.iterations,
            outer: out.rounds,
        }
    };
    Ok(certified_run(
        (x, y, patterns, opts),
        SolverRun {
            weights: run.z,
            mult: None,
            dual: run.dual,
            status: run.status,
            iterations: run.iterations,
            outer: run.outer,
            calls: (op.forward_calls, op.adjoint_calls),
            dense: false,
        },
    ))
}

/// What an f64 solver hands over for certification.
struct SolverRun {
    weights: Mat<f64>,
    /// Cone multipliers (ReLU programs).
    mult: Option<Mat<f64>>,
    /// The best dual bound the solver certified.
    dual: f64,
    status: Status,
    iterations: usize,
    outer: usize,
    /// Forward and adjoint products.
    calls: (usize, usize),
    /// Whether the weights are an interior point's, not exactly sparse: then [`sparsify`] zeroes
    /// the negligible groups first.
    dense: bool,
}

/// Certifies a solver's weights in f64, prunes them, and assembles the [`Info`]; the gap uses the
/// better of the solver's own dual bound and the f64 one.
fn certified_run(
    (x, y, patterns, opts): (MatRef<'_, f64>, &[f64], &PatternSet, &TrainOptions),
    run: SolverRun,
) -> (Mat<f64>, Info) {
    let mult = run.mult.as_ref().map(|m| m.as_ref());
    let (weights, cert) = if run.dense {
        sparsify(x, y, patterns, opts, run.weights, mult)
    } else {
        let cert = certify_f64(x, y, patterns, opts, run.weights.as_ref(), mult);
        (run.weights, cert)
    };
    let (weights, (objective, dual, violation)) =
        maybe_prune(x, y, patterns, opts, weights, mult, cert);
    let (weights, (objective, dual, violation)) =
        no_worse_than_zero(x, y, patterns, opts, weights, (objective, dual, violation));
    let dual = dual.max(run.dual.min(objective));
    let gap = (objective - dual).max(0.0);
    let info = Info {
        status: final_status(run.status, gap, objective, opts.tol, violation),
        objective,
        dual_objective: dual,
        gap,
        violation,
        iterations: run.iterations,
        outer_iterations: run.outer,
        forward_calls: run.calls.0,
        adjoint_calls: run.calls.1,
        seconds: 0.0,
    };
    (weights, info)
}

/// The zero network is feasible for every program: weights whose certified objective exceeds
/// its value (a solver stopped far from the optimum, whose iterate the restoration (M10) had to
/// shift a long way) are replaced by zeros. `cert` is (objective, dual bound, violation) of
/// `weights`; both dual bounds are valid, so the larger is kept.
fn no_worse_than_zero(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    opts: &TrainOptions,
    weights: Mat<f64>,
    cert: (f64, f64, f64),
) -> (Mat<f64>, (f64, f64, f64)) {
    let zero = Mat::<f64>::zeros(weights.nrows(), weights.ncols());
    let at_zero = certify_f64(x, y, patterns, opts, zero.as_ref(), None);
    if at_zero.0 < cert.0 {
        (zero, (at_zero.0, at_zero.1.max(cert.1), at_zero.2))
    } else {
        (weights, (cert.0, cert.1.max(at_zero.1), cert.2))
    }
}

/// Interior gates for the feasibility restoration (M10): the analytic centers of the patterns'
/// cones, whose margins to the samples' hyperplanes are as even as the cones allow (a raw gate
/// with a sample just off its hyperplane needs a huge shift). `None` without interior gates, or
/// with pooling (the cones then live on the patch rows).
fn restoration_gates(
    x: MatRef<'_, f64>,
    patterns: &PatternSet,
    opts: &TrainOptions,
) -> Option<Mat<f64>> {
    if opts.convolution.is_some() {
        return None;
    }
    let start = interior_start(x, patterns)?;
    Some(analytic_centers(x, patterns, start.as_ref()))
}

/// ADMM on the ReLU program (f64), its solution pruned and certified like the other iterative solvers'.
fn solve_admm(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> Result<(Mat<f64>, Info)> {
    let mut op = operator::<f64>(x, patterns.clone(), opts);
    let defaults = AdmmSettings::default();
    let settings = AdmmSettings {
        tol: opts.tol,
        max_iter: opts.max_iter,
        // Certificates are costly here (restorations and multiplier steps): at most every 50 steps.
        check_every: opts.report_every.max(defaults.check_every),
        time_limit: opts.time_limit,
        ..defaults
    };
    let u0 = initial::<f64>(opts, x.ncols(), 2 * patterns.len());
    let centered = restoration_gates(x, patterns, opts);
    let out = admm(
        &mut op,
        y,
        opts.loss,
        opts.lambda,
        u0,
        centered.as_ref().map(|g| g.as_ref()).or(patterns.gates()),
        &settings,
        observer,
        stop,
        start,
    )?;
    Ok(certified_run(
        (x, y, patterns, opts),
        SolverRun {
            weights: out.u,
            mult: Some(out.mult),
            dual: out.dual,
            status: out.status,
            iterations: out.iterations,
            outer: 0,
            calls: (op.forward_calls, op.adjoint_calls),
            dense: false,
        },
    ))
}

/// Coordinate descent on the squared-loss threshold Lasso (always f64), certified like the others.
fn solve_cd(
    y: &[f64],
    patterns: &PatternSet,
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> (Mat<f64>, Info) {
    let p = patterns.len();
    let settings = CdSettings {
        tol: opts.tol,
        max_sweeps: opts.max_iter,
        time_limit: opts.time_limit,
        ..CdSettings::default()
    };
    let z0 = initial::<f64>(opts, 1, p);
    let warm = z0
        .row(0)
        .iter()
        .any(|&v| v != 0.0)
        .then(|| z0.row(0).iter().copied().collect::<Vec<_>>());
    let mut coords = GramCoordinates::new(patterns, y);
    let out = lasso_cd(
        &mut coords,
        opts.lambda,
        warm.as_deref(),
        &settings,
        observer,
        stop,
        start,
    );
    let ones = Mat::from_fn(y.len(), 1, |_, _| 1.0);
    certified_run(
        (ones.as_ref(), y, patterns, opts),
        SolverRun {
            weights: Mat::from_fn(1, p, |_, j| out.z[j]),
            mult: None,
            dual: out.dual,
            status: out.status,
            iterations: out.sweeps,
            outer: out.full_sweeps,
            calls: (0, 0),
            dense: false,
        },
    )
}

/// Block coordinate descent on the Gram form (M57) of the squared-loss gated program (f64),
/// certified through the operator like the other iterative solvers.
fn solve_bcd(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> Result<(Mat<f64>, Info)> {
    if opts.loss != Loss::Squared || opts.formulation != Formulation::Gated {
        return Err(Error::InvalidSetting(format!(
            "block coordinate descent (bcd) solves the squared-loss gated program, not the {} {} \
             program: use fista",
            opts.loss.as_str(),
            opts.formulation.as_str()
        )));
    }
    let form = GramForm::new(x, y, patterns, pooling(opts))?;
    let settings = BcdSettings {
        tol: opts.tol,
        max_sweeps: opts.max_iter,
        time_limit: opts.time_limit,
        ..BcdSettings::default()
    };
    let u0 = opts
        .warm_start
        .as_ref()
        .filter(|w| w.nrows() == x.ncols() && w.ncols() == patterns.len());
    let out = group_bcd(
        &form,
        opts.lambda,
        u0.map(|w| w.as_ref()),
        &settings,
        observer,
        stop,
        start,
    );
    Ok(certified_run(
        (x, y, patterns, opts),
        SolverRun {
            weights: out.u,
            mult: None,
            dual: out.dual,
            status: out.status,
            iterations: out.sweeps,
            outer: 0,
            calls: (0, 0),
            dense: false,
        },
    ))
}

/// The reweighting (MKL) solver on the gated program (f64): its iterate keeps every group at a
/// floored weight, so it is sparsified like an interior-point solution, then pruned and certified
/// in f64 with the better of the solver's dual bound (M13) and the f64 one.
fn solve_mkl(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> Result<(Mat<f64>, Info)> {
    let mut op = operator::<f64>(x, patterns.clone(), opts);
    let settings = MklSettings {
        tol: opts.tol,
        max_iter: opts.max_iter,
        report_every: opts.report_every.max(1),
        time_limit: opts.time_limit,
        ..MklSettings::default()
    };
    // A warm start's group norms are the kernel weights it stands for (M45).
    let eta0: Option<Vec<f64>> = opts
        .warm_start
        .as_ref()
        .filter(|w| w.nrows() == x.ncols() && w.ncols() == patterns.len())
        .map(|w| {
            (0..w.ncols())
                .map(|c| crate::program::penalty::column_norm(w.col_as_slice(c)))
                .collect()
        });
    let out = mkl_reweighting(
        &mut op,
        y,
        MklPenalty::Lambda(opts.lambda),
        eta0.as_deref(),
        &settings,
        observer,
        stop,
        start,
    )?;
    Ok(certified_run(
        (x, y, patterns, opts),
        SolverRun {
            weights: out.u,
            mult: None,
            dual: out.dual,
            status: out.status,
            iterations: out.iterations,
            outer: 0,
            calls: (op.forward_calls, op.adjoint_calls),
            dense: true,
        },
    ))
}

/// The interior-point backend, its solution sparsified, pruned and certified in f64.
fn solve_clarabel(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    opts: &TrainOptions,
) -> Result<(Mat<f64>, Info)> {
    let settings = ExactSettings {
        time_limit: opts.time_limit,
        pooling: pooling(opts),
        ..ExactSettings::default()
    };
    let sol = solve_exact(
        x,
        y,
        patterns,
        opts.formulation,
        opts.loss,
        opts.lambda,
        &settings,
    )?;
    let mult = sol.cone_multipliers.as_ref().map(|m| m.as_ref());
    let (weights, cert) = sparsify(x, y, patterns, opts, sol.weights.clone(), mult);
    let (weights, (objective, dual, violation)) =
        maybe_prune(x, y, patterns, opts, weights, mult, cert);
    let mut info = sol.info;
    let dual = dual.max(info.dual_objective.min(objective));
    info.gap = (objective - dual).max(0.0);
    info.objective = objective;
    info.dual_objective = dual;
    info.violation = violation;
    Ok((weights, info))
}

/// The structured interior point on the squared-loss ReLU program (M61)–(M62), its solution made
/// sparse and certified like the exact backend's (the cone multipliers are the interior point's).
#[allow(clippy::too_many_arguments)]
fn solve_interior(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    opts: &TrainOptions,
    gates: Mat<f64>,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> Result<(Mat<f64>, Info)> {
    let settings = InteriorSettings {
        tol: opts.tol,
        max_iter: opts.max_iter.min(500),
        time_limit: opts.time_limit,
        pooling: pooling(opts),
        system: NewtonSystem::Auto,
        correctors: corrector_count(
            x.nrows(),
            x.nrows() / pooling(opts),
            x.ncols(),
            patterns.len(),
            NewtonSystem::Auto,
        ),
        working_rows: opts.working_rows,
        mixed_precision: true,
        sample: 0,
        seed: opts.seed,
    };
    let out = relu_interior(
        x,
        y,
        patterns,
        opts.lambda,
        gates.as_ref(),
        &settings,
        observer,
        stop,
        start,
    )?;
    Ok(certified_run(
        (x, y, patterns, opts),
        SolverRun {
            weights: out.u,
            mult: Some(out.mult),
            dual: f64::NEG_INFINITY,
            // A factorization that fails near the optimum ends the solve as a stall; the
            // certificate then grades it.
            status: match out.status {
                Status::NumericalError => Status::Stalled,
                s => s,
            },
            iterations: out.iterations,
            outer: 0,
            calls: (0, 0),
            dense: true,
        },
    ))
}

/// Objective, dual bound and cone violation of convex weights, in f64 (M13 for gated, M9 for ReLU
/// with the multipliers `mult` when given).
fn certify_f64(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    opts: &TrainOptions,
    weights: MatRef<'_, f64>,
    mult: Option<MatRef<'_, f64>>,
) -> (f64, f64, f64) {
    use crate::solver::fista::Smooth;
    let mut op = operator::<f64>(x, patterns.clone(), opts);
    match opts.formulation {
        Formulation::Gated | Formulation::Threshold | Formulation::Linear => {
            let mut prob = GatedProblem::new(op, y, opts.loss);
            let mut cache = vec![0.0; y.len()];
            prob.forward(weights, &mut cache);
            let mut grad = Mat::zeros(weights.nrows(), weights.ncols());
            prob.gradient(&cache, grad.as_mut());
            let obj =
                prob.value(&cache) + opts.lambda * crate::program::penalty::group_norm_sum(weights);
            let dual = prob
                .dual_bound(&cache, grad.as_ref(), opts.lambda)
                .unwrap_or(f64::NEG_INFINITY);
            (obj, dual, 0.0)
        }
        Formulation::Relu | Formulation::LeakyRelu { .. } | Formulation::Abs => {
            let c = certificate(&mut op, y, opts.loss, opts.lambda, weights, mult);
            (c.objective, c.dual, c.violation)
        }
    }
}

/// Interior-point solutions are not exactly sparse: groups whose norm is below a small fraction
/// (1e-3 down to 1e-6) of the largest are set to zero (zero is always feasible), with the largest
/// fraction that does not raise the certified objective by more than a tenth of the tolerance.
/// Returns the weights and their f64 certificate.
fn sparsify(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    opts: &TrainOptions,
    weights: Mat<f64>,
    mult: Option<MatRef<'_, f64>>,
) -> (Mat<f64>, (f64, f64, f64)) {
    let norms: Vec<f64> = (0..weights.ncols())
        .map(|c| crate::program::penalty::column_norm(weights.col_as_slice(c)))
        .collect();
    let top = norms.iter().cloned().fold(0.0, f64::max);
    let before = certify_f64(x, y, patterns, opts, weights.as_ref(), mult);
    // The largest relative threshold whose zeroing costs at most a tenth of the tolerance.
    for threshold in [1e-3, 1e-4, 1e-5, 1e-6] {
        let mut pruned = weights.clone();
        for (c, &nrm) in norms.iter().enumerate() {
            if nrm <= threshold * top {
                pruned.col_as_slice_mut(c).fill(0.0);
            }
        }
        let after = certify_f64(x, y, patterns, opts, pruned.as_ref(), mult);
        if after.0 <= before.0 + 0.1 * opts.tol * before.0.abs() && after.2 <= before.2.max(0.0) {
            let dual = after.1.max(before.1);
            return (pruned, (after.0, dual, after.2));
        }
    }
    (weights, before)
}

/// Prunes `weights` to at most n + 1 nonzero blocks when [`TrainOptions::prune`] is set and they have
/// more (see [`prune_blocks`]), and recertifies them in f64. `cert` is the f64 certificate
/// (objective, dual bound, violation) of `weights`. The pruned weights are kept when their objective
/// is within 1e-9 (relative) of the unpruned one and they are no less feasible than the criterion of
/// [`final_status`] requires; both dual bounds are valid, so the larger one is kept.
fn maybe_prune(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    opts: &TrainOptions,
    weights: Mat<f64>,
    mult: Option<MatRef<'_, f64>>,
    cert: (f64, f64, f64),
) -> (Mat<f64>, (f64, f64, f64)) {
    let active = (0..weights.ncols())
        .filter(|&c| weights.col_as_slice(c).iter().any(|&v| v != 0.0))
        .count();
    // Pruning works on unpooled predictions: convolutional solutions are kept as they are.
    if !opts.prune || opts.convolution.is_some() || active <= x.nrows() + 1 || !cert.0.is_finite() {
        return (weights, cert);
    }
    let pruned = prune_blocks(x, patterns, opts.formulation, &weights);
    let after = certify_f64(x, y, patterns, opts, pruned.as_ref(), mult);
    let (obj, viol) = (cert.0, cert.2);
    let objective_kept = after.0 <= obj + 1e-9 * obj.abs();
    let feasible = after.2 <= viol || after.2 <= 1e-9 * obj.abs().max(1.0);
    if objective_kept && feasible {
        (pruned, (after.0, after.1.max(cert.1), after.2))
    } else {
        (weights, cert)
    }
}

/// Single precision down to a relative gap of 1e-4 (or `tol` if looser), then double precision
/// warm-started from there for the last digits; iterations and products add up.
fn solve_mixed(
    x: MatRef<'_, f64>,
    y: &[f64],
    patterns: &PatternSet,
    opts: &TrainOptions,
    observer: &mut dyn Observe,
    stop: &StopFlag,
    start: Instant,
) -> (Mat<f64>, Info) {
    let single = TrainOptions {
        tol: opts.tol.max(SINGLE_PRECISION_TOL),
        ..opts.clone()
    };
    let (w, first) = solve_iterative::<f32>(x, y, patterns, &single, observer, stop, start);
    let done = first.gap <= opts.tol * first.objective.abs()
        || matches!(
            first.status,
            Status::Interrupted | Status::TimeLimit | Status::NumericalError
        )
        || first.iterations >= opts.max_iter;
    if done {
        return (w, first);
    }
    let double = TrainOptions {
        warm_start: Some(w),
        max_iter: opts.max_iter - first.iterations,
        ..opts.clone()
    };
    let (w, mut info) = solve_iterative::<f64>(x, y, patterns, &double, observer, stop, start);
    info.iterations += first.iterations;
    info.outer_iterations += first.outer_iterations;
    info.forward_calls += first.forward_calls;
    info.adjoint_calls += first.adjoint_calls;
    if first.dual_objective > info.dual_objective {
        info.dual_objective = first.dual_objective;
        info.gap = (info.objective - info.dual_objective).max(0.0);
    }
    (w, info)
}

/// The relative gap that single precision can certify reliably.
const SINGLE_PRECISION_TOL: f64 = 1e-4;

/// The warm start if it has the right shape, else zeros.
fn initial<T: Real>(opts: &TrainOptions, d: usize, q: usize) -> Mat<T> {
    match &opts.warm_start {
        Some(w) if w.nrows() == d && w.ncols() == q => Mat::from_fn(d, q, |i, j| T::lit(w[(i, j)])),
        _ => Mat::zeros(d, q),
    }
}

/// Re-grades a solver's status against the f64 certificate.
fn final_status(status: Status, gap: f64, objective: f64, tol: f64, violation: f64) -> Status {
    let rel = gap / objective.abs().max(1e-12);
    let feasible = violation <= 1e-9 * objective.abs().max(1.0);
    match status {
        Status::Converged if rel <= tol && feasible => Status::Converged,
        Status::Converged | Status::MaxIterations | Status::Stalled
            if rel <= 1e3 * tol && feasible =>
        {
            if rel <= tol {
                Status::Converged
            } else {
                Status::ReducedAccuracy
            }
        }
        Status::Converged => Status::ReducedAccuracy,
        s => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::solver::Silent;

    fn problem(n: usize, d: usize, seed: u64) -> (Mat<f64>, Vec<f64>) {
        let mut r = Rng::new(seed);
        let x = Mat::from_fn(n, d, |_, k| if k + 1 == d { 1.0 } else { r.normal() });
        let y = (0..n)
            .map(|i| (x[(i, 0)] - 0.5 * x[(i, 1)]).max(0.0) - 0.3 * x[(i, 0)] + 0.1 * r.normal())
            .collect();
        (x, y)
    }

    #[test]
    fn gated_and_relu_converge_with_matching_network_objective() {
        let (x, y) = problem(60, 3, 1);
        for formulation in [Formulation::Gated, Formulation::Relu] {
            for loss in [Loss::Squared, Loss::Logistic] {
                let yy: Vec<f64> = match loss {
                    Loss::Squared => y.clone(),
                    _ => y.iter().map(|&v| if v > 0.1 { 1.0 } else { 0.0 }).collect(),
                };
                let opts = TrainOptions {
                    formulation,
                    loss,
                    lambda: 1e-3,
                    patterns: PatternSource::Sample { count: 20 },
                    tol: if formulation == Formulation::Gated {
                        1e-8
                    } else {
                        1e-6
                    },
                    max_iter: 50_000,
                    ..TrainOptions::default()
                };
                let fit = train(x.as_ref(), &yy, &opts, &mut Silent, &StopFlag::new()).unwrap();
                let c = &fit.certificate;
                eprintln!(
                    "{formulation:?} {loss:?}: {:?} obj {} gap {} viol {} it {} net {}",
                    c.info.status,
                    c.info.objective,
                    c.info.gap,
                    c.info.violation,
                    c.info.iterations,
                    c.network_objective
                );
                assert_eq!(c.info.status, Status::Converged);
                assert!(c.relative_gap <= opts.tol);
                assert!((c.network_objective - c.info.objective).abs() <= 1e-8 * c.info.objective);
            }
        }
    }

    /// Weights worse than the zero network are replaced by zeros (with the zero network's
    /// objective); better ones are kept, with the larger dual bound.
    #[test]
    fn certified_weights_are_never_worse_than_zero() {
        let (x, y) = problem(40, 3, 2);
        let patterns = crate::features::sample::sample_patterns(x.as_ref(), 10, 1).unwrap();
        let p = patterns.len();
        for formulation in [Formulation::Gated, Formulation::Relu] {
            let opts = TrainOptions {
                formulation,
                lambda: 1e-3,
                ..TrainOptions::default()
            };
            let q = if formulation == Formulation::Relu {
                2 * p
            } else {
                p
            };
            let zero_value = 0.5 * y.iter().map(|v| v * v).sum::<f64>() / y.len() as f64;
            let huge = Mat::from_fn(3, q, |a, c| 50.0 * ((a + 2 * c) % 5) as f64 - 100.0);
            let cert = certify_f64(x.as_ref(), &y, &patterns, &opts, huge.as_ref(), None);
            assert!(cert.0 > zero_value);
            let (w, (objective, dual, violation)) =
                no_worse_than_zero(x.as_ref(), &y, &patterns, &opts, huge, cert);
            assert!(w.col_iter().all(|c| c.iter().all(|&v| v == 0.0)));
            assert!(
                (objective - zero_value).abs() <= 1e-12 * zero_value,
                "{formulation:?}"
            );
            assert!(dual <= objective && violation == 0.0);
            // A solution of the program is kept.
            let fit_opts = TrainOptions {
                patterns: PatternSource::Sample { count: 10 },
                seed: 1,
                ..opts.clone()
            };
            let fit = train(x.as_ref(), &y, &fit_opts, &mut Silent, &StopFlag::new()).unwrap();
            assert!(fit.certificate.info.objective < zero_value);
        }
    }

    #[test]
    fn pruned_fit_has_at_most_n_plus_one_neurons_and_the_same_objective() {
        let n = 12;
        let mut r = Rng::new(4);
        let x = Mat::from_fn(n, 2, |i, k| {
            if k == 1 {
                1.0
            } else {
                -1.0 + 2.0 * i as f64 / (n - 1) as f64
            }
        });
        let y: Vec<f64> = (0..n)
            .map(|i| (3.0 * x[(i, 0)]).sin() + 0.3 * r.normal())
            .collect();
        for formulation in [Formulation::Relu, Formulation::Gated] {
            let opts = TrainOptions {
                formulation,
                lambda: 1e-5,
                patterns: PatternSource::Exact,
                solver: SolverChoice::Clarabel,
                ..TrainOptions::default()
            };
            let unpruned = TrainOptions {
                prune: false,
                ..opts.clone()
            };
            let full = train(x.as_ref(), &y, &unpruned, &mut Silent, &StopFlag::new()).unwrap();
            let fit = train(x.as_ref(), &y, &opts, &mut Silent, &StopFlag::new()).unwrap();
            let (a, b) = (&full.certificate, &fit.certificate);
            eprintln!(
                "{formulation:?}: width {} -> {}, objective {} -> {}, network {}, gap {:.1e}",
                full.network.width(),
                fit.network.width(),
                a.info.objective,
                b.info.objective,
                b.network_objective,
                b.relative_gap
            );
            assert!(full.network.width() > n + 1, "test setup: nothing to prune");
            assert!(fit.network.width() <= n + 1);
            assert_eq!(b.active_neurons, fit.network.width());
            let obj = b.info.objective;
            assert!((b.network_objective - obj).abs() <= 1e-9 * obj);
            assert!((a.info.objective - obj).abs() <= 1e-9 * obj);
            assert!(b.info.dual_objective <= obj && b.relative_gap <= 1e-6);
        }
    }
}
