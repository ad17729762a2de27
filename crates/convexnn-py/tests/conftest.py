"""Shared data for the tests."""

from __future__ import annotations

from typing import Tuple

import numpy as np
import pytest


@pytest.fixture
def regression() -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(80, 4))
    y = np.maximum(X[:, 0] - 0.5 * X[:, 1], 0.0) - 0.3 * X[:, 2] + 0.1 * rng.normal(size=80)
    return X, y


@pytest.fixture
def binary() -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(8)
    X = rng.normal(size=(80, 3))
    y = (X[:, 0] ** 2 + 0.5 * X[:, 1] > 0.8).astype(np.int64)
    return X, y
