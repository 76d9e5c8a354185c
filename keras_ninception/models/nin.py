"""Network in Network: stacked mlpconv blocks and a global-average-pooling classifier.

Reference: Lin, Chen & Yan, "Network In Network", ICLR 2014, arXiv:1312.4400; the layer
numbers are those of the authors' Caffe models (the CIFAR-10 model of Section 4.2, and the
ImageNet model published in the Caffe model zoo).

The architecture is data: each entry of `NIN_CONFIGS` is a table with one row per mlpconv
block, and `build_nin` loops over it.
"""

import keras
from keras import layers

from keras_ninception.layers import apply_mlpconv, apply_pool
from keras_ninception.checks import check_bool, is_int
from keras_ninception.models import common

# Stands for `num_classes` in a table: the last 1×1 conv makes one feature map per class.
NUM_CLASSES = "num_classes"

# Rows: (block, kernel, stride, padding, filters (k×k, 1×1, 1×1), pool after the block as
# (type, size, stride) or None, dropout rate after the pool).
NIN_CONFIGS = {
    # Section 4.2 / Caffe `cifar10_nin`: shapes at 32×32×3 in the comments.
    "cifar10": {
        "blocks": (
            ("mlpconv1", 5, 1, "same", (192, 160, 96), ("max", 3, 2), 0.5),  # 32²×96 → 16²×96
            ("mlpconv2", 5, 1, "same", (192, 192, 192), ("avg", 3, 2), 0.5),  # 16²×192 → 8²×192
            ("mlpconv3", 3, 1, "same", (192, 192, NUM_CLASSES), None, 0.0),  # 8²×classes
        ),
        "default_size": 32,
        "source": "Lin et al. 2014, Section 4.2; Caffe model zoo cifar10_nin",
    },
    # Caffe model zoo `nin_imagenet` (4 mlpconv layers, conv1 96 filters 11×11/4, no
    # padding): shapes at 224×224×3 in the comments.
    "imagenet": {
        "blocks": (
            ("mlpconv1", 11, 4, "valid", (96, 96, 96), ("max", 3, 2), 0.0),  # 54² → 27²×96
            ("mlpconv2", 5, 1, "same", (256, 256, 256), ("max", 3, 2), 0.0),  # 27² → 13²×256
            ("mlpconv3", 3, 1, "same", (384, 384, 384), ("max", 3, 2), 0.5),  # 13² → 6²×384
            ("mlpconv4", 3, 1, "same", (1024, 1024, NUM_CLASSES), None, 0.0),  # 6²×classes
        ),
        "default_size": 224,
        "source": "Caffe model zoo nin_imagenet (Lin et al. 2014)",
    },
}


