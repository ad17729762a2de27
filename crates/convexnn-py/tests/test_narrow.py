"""Deep narrow ReLU networks on scalar data (``dictionary=True`` with ``depth`` 3 or 4): the fit is
certified, its network attains the convex optimum and predicts what its chains compute, deeper
dictionaries never do worse, the model survives saving, loading, pickling and export, and bad
settings are clear errors."""

from __future__ import annotations

import json
import os
import pickle
import struct
import subprocess
from pathlib import Path
from typing import Any, Dict, Tuple

import numpy as np
import pytest

import convexnn
from convexnn import ConvexAbsRegressor, ConvexReLURegressor, Model

ROOT = Path(__file__).resolve().parents[3]
CLI = Path(os.environ.get("CONVEXNN_CLI", ROOT / "target" / "release" / "convexnn"))
LAM = 5e-3


@pytest.fixture
def scalar() -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    n = 14
    x = 2.0 * rng.normal(size=(n, 1))
    y = np.sin(1.5 * x[:, 0]) + 1.0 + 0.3 * rng.normal(size=n)
    return x, y


def narrow_fit(x: np.ndarray, y: np.ndarray, depth: int, **kwargs: Any) -> Dict[str, Any]:
    return convexnn.fit(
        x, y, formulation="relu", lam=LAM, dictionary=True, depth=depth, tol=1e-7,
        max_iter=500_000, **kwargs,
    )


def chain_outputs(model: Model, x: np.ndarray) -> np.ndarray:
    """f(x) = Σ_j α_j h_j(x) + ξ evaluated from the model's chains, h_{l+1} = (w_l h_l + b_l)₊."""
    f = np.full(x.shape[0], model.intercept)
    for (w, b), a in zip(model.chains, model.output_weights):
        h = x[:, 0].copy()
        for wl, bl in zip(w, b):
            h = np.maximum(wl * h + bl, 0.0)
        f += a * h
    return f


