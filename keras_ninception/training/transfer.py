"""Starting a training run from pretrained weights, and fine-tuning them (`--weights`, `--fine-tune`).

The source is ImageNet (`"imagenet"`: TF-slim's inception_v1 checkpoint; a local copy of it;
torchvision's `.pth`), a finished run folder (its `model.keras`), or a `.keras` file. The new
model is built for the target data (its class count, image size and heads), and every layer
of the source with the same name and weight shapes is copied into it (`transfer_weights`).
The heads (`main_classifier`, the aux heads) start fresh when the source has none that fits:
a new class count, or a checkpoint without aux heads (none of the public ones has trained
ones). Everything else must fit, or the error names the layer.

`--fine-tune` (the classic two-stage recipe of the Keras transfer-learning guide, one stage per
run):
- `"head"`: the backbone (every layer outside the heads) is frozen (`trainable = False`), so
  its batch normalization runs in inference mode and keeps its moving statistics; only the
  heads train.
- `"all"` (default): every layer trains, at `--learning-rate` (lower it for a pretrained
  backbone, e.g. 10× below the from-scratch rate). For the two-stage schedule, run `head`
  first, then `all` with `--weights` the first run's folder.
"""

import dataclasses
import os

from keras_ninception.models import build_googlenet
from keras_ninception.models.common import load_keras_file
from keras_ninception.models.pretrained import is_pretrained, weights_kind
from keras_ninception.training.run_folder import read_saved_run

# Layers of the heads: the main classifier and its activation, and every aux-head layer.
HEAD_LAYERS = ("main", "main_classifier")
HEAD_PREFIXES = ("aux1", "aux2")


def is_head(layer_name):
    """True for a layer of the main classifier or of an aux head."""
    return layer_name in HEAD_LAYERS or layer_name.startswith(HEAD_PREFIXES)


def is_run_dir(path):
    return isinstance(path, (str, os.PathLike)) and os.path.isdir(path)


def check_weights(weights, model_name):
    """Checks `--weights` before anything is loaded.

    Raises:
        ValueError: not `"imagenet"`, an existing file or a run folder; ImageNet weights for
            a model other than GoogLeNet.
        FileNotFoundError: a run folder without `model.keras` (not a finished run).
    """
    if weights is None:
        return
    if is_run_dir(weights):
        if not os.path.isfile(os.path.join(weights, "model.keras")):
            raise FileNotFoundError(
                f"`weights` {weights!r} is a folder without model.keras: not a finished run. "
                "Pass a finished run folder, a .keras file, 'imagenet' or a checkpoint file."
            )
        return
    try:
        kind = weights_kind(weights)
    except ValueError:
        raise ValueError(
            "`weights` must be 'imagenet', a finished run folder, a .keras file, TF-slim's "
            "inception_v1 .tar.gz / .ckpt or torchvision's googlenet .pth. "
            f"Received: weights={weights!r}"
        ) from None
    if kind == "keras" and not os.fspath(weights).endswith(".keras"):
        raise ValueError(
            "`weights` takes a whole model (.keras file or run folder), not a .weights.h5 "
            f"file, whose layers cannot be matched by name. Received: weights={weights!r}"
        )
    if kind != "keras" and model_name != "googlenet":
        raise ValueError(
            f"ImageNet weights are GoogLeNet's (variant 'slim' or 'bn'). Received: model={model_name!r}"
        )


def default_variant(weights):
    """The GoogLeNet variant a run with `weights` gets when none is given, or None."""
    if weights is None:
        return None
    if is_run_dir(weights):
        return read_saved_run(weights).get("variant")
    return "slim" if is_pretrained(weights) else None


def source_model(weights, variant, input_shape, num_classes):
    """The model whose weights a run starts from, and a description of it.

    ImageNet weights are built with `build_googlenet(variant, weights=...)`, without a top
    unless the target has 1000 classes (then the ImageNet classifier is kept).
    """
    if not is_run_dir(weights) and is_pretrained(weights):  # a folder is a run, never a checkpoint
        keep_top = num_classes == 1000
        model = build_googlenet(
            input_shape=input_shape,
            num_classes=1000,
            variant=variant,
            include_top=keep_top,
            aux_classifiers=False,
            weights=weights,
        )
        name = "ImageNet (TF-slim inception_v1)" if weights == "imagenet" else os.fspath(weights)
        return model, name
    path = os.path.join(weights, "model.keras") if is_run_dir(weights) else os.fspath(weights)
    return load_keras_file(path, compile=False), os.fspath(weights)


@dataclasses.dataclass
class Transfer:
    """What `transfer_weights` did: the layers copied and those left fresh (heads only)."""

    source: str
    copied: list
    fresh: list

    def fresh_heads(self):
        """The heads with a layer left fresh, in the order `["main", "aux1", "aux2"]` (not the
        model's layer order, in which the aux heads come first)."""
        order = ("main", "aux1", "aux2")
        heads = {_head_of(name) for name in self.fresh}
        return sorted(heads, key=lambda head: (order.index(head) if head in order else len(order), head))

    def describe(self, num_classes):
        """One line for the run's output, e.g. `... 114 layers copied; starting fresh: ...`.

        A head with no layer copied is "not in the source" (the aux heads of an ImageNet
        checkpoint); one with only its classifier fresh has a new class count.
        """
        copied_heads = {_head_of(name) for name in self.copied if is_head(name)}
        reasons = []
        for head in self.fresh_heads():
            if head in copied_heads or head == "main":
                label = "main classifier" if head == "main" else f"{head} classifier"
                reasons.append(f"{label} ({num_classes} classes)")
            else:
                reasons.append(f"{head} (not in the source: random initialization)")
        text = f"Weights from {self.source}: {len(self.copied)} layers copied"
        return text + (f"; starting fresh: {', '.join(reasons)}" if reasons else "") + "."


def _head_of(layer_name):
    return "main" if layer_name in HEAD_LAYERS else layer_name.split("_")[0]


def transfer_weights(source, target, source_name="the source"):
    """Copies every layer of `source` into the layer of `target` with the same name and shapes.

    Returns:
        `Transfer`: the layers copied, and the head layers left as built (fresh).

    Raises:
        ValueError: a backbone layer of `target` (not a head) has no counterpart in `source`
            with the same weight shapes (another model or variant); the message names it.
    """
    source_layers = {layer.name: layer for layer in source.layers if layer.weights}
    copied, fresh = [], []
    for layer in target.layers:
        if not layer.weights:
            continue
        match = source_layers.get(layer.name)
        shapes = [tuple(w.shape) for w in layer.weights]
        if match is not None and [tuple(w.shape) for w in match.weights] == shapes:
            layer.set_weights(match.get_weights())
            copied.append(layer.name)
        elif is_head(layer.name):
            fresh.append(layer.name)
        else:
            found = None if match is None else [tuple(w.shape) for w in match.weights]
            raise ValueError(
                f"The weights of {source_name} do not fit layer {layer.name!r} of the model to "
                f"train: it needs {shapes}, the source has {found or 'no such layer'}. Train "
                "the same --model and --variant as the source (only the heads may differ)."
            )
    return Transfer(source_name, copied, fresh)


def freeze_backbone(model):
    """Freezes every layer outside the heads; returns how many layers with weights were frozen.

    A frozen batch normalization layer runs in inference mode (Keras 3: `trainable = False`
    means inference mode, and the fused kernel of `use_fused_batch_normalization` follows it), so its moving
    statistics do not change while the heads train.
    """
    frozen = 0
    for layer in model.layers:
        if layer.weights and not is_head(layer.name):
            layer.trainable = False
            frozen += 1
    return frozen
