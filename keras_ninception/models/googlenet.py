"""GoogLeNet (Inception v1) with its two auxiliary classifiers, as a Keras functional model.

Reference: Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, arXiv:1409.4842,
Table 1 (architecture) and Section 5 (auxiliary classifiers). Layer names follow the BVLC
Caffe replication (`inception_4a_3x3_reduce` for Caffe's `inception_4a/3x3_reduce`).

The architecture is data: `GOOGLENET_STEMS`, `INCEPTION_MODULES`, `DOWNSAMPLING_POOLS` and
`AUX_CLASSIFIERS` hold the paper's rows, and `build_googlenet` loops over them.
"""

import math

import keras
from keras import layers

from keras_ninception.layers import (
    LocalResponseNormalization,
    apply_aux_head,
    apply_classifier,
    apply_conv,
    apply_inception,
    apply_pool,
)
from keras_ninception.checks import check_bool, check_number
from keras_ninception.models import common, pretrained

# The stems, one row per layer: (name, op, filters, kernel, stride, padding).
# An int padding is Caffe's symmetric zero padding before a "valid" convolution; "ceil" pools
# use Caffe's ceil mode, "same" pools TensorFlow's SAME padding (`apply_pool`).
GOOGLENET_STEMS = {
    # Table 1, rows 1-5. Shapes at 224×224×3:
    "paper": (
        ("conv1_7x7_s2", "conv", 64, 7, 2, 3),  # 112×112×64
        ("pool1_3x3_s2", "max_pool", None, 3, 2, "ceil"),  # 56×56×64
        ("pool1_norm1", "lrn", None, 5, 1, None),  # 56×56×64 (size 5, as in BVLC)
        ("conv2_3x3_reduce", "conv", 64, 1, 1, "same"),  # 56×56×64
        ("conv2_3x3", "conv", 192, 3, 1, "same"),  # 56×56×192
        ("conv2_norm2", "lrn", None, 5, 1, None),  # 56×56×192
        ("pool2_3x3_s2", "max_pool", None, 3, 2, "ceil"),  # 28×28×192
    ),
    # The public checkpoints' stem (TF-slim inception_v1, torchvision googlenet): the paper's
    # layers with batch normalization in place of LRN. Shapes as for "paper".
    "bn": (
        ("conv1_7x7_s2", "conv", 64, 7, 2, 3),  # 112×112×64
        ("pool1_3x3_s2", "max_pool", None, 3, 2, "ceil"),  # 56×56×64
        ("conv2_3x3_reduce", "conv", 64, 1, 1, "same"),  # 56×56×64
        ("conv2_3x3", "conv", 192, 3, 1, "same"),  # 56×56×192
        ("pool2_3x3_s2", "max_pool", None, 3, 2, "ceil"),  # 28×28×192
    ),
    # TF-slim's inception_v1 stem exactly (Conv2d_1a_7x7 … MaxPool_3a_3x3): TensorFlow's SAME
    # padding everywhere, which pads conv1 by 2 before and 3 after at 224 px (torchvision, and
    # the "bn" stem, pad 3 and 3). Shapes as for "paper" at 224 px.
    "slim": (
        ("conv1_7x7_s2", "conv", 64, 7, 2, "same"),  # 112×112×64
        ("pool1_3x3_s2", "max_pool", None, 3, 2, "same"),  # 56×56×64
        ("conv2_3x3_reduce", "conv", 64, 1, 1, "same"),  # 56×56×64
        ("conv2_3x3", "conv", 192, 3, 1, "same"),  # 56×56×192
        ("pool2_3x3_s2", "max_pool", None, 3, 2, "same"),  # 28×28×192
    ),
    # Small-image stem (deviation, for 32×32 inputs such as CIFAR): the 7×7/2 conv and the
    # first pool would shrink 32 px to 8 px before inception 3a and leave 2×2 maps for the
    # aux heads, so conv1 is a 3×3/1 conv and pool1 is dropped. Shapes at 32×32×3:
    "cifar": (
        ("conv1_3x3", "conv", 64, 3, 1, "same"),  # 32×32×64
        ("conv2_3x3_reduce", "conv", 64, 1, 1, "same"),  # 32×32×64
        ("conv2_3x3", "conv", 192, 3, 1, "same"),  # 32×32×192
        ("pool2_3x3_s2", "max_pool", None, 3, 2, "ceil"),  # 16×16×192
    ),
}

