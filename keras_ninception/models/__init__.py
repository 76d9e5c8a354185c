"""Model builders: pure functions that return a fresh, uncompiled `keras.Model`."""

from keras_ninception.models.googlenet import (
    AUX_CLASSIFIERS,
    GOOGLENET_STEMS,
    GOOGLENET_VARIANTS,
    INCEPTION_MODULES,
    build_googlenet,
    min_input_size,
    to_inference_model,
)
from keras_ninception.models.common import with_keras_batch_normalization
from keras_ninception.models.nin import NIN_CONFIGS, build_nin
from keras_ninception.models.endpoints import build_feature_extractor, feature_endpoints
from keras_ninception.models.torchvision_weights import load_torchvision_weights
from keras_ninception.models.prune import HEAD_BRANCH_POINTS, head_models, prune_to_head
