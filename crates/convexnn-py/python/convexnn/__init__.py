"""convexnn: two-layer ReLU and gated-ReLU networks trained to global optimality.

The estimators solve the convex reformulation of the training problem (a group lasso over the
data's activation patterns) in the Rust core and report a duality-gap certificate with every fit.

- :class:`ConvexReLURegressor`, :class:`ConvexReLUClassifier`: ReLU networks.
- :class:`ConvexLeakyReLURegressor`, :class:`ConvexLeakyReLUClassifier`: leaky ReLU networks.
- :class:`ConvexAbsRegressor`, :class:`ConvexAbsClassifier`: absolute-value networks.
- :class:`GatedReLURegressor`, :class:`GatedReLUClassifier`: gated ReLU networks.
- :class:`ConvexLinearRegressor`, :class:`ConvexLinearClassifier`: linear networks (identity
  activation) and linear CNNs.
- :class:`ThresholdRegressor`, :class:`ThresholdClassifier`, :class:`ThresholdHingeClassifier`:
  threshold (step) activation networks (squared, logistic and hinge losses).
- :func:`load`: a fitted estimator from a model file (the command-line tool's format).
- :class:`Model`: the model file itself (load, save, predict) and :func:`fit`, the core call.
- ``HAS_NUCLEAR``: whether this extension was built with the ``nuclear`` feature (the nuclear-norm
  heuristic, ``solver="nuclear"``, which links a system BLAS and LAPACK).
"""

from ._convexnn import FORMAT, FORMAT_VERSION, HAS_NUCLEAR, Model, __version__
from ._convexnn import fit as _core_fit
from .estimators import (
    ConvexAbsClassifier,
    ConvexAbsRegressor,
    ConvexLeakyReLUClassifier,
    ConvexLeakyReLURegressor,
    ConvexLinearClassifier,
    ConvexLinearRegressor,
    ConvexReLUClassifier,
    ConvexReLURegressor,
    GatedReLUClassifier,
    ThresholdClassifier,
    ThresholdHingeClassifier,
    ThresholdRegressor,
    GatedReLURegressor,
    load,
)

fit = _core_fit

__all__ = [
    "ConvexReLURegressor",
    "ConvexReLUClassifier",
    "ConvexLeakyReLURegressor",
    "ConvexLeakyReLUClassifier",
    "ConvexAbsRegressor",
    "ConvexAbsClassifier",
    "GatedReLURegressor",
    "GatedReLUClassifier",
    "ConvexLinearRegressor",
    "ConvexLinearClassifier",
    "ThresholdRegressor",
    "ThresholdClassifier",
    "ThresholdHingeClassifier",
    "Model",
    "load",
    "fit",
    "FORMAT",
    "FORMAT_VERSION",
    "HAS_NUCLEAR",
    "__version__",
]