# Table 1: (name, #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj). Output shapes
# at 224 px (paper variant) / 32 px (cifar variant) in the comments.
INCEPTION_MODULES = (
    ("inception_3a", 64, 96, 128, 16, 32, 32),  # 28×28×256 / 16×16×256
    ("inception_3b", 128, 128, 192, 32, 96, 64),  # 28×28×480 / 16×16×480
    ("inception_4a", 192, 96, 208, 16, 48, 64),  # 14×14×512 / 8×8×512
    ("inception_4b", 160, 112, 224, 24, 64, 64),  # 14×14×512 / 8×8×512
    ("inception_4c", 128, 128, 256, 24, 64, 64),  # 14×14×512 / 8×8×512
    ("inception_4d", 112, 144, 288, 32, 64, 64),  # 14×14×528 / 8×8×528
    ("inception_4e", 256, 160, 320, 32, 128, 128),  # 14×14×832 / 8×8×832
    ("inception_5a", 256, 160, 320, 32, 128, 128),  # 7×7×832 / 4×4×832
    ("inception_5b", 384, 192, 384, 48, 128, 128),  # 7×7×1024 / 4×4×1024
)

# Max pools between the stages, after the named module: (name, size, stride).
DOWNSAMPLING_POOLS = {
    "inception_3b": ("pool3_3x3_s2", 3, 2),  # 14×14×480 / 8×8×480
    "inception_4e": ("pool4_3x3_s2", 3, 2),  # 7×7×832 / 4×4×832
}
# The public checkpoints pool 2×2/2 before stage 5 (14 → 7 px, as 3×3/2 in ceil mode).
BN_DOWNSAMPLING_POOLS = {**DOWNSAMPLING_POOLS, "inception_4e": ("pool4_2x2_s2", 2, 2)}

# (output name, the module it hangs off). Section 5: "on top of the output of the
# Inception (4a) and (4d) modules".
AUX_CLASSIFIERS = (("aux1", "inception_4a"), ("aux2", "inception_4d"))

# The aux heads' 5×5/3 "valid" average pool needs at least 5×5 feature maps.
AUX_MIN_FEATURE_SIZE = 5

