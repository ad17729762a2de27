//! Python bindings of convexnn: the extension module `convexnn._convexnn`.
//!
//! The module is thin: it converts NumPy arrays to the library's matrices, maps option strings to
//! [`TrainOptions`], runs [`train`] (or the regularization path) with the GIL released, and converts
//! the results back. The scikit-learn estimators live in the pure-Python package `convexnn`.

use std::path::PathBuf;

use convexnn::data::Dataset;
use convexnn::faer::Mat;
use convexnn::features::patches::Convolution;
use convexnn::model::file::{ModelFile, Preprocessing, FORMAT, VERSION};
use convexnn::model::outputs::{train_classes, train_outputs};
use convexnn::model::{
    lambda_max, train, Certificate, Fit, PatternSource, Precision, SolverChoice, TrainOptions,
};
use convexnn::network::{narrow, Network};
use convexnn::program::outputs::OutputPenalty;
use convexnn::program::{Formulation, Loss};
use convexnn::solver::nuclear::{NuclearInit, NuclearSettings};
use convexnn::solver::path::regularization_path;
use convexnn::solver::{IterRecord, Observe, StopFlag};
use convexnn::Error;
use numpy::ndarray::{Array1, Array2};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::{PyMemoryError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// A 2-D float array of either precision, read without copying.
#[derive(FromPyObject)]
enum Matrix<'py> {
    F64(PyReadonlyArray2<'py, f64>),
    F32(PyReadonlyArray2<'py, f32>),
}

impl Matrix<'_> {
    /// The array as a column-major f64 matrix (any memory order or strides).
    fn to_mat(&self) -> Mat<f64> {
        match self {
            Matrix::F64(a) => {
                let v = a.as_array();
                Mat::from_fn(v.nrows(), v.ncols(), |i, j| v[[i, j]])
            }
            Matrix::F32(a) => {
                let v = a.as_array();
                Mat::from_fn(v.nrows(), v.ncols(), |i, j| f64::from(v[[i, j]]))
            }
        }
    }
}

/// A 1-D float array of either precision.
#[derive(FromPyObject)]
enum Vector<'py> {
    F64(PyReadonlyArray1<'py, f64>),
    F32(PyReadonlyArray1<'py, f32>),
}

impl Vector<'_> {
    fn to_vec(&self) -> Vec<f64> {
        match self {
            Vector::F64(a) => a.as_array().iter().copied().collect(),
            Vector::F32(a) => a.as_array().iter().map(|&v| f64::from(v)).collect(),
        }
    }
}

/// Targets: a 1-D array (n), or a 2-D one (n × c; c > 1 columns train vector regression).
#[derive(FromPyObject)]
enum Targets<'py> {
    Vector(Vector<'py>),
    Matrix(Matrix<'py>),
}

impl Targets<'_> {
    /// The targets as an n × c matrix (n × 1 for a vector).
    fn to_mat(&self) -> Mat<f64> {
        match self {
            Targets::Vector(v) => {
                let v = v.to_vec();
                Mat::from_fn(v.len(), 1, |i, _| v[i])
            }
            Targets::Matrix(m) => m.to_mat(),
        }
    }
}

/// Library errors as Python exceptions: bad data or settings → `ValueError`, memory budget →
/// `MemoryError`, files → `OSError`, anything else → `RuntimeError`.
fn to_py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match e {
        Error::InvalidData(_) | Error::InvalidSetting(_) | Error::Parse { .. } => {
            PyValueError::new_err(msg)
        }
        Error::Memory(_) => PyMemoryError::new_err(msg),
        Error::Io { .. } => PyOSError::new_err(msg),
        _ => PyRuntimeError::new_err(msg),
    }
}

/// The program named `s`; `slope` is required by, and only accepted with, "leaky_relu".
fn parse_formulation(s: &str, slope: Option<f64>) -> PyResult<Formulation> {
    let f = match (s, slope) {
        ("leaky_relu", Some(slope)) => Formulation::LeakyRelu { slope },
        ("leaky_relu", None) => {
            return Err(PyValueError::new_err(
                "formulation \"leaky_relu\" needs slope=a with a in [0, 1)",
            ))
        }
        ("gated" | "relu" | "abs" | "threshold" | "linear", Some(_)) => {
            return Err(PyValueError::new_err(format!(
                "slope applies to formulation \"leaky_relu\" only, not {s:?}"
            )))
        }
        ("gated", None) => Formulation::Gated,
        ("relu", None) => Formulation::Relu,
        ("abs", None) => Formulation::Abs,
        ("threshold", None) => Formulation::Threshold,
        ("linear", None) => Formulation::Linear,
        _ => {
            return Err(PyValueError::new_err(format!(
                "formulation must be \"gated\", \"relu\", \"leaky_relu\", \"abs\", \"threshold\" \
                 or \"linear\", got {s:?}"
            )))
        }
    };
    f.validate().map_err(to_py_err)?;
    Ok(f)
}

/// The slope of a leaky ReLU formulation, else None.
fn slope_of(f: Formulation) -> Option<f64> {
    match f {
        Formulation::LeakyRelu { slope } => Some(slope),
        _ => None,
    }
}

fn parse_loss(s: &str) -> PyResult<Loss> {
    match s {
        "squared" => Ok(Loss::Squared),
        "logistic" => Ok(Loss::Logistic),
        "hinge" => Ok(Loss::Hinge),
        "softmax" => Ok(Loss::Softmax),
        _ => Err(PyValueError::new_err(format!(
            "loss must be \"squared\", \"logistic\", \"hinge\" or \"softmax\", got {s:?}"
        ))),
    }
}

