"""Training: the compile recipe, callbacks, `model.fit` runs and their evaluation.

Names are imported on first use (PEP 562): `training.config` (`TrainConfig`) imports neither
TensorFlow nor Keras, and the `ninception` command reads it for its `--help`.
"""

import importlib

_EXPORTS = dict.fromkeys(
    ("AUX_LOSS_WEIGHT", "compile_model", "deep_supervision_loss_weights", "make_optimizer"),
    "keras_ninception.training.compile",
)
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'keras_ninception.training' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value
