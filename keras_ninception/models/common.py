"""Argument checks and input resolution shared by the model builders.

Every check runs before the first layer is built, and every message names the argument,
the allowed values, and ends with `Received: arg=value` (the keras.applications style).
"""

import json
import os
import zipfile

import keras
from keras import layers

from keras_ninception.checks import check_bool, check_choice, check_num_classes, check_rate, is_int  # noqa: F401
from keras_ninception.layers.normalization import FusedBatchNormalization, use_fused_batch_normalization

POOLING_CHOICES = (None, "avg", "max")


def check_top_arguments(include_top, pooling, weights, classifier_activation):
    """Checks `include_top`, `pooling`, `weights` and `classifier_activation`."""
    check_bool("include_top", include_top)
    check_choice("pooling", pooling, POOLING_CHOICES)
    if weights is not None and not (isinstance(weights, (str, os.PathLike)) and os.path.isfile(weights)):
        raise ValueError(
            "`weights` must be None (random initialization) or the path to an existing "
            "weights file (`.weights.h5`, or a `.keras` model file). No pretrained weights "
            f"are downloaded. Received: weights={weights!r}"
        )
    if classifier_activation is not None:
        try:
            keras.activations.get(classifier_activation)
        except ValueError:
            raise ValueError(
                "`classifier_activation` must be None (logits) or a Keras activation name "
                f"such as 'softmax'. Received: classifier_activation={classifier_activation!r}"
            ) from None


def resolve_input_shape(input_shape, input_tensor, default_size, default_channels=3):
    """Returns the `(H, W, C)`/`(C, H, W)` input shape, as a tuple, for the data format.

    Args:
        input_shape: None (use the default), or a 3-tuple in the current data format.
        input_tensor: None or a `keras.Input` tensor; its shape wins when given.
        default_size: int, the default side in pixels.
        default_channels: int, the default channel count.

    Raises:
        ValueError: a shape that is not rank 3, a non-positive dimension, or an
            `input_tensor` that is not a Keras tensor of rank 4.
    """
    channels_last = keras.config.image_data_format() == "channels_last"
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor) or len(input_tensor.shape) != 4:
            raise ValueError(
                "`input_tensor` must be a Keras tensor of rank 4 from `keras.Input`, "
                f"e.g. keras.Input(shape=(224, 224, 3)). Received: input_tensor={input_tensor!r}"
            )
        input_shape = tuple(input_tensor.shape[1:])
    if input_shape is None:
        if channels_last:
            return (default_size, default_size, default_channels)
        return (default_channels, default_size, default_size)
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if shape is None or len(shape) != 3 or any(d is not None and (not is_int(d) or d < 1) for d in shape):
        layout = "(height, width, channels)" if channels_last else "(channels, height, width)"
        raise ValueError(
            f"`input_shape` must be a tuple of 3 positive integers {layout} for the "
            f"'{keras.config.image_data_format()}' data format; one image, without the "
            f"batch dimension. Received: input_shape={input_shape!r}"
        )
    shape = tuple(None if d is None else int(d) for d in shape)
    channels = shape[-1] if channels_last else shape[0]
    if channels is None:
        raise ValueError(
            "The channel dimension of `input_shape` must be known (1 for grayscale, 3 for "
            f"RGB). Received: input_shape={input_shape!r}"
        )
    return shape


def spatial_size(input_shape):
    """`(height, width)` of a resolved input shape (entries may be None)."""
    if keras.config.image_data_format() == "channels_last":
        return input_shape[0], input_shape[1]
    return input_shape[1], input_shape[2]


def make_input(input_shape, input_tensor):
    """The model's input tensor: `input_tensor` itself, or a new `keras.Input` named `input`."""
    if input_tensor is not None:
        return input_tensor
    return layers.Input(shape=input_shape, name="input")


def apply_pooling(x, pooling, name="global_average_pooling"):
    """Optional global pooling for `include_top=False` models."""
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name=name)(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="global_max_pooling")(x)
    return x


