"""keras-ninception: Network in Network and GoogLeNet (Inception v1) for Keras 3.

Public API:
    - Builders: `build_googlenet`, `build_nin`, `to_inference_model`,
      `build_feature_extractor` (named stage outputs).
    - Blocks: `apply_mlpconv`, `apply_inception`, `apply_aux_head` (and `apply_conv`,
      `apply_pool`, `apply_classifier`); `LocalResponseNormalization`;
      `use_fused_batch_normalization` (Keras' `BatchNormalization` on TF's fused kernel).
    - Training: `compile_model` (loss weights [1, 0.3, 0.3], one loss and accuracy per
      head), `TrainConfig`, `train`, `evaluate_run` (every head: accuracy, size, latency),
      `prune_run` (a run cut after one head; `prune_to_head` for a model).
    - Data: `load_dataset` (embedded digits, image folders, TFDS names).

`import keras_ninception` is light: each name is imported on first use (PEP 562), so the
`ninception` command answers `--help` without importing TensorFlow. The package's registered
layers (`LocalResponseNormalization`, version 0.1's `FusedBatchNormalization`) are registered
with Keras by `import keras_ninception.layers` or the first use of any name above.
"""

__version__ = "0.1.0"

import importlib

# Public name -> the module it lives in.
_EXPORTS = {
    "load_dataset": "keras_ninception.data",
    **dict.fromkeys(
        (
            "FusedBatchNormalization", "LocalResponseNormalization", "apply_aux_head", "apply_classifier",
            "apply_conv", "apply_inception", "apply_mlpconv", "apply_pool", "use_fused_batch_normalization",
        ),
        "keras_ninception.layers",
    ),
    **dict.fromkeys(
        (
            "build_feature_extractor", "build_googlenet", "build_nin", "feature_endpoints",
            "load_torchvision_weights", "min_input_size", "prune_to_head", "to_inference_model",
            "with_keras_batch_normalization",
        ),
        "keras_ninception.models",
    ),
    "compile_model": "keras_ninception.training.compile",
    "evaluate_run": "keras_ninception.training.evaluate",
    "prune_run": "keras_ninception.training.heads",
    "TrainConfig": "keras_ninception.training.config",
    "train": "keras_ninception.training.run",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'keras_ninception' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
