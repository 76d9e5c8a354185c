"""Export the inference model of a run: a `.keras` file, a TF SavedModel, or a LiteRT file.

Every export is a folder that holds the model and `metadata.json` (class names, input size
and channels, preprocessing, the source run's folder name; only portable fields, no
absolute path). The default folder is `RUN_DIR/export/<format>`:

| format | model file | input | inside the model |
|---|---|---|---|
| `"keras"` | `model.keras` | `float32` `(batch, H, W, C)` in [-1, 1] | nothing: the caller preprocesses |
| `"saved_model"` | `saved_model.pb` + `variables/` | `uint8` `(batch, any h, any w, C)` | resize + scale |
| `"litert"` | `model.tflite` | `uint8` `(batch, H, W, C)` at the model's size | scale |

Preprocessing is the training pipeline's (`data/pipeline.py`): bilinear resize to the
model's `H×W` (`tf.image.resize`), rounded and clipped back to `uint8`, then `x / 127.5 - 1`.

The SavedModel has two signatures:
- `serve(images)`: `images` `uint8` `(batch, h, w, C)`, any batch size and any height and
  width; returns `probabilities` (`float32` `(batch, num_classes)`), `class_index` (`int64`
  `(batch,)`, the top-1 class) and `class_name` (`string` `(batch,)`).
- `class_names()`: returns `class_names`, `string` `(num_classes,)`.

The LiteRT file has one signature, `serve(images)` -> `probabilities`, with a static
height, width and channel count (GPU and NPU delegates want static shapes), a batch
dimension that may be resized (1 by default), and builtin operators only, so it runs on the
plain LiteRT runtime. The caller resizes images to `H×W` first (as `predict` does, with the
pipeline's resize).

The SavedModel and LiteRT formats are TensorFlow's: on another Keras backend their
functions raise `RuntimeError` naming it (the `keras` format works on any backend).

Exports are written to a temporary folder beside the target and renamed into place: the
target is the old export or the whole new one, never half of one. An existing target is
replaced only with `overwrite=True`, and only when it holds an export (a `metadata.json`
with a `format`).
"""

import json
import os
import shutil
import tempfile

import keras
import tensorflow as tf

from keras_ninception.checks import check_bool, check_tensorflow_backend
from keras_ninception.data.pipeline import resize_for_evaluation, scale_images
from keras_ninception.models import to_inference_model
from keras_ninception.models.common import with_keras_batch_normalization
from keras_ninception.training.precision import to_float32
from keras_ninception.options import EXPORT_FORMATS

FORMATS = EXPORT_FORMATS
METADATA_FILE = "metadata.json"
KERAS_FILE = "model.keras"
LITERT_FILE = "model.tflite"
SAVED_MODEL_FILE = "saved_model.pb"
PREPROCESSING = "resize (bilinear) to image_size, round and clip to uint8, then x / 127.5 - 1"
INPUTS = {
    "keras": "float32 (batch, height, width, channels) in [-1, 1], already preprocessed "
    "(channels first when data_format is 'channels_first')",
    "saved_model": "uint8 (batch, any height, any width, channels); signature 'serve', "
    "argument 'images'; resized and scaled inside",
    "litert": "uint8 (batch, height, width, channels) at image_size (batch 1 by default); "
    "signature 'serve', input 'images'; scaled inside, resize first",
    "onnx": "uint8 (batch, height, width, channels) at image_size, any batch; input 'images'; "
    "scaled inside, resize first",
    "openvino": "uint8 (batch, height, width, channels) at image_size, any batch; input 'images'; "
    "scaled inside, resize first",
}
OUTPUTS = {
    "keras": "float32 (batch, num_classes) probabilities",
    "saved_model": "probabilities float32 (batch, num_classes), class_index int64 (batch,), "
    "class_name string (batch,); signature 'class_names' returns class_names string (num_classes,)",
    "litert": "probabilities float32 (batch, num_classes)",
    "onnx": "probabilities float32 (batch, num_classes), the only output",
    "openvino": "probabilities float32 (batch, num_classes), the only output",
}


