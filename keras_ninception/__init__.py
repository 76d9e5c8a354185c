"""keras-ninception: Network in Network and GoogLeNet (Inception v1) for Keras 3.

Public API:
    - Builders: `build_googlenet`, `build_nin`, `to_inference_model`,
      `build_feature_extractor` (named stage outputs).
    - Blocks: `apply_mlpconv`, `apply_inception`, `apply_aux_head` (and `apply_conv`,
      `apply_pool`, `apply_classifier`); layers `FusedBatchNormalization` (Keras'
      `BatchNormalization` on TF's fused kernel) and `LocalResponseNormalization`.
    - Training: `compile_model` (loss weights [1, 0.3, 0.3], one loss and accuracy per
      head), `TrainConfig`, `train`, `evaluate_run` (every head: accuracy, size, latency),
      `prune_run` (a run cut after one head; `prune_to_head` for a model).
    - Data: `load_dataset` (embedded digits, image folders, TFDS names).
"""

__version__ = "0.1.0"

from keras_ninception.data import load_dataset
from keras_ninception.layers import (
    FusedBatchNormalization,
    LocalResponseNormalization,
    apply_aux_head,
    apply_classifier,
    apply_conv,
    apply_inception,
    apply_mlpconv,
    apply_pool,
)
from keras_ninception.models import (
    build_feature_extractor,
    build_googlenet,
    build_nin,
    feature_endpoints,
    load_torchvision_weights,
    min_input_size,
    prune_to_head,
    to_inference_model,
    with_keras_batch_normalization,
)
from keras_ninception.training import compile_model
from keras_ninception.training.evaluate import evaluate_run
from keras_ninception.training.heads import prune_run
from keras_ninception.training.config import TrainConfig
from keras_ninception.training.run import train
