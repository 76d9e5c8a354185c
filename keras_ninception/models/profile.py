"""Cost profile of a Keras model: parameters, multiply-adds and activation memory per layer.

Keras has no MAC counter and no maintained library counts Keras 3 functional models (the TF
profiler counts FLOPs of a traced graph, op by op, with no layer names), so this is a small
counter with the usual convention of the papers ("1.5 billion multiply-adds" for GoogLeNet):
multiply-adds of convolutions and fully connected layers, per image; pooling,
normalization, activations and concatenation count 0.
"""

import dataclasses

import keras
import numpy as np


@dataclasses.dataclass(frozen=True)
class LayerCost:
    """One layer's cost for one image.

    Attributes:
        name: the layer name.
        kind: the layer class name.
        output_shape: output shape without the batch dimension.
        params: number of weights (trainable and not).
        macs: multiply-adds per image.
        activation_bytes: bytes of the layer's output per image (float32: 4 per element).
    """

    name: str
    kind: str
    output_shape: tuple
    params: int
    macs: int
    activation_bytes: int


@dataclasses.dataclass(frozen=True)
class ModelProfile:
    """Per-layer costs and totals of a model (per image)."""

    model_name: str
    layers: tuple
    params: int
    trainable_params: int
    macs: int
    activation_bytes: int

    def table(self, top=None):
        """A plain-text table of the layers (the `top` costliest by MACs, or all)."""
        rows = sorted(self.layers, key=lambda r: -r.macs)[:top] if top else self.layers
        lines = [f"{'layer':<32} {'output':<18} {'params':>12} {'MACs':>15} {'act. KiB':>10}"]
        for r in rows:
            shape = "×".join(str(d) for d in r.output_shape)
            lines.append(
                f"{r.name:<32} {shape:<18} {r.params:>12,} {r.macs:>15,} {r.activation_bytes / 1024:>10.1f}"
            )
        lines.append(
            f"{'total':<32} {'':<18} {self.params:>12,} {self.macs:>15,} "
            f"{self.activation_bytes / 1024:>10.1f}"
        )
        return "\n".join(lines)


def _elements(shape):
    return int(np.prod([d for d in shape if d is not None]))


def _layer_macs(layer):
    if isinstance(layer, keras.layers.Conv2D):  # also covers its subclasses
        kernel = layer.kernel.shape  # (kh, kw, in / groups, out)
        out = layer.output.shape[1:]
        return _elements(out) * int(np.prod(kernel[:3]))
    if isinstance(layer, keras.layers.Dense):
        return int(np.prod(layer.kernel.shape))
    return 0


def profile_model(model, bytes_per_element=4):
    """Parameters, multiply-adds (MACs) and activation memory of every layer, per image.

    Args:
        model: a built `keras.Model` with known spatial input dims.
        bytes_per_element: bytes of one activation. Default 4 (float32); 2 for bfloat16.

    Returns:
        `ModelProfile`. `macs` counts Conv2D (`H_out·W_out·C_out·k_h·k_w·C_in`) and Dense
        (`in·out`) layers; `activation_bytes` is the sum of all layer outputs for one image
        (what inference holds if nothing is freed; an upper bound on peak memory).

    Raises:
        ValueError: if `model` is not a Keras model or has unknown spatial dims.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")
    if any(d is None for d in model.input_shape[1:]):
        raise ValueError(
            "Profiling needs a fixed input size; build the model with a full `input_shape`. "
            f"Received: model.input_shape={model.input_shape}"
        )
    rows = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        shape = tuple(layer.output.shape[1:])
        rows.append(
            LayerCost(
                name=layer.name,
                kind=type(layer).__name__,
                output_shape=shape,
                params=int(layer.count_params()),
                macs=_layer_macs(layer),
                activation_bytes=_elements(shape) * bytes_per_element,
            )
        )
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    return ModelProfile(
        model_name=model.name,
        layers=tuple(rows),
        params=int(model.count_params()),
        trainable_params=trainable,
        macs=sum(r.macs for r in rows),
        activation_bytes=sum(r.activation_bytes for r in rows),
    )


def inception_bottleneck_savings(module="inception_3a", input_shape=(28, 28, 192)):
    """MACs and parameters of one Inception module with and without its 1×1 bottlenecks.

    The paper's first claim for the 1×1 convolutions (Section 4): "dimension reductions"
    before the expensive 3×3 and 5×5 convolutions. Builds the module of Table 1 both ways
    (naive = Figure 2a: no reductions, no pool projection) on the module's input shape.

    Args:
        module: a row name of `INCEPTION_MODULES`. Default `"inception_3a"`.
        input_shape: the module's input at 224 px. Default `(28, 28, 192)` (3a).

    Returns:
        `{"naive": {"macs", "params", "output_channels"}, "bottleneck": {...},
        "mac_ratio": naive/bottleneck, "param_ratio": naive/bottleneck}`.
    """
    from keras_ninception.layers import apply_inception
    from keras_ninception.models.googlenet import INCEPTION_MODULES

    filters = {row[0]: row[1:] for row in INCEPTION_MODULES}[module]
    result = {}
    for label, naive in (("naive", True), ("bottleneck", False)):
        inputs = keras.Input(input_shape)
        outputs = apply_inception(inputs, *filters, naive=naive, name=module)
        costs = profile_model(keras.Model(inputs, outputs))
        result[label] = {
            "macs": costs.macs,
            "params": costs.params,
            "output_channels": int(outputs.shape[-1]),
        }
    result["mac_ratio"] = result["naive"]["macs"] / result["bottleneck"]["macs"]
    result["param_ratio"] = result["naive"]["params"] / result["bottleneck"]["params"]
    return result


def gap_savings(model):
    """Parameters of the global-average-pooling classifier vs a fully connected one.

    The papers' second claim (NIN Section 3.2; GoogLeNet Section 5): averaging each feature
    map has no parameters, where a fully connected classifier over the flattened map has
    `H·W·C·classes`. For GoogLeNet the GAP head is GAP + FC(1024 → classes); the
    alternative is FC over the flattened 7×7×1024 map. For NIN the GAP head is the last
    1×1 conv that makes one map per class, plus GAP; the alternative is FC over the
    flattened map that conv reads.

    Returns:
        `{"feature_map": (H, W, C), "gap_head_params", "fc_head_params", "ratio"}`.

    Raises:
        ValueError: if `model` has no `global_average_pooling` layer.
    """
    try:
        gap = model.get_layer("global_average_pooling")
    except ValueError:
        raise ValueError(
            "`model` has no 'global_average_pooling' layer (build it with include_top=True). "
            f"Received: model named {model.name!r}"
        ) from None
    classes = int(model.get_layer("main").output.shape[-1])
    names = [layer.name for layer in model.layers]
    if "main_classifier" in names:  # GoogLeNet: GAP → (dropout) → FC
        feature_map = tuple(gap.input.shape[1:])
        gap_params = model.get_layer("main_classifier").count_params()
    else:  # NIN: class-map conv → GAP
        last_block = [n for n in names if n.startswith("mlpconv")][-1].split("_")[0]
        convs = [n for n in names if n.startswith(f"{last_block}_cccp") and n.count("_") == 1]
        class_map_conv = model.get_layer(convs[-1])
        feature_map = tuple(class_map_conv.input.shape[1:])
        gap_params = class_map_conv.count_params()
    fc_params = _elements(feature_map) * classes + classes
    return {
        "feature_map": feature_map,
        "gap_head_params": int(gap_params),
        "fc_head_params": int(fc_params),
        "ratio": fc_params / gap_params,
    }