fn parse_solver(s: &str) -> PyResult<SolverChoice> {
    match s {
        "auto" => Ok(SolverChoice::Auto),
        "fista" => Ok(SolverChoice::Fista),
        "anderson" => Ok(SolverChoice::Anderson),
        "al" => Ok(SolverChoice::Al),
        "admm" => Ok(SolverChoice::Admm),
        "clarabel" => Ok(SolverChoice::Clarabel),
        "interior" => Ok(SolverChoice::Interior),
        "pdhg" => Ok(SolverChoice::Pdhg),
        "cd" => Ok(SolverChoice::Cd),
        "mkl" => Ok(SolverChoice::Mkl),
        "nuclear" => Ok(SolverChoice::Nuclear),
        "bcd" => Ok(SolverChoice::Bcd),
        _ => Err(PyValueError::new_err(format!(
            "solver must be one of \"auto\", \"fista\", \"anderson\", \"al\", \"admm\", \"clarabel\", \"interior\", \"pdhg\", \"cd\", \"mkl\", \"nuclear\", \"bcd\", got {s:?}"
        ))),
    }
}

fn parse_precision(s: &str) -> PyResult<Precision> {
    match s {
        "f64" | "float64" => Ok(Precision::F64),
        "f32" | "float32" => Ok(Precision::F32),
        _ => Err(PyValueError::new_err(format!(
            "precision must be \"f64\" or \"f32\", got {s:?}"
        ))),
    }
}

/// Forwards progress to an optional Python callback and turns a pending signal (Ctrl-C) or an
/// exception raised by the callback into a stop request; the exception is kept to be re-raised.
struct PyObserver {
    callback: Option<Py<PyAny>>,
    error: Option<PyErr>,
}

impl Observe for PyObserver {
    fn on_iter(&mut self, r: &IterRecord) -> bool {
        Python::attach(|py| {
            if let Err(e) = py.check_signals() {
                self.error = Some(e);
                return false;
            }
            let Some(cb) = &self.callback else {
                return true;
            };
            let record = PyDict::new(py);
            let items: [(&str, f64); 4] = [
                ("objective", r.objective),
                ("gap", r.gap),
                ("violation", r.violation),
                ("seconds", r.seconds),
            ];
            let filled = record
                .set_item("iteration", r.iteration)
                .and_then(|_| record.set_item("outer", r.outer))
                .and_then(|_| items.iter().try_for_each(|(k, v)| record.set_item(*k, *v)));
            match filled.and_then(|_| cb.call1(py, (record,))) {
                Ok(ret) => !ret.bind(py).is(pyo3::types::PyBool::new(py, false)),
                Err(e) => {
                    self.error = Some(e);
                    false
                }
            }
        })
    }
}

fn mat_to_py<'py>(py: Python<'py>, m: &Mat<f64>) -> Bound<'py, PyArray2<f64>> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)]).into_pyarray(py)
}

/// Columns (one vector per neuron) as a d × m array.
fn columns_to_py<'py>(py: Python<'py>, cols: &[Vec<f64>], d: usize) -> Bound<'py, PyArray2<f64>> {
    Array2::from_shape_fn((d, cols.len()), |(i, j)| cols[j][i]).into_pyarray(py)
}

/// A measure that does not exist (NaN, e.g. the gap of a heuristic) as None.
fn measure(v: f64) -> Option<f64> {
    (!v.is_nan()).then_some(v)
}

fn certificate_dict<'py>(py: Python<'py>, c: &Certificate) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("objective", c.info.objective)?;
    d.set_item("dual_objective", measure(c.info.dual_objective))?;
    d.set_item("gap", measure(c.info.gap))?;
    d.set_item("relative_gap", measure(c.relative_gap))?;
    d.set_item("status", c.info.status.as_str())?;
    d.set_item("iterations", c.info.iterations)?;
    d.set_item("outer_iterations", c.info.outer_iterations)?;
    d.set_item("solve_seconds", c.info.seconds)?;
    d.set_item("cone_violation", c.info.violation)?;
    d.set_item("n_patterns", c.n_patterns)?;
    d.set_item("active_neurons", c.active_neurons)?;
    d.set_item("exhaustive", c.exhaustive)?;
    d.set_item("lambda", c.lambda)?;
    d.set_item("lambda_unnormalized", c.lambda_unnormalized)?;
    d.set_item("lambda_max", measure(c.lambda_max))?;
    d.set_item("network_objective", c.network_objective)?;
    d.set_item("normalization", &c.normalization)?;
    d.set_item("solver", &c.solver)?;
    d.set_item("formulation", c.formulation.as_str())?;
    d.set_item("slope", slope_of(c.formulation))?;
    d.set_item("depth", c.depth)?;
    d.set_item("heuristic", c.heuristic.is_some())?;
    if let Some(h) = &c.heuristic {
        d.set_item("guarantee", &h.guarantee)?;
        d.set_item("method", &h.method)?;
        d.set_item("fit_residual", h.fit_residual)?;
        d.set_item("residual_history", h.residual_history.clone())?;
        d.set_item("best_relaxation", h.best_relaxation)?;
        d.set_item("width", h.width)?;
        d.set_item("gamma", h.gamma)?;
        d.set_item("init", &h.init)?;
    }
    let kernel = match &c.kernel_weights {
        Some(k) => {
            let kd = PyDict::new(py);
            kd.set_item("beta", k.beta)?;
            kd.set_item("patterns", k.patterns.clone())?;
            kd.set_item("weights", k.weights.clone())?;
            kd.into_any()
        }
        None => py.None().into_bound(py),
    };
    d.set_item("kernel_weights", kernel)?;
    let outputs = match &c.outputs {
        Some(o) => {
            let od = PyDict::new(py);
            od.set_item("outputs", o.outputs)?;
            od.set_item("penalty", o.penalty.as_str())?;
            od.set_item("meaning", &o.meaning)?;
            od.set_item("classes", o.classes.clone())?;
            od.into_any()
        }
        None => py.None().into_bound(py),
    };
    d.set_item("outputs", outputs)?;
    Ok(d)
}

/// Entries of a hidden weight vector: the network inputs `d`, or for a convolutional network the
/// patch size (the filter's entries and its bias).
fn weight_dim(net: &Network, d: usize) -> usize {
    net.conv.map_or(d, |c| c.patch_dim())
}

