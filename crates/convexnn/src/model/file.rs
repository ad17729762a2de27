//! The model file: a JSON document holding everything needed to predict and to repeat the run —
//! settings (including the seed), preprocessing, the network (with its gates), the certificate, and
//! the format version. Written atomically.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Certificate, Precision, SolverChoice};
use crate::data::atomic::write_atomic;
use crate::data::Standardizer;
use crate::error::{Error, Result};
use crate::network::construct::Construction;
use crate::network::Network;
use crate::program::outputs::OutputPenalty;
use crate::program::{Formulation, Loss};

/// The format name stored in every model file.
pub const FORMAT: &str = "convexnn-model";
/// The current format version.
pub const VERSION: u32 = 1;

/// The settings a model was trained with (enough to repeat the run on the same data).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Settings {
    /// Program.
    pub formulation: Formulation,
    /// Loss.
    pub loss: Loss,
    /// λ (normalized, see [`crate::program`]).
    pub lambda: f64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Where the patterns came from, e.g. "sample:100", "exact", "gates", "masks".
    pub patterns: String,
    /// Solver.
    pub solver: SolverChoice,
    /// Tolerance.
    pub tol: f64,
    /// Working precision.
    pub precision: Precision,
    /// Threshold networks: how the network was built (absent for the default Lasso).
    #[serde(default, skip_serializing_if = "Construction::is_lasso")]
    pub construction: Construction,
    /// Whether the network was trained by the 1-D dictionary Lasso (absent: false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dictionary: bool,
    /// Deep narrow 1-D dictionary models: the depth L (absent for depth 2 and other models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<usize>,
    /// Vector-output models: the block norm of the program (absent for one output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<OutputPenalty>,
}

/// How raw inputs are turned into the network's inputs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Preprocessing {
    /// Standardization learned on the training data, applied first.
    pub standardizer: Option<Standardizer>,
    /// Whether a ones column is appended after standardization.
    pub bias: bool,
    /// Names of the raw input columns.
    pub feature_names: Vec<String>,
    /// For classifiers: the raw labels mapped to −1 and +1.
    pub class_labels: Option<[f64; 2]>,
    /// Vector regression: the names of the c target columns (absent for one target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_names: Option<Vec<String>>,
}

/// A trained model as saved on disk.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// Format version ([`VERSION`]).
    pub version: u32,
    /// Version of convexnn that wrote it.
    pub convexnn_version: String,
    /// Training settings.
    pub settings: Settings,
    /// Input preprocessing.
    pub preprocessing: Preprocessing,
    /// The network.
    pub network: Network,
    /// The optimality certificate of the fit.
    pub certificate: Certificate,
}

impl ModelFile {
    /// The model file of a fit trained with `opts` on targets `y`. `patterns` names where the
    /// patterns came from; for the logistic loss `class_labels` are the raw labels mapped to −1 and
    /// +1 (by default {0, 1} or {−1, +1}, read off `y`).
    pub fn from_fit(
        fit: &super::Fit,
        opts: &super::TrainOptions,
        patterns: &str,
        mut preprocessing: Preprocessing,
        class_labels: Option<[f64; 2]>,
        y: &[f64],
    ) -> Self {
        if opts.loss.is_classification() {
            preprocessing.class_labels = class_labels.or_else(|| {
                let zero_one = y.iter().all(|&v| v == 0.0 || v == 1.0);
                Some(if zero_one { [0.0, 1.0] } else { [-1.0, 1.0] })
            });
        }
        ModelFile {
            format: FORMAT.into(),
            version: VERSION,
            convexnn_version: env!("CARGO_PKG_VERSION").into(),
            settings: Settings {
                formulation: opts.formulation,
                loss: opts.loss,
                lambda: opts.lambda,
                seed: opts.seed,
                patterns: patterns.into(),
                solver: opts.solver,
                tol: opts.tol,
                precision: opts.precision,
                construction: opts.construction,
                dictionary: opts.dictionary,
                depth: (opts.dictionary && opts.dictionary_depth > 2)
                    .then_some(opts.dictionary_depth),
                outputs: fit.certificate.outputs.as_ref().map(|o| o.penalty),
            },
            preprocessing,
            network: fit.network.clone(),
            certificate: fit.certificate.clone(),
        }
    }

