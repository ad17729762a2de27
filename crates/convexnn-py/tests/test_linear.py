"""Linear networks from Python (``formulation="linear"``, docs/programs.md §3f): the fully
connected network (group Lasso of the end-to-end weights), the linear CNN with one output weight per
patch position (nuclear norm), the circular CNN (Fourier domain), and the conv options
(``:separable``, ``:circular``, ``:nobias``); objectives and predictions recomputed in NumPy from
the returned weights, and errors as ValueError."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Tuple

import numpy as np
import pytest

import convexnn
from convexnn import (
    ConvexLinearClassifier,
    ConvexLinearRegressor,
    ConvexReLURegressor,
    GatedReLURegressor,
)


def vectors(n: int, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))
    return x, x @ np.array([1.0, -2.0, 0.5, 0.0, 0.3]) + 0.7 + 0.1 * rng.normal(size=n)


def images(n: int, seed: int, side: int = 4) -> Tuple[np.ndarray, np.ndarray]:
    """n random side × side images (rows, pixels row by row) and targets from a linear CNN."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, side * side))
    img = x.reshape(n, side, side)
    y = (img[:, :, 1:] - img[:, :, :-1]).sum(axis=(1, 2)) + img[:, 0, 0] + 0.05 * rng.normal(size=n)
    return x, y


def patches(x: np.ndarray, side: int, f: int, stride: int) -> np.ndarray:
    """(n, K, f·f + 1): each image's patches (positions row by row), pixels row by row, then a 1."""
    img = x.reshape(len(x), side, side)
    out = (side - f) // stride + 1
    rows = [
        img[:, a * stride : a * stride + f, b * stride : b * stride + f].reshape(len(x), f * f)
        for a in range(out)
        for b in range(out)
    ]
    p = np.stack(rows, axis=1)
    return np.concatenate([p, np.ones(p.shape[:2] + (1,))], axis=2)


def test_fully_connected_linear_network_is_the_group_lasso(tmp_path: Path) -> None:
    x, y = vectors(80, 1)
    lam = 1e-2
    est = ConvexLinearRegressor(lam=lam).fit(x, y)
    assert est.status_ == "converged", est.certificate_
    assert est.certificate_["formulation"] == "linear" and est.certificate_["n_patterns"] == 0
    assert est.objective_ == pytest.approx(est.certificate_["network_objective"], rel=1e-8)
    # One neuron carries the end-to-end weights w (the bias column last): f(x) = [x, 1] w.
    assert est.hidden_weights_.shape == (6, 1) and est.output_weights_.shape == (1,)
    w = (est.hidden_weights_ * est.output_weights_).sum(axis=1)
    np.testing.assert_allclose(w, est.convex_weights_[:, 0], rtol=1e-10, atol=1e-12)
    xb = np.column_stack([x, np.ones(len(x))])
    x_new, _ = vectors(30, 2)
    xb_new = np.column_stack([x_new, np.ones(len(x_new))])
    np.testing.assert_allclose(est.predict(x_new), xb_new @ w, rtol=1e-10, atol=1e-12)
    # The objective and the optimality condition of min (1/(2n))‖Xw − y‖² + λ‖w‖₂:
    # Xᵀ(Xw − y)/n = −λ w/‖w‖.
    r = xb @ w - y
    assert est.objective_ == pytest.approx(r @ r / (2 * len(y)) + lam * np.linalg.norm(w), rel=1e-8)
    grad = xb.T @ r / len(y)
    np.testing.assert_allclose(grad, -lam * w / np.linalg.norm(w), atol=1e-5)

    # Model files: the linear estimator comes back; the core function gives the same fit.
    est.save(tmp_path / "m.json")
    back = convexnn.load(tmp_path / "m.json")
    assert type(back) is ConvexLinearRegressor
    np.testing.assert_array_equal(back.predict(x_new), est.predict(x_new))
    res = convexnn.fit(x, y, formulation="linear", lam=lam, bias=True)
    assert res["objective"] == pytest.approx(est.objective_, rel=1e-12)

    # λ_max and the path: the zero network above λ_max, warm-started solves below.
    lmax = est.lambda_max(x, y)
    path = est.regularization_path(x, y, [0.5 * lmax, 1.01 * lmax])
    assert [p["lambda"] for p in path] == [1.01 * lmax, 0.5 * lmax]
    assert len(path[0]["output_weights"]) == 0 and len(path[1]["output_weights"]) == 1
    assert all(p["status"] == "converged" for p in path)