/// Output weights per neuron when a neuron has several: the c outputs of a multi-output network, or
/// the K patch positions of a linear convolutional network (whose neuron j weighs position k by
/// α_{jk}). None for one output weight per neuron.
fn output_columns(net: &Network) -> Option<usize> {
    match (net.kind, &net.conv) {
        (Formulation::Linear, Some(c)) => Some(c.patch_count().max(1)),
        _ if net.outputs > 1 => Some(net.outputs),
        _ => None,
    }
}

/// The output weights: a vector (m), or m × c for a network with c output weights per neuron (see
/// [`output_columns`]; the library stores them neuron-major, entry j·c + k).
fn output_weights_to_py<'py>(py: Python<'py>, net: &Network) -> Bound<'py, PyAny> {
    match output_columns(net) {
        Some(c) => {
            let m = Mat::from_fn(net.output.len() / c, c, |j, k| net.output[j * c + k]);
            mat_to_py(py, &m).into_any()
        }
        None => Array1::from_vec(net.output.clone())
            .into_pyarray(py)
            .into_any(),
    }
}

fn network_items(py: Python<'_>, net: &Network, d: usize, out: &Bound<'_, PyDict>) -> PyResult<()> {
    let d = weight_dim(net, d);
    out.set_item("hidden_weights", columns_to_py(py, &net.hidden, d))?;
    out.set_item("output_weights", output_weights_to_py(py, net))?;
    match &net.gates {
        Some(g) => out.set_item("gates", columns_to_py(py, g, d))?,
        None => out.set_item("gates", py.None())?,
    }
    out.set_item(
        "hidden_biases",
        net.bias
            .as_ref()
            .map(|b| Array1::from_vec(b.clone()).into_pyarray(py)),
    )?;
    out.set_item("intercept", net.intercept)?;
    out.set_item("chains", chains_to_py(py, net)?)?;
    Ok(())
}

/// The depth of a network: the layers of a deep narrow network's chains or of a deep threshold
/// network's hidden layers, plus one; 2 for a two-layer network.
fn network_depth(net: &Network) -> usize {
    match (&net.chains, &net.deep) {
        (Some(units), _) => narrow::depth(units),
        (None, Some(deep)) => deep.layers.layers.len() + 1,
        (None, None) => 2,
    }
}

/// The units of a deep narrow network as a list of (weights, biases) pairs of arrays of length
/// L − 1 (one entry per layer), else None.
fn chains_to_py<'py>(py: Python<'py>, net: &Network) -> PyResult<Bound<'py, PyAny>> {
    let Some(units) = &net.chains else {
        return Ok(py.None().into_bound(py));
    };
    let list = PyList::empty(py);
    for u in units {
        let w = Array1::from_vec(u.weights.clone()).into_pyarray(py);
        let b = Array1::from_vec(u.biases.clone()).into_pyarray(py);
        list.append((w, b))?;
    }
    Ok(list.into_any())
}

/// A trained model in the command-line tool's file format: load, save, predict.
#[pyclass(module = "convexnn._convexnn", name = "Model")]
struct Model {
    file: ModelFile,
}

impl Model {
    fn inputs(&self, x: &Matrix<'_>) -> PyResult<Mat<f64>> {
        self.file.prepare_inputs(&x.to_mat()).map_err(to_py_err)
    }

    /// Entries of a hidden weight vector: the raw features plus the bias column, or for a
    /// convolutional network the patch size.
    fn input_dim(&self) -> usize {
        weight_dim(
            &self.file.network,
            self.file.preprocessing.feature_names.len() + usize::from(self.file.preprocessing.bias),
        )
    }
}

#[pymethods]
impl Model {
    /// Parses a model from the JSON text of a model file.
    #[staticmethod]
    fn from_json(text: &str) -> PyResult<Self> {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| PyValueError::new_err(format!("not a model file: {e}")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(PyValueError::new_err(format!("not a {FORMAT} file")));
        }
        let version = value.get("version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != u64::from(VERSION) {
            return Err(PyValueError::new_err(format!(
                "model format version {version} is not supported (this build reads {VERSION})"
            )));
        }
        let file = serde_json::from_value(value)
            .map_err(|e| PyValueError::new_err(format!("model fields: {e}")))?;
        Ok(Model { file })
    }

    /// Reads a model file (as written by `convexnn train --out` or [`Model::save`]).
    #[staticmethod]
    fn load(path: PathBuf) -> PyResult<Self> {
        Ok(Model {
            file: ModelFile::load(&path).map_err(to_py_err)?,
        })
    }

    /// Writes the model file (JSON), atomically.
    fn save(&self, path: PathBuf) -> PyResult<()> {
        self.file.save(&path).map_err(to_py_err)
    }

