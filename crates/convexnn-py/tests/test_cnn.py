"""Convolutional networks with global average pooling from Python (``conv="HxW:FHxFW:STRIDE"``,
docs/programs.md §3d): certified fits, the network's objective and predictions recomputed in NumPy
from its filters, agreement with the command-line tool, model files that keep the geometry, and
errors as ValueError."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Tuple

import numpy as np
import pytest

import convexnn
from convexnn import ConvexReLURegressor, GatedReLURegressor, ThresholdRegressor

ROOT = Path(__file__).resolve().parents[3]
CLI = Path(os.environ.get("CONVEXNN_CLI", ROOT / "target" / "release" / "convexnn"))

SIDE, N, LAM, SEED = 6, 60, 1e-3, 3
# (estimator, CLI --model, spec, filter, stride, sampled gates)
CASES = [
    (GatedReLURegressor, "gated", "6x6:3x3:1", 3, 1, 8),
    (ConvexReLURegressor, "relu", "6x6:2x2:2", 2, 2, 6),
]


def images(n: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    """n random 6 × 6 images (rows, pixels row by row) and targets from a pooled filter response."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, SIDE * SIDE))
    img = x.reshape(n, SIDE, SIDE)
    # A vertical-edge detector, ReLU, averaged over positions, plus noise.
    edge = np.maximum(img[:, :, 1:] - img[:, :, :-1], 0.0).mean(axis=(1, 2))
    return x, edge + 0.05 * rng.normal(size=n)


def patches(x: np.ndarray, f: int, stride: int) -> np.ndarray:
    """(n, K, f·f + 1): each image's patches, row by row, then a 1 for the filter's bias."""
    img = x.reshape(len(x), SIDE, SIDE)
    out = (SIDE - f) // stride + 1
    rows = [
        img[:, a * stride : a * stride + f, b * stride : b * stride + f].reshape(len(x), f * f)
        for a in range(out)
        for b in range(out)
    ]
    p = np.stack(rows, axis=1)
    return np.concatenate([p, np.ones(p.shape[:2] + (1,))], axis=2)


def forward(est: Any, x: np.ndarray, f: int, stride: int) -> np.ndarray:
    """f(x) = (1/K) Σ_k Σ_j σ(x_kᵀu_j) α_j from the fitted filters."""
    p = patches(x, f, stride)
    z = p @ est.hidden_weights_
    if est.gates_ is not None:
        act = (p @ est.gates_ >= 0) * z
    else:
        act = np.maximum(z, 0.0)
    return (act @ est.output_weights_).mean(axis=1)


def objective(est: Any, x: np.ndarray, y: np.ndarray, f: int, stride: int) -> float:
    """(1/(2n))‖f(X) − y‖² + (λ/2) Σ_j (‖u_j‖² + α_j²)."""
    r = forward(est, x, f, stride) - y
    decay = np.sum(est.hidden_weights_**2) + np.sum(est.output_weights_**2)
    return float(r @ r / (2 * len(y)) + 0.5 * est.lam * decay)


