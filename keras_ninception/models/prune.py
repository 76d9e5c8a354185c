"""Pruning by depth: a GoogLeNet cut after one of its heads' branch points.

Deep supervision trains three classifiers at three depths (Szegedy et al. 2015, Section 5):
`aux1` on inception 4a, `aux2` on inception 4d, `main` after inception 5b. Each head, with
the layers it reads from, is a complete classifier of its own; when an aux head is nearly as
accurate as `main`, the network up to it is a smaller, faster model at almost no cost in
accuracy. `prune_to_head` makes that model: the sub-graph from the input to the head, with
every later layer gone.
"""

import keras
from keras import layers

from keras_ninception.models.googlenet import AUX_CLASSIFIERS, to_inference_model
from keras_ninception.options import HEADS  # noqa: F401 (re-exported)

# The heads in depth order, and the Inception module each one branches off (None: `main`
# reads the whole trunk).
HEAD_BRANCH_POINTS = {**dict(AUX_CLASSIFIERS), "main": None}


def _is_googlenet(model):
    return any(layer.name == "inception_3a_output" for layer in model.layers)


def prune_to_head(model, head, output_name=None):
    """The network from `model`'s input up to one head, as a standalone single-output model.

    The new model is the sub-graph of `model` from its input to the head's output: it shares
    layers (and so weights) with `model`, and its predictions equal that head's output of
    `model` (dropout is off at inference, batch normalization uses its moving statistics).
    No layer past the head's branch point remains: for `aux1` the stem, inception 3a-4a and
    the `aux1_*` layers; for `aux2` the stem, inception 3a-4d and the `aux2_*` layers; for
    `main` the inference model (`to_inference_model`: every aux layer removed).

    Args:
        model: a GoogLeNet from `build_googlenet` (any variant; also one reloaded from a
            `.keras` file or already pruned), with the requested head as an output.
        head: `"aux1"`, `"aux2"` or `"main"`.
        output_name: None (default: the output layer keeps the head's name, so the
            pruned model's `output_names` is `[head]`), or a name for the output layer, e.g.
            `"main"` so that the pruned model reads as any single-head model
            (`compile_model` logs `main_accuracy`, `to_inference_model` accepts it). The
            renamed output layer is a fresh `Activation` with the head's activation and
            float32 dtype; it has no weights, so the outputs are unchanged.

    Returns:
        `keras.Model` named `{model.name}_{head}` (`{model.name}_inference` for `main`)
        with one output, `(batch, num_classes)` float32, as the head's.

    Raises:
        ValueError: `model` is not a Keras model, not a GoogLeNet (no `inception_3a_output`
            layer), `head` is not one of `HEADS`, or `model` has no output named `head`
            (e.g. built with `aux_classifiers=False`, or already pruned).
        RuntimeError: the pruned graph holds a layer past the branch point (a model whose
            head does not read from its branch module; not one of this package's).
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")
    if head not in HEADS:
        raise ValueError(f"`head` must be one of {list(HEADS)}. Received: head={head!r}")
    if output_name is not None and (not isinstance(output_name, str) or not output_name):
        raise ValueError(f"`output_name` must be None or a non-empty string. Received: output_name={output_name!r}")
    if not _is_googlenet(model):
        raise ValueError(
            "`model` must be a GoogLeNet from build_googlenet (pruning cuts it after "
            "inception_4a or inception_4d; it has no Inception modules). Received: model named "
            f"{model.name!r}"
        )
    outputs = list(getattr(model, "output_names", None) or [])
    if head not in outputs:
        raise ValueError(
            f"`model` has no {head!r} head: its outputs are {outputs} (build it with "
            f"aux_classifiers=True to have aux1 and aux2). Received: head={head!r}"
        )

    if head == "main":
        pruned = to_inference_model(model)
    else:
        pruned = keras.Model(model.input, model.get_layer(head).output, name=f"{model.name}_{head}")
        _check_cut(model, pruned, head)
    if output_name is None or output_name == head:
        return pruned
    # A functional model's output name is its last layer's name: rebuild that layer (an
    # Activation, no weights) under the new name.
    last = pruned.get_layer(head)
    renamed = layers.Activation.from_config({**last.get_config(), "name": output_name})
    return keras.Model(pruned.input, renamed(last.input), name=pruned.name)


def _check_cut(model, pruned, head):
    """Raises RuntimeError unless `pruned` holds only the trunk up to the branch point and
    the head's own layers."""
    branch = HEAD_BRANCH_POINTS[head]
    trunk = keras.Model(model.input, model.get_layer(f"{branch}_output").output)
    allowed = {layer.name for layer in trunk.layers}
    extra = sorted(
        layer.name
        for layer in pruned.layers
        if layer.name not in allowed and layer.name != head and not layer.name.startswith(f"{head}_")
    )
    if extra:
        raise RuntimeError(
            f"The model pruned to {head!r} still holds layers past {branch}: {extra[:5]}; the "
            f"head does not read from {branch}_output as in build_googlenet."
        )


def head_models(model):
    """The network up to each head of a model: `{head: single-output keras.Model}`.

    A GoogLeNet gets `prune_to_head(model, head)` for each of its outputs, in the model's
    output order (`main`, `aux1`, `aux2`); any other single-`main` model (NIN, a GoogLeNet
    without aux heads, a pruned run's model) gets `{"main": to_inference_model(model)}`.
    Layers are shared with `model`.

    Raises:
        ValueError: a model with no `main` output that is not a GoogLeNet with heads.
    """
    if _is_googlenet(model):
        return {head: prune_to_head(model, head) for head in model.output_names if head in HEADS}
    return {"main": to_inference_model(model)}