    /// The model file as JSON text.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(&self.file)
            .map_err(|e| PyRuntimeError::new_err(format!("cannot serialize the model: {e}")))
    }

    /// Raw network outputs on raw inputs (the model's preprocessing is applied first): shape (n,),
    /// or (n, c) for a model with c > 1 outputs (one column per class of a multi-class model).
    fn decision_function<'py>(
        &self,
        py: Python<'py>,
        x: Matrix<'py>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inputs = self.inputs(&x)?;
        let z = self
            .file
            .network
            .predict_outputs(inputs.as_ref())
            .map_err(to_py_err)?;
        Ok(if z.ncols() > 1 {
            mat_to_py(py, &z).into_any()
        } else {
            z.col_as_slice(0).to_vec().into_pyarray(py).into_any()
        })
    }

    /// Predictions on raw inputs: values for the squared loss (shape (n, c) for a vector-regression
    /// model with c > 1 outputs), class labels for the logistic loss and multi-class models.
    fn predict<'py>(&self, py: Python<'py>, x: Matrix<'py>) -> PyResult<Bound<'py, PyAny>> {
        if self.file.is_vector_regression() {
            let z = self.file.predict_outputs(&x.to_mat()).map_err(to_py_err)?;
            return Ok(mat_to_py(py, &z).into_any());
        }
        let p = self.file.predict(&x.to_mat()).map_err(to_py_err)?;
        Ok(p.into_pyarray(py).into_any())
    }

    /// Number of outputs c of the network (1 for one output; one per class of a multi-class model).
    #[getter]
    fn n_outputs(&self) -> usize {
        self.file.network.outputs
    }

    /// The names of the outputs of a vector-regression model (the training targets' names, else
    /// y0, y1, ...), else None.
    #[getter]
    fn target_names(&self) -> Option<Vec<String>> {
        self.file
            .is_vector_regression()
            .then(|| self.file.output_names())
    }

    /// The block norm ("separate", "group" or "nuclear") of a model with c > 1 outputs, else None.
    #[getter]
    fn outputs(&self) -> Option<&'static str> {
        self.file.settings.outputs.map(|o| o.as_str())
    }

    /// Hidden weights, (inputs × neurons); for a convolutional network (patch size × filters). A
    /// deep narrow network keeps its layers in [`Model::chains`]: its hidden weights are empty
    /// (inputs × 0).
    #[getter]
    fn hidden_weights<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f64>> {
        columns_to_py(py, &self.file.network.hidden, self.input_dim())
    }

    /// Output weights: one per neuron (m); m × c for a model with c > 1 outputs; m × K for a linear
    /// convolutional network (one weight per neuron and patch position).
    #[getter]
    fn output_weights<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        output_weights_to_py(py, &self.file.network)
    }

    /// Gates (inputs × neurons) of a gated model, else None.
    #[getter]
    fn gates<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray2<f64>>> {
        let d = self.input_dim();
        self.file
            .network
            .gates
            .as_ref()
            .map(|g| columns_to_py(py, g, d))
    }

    /// Unpenalized neuron biases b_j of a 1-D dictionary model (neuron j sees xᵀu_j + b_j), else
    /// None.
    #[getter]
    fn hidden_biases<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.file
            .network
            .bias
            .as_ref()
            .map(|b| Array1::from_vec(b.clone()).into_pyarray(py))
    }

    /// Unpenalized output intercept ξ of a 1-D dictionary model, else None.
    #[getter]
    fn intercept(&self) -> Option<f64> {
        self.file.network.intercept
    }

    /// Whether the model was trained by the 1-D dictionary Lasso.
    #[getter]
    fn dictionary(&self) -> bool {
        self.file.settings.dictionary
    }

    /// The depth L of the network: 2 for a two-layer network; for a deep narrow ReLU network (a
    /// 1-D dictionary fit with depth 3 or 4) one more than the layers of its chains; for a deep
    /// threshold network one more than its hidden layers.
    #[getter]
    fn depth(&self) -> usize {
        match (&self.file.network.chains, self.file.certificate.depth) {
            // A deep narrow fit whose network is zero (λ ≥ λ_max) has no chains to count.
            (Some(units), Some(l)) if units.is_empty() => l,
            _ => network_depth(&self.file.network),
        }
    }

    /// The units of a deep narrow ReLU network, f(x) = Σ_j α_j h_j(x) + ξ with h_1 = x and
    /// h_{l+1} = (w_l h_l + b_l)₊: a list with one (weights, biases) pair of arrays of length L − 1
    /// per unit j (α_j in `output_weights`, ξ in `intercept`); None for other networks.
    #[getter]
    fn chains<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        chains_to_py(py, &self.file.network)
    }

    /// The patch geometry `HxW:FHxFW:STRIDE` of a convolutional network, else None.
    #[getter]
    fn conv(&self) -> Option<String> {
        self.file.network.conv.as_ref().map(Convolution::spec)
    }

    /// Amplitudes s_j of a threshold model's activations s·1[z ≥ 0], else None.
    #[getter]
    fn amplitude<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f64>>> {
        self.file
            .network
            .amplitude
            .as_ref()
            .map(|a| Array1::from_vec(a.clone()).into_pyarray(py))
    }

    /// The optimality certificate as a dict.
    #[getter]
    fn certificate<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        certificate_dict(py, &self.file.certificate)
    }

    /// "gated", "relu", "leaky_relu", "abs", "threshold" or "linear".
    #[getter]
    fn formulation(&self) -> &'static str {
        self.file.settings.formulation.as_str()
    }

    /// The slope a of a leaky ReLU model's activation max(z, a z), else None.
    #[getter]
    fn slope(&self) -> Option<f64> {
        slope_of(self.file.settings.formulation)
    }

    /// "squared" or "logistic".
    #[getter]
    fn loss(&self) -> &'static str {
        self.file.settings.loss.as_str()
    }

    /// Number of raw input features.
    #[getter]
    fn n_features_in(&self) -> usize {
        self.file.preprocessing.feature_names.len()
    }

    /// The raw labels mapped to −1 and +1 (classifiers), else None.
    #[getter]
    fn class_labels(&self) -> Option<(f64, f64)> {
        self.file.preprocessing.class_labels.map(|[a, b]| (a, b))
    }

    /// Pickling support: a model is rebuilt from its JSON text.
    fn __reduce__<'py>(&self, py: Python<'py>) -> PyResult<(Bound<'py, PyAny>, (String,))> {
        let ctor = py.get_type::<Model>().getattr("from_json")?;
        Ok((ctor, (self.to_json()?,)))
    }

    fn __repr__(&self) -> String {
        let c = &self.file.certificate;
        let certificate = match &c.heuristic {
            Some(h) => h.guarantee.clone(),
            None => format!("relative gap {:.1e}", c.relative_gap),
        };
        let kind = match &self.file.network.chains {
            Some(_) => format!("deep narrow relu (depth {})", self.depth()),
            None => self.file.settings.formulation.as_str().to_string(),
        };
        format!(
            "Model({kind} network, {} loss, {} neurons, objective {:.6e}, {certificate}, {})",
            self.file.settings.loss.as_str(),
            self.file.network.width(),
            c.info.objective,
            c.info.status
        )
    }
}

