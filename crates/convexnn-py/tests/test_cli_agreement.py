"""The Python package and the command-line tool solve the same problem: same objective on the same
data, settings and seed, and model files that each can read."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
import pytest

import convexnn
from convexnn import (
    ConvexAbsRegressor,
    ConvexLeakyReLUClassifier,
    ConvexReLUClassifier,
    ConvexReLURegressor,
    GatedReLUClassifier,
    GatedReLURegressor,
)

ROOT = Path(__file__).resolve().parents[3]
CLI = Path(os.environ.get("CONVEXNN_CLI", ROOT / "target" / "release" / "convexnn"))

pytestmark = pytest.mark.skipif(
    not CLI.is_file(), reason=f"the command-line tool is not built ({CLI}): cargo build --release"
)


def run_cli(args: List[str]) -> Dict[str, Any]:
    out = subprocess.run(
        [str(CLI), *args], check=True, capture_output=True, text=True, timeout=300
    )
    return json.loads(out.stdout)


CASES = [
    (GatedReLURegressor, "gated", "squared", False),
    (GatedReLURegressor, "gated", "squared", True),
    (ConvexReLURegressor, "relu", "squared", True),
    (GatedReLUClassifier, "gated", "logistic", True),
    (ConvexReLUClassifier, "relu", "logistic", False),
    (ConvexLeakyReLUClassifier, "leaky-relu", "logistic", True),
    (ConvexAbsRegressor, "abs", "squared", True),
]


@pytest.mark.parametrize("cls, model, loss, bias", CASES)
def test_same_objective_as_the_cli(
    cls: Any, model: str, loss: str, bias: bool, tmp_path: Path
) -> None:
    rng = np.random.default_rng(11)
    X = rng.normal(size=(60, 3))
    y = np.maximum(X[:, 0] + X[:, 1], 0.0) - 0.5 * X[:, 2] + 0.1 * rng.normal(size=60)
    if loss == "logistic":
        y = (y > 0.2).astype(np.float64)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    seed, patterns, lam = 5, 25, 3e-3
    args = [
        "train", "--x", str(tmp_path / "X.npy"), "--y", str(tmp_path / "y.npy"),
        "--model", model, "--loss", loss, "--lambda", str(lam), "--sample", str(patterns),
        "--seed", str(seed), "--json", "--out", str(tmp_path / "cli.json"),
    ]
    if bias:
        args.append("--bias")
    extra = {}
    if model == "leaky-relu":
        args += ["--slope", "0.2"]
        extra["slope"] = 0.2
    cli = run_cli(args)
    est = cls(lam=lam, n_patterns=patterns, seed=seed, bias=bias, **extra).fit(X, y)
    assert est.objective_ == pytest.approx(cli["objective"], rel=1e-6)
    assert est.certificate_["n_patterns"] == cli["n_patterns"]
    assert est.status_ == cli["status"]

    # A model file written by the tool loads as the matching estimator and predicts the same.
    loaded = convexnn.load(tmp_path / "cli.json")
    assert type(loaded) is cls
    np.testing.assert_allclose(loaded.predict(X), est.predict(X), rtol=1e-5, atol=1e-6)

    # A model file written by the estimator is read by `convexnn predict`.
    est.save(tmp_path / "py.json")
    subprocess.run(
        [str(CLI), "predict", "--model", str(tmp_path / "py.json"), "--input",
         str(tmp_path / "X.npy"), "--out", str(tmp_path / "pred.csv")],
        check=True, capture_output=True, timeout=120,
    )
    pred = np.loadtxt(tmp_path / "pred.csv", skiprows=1)
    np.testing.assert_allclose(pred, est.predict(X).astype(np.float64), rtol=1e-9, atol=1e-12)


def test_mkl_solver_agrees_with_the_cli_and_fista(tmp_path: Path) -> None:
    """solver="mkl" (gated ReLU as multiple kernel learning): the same optimum as FISTA and as the
    command-line tool's --solver mkl, the same kernel weights in the certificate and the model file,
    and a ValueError for the logistic loss."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(50, 3))
    y = np.maximum(X[:, 0] - X[:, 1], 0.0) + 0.1 * rng.normal(size=50)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    seed, patterns, lam = 2, 20, 1e-2
    cli = run_cli([
        "train", "--x", str(tmp_path / "X.npy"), "--y", str(tmp_path / "y.npy"), "--bias",
        "--lambda", str(lam), "--sample", str(patterns), "--seed", str(seed), "--tol", "1e-9",
        "--solver", "mkl", "--json", "--out", str(tmp_path / "cli.json"),
    ])
    kw = dict(lam=lam, n_patterns=patterns, seed=seed, bias=True, tol=1e-9)
    mkl = GatedReLURegressor(solver="mkl", **kw).fit(X, y)
    fista = GatedReLURegressor(solver="fista", max_iter=100_000, **kw).fit(X, y)
    assert mkl.status_ == "converged" and mkl.certificate_["solver"] == "mkl"
    assert mkl.objective_ == pytest.approx(fista.objective_, rel=1e-8)
    assert mkl.objective_ == pytest.approx(cli["objective"], rel=1e-12)
    assert mkl.relative_gap_ <= 1e-9
    k = mkl.kernel_weights_
    assert k is not None and fista.kernel_weights_ is None
    assert len(k["weights"]) == mkl.n_neurons_ == len(k["patterns"])
    assert sum(k["weights"]) == pytest.approx(1.0, abs=1e-12)
    assert k["patterns"] == cli["kernel_weights"]["patterns"]
    np.testing.assert_allclose(k["weights"], cli["kernel_weights"]["weights"], rtol=1e-10)
    assert k["beta"] == pytest.approx(cli["kernel_weights"]["beta"], rel=1e-10)
    loaded = convexnn.load(tmp_path / "cli.json")
    assert loaded.kernel_weights_["patterns"] == k["patterns"]
    np.testing.assert_allclose(loaded.predict(X), mkl.predict(X), rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="squared loss"):
        GatedReLUClassifier(solver="mkl", n_patterns=10).fit(X, (y > 0.3).astype(float))