def test_linear_classifier() -> None:
    x, y = vectors(80, 3)
    labels = np.where(y > np.median(y), "up", "down")
    clf = ConvexLinearClassifier(lam=1e-2).fit(x, labels)
    assert clf.status_ == "converged" and clf.certificate_["formulation"] == "linear"
    w = (clf.hidden_weights_ * clf.output_weights_).sum(axis=1)
    z = np.column_stack([x, np.ones(len(x))]) @ w
    np.testing.assert_allclose(clf.decision_function(x), z, rtol=1e-10, atol=1e-12)
    assert list(clf.predict(x)) == list(np.where(z >= 0, clf.classes_[1], clf.classes_[0]))
    assert clf.score(x, labels) > 0.9


def test_linear_cnn_objective_from_its_weights() -> None:
    side, f, stride, lam = 4, 2, 2, 1e-2
    x, y = images(60, 1)
    est = ConvexLinearRegressor(lam=lam, conv="4x4:2x2:2").fit(x, y)
    assert est.status_ == "converged", est.certificate_
    k, h = 4, f * f + 1
    u, alpha = est.hidden_weights_, est.output_weights_
    m = est.n_neurons_
    assert m >= 1 and u.shape == (h, m) and alpha.shape == (m, k)
    assert est.convex_weights_.shape == (h, k)
    assert est.model_.output_weights.shape == (m, k)

    def forward(xs: np.ndarray) -> np.ndarray:
        # f(x) = Σ_j Σ_k (x_kᵀu_j) α_{jk}
        return np.einsum("nkh,hj,jk->n", patches(xs, side, f, stride), u, alpha)

    r = forward(x) - y
    objective = r @ r / (2 * len(y)) + 0.5 * lam * (np.sum(u**2) + np.sum(alpha**2))
    assert objective == pytest.approx(est.objective_, rel=1e-7)
    # The read-out's weights equal the convex variable Z = Σ_j u_j α_jᵀ.
    np.testing.assert_allclose(u @ alpha, est.convex_weights_, rtol=1e-8, atol=1e-10)
    x_new, _ = images(20, 2)
    np.testing.assert_allclose(est.predict(x_new), forward(x_new), rtol=1e-10, atol=1e-12)
    # The core call gives the same matrices.
    res = convexnn.fit(x, y, formulation="linear", lam=lam, conv="4x4:2x2:2")
    assert res["output_weights"].shape == (m, k) and res["hidden_weights"].shape == (h, m)


def test_circular_cnn_solvers_agree_and_predict_by_cyclic_shifts() -> None:
    rng = np.random.default_rng(5)
    n, size, lam = 40, 8, 1e-2
    x = rng.normal(size=(n, size))
    y = 2 * np.roll(x, -1, axis=1)[:, 0] + x[:, 3] - 0.5 * x[:, 6] + 0.05 * rng.normal(size=n)
    spec = "1x8:1x8:1:circular:nobias"
    fits = {s: ConvexLinearRegressor(lam=lam, conv=spec, solver=s).fit(x, y)
            for s in ["fista", "clarabel"]}
    assert fits["fista"].objective_ == pytest.approx(fits["clarabel"].objective_, rel=1e-6)
    est = fits["fista"]
    assert est.relative_gap_ <= 1e-6, est.certificate_
    assert est.model_.conv == spec
    u, alpha = est.hidden_weights_, est.output_weights_
    assert u.shape[0] == size and alpha.shape == (u.shape[1], size)

    def forward(xs: np.ndarray) -> np.ndarray:
        # Patch k is the signal shifted by k: x_k[c] = x[(c + k) mod N].
        shifts = np.stack([np.roll(xs, -k, axis=1) for k in range(size)], axis=1)
        return np.einsum("nkh,hj,jk->n", shifts, u, alpha)

    x_new = rng.normal(size=(25, size))
    np.testing.assert_allclose(est.predict(x_new), forward(x_new), rtol=1e-10, atol=1e-12)
    # The end-to-end filter w (f(x) = xᵀw, w = Σ_j Σ_k α_{jk} roll(u_j, k)) and the program's
    # penalty, λ ‖fft(w)‖₁ / N (the unitary DFT's ℓ1 norm over √N).
    w = sum(alpha[j, k] * np.roll(u[:, j], k) for j in range(u.shape[1]) for k in range(size))
    np.testing.assert_allclose(forward(x_new), x_new @ w, rtol=1e-9, atol=1e-10)
    r = x @ w - y
    penalty = est.objective_ - r @ r / (2 * n)
    assert penalty == pytest.approx(lam * np.abs(np.fft.fft(w)).sum() / size, rel=1e-6)