def rel(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


@pytest.mark.parametrize("depth", [3, 4])
def test_deep_narrow_fit_is_certified_and_its_network_attains_the_optimum(
    scalar: Tuple[np.ndarray, np.ndarray], depth: int
) -> None:
    x, y = scalar
    res = narrow_fit(x, y, depth)
    assert res["status"] == "converged", res
    assert res["depth"] == depth
    assert rel(res["network_objective"], res["objective"]) <= 1e-8
    assert res["dual_objective"] <= res["objective"] * (1.0 + 1e-12)
    model = res["model"]
    assert model.depth == depth and model.dictionary and model.formulation == "relu"
    assert model.certificate["depth"] == depth
    chains = model.chains
    assert chains is not None and len(chains) == len(model.output_weights) > 0
    assert all(len(w) == depth - 1 and len(b) == depth - 1 for w, b in chains)
    assert len(res["chains"]) == len(chains)
    # The layers live in the chains: no hidden weights or neuron biases, but an intercept.
    assert model.hidden_weights.shape == (1, 0)
    assert model.hidden_biases is None and model.intercept is not None
    assert "deep narrow relu (depth" in repr(model)
    # The model predicts what its chains compute, and its objective with the weight decay
    # (λ/L) Σ_j (Σ_l |w_{j,l}|^L + |α_j|^L) is the convex optimum.
    pred = model.predict(x)
    np.testing.assert_allclose(pred, chain_outputs(model, x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(model.decision_function(x), pred, rtol=0, atol=0)
    penalty = sum(np.sum(np.abs(w) ** depth) for w, _ in chains)
    penalty += np.sum(np.abs(model.output_weights) ** depth)
    objective = 0.5 * np.mean((pred - y) ** 2) + LAM * penalty / depth
    assert rel(objective, res["objective"]) <= 1e-8
    # On unseen points inside and outside the data's range too.
    grid = np.linspace(x.min() - 1.0, x.max() + 1.0, 41).reshape(-1, 1)
    np.testing.assert_allclose(model.predict(grid), chain_outputs(model, grid), rtol=1e-12, atol=1e-12)


def test_deeper_dictionaries_never_do_worse(scalar: Tuple[np.ndarray, np.ndarray]) -> None:
    x, y = scalar
    opt = {depth: narrow_fit(x, y, depth)["objective"] for depth in (2, 3, 4)}
    assert opt[3] <= opt[2] * (1.0 + 1e-6), opt
    assert rel(opt[4], opt[3]) <= 1e-6, opt


def test_two_layer_models_have_depth_two_and_no_chains(scalar: Tuple[np.ndarray, np.ndarray]) -> None:
    x, y = scalar
    res = narrow_fit(x, y, 2)
    model = res["model"]
    assert model.depth == 2 and model.chains is None and res["chains"] is None
    assert res["depth"] is None and model.certificate["depth"] is None
    assert json.loads(model.to_json())["settings"]["patterns"] == "dictionary:1d"
    plain = convexnn.fit(x, y, formulation="relu", lam=LAM, n_patterns=10)["model"]
    assert plain.depth == 2 and plain.chains is None


@pytest.mark.parametrize("depth", [3, 4])
def test_deep_narrow_model_round_trips(
    scalar: Tuple[np.ndarray, np.ndarray], depth: int, tmp_path: Path
) -> None:
    x, y = scalar
    model = narrow_fit(x, y, depth)["model"]
    doc = json.loads(model.to_json())
    assert doc["settings"]["patterns"] == f"dictionary:1d:depth{depth}"
    assert len(doc["network"]["chains"]) == len(model.chains)
    path = tmp_path / "narrow.json"
    model.save(path)
    grid = np.linspace(x.min() - 1.0, x.max() + 1.0, 31).reshape(-1, 1)
    for back in (Model.load(path), Model.from_json(model.to_json()), pickle.loads(pickle.dumps(model))):
        assert back.depth == depth
        np.testing.assert_array_equal(back.predict(grid), model.predict(grid))
        np.testing.assert_array_equal(back.output_weights, model.output_weights)
        for (w0, b0), (w1, b1) in zip(model.chains, back.chains):
            np.testing.assert_array_equal(w0, w1)
            np.testing.assert_array_equal(b0, b1)
        assert back.certificate["objective"] == model.certificate["objective"]


def test_estimator_fits_saves_and_exports(scalar: Tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = scalar
    est = ConvexReLURegressor(lam=LAM, dictionary=True, depth=3).fit(x, y)
    assert est.get_params()["depth"] == 3
    assert est.status_ == "converged" and est.certificate_["depth"] == 3
    assert est.model_.depth == 3 and est.chains_ is not None
    assert est.n_neurons_ == len(est.chains_) == est.output_weights_.shape[0]
    assert rel(est.certificate_["network_objective"], est.objective_) <= 1e-8
    pred = est.predict(x)
    np.testing.assert_allclose(pred, chain_outputs(est.model_, x), rtol=1e-12, atol=1e-12)
    assert est.score(x, y) > 0.5
    # Two layers by default, the same optimum as the core call.
    assert ConvexReLURegressor().get_params()["depth"] == 2
    assert rel(est.objective_, narrow_fit(x, y, 3)["objective"]) <= 1e-6
    # Saved and loaded, by the class and by convexnn.load: same parameters and predictions.
    path = tmp_path / "est.json"
    est.save(path)
    for back in (convexnn.load(path), ConvexReLURegressor.load(path)):
        assert type(back) is ConvexReLURegressor
        assert back.get_params()["depth"] == 3 and back.get_params()["dictionary"]
        np.testing.assert_array_equal(back.predict(x), pred)
    # A model file without the Python package's parameters (as the command-line tool writes it)
    # restores the depth from the network.
    doc = json.loads(path.read_text())
    del doc["python"]
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(doc))
    back = convexnn.load(bare)
    assert back.get_params()["depth"] == 3
    np.testing.assert_array_equal(back.predict(x), pred)
    # The safetensors export holds the chains and reproduces the predictions.
    st = tmp_path / "narrow.safetensors"
    est.export_safetensors(st, dtype="float64")
    tensors, meta = read_safetensors(st)
    assert meta["convexnn_depth"] == "3" and "hidden.weight" not in tensors
    w, b = tensors["chain.weight"], tensors["chain.bias"]
    assert w.shape == b.shape == (est.n_neurons_, 2)
    h = np.repeat(x, est.n_neurons_, axis=1)
    for l in range(w.shape[1]):
        h = np.maximum(h * w[:, l] + b[:, l], 0.0)
    f = h @ tensors["output.weight"][0] + tensors["output.bias"][0]
    np.testing.assert_allclose(f, pred, rtol=1e-10, atol=1e-10)


def test_path_and_lambda_max_take_the_depth(scalar: Tuple[np.ndarray, np.ndarray]) -> None:
    x, y = scalar
    kwargs: Dict[str, Any] = {"formulation": "relu", "dictionary": True, "depth": 3}
    lmax = convexnn._convexnn.lambda_max_of(x, y, **kwargs)
    assert lmax > 0
    above = convexnn.fit(x, y, lam=1.01 * lmax, **kwargs)
    assert above["status"] == "converged" and above["model"].chains == []
    assert above["model"].depth == 3
    below = convexnn.fit(x, y, lam=0.5 * lmax, **kwargs)
    assert len(below["model"].chains) > 0
    est = ConvexReLURegressor(dictionary=True, depth=3, tol=1e-7, max_iter=500_000)
    assert rel(est.lambda_max(x, y), lmax) <= 1e-12
    points = est.regularization_path(x, y, [0.5 * lmax, LAM])
    assert [p["depth"] for p in points] == [3, 3]
    assert all(p["status"] == "converged" for p in points)
    assert all(p["chains"] is not None for p in points)
    assert rel(points[-1]["objective"], narrow_fit(x, y, 3)["objective"]) <= 1e-6


@pytest.mark.skipif(not CLI.is_file(), reason=f"the command-line tool is not built ({CLI})")
def test_command_line_models_load_with_their_depth(
    scalar: Tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    x, y = scalar
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    out = subprocess.run(
        [str(CLI), "train", "--x", "x.npy", "--y", "y.npy", "--dictionary", "--model", "relu",
         "--depth", "3", "--lambda", str(LAM), "--json", "--out", "m.json"],
        cwd=tmp_path, capture_output=True, text=True, check=True, timeout=300,
    )
    cli = json.loads(out.stdout)
    assert cli["depth"] == 3 and cli["patterns_source"] == "dictionary:1d:depth3"
    model = Model.load(tmp_path / "m.json")
    assert model.depth == 3
    np.testing.assert_allclose(model.predict(x), chain_outputs(model, x), rtol=1e-12, atol=1e-12)
    est = convexnn.load(tmp_path / "m.json")
    assert type(est) is ConvexReLURegressor and est.get_params()["depth"] == 3
    assert rel(cli["objective"], narrow_fit(x, y, 3)["objective"]) <= 1e-6


@pytest.mark.skipif(not CLI.is_file(), reason=f"the command-line tool is not built ({CLI})")
def test_deep_threshold_models_report_their_depth(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(6, 2)))
    np.save(tmp_path / "y.npy", rng.normal(size=6))
    subprocess.run(
        [str(CLI), "train", "--x", "x.npy", "--y", "y.npy", "--model", "threshold", "--bias",
         "--hidden-widths", "2", "--out", "m.json"],
        cwd=tmp_path, capture_output=True, text=True, check=True, timeout=300,
    )
    model = Model.load(tmp_path / "m.json")
    assert model.depth == 3 and model.chains is None


def test_bad_depth_settings_are_clear_errors(scalar: Tuple[np.ndarray, np.ndarray]) -> None:
    x, y = scalar
    with pytest.raises(ValueError, match="depth 3 and 4"):
        convexnn.fit(x, y, formulation="relu", dictionary=True, depth=5)
    with pytest.raises(ValueError, match="depth 3 and 4"):
        ConvexReLURegressor(dictionary=True, depth=5).fit(x, y)
    with pytest.raises(ValueError, match="for ReLU networks"):
        convexnn.fit(x, y, formulation="abs", dictionary=True, depth=3)
    with pytest.raises(ValueError, match="for ReLU networks"):
        ConvexAbsRegressor(dictionary=True, depth=3).fit(x, y)
    with pytest.raises(ValueError, match="set dictionary too"):
        convexnn.fit(x, y, formulation="relu", depth=3)
    with pytest.raises(ValueError, match="set dictionary too"):
        ConvexReLURegressor(depth=4).fit(x, y)
    with pytest.raises(ValueError, match="set dictionary too"):
        convexnn._convexnn.lambda_max_of(x, y, formulation="relu", depth=3)
    for bad in (1, 0, -3, 2.5, "3", True, None):
        with pytest.raises(ValueError, match="depth must be an integer"):
            ConvexReLURegressor(dictionary=True, depth=bad).fit(x, y)
    with pytest.raises(ValueError, match="n × 1|shape|scalar"):
        ConvexReLURegressor(dictionary=True, depth=3).fit(np.c_[x, x], y)


def read_safetensors(path: Path) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + size])
    body = raw[8 + size :]
    kinds = {"F32": "<f4", "F64": "<f8"}
    tensors = {
        name: np.frombuffer(body[a:b], dtype=kinds[info["dtype"]]).reshape(info["shape"])
        for name, info in header.items()
        if name != "__metadata__"
        for a, b in [info["data_offsets"]]
    }
    return tensors, header.get("__metadata__", {})