    /// Writes the model as JSON, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| Error::InvalidData(format!("cannot serialize the model: {e}")))?;
        write_atomic(path, |w| w.write_all(text.as_bytes()))
    }

    /// Reads a model, checking its format and version.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            Error::parse(
                path,
                format!("line {}, column {}", e.line(), e.column()),
                e.to_string(),
            )
        })?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(Error::parse(
                path,
                "field \"format\"",
                format!("not a {FORMAT} file"),
            ));
        }
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != VERSION as u64 {
            return Err(Error::parse(
                path,
                "field \"version\"",
                format!(
                    "model format version {version} is not supported (this build reads {VERSION})"
                ),
            ));
        }
        serde_json::from_value(value).map_err(|e| Error::parse(path, "model fields", e.to_string()))
    }

    /// Applies the preprocessing to raw inputs (n × raw d) and returns the network's inputs.
    pub fn prepare_inputs(&self, x: &faer::Mat<f64>) -> Result<faer::Mat<f64>> {
        let raw_d = self.preprocessing.feature_names.len();
        if x.ncols() != raw_d {
            return Err(Error::InvalidData(format!(
                "the model was trained on {raw_d} input columns ({}) but the data has {}",
                self.preprocessing.feature_names.join(", "),
                x.ncols()
            )));
        }
        let mut x = x.clone();
        if let Some(s) = &self.preprocessing.standardizer {
            s.apply(&mut x);
        }
        if self.preprocessing.bias {
            let (n, d) = (x.nrows(), x.ncols());
            x = faer::Mat::from_fn(n, d + 1, |i, k| if k < d { x[(i, k)] } else { 1.0 });
        }
        Ok(x)
    }

    /// Whether the model predicts c > 1 real values per row (vector regression), rather than one
    /// value or a class label.
    pub fn is_vector_regression(&self) -> bool {
        self.network.outputs > 1 && self.classes().is_none()
    }

    /// The names of the outputs of a vector-regression model: the training targets' names, else
    /// `y0, y1, …`.
    pub fn output_names(&self) -> Vec<String> {
        match &self.preprocessing.target_names {
            Some(names) if names.len() == self.network.outputs => names.clone(),
            _ => (0..self.network.outputs).map(|k| format!("y{k}")).collect(),
        }
    }

    /// The class of each output of a multi-class model (softmax, or one-hot squared loss).
    pub fn classes(&self) -> Option<&[f64]> {
        self.certificate
            .outputs
            .as_ref()
            .and_then(|o| o.classes.as_deref())
    }

    /// The n × c outputs of the network on raw inputs (scores, before any class decision).
    pub fn predict_outputs(&self, x: &faer::Mat<f64>) -> Result<faer::Mat<f64>> {
        self.network
            .predict_outputs(self.prepare_inputs(x)?.as_ref())
    }

    /// Predictions on raw inputs: real values for the squared loss, class labels for the logistic
    /// and hinge losses and for multi-class models (the class of the largest output). A model with
    /// several real-valued outputs predicts through [`ModelFile::predict_outputs`].
    pub fn predict(&self, x: &faer::Mat<f64>) -> Result<Vec<f64>> {
        if let Some(classes) = self.classes() {
            let scores = self.predict_outputs(x)?;
            return Ok((0..scores.nrows())
                .map(|j| {
                    let best = (0..scores.ncols())
                        .max_by(|&a, &b| scores[(j, a)].total_cmp(&scores[(j, b)]))
                        .unwrap_or(0);
                    classes.get(best).copied().unwrap_or(f64::NAN)
                })
                .collect());
        }
        if self.network.outputs > 1 {
            return Err(Error::InvalidSetting(format!(
                "this model has {} outputs: predict them with predict_outputs",
                self.network.outputs
            )));
        }
        let z = self.network.predict(self.prepare_inputs(x)?.as_ref())?;
        Ok(
            match (self.settings.loss, self.preprocessing.class_labels) {
                (Loss::Logistic | Loss::Hinge, Some([neg, pos])) => z
                    .iter()
                    .map(|&v| if v >= 0.0 { pos } else { neg })
                    .collect(),
                (Loss::Logistic | Loss::Hinge, None) => z
                    .iter()
                    .map(|&v| if v >= 0.0 { 1.0 } else { -1.0 })
                    .collect(),
                (Loss::Squared | Loss::Softmax, _) => z,
            },
        )
    }
}
