"""Behaviour of the estimators: inputs, errors, pipelines, persistence, export and progress."""

from __future__ import annotations

import json
import pickle
import signal
import subprocess
import sys
import struct
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import convexnn
from convexnn import (
    ConvexAbsClassifier,
    ConvexAbsRegressor,
    ConvexLeakyReLUClassifier,
    ConvexLeakyReLURegressor,
    ConvexReLUClassifier,
    ConvexReLURegressor,
    GatedReLUClassifier,
    GatedReLURegressor,
)

Data = Tuple[np.ndarray, np.ndarray]
CLI = str(Path(__file__).resolve().parents[3] / "target" / "release" / "convexnn")
REGRESSORS = [GatedReLURegressor, ConvexReLURegressor, ConvexLeakyReLURegressor, ConvexAbsRegressor]
CLASSIFIERS = [GatedReLUClassifier, ConvexReLUClassifier, ConvexLeakyReLUClassifier, ConvexAbsClassifier]


@pytest.mark.parametrize("cls", REGRESSORS)
def test_regressor_fits_with_a_certificate(cls: Any, regression: Data) -> None:
    X, y = regression
    est = cls(lam=1e-3, n_patterns=30).fit(X, y)
    assert est.n_features_in_ == 4
    assert est.status_ == "converged"
    assert est.hidden_weights_.shape == (5, est.n_neurons_)
    assert est.output_weights_.shape == (est.n_neurons_,)
    assert (est.gates_ is not None) == (cls is GatedReLURegressor)
    if est.gates_ is not None:
        assert est.gates_.shape == est.hidden_weights_.shape
    cert = est.certificate_
    for key in (
        "objective", "dual_objective", "gap", "relative_gap", "status", "iterations",
        "solve_seconds", "n_patterns", "active_neurons", "exhaustive", "lambda", "normalization",
        "solver",
    ):
        assert key in cert
    assert cert["dual_objective"] <= cert["objective"] + 1e-12
    assert est.relative_gap_ <= 1e-6
    assert est.objective_ == cert["objective"] and est.gap_ == cert["gap"]
    assert est.score(X, y) > 0.8


def test_exact_enumeration_is_exhaustive() -> None:
    x = np.linspace(-1.0, 1.0, 15).reshape(-1, 1)
    y = np.sin(3.0 * x[:, 0])
    est = ConvexReLURegressor(lam=1e-4, exact=True).fit(x, y)
    assert est.exhaustive_ and est.certificate_["exhaustive"]
    assert est.status_ == "converged"


