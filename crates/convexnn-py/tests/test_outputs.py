"""Multi-class classification (docs/programs.md §3e) from Python: softmax and one-hot squared loss,
the three block norms, predictions as class labels, agreement with the interior-point backend."""

from __future__ import annotations

import numpy as np
import pytest

import convexnn


def data(seed: int = 0, n: int = 60, c: int = 3):
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, 2))
    centers = np.array([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])[:c]
    labels = r.integers(0, c, size=n)
    x = x * 0.6 + centers[labels]
    return x, (labels * 2 + 1).astype(float)  # labels 1, 3, 5


@pytest.mark.parametrize("outputs", ["separate", "group", "nuclear"])
@pytest.mark.parametrize("loss,one_hot", [("softmax", False), ("squared", True)])
def test_multiclass_fit_predicts_labels_and_matches_clarabel(outputs, loss, one_hot):
    x, y = data()
    common = dict(loss=loss, one_hot=one_hot, outputs=outputs, lam=1e-2, n_patterns=8,
                  bias=True, tol=1e-9, max_iter=200_000)
    res = convexnn.fit(x, y, solver="fista", **common)
    assert res["status"] == "converged"
    out = res["outputs"]
    assert out["outputs"] == 3 and out["penalty"] == outputs
    assert out["classes"] == [1.0, 3.0, 5.0]
    model = res["model"]
    pred = model.predict(x)
    assert set(np.unique(pred)) <= {1.0, 3.0, 5.0}
    assert np.mean(pred == y) > 0.9
    scores = model.decision_function(x)
    assert scores.shape == (len(y), 3)
    assert res["output_weights"].shape[1] == 3
    if outputs != "group":
        assert res["network_objective"] == pytest.approx(res["objective"], rel=1e-8)
    else:
        assert res["network_objective"] >= res["objective"] * (1 - 1e-9)
    if outputs == "nuclear" and not convexnn.HAS_NUCLEAR:
        return
    exact = convexnn.fit(x, y, solver="clarabel", **common)
    assert exact["objective"] == pytest.approx(res["objective"], rel=1e-6)
    # The model file round-trips and predicts the same labels.
    again = convexnn.Model.from_json(res["model_json"])
    assert np.array_equal(again.predict(x), pred)


def test_bad_multiclass_settings_raise():
    x, y = data()
    with pytest.raises(ValueError, match="outputs"):
        convexnn.fit(x, y, loss="softmax", outputs="frobenius")
    with pytest.raises(ValueError, match="one_hot"):
        convexnn.fit(x, y, loss="logistic", one_hot=True)
    with pytest.raises(ValueError, match="gated"):
        convexnn.fit(x, y, loss="softmax", formulation="relu")
    with pytest.raises(ValueError, match="two classes"):
        convexnn.fit(x, np.ones(len(y)), loss="softmax")