def input_geometry(model):
    """`((height, width), channels)` of a single-input image model.

    Reads `model.input_shape` in the Keras image data format (`(H, W, C)` for channels_last,
    `(C, H, W)` for channels_first).

    Raises:
        ValueError: the model does not take one image batch of a fixed size.
    """
    shape = model.input_shape
    if not isinstance(shape, tuple) or len(shape) != 4 or any(d is None for d in shape[1:]):
        raise ValueError(
            "Export needs a model with one image input of a fixed size, (batch, height, "
            f"width, channels). Received: model with input_shape={shape}"
        )
    if keras.config.image_data_format() == "channels_last":
        height, width, channels = shape[1:]
    else:
        channels, height, width = shape[1:]
    return (int(height), int(width)), int(channels)


def preprocess(images, image_size, data_format=None, eval_crop=None):
    """The training pipeline's preprocessing of a `uint8` batch for evaluation, as TF ops.

    Args:
        images: `uint8` `(batch, h, w, c)`, any size.
        image_size: `(height, width)` of the model.
        data_format: default `keras.config.image_data_format()`.
        eval_crop: None (default), or the run's central fraction: resize to
            `image_size / eval_crop` and crop the central `image_size`
            (`pipeline.resize_and_central_crop`).

    Returns:
        `float32` `(batch, height, width, c)` (or `(batch, c, height, width)`), values
        `resize(x) / 127.5 - 1` with the resize rounded back to `uint8`, as in training.
    """
    data_format = data_format or keras.config.image_data_format()
    return scale_images(resize_for_evaluation(images, image_size, eval_crop), data_format)


def preprocessing_description(eval_crop=None):
    """`PREPROCESSING`, with the central crop when `eval_crop` is given."""
    if eval_crop is None:
        return PREPROCESSING
    return (
        f"resize (bilinear) to round(image_size / {eval_crop}), central crop of image_size, round "
        "and clip to uint8, then x / 127.5 - 1"
    )


def inference_model(model):
    """`model` itself when it has one output, else `to_inference_model(model)` (aux dropped)."""
    if len(model.outputs) == 1:
        return model
    return to_inference_model(model)


def _check_export_arguments(model, path, class_names, overwrite):
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"`path` must be a non-empty string or path. Received: path={path!r}")
    check_bool("overwrite", overwrite)
    if len(model.outputs) != 1:
        raise ValueError(
            "Export takes the single-output inference model; pass "
            f"`to_inference_model(model)`. Received: model with outputs {model.output_names}"
        )
    num_classes = model.outputs[0].shape[-1]
    if (
        not isinstance(class_names, (list, tuple))
        or not all(isinstance(n, str) for n in class_names)
        or len(class_names) != num_classes
    ):
        raise ValueError(
            f"`class_names` must be a list of {num_classes} strings, one per class of the "
            f"model. Received: class_names={class_names!r:.200}"
        )
    image_size, channels = input_geometry(model)
    return os.fspath(path), list(class_names), image_size, channels


def _is_export(path):
    try:
        with open(os.path.join(path, METADATA_FILE)) as f:
            return "format" in json.load(f)
    except (OSError, ValueError, TypeError):
        return False