/// Everything a fit needs besides the data, as given from Python.
struct FitArgs {
    opts: TrainOptions,
    patterns_name: String,
    standardize: bool,
    bias: bool,
    class_labels: Option<[f64; 2]>,
}

/// Validated data with the preprocessing applied, and the preprocessing to save.
fn prepare(
    x: Mat<f64>,
    y: Vec<f64>,
    feature_names: Option<Vec<String>>,
    args: &FitArgs,
) -> PyResult<(Mat<f64>, Vec<f64>, Preprocessing)> {
    let data = Dataset::new(x, y, feature_names).map_err(to_py_err)?;
    let (data, pre) = preprocess(data, args);
    Ok((data.x, data.y, pre))
}

/// Applies the preprocessing to the features of validated data (its x becomes the network's
/// inputs; the targets are untouched); returns it with the preprocessing to save.
fn preprocess(mut data: Dataset, args: &FitArgs) -> (Dataset, Preprocessing) {
    let names = data.feature_names.clone();
    let standardizer = args.standardize.then(|| data.standardize());
    if args.bias {
        data.add_bias();
    }
    let pre = Preprocessing {
        standardizer,
        bias: args.bias,
        feature_names: names,
        class_labels: None,
        target_names: data.targets.as_ref().map(|t| t.names.clone()),
    };
    (data, pre)
}

/// The model file of a fit, as the command-line tool writes it.
fn model_file(fit: &Fit, args: &FitArgs, pre: Preprocessing, y: &[f64]) -> ModelFile {
    ModelFile::from_fit(
        fit,
        &args.opts,
        &args.patterns_name,
        pre,
        args.class_labels,
        y,
    )
}

#[allow(clippy::too_many_arguments)]
fn fit_args(
    formulation: &str,
    slope: Option<f64>,
    loss: &str,
    lam: f64,
    n_patterns: Option<usize>,
    gates: Option<Mat<f64>>,
    exact: bool,
    seed: u64,
    solver: &str,
    tol: f64,
    max_iter: usize,
    precision: &str,
    time_limit: Option<f64>,
    standardize: bool,
    bias: bool,
    class_labels: Option<(f64, f64)>,
    report_every: usize,
    threads: usize,
    nuclear: NuclearSettings,
    dictionary: bool,
    depth: usize,
    outputs: &str,
    conv: Option<&str>,
) -> PyResult<FitArgs> {
    let convolution = conv
        .map(Convolution::parse)
        .transpose()
        .map_err(to_py_err)?;
    let outputs = OutputPenalty::parse(outputs).ok_or_else(|| {
        PyValueError::new_err(format!(
            "outputs must be \"separate\", \"group\" or \"nuclear\", got {outputs:?}"
        ))
    })?;
    let formulation = parse_formulation(formulation, slope)?;
    let linear = formulation == Formulation::Linear;
    if dictionary && (gates.is_some() || exact) {
        return Err(PyValueError::new_err(
            "dictionary=True builds its own columns (knots at the data points): drop gates and exact",
        ));
    }
    if linear && gates.is_some() {
        return Err(PyValueError::new_err(
            "a linear network (formulation \"linear\") has no activation patterns: drop gates",
        ));
    }
    let (patterns, patterns_name) = match (gates, exact, n_patterns) {
        _ if dictionary => (
            PatternSource::Auto { count: 0 },
            match depth {
                2 => "dictionary:1d".to_string(),
                l => format!("dictionary:1d:depth{l}"),
            },
        ),
        // The linear program has no patterns: n_patterns (whose default is set) and exact are
        // not used.
        _ if linear => (PatternSource::Auto { count: 0 }, "none".to_string()),
        (Some(_), true, _) => {
            return Err(PyValueError::new_err(
                "gates and exact=True are mutually exclusive",
            ))
        }
        (Some(g), false, _) => (PatternSource::Gates(g), "gates".to_string()),
        (None, true, _) => (PatternSource::Exact, "exact".to_string()),
        (None, false, Some(p)) => (PatternSource::Sample { count: p }, format!("sample:{p}")),
        (None, false, None) => (PatternSource::Auto { count: 100 }, "auto:100".to_string()),
    };
    let opts = TrainOptions {
        formulation,
        loss: parse_loss(loss)?,
        lambda: lam,
        patterns,
        seed,
        solver: parse_solver(solver)?,
        tol,
        max_iter,
        time_limit,
        precision: parse_precision(precision)?,
        threads,
        report_every: report_every.max(1),
        nuclear,
        dictionary,
        dictionary_depth: depth,
        outputs,
        convolution,
        ..TrainOptions::default()
    };
    Ok(FitArgs {
        opts,
        patterns_name,
        standardize,
        // The dictionary's neurons have their own free biases and every filter of a convolutional
        // network has its own bias: no ones column.
        bias: bias && !dictionary && convolution.is_none(),
        class_labels: class_labels.map(|(a, b)| [a, b]),
    })
}

/// The settings of `solver="nuclear"` (its tolerance, seed and time limit are the fit's own).
fn nuclear_settings(
    width: usize,
    gamma: f64,
    relaxations: usize,
    init: &str,
) -> PyResult<NuclearSettings> {
    let init = match init {
        "zero" => NuclearInit::Zero,
        "random" => NuclearInit::Random,
        _ => {
            return Err(PyValueError::new_err(format!(
                "nuclear_init must be \"zero\" or \"random\", got {init:?}"
            )))
        }
    };
    Ok(NuclearSettings {
        width,
        gamma,
        max_relaxations: relaxations,
        init,
        ..NuclearSettings::default()
    })
}

