"""The structured interior point for the squared-loss ReLU program from Python."""

from __future__ import annotations

import numpy as np
import pytest

import convexnn


def data(seed: int = 0, n: int = 80, d: int = 4):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = np.maximum(x[:, 0] - 0.5 * x[:, 1], 0.0) + 0.1 * rng.standard_normal(n)
    return x, y


@pytest.mark.parametrize("seed", [0, 1])
def test_interior_matches_clarabel_and_is_the_default(seed):
    x, y = data(seed)
    common = dict(formulation="relu", lam=1e-2, n_patterns=12, bias=True, tol=1e-8, seed=seed)
    res = convexnn.fit(x, y, solver="interior", **common)
    assert res["status"] == "converged"
    # Zero up to rounding: the crossover puts the rows of its face at zero slack.
    assert res["cone_violation"] <= 1e-12 * res["objective"]
    exact = convexnn.fit(x, y, solver="clarabel", **common)
    assert res["objective"] == pytest.approx(exact["objective"], rel=1e-6)
    assert res["network_objective"] == pytest.approx(res["objective"], rel=1e-8)
    auto = convexnn.fit(x, y, **common)
    assert auto["solver"] == "interior"


def test_interior_refuses_other_losses():
    x, y = data()
    with pytest.raises(ValueError, match="squared loss"):
        convexnn.fit(x, (y > 0.2).astype(float), formulation="relu", loss="logistic",
                     solver="interior", n_patterns=8)


def test_working_rows_keep_the_optimum():
    x, y = data(2, n=300, d=5)
    common = dict(formulation="relu", lam=1e-3, n_patterns=20, bias=True, tol=1e-8, seed=2)
    runs = [convexnn.fit(x, y, solver="interior", working_rows=w, **common) for w in (0, 10, 1)]
    for r in runs:
        assert r["status"] == "converged"
        assert r["cone_violation"] <= 1e-12 * r["objective"]
        assert r["objective"] == pytest.approx(runs[0]["objective"], rel=1e-7)
    # The working sets change the path: every row against the default and against one row per
    # column of X (rows join as the steps would cross them).
    assert len({r["iterations"] for r in runs}) > 1


def test_working_rows_need_the_interior_point():
    x, y = data()
    with pytest.raises(ValueError, match="working_rows"):
        convexnn.fit(x, y, formulation="relu", solver="clarabel", n_patterns=8, working_rows=5)
