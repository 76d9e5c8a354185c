"""Weights of torchvision's `googlenet` in a Keras `build_googlenet(variant="bn")` model.

torchvision's GoogLeNet (`torchvision/models/googlenet.py`) is the BN topology of the TF-slim
inception_v1 checkpoint: `BasicConv2d` = conv (no bias) → BatchNorm2d(eps=1e-3) → ReLU, a
3×3 "5×5" branch, ceil-mode max pools, a 2×2/2 pool before stage 5, and `InceptionAux` with an
adaptive 4×4 average pool. `variant="bn"` builds the same graph with this package's layer
names; this module maps the state dict's keys onto them.

torch is not imported here: the state dict's tensors only need `.detach().cpu().numpy()` (or
to be NumPy arrays already), so torch is needed only by whoever makes the state dict.
"""

import numpy as np

# torchvision module prefix → Keras conv layer name (its BN is `{name}_bn`).
_STEM = {
    "conv1": "conv1_7x7_s2",
    "conv2": "conv2_3x3_reduce",
    "conv3": "conv2_3x3",
}
_BRANCHES = {
    "branch1": "1x1",
    "branch2.0": "3x3_reduce",
    "branch2.1": "3x3",
    "branch3.0": "5x5_reduce",
    "branch3.1": "5x5",
    "branch4.1": "pool_proj",
}
_MODULES = ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")


def _conv_map(has_aux):
    mapping = dict(_STEM)
    for module in _MODULES:
        for branch, suffix in _BRANCHES.items():
            mapping[f"inception{module}.{branch}"] = f"inception_{module}_{suffix}"
    if has_aux:
        mapping["aux1.conv"] = "aux1_conv"
        mapping["aux2.conv"] = "aux2_conv"
    return mapping


def _numpy(value):
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float32)


def load_torchvision_weights(model, state_dict):
    """Copies a torchvision GoogLeNet state dict into a `variant="bn"` Keras model.

    Conv kernels go from `(out, in, kh, kw)` to `(kh, kw, in, out)`, linear weights are
    transposed, and the aux heads' `fc1` is reordered from PyTorch's channel-major flatten
    `(128, 4, 4)` to Keras' channels-last flatten `(4, 4, 128)`. BatchNorm's weight, bias,
    running_mean and running_var become gamma, beta, moving_mean, moving_variance.

    Inputs: torchvision's model expects the same images as the Keras one here when it was
    built with `transform_input=False` (the default for random initialization). Its
    pretrained weights set `transform_input=True`, which rescales ImageNet-normalized input
    to [-1, 1]; feed the Keras model `x / 127.5 - 1` images in that case.

    Args:
        model: from `build_googlenet(variant="bn", num_classes=..., aux_classifiers=...)`,
            channels_last. With aux heads, the state dict must have them too; without, the
            state dict's `aux1.*`/`aux2.*` entries are ignored, and without a top
            (`include_top=False`) its `fc.*` entries.
        state_dict: mapping of torchvision's names to tensors or arrays
            (`torchvision.models.googlenet(...).state_dict()`).

    Returns:
        `model`, with its weights set.

    Raises:
        ValueError: `model` is not a bn-variant GoogLeNet, or a key is missing or unused, or
            a shape does not match (the message names it).
    """
    names = {layer.name for layer in model.layers}
    if "inception_3a_5x5_bn" not in names or "conv1_7x7_s2_pad" not in names:
        raise ValueError(
            "`model` must be a GoogLeNet built with variant='bn'. "
            f"Received: model named {model.name!r}"
        )
    has_top = "main_classifier" in names
    has_aux = "aux1_conv" in names
    state = {k: _numpy(v) for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    if not has_aux:
        state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2."))}
    if not has_top:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    used = set()

    def take(key):
        if key not in state:
            raise ValueError(f"The state dict has no {key!r} (is it torchvision's googlenet?).")
        used.add(key)
        return state[key]

    def assign(layer_name, arrays):
        layer = model.get_layer(layer_name)
        expected = [tuple(w.shape) for w in layer.weights]
        got = [a.shape for a in arrays]
        if expected != got:
            raise ValueError(
                f"Shape mismatch for layer {layer_name!r}: the model has {expected}, the state "
                f"dict gives {got} (check num_classes and aux_classifiers)."
            )
        layer.set_weights(arrays)

    for prefix, conv_name in _conv_map(has_aux).items():
        assign(conv_name, [take(f"{prefix}.conv.weight").transpose(2, 3, 1, 0)])
        assign(
            f"{conv_name}_bn",
            [take(f"{prefix}.bn.{p}") for p in ("weight", "bias", "running_mean", "running_var")],
        )

    dense = {"fc": "main_classifier"} if has_top else {}
    if has_aux:
        for aux in ("aux1", "aux2"):
            fc1 = take(f"{aux}.fc1.weight")  # (1024, 128·4·4), input index c·16 + h·4 + w
            kernel = fc1.reshape(fc1.shape[0], 128, 4, 4).transpose(2, 3, 1, 0).reshape(-1, fc1.shape[0])
            assign(f"{aux}_fc", [kernel, take(f"{aux}.fc1.bias")])
            dense[f"{aux}.fc2"] = f"{aux}_classifier"
    for prefix, layer_name in dense.items():
        assign(layer_name, [take(f"{prefix}.weight").T, take(f"{prefix}.bias")])

    unused = sorted(set(state) - used)
    if unused:
        raise ValueError(
            f"{len(unused)} state dict entries have no place in the model, e.g. {unused[:3]}."
        )
    return model