/// Checks that user gates act on the network inputs (raw features plus the bias column), or for a
/// convolutional network on the patches (the filter's entries plus its bias).
fn check_gates(args: &FitArgs, d: usize) -> PyResult<()> {
    if let PatternSource::Gates(g) = &args.opts.patterns {
        if let Some(c) = &args.opts.convolution {
            if g.nrows() != c.patch_dim() {
                let filter = format!(
                    "the {}x{} filter's entries{}",
                    c.filter_height,
                    c.filter_width,
                    if c.bias { " plus its bias" } else { "" }
                );
                let what = if c.separable {
                    format!(
                        "{} positions times {} entries ({filter}), each patch at its position",
                        c.patch_count(),
                        c.filter_dim()
                    )
                } else {
                    filter
                };
                return Err(PyValueError::new_err(format!(
                    "gates of a convolutional network act on patches: they must have shape \
                     (h, P) with h = {} ({what}), got ({}, {})",
                    c.patch_dim(),
                    g.nrows(),
                    g.ncols()
                )));
            }
        } else if g.nrows() != d {
            return Err(PyValueError::new_err(format!(
                "gates must have shape (d, P) with d = {d} (the input features{}), got ({}, {})",
                if args.bias {
                    " plus the bias column"
                } else {
                    ""
                },
                g.nrows(),
                g.ncols()
            )));
        }
        if g.ncols() == 0 {
            return Err(PyValueError::new_err("gates must have at least one column"));
        }
    }
    Ok(())
}

