"""Reusable blocks: the mlpconv block, the Inception module and the auxiliary head."""

from keras_ninception.layers.normalization import (
    FusedBatchNormalization,
    LocalResponseNormalization,
    use_fused_batch_normalization,
)

from keras_ninception.layers.blocks import (
    apply_aux_head,
    apply_classifier,
    apply_conv,
    apply_inception,
    apply_mlpconv,
    apply_pool,
    channel_axis,
)