@pytest.mark.parametrize("cls, model, spec, f, stride, p", CASES)
def test_cnn_is_certified_and_its_network_is_the_numpy_cnn(
    cls: Any, model: str, spec: str, f: int, stride: int, p: int, tmp_path: Path
) -> None:
    x, y = images(N, 1)
    est = cls(lam=LAM, n_patterns=p, seed=SEED, conv=spec).fit(x, y)
    assert est.get_params()["conv"] == spec
    assert est.relative_gap_ <= 1e-5, est.certificate_
    assert est.n_neurons_ > 0
    assert est.hidden_weights_.shape == (f * f + 1, est.n_neurons_)
    assert est.model_.conv == spec
    # The read-out CNN's objective, recomputed from its filters, is the convex objective.
    assert objective(est, x, y, f, stride) == pytest.approx(est.objective_, rel=1e-6)
    assert objective(est, x, y, f, stride) == pytest.approx(
        est.certificate_["network_objective"], rel=1e-9
    )
    # Predictions on new images are the NumPy CNN's.
    x_new, _ = images(25, 2)
    np.testing.assert_allclose(est.predict(x_new), forward(est, x_new, f, stride), rtol=1e-10, atol=1e-12)

    # The model file keeps the geometry; a loaded estimator predicts the same.
    est.save(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["network"]["conv"]["filter_height"] == f and doc["network"]["conv"]["stride"] == stride
    back = convexnn.load(tmp_path / "m.json")
    assert type(back) is cls and back.get_params()["conv"] == spec
    np.testing.assert_array_equal(back.predict(x_new), est.predict(x_new))


@pytest.mark.skipif(not CLI.is_file(), reason=f"the command-line tool is not built ({CLI})")
@pytest.mark.parametrize("cls, model, spec, f, stride, p", CASES)
def test_cnn_agrees_with_the_cli(
    cls: Any, model: str, spec: str, f: int, stride: int, p: int, tmp_path: Path
) -> None:
    x, y = images(N, 1)
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "y.npy", y)
    out = subprocess.run(
        [str(CLI), "train", "--x", str(tmp_path / "X.npy"), "--y", str(tmp_path / "y.npy"),
         "--conv", spec, "--model", model, "--sample", str(p), "--seed", str(SEED),
         "--lambda", str(LAM), "--json", "--out", str(tmp_path / "cli.json")],
        check=True, capture_output=True, text=True, timeout=120,
    )
    cli = json.loads(out.stdout)
    est = cls(lam=LAM, n_patterns=p, seed=SEED, conv=spec).fit(x, y)
    assert est.objective_ == pytest.approx(cli["objective"], rel=1e-9)
    assert est.certificate_["n_patterns"] == cli["n_patterns"]
    # The tool's model file loads as a CNN estimator with its geometry.
    loaded = convexnn.load(tmp_path / "cli.json")
    assert type(loaded) is cls and loaded.get_params()["conv"] == spec
    np.testing.assert_allclose(loaded.predict(x), est.predict(x), rtol=1e-6, atol=1e-9)


def test_core_functions_take_conv() -> None:
    x, y = images(N, 1)
    spec = "6x6:2x2:2"
    res = convexnn.fit(x, y, formulation="relu", lam=LAM, n_patterns=6, seed=SEED, conv=spec)
    assert res["hidden_weights"].shape[0] == 5 and res["model"].conv == spec
    np.testing.assert_allclose(
        res["model"].decision_function(x), res["model"].predict(x), rtol=0, atol=0
    )
    est = GatedReLURegressor(lam=LAM, n_patterns=6, seed=SEED, conv=spec)
    lmax = est.lambda_max(x, y)
    assert lmax == pytest.approx(
        convexnn._convexnn.lambda_max_of(x, y, n_patterns=6, seed=SEED, conv=spec)
    )
    path = est.regularization_path(x, y, [1.01 * lmax, 0.1 * lmax])
    assert [len(p["output_weights"]) == 0 for p in path] == [True, False]
    assert path[1]["hidden_weights"].shape == (5, len(path[1]["output_weights"]))
    assert path[0]["n_patterns"] == path[1]["n_patterns"]


def test_cnn_errors_are_value_errors() -> None:
    x, y = images(20, 4)
    with pytest.raises(ValueError, match="expected HxW:FHxFW:STRIDE"):
        GatedReLURegressor(conv="6x6:3x3").fit(x, y)
    with pytest.raises(ValueError, match="does not fit"):
        GatedReLURegressor(conv="6x6:7x7:1").fit(x, y)
    with pytest.raises(ValueError, match="36 pixels per image but the data has 35 columns"):
        GatedReLURegressor(conv="6x6:3x3:1").fit(x[:, :35], y)
    with pytest.raises(ValueError, match="does not take convolutional programs"):
        ConvexReLURegressor(conv="6x6:3x3:1", solver="admm").fit(x, y)
    with pytest.raises(ValueError, match="not threshold"):
        ThresholdRegressor(conv="6x6:3x3:1").fit(x, y)
    with pytest.raises(ValueError, match=r"h = 10"):
        GatedReLURegressor(conv="6x6:3x3:1", gates=np.ones((36, 3))).fit(x, y)
    with pytest.raises(ValueError, match="conv must be None or a string"):
        GatedReLURegressor(conv=(6, 6)).fit(x, y)  # type: ignore[arg-type]
    # Images of another size at prediction time.
    est = GatedReLURegressor(n_patterns=4, conv="6x6:3x3:1").fit(x, y)
    with pytest.raises(ValueError, match="36 features"):
        est.predict(x[:, :30])
