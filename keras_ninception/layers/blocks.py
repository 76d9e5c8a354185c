"""The building blocks of NIN and GoogLeNet, as `apply_*(x, ..., name)` functions.

Each function takes a Keras tensor and returns a Keras tensor; every layer it adds is
named from `name` with the paper's terms (Keras 3 forbids `/`, so Caffe's
`inception_3a/3x3_reduce` becomes `inception_3a_3x3_reduce`). The channel axis comes from
`keras.config.image_data_format()`, never from a literal.

References:
    - Lin, Chen & Yan, "Network In Network", ICLR 2014, arXiv:1312.4400 (mlpconv).
    - Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, arXiv:1409.4842
      (Inception module, Table 1; auxiliary classifiers, Section 5).
"""

import math

import keras
from keras import layers


def channel_axis():
    """Returns the channel axis of image tensors: -1 for channels_last, 1 otherwise."""
    return -1 if keras.config.image_data_format() == "channels_last" else 1


def apply_conv(x, filters, kernel_size, strides=1, batch_norm=False, padding="same", name=None):
    """A convolution followed by ReLU, optionally with batch normalization in between.

    Args:
        x: 4-D image tensor, `(batch, H, W, C)` or `(batch, C, H, W)` by the data format.
        filters: int, number of output channels.
        kernel_size: int, the square kernel's side in pixels.
        strides: int, the stride in pixels. Default 1.
        batch_norm: bool. False (default): `Conv2D(use_bias=True, activation="relu")`, as in
            the papers. True: `Conv2D(use_bias=False)` → batch normalization (momentum 0.9,
            epsilon 1e-3; Keras' own layer, which `compile_model` runs on TF's fused kernel) →
            ReLU, the layout of the public Inception v1 checkpoints (TF-slim, torchvision).
        padding: `"same"`, `"valid"`, or an int: that many zero pixels on every side
            before a `"valid"` convolution (Caffe's `pad`, which differs from `"same"`
            for strided convolutions: `"same"` pads more on the bottom/right).
        name: str, the layer name; inner layers get `_bn` and `_relu` suffixes.

    Returns:
        The activated tensor, float, with `filters` channels.
    """
    if isinstance(padding, int):
        if padding:
            x = layers.ZeroPadding2D(padding, name=f"{name}_pad")(x)
        padding = "valid"
    if not batch_norm:
        return layers.Conv2D(
            filters, kernel_size, strides=strides, padding=padding, activation="relu", name=name
        )(x)
    x = layers.Conv2D(
        filters, kernel_size, strides=strides, padding=padding, use_bias=False, name=name
    )(x)
    x = layers.BatchNormalization(
        axis=channel_axis(), momentum=0.9, epsilon=1e-3, name=f"{name}_bn"
    )(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def apply_pool(x, pool_type, pool_size, strides, name=None):
    """Max or average pooling with Caffe's / torchvision's ceil-mode output size.

    Caffe (and torchvision's GoogLeNet, `ceil_mode=True`) computes the output side as
    `ceil((n - k) / s) + 1` with no padding, the last window running off the bottom/right
    edge. That is `"valid"` when `(n - k) % s == 0`, and `"same"` when one pixel is missing
    (e.g. 3×3/2 on an even side: 112 → 56); otherwise the missing rows are zero-padded at the
    bottom/right (max pools here always follow a ReLU, so zeros never win a max). With
    unknown spatial dims it falls back to `"same"`.

    Args:
        x: 4-D image tensor.
        pool_type: `"max"` or `"avg"`.
        pool_size: int, the window side in pixels.
        strides: int, the stride in pixels.
        name: str, the layer name.

    Returns:
        The pooled tensor, side `ceil((n - pool_size) / strides) + 1`.
    """
    pool_layer = layers.MaxPooling2D if pool_type == "max" else layers.AveragePooling2D
    sides = x.shape[1:3] if channel_axis() == -1 else x.shape[2:4]
    padding = "same"
    if None not in sides:
        # Output side ceil((n - k) / s) + 1, at least 1 (a window on a side smaller than
        # the kernel covers what there is).
        outputs = [max(1, math.ceil((n - pool_size) / strides) + 1) for n in sides]
        missing = [max(0, (o - 1) * strides + pool_size - n) for o, n in zip(outputs, sides)]
        if missing == [0, 0]:
            padding = "valid"
        elif max(missing) > 1 or min(missing) == 0:
            x = layers.ZeroPadding2D(((0, missing[0]), (0, missing[1])), name=f"{name}_pad")(x)
            padding = "valid"
    return pool_layer(pool_size, strides=strides, padding=padding, name=name)(x)


def apply_mlpconv(x, filters, kernel_size, strides=1, padding="same", batch_norm=False, name=None):
    """NIN's mlpconv block: one k×k convolution, then 1×1 convolutions, all with ReLU.

    Each 1×1 convolution is a fully connected layer across channels applied at every pixel
    (the paper's "cascaded cross channel parametric pooling", Caffe's `cccp`), so the block
    is a small MLP sliding over the image (Lin et al. 2014, Section 3.1, Figure 2).

    Args:
        x: 4-D image tensor.
        filters: sequence of ints, `(k×k filters, 1×1 filters, ...)`; e.g. `(192, 160, 96)`
            for the first block of the paper's CIFAR-10 model.
        kernel_size: int, the side of the first (spatial) convolution.
        strides: int, the stride of the first convolution. Default 1.
        padding: padding of the first convolution (see `apply_conv`). Default `"same"`.
        batch_norm: bool, batch normalization after each convolution. Default False (paper).
        name: str, the block name, e.g. `"mlpconv1"`. Layers are `{name}_conv`,
            `{name}_cccp1`, `{name}_cccp2`, ...

    Returns:
        Tensor with `filters[-1]` channels; spatial size `ceil(H / strides)` for `"same"`.

    Raises:
        ValueError: if `filters` has fewer than 2 entries.
    """
    filters = tuple(filters)
    if len(filters) < 2:
        raise ValueError(
            "An mlpconv block needs a k×k convolution and at least one 1×1 convolution: "
            f"`filters` must have 2 or more entries. Received: filters={filters}"
        )
    x = apply_conv(x, filters[0], kernel_size, strides, batch_norm, padding, name=f"{name}_conv")
    for i, width in enumerate(filters[1:], start=1):
        x = apply_conv(x, width, 1, 1, batch_norm, name=f"{name}_cccp{i}")
    return x


def apply_inception(
    x,
    filters_1x1,
    filters_3x3_reduce,
    filters_3x3,
    filters_5x5_reduce,
    filters_5x5,
    filters_pool_proj,
    batch_norm=False,
    kernel_size_5x5=5,
    naive=False,
    name=None,
):
    """The Inception module (Szegedy et al. 2015, Figure 2b; numbers from Table 1).

    Four branches run side by side and are concatenated on the channel axis:
    1×1; 1×1 reduce → 3×3; 1×1 reduce → 5×5; 3×3 max pool (stride 1, "same") → 1×1 pool
    projection. The 1×1 reductions are the bottlenecks that cut the cost of the 3×3 and
    5×5 convolutions.

    Args:
        x: 4-D image tensor.
        filters_1x1, filters_3x3_reduce, filters_3x3, filters_5x5_reduce, filters_5x5,
            filters_pool_proj: ints, the six columns of Table 1 ("#1×1", "#3×3 reduce",
            "#3×3", "#5×5 reduce", "#5×5", "pool proj").
        batch_norm: bool, batch normalization after each convolution. Default False (paper).
        kernel_size_5x5: int, kernel of the "5×5" branch. Default 5 (paper); 3 reproduces the
            public checkpoints (TF-slim / torchvision), whose "5×5" branch is a 3×3 conv.
        naive: bool. True builds Figure 2a, the naive module: no 1×1 reductions and no pool
            projection (the pool branch passes the input channels through), for the
            comparison the paper makes. Default False.
        name: str, e.g. `"inception_3a"`. Layers: `{name}_1x1`, `{name}_3x3_reduce`,
            `{name}_3x3`, `{name}_5x5_reduce`, `{name}_5x5`, `{name}_pool`,
            `{name}_pool_proj`, `{name}_output` (the concatenation).

    Returns:
        Tensor with `1x1 + 3x3 + 5x5 + pool_proj` channels (naive: `1x1 + 3x3 + 5x5 + C_in`)
        and the input's spatial size.
    """
    branch_1x1 = apply_conv(x, filters_1x1, 1, batch_norm=batch_norm, name=f"{name}_1x1")

    branch_3x3 = x
    if not naive:
        branch_3x3 = apply_conv(
            x, filters_3x3_reduce, 1, batch_norm=batch_norm, name=f"{name}_3x3_reduce"
        )
    branch_3x3 = apply_conv(branch_3x3, filters_3x3, 3, batch_norm=batch_norm, name=f"{name}_3x3")

    branch_5x5 = x
    if not naive:
        branch_5x5 = apply_conv(
            x, filters_5x5_reduce, 1, batch_norm=batch_norm, name=f"{name}_5x5_reduce"
        )
    branch_5x5 = apply_conv(
        branch_5x5, filters_5x5, kernel_size_5x5, batch_norm=batch_norm, name=f"{name}_5x5"
    )

    branch_pool = layers.MaxPooling2D(3, strides=1, padding="same", name=f"{name}_pool")(x)
    if not naive:
        branch_pool = apply_conv(
            branch_pool, filters_pool_proj, 1, batch_norm=batch_norm, name=f"{name}_pool_proj"
        )

    return layers.Concatenate(axis=channel_axis(), name=f"{name}_output")(
        [branch_1x1, branch_3x3, branch_5x5, branch_pool]
    )


def apply_aux_head(
    x,
    num_classes,
    dropout_rate=0.7,
    classifier_activation="softmax",
    batch_norm=False,
    adaptive_pool_size=None,
    name=None,
):
    """A GoogLeNet auxiliary classifier (Szegedy et al. 2015, Section 5).

    5×5 average pool with stride 3 ("valid": 14×14 → 4×4 at 224 px) → 1×1 conv, 128 filters,
    ReLU → flatten → FC 1024, ReLU → dropout 0.7 → FC `num_classes` → softmax. During
    training its loss is added to the main loss with weight 0.3; at inference it is removed
    (see `keras_ninception.to_inference_model`).

    Args:
        x: 4-D tensor, the output of inception 4a (aux1) or 4d (aux2); its spatial size must
            be at least 5×5.
        num_classes: int, number of classes.
        dropout_rate: float in [0, 1), dropout before the last FC layer. Default 0.7 (paper).
        classifier_activation: activation of the output, `"softmax"` (default) or `None`
            for logits. The output layer is float32 so it stays exact under mixed precision.
        batch_norm: bool, batch normalization after the 1×1 conv (the `bn` checkpoint layout).
        adaptive_pool_size: None (default: the paper's 5×5/3 pool) or an int: an adaptive
            average pool to that side, as torchvision's `InceptionAux` (4), which also fits
            feature maps from 4×4 up.
        name: str, `"aux1"` or `"aux2"`: the output layer's name, and the prefix of
            `{name}_ave_pool`, `{name}_conv`, `{name}_flatten`, `{name}_fc`,
            `{name}_drop_fc`, `{name}_classifier`.

    Returns:
        `(batch, num_classes)` float32 tensor named `name`.
    """
    if adaptive_pool_size:
        x = layers.AdaptiveAveragePooling2D(adaptive_pool_size, name=f"{name}_ave_pool")(x)
    else:
        x = layers.AveragePooling2D(5, strides=3, padding="valid", name=f"{name}_ave_pool")(x)
    x = apply_conv(x, 128, 1, batch_norm=batch_norm, name=f"{name}_conv")
    x = layers.Flatten(name=f"{name}_flatten")(x)
    x = layers.Dense(1024, activation="relu", name=f"{name}_fc")(x)
    x = layers.Dropout(dropout_rate, name=f"{name}_drop_fc")(x)
    return apply_classifier(x, num_classes, classifier_activation, name=name)


def apply_classifier(x, num_classes, classifier_activation="softmax", name="main"):
    """The linear classifier and its output activation, as two named layers.

    `Dense(num_classes)` named `{name}_classifier`, then `Activation` named `name` in float32,
    so the model output keeps the head's name and full precision under mixed precision.
    """
    x = layers.Dense(num_classes, name=f"{name}_classifier")(x)
    return layers.Activation(classifier_activation, dtype="float32", name=name)(x)