@pytest.mark.parametrize("cls", CLASSIFIERS)
def test_classifier_keeps_original_labels(cls: Any, binary: Data) -> None:
    X, y = binary
    labels = np.array(["no", "yes"])[y]
    est = cls(n_patterns=30).fit(X, labels)
    assert list(est.classes_) == ["no", "yes"]
    pred = est.predict(X)
    assert set(pred) <= {"no", "yes"}
    assert est.score(X, labels) > 0.9
    proba = est.predict_proba(X)
    assert proba.shape == (80, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    z = est.decision_function(X)
    np.testing.assert_allclose(proba[:, 1], 1.0 / (1.0 + np.exp(-z)))
    np.testing.assert_array_equal(pred == "yes", z >= 0)
    np.testing.assert_allclose(np.exp(est.predict_log_proba(X)), proba)


@pytest.mark.parametrize("cls", REGRESSORS + CLASSIFIERS)
def test_float32_float64_c_and_fortran_order_agree(cls: Any, regression: Data, binary: Data) -> None:
    X, y = binary if cls in CLASSIFIERS else regression
    X32 = X.astype(np.float32)
    X64 = X32.astype(np.float64)
    ref = cls(n_patterns=20).fit(X64, y)
    variants = [X32, np.asfortranarray(X32), np.asfortranarray(X64), np.ascontiguousarray(X64)]
    # A strided view (every other column of a wider array) is read in place too.
    wide = np.zeros((X.shape[0], 2 * X.shape[1]))
    wide[:, ::2] = X64
    variants.append(wide[:, ::2])
    for Xv in variants:
        est = cls(n_patterns=20).fit(Xv, y)
        assert est.objective_ == pytest.approx(ref.objective_, rel=1e-12)
        np.testing.assert_allclose(est.predict(Xv) if cls in REGRESSORS else est.decision_function(Xv),
                                   ref.predict(X64) if cls in REGRESSORS else ref.decision_function(X64),
                                   rtol=1e-10, atol=1e-12)


def test_f32_precision_is_accepted(regression: Data) -> None:
    X, y = regression
    a = GatedReLURegressor(n_patterns=20, tol=1e-5).fit(X, y)
    b = GatedReLURegressor(n_patterns=20, tol=1e-5, precision="f32").fit(X, y)
    assert b.certificate_["objective"] == pytest.approx(a.objective_, rel=1e-3)


@pytest.mark.parametrize(
    "X, y, match",
    [
        (np.array([[0.0, np.nan], [1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 2.0, 3.0]), "NaN"),
        (np.array([[0.0, np.inf], [1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 2.0, 3.0]), "infinity"),
        (np.array([[0.0, 1.0], [1.0, 2.0], [3.0, 4.0]]), np.array([1.0, np.nan, 3.0]), "NaN"),
        (np.array([0.0, 1.0, 2.0]), np.array([1.0, 2.0, 3.0]), "Expected 2D array"),
        (np.ones((3, 2)), np.ones(4), "inconsistent numbers of samples"),
        (np.ones((3, 2, 2)), np.ones(3), "3"),
        (np.ones((3, 2)), np.array(["a", "b", "c"]), "numeric"),
        (np.ones((3, 2)), np.array(["a", "b", "c"], dtype=object), "numeric"),
    ],
)
@pytest.mark.parametrize("cls", REGRESSORS)
def test_bad_input_raises_value_error(cls: Any, X: Any, y: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls().fit(X, y)


def test_more_errors(regression: Data, binary: Data) -> None:
    X, y = regression
    est = GatedReLURegressor(n_patterns=10).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        est.predict(X[:, :3])
    with pytest.raises(ValueError, match="Expected 2D array"):
        est.predict(X[0])
    with pytest.raises(ValueError, match="lam"):
        GatedReLURegressor(lam=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="solver"):
        GatedReLURegressor(solver="sgd").fit(X, y)
    with pytest.raises(ValueError, match="precision"):
        GatedReLURegressor(precision="f16").fit(X, y)
    with pytest.raises(ValueError, match="gates must have shape"):
        GatedReLURegressor(gates=np.ones((4, 3))).fit(X, y)  # bias adds a fifth input
    with pytest.raises(ValueError, match="exact enumeration"):
        GatedReLURegressor(exact=True).fit(X, y)
    Xb, yb = binary
    with pytest.raises(ValueError, match="binary"):
        GatedReLUClassifier().fit(Xb, yb % 3 + (Xb[:, 2] > 1))
    with pytest.raises(ValueError, match="Unknown label type"):
        GatedReLUClassifier().fit(Xb, Xb[:, 0])


def test_leaky_relu_and_abs_networks(regression: Data, tmp_path: Path) -> None:
    """The slope is a parameter of the leaky estimators only, is checked, and travels with the
    model; on exactly enumerated 1-D data both networks attain their certified optimum."""
    X, y = regression
    est = ConvexLeakyReLURegressor(slope=0.2, n_patterns=20).fit(X, y)
    assert est.model_.formulation == "leaky_relu" and est.model_.slope == 0.2
    assert est.certificate_["slope"] == 0.2
    est.save(tmp_path / "m.json")
    assert convexnn.load(tmp_path / "m.json").get_params()["slope"] == 0.2
    assert ConvexLeakyReLURegressor(n_patterns=20).fit(X, y).model_.slope == 0.01
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        ConvexLeakyReLURegressor(slope=1.0).fit(X, y)
    for cls in (ConvexReLURegressor, ConvexAbsRegressor, GatedReLURegressor):
        with pytest.raises(ValueError, match="leaky ReLU estimators only"):
            cls(slope=0.1).fit(X, y)
    with pytest.raises(ValueError, match="needs slope"):
        convexnn.fit(X, y, formulation="leaky_relu")
    x = np.linspace(-1.0, 1.0, 15).reshape(-1, 1)
    t = x[:, 0]
    for cls, target in ((ConvexAbsRegressor, np.abs(t)), (ConvexLeakyReLURegressor, np.sin(3 * t))):
        fit = cls(lam=1e-4, exact=True, solver="clarabel").fit(x, target)
        assert fit.exhaustive_ and fit.status_ == "converged"
        assert fit.certificate_["network_objective"] == pytest.approx(fit.objective_, rel=1e-8)


def test_user_gates(regression: Data) -> None:
    X, y = regression
    gates = np.random.default_rng(1).normal(size=(5, 12))
    est = GatedReLURegressor(gates=gates).fit(X, y)
    assert est.certificate_["n_patterns"] <= 12
    for j in range(est.n_neurons_):
        assert any(np.allclose(est.gates_[:, j], gates[:, i]) for i in range(12))


def test_pipeline_and_grid_search_over_lambda(regression: Data, binary: Data) -> None:
    X, y = regression
    pipe = make_pipeline(StandardScaler(), GatedReLURegressor(n_patterns=20))
    search = GridSearchCV(pipe, {"gatedreluregressor__lam": [1e-4, 1e-2, 1.0]}, cv=3)
    search.fit(X, y)
    assert search.best_params_["gatedreluregressor__lam"] in (1e-4, 1e-2)
    assert search.score(X, y) > 0.5
    Xb, yb = binary
    clf = GridSearchCV(
        make_pipeline(StandardScaler(), ConvexReLUClassifier(n_patterns=10, tol=1e-4)),
        {"convexreluclassifier__lam": [1e-3, 1e-1]},
        cv=2,
    ).fit(Xb, yb)
    assert clf.predict_proba(Xb).shape == (80, 2)


@pytest.mark.parametrize("cls", REGRESSORS + CLASSIFIERS)
def test_save_load_round_trip(cls: Any, regression: Data, binary: Data, tmp_path: Path) -> None:
    X, y = binary if cls in CLASSIFIERS else regression
    if cls in CLASSIFIERS:
        y = np.array(["neg", "pos"])[y]
    est = cls(n_patterns=15, standardize=True, lam=2e-3).fit(X, y)
    path = tmp_path / "model.json"
    est.save(path)
    doc = json.loads(path.read_text())
    assert doc["format"] == convexnn.FORMAT and doc["version"] == convexnn.FORMAT_VERSION
    for again in (cls.load(path), convexnn.load(path), pickle.loads(pickle.dumps(est))):
        assert type(again) is cls
        np.testing.assert_array_equal(again.predict(X), est.predict(X))
        assert again.objective_ == est.objective_
        assert again.get_params()["lam"] == 2e-3
        assert again.n_features_in_ == X.shape[1]
    model = convexnn.Model.load(path)
    np.testing.assert_array_equal(model.decision_function(X), est.model_.decision_function(X))
    other = ConvexReLURegressor if cls is not ConvexReLURegressor else GatedReLURegressor
    with pytest.raises(ValueError, match="convexnn.load"):
        other.load(path)


def _read_safetensors(path: Path) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    body = raw[8 + n :]
    dtypes = {"F32": "<f4", "F64": "<f8"}
    out = {}
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype=dtypes[info["dtype"]]).reshape(info["shape"])
        end = max(end, b)
    assert end == len(body)
    return out, header.get("__metadata__", {})


@pytest.mark.parametrize("cls", REGRESSORS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_safetensors_export_reproduces_predictions(
    cls: Any, dtype: str, regression: Data, tmp_path: Path
) -> None:
    X, y = regression
    est = cls(n_patterns=15, standardize=True).fit(X, y)
    path = tmp_path / "w.safetensors"
    est.export_safetensors(path, dtype=dtype)
    t, meta = _read_safetensors(path)
    assert meta["convexnn_formulation"] == cls._formulation and meta["convexnn_bias"] == "true"
    assert t["hidden.weight"].shape == (est.n_neurons_, 5)
    assert t["hidden.weight"].dtype == np.dtype(dtype)
    inputs = (X - t["input.mean"]) / t["input.scale"]
    inputs = np.column_stack([inputs, np.ones(len(X))])
    pre = inputs @ t["hidden.weight"].T.astype(np.float64)
    if "gates.weight" in t:
        act = (inputs @ t["gates.weight"].T.astype(np.float64) >= 0) * pre
    elif meta["convexnn_formulation"] == "leaky_relu":
        act = np.where(pre >= 0, pre, float(meta["convexnn_slope"]) * pre)
    elif meta["convexnn_formulation"] == "abs":
        act = np.abs(pre)
    else:
        act = np.maximum(pre, 0.0)
    out = act @ t["output.weight"][0].astype(np.float64)
    tol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(out, est.predict(X), rtol=tol, atol=tol)


def test_progress_callback_is_called(regression: Data) -> None:
    X, y = regression
    records: List[Dict[str, Any]] = []
    GatedReLURegressor(n_patterns=30, tol=1e-10, callback=records.append, report_every=5).fit(X, y)
    assert len(records) >= 2
    assert {"iteration", "objective", "gap", "seconds"} <= set(records[0])
    assert records[-1]["iteration"] > records[0]["iteration"]


def test_raising_from_the_callback_stops_the_fit(regression: Data) -> None:
    X, y = regression
    calls = []

    def stop(record: Dict[str, Any]) -> None:
        calls.append(record)
        raise RuntimeError("stop here")

    est = GatedReLURegressor(n_patterns=30, tol=1e-12, max_iter=100_000, callback=stop)
    with pytest.raises(RuntimeError, match="stop here"):
        est.fit(X, y)
    assert len(calls) == 1
    assert not hasattr(est, "model_")


def test_callback_returning_false_interrupts(regression: Data) -> None:
    X, y = regression
    est = GatedReLURegressor(
        n_patterns=30, tol=1e-12, max_iter=100_000, callback=lambda r: False
    ).fit(X, y)
    assert est.status_ == "interrupted"
    assert est.certificate_["iterations"] < 100_000
    assert np.isfinite(est.predict(X)).all()


def test_verbose_prints_progress(regression: Data, capsys: Any) -> None:
    X, y = regression
    GatedReLURegressor(n_patterns=10, verbose=True).fit(X, y)
    assert "[convexnn] iteration" in capsys.readouterr().err


def test_gil_is_released_during_fit() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(2000, 10))
    y = np.maximum(X @ rng.normal(size=10), 0.0) + 0.1 * rng.normal(size=2000)
    done = threading.Event()
    seconds: List[float] = []
    statuses: List[str] = []

    def work() -> None:
        t = time.perf_counter()
        # FISTA, which cannot reach this tolerance within the second on any machine (auto's
        # block coordinate descent can, on a fast one).
        est = GatedReLURegressor(
            n_patterns=200,
            lam=1e-6,
            tol=1e-15,
            max_iter=10**7,
            time_limit=1.0,
            solver="fista",
        ).fit(X, y)
        seconds.append(time.perf_counter() - t)
        statuses.append(est.status_)
        done.set()

    worker = threading.Thread(target=work)
    worker.start()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    worker.join()
    # Without the GIL released the main thread could not run while the solver works.
    assert statuses == ["time_limit"]
    assert ticks >= 10 * seconds[0]


def test_regularization_path(regression: Data) -> None:
    X, y = regression
    est = GatedReLURegressor(n_patterns=20)
    lmax = est.lambda_max(X, y)
    assert lmax > 0
    points = est.regularization_path(X, y, [lmax * 1e-3, lmax * 1.01, lmax * 1e-1])
    lams = [p["lambda"] for p in points]
    assert lams == sorted(lams, reverse=True)
    assert points[0]["active_neurons"] == 0
    assert points[-1]["active_neurons"] > 0
    assert all(p["status"] == "converged" for p in points)
    assert not hasattr(est, "model_")


CHILD = r"""
import sys
import numpy as np
from convexnn import GatedReLURegressor

rng = np.random.default_rng(3)
X = rng.normal(size=(2000, 10))
y = np.maximum(X @ rng.normal(size=10), 0.0) + 0.1 * rng.normal(size=2000)
seen = []

def report(record):
    if not seen:
        print("running", flush=True)
    seen.append(record)

est = GatedReLURegressor(
    n_patterns=200,
    lam=1e-6,
    tol=1e-15,
    max_iter=10**8,
    time_limit=120,
    callback=report,
    solver="fista",
)
try:
    est.fit(X, y)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(3)
sys.exit(0)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is POSIX")
def test_ctrl_c_interrupts_a_long_fit() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "running"
        start = time.perf_counter()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 3, err
    assert "interrupted" in out
    assert time.perf_counter() - start < 10.0


def test_threshold_networks_fit_predict_and_export(regression: Data, binary: Data, tmp_path: Path) -> None:
    from convexnn import ThresholdClassifier, ThresholdRegressor, load

    x = np.linspace(-1.0, 1.0, 15).reshape(-1, 1)
    y = (x[:, 0] > 0.2).astype(float) - 0.5 * (x[:, 0] < -0.5)
    reg = ThresholdRegressor(lam=1e-4, exact=True).fit(x, y)
    assert reg.exhaustive_ and reg.status_ == "converged"
    assert reg.certificate_["n_patterns"] == 2 * 15 - 1
    assert reg.amplitudes_ is not None and reg.amplitudes_.shape == reg.output_weights_.shape
    # A step target is fitted almost exactly by step neurons.
    assert np.max(np.abs(reg.predict(x) - y)) < 1e-2
    # The squared-loss Lasso's default (coordinate descent on the bits) and FISTA agree.
    assert reg.certificate_["solver"] == "cd"
    fista = ThresholdRegressor(lam=1e-4, exact=True, solver="fista", tol=1e-9, max_iter=200000).fit(x, y)
    assert abs(fista.objective_ - reg.objective_) <= 1e-6 * reg.objective_
    from convexnn import ConvexReLURegressor

    with pytest.raises(ValueError, match="cd"):
        ConvexReLURegressor(solver="cd").fit(x, y)
    reg.save(tmp_path / "t.json")
    back = load(tmp_path / "t.json")
    assert isinstance(back, ThresholdRegressor)
    np.testing.assert_array_equal(back.predict(x), reg.predict(x))
    reg.export_safetensors(tmp_path / "t.safetensors", dtype="float64")
    raw = (tmp_path / "t.safetensors").read_bytes()
    assert b'"amplitude"' in raw
    X, labels = binary
    clf = ThresholdClassifier(lam=1e-3, n_patterns=40).fit(X, labels)
    assert set(np.unique(clf.predict(X))) <= set(np.unique(labels))
    assert clf.score(X, labels) > 0.7


def test_threshold_hinge_classifier_is_certified_and_round_trips(binary: Data, tmp_path: Path) -> None:
    from convexnn import ThresholdHingeClassifier, load

    X, labels = binary
    for solver in ["auto", "pdhg"]:
        clf = ThresholdHingeClassifier(lam=1e-2, n_patterns=40, solver=solver).fit(X, labels)
        assert clf.status_ == "converged", clf.certificate_
        assert clf.certificate_["gap"] <= 1e-6 * clf.certificate_["objective"]
        assert clf.score(X, labels) > 0.7
    clf.save(tmp_path / "h.json")
    back = load(tmp_path / "h.json")
    assert isinstance(back, ThresholdHingeClassifier)
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))


@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (ConvexReLURegressor, {}),
        (ConvexLeakyReLURegressor, {"slope": 0.2}),
        (ConvexAbsRegressor, {}),
        (convexnn.ThresholdRegressor, {}),
    ],
)
def test_dictionary_regressors_match_the_cli_and_keep_free_biases(
    cls: Any, kwargs: Dict[str, Any], tmp_path: Path
) -> None:
    rng = np.random.default_rng(3)
    x = rng.uniform(-2.0, 2.0, size=(20, 1))
    y = np.sin(2.0 * x[:, 0]) + 1.0 + 0.05 * rng.normal(size=20)
    est = cls(lam=2e-3, dictionary=True, **kwargs).fit(x, y)
    assert est.status_ == "converged" and est.exhaustive_
    cert = est.certificate_
    assert abs(cert["network_objective"] - est.objective_) <= 1e-8 * est.objective_
    assert est.hidden_biases_.shape == (est.n_neurons_,)
    assert est.intercept_ is not None
    assert est.hidden_weights_.shape == (1, est.n_neurons_)
    # The saved model predicts the same through the CLI's file format and reloads.
    path = tmp_path / "d.json"
    est.save(path)
    back = convexnn.load(path)
    assert back.dictionary and np.allclose(back.predict(x), est.predict(x))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    model = {ConvexReLURegressor: "relu", ConvexAbsRegressor: "abs"}.get(cls)
    if model is not None:
        out = subprocess.run(
            [CLI, "train", "--x", "x.npy", "--y", "y.npy", "--dictionary", "--model", model,
             "--lambda", "2e-3", "--json"],
            cwd=tmp_path, capture_output=True, text=True, check=True,
        )
        cli = json.loads(out.stdout)
        assert abs(cli["objective"] - est.objective_) <= 1e-6 * est.objective_
    with pytest.raises(ValueError, match="n × 1|shape"):
        cls(dictionary=True, **kwargs).fit(np.c_[x, x], y)
