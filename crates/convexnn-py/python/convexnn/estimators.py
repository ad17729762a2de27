"""scikit-learn estimators over the convexnn core.

Each estimator solves the convex reformulation of a two-layer network's training problem (a group
lasso over activation patterns) and reads the network back out of the solution, with a duality-gap
certificate of how far the objective is from the optimum over the patterns used.

The objective (the normalization of the command-line tool) is::

    (1/(2n)) ||f(X) - y||^2 + lam * R      (regressors, squared loss)
    (1/(2nc)) ||F(X) - Y||_F^2 + lam * R   (GatedReLURegressor with c > 1 target columns)
    (1/n) sum log(1 + exp(-y_j f(x_j))) + lam * R      (classifiers, labels mapped to -1/+1)

with ``R`` the sum of the groups' Euclidean norms (for linear networks ``||w||_2``, or for a linear
CNN the nuclear norm of its filter-by-position matrix); the equivalent weight decay of the papers'
``(1/2)||f(X) - y||^2 + beta * R`` form is ``beta = n * lam``.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import tempfile
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Type, TypeVar, Union

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, check_X_y, column_or_1d, validate_data

from . import _convexnn

__all__ = [
    "ConvexReLURegressor",
    "ConvexReLUClassifier",
    "ConvexLeakyReLURegressor",
    "ConvexLeakyReLUClassifier",
    "ConvexAbsRegressor",
    "ConvexAbsClassifier",
    "GatedReLURegressor",
    "GatedReLUClassifier",
    "ConvexLinearRegressor",
    "ConvexLinearClassifier",
    "load",
]

Callback = Callable[[Dict[str, Any]], Optional[bool]]
PathLike = Union[str, "os.PathLike[str]"]
_E = TypeVar("_E", bound="_ConvexNetwork")

_FLOATS = [np.float64, np.float32]
# Slope of the leaky ReLU estimators when none is given (PyTorch's LeakyReLU default).
_DEFAULT_SLOPE = 0.01
# Key under which the Python package stores its own information in a model file; the command-line
# tool ignores it.
_PY_KEY = "python"


def _progress_printer(record: Dict[str, Any]) -> None:
    """Prints one progress line to stderr."""
    print(
        f"[convexnn] iteration {record['iteration']:6d}  objective {record['objective']:.8e}  "
        f"gap {record['gap']:.2e}  {record['seconds']:.2f}s",
        file=sys.stderr,
    )


def _write_atomic(path: PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file in the same folder."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".convexnn-", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class _ConvexNetwork(BaseEstimator):
    """Shared parameters, fitting and I/O of the four estimators.

    Parameters
    ----------
    lam : float, default=1e-3
        Regularization strength λ (the CLI's ``--lambda``) in the normalized objective described in
        the module docstring. Must be positive.
    n_patterns : int or None, default=100
        Number of Gaussian gates sampled (seeded by ``seed``) to generate activation patterns
        (the CLI's ``--sample``); duplicates are dropped. ``None`` enumerates every pattern when the
        data allows it (1-D or 2-D data with the bias) and samples 100 gates otherwise.
    exact : bool, default=False
        Enumerate every activation pattern (the CLI's ``--exact``); only for data with 1 or 2
        features and ``bias=True``. The certificate then holds for networks of any width.
    gates : array of shape (n_inputs, P) or None, default=None
        User gates (the CLI's ``--gates``): pattern i is ``1[X g_i >= 0]`` on the network inputs,
        i.e. the (standardized) features plus the bias column when ``bias=True``.
    solver : {"auto", "fista", "anderson", "al", "admm", "clarabel", "interior", "pdhg", "cd", "mkl", "bcd", "nuclear"}, default="auto"
        Solver: restarted FISTA (gated, linear), guarded Anderson acceleration of the proximal
        gradient step ("anderson": gated networks; "auto" picks it for the squared loss where it
        does not pick "bcd"), augmented Lagrangian or ADMM (ReLU), the
        interior-point backend (small problems), the primal-dual method (hinge loss), coordinate
        descent (squared-loss threshold networks), multiple kernel learning by iterative
        reweighting ("mkl": gated networks, squared loss, up to 5000 samples; the learned kernel
        weights are in ``kernel_weights_``), or block coordinate descent on the Gram form of the
        program ("bcd": gated networks, squared loss, f64; "auto" picks it for small gated
        convolutional programs). Linear networks take "auto" (FISTA), "fista" or "clarabel"
        (squared loss). "auto" picks per problem and never picks "mkl" or "nuclear". "nuclear"
        (:class:`ConvexReLURegressor` only, tiny data; needs an extension built with the ``nuclear``
        feature, see ``convexnn.HAS_NUCLEAR``) is the nuclear-norm heuristic with sequential
        convex relaxation (docs/programs.md (M37)): it looks for a network of width
        ``nuclear_width`` that fits the training data exactly, ignores the pattern parameters, and
        certifies nothing: ``gap_`` and ``relative_gap_`` are NaN, and ``certificate_`` holds
        ``heuristic=True``, ``guarantee="heuristic, no optimality guarantee"`` and
        ``fit_residual`` (max |f(x) - y| on the training data).
    tol : float, default=1e-6
        Relative duality gap (and relative cone violation) at which to stop.
    max_iter : int, default=10000
        Iteration cap.
    seed : int, default=0
        Seed of the sampled gates.
    precision : {"f64", "f32"}, default="f64"
        Working precision of the iterative solvers; certificates are always computed in f64.
    time_limit : float or None, default=None
        Wall-clock limit of one fit in seconds.
    standardize : bool, default=False
        Standardize the features with the training data's mean and standard deviation (saved with
        the model and applied at prediction time).
    bias : bool, default=True
        Append a ones column to the inputs, giving every neuron a bias.
    verbose : bool, default=False
        Print a progress line to stderr every ``report_every`` iterations.
    callback : callable or None, default=None
        Called with a dict (``iteration``, ``outer``, ``objective``, ``gap``, ``violation``,
        ``seconds``) every ``report_every`` iterations. Returning ``False`` stops the solver (the fit
        completes with status "interrupted"); an exception raised by it stops the solver and
        propagates out of ``fit``.
    report_every : int, default=10
        Iterations between progress reports.
    slope : float or None, default=None
        Leaky ReLU estimators only: the slope a in [0, 1) of the activation max(z, a z) (``None``:
        0.01, PyTorch's default). Must be ``None`` for the other estimators.
    nuclear_width : int, default=2
        ``solver="nuclear"`` only: the hidden width m of the network the heuristic looks for.
    dictionary : bool, default=False
        Scalar inputs only (X with one column; the CLI's ``--dictionary``): solve the explicit 1-D
        dictionary Lasso (docs/programs.md (M47)) of the ReLU, leaky ReLU, absolute-value or
        threshold network whose neurons have *unpenalized* biases (knots at the data points) and
        whose output has an unpenalized intercept; squared loss only. ``bias``, ``n_patterns``,
        ``exact`` and ``gates`` are not used. Fitted ``hidden_biases_`` and ``intercept_`` hold the
        free biases.
    depth : int, default=2
        With ``dictionary=True``: the depth L of the network (the CLI's ``--depth``). 2 is the
        two-layer network; 3 or 4 (:class:`ConvexReLURegressor` only) is the deep narrow ReLU
        network ``f(x) = Σ_j α_j h_j(x) + ξ``, a sum of chains ``h_1 = x``,
        ``h_{l+1} = (w_l h_l + b_l)₊`` of L − 1 width-one layers with unpenalized biases b_l and
        weight decay ``(lam/L) Σ |weights|^L``, trained by the Lasso over the chain features
        (docs/programs.md (M58)). ``chains_`` then holds each unit's ``(weights, biases)``
        (arrays of length L − 1), ``output_weights_`` the α_j and ``intercept_`` ξ;
        ``hidden_weights_`` is empty (1 × 0). Other values than 2 need ``dictionary=True``.
    conv : str or None, default=None
        A convolutional network with global average pooling (docs/programs.md §3d; the CLI's
        ``--conv``), given as ``"HxW:FHxFW:STRIDE"``: the rows of X are H × W images (one channel,
        row by row), each neuron is a filter applied to the FH × FW patches taken every STRIDE
        pixels (no padding) plus a bias, and the network averages its outputs over the patches,
        ``f(x) = (1/K) Σ_k Σ_j σ(x_kᵀu_j) α_j``. ``bias`` is not used (every filter has its own
        bias); ``gates`` act on the patches (h × P with h = FH·FW + 1); solvers "auto", "fista"
        (gated), "bcd" (gated), "al" or "clarabel". ``hidden_weights_`` then holds the filters,
        h × m, the bias last, and ``predict`` takes images. Options may follow the stride, e.g.
        ``"8x8:3x3:1:circular:nobias"``: ``circular`` (patches wrap around the image's edges:
        ⌈H/STRIDE⌉ · ⌈W/STRIDE⌉ positions), ``nobias`` (filters without a bias, h = FH·FW) and
        ``separable`` (gated and ReLU networks: each neuron sees one patch position of its own;
        filters and gates have length K·h, zero outside their position's block of h entries, and
        the patterns are built per position, so ``gates`` cannot be given). For the linear
        estimators, see :class:`ConvexLinearRegressor`.
    """

    _formulation: str = "gated"
    _loss: str = "squared"

    def __init__(
        self,
        lam: float = 1e-3,
        *,
        n_patterns: Optional[int] = 100,
        exact: bool = False,
        gates: Optional[ArrayLike] = None,
        solver: str = "auto",
        tol: float = 1e-6,
        max_iter: int = 10000,
        seed: int = 0,
        precision: str = "f64",
        time_limit: Optional[float] = None,
        standardize: bool = False,
        bias: bool = True,
        verbose: bool = False,
        callback: Optional[Callback] = None,
        report_every: int = 10,
        slope: Optional[float] = None,
        nuclear_width: int = 2,
        dictionary: bool = False,
        depth: int = 2,
        conv: Optional[str] = None,
    ) -> None:
        self.lam = lam
        self.n_patterns = n_patterns
        self.exact = exact
        self.gates = gates
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.seed = seed
        self.precision = precision
        self.time_limit = time_limit
        self.standardize = standardize
        self.bias = bias
        self.verbose = verbose
        self.callback = callback
        self.report_every = report_every
        self.slope = slope
        self.nuclear_width = nuclear_width
        self.dictionary = dictionary
        self.depth = depth
        self.conv = conv

    # ----------------------------------------------------------------------------------- fitting

    def _check_params(self) -> None:
        """Raises ValueError for parameters out of range."""
        if not (isinstance(self.lam, (int, float, np.number)) and np.isfinite(self.lam) and self.lam > 0):
            raise ValueError(f"lam must be a positive finite number, got {self.lam!r}")
        if not (isinstance(self.tol, (int, float, np.number)) and self.tol > 0):
            raise ValueError(f"tol must be positive, got {self.tol!r}")
        if int(self.max_iter) < 1:
            raise ValueError(f"max_iter must be at least 1, got {self.max_iter!r}")
        if self.n_patterns is not None and int(self.n_patterns) < 1:
            raise ValueError(f"n_patterns must be at least 1 or None, got {self.n_patterns!r}")
        if int(self.seed) < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        if int(self.nuclear_width) < 1:
            raise ValueError(f"nuclear_width must be at least 1, got {self.nuclear_width!r}")
        if (
            isinstance(self.depth, bool)
            or not isinstance(self.depth, (int, np.integer))
            or int(self.depth) < 2
        ):
            raise ValueError(
                f"depth must be an integer: 2 (two layers), or 3 or 4 with dictionary=True "
                f"(the deep narrow ReLU network), got {self.depth!r}"
            )
        if self.conv is not None and not isinstance(self.conv, str):
            raise ValueError(
                f"conv must be None or a string \"HxW:FHxFW:STRIDE\" (e.g. \"14x14:4x4:2\"), "
                f"got {self.conv!r}"
            )
        if self.slope is not None and self._formulation != "leaky_relu":
            raise ValueError(
                f"slope applies to the leaky ReLU estimators only, not {type(self).__name__} "
                f"(got slope={self.slope!r})"
            )

    def _callback(self) -> Optional[Callback]:
        """The progress callback combining ``verbose`` and ``callback``."""
        user = self.callback
        if not self.verbose:
            return user
        if user is None:
            return _progress_printer

        def both(record: Dict[str, Any]) -> Optional[bool]:
            _progress_printer(record)
            return user(record)

        return both

    def _gates_array(self) -> Optional[NDArray[np.float64]]:
        if self.gates is None:
            return None
        g = np.asarray(self.gates, dtype=np.float64)
        if g.ndim != 2:
            raise ValueError(f"gates must be a 2-D array of shape (n_inputs, P), got {g.ndim}-D")
        if not np.all(np.isfinite(g)):
            raise ValueError("gates contain NaN or infinity")
        return g

    def _fit_targets(
        self, X: NDArray[Any], y: NDArray[np.float64], class_labels: Optional[tuple] = None
    ) -> Dict[str, Any]:
        """Runs the core fit on validated X and float targets and sets the fitted attributes."""
        self._check_params()
        result = _convexnn.fit(
            X,
            np.ascontiguousarray(y, dtype=np.float64),
            lam=float(self.lam),
            time_limit=None if self.time_limit is None else float(self.time_limit),
            class_labels=class_labels,
            width=int(self.nuclear_width),
            **self._problem_kwargs(),
            **self._solver_kwargs(),
            **self._fit_kwargs(),
        )
        self._set_fitted(result["model"], result["convex_weights"])
        return result

    def _fit_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments of the core fit that only some estimators set."""
        return {}

    def _set_fitted(self, model: "_convexnn.Model", convex_weights: Optional[NDArray[np.float64]]) -> None:
        """Sets every fitted attribute from a model."""
        self.model_ = model
        # Outputs of the network: c for vector regression, else 1.
        self.n_outputs_: int = int(model.n_outputs)
        self.hidden_weights_: NDArray[np.float64] = model.hidden_weights
        self.output_weights_: NDArray[np.float64] = model.output_weights
        self.gates_: Optional[NDArray[np.float64]] = model.gates
        self.amplitudes_: Optional[NDArray[np.float64]] = model.amplitude
        self.hidden_biases_: Optional[NDArray[np.float64]] = model.hidden_biases
        self.intercept_: Optional[float] = model.intercept
        # Deep narrow ReLU networks (dictionary=True, depth 3 or 4): each unit's (weights, biases).
        self.chains_: Optional[List[tuple]] = model.chains
        self.convex_weights_: Optional[NDArray[np.float64]] = convex_weights
        self.certificate_: Dict[str, Any] = dict(model.certificate)
        self.objective_: float = float(self.certificate_["objective"])
        # A heuristic has no gap: None in the certificate, NaN here.
        gap, rel = self.certificate_["gap"], self.certificate_["relative_gap"]
        self.gap_: float = float("nan") if gap is None else float(gap)
        self.relative_gap_: float = float("nan") if rel is None else float(rel)
        self.status_: str = str(self.certificate_["status"])
        self.exhaustive_: bool = bool(self.certificate_["exhaustive"])
        self.n_neurons_: int = int(self.output_weights_.shape[0])
        self.n_iter_: int = int(self.certificate_["iterations"])
        # Learned kernel weights of solver="mkl" (dict with beta, patterns, weights), else None.
        self.kernel_weights_: Optional[Dict[str, Any]] = self.certificate_.get("kernel_weights")

    def _validate_X(self, X: ArrayLike) -> NDArray[Any]:
        check_is_fitted(self, "model_")
        return validate_data(self, X, reset=False, dtype=_FLOATS)

    def _decision(self, X: ArrayLike) -> NDArray[np.float64]:
        X = self._validate_X(X)
        return np.asarray(self.model_.decision_function(X))

    def regularization_path(
        self, X: ArrayLike, y: ArrayLike, lambdas: Sequence[float]
    ) -> List[Dict[str, Any]]:
        """Solves the program at each λ of ``lambdas`` (largest first) over one shared pattern set
        with warm starts, using this estimator's settings; the estimator itself is not changed.

        Returns one dict per λ with the certificate fields (``lambda``, ``objective``, ``gap``,
        ``status``, ``active_neurons``, ...) and the network's ``hidden_weights``,
        ``output_weights`` and ``gates``.
        """
        self._check_params()
        X, yf = self._path_data(X, y)
        return list(
            _convexnn.path(
                X,
                yf,
                [float(v) for v in lambdas],
                **self._problem_kwargs(),
                **self._solver_kwargs(),
            )
        )

    def lambda_max(self, X: ArrayLike, y: ArrayLike) -> float:
        """The smallest λ at which the zero network is optimal for this data and these patterns
        (for ReLU networks a safe upper bound)."""
        X, yf = self._path_data(X, y)
        return float(
            _convexnn.lambda_max_of(
                X,
                yf,
                **self._problem_kwargs(),
            )
        )

    def _network_kwargs(self) -> Dict[str, Any]:
        """The network kind: the formulation and, for the leaky ReLU, its slope."""
        if self._formulation != "leaky_relu":
            return {"formulation": self._formulation}
        slope = _DEFAULT_SLOPE if self.slope is None else float(self.slope)
        return {"formulation": self._formulation, "slope": slope}

    def _problem_kwargs(self) -> Dict[str, Any]:
        """The keyword arguments that define the program (network, loss, patterns, preprocessing)."""
        return {
            **self._network_kwargs(),
            "loss": self._loss,
            "n_patterns": None if self.n_patterns is None else int(self.n_patterns),
            "gates": self._gates_array(),
            "exact": bool(self.exact),
            "seed": int(self.seed),
            "standardize": bool(self.standardize),
            "bias": bool(self.bias),
            "dictionary": bool(self.dictionary),
            "depth": int(self.depth),
            "conv": self.conv,
        }

    def _solver_kwargs(self) -> Dict[str, Any]:
        """The keyword arguments that choose and run the solver."""
        return {
            "solver": str(self.solver),
            "tol": float(self.tol),
            "max_iter": int(self.max_iter),
            "precision": str(self.precision),
            "callback": self._callback(),
            "report_every": int(self.report_every),
        }

    def _path_data(self, X: ArrayLike, y: ArrayLike) -> tuple:
        raise NotImplementedError

    # --------------------------------------------------------------------------------------- I/O

    def _python_info(self) -> Dict[str, Any]:
        params = {
            k: v
            for k, v in self.get_params().items()
            if k not in ("gates", "callback") and (v is None or isinstance(v, (bool, int, float, str)))
        }
        return {"estimator": type(self).__name__, "params": params}

    def save(self, path: PathLike) -> None:
        """Writes the fitted model to ``path`` in the command-line tool's model file format (JSON),
        readable by ``convexnn predict --model`` and by :meth:`load`."""
        check_is_fitted(self, "model_")
        doc = json.loads(self.model_.to_json())
        doc[_PY_KEY] = self._python_info()
        _write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode("utf-8"))

    @classmethod
    def load(cls: Type[_E], path: PathLike) -> _E:
        """Reads a model file written by :meth:`save` or by ``convexnn train --out``."""
        with open(path, "r", encoding="utf-8") as f:
            text = f.read()
        return cls._from_json(text)

    @classmethod
    def _from_json(cls: Type[_E], text: str) -> _E:
        model = _convexnn.Model.from_json(text)
        doc = json.loads(text)
        info = doc.get(_PY_KEY) or {}
        if model.formulation != cls._formulation or model.loss != cls._loss:
            raise ValueError(
                f"this model file holds a {model.formulation} network with the {model.loss} loss; "
                f"{cls.__name__} needs {cls._formulation} with the {cls._loss} loss (use convexnn.load)"
            )
        params = dict(info.get("params") or {})
        settings = doc.get("settings", {})
        pre = doc.get("preprocessing", {})
        params.setdefault("lam", settings.get("lambda", 1e-3))
        params.setdefault("seed", settings.get("seed", 0))
        params.setdefault("tol", settings.get("tol", 1e-6))
        params.setdefault("standardize", pre.get("standardizer") is not None)
        params.setdefault("bias", bool(pre.get("bias", False)))
        if model.slope is not None:
            params.setdefault("slope", model.slope)
        if model.dictionary:
            params.setdefault("dictionary", True)
            params.setdefault("depth", model.depth)
        if model.conv is not None:
            params.setdefault("conv", model.conv)
        if model.outputs is not None:
            params.setdefault("outputs", model.outputs)
        valid = cls().get_params()
        est = cls(**{k: v for k, v in params.items() if k in valid})
        est._set_fitted(model, None)
        est.n_features_in_ = int(model.n_features_in)
        est._restore_extra(info, model)
        return est

    def _restore_extra(self, info: Mapping[str, Any], model: "_convexnn.Model") -> None:
        """Restores what the Python package adds to a model file (the classes of a classifier)."""

    def export_safetensors(self, path: PathLike, dtype: str = "float32") -> None:
        """Writes the network's weights in the safetensors format (loadable by PyTorch's
        ``safetensors.torch.load_file`` without convexnn).

        Tensors, in PyTorch's ``nn.Linear`` layout (out_features × in_features):

        - ``hidden.weight`` (m × n_inputs): the hidden weights u_j;
        - ``output.weight`` (1 × m): the output weights α_j; c × m for a vector-regression model
          with c outputs;
        - ``gates.weight`` (m × n_inputs): the gates g_j (gated networks only);
        - ``amplitude`` (m): the amplitudes s_j (threshold networks only);
        - ``hidden.bias`` (m) and ``output.bias`` (1): the unpenalized biases and intercept of
          1-D dictionary models (``dictionary=True``), added to ``hidden(x)`` and to the output;
        - ``input.mean`` and ``input.scale`` (n_features): the standardization, when used.

        For a convolutional network (``conv``) ``hidden.weight`` (and ``gates.weight``) hold the
        filters, m × h (h = FH·FW + 1 with the bias last, FH·FW with ``nobias``, K times that for a
        separable network): they apply to each patch of an image (pixels row by row, then a 1) and
        the output is averaged over the patches; ``__metadata__`` records the geometry as
        ``convexnn_conv``. A linear CNN has no pooling: ``output.weight`` is 1 × (m·K), entry
        j·K + k weighting filter j at patch position k (PyTorch's flattening of the m × out_h ×
        out_w feature maps).

        A deep narrow ReLU network (``dictionary=True`` with ``depth`` L of 3 or 4) has no
        ``hidden.weight``: ``chain.weight`` and ``chain.bias`` (m × (L − 1)) hold unit j's layer
        weights w_l and biases b_l in row j, with ``output.weight`` (1 × m) and ``output.bias`` (1),
        and the network is ``f(x) = output(h_L)`` with ``h_1 = x`` and
        ``h_{l+1} = relu(chain.weight[:, l] * h_l + chain.bias[:, l])`` for every unit at once;
        ``__metadata__`` records ``convexnn_depth``.

        ``n_inputs`` counts the bias column when ``bias=True`` (append a ones column to the
        standardized inputs). The network is ``f(x) = output(relu(hidden(x)))`` for ReLU,
        ``output(leaky_relu(hidden(x), slope))`` for leaky ReLU, ``output(abs(hidden(x)))`` for
        absolute-value networks and
        ``output((gates(x) >= 0) * hidden(x))`` for gated ReLU and
        ``output(amplitude * (hidden(x) >= 0))`` for threshold networks and ``output(hidden(x))`` for
        linear networks. ``__metadata__`` records the kind,
        loss, bias flag and λ (and the leaky ReLU's slope).
        """
        check_is_fitted(self, "model_")
        codes = {"float32": ("F32", "<f4"), "float64": ("F64", "<f8")}
        if dtype not in codes:
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        code, np_dtype = codes[dtype]
        chains = self.model_.chains
        tensors: Dict[str, NDArray[Any]] = {}
        if chains is None:
            tensors["hidden.weight"] = self.hidden_weights_.T
        else:
            layers = self.model_.depth - 1
            tensors["chain.weight"] = np.array([w for w, _ in chains], dtype=np.float64).reshape(-1, layers)
            tensors["chain.bias"] = np.array([b for _, b in chains], dtype=np.float64).reshape(-1, layers)
            tensors["output.bias"] = np.array([self.model_.intercept or 0.0], dtype=np.float64)
        if self.n_outputs_ > 1:
            # c outputs: output.weight is c × m, as nn.Linear(m, c).
            tensors["output.weight"] = self.output_weights_.T
        else:
            tensors["output.weight"] = self.output_weights_.reshape(1, -1)
        if self.gates_ is not None:
            tensors["gates.weight"] = self.gates_.T
        if self.model_.amplitude is not None:
            tensors["amplitude"] = np.asarray(self.model_.amplitude, dtype=np.float64)
        if self.model_.hidden_biases is not None:
            tensors["hidden.bias"] = np.asarray(self.model_.hidden_biases, dtype=np.float64)
            tensors["output.bias"] = np.array([self.model_.intercept or 0.0], dtype=np.float64)
        std = json.loads(self.model_.to_json())["preprocessing"].get("standardizer")
        if std is not None:
            tensors["input.mean"] = np.asarray(std["mean"], dtype=np.float64)
            tensors["input.scale"] = np.asarray(std["scale"], dtype=np.float64)
        header: Dict[str, Any] = {
            "__metadata__": {
                "format": "pt",
                "convexnn_formulation": self._formulation,
                "convexnn_loss": self._loss,
                "convexnn_bias": str(self._model_bias()).lower(),
                "convexnn_lambda": repr(float(self.certificate_["lambda"])),
            }
        }
        if self.model_.slope is not None:
            header["__metadata__"]["convexnn_slope"] = repr(float(self.model_.slope))
        if self.model_.conv is not None:
            header["__metadata__"]["convexnn_conv"] = self.model_.conv
        if chains is not None:
            header["__metadata__"]["convexnn_depth"] = str(self.model_.depth)
        blobs: List[bytes] = []
        offset = 0
        for name, arr in tensors.items():
            data = np.ascontiguousarray(arr, dtype=np_dtype).tobytes()
            header[name] = {
                "dtype": code,
                "shape": list(arr.shape),
                "data_offsets": [offset, offset + len(data)],
            }
            blobs.append(data)
            offset += len(data)
        head = json.dumps(header, separators=(",", ":")).encode("utf-8")
        head += b" " * (-len(head) % 8)
        _write_atomic(path, struct.pack("<Q", len(head)) + head + b"".join(blobs))

    def _model_bias(self) -> bool:
        """Whether the saved model appends a bias column to its inputs."""
        check_is_fitted(self, "model_")
        return bool(json.loads(self.model_.to_json())["preprocessing"]["bias"])


class _Regressor(RegressorMixin, _ConvexNetwork):
    """Regression with the squared loss."""

    _loss = "squared"
    # Whether fit takes several target columns (y of shape (n_samples, n_outputs)).
    _multi_output = False

    def _targets(self, y: NDArray[Any]) -> NDArray[np.float64]:
        if y.dtype.kind not in "biuf":
            try:
                return np.asarray(y, dtype=np.float64)
            except (TypeError, ValueError) as e:
                raise ValueError(
                    f"{type(self).__name__} needs numeric targets y; got values of dtype {y.dtype} "
                    f"that are not numbers ({e}). Use a classifier for class labels."
                ) from None
        return y.astype(np.float64)

    def _path_data(self, X: ArrayLike, y: ArrayLike) -> tuple:
        y_arr = np.asarray(y)
        if y_arr.dtype.kind in "OSU":
            y = self._targets(y_arr)
        X, y = check_X_y(X, y, dtype=_FLOATS, y_numeric=True)
        return X, self._targets(np.asarray(y))

    def fit(self, X: ArrayLike, y: ArrayLike) -> "_Regressor":
        """Trains the network on X (n_samples × n_features) and real targets y (n_samples; for
        :class:`GatedReLURegressor` also n_samples × n_outputs).

        Raises ValueError for NaN or infinite values, 1-D X, mismatched lengths, non-numeric
        targets, several target columns (except :class:`GatedReLURegressor`) and invalid
        parameters.
        """
        if y is not None:
            y_arr = np.asarray(y)
            if y_arr.dtype.kind in "OSU":
                y = self._targets(y_arr)
            if y_arr.ndim == 2 and y_arr.shape[1] > 1 and not self._multi_output:
                raise ValueError(
                    f"{type(self).__name__} takes one target column (y of shape (n_samples,)); got "
                    f"y of shape {y_arr.shape}. GatedReLURegressor fits several target columns "
                    f"(vector regression)."
                )
        X, y = validate_data(
            self, X, y, dtype=_FLOATS, y_numeric=True, multi_output=self._multi_output
        )
        y = self._targets(np.asarray(y))
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        self._fit_targets(X, y)
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.float64]:
        """Network outputs f(x) for each row of X: shape (n_samples,), or (n_samples, n_outputs)
        for a model fitted on several target columns."""
        return self._decision(X)


class _Classifier(ClassifierMixin, _ConvexNetwork):
    """Binary classification with the logistic loss; labels are mapped to -1/+1 internally."""

    _loss = "logistic"

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags

    def _encode(self, y: NDArray[Any]) -> tuple:
        check_classification_targets(y)
        classes, idx = np.unique(y, return_inverse=True)
        if len(classes) != 2:
            raise ValueError(
                f"Only binary classification is supported. {type(self).__name__} needs y with "
                f"exactly 2 classes, "
                f"got {len(classes)} class{'es' if len(classes) != 1 else ''} "
                f"({', '.join(map(repr, classes[:5].tolist()))}{', ...' if len(classes) > 5 else ''})"
            )
        return classes, np.where(idx == 1, 1.0, -1.0)

    def _path_data(self, X: ArrayLike, y: ArrayLike) -> tuple:
        X, y = check_X_y(X, y, dtype=_FLOATS)
        _, ypm = self._encode(np.asarray(y))
        return X, ypm

    def fit(self, X: ArrayLike, y: ArrayLike) -> "_Classifier":
        """Trains the network on X (n_samples × n_features) and binary labels y (any two values).

        Raises ValueError for NaN or infinite values, 1-D X, mismatched lengths, continuous targets,
        fewer or more than two classes and invalid parameters.
        """
        X, y = validate_data(self, X, y, dtype=_FLOATS)
        classes, ypm = self._encode(np.asarray(y))
        labels: tuple
        if classes.dtype.kind in "biuf":
            labels = (float(classes[0]), float(classes[1]))
        else:
            labels = (0.0, 1.0)
        self._fit_targets(X, ypm, class_labels=labels)
        self.classes_ = classes
        return self

    def decision_function(self, X: ArrayLike) -> NDArray[np.float64]:
        """Network outputs f(x): positive values predict ``classes_[1]``."""
        return self._decision(X)

    def predict_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Class probabilities (n_samples × 2): the sigmoid of the network output for ``classes_[1]``."""
        z = self._decision(X)
        return np.column_stack([expit(-z), expit(z)])

    def predict_log_proba(self, X: ArrayLike) -> NDArray[np.float64]:
        """Logarithm of :meth:`predict_proba`, computed stably."""
        z = self._decision(X)
        return np.column_stack([-np.logaddexp(0.0, z), -np.logaddexp(0.0, -z)])

    def predict(self, X: ArrayLike) -> NDArray[Any]:
        """Predicted class labels (from ``classes_``)."""
        z = self._decision(X)
        return self.classes_[(z >= 0).astype(np.intp)]

    def _python_info(self) -> Dict[str, Any]:
        info = super()._python_info()
        info["classes"] = self.classes_.tolist()
        return info

    def _restore_extra(self, info: Mapping[str, Any], model: "_convexnn.Model") -> None:
        if "classes" in info:
            self.classes_ = np.asarray(info["classes"])
        else:
            labels = model.class_labels or (-1.0, 1.0)
            self.classes_ = np.asarray(labels, dtype=np.float64)


class ConvexReLURegressor(_Regressor):
    """Two-layer ReLU network ``f(x) = Σ_j (xᵀu_j)₊ α_j`` for regression, trained by solving the
    cone-constrained group lasso (docs/programs.md (M6)); with every activation pattern
    (``exact=True``) the network is globally optimal among ReLU networks of any width.

    Fitted attributes: ``hidden_weights_`` (n_inputs × m), ``output_weights_`` (m), ``gates_``
    (None), ``convex_weights_`` (n_inputs × 2P = [V | W]), ``certificate_`` (dict: ``objective``,
    ``dual_objective``, ``gap``, ``relative_gap``, ``status``, ``iterations``, ``solve_seconds``,
    ``n_patterns``, ``active_neurons``, ``exhaustive``, ``lambda``, ``normalization``, ``solver``, ...),
    ``objective_``, ``gap_``, ``relative_gap_``, ``status_``, ``exhaustive_``, ``n_neurons_``,
    ``n_features_in_``, ``model_`` (the :class:`convexnn.Model`). See :class:`_ConvexNetwork` for
    the parameters.
    """

    _formulation = "relu"


class GatedReLURegressor(_Regressor):
    """Gated ReLU network ``f(x) = Σ_j 1[xᵀg_j ≥ 0] (xᵀu_j) α_j`` with fixed gates for regression,
    trained by solving the group lasso (docs/programs.md (M11)).

    Vector regression: with y of shape (n_samples, c), c > 1, ``fit`` trains one network with c
    outputs whose hidden neurons are shared, ``F(x) = Σ_j 1[xᵀg_j ≥ 0] (xᵀu_j) α_jᵀ`` with
    α_j ∈ ℝ^c, by the vector-output program (docs/programs.md §3e) with objective
    ``(1/(2nc)) ||F(X) - Y||_F^2 + lam * Σ_i r(U_i)`` over each pattern's d × c block U_i;
    ``predict`` then returns (n_samples, c) and ``score`` is scikit-learn's R² averaged over the
    outputs. Solvers "auto" (FISTA), "fista" or "clarabel"; ``dictionary`` and ``conv`` take one
    target column.

    Parameters
    ----------
    outputs : {"group", "nuclear", "separate"}, default="group"
        The block norm r of the vector-output program (one target column: not used). "group"
        (‖U_i‖_F) is a relaxation: its optimum is a lower bound on the shared-neuron network's
        objective, and the network read out of it may have a larger one (both are in
        ``certificate_``: ``objective`` and ``network_objective``). "nuclear" (‖U_i‖_*) is the
        exact program of the network with shared hidden neurons. "separate" (Σ_k ‖u_ki‖) is
        scnn's penalty, exact for networks whose neurons each feed one output.

    See :class:`_ConvexNetwork` for the other parameters. Fitted attributes as for
    :class:`ConvexReLURegressor`; ``gates_`` (n_inputs × m) holds the gates, ``convex_weights_``
    is n_inputs × P ((n_inputs · c) × P with c outputs, output k's weights in rows
    k·n_inputs to (k + 1)·n_inputs), ``output_weights_`` is m × c with c outputs, and
    ``n_outputs_`` is c.
    """

    _formulation = "gated"
    _multi_output = True

    def __init__(
        self,
        lam: float = 1e-3,
        *,
        n_patterns: Optional[int] = 100,
        exact: bool = False,
        gates: Optional[ArrayLike] = None,
        solver: str = "auto",
        tol: float = 1e-6,
        max_iter: int = 10000,
        seed: int = 0,
        precision: str = "f64",
        time_limit: Optional[float] = None,
        standardize: bool = False,
        bias: bool = True,
        verbose: bool = False,
        callback: Optional[Callback] = None,
        report_every: int = 10,
        slope: Optional[float] = None,
        nuclear_width: int = 2,
        dictionary: bool = False,
        depth: int = 2,
        conv: Optional[str] = None,
        outputs: str = "group",
    ) -> None:
        super().__init__(
            lam,
            n_patterns=n_patterns,
            exact=exact,
            gates=gates,
            solver=solver,
            tol=tol,
            max_iter=max_iter,
            seed=seed,
            precision=precision,
            time_limit=time_limit,
            standardize=standardize,
            bias=bias,
            verbose=verbose,
            callback=callback,
            report_every=report_every,
            slope=slope,
            nuclear_width=nuclear_width,
            dictionary=dictionary,
            depth=depth,
            conv=conv,
        )
        self.outputs = outputs

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _check_params(self) -> None:
        super()._check_params()
        if self.outputs not in ("group", "nuclear", "separate"):
            raise ValueError(
                f'outputs must be "group", "nuclear" or "separate", got {self.outputs!r}'
            )

    def _fit_kwargs(self) -> Dict[str, Any]:
        return {"outputs": str(self.outputs)}


class ConvexReLUClassifier(_Classifier):
    """Two-layer ReLU network for binary classification with the logistic loss (labels mapped to
    −1/+1; ``classes_`` holds the originals). ``decision_function`` is the network output and
    ``predict_proba`` its sigmoid. Fitted attributes as for :class:`ConvexReLURegressor` plus
    ``classes_``.
    """

    _formulation = "relu"


class GatedReLUClassifier(_Classifier):
    """Gated ReLU network for binary classification with the logistic loss (labels mapped to
    −1/+1; ``classes_`` holds the originals). Fitted attributes as for
    :class:`GatedReLURegressor` plus ``classes_``.
    """

    _formulation = "gated"


class ConvexLeakyReLURegressor(_Regressor):
    """Two-layer leaky ReLU network ``f(x) = Σ_j max(xᵀu_j, a xᵀu_j) α_j`` (slope ``a = slope`` in
    [0, 1), default 0.01) for regression, trained by solving the ReLU program with the masks
    ``aI + (1 − a)D_i`` in place of ``D_i`` (docs/programs.md (M40)); with every activation pattern
    (``exact=True``) the network is globally optimal among leaky ReLU networks of any width.

    Fitted attributes as for :class:`ConvexReLURegressor`.
    """

    _formulation = "leaky_relu"


class ConvexLeakyReLUClassifier(_Classifier):
    """Two-layer leaky ReLU network (slope ``slope``) for binary classification with the logistic
    loss. Fitted attributes as for :class:`ConvexReLUClassifier`.
    """

    _formulation = "leaky_relu"


class ConvexAbsRegressor(_Regressor):
    """Two-layer absolute-value network ``f(x) = Σ_j |xᵀu_j| α_j`` for regression, trained by
    solving the ReLU program with ``S_i = 2D_i − I`` in place of ``D_i`` over one pattern of each
    complementary pair (docs/programs.md (M40)); with every activation pattern (``exact=True``)
    the network is globally optimal among absolute-value networks of any width.

    Fitted attributes as for :class:`ConvexReLURegressor`.
    """

    _formulation = "abs"


class ConvexAbsClassifier(_Classifier):
    """Two-layer absolute-value network for binary classification with the logistic loss. Fitted
    attributes as for :class:`ConvexReLUClassifier`.
    """

    _formulation = "abs"


class ConvexLinearRegressor(_Regressor):
    """Two-layer linear network (identity activation) ``f(x) = Σ_j (xᵀu_j) α_j`` for regression,
    trained by its convex program (docs/programs.md §3f): with weight decay the network is the
    group Lasso of its end-to-end weights, ``min (1/(2n))||Xw - y||^2 + lam ||w||_2``, globally
    optimal among linear networks of any width. It has no activation patterns: ``n_patterns`` and
    ``exact`` are not used and ``gates`` is an error; solvers "auto" (FISTA), "fista" or
    "clarabel"; f64 only.

    With ``conv`` it is the linear CNN with one output weight per neuron and patch position,
    ``f(x) = Σ_j Σ_k (x_kᵀu_j) α_{jk}`` (no pooling), whose program is the nuclear norm of the
    filter-by-position matrix Z (h × K): ``hidden_weights_`` holds the filters (h × m) and
    ``output_weights_`` is m × K. With a full-size circular filter, ``conv="HxW:HxW:1:circular:nobias"``,
    it is the circular CNN, solved in the Fourier domain (an ℓ1 norm of the DFT of the
    end-to-end weights, docs/programs.md (M36)). "clarabel" solves the linear CNN's nuclear-norm
    program only in an extension built with the ``nuclear`` feature (``convexnn.HAS_NUCLEAR``).

    Fitted attributes as for :class:`ConvexReLURegressor`; ``convex_weights_`` is w (n_inputs × 1,
    read out as one neuron) or Z.
    """

    _formulation = "linear"


class ConvexLinearClassifier(_Classifier):
    """Two-layer linear network (or linear CNN, with ``conv``) for binary classification with the
    logistic loss (labels mapped to −1/+1; ``classes_`` holds the originals); solvers "auto" or
    "fista". Fitted attributes as for :class:`ConvexLinearRegressor` plus ``classes_``.
    """

    _formulation = "linear"


class ThresholdRegressor(_Regressor):
    """Two-layer threshold (step) activation network ``f(x) = Σ_j s_j 1[xᵀh_j ≥ 0] α_j`` for
    regression, trained by solving the Lasso over the data's arrangement columns (docs/programs.md
    (M29), Ergen et al. 2023); with every pattern (``exact=True``) it is globally optimal among
    threshold networks of any width.

    Fitted attributes as for :class:`ConvexReLURegressor`; ``hidden_weights_`` holds the first-layer
    weights h_j (any gate realizing each column), ``amplitudes_`` the s_j, and ``convex_weights_``
    the Lasso coefficients z (1 × P).
    """

    _formulation = "threshold"


class ThresholdClassifier(_Classifier):
    """Two-layer threshold network for binary classification with the logistic loss (labels mapped
    to −1/+1; ``classes_`` holds the originals). Fitted attributes as for
    :class:`ThresholdRegressor` plus ``classes_``.
    """

    _formulation = "threshold"


class ThresholdHingeClassifier(_Classifier):
    """Two-layer threshold network for binary classification with the hinge loss
    ``(1/n) Σ_j max(0, 1 − y_j f(x_j))`` (Ergen et al. 2023, Corollary 4.1; labels mapped to −1/+1,
    ``classes_`` holds the originals), trained by solving the Lasso over the arrangement columns
    as a linear program (``solver="auto"``: interior point with column generation, or ``"pdhg"``).
    ``decision_function`` is the network output; ``predict_proba`` is its sigmoid, a monotone score
    rather than a calibrated probability. Fitted attributes as for :class:`ThresholdClassifier`.
    """

    _formulation = "threshold"
    _loss = "hinge"


_CLASSES: Dict[tuple, Type[_ConvexNetwork]] = {
    ("threshold", "squared"): ThresholdRegressor,
    ("threshold", "logistic"): ThresholdClassifier,
    ("threshold", "hinge"): ThresholdHingeClassifier,
    ("relu", "squared"): ConvexReLURegressor,
    ("gated", "squared"): GatedReLURegressor,
    ("relu", "logistic"): ConvexReLUClassifier,
    ("gated", "logistic"): GatedReLUClassifier,
    ("leaky_relu", "squared"): ConvexLeakyReLURegressor,
    ("leaky_relu", "logistic"): ConvexLeakyReLUClassifier,
    ("abs", "squared"): ConvexAbsRegressor,
    ("abs", "logistic"): ConvexAbsClassifier,
    ("linear", "squared"): ConvexLinearRegressor,
    ("linear", "logistic"): ConvexLinearClassifier,
}


def load(path: PathLike) -> _ConvexNetwork:
    """Reads a model file (from an estimator's ``save`` or ``convexnn train --out``) as the fitted
    estimator matching its network kind and loss."""
    with open(path, "r", encoding="utf-8") as f:
        text = f.read()
    model = _convexnn.Model.from_json(text)
    key = (model.formulation, model.loss)
    if key not in _CLASSES:
        raise ValueError(
            f"no estimator class for a {key[0]} network with the {key[1]} loss; "
            "predict with the convexnn command line (convexnn predict --model ...)"
        )
    return _CLASSES[key]._from_json(text)
