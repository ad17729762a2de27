"""Type stubs of the extension module convexnn._convexnn (the Rust core's bindings)."""

from os import PathLike
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from numpy.typing import NDArray

FORMAT: str
FORMAT_VERSION: int
HAS_NUCLEAR: bool
__version__: str

_Path = Union[str, PathLike[str]]
_Array2 = Union[NDArray[np.float64], NDArray[np.float32]]
_Array1 = Union[NDArray[np.float64], NDArray[np.float32]]
_Callback = Callable[[Dict[str, Any]], Optional[bool]]

class Model:
    """A trained model in the command-line tool's file format."""

    @staticmethod
    def from_json(text: str) -> "Model": ...
    @staticmethod
    def load(path: _Path) -> "Model": ...
    def save(self, path: _Path) -> None: ...
    def to_json(self) -> str: ...
    def decision_function(self, x: _Array2) -> NDArray[np.float64]:
        """Shape (n,), or (n, c) for a model with c > 1 outputs."""
        ...
    def predict(self, x: _Array2) -> NDArray[np.float64]:
        """Values (n,), class labels (n,), or (n, c) for a vector-regression model."""
        ...
    @property
    def n_outputs(self) -> int:
        """Outputs c of the network (1 for one output; one per class of a multi-class model)."""
        ...
    @property
    def target_names(self) -> Optional[List[str]]:
        """Names of the outputs of a vector-regression model, else None."""
        ...
    @property
    def outputs(self) -> Optional[str]:
        """Block norm ("separate", "group" or "nuclear") of a model with c > 1 outputs, else None."""
        ...
    @property
    def hidden_weights(self) -> NDArray[np.float64]: ...
    @property
    def output_weights(self) -> NDArray[np.float64]:
        """Shape (m,); (m, c) for a model with c > 1 outputs; (m, K) for a linear CNN."""
        ...
    @property
    def gates(self) -> Optional[NDArray[np.float64]]: ...
    @property
    def amplitude(self) -> Optional[NDArray[np.float64]]: ...
    @property
    def hidden_biases(self) -> Optional[NDArray[np.float64]]: ...
    @property
    def intercept(self) -> Optional[float]: ...
    @property
    def dictionary(self) -> bool: ...
    @property
    def depth(self) -> int:
        """2 for a two-layer network; L for a deep narrow ReLU network (dictionary fit with depth L)
        or a deep threshold network."""
        ...
    @property
    def chains(self) -> Optional[List[Tuple[NDArray[np.float64], NDArray[np.float64]]]]:
        """Deep narrow ReLU networks: one (weights, biases) pair of arrays of length L - 1 per unit,
        f(x) = sum_j output_weights[j] * h_j(x) + intercept with h_1 = x and
        h_(l+1) = relu(w_l h_l + b_l); None for other networks."""
        ...
    @property
    def conv(self) -> Optional[str]:
        """The patch geometry "HxW:FHxFW:STRIDE" (then ":circular", ":separable", ":nobias" where
        set) of a convolutional network, else None."""
        ...
    @property
    def certificate(self) -> Dict[str, Any]: ...
    @property
    def formulation(self) -> str:
        """One of "gated", "relu", "leaky_relu", "abs", "threshold" or "linear"."""
        ...
    @property
    def slope(self) -> Optional[float]: ...
    @property
    def loss(self) -> str: ...
    @property
    def n_features_in(self) -> int: ...
    @property
    def class_labels(self) -> Optional[Tuple[float, float]]: ...
    def __reduce__(self) -> Tuple[Any, Tuple[str]]: ...

def fit(
    x: _Array2,
    # y: (n,), or (n, c) with c > 1 for vector regression (squared loss, gated networks).
    y: Union[_Array1, _Array2],
    *,
    # formulation: "gated", "relu", "leaky_relu" (with slope), "abs", "threshold" or "linear" (no
    # patterns: n_patterns and exact unused, gates refused; solvers auto/fista/clarabel, f64).
    # solver: "auto", "fista", "al", "admm", "clarabel", "interior", "pdhg", "cd", "mkl", "nuclear" or "bcd".
    # conv: "HxW:FHxFW:STRIDE[:circular][:separable][:nobias]".
    # depth: with dictionary=True, 2 (two layers), or 3 or 4 (relu only: the deep narrow network).
    formulation: str = "gated",
    slope: Optional[float] = None,
    loss: str = "squared",
    lam: float = 1e-3,
    n_patterns: Optional[int] = 100,
    gates: Optional[_Array2] = None,
    exact: bool = False,
    seed: int = 0,
    solver: str = "auto",
    tol: float = 1e-6,
    max_iter: int = 10000,
    precision: str = "f64",
    time_limit: Optional[float] = None,
    standardize: bool = False,
    bias: bool = False,
    feature_names: Optional[Sequence[str]] = None,
    class_labels: Optional[Tuple[float, float]] = None,
    callback: Optional[_Callback] = None,
    report_every: int = 10,
    threads: int = 0,
    width: int = 2,
    gamma: float = 1.0,
    relaxations: int = 50,
    nuclear_init: str = "zero",
    dictionary: bool = False,
    depth: int = 2,
    outputs: str = "group",
    one_hot: bool = False,
    conv: Optional[str] = None,
    # working_rows: solver "interior" (or "auto"): rows per column of X in each block's starting
    # working set of cone rows (default 10; 0 = every row).
    working_rows: Optional[int] = None,
) -> Dict[str, Any]: ...
def lambda_max_of(
    x: _Array2,
    y: _Array1,
    *,
    formulation: str = "gated",
    slope: Optional[float] = None,
    loss: str = "squared",
    n_patterns: Optional[int] = 100,
    gates: Optional[_Array2] = None,
    exact: bool = False,
    seed: int = 0,
    standardize: bool = False,
    bias: bool = False,
    dictionary: bool = False,
    depth: int = 2,
    conv: Optional[str] = None,
) -> float: ...
def path(
    x: _Array2,
    y: _Array1,
    lambdas: Sequence[float],
    *,
    formulation: str = "gated",
    slope: Optional[float] = None,
    loss: str = "squared",
    n_patterns: Optional[int] = 100,
    gates: Optional[_Array2] = None,
    exact: bool = False,
    seed: int = 0,
    solver: str = "auto",
    tol: float = 1e-6,
    max_iter: int = 10000,
    precision: str = "f64",
    standardize: bool = False,
    bias: bool = False,
    callback: Optional[_Callback] = None,
    report_every: int = 10,
    threads: int = 0,
    dictionary: bool = False,
    depth: int = 2,
    conv: Optional[str] = None,
) -> List[Dict[str, Any]]: ...