def _check_target(path, overwrite):
    if not os.path.lexists(path):
        return
    if not overwrite:
        raise FileExistsError(
            f"{path!r} already exists. Pass --overwrite (overwrite=True) to replace the export "
            "there, or choose another --output (nothing was written)."
        )
    if not os.path.isdir(path) or not _is_export(path):
        raise FileExistsError(
            f"--overwrite only replaces an export, and {path!r} is not one (no "
            f"{METADATA_FILE}); choose another --output (nothing was deleted)."
        )


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_export_atomic(path, write, metadata, overwrite=False):
    """Writes an export folder atomically.

    Calls `write(tmp_dir)` on a new temporary folder beside `path`, adds `metadata.json`,
    then renames the folder to `path` (replacing an old export there when `overwrite`).

    Raises:
        FileExistsError: `path` exists and `overwrite` is False, or `path` is not an export.
    """
    _check_target(path, overwrite)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".tmp-export-", dir=parent)
    old = None
    try:
        write(tmp)
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(metadata, f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700
        if os.path.lexists(path):
            old = tempfile.mkdtemp(prefix=".tmp-old-export-", dir=parent)
            os.rename(path, os.path.join(old, "export"))
        os.rename(tmp, path)
    except BaseException:
        if old is not None and not os.path.lexists(path):
            os.rename(os.path.join(old, "export"), path)  # put the old export back
        raise
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return path


def run_name(run_dir):
    """The run folder's name, what `metadata.json` records as `source`: portable, no absolute path."""
    return os.path.basename(os.path.normpath(os.fspath(run_dir)))


def _metadata(fmt, model, class_names, image_size, channels, source, eval_crop=None):
    from keras_ninception import __version__

    return {
        "format": fmt,
        "class_names": class_names,
        "image_size": list(image_size),
        "channels": channels,
        "data_format": keras.config.image_data_format(),
        "input": INPUTS[fmt],
        "outputs": OUTPUTS[fmt],
        "preprocessing": preprocessing_description(eval_crop),
        "eval_crop": eval_crop,
        "model_name": model.name,
        "source": source,
        "versions": {"keras": keras.__version__, "tensorflow": tf.__version__, "keras_ninception": __version__},
    }


def export_keras(model, path, class_names, *, overwrite=False, source=None, eval_crop=None):
    """Exports `model` as a folder with `model.keras` and `metadata.json`.

    The `.keras` file reloads with `keras.saving.load_model` in safe mode, no
    `custom_objects` and no `keras_ninception` (batch normalization is written as Keras' own
    layer, `with_keras_batch_normalization`), except for a `paper`-variant GoogLeNet: its LRN
    layer needs `import keras_ninception` first, which registers it. It takes preprocessed
    `float32` images; the class names are in `metadata.json`.

    Args:
        model: a single-output `keras.Model` (`to_inference_model` of a run's model).
        path: the export folder to create.
        class_names: one string per class, in the model's output order.
        overwrite: replace an export already at `path`.
        source: recorded in `metadata.json` (`export_run`: the run folder's name; the file
            is meant to travel with the model, so no absolute path).
        eval_crop: the run's `eval_crop` (None: the whole image resized), recorded in
            `metadata.json`; the SavedModel applies it inside, `predict` before the others.

    Returns:
        `path`.

    Raises:
        ValueError: a model with several outputs or no fixed input size, or class names
            that do not match its outputs.
        FileExistsError: see `write_export_atomic`.
    """
    path, class_names, image_size, channels = _check_export_arguments(model, path, class_names, overwrite)
    return write_export_atomic(
        path,
        lambda tmp: with_keras_batch_normalization(model).save(os.path.join(tmp, KERAS_FILE)),
        _metadata("keras", model, class_names, image_size, channels, source, eval_crop),
        overwrite,
    )


def _archive(model, serve, input_spec, class_names=None):
    # No `archive.track(model)`: the endpoints' variables are tracked by `add_endpoint`, and
    # tracking the model too stores every weight twice (its `keras.Variable` wrappers and the
    # `tf.Variable`s the traced function captures; keras-team/keras#23553), which made the
    # SavedModel twice the model's size, as `keras.Model.export` does.
    archive = keras.export.ExportArchive()
    archive.add_endpoint("serve", serve, input_signature=[input_spec])
    if class_names is not None:
        archive.add_endpoint(
            "class_names", lambda: {"class_names": tf.constant(class_names)}, input_signature=[]
        )
    return archive


def export_saved_model(model, path, class_names, *, overwrite=False, source=None, eval_crop=None):
    """Exports `model` as a TF SavedModel that takes raw `uint8` images of any size.

    Signatures `serve(images)` and `class_names()` (see the module docstring): the
    preprocessing of training (bilinear resize to the model's size, round to `uint8`,
    `x / 127.5 - 1`) runs inside, so
    `tf.saved_model.load(path).signatures["serve"](images=uint8_batch)["probabilities"]`
    equals the Keras model on the preprocessed batch. Written with
    `keras.export.ExportArchive`; `metadata.json` sits beside `saved_model.pb`.

    TensorFlow backend only.

    Args, Returns: as for `export_keras`.

    Raises:
        ValueError, FileExistsError: as for `export_keras`.
        RuntimeError: Keras runs on another backend than TensorFlow (named).
    """
    check_tensorflow_backend("SavedModel export")
    path, class_names, image_size, channels = _check_export_arguments(model, path, class_names, overwrite)

    num_classes = len(class_names)

    def probabilities_of(images):
        return tf.cast(model(preprocess(images, image_size, eval_crop=eval_crop), training=False), tf.float32)

    def serve(images):
        # An empty batch skips the model (its convolutions and batch normalization refuse
        # zero images) and gives empty outputs of the right shapes.
        probabilities = tf.cond(
            tf.shape(images)[0] > 0,
            lambda: probabilities_of(images),
            lambda: tf.zeros((0, num_classes), tf.float32),
        )
        index = tf.argmax(probabilities, axis=-1)
        return {
            "probabilities": probabilities,
            "class_index": index,
            "class_name": tf.gather(tf.constant(class_names), index),
        }

    spec = tf.TensorSpec((None, None, None, channels), tf.uint8, name="images")
    return write_export_atomic(
        path,
        lambda tmp: _archive(model, serve, spec, class_names).write_out(tmp, verbose=False),
        _metadata("saved_model", model, class_names, image_size, channels, source, eval_crop),
        overwrite,
    )


def export_litert(model, path, class_names, *, overwrite=False, source=None, eval_crop=None):
    """Exports `model` as a LiteRT (TFLite) flatbuffer, `model.tflite`, for CPU and mobile.

    Converted with `tf.lite.TFLiteConverter.from_saved_model` from an `ExportArchive`
    endpoint (the path `keras.Model.export(format="litert")` takes), with builtin operators
    only (no Flex delegate needed). Input `images`: `uint8` `(batch, H, W, C)` at the
    model's size (batch 1 unless resized with `resize_tensor_input`); the scaling
    `x / 127.5 - 1` runs inside; output `probabilities` `float32` `(batch, num_classes)`.
    Images of another size are resized by the caller first. Float32 weights and float32
    compute, no quantization: a model trained under a mixed policy (the `mixed_bfloat16`
    default on AVX512-BF16 CPUs) is converted through `training.precision.to_float32`,
    since LiteRT has no bfloat16 convolution. Class names are in `metadata.json`.

    TensorFlow backend only (`tf.lite`).

    Args, Returns: as for `export_keras`.

    Raises:
        ValueError, FileExistsError: as for `export_keras`.
        RuntimeError: the converter failed (an operator LiteRT has no builtin for), or Keras
            runs on another backend than TensorFlow (named).
    """
    check_tensorflow_backend("LiteRT export")
    path, class_names, image_size, channels = _check_export_arguments(model, path, class_names, overwrite)
    data_format = keras.config.image_data_format()
    model = to_float32(model)

    def serve(images):
        x = scale_images(images, data_format)
        return {"probabilities": tf.cast(model(x, training=False), tf.float32)}

    spec = tf.TensorSpec((None, *image_size, channels), tf.uint8, name="images")

    def write(tmp):
        with tempfile.TemporaryDirectory(prefix=".tmp-saved-model-", dir=tmp) as saved:
            _archive(model, serve, spec).write_out(saved, verbose=False)
            converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=["serve"])
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
            try:
                flatbuffer = converter.convert()
            except Exception as error:  # the converter raises ConverterError and others
                raise RuntimeError(
                    f"LiteRT conversion of {model.name!r} failed: {str(error).splitlines()[0][:300]}"
                ) from None
        with open(os.path.join(tmp, LITERT_FILE), "wb") as f:
            f.write(flatbuffer)

    return write_export_atomic(
        path, write, _metadata("litert", model, class_names, image_size, channels, source, eval_crop), overwrite
    )


EXPORTERS = {"keras": export_keras, "saved_model": export_saved_model, "litert": export_litert}


def default_export_dir(run_dir, format, int8=False):
    """`RUN_DIR/export/<format>`, or `RUN_DIR/export/<format>-int8`."""
    return os.path.join(run_dir, "export", f"{format}-int8" if int8 else format)