# Each variant: its stem, normalization, "5×5" kernel, downsampling pools, aux-head pool
# (None: the paper's 5×5/3 average pool; an int: adaptive average pool to that side).
GOOGLENET_VARIANTS = {
    "paper": {
        "stem": "paper",
        "batch_norm": False,
        "batch_norm_scale": True,
        "pool_padding": "ceil",
        "kernel_size_5x5": 5,
        "downsampling_pools": DOWNSAMPLING_POOLS,
        "aux_adaptive_pool": None,
        "default_size": 224,
        "source": "Szegedy et al. 2015, Table 1 and Section 5; LRN as in the BVLC Caffe "
        "replication (biases, true 5×5 convolutions)",
    },
    "bn": {
        "stem": "bn",
        "batch_norm": True,
        "batch_norm_scale": True,
        "pool_padding": "ceil",
        # Deviation kept from the checkpoints: the "5×5" branch is a 3×3 convolution
        # (torchvision: "Here, kernel_size=3 instead of kernel_size=5 is a known bug").
        "kernel_size_5x5": 3,
        "downsampling_pools": BN_DOWNSAMPLING_POOLS,
        # torchvision's InceptionAux pools adaptively to 4×4 (4×4 at 224 px, like 5×5/3).
        "aux_adaptive_pool": 4,
        "default_size": 224,
        "source": "torchvision googlenet (BN eps 1e-3, no conv biases; TF-slim's weights)",
    },
    "slim": {
        "stem": "slim",
        "batch_norm": True,
        # TF-slim's inception_v1_arg_scope: batch_norm(scale=False, epsilon=0.001), no gamma.
        "batch_norm_scale": False,
        # Every pool TF SAME (MaxPool_4a_3x3, MaxPool_5a_2x2 and the branch pools).
        "pool_padding": "same",
        "kernel_size_5x5": 3,  # the checkpoint's "5×5" branch is a 3×3 conv (as "bn")
        "downsampling_pools": BN_DOWNSAMPLING_POOLS,
        # TF-slim's inception_v1 has no aux heads; training adds the "bn" ones (fresh).
        "aux_adaptive_pool": 4,
        "default_size": 224,
        "source": "TF-slim nets/inception_v1.py (SAME padding, BN without gamma, eps 1e-3, "
        "no conv biases, 1001 classes with background)",
    },
    "cifar": {
        "stem": "cifar",
        # Deviation: batch normalization after every convolution, as in the public
        # checkpoints and Inception v2, so the network trains from scratch in a few CPU
        # epochs on small datasets; the module and aux-head topology is the paper's.
        "batch_norm": True,
        "batch_norm_scale": True,
        "pool_padding": "ceil",
        "kernel_size_5x5": 5,
        "downsampling_pools": DOWNSAMPLING_POOLS,
        "aux_adaptive_pool": None,
        "default_size": 32,
        "source": "Table 1 modules and Section 5 aux heads on a 32-px stem (see GOOGLENET_STEMS)",
    },
}

# Named stage outputs (TF-slim's end_points): endpoint → layer name.
GOOGLENET_ENDPOINTS = {
    "stem": "pool2_3x3_s2",
    **{name: f"{name}_output" for name, *_ in INCEPTION_MODULES},
}


def _pooled_side(side, pool_size=3, strides=2, padding="ceil"):
    # As `apply_pool`: ceil mode ceil((n - k) / s) + 1, at least 1; "same" ceil(n / s).
    if padding == "same":
        return math.ceil(side / strides)
    return max(1, math.ceil((side - pool_size) / strides) + 1)


def feature_side(side, variant="paper", module_name="inception_4a"):
    """Side (pixels) of the feature map at the input of `module_name` for an input side.

    Walks the variant's stem and the downsampling pools with the builder's arithmetic:
    "same"/symmetric-pad convolutions and "same" pools give `ceil(n / s)`, ceil-mode pools
    `ceil((n - k) / s) + 1`.

    Raises:
        ValueError: for an unknown `variant` or `module_name`.
    """
    common.check_choice("variant", variant, tuple(GOOGLENET_VARIANTS))
    config = GOOGLENET_VARIANTS[variant]
    for _, op, _, kernel, stride, padding in GOOGLENET_STEMS[config["stem"]]:
        if op == "conv":
            side = math.ceil(side / stride)
        elif op == "max_pool":
            side = _pooled_side(side, kernel, stride, padding)
    for name, *_ in INCEPTION_MODULES:
        if name == module_name:
            return side
        if name in config["downsampling_pools"]:
            _, size, stride = config["downsampling_pools"][name]
            side = _pooled_side(side, size, stride, config["pool_padding"])
    common.check_choice("module_name", module_name, [row[0] for row in INCEPTION_MODULES])


def min_input_size(variant="paper", aux_classifiers=True):
    """Smallest input side (pixels) `build_googlenet` accepts for a variant.

    With aux heads, the feature map of inception 4a must be at least 5×5 for their 5×5/3
    "valid" average pool. With the paper's Caffe arithmetic (ceil-mode pools) that is 79 px
    for `"paper"` (79 → 40 → 20 → 10 → 5; a "same"-padded network would get by with 65) and
    20 px for `"cifar"` (20 → 10 → 5). The `"bn"` variant's adaptive 4×4 aux pool needs a 4×4
    map: 63 px; `"slim"` ("same" padding) 49 px. Without aux heads any side >= 1 builds.
    """
    if not aux_classifiers:
        return 1
    adaptive = GOOGLENET_VARIANTS[variant]["aux_adaptive_pool"]
    needed = adaptive or AUX_MIN_FEATURE_SIZE
    side = 1
    while feature_side(side, variant, AUX_CLASSIFIERS[0][1]) < needed:
        side += 1
    return side


