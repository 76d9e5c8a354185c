"""Named stage outputs (TF-slim's `end_points`) of NIN and GoogLeNet models."""

import keras

from keras_ninception.models.googlenet import GOOGLENET_ENDPOINTS


def feature_endpoints(model):
    """The named stage outputs a model has, in network order: `{endpoint: layer name}`.

    GoogLeNet: `stem` (after pool2), then `inception_3a` … `inception_5b` (the module
    concatenations). NIN: `mlpconv1`, `mlpconv2`, … (each block's last activation, before
    its pool). Works on any model from `build_googlenet`/`build_nin`, also reloaded from
    a `.keras` file, since it goes by the layer names.

    Raises:
        ValueError: if `model` has none of these layers.
    """
    names = [layer.name for layer in model.layers]
    found = {key: layer for key, layer in GOOGLENET_ENDPOINTS.items() if layer in names}
    block = 1
    while any(name.startswith(f"mlpconv{block}_") for name in names):
        found[f"mlpconv{block}"] = [n for n in names if n.startswith(f"mlpconv{block}_")][-1]
        block += 1
    if not found:
        raise ValueError(
            "`model` has no NIN or GoogLeNet stage layers (e.g. 'inception_3a_output', "
            f"'mlpconv1_conv'). Received: model named {model.name!r}"
        )
    return found


def build_feature_extractor(model, endpoints=None, final_endpoint=None):
    """A model from `model`'s input to a dict of named stage outputs (shared weights).

    Like TF-slim's `end_points` / `final_endpoint`: pass the endpoint names you want, or
    `final_endpoint` to get every endpoint up to and including it.

    Args:
        model: a model from `build_googlenet` or `build_nin` (any `include_top`).
        endpoints: iterable of endpoint names (see `feature_endpoints`), or None for all.
        final_endpoint: optional endpoint name; keeps the endpoints up to it.

    Returns:
        `keras.Model` whose output is `{endpoint: 4-D feature map}`; e.g. for GoogLeNet at
        224 px `features["inception_4a"]` has shape `(batch, 14, 14, 512)`.

    Raises:
        ValueError: an unknown endpoint name.
    """
    available = feature_endpoints(model)
    order = list(available)
    for arg_name, requested in (("endpoints", endpoints), ("final_endpoint", final_endpoint)):
        for name in [requested] if isinstance(requested, str) else (requested or ()):
            if name not in available:
                raise ValueError(
                    f"`{arg_name}` must name endpoints of this model, from {order}. "
                    f"Received: {arg_name}={requested!r}"
                )
    selected = list(endpoints) if endpoints is not None else order
    if final_endpoint is not None:
        selected = [n for n in selected if order.index(n) <= order.index(final_endpoint)]
    outputs = {name: model.get_layer(available[name]).output for name in selected}
    return keras.Model(model.inputs, outputs, name=f"{model.name}_features")
