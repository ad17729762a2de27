"""Vector regression (docs/programs.md §3e) from Python: a 2-D y trains one gated network with c
outputs and shared hidden neurons; predictions are (n, c), models round-trip through files, the
estimator follows scikit-learn's multi-output conventions, and the command-line tool agrees."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import r2_score

import convexnn
from convexnn import ConvexReLURegressor, GatedReLURegressor

ROOT = Path(__file__).resolve().parents[3]
CLI = Path(os.environ.get("CONVEXNN_CLI", ROOT / "target" / "release" / "convexnn"))


def planted(seed: int = 3, n: int = 40, d: int = 3):
    """Two ReLU neurons feeding two outputs with different weights, plus noise."""
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, d))
    h = np.maximum(np.column_stack([x[:, 0] - 0.5 * x[:, 1] + 0.2, 0.7 * x[:, 2] + 0.3 * x[:, 0]]), 0)
    y = h @ np.array([[1.0, 0.3], [-0.5, 1.5]]) + 0.05 * r.normal(size=(n, 2))
    return x, y


@pytest.mark.parametrize("outputs", ["group", "nuclear", "separate"])
def test_fit_with_2d_targets_trains_c_outputs(outputs):
    x, y = planted()
    res = convexnn.fit(x, y, lam=1e-3, n_patterns=20, outputs=outputs, bias=True)
    assert res["status"] == "converged"
    assert res["relative_gap"] <= 1e-6
    assert res["outputs"]["outputs"] == 2 and res["outputs"]["penalty"] == outputs
    assert res["outputs"]["classes"] is None
    model = res["model"]
    assert model.n_outputs == 2 and model.outputs == outputs
    assert model.target_names == ["y0", "y1"]
    pred = model.predict(x)
    assert pred.shape == (40, 2)
    np.testing.assert_array_equal(pred, model.decision_function(x))
    assert res["output_weights"].shape[1] == 2
    # The objective: (1/(2nc))||F(X) - Y||^2 + lam * penalty; the network's data term is the
    # convex one's (the read-out reproduces the predictions), its penalty equal ("nuclear",
    # "separate") or larger ("group").
    if outputs == "group":
        assert res["network_objective"] >= res["objective"] * (1 - 1e-9)
    else:
        assert res["network_objective"] == pytest.approx(res["objective"], rel=1e-8)
    assert np.mean((pred - y) ** 2) < 0.05


def test_separate_penalty_decouples_into_single_output_fits():
    # (1/(2nc)) sum_k ||r_k||^2 + lam sum_k sum_i ||u_ki||
    #   = (1/c) sum_k [(1/(2n)) ||r_k||^2 + c lam sum_i ||u_ki||] over the same gates.
    x, y = planted()
    common = dict(n_patterns=20, tol=1e-9, bias=True)
    joint = convexnn.fit(x, y, lam=1e-3, outputs="separate", **common)["objective"]
    single = [convexnn.fit(x, y[:, k], lam=2e-3, **common)["objective"] for k in range(2)]
    assert joint == pytest.approx(np.mean(single), rel=1e-7)


def test_one_column_2d_y_is_a_1d_y():
    x, y = planted()
    a = convexnn.fit(x, y[:, :1], lam=1e-3, n_patterns=20)
    b = convexnn.fit(x, y[:, 0], lam=1e-3, n_patterns=20)
    assert a["outputs"] is None and a["model"].n_outputs == 1
    assert a["objective"] == b["objective"]
    assert a["model"].predict(x).shape == (40,)


def test_model_save_load_and_pickle_round_trip(tmp_path):
    x, y = planted()
    model = convexnn.fit(x, y, lam=1e-3, n_patterns=20, outputs="nuclear", standardize=True)["model"]
    model.save(tmp_path / "m.json")
    back = convexnn.Model.load(tmp_path / "m.json")
    np.testing.assert_array_equal(back.predict(x), model.predict(x))
    assert back.n_outputs == 2 and back.outputs == "nuclear"
    doc = json.loads(back.to_json())
    assert doc["preprocessing"]["target_names"] == ["y0", "y1"]
    assert len(doc["preprocessing"]["standardizer"]["mean"]) == 3
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(x), model.predict(x))


def test_estimator_fit_predict_score_and_load(tmp_path):
    x, y = planted()
    est = GatedReLURegressor(lam=1e-3, n_patterns=20, outputs="nuclear").fit(x, y)
    assert est.n_outputs_ == 2 and est.status_ == "converged"
    pred = est.predict(x)
    assert pred.shape == (40, 2)
    assert est.output_weights_.shape == (est.n_neurons_, 2)
    assert est.score(x, y) == pytest.approx(r2_score(y, pred))
    assert est.score(x, y) > 0.9
    est.save(tmp_path / "e.json")
    back = convexnn.load(tmp_path / "e.json")
    assert isinstance(back, GatedReLURegressor) and back.outputs == "nuclear"
    np.testing.assert_array_equal(back.predict(x), pred)
    # A 1-D y stays 1-D; the default block norm is the group one.
    one = GatedReLURegressor(lam=1e-3, n_patterns=20).fit(x, y[:, 0])
    assert one.predict(x).shape == (40,) and one.n_outputs_ == 1
    assert GatedReLURegressor(n_patterns=20).fit(x, y).certificate_["outputs"]["penalty"] == "group"


def test_estimator_safetensors_output_layer_is_c_by_m(tmp_path):
    x, y = planted()
    est = GatedReLURegressor(lam=1e-3, n_patterns=20, outputs="nuclear").fit(x, y)
    est.export_safetensors(tmp_path / "w.safetensors", dtype="float64")
    raw = (tmp_path / "w.safetensors").read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    assert header["output.weight"]["shape"] == [2, est.n_neurons_]
    start, end = header["output.weight"]["data_offsets"]
    w = np.frombuffer(raw[8 + size + start : 8 + size + end], dtype="<f8").reshape(2, -1)
    np.testing.assert_array_equal(w, est.output_weights_.T)


def test_bad_combinations_are_refused():
    x, y = planted()
    with pytest.raises(ValueError, match="vector regression.*squared"):
        convexnn.fit(x, y, loss="logistic")
    with pytest.raises(ValueError, match="vector regression.*squared"):
        convexnn.fit(x, y, loss="softmax")
    with pytest.raises(ValueError, match="one_hot"):
        convexnn.fit(x, y, one_hot=True)
    with pytest.raises(ValueError, match="gated"):
        convexnn.fit(x, y, formulation="relu")
    with pytest.raises(ValueError, match="dictionary"):
        convexnn.fit(x[:, :1], y, dictionary=True)
    with pytest.raises(ValueError, match="outputs"):
        convexnn.fit(x, y, outputs="frobenius")
    with pytest.raises(ValueError, match="rows"):
        convexnn.fit(x, y[:-1])
    bad = y.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"Y\[3, 1\]"):
        convexnn.fit(x, bad)
    with pytest.raises(ValueError, match="GatedReLURegressor fits several target columns"):
        ConvexReLURegressor().fit(x, y)
    with pytest.raises(ValueError, match="outputs must be"):
        GatedReLURegressor(outputs="frobenius").fit(x, y)


@pytest.mark.skipif(not CLI.is_file(), reason=f"the command-line tool is not built ({CLI})")
def test_same_objective_and_predictions_as_the_cli(tmp_path):
    x, y = planted()
    np.save(tmp_path / "X.npy", x)
    np.save(tmp_path / "Y.npy", y)
    args = ["--lambda", "1e-3", "--sample", "20", "--outputs", "nuclear", "--bias"]
    out = subprocess.run(
        [str(CLI), "train", "--x", "X.npy", "--y", "Y.npy", *args, "--json", "--quiet",
         "--out", "m.json"],
        check=True, capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )
    cli = json.loads(out.stdout)
    assert cli["outputs"]["outputs"] == 2
    res = convexnn.fit(x, y, lam=1e-3, n_patterns=20, outputs="nuclear", bias=True)
    assert res["objective"] == pytest.approx(cli["objective"], rel=1e-6)
    assert res["n_patterns"] == cli["n_patterns"]
    # The CLI's model file is readable here, as the matching estimator.
    est = convexnn.load(tmp_path / "m.json")
    assert isinstance(est, GatedReLURegressor)
    assert est.predict(x).shape == (40, 2)
    subprocess.run(
        [str(CLI), "predict", "--model", "m.json", "--input", "X.npy", "--out", "P.npy"],
        check=True, cwd=tmp_path, timeout=300,
    )
    np.testing.assert_allclose(np.load(tmp_path / "P.npy"), est.predict(x), rtol=1e-12, atol=1e-12)
    assert cli["train"]["r2"] == pytest.approx(est.score(x, y), rel=1e-9)


@pytest.mark.parametrize("formulation", ["relu", "abs"])
def test_cone_networks_take_the_separate_program(formulation):
    # One core program per output over shared patterns (docs/programs.md (M53b)): certified, its
    # network attains the convex objective and weights each neuron on one output.
    X, Y = planted()
    r = convexnn.fit(X, Y, formulation=formulation, outputs="separate", lam=1e-3,
                     n_patterns=10, bias=True)
    assert r["status"] == "converged"
    assert r["outputs"]["outputs"] == 2 and r["outputs"]["penalty"] == "separate"
    assert r["network_objective"] == pytest.approx(r["objective"], rel=1e-8)
    alpha = np.asarray(r["output_weights"])
    assert alpha.shape[1] == 2
    assert np.all(np.count_nonzero(alpha, axis=1) == 1)
    assert r["model"].predict(X).shape == (X.shape[0], 2)
    with pytest.raises(Exception, match="separate block norm"):
        convexnn.fit(X, Y, formulation=formulation, outputs="group", lam=1e-3, n_patterns=10)