/// Trains a network on `x` (n × d, float64 or float32, any memory order) and `y` (n, or n × c).
///
/// - `formulation`: "gated", "relu", "leaky_relu" (with `slope` a in [0, 1), activation
///   max(z, a z)), "abs", "threshold" or "linear"; `loss`: "squared" or "logistic" (labels 0/1 or
///   −1/+1); `lam`: λ of the normalized objective (1/(2n))‖ŷ − y‖² + λ Σ group norms.
/// - Patterns: `gates` (d × P on the network inputs), else `exact=True` (every pattern), else
///   `n_patterns` sampled gates seeded by `seed` (`None`: exact where feasible, else 100 sampled).
/// - `solver`: "auto", "fista", "anderson", "al", "admm", "clarabel", "interior", "pdhg", "cd", "mkl",
///   "nuclear" or "bcd";
///   `tol`, `max_iter`, `time_limit` (seconds), `precision` ("f64" or "f32"), `threads` (0 = all
///   cores).
/// - `solver="interior"` (formulation "relu", squared loss): the structured interior point.
///   `working_rows` (default 10; 0 = every row) is the number of rows per column of X in each
///   block's starting working set of cone rows; the other rows only bound the steps and join when
///   a step would cross them. The optimum is the same; it changes the path and the time.
/// - `solver="bcd"` (gated, squared loss): block coordinate descent on the Gram form of the
///   program, f64; "auto" picks it for small gated convolutional programs.
/// - `formulation="linear"` (identity activation, docs/programs.md §3f; squared or logistic loss,
///   solvers "auto"/"fista" or "clarabel" (squared loss), f64): the program min L(Xw) + λ‖w‖₂,
///   exact for linear networks of any width. It has no activation patterns: `n_patterns` and
///   `exact` are not used and `gates` is an error. `convex_weights` is w (d × 1), read out as one
///   neuron. With `conv`, the linear CNN with one output weight per neuron and patch position,
///   f(x) = Σ_j Σ_k (x_kᵀu_j) α_{jk} (no pooling), whose program is the nuclear norm of Z
///   (h × K, `convex_weights`); `hidden_weights` are the filters (h × m) and `output_weights` is
///   m × K. With `conv="HxW:HxW:1:circular:nobias"` (a full-size circular filter) it is the
///   circular CNN, solved in the Fourier domain (an ℓ1 norm of the DFT of the end-to-end weights).
/// - `solver="mkl"` (gated or threshold, squared loss): reports `kernel_weights`, a dict with
///   `beta`, `patterns` and `weights`.
/// - `solver="nuclear"` (formulation "relu", squared loss, tiny data; patterns are not used; needs
///   an extension built with the `nuclear` feature, see `convexnn.HAS_NUCLEAR`): the
///   nuclear-norm heuristic looks for a network of width `width` that fits the data exactly, with
///   weight `gamma` on the complementarity term, at most `relaxations` semidefinite solves, first
///   parameters `nuclear_init` ("zero" or "random"). It certifies nothing: `gap`, `dual_objective`
///   and `relative_gap` are None, `heuristic` is True and `guarantee` says "heuristic, no
///   optimality guarantee"; `fit_residual` is max |f(x) − y| on the training data.
/// - Vector regression: a 2-D `y` of shape (n, c) with c > 1 columns (squared loss, gated networks,
///   solver "auto"/"fista" or "clarabel") trains one network with c outputs and shared hidden
///   neurons, objective (1/(2nc))‖Ŷ − Y‖² + λ Σ_i r(U_i) with the block norm `outputs` (below);
///   `Model.predict` then returns shape (n, c). A 2-D `y` with one column is a 1-D `y`.
/// - Multi-class classification (gated networks, solver "auto"/"fista" or "clarabel"): `loss="softmax"`
///   (cross-entropy) or `one_hot=True` (squared loss on one-hot targets) with any c ≥ 2 label
///   values; one output per class, hidden neurons shared. `outputs` is the block norm of each
///   pattern's d × c weights: "group" (Frobenius, a relaxation: the network read out may have a
///   larger objective than the convex one, both reported), "nuclear" (the exact shared-neuron
///   program) or "separate" (scnn's per-output groups). The certificate's `outputs` dict gives
///   `outputs`, `penalty`, `meaning` and `classes`; `output_weights` is then m × c and
///   `Model.predict` returns class labels.
/// - `dictionary=True` (scalar inputs, x of shape (n, 1), squared loss, f64, solvers "auto",
///   "fista" or "clarabel"; `bias`, `n_patterns`, `exact` and `gates` are not used): the explicit
///   1-D dictionary Lasso of a relu, leaky_relu, abs or threshold network whose neurons have
///   unpenalized biases (`hidden_biases`) and whose output has an unpenalized `intercept`.
///   `depth` (default 2) is the depth L of the network: 3 or 4 (formulation "relu" only) fits the
///   deep narrow ReLU network, a sum of chains of width-one ReLU layers with unpenalized biases and
///   weight decay (λ/L) Σ |weights|^L, by the Lasso over the chain features; `chains` then holds
///   each unit's (weights, biases), its output weights α_j are `output_weights`, `hidden_weights`
///   is empty and the certificate's `depth` is L (None for two-layer fits).
/// - `conv`: a convolutional network with global average pooling, `"HxW:FHxFW:STRIDE"` (the
///   command line's `--conv`): the rows of `x` are H × W images (one channel, row by row), each
///   filter sees the FH × FW patches taken every STRIDE pixels plus a bias (so `bias` adds no ones
///   column), and the outputs are averaged over the patches. `gates` then act on the patches
///   (h × P, h = FH·FW + 1); solvers "auto", "fista" (gated), "bcd" (gated), "al" or "clarabel".
///   The hidden weights are the filters, h × m, and the model predicts on images. Options follow
///   the stride, e.g. `"8x8:3x3:1:circular:nobias"`: `:circular` (patches wrap around the image's
///   edges, ⌈H/STRIDE⌉ · ⌈W/STRIDE⌉ positions), `:nobias` (filters without a bias, h = FH·FW),
///   `:separable` (gated or ReLU networks: each neuron sees one patch position; filters and gates
///   have length K·h, zero outside their position's block of h entries; the patterns are built
///   per position, so `gates` is an error).
/// - Preprocessing saved with the model: `standardize`, `bias` (a ones column), `feature_names`,
///   `class_labels` (the raw labels mapped to −1 and +1, logistic loss).
/// - `callback(record)` is called every `report_every` iterations with a dict (`iteration`,
///   `outer`, `objective`, `gap`, `violation`, `seconds`).
///
/// Returns a dict with the model (`model`, a `Model`), its JSON text (`model_json`, the command-line
/// tool's model file), the network's `hidden_weights` (d × m), `output_weights` (m; m × c with c
/// outputs; m × K for a linear CNN), `gates` (d × m or None), `hidden_biases`, `intercept` and
/// `chains` (None unless set), the `convex_weights` and the certificate fields. The GIL is released during
/// the solve; a pending Ctrl-C (KeyboardInterrupt) or an exception raised by `callback` stops the
/// solver and is raised here. A callback returning `False` stops the solver too; the fit then
/// returns with status "interrupted". Bad data or settings raise `ValueError`.
#[pyfunction]
#[pyo3(signature = (
    x, y, *, formulation = "gated", slope = None, loss = "squared", lam = 1e-3, n_patterns = Some(100),
    gates = None, exact = false, seed = 0, solver = "auto", tol = 1e-6, max_iter = 10_000,
    precision = "f64", time_limit = None, standardize = false, bias = false, feature_names = None,
    class_labels = None, callback = None, report_every = 10, threads = 0, width = 2, gamma = 1.0,
    relaxations = 50, nuclear_init = "zero", dictionary = false, depth = 2, outputs = "group",
    one_hot = false, conv = None, working_rows = None
))]
#[allow(clippy::too_many_arguments)]
fn fit<'py>(
    py: Python<'py>,
    x: Matrix<'py>,
    y: Targets<'py>,
    formulation: &str,
    slope: Option<f64>,
    loss: &str,
    lam: f64,
    n_patterns: Option<usize>,
    gates: Option<Matrix<'py>>,
    exact: bool,
    seed: u64,
    solver: &str,
    tol: f64,
    max_iter: usize,
    precision: &str,
    time_limit: Option<f64>,
    standardize: bool,
    bias: bool,
    feature_names: Option<Vec<String>>,
    class_labels: Option<(f64, f64)>,
    callback: Option<Py<PyAny>>,
    report_every: usize,
    threads: usize,
    width: usize,
    gamma: f64,
    relaxations: usize,
    nuclear_init: &str,
    dictionary: bool,
    depth: usize,
    outputs: &str,
    one_hot: bool,
    conv: Option<&str>,
    working_rows: Option<usize>,
) -> PyResult<Bound<'py, PyDict>> {
    let mut args = fit_args(
        formulation,
        slope,
        loss,
        lam,
        n_patterns,
        gates.map(|g| g.to_mat()),
        exact,
        seed,
        solver,
        tol,
        max_iter,
        precision,
        time_limit,
        standardize,
        bias,
        class_labels,
        report_every,
        threads,
        nuclear_settings(width, gamma, relaxations, nuclear_init)?,
        dictionary,
        depth,
        outputs,
        conv,
    )?;
    if let Some(rows) = working_rows {
        if !matches!(
            args.opts.solver,
            SolverChoice::Auto | SolverChoice::Interior
        ) {
            return Err(PyValueError::new_err(format!(
                "working_rows applies to the interior point only (solver \"interior\", or \"auto\" \
                 where it picks it), got solver {solver:?}"
            )));
        }
        args.opts.working_rows = rows;
    }
    let targets = y.to_mat();
    let c = targets.ncols();
    if c > 1 && one_hot {
        return Err(PyValueError::new_err(format!(
            "one_hot=True makes one output per class of a 1-D label vector; y has shape ({}, {c}): \
             a 2-D y trains vector regression, drop one_hot",
            targets.nrows()
        )));
    }
    if c > 1 && args.opts.loss != Loss::Squared {
        return Err(PyValueError::new_err(format!(
            "a 2-D y of shape ({}, {c}) trains vector regression, which takes loss=\"squared\", \
             not {loss:?} (class labels are a 1-D y)",
            targets.nrows()
        )));
    }
    let data =
        Dataset::with_targets(x.to_mat(), targets, feature_names, None).map_err(to_py_err)?;
    let (data, pre) = preprocess(data, &args);
    let (xm, yv) = (&data.x, &data.y);
    check_gates(&args, xm.ncols())?;
    let mut observer = PyObserver {
        callback,
        error: None,
    };
    let stop = StopFlag::new();
    if one_hot && args.opts.loss != Loss::Squared {
        return Err(PyValueError::new_err(
            "one_hot=True trains the squared loss on one-hot targets; loss=\"softmax\" is the \
             multi-class cross-entropy",
        ));
    }
    let result = py.detach(|| {
        if let Some(t) = &data.targets {
            train_outputs(
                xm.as_ref(),
                t.values.as_ref(),
                &args.opts,
                &mut observer,
                &stop,
            )
        } else if one_hot {
            train_classes(xm.as_ref(), yv, &args.opts, &mut observer, &stop)
        } else {
            train(xm.as_ref(), yv, &args.opts, &mut observer, &stop)
        }
    });
    if let Some(e) = observer.error.take() {
        return Err(e);
    }
    let fit = result.map_err(to_py_err)?;
    let file = model_file(&fit, &args, pre, yv);
    let out = certificate_dict(py, &fit.certificate)?;
    network_items(py, &fit.network, xm.ncols(), &out)?;
    out.set_item("convex_weights", mat_to_py(py, &fit.weights))?;
    let json = serde_json::to_string_pretty(&file)
        .map_err(|e| PyRuntimeError::new_err(format!("cannot serialize the model: {e}")))?;
    out.set_item("model_json", json)?;
    out.set_item("model", Py::new(py, Model { file })?)?;
    Ok(out)
}