def build_googlenet(
    input_shape=None,
    num_classes=1000,
    aux_classifiers=None,
    variant=None,
    include_top=True,
    weights=None,
    input_tensor=None,
    pooling=None,
    classifier_activation="softmax",
    dropout_rate=0.4,
    aux_dropout_rate=0.7,
    width_multiplier=1.0,
    naive_inception=False,
    local_response_normalization=True,
    name="googlenet",
):
    """Builds GoogLeNet (Inception v1), optionally with its two auxiliary classifiers.

    Source: Szegedy et al., "Going Deeper with Convolutions", CVPR 2015, Table 1 and
    Section 5. The stem is conventional (conv, pool, 1×1 conv, 3×3 conv, pool); nine
    Inception modules 3a-5b follow, with 3×3/2 max pools after 3b and 4e; the head is
    global average pooling, dropout 0.4 and a linear layer with softmax. Aux heads hang off
    4a (`aux1`) and 4d (`aux2`): 5×5/3 average pool → 1×1 conv 128 + ReLU → FC 1024 + ReLU
    → dropout 0.7 → linear + softmax. Train with loss weights [1, 0.3, 0.3]
    (`keras_ninception.compile_model`) and drop the aux heads for inference
    (`keras_ninception.to_inference_model`).

    Variants (`GOOGLENET_VARIANTS`):
        - `"paper"`: Table 1 exactly (biases, ReLU, true 5×5 convs, Caffe's symmetric pad 3
          for conv1). 13,378,280 parameters at 224×224×3 with 1000 classes and both aux
          heads, 6,998,552 without. Stage shapes at 224 px: 112×112×64 (conv1),
          56×56×64 (pool1), 56×56×192 (conv2), 28×28×192 (pool2), 28×28×256 (3a) …
          7×7×1024 (5b). Deviations: the final 7×7/1 average pool is a global average pool
          (identical at 224 px, and valid at other sizes); the local response normalization
          layers of the paper's stem are left out (they have no parameters).
        - `"bn"`: the public checkpoints' topology as torchvision builds it (batch
          normalization, no conv biases, a 3×3 "5×5" branch, 2×2/2 pool before stage 5,
          ceil-mode pools, conv1 padded 3 on every side).
        - `"slim"`: TF-slim's `inception_v1` exactly: TensorFlow SAME padding for every
          convolution and pool (conv1 pads 2 before and 3 after at 224 px), batch
          normalization without gamma (epsilon 1e-3), no conv biases. 6,632,184 parameters
          without aux heads at 1000 classes (`count_params`, moving statistics included).
          TF-slim has no aux heads: with `aux_classifiers=True` they are the `"bn"` ones.
        - `"cifar"`: the small-image form, for 32×32 inputs: a 3×3/1 conv1 and no pool1, so
          inception 3a sees 16×16 maps and the aux heads 8×8 maps; batch normalization after
          each convolution. Deviations from the paper are stated in `GOOGLENET_STEMS` and
          `GOOGLENET_VARIANTS`.

    Args:
        input_shape: 3-tuple, one image's shape in the current data format, e.g.
            `(224, 224, 3)`. Default None: 224 px RGB for `"paper"`, 32 px RGB for
            `"cifar"`. With aux heads the side must be at least `min_input_size(variant)`
            (79 px paper, 20 px cifar); without them spatial dims may be None.
        num_classes: int >= 2. Default 1000. With ImageNet weights and `include_top`: 1000,
            or 1001 to keep TF-slim's class 0, "background".
        aux_classifiers: bool, add the `aux1`/`aux2` heads (only with `include_top`).
            Default None: True, except with ImageNet weights (no checkpoint has trained aux
            heads; asked for with True, they are built and start from random weights).
        variant: `"paper"`, `"bn"`, `"slim"` or `"cifar"`. Default None: `"slim"` with
            ImageNet weights, else `"paper"`.
        include_top: bool, add the classifier (and aux heads). Default True.
        weights: None (random initialization, default); `"imagenet"`: TF-slim's
            inception_v1 checkpoint (top-1 69.8 %, top-5 89.6 %), taken from
            `$KERAS_HOME/models/inception_v1_2016_08_28.tar.gz` and downloaded there with
            `keras.utils.get_file` when absent (variants `"slim"` and `"bn"`); or a path: a
            local copy of that archive or of its `inception_v1.ckpt`, torchvision's
            `googlenet-*.pth` (`"bn"`, needs torch), or a `.weights.h5` / `.keras` file of
            the same architecture. ImageNet weights take RGB in [-1, 1]
            (`keras_ninception.models.imagenet.preprocess_input`).
        input_tensor: optional `keras.Input` tensor to build on.
        pooling: with `include_top=False`: None (4-D feature map, default), `"avg"` or
            `"max"` (2-D features).
        classifier_activation: `"softmax"` (default) or None (logits), for every head.
        dropout_rate: float in [0, 1), dropout before the main classifier. Default 0.4.
        aux_dropout_rate: float in [0, 1), dropout in each aux head. Default 0.7.
        width_multiplier: float > 0 applied to every stem and Inception channel count
            (aux heads and classifiers keep their widths). Default 1.0 (paper).
        naive_inception: bool, use the naive module of Figure 2a (no 1×1 reductions).
            Default False.
        name: str, the model name. Default `"googlenet"`.

    Returns:
        An uncompiled `keras.Model`. With aux heads: outputs `[main, aux1, aux2]`, each
        `(batch, num_classes)` float32 probabilities (or logits); without: one output
        `main`. With `include_top=False`: the 5b features.

    Raises:
        ValueError: for any invalid argument, before a layer is built; each message names
            the argument, the allowed values and the received value (keras.applications'
            rules for `weights`, `include_top` and `num_classes`). A checkpoint that does
            not fit gets one naming its missing, extra or mis-shaped tensors.
        FileNotFoundError: `weights="imagenet"`, the archive is not in the Keras cache and
            the download server does not answer within seconds; the message says where to
            copy the file.
    """
    # 1. Validate every argument before the first layer.
    imagenet = pretrained.is_pretrained(weights)  # also checks `weights` itself
    if variant is None:
        variant = "slim" if imagenet else "paper"
    common.check_choice("variant", variant, tuple(GOOGLENET_VARIANTS))
    config = GOOGLENET_VARIANTS[variant]
    num_classes = common.check_num_classes(num_classes)
    if aux_classifiers is None:
        aux_classifiers = not imagenet
    check_bool("aux_classifiers", aux_classifiers)
    common.check_top_arguments(include_top, pooling, None, classifier_activation)
    common.check_rate("dropout_rate", dropout_rate)
    common.check_rate("aux_dropout_rate", aux_dropout_rate)
    check_number("width_multiplier", width_multiplier, strict=True)
    check_bool("naive_inception", naive_inception)
    check_bool("local_response_normalization", local_response_normalization)
    with_aux = aux_classifiers and include_top
    input_shape = common.resolve_input_shape(input_shape, input_tensor, config["default_size"])
    channels = input_shape[-1] if keras.config.image_data_format() == "channels_last" else input_shape[0]
    pretrained.check_pretrained_arguments(
        weights, variant, include_top, num_classes, classifier_activation, channels,
        width_multiplier, naive_inception,
    )
    if with_aux:
        smallest = min_input_size(variant)
        for side in common.spatial_size(input_shape):
            if side is None or side < smallest:
                raise ValueError(
                    f"GoogLeNet variant '{variant}' with aux classifiers needs inputs of at "
                    f"least {smallest}×{smallest} px: the aux heads' average pool needs a "
                    "feature map of at least 5×5 (4×4 for 'bn') at inception 4a. Use a larger input, "
                    f"variant='cifar' for small images (min {min_input_size('cifar')} px), "
                    "or aux_classifiers=False. "
                    f"Received: input_shape={input_shape} "
                    f"({keras.config.image_data_format()})"
                )

    # The weights file, fetched now (before any layer) so a missing one fails fast.
    weights_kind, weights_path = pretrained.resolve_weights(weights)
    batch_norm = config["batch_norm"]
    unit = {"batch_norm": batch_norm, "batch_norm_scale": config["batch_norm_scale"]}

    # 2. Input.
    inputs = common.make_input(input_shape, input_tensor)

    # 3. Stem.
    x = inputs
    for layer_name, op, filters, kernel, stride, padding in GOOGLENET_STEMS[config["stem"]]:
        if op == "conv":
            filters = common.scaled(filters, width_multiplier)
            x = apply_conv(x, filters, kernel, stride, padding=padding, **unit, name=layer_name)
        elif op == "max_pool":
            x = apply_pool(x, "max", kernel, stride, padding=padding, name=layer_name)
        elif local_response_normalization:
            x = LocalResponseNormalization(size=kernel, name=layer_name)(x)

    # 4. Inception stages, with the aux heads where Section 5 puts them.
    aux_sources = dict((module, aux) for aux, module in AUX_CLASSIFIERS)
    aux_outputs = []
    for module_name, *module_filters in INCEPTION_MODULES:
        module_filters = [common.scaled(f, width_multiplier) for f in module_filters]
        x = apply_inception(
            x,
            *module_filters,
            **unit,
            kernel_size_5x5=config["kernel_size_5x5"],
            naive=naive_inception,
            name=module_name,
        )
        if with_aux and module_name in aux_sources:
            aux_outputs.append(
                apply_aux_head(
                    x,
                    num_classes,
                    dropout_rate=aux_dropout_rate,
                    classifier_activation=classifier_activation,
                    batch_norm=batch_norm,
                    adaptive_pool_size=config["aux_adaptive_pool"],
                    name=aux_sources[module_name],
                )
            )
        if module_name in config["downsampling_pools"]:
            pool_name, size, stride = config["downsampling_pools"][module_name]
            x = apply_pool(x, "max", size, stride, padding=config["pool_padding"], name=pool_name)

    # 5. Head: global average pool (7×7/1 avg pool at 224 px) → dropout 0.4 → linear.
    if include_top:
        x = layers.GlobalAveragePooling2D(name="global_average_pooling")(x)  # N × 1024
        x = layers.Dropout(dropout_rate, name="dropout")(x)
        x = apply_classifier(x, num_classes, classifier_activation, name="main")
    else:
        x = common.apply_pooling(x, pooling)

    outputs = [x, *aux_outputs] if aux_outputs else x
    model = keras.Model(inputs, outputs, name=name)
    return pretrained.load_weights(model, weights_kind, weights_path)


def to_inference_model(model):
    """The single-output inference model of a multi-head model: aux heads removed.

    The new model shares layers (and so weights) with `model`: it is the sub-graph from the
    input to the `main` output, so no aux layer is in it, and its predictions equal the
    `main` output of `model` exactly (dropout is off at inference).

    Args:
        model: a `keras.Model` with an output layer named `main` (any model from
            `build_googlenet` or `build_nin`, or one loaded from a `.keras` file).

    Returns:
        `keras.Model` named `{model.name}_inference` with one output, `main`.

    Raises:
        ValueError: if `model` is not a Keras model or has no output named `main`.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")
    if "main" not in (getattr(model, "output_names", None) or []):
        raise ValueError(
            "`model` must have an output named 'main' (the models of build_googlenet and "
            f"build_nin have one). Received: model with outputs "
            f"{getattr(model, 'output_names', None)}"
        )
    main = model.get_layer("main").output
    # `model.input`, not `model.inputs`: keep the input structure (one tensor, not a list of
    # one), so the inference model takes a plain batch without a Keras structure warning.
    return keras.Model(model.input, main, name=f"{model.name}_inference")
