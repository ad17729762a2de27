"""scikit-learn's estimator checks for every estimator."""

from __future__ import annotations

from typing import Dict

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from convexnn import (
    ConvexAbsClassifier,
    ConvexAbsRegressor,
    ConvexLeakyReLUClassifier,
    ConvexLeakyReLURegressor,
    ConvexLinearClassifier,
    ConvexLinearRegressor,
    ConvexReLUClassifier,
    ConvexReLURegressor,
    GatedReLUClassifier,
    GatedReLURegressor,
    ThresholdClassifier,
    ThresholdHingeClassifier,
    ThresholdRegressor,
)

ESTIMATORS = [
    GatedReLURegressor(),
    ConvexReLURegressor(),
    GatedReLUClassifier(),
    ConvexReLUClassifier(),
    ConvexLeakyReLURegressor(),
    ConvexLeakyReLUClassifier(),
    ConvexAbsRegressor(),
    ConvexAbsClassifier(),
    ThresholdRegressor(),
    ThresholdClassifier(),
    ThresholdHingeClassifier(),
    ConvexLinearRegressor(),
    ConvexLinearClassifier(),
]

# Checks that cannot pass for a principled reason, per estimator class name.
EXPECTED_FAILED: Dict[str, Dict[str, str]] = {}


def expected_failed(estimator: object) -> Dict[str, str]:
    return EXPECTED_FAILED.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=expected_failed)
def test_sklearn_compatible(estimator: object, check: object) -> None:
    check(estimator)  # type: ignore[operator]