def test_separable_cnn_filters_see_one_position() -> None:
    x, y = images(60, 3)
    spec = "4x4:2x2:2:separable"
    est = GatedReLURegressor(lam=1e-3, n_patterns=20, seed=1, conv=spec).fit(x, y)
    assert est.relative_gap_ <= 1e-5, est.certificate_
    assert est.model_.conv == spec
    k, h = 4, 5
    u, g = est.hidden_weights_, est.gates_
    assert est.n_neurons_ > 0 and u.shape == (k * h, est.n_neurons_) and g.shape == u.shape
    for j in range(u.shape[1]):
        blocks = np.abs(u[:, j]).reshape(k, h).sum(axis=1) > 0
        assert blocks.sum() == 1, u[:, j]
        # Its gate acts on the same position.
        assert np.all(g[:, j].reshape(k, h)[~blocks] == 0)
    # f(x) = (1/K) Σ_k Σ_j 1[x̃_kᵀg_j ≥ 0] (x̃_kᵀu_j) α_j on the embedded patches x̃_k = e_k ⊗ x_k.
    p = patches(x, 4, 2, 2)
    embedded = np.zeros((len(x), k, k * h))
    for pos in range(k):
        embedded[:, pos, pos * h : (pos + 1) * h] = p[:, pos]
    act = (embedded @ g >= 0) * (embedded @ u)
    np.testing.assert_allclose(est.predict(x), (act @ est.output_weights_).mean(axis=1),
                               rtol=1e-10, atol=1e-12)
    # The ReLU network takes the option too.
    relu = ConvexReLURegressor(lam=1e-3, n_patterns=8, seed=1, conv=spec).fit(x, y)
    assert relu.hidden_weights_.shape[0] == k * h


def test_nobias_option() -> None:
    x, y = images(40, 4)
    est = GatedReLURegressor(lam=1e-3, n_patterns=8, conv="4x4:2x2:2:nobias").fit(x, y)
    assert est.hidden_weights_.shape[0] == 4 and est.model_.conv == "4x4:2x2:2:nobias"
    with pytest.raises(ValueError, match=r"h = 4 \(the 2x2 filter's entries\)"):
        GatedReLURegressor(conv="4x4:2x2:2:nobias", gates=np.ones((5, 3))).fit(x, y)


def test_linear_errors_are_value_errors() -> None:
    x, y = vectors(30, 6)
    with pytest.raises(ValueError, match="no activation patterns"):
        ConvexLinearRegressor(gates=np.ones((6, 2))).fit(x, y)
    with pytest.raises(ValueError, match="no activation patterns"):
        convexnn.fit(x, y, formulation="linear", gates=np.ones((5, 2)))
    with pytest.raises(ValueError, match="hinge loss.*linear networks take the squared or logistic loss"):
        convexnn.fit(x, np.sign(y), formulation="linear", loss="hinge")
    with pytest.raises(ValueError, match="f64 only"):
        ConvexLinearRegressor(precision="f32").fit(x, y)
    with pytest.raises(ValueError, match="fista or clarabel"):
        ConvexLinearRegressor(solver="al").fit(x, y)
    with pytest.raises(ValueError, match="slope applies"):
        convexnn.fit(x, y, formulation="linear", slope=0.1)
    with pytest.raises(ValueError, match='or "linear"'):
        convexnn.fit(x, y, formulation="identity")
    xi, yi = images(20, 7)
    with pytest.raises(ValueError, match="unknown option"):
        ConvexLinearRegressor(conv="4x4:2x2:2:round").fit(xi, yi)
    with pytest.raises(ValueError, match="unknown option"):
        GatedReLURegressor(conv="4x4:2x2:2:round").fit(xi, yi)


def test_bcd_solver_agrees_with_clarabel() -> None:
    x, y = vectors(60, 8)
    kwargs: Any = dict(lam=1e-2, n_patterns=10, seed=2)
    bcd = GatedReLURegressor(solver="bcd", **kwargs).fit(x, y)
    exact = GatedReLURegressor(solver="clarabel", **kwargs).fit(x, y)
    assert bcd.certificate_["solver"] == "bcd" and bcd.relative_gap_ <= 1e-5, bcd.certificate_
    assert bcd.objective_ == pytest.approx(exact.objective_, rel=1e-5)
    xi, yi = images(40, 9)
    cnn = GatedReLURegressor(solver="bcd", conv="4x4:2x2:2", **kwargs).fit(xi, yi)
    assert cnn.certificate_["solver"] == "bcd" and cnn.relative_gap_ <= 1e-5, cnn.certificate_
    with pytest.raises(ValueError, match="bcd"):
        ConvexReLURegressor(solver="bcd", n_patterns=5).fit(x, y)