/// The smallest λ at which the zero network is optimal for this data and these patterns (`conv`: of
/// the convolutional program; `dictionary` and `depth`: of the 1-D dictionary program; as in
/// [`fit`]).
#[pyfunction]
#[pyo3(signature = (
    x, y, *, formulation = "gated", slope = None, loss = "squared", n_patterns = Some(100),
    gates = None, exact = false, seed = 0, standardize = false, bias = false, dictionary = false,
    depth = 2, conv = None
))]
#[allow(clippy::too_many_arguments)]
fn lambda_max_of<'py>(
    py: Python<'py>,
    x: Matrix<'py>,
    y: Vector<'py>,
    formulation: &str,
    slope: Option<f64>,
    loss: &str,
    n_patterns: Option<usize>,
    gates: Option<Matrix<'py>>,
    exact: bool,
    seed: u64,
    standardize: bool,
    bias: bool,
    dictionary: bool,
    depth: usize,
    conv: Option<&str>,
) -> PyResult<f64> {
    let args = fit_args(
        formulation,
        slope,
        loss,
        1.0,
        n_patterns,
        gates.map(|g| g.to_mat()),
        exact,
        seed,
        "auto",
        1e-6,
        1,
        "f64",
        None,
        standardize,
        bias,
        None,
        10,
        0,
        NuclearSettings::default(),
        dictionary,
        depth,
        "group",
        conv,
    )?;
    let (xm, yv, _) = prepare(x.to_mat(), y.to_vec(), None, &args)?;
    check_gates(&args, xm.ncols())?;
    py.detach(|| lambda_max(xm.as_ref(), &yv, &args.opts))
        .map_err(to_py_err)
}

/// Solves a regularization path over one shared pattern set with warm starts; returns one dict per
/// λ (largest first) with the certificate fields and the network's weights (`conv`: a
/// convolutional network; `dictionary` and `depth`: the 1-D dictionary program; as in [`fit`]).
#[pyfunction]
#[pyo3(signature = (
    x, y, lambdas, *, formulation = "gated", slope = None, loss = "squared", n_patterns = Some(100),
    gates = None, exact = false, seed = 0, solver = "auto", tol = 1e-6, max_iter = 10_000,
    precision = "f64", standardize = false, bias = false, callback = None, report_every = 10,
    threads = 0, dictionary = false, depth = 2, conv = None
))]
#[allow(clippy::too_many_arguments)]
fn path<'py>(
    py: Python<'py>,
    x: Matrix<'py>,
    y: Vector<'py>,
    lambdas: Vec<f64>,
    formulation: &str,
    slope: Option<f64>,
    loss: &str,
    n_patterns: Option<usize>,
    gates: Option<Matrix<'py>>,
    exact: bool,
    seed: u64,
    solver: &str,
    tol: f64,
    max_iter: usize,
    precision: &str,
    standardize: bool,
    bias: bool,
    callback: Option<Py<PyAny>>,
    report_every: usize,
    threads: usize,
    dictionary: bool,
    depth: usize,
    conv: Option<&str>,
) -> PyResult<Bound<'py, PyList>> {
    let args = fit_args(
        formulation,
        slope,
        loss,
        lambdas.first().copied().unwrap_or(1.0),
        n_patterns,
        gates.map(|g| g.to_mat()),
        exact,
        seed,
        solver,
        tol,
        max_iter,
        precision,
        None,
        standardize,
        bias,
        None,
        report_every,
        threads,
        NuclearSettings::default(),
        dictionary,
        depth,
        "group",
        conv,
    )?;
    let (xm, yv, _) = prepare(x.to_mat(), y.to_vec(), None, &args)?;
    check_gates(&args, xm.ncols())?;
    let mut observer = PyObserver {
        callback,
        error: None,
    };
    let stop = StopFlag::new();
    let result = py.detach(|| {
        regularization_path(xm.as_ref(), &yv, &args.opts, &lambdas, &mut observer, &stop)
    });
    if let Some(e) = observer.error.take() {
        return Err(e);
    }
    let points = result.map_err(to_py_err)?;
    let out = PyList::empty(py);
    for p in &points {
        let d = certificate_dict(py, &p.certificate)?;
        network_items(py, &p.network, xm.ncols(), &d)?;
        out.append(d)?;
    }
    Ok(out)
}

/// The extension module.
#[pymodule]
fn _convexnn(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(fit, m)?)?;
    m.add_function(wrap_pyfunction!(lambda_max_of, m)?)?;
    m.add_function(wrap_pyfunction!(path, m)?)?;
    m.add("FORMAT", FORMAT)?;
    m.add("FORMAT_VERSION", VERSION)?;
    // Whether the nuclear-norm heuristic (solver="nuclear") is built in: the `nuclear` feature
    // links a system BLAS and LAPACK for Clarabel's semidefinite cones.
    m.add("HAS_NUCLEAR", cfg!(feature = "nuclear"))?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