def lambda_layers(path):
    """The names of the `Lambda` layers in a `.keras` file's `config.json`.

    Returns [] when there is none, or when the file is not a readable `.keras` archive.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return []
    names, stack = [], [config]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                names.append(str((node.get("config") or {}).get("name", "?")))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(names)


def load_keras_file(path, compile=True):
    """`keras.saving.load_model(path)` in safe mode: reads configuration and weights, never code.

    A `Lambda` layer holds Python code (Keras serializes its function), and no model of this
    package has one, so a file with one is refused before Keras reads it. Batch normalization
    comes back as Keras' own layer (a file saved with version 0.1's `FusedBatchNormalization`
    too: `with_keras_batch_normalization`), run on TensorFlow's fused kernel when Keras runs on
    TensorFlow (`use_fused_batch_normalization`: the kernel training used, same weights); a
    compiled file's loss, metrics and loss weights are kept, not its optimizer state.

    Raises:
        ValueError: the file holds a `Lambda` layer, or is not a readable `.keras` file
            (the message names the file).
    """
    path = os.fspath(path)
    names = lambda_layers(path)
    if names:
        raise ValueError(
            f"{path!r} holds Python code (a `Lambda` layer: {', '.join(map(repr, names))}). "
            "keras_ninception loads model files in Keras' safe mode, which reads configuration "
            "and weights only, never code; rebuild the model without Lambda layers."
        )
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # zipfile, h5py and Keras raise many types for a bad file
        raise ValueError(
            f"{path!r} is not a readable .keras model file ({str(error).splitlines()[0][:200]})."
        ) from None
    plain = with_keras_batch_normalization(model)
    if plain is not model and compile and model.compiled:
        plain.compile_from_config(model.get_compile_config())  # loss, metrics, loss weights
    if keras.backend.backend() == "tensorflow":
        use_fused_batch_normalization(plain)
    return plain


def load_weights(model, weights):
    """Loads `weights` (a `.weights.h5` or `.keras` path) into `model`, when given.

    Raises:
        ValueError: the file is not a Keras weights/model file, or its weights do not fit
            the architecture (the message names the file).
    """
    if weights is None:
        return model
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # Keras only warns about weights it skipped
            if str(weights).endswith(".keras"):
                source = load_keras_file(weights, compile=False)
                model.set_weights(source.get_weights())
            else:
                model.load_weights(weights)
    except Exception as error:  # h5py, zipfile and Keras raise many types for a bad file
        raise ValueError(
            f"Could not load `weights` from {os.fspath(weights)!r} into {model.name!r}: it must "
            "be a .weights.h5 or .keras file saved from a model of the same architecture "
            f"(variant, num_classes, input channels). Cause: {str(error).splitlines()[0][:300]} "
            f"Received: weights={weights!r}"
        ) from None
    return model


def scaled(filters, width_multiplier):
    """`filters` × `width_multiplier`, rounded, at least 1."""
    return max(1, int(round(filters * width_multiplier)))


def copy_model(model, clone_layer):
    """A copy of a functional `model`, each layer rebuilt by `clone_layer(layer)`, with its weights.

    Every layer is a new one (none is shared with `model`: a shared layer would hold two
    graphs' nodes, and `layer.output` in the copy would be ambiguous). `clone_layer` must give
    a layer with the same weights in the same order (a changed class or dtype is fine).
    """
    copy = keras.models.clone_model(model, clone_function=clone_layer)
    copy.set_weights(model.get_weights())
    return copy


def with_keras_batch_normalization(model):
    """A copy of `model` whose `FusedBatchNormalization` layers are Keras' own `BatchNormalization`.

    For models loaded from files of version 0.1, whose builders used the registered
    `FusedBatchNormalization` layer (such a file loads only where `keras_ninception.layers`
    is imported). The copy has `keras.layers.BatchNormalization` layers with the same config
    and weights, so it computes the same outputs and its `.keras` file loads with Keras alone;
    `use_fused_batch_normalization` puts the fused kernel back without changing the class.
    Every other layer is copied as it is.

    Args:
        model: a functional `keras.Model`.

    Returns:
        A new `keras.Model` with the same name, inputs, outputs and layer names (`model`
        itself when it has no `FusedBatchNormalization`, as every model of the builders).
    """
    if not any(type(layer) is FusedBatchNormalization for layer in model.layers):
        return model

    def clone(layer):
        if type(layer) is FusedBatchNormalization:
            return keras.layers.BatchNormalization.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    return copy_model(model, clone)