def build_nin(
    input_shape=None,
    num_classes=10,
    config="cifar10",
    include_top=True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classifier_activation="softmax",
    dropout_rate=None,
    batch_norm=False,
    widths=None,
    kernel_sizes=None,
    name="nin",
):
    """Builds Network in Network (NIN).

    Source: Lin et al., "Network In Network", ICLR 2014. Each mlpconv block is one k×k
    convolution followed by 1×1 convolutions, all with ReLU. The last 1×1 convolution has
    one feature map per class; global average pooling over each map gives the class score,
    then softmax. There is no Dense layer: the classifier has no parameters of its own.
    Pools use Caffe's ceil-mode arithmetic (`apply_pool`): 32 → 16 → 8 px on CIFAR-10,
    54 → 27 → 13 → 6 px on ImageNet.

    The default (`config="cifar10"`, 32×32×3, 10 classes) is the paper's CIFAR-10 model:
    mlpconv widths 192-160-96 / 192-192-192 / 192-192-10, kernels 5/5/3, a 3×3/2 max pool
    then a 3×3/2 average pool, dropout 0.5 after the first two blocks: 966,986 parameters.

    Args:
        input_shape: 3-tuple in the current data format. Default None: 32×32×3 for
            `"cifar10"`, 224×224×3 for `"imagenet"`. Spatial dims may be None.
        num_classes: int >= 2, the number of class maps. Default 10.
        config: `"cifar10"` (default) or `"imagenet"`, a key of `NIN_CONFIGS`.
        include_top: bool. True (default): class maps → global average pooling →
            `classifier_activation`. False: the last block stops before its class-map
            convolution, and `pooling` applies.
        weights: None (default) or a path to a `.weights.h5`/`.keras` file.
        input_tensor: optional `keras.Input` tensor to build on.
        pooling: with `include_top=False`: None, `"avg"` or `"max"`.
        classifier_activation: `"softmax"` (default) or None (logits).
        dropout_rate: float in [0, 1) replacing every table dropout rate, or None (default)
            for the table's rates (0.5 for CIFAR-10).
        batch_norm: bool, batch normalization after each convolution (not in the paper).
            Default False.
        widths: None (default: the table's) or one int per block: the filters of the block's
            k×k convolution; its 1×1 convolutions keep the table's ratio to it (192-160-96
            at 192, 96-80-48 at 96), and the last one keeps one map per class. For width
            searches (`keras_ninception.tuning.HyperNIN`).
        kernel_sizes: None (default: the table's) or one odd int per block: the side of
            each block's first convolution.
        name: str. Default `"nin"`.

    Returns:
        An uncompiled `keras.Model` with one output `main`: `(batch, num_classes)` float32.

    Raises:
        ValueError: for any invalid argument, before a layer is built.
    """
    common.check_choice("config", config, tuple(NIN_CONFIGS))
    num_classes = common.check_num_classes(num_classes)
    common.check_top_arguments(include_top, pooling, weights, classifier_activation)
    if dropout_rate is not None:
        common.check_rate("dropout_rate", dropout_rate)
    check_bool("batch_norm", batch_norm)
    table = NIN_CONFIGS[config]
    blocks = table["blocks"]
    for arg_name, values in (("widths", widths), ("kernel_sizes", kernel_sizes)):
        if values is not None and (
            isinstance(values, (str, bytes))
            or not hasattr(values, "__len__")
            or len(values) != len(blocks)
            or not all(is_int(v) and v >= 1 for v in values)
        ):
            raise ValueError(
                f"`{arg_name}` must be None or {len(blocks)} positive integers, one per mlpconv "
                f"block of config '{config}'. Received: {arg_name}={values!r}"
            )
    input_shape = common.resolve_input_shape(input_shape, input_tensor, table["default_size"])

    first = blocks[0][1] if kernel_sizes is None else int(kernel_sizes[0])
    if blocks[0][3] == "valid":
        for side in common.spatial_size(input_shape):
            if side is not None and side < first:
                raise ValueError(
                    f"NIN config '{config}' starts with a {first}×{first} 'valid' "
                    f"convolution: inputs must be at least {first}×{first} px "
                    f"({keras.config.image_data_format()}). Received: input_shape={input_shape}"
                )

    inputs = common.make_input(input_shape, input_tensor)
    x = inputs
    for index, (block, kernel, stride, padding, filters, pool, rate) in enumerate(blocks, start=1):
        width = filters[0] if widths is None else int(widths[index - 1])
        kernel = kernel if kernel_sizes is None else int(kernel_sizes[index - 1])
        filters = tuple(
            num_classes if f == NUM_CLASSES else common.scaled(f, width / filters[0]) for f in filters
        )
        if not include_top and index == len(blocks):
            filters = filters[:-1]
        x = apply_mlpconv(x, filters, kernel, stride, padding, batch_norm, name=block)
        if pool is not None:
            x = apply_pool(x, *pool, name=f"pool{index}")
        rate = rate if dropout_rate is None else dropout_rate
        if rate and index < len(blocks):
            x = layers.Dropout(rate, name=f"dropout{index}")(x)

    if include_top:
        # One map per class, averaged: the global-average-pooling classifier (Section 3.2).
        x = layers.GlobalAveragePooling2D(name="global_average_pooling")(x)
        x = layers.Activation(classifier_activation, dtype="float32", name="main")(x)
    else:
        x = common.apply_pooling(x, pooling)
    model = keras.Model(inputs, x, name=name)
    return common.load_weights(model, weights)
