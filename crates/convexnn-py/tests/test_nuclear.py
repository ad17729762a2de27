"""solver="nuclear": the nuclear-norm heuristic (docs/programs.md (M37)) through the estimators,
against the exact solve, and against the command-line tool. The solves need an extension built with
the `nuclear` feature (``convexnn.HAS_NUCLEAR``); without it the solver must say to rebuild."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import convexnn
from convexnn import ConvexReLUClassifier, ConvexReLURegressor, GatedReLURegressor

# Four points of a planted width-2 ReLU network y = a1 (u1 t + b1)+ + a2 (u2 t + b2)+; the
# heuristic finds an exact fit here from its zero start.
T = np.array([-0.6542651266405949, 0.5972974560105194, 0.9416837800043749, 0.06789694564659411])
Y = np.array([0.0, 0.6703514631578672, 0.9877995390172186, 0.18236119854740251])
X = T[:, None]
LAM = 1e-4

ROOT = Path(__file__).resolve().parents[3]
CLI = Path(os.environ.get("CONVEXNN_CLI", ROOT / "target" / "release" / "convexnn"))

needs_sdp = pytest.mark.skipif(
    not convexnn.HAS_NUCLEAR,
    reason="the extension was built without the `nuclear` feature (system BLAS and LAPACK)",
)


def nuclear() -> ConvexReLURegressor:
    return ConvexReLURegressor(lam=LAM, solver="nuclear", nuclear_width=2).fit(X, Y)


@needs_sdp
def test_heuristic_fits_and_certifies_nothing() -> None:
    est = nuclear()
    c = est.certificate_
    assert est.status_ == "converged"
    assert c["heuristic"] is True
    assert c["guarantee"] == "heuristic, no optimality guarantee"
    assert c["gap"] is None and c["relative_gap"] is None and c["dual_objective"] is None
    assert math.isnan(est.gap_) and math.isnan(est.relative_gap_)
    assert c["fit_residual"] <= 1e-6
    assert est.n_neurons_ <= 2
    np.testing.assert_allclose(est.predict(X), Y, atol=1e-6)


@needs_sdp
def test_objective_is_above_the_certified_optimum_and_close_to_it() -> None:
    est = nuclear()
    exact = ConvexReLURegressor(lam=LAM, exact=True, solver="clarabel", tol=1e-8).fit(X, Y)
    assert exact.exhaustive_ and exact.status_ == "converged"
    lower = exact.certificate_["dual_objective"]
    assert est.objective_ >= lower - 1e-9 * abs(lower)
    assert est.objective_ <= 1.01 * exact.objective_


@needs_sdp
def test_model_file_round_trip(tmp_path: Path) -> None:
    est = nuclear()
    est.save(tmp_path / "m.json")
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["certificate"]["info"]["gap"] is None and doc["certificate"]["relative_gap"] is None
    assert doc["certificate"]["heuristic"]["guarantee"] == "heuristic, no optimality guarantee"
    back = convexnn.load(tmp_path / "m.json")
    assert type(back) is ConvexReLURegressor
    np.testing.assert_array_equal(back.predict(X), est.predict(X))
    assert math.isnan(back.gap_)


@needs_sdp
@pytest.mark.skipif(not CLI.is_file(), reason=f"the command-line tool is not built ({CLI})")
def test_same_network_as_the_cli(tmp_path: Path) -> None:
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", Y)
    out = subprocess.run(
        [str(CLI), "train", "--x", str(tmp_path / "X.npy"), "--y", str(tmp_path / "y.npy"),
         "--bias", "--model", "relu", "--solver", "nuclear", "--width", "2", "--lambda", str(LAM),
         "--json"],
        check=True, capture_output=True, text=True, timeout=300,
    )
    cli = json.loads(out.stdout)
    est = nuclear()
    assert cli["heuristic"] is True and cli["gap"] is None
    assert est.objective_ == pytest.approx(cli["objective"], rel=1e-9)
    assert est.status_ == cli["status"]


@pytest.mark.parametrize("cls", [ConvexReLUClassifier, GatedReLURegressor])
def test_other_estimators_refuse_it(cls: object) -> None:
    y = (Y > 0.1).astype(np.float64)
    with pytest.raises(ValueError, match="nuclear"):
        cls(solver="nuclear").fit(X, y)  # type: ignore[operator]


def test_dictionary_is_refused() -> None:
    with pytest.raises(ValueError, match="dictionary"):
        ConvexReLURegressor(lam=LAM, solver="nuclear", dictionary=True).fit(X, Y)


@pytest.mark.skipif(convexnn.HAS_NUCLEAR, reason="the extension has the `nuclear` feature")
def test_without_the_feature_it_says_to_rebuild() -> None:
    with pytest.raises(ValueError, match="rebuild with the `nuclear` feature"):
        nuclear()
