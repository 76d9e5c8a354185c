"""int8 post-training quantization of exports, calibrated on a run's own training images.

Two routes, both static (activation ranges measured on a representative set):

- OpenVINO: `nncf.quantize` (NNCF's default min-max statistics, `performance` preset:
  symmetric int8 weights per channel and activations) on the IR of `export --format
  openvino`. https://docs.openvino.ai/latest/openvino_docs_model_optimization_guide.html
- LiteRT: full-integer quantization by `tf.lite.TFLiteConverter` with a
  `representative_dataset` (int8 weights and activations, builtin int8 kernels only,
  `TFLITE_BUILTINS_INT8`). https://ai.google.dev/edge/litert/models/post_training_integer_quant
  Input stays `uint8` pixels, output `float32` probabilities (dequantized).

The representative set: the first `count` images of the run's train split as the run
reads it for evaluation (`load_run_splits`: its image size, channels, shuffle seed; no
augmentation), back as the `uint8` pixels the export takes.
"""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_ninception.checks import check_int
from keras_ninception.data.pipeline import scale_images

DEFAULT_CALIBRATION_IMAGES = 300  # NNCF's default subset_size


def check_calibration_images(images, image_size, channels):
    """Raises ValueError unless `images` is `uint8` `(n >= 1, H, W, C)` at the model's size."""
    expected = (*image_size, channels)
    if (
        not isinstance(images, np.ndarray)
        or images.dtype != np.uint8
        or images.ndim != 4
        or len(images) == 0
        or tuple(images.shape[1:]) != expected
    ):
        description = f"{images.dtype} {images.shape}" if isinstance(images, np.ndarray) else type(images).__name__
        raise ValueError(
            f"`calibration_images` must be a uint8 array (n >= 1, {', '.join(map(str, expected))}), "
            f"images at the model's size. Received: calibration_images of {description}"
        )


def to_uint8_pixels(images, data_format=None):
    """Inverts `scale_images`: `float32` images in [-1, 1] back to `uint8` `(batch, h, w, c)` pixels.

    Exact for the pipeline's output (it scales `uint8` values, so `(x + 1) * 127.5` is an
    integer up to float rounding).
    """
    data_format = data_format or keras.config.image_data_format()
    images = np.asarray(images, np.float32)
    if data_format == "channels_first":
        images = images.transpose(0, 2, 3, 1)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def representative_images(model, config, count=DEFAULT_CALIBRATION_IMAGES):
    """The first `count` images of a run's train split, as `uint8` `(count, H, W, C)` pixels.

    Args:
        model: the run's model (to check the dataset against it).
        config: the run's `config.json` as a dict.
        count: int >= 1; fewer when the split is smaller.

    Raises:
        ValueError: a bad `count`, or a dataset that does not fit the run.
    """
    from keras_ninception.training.evaluate import load_run_splits

    check_int("count", count)
    splits = load_run_splits(model, config)
    chunks, total = [], 0
    for images, _ in splits.train:
        chunks.append(to_uint8_pixels(images.numpy()))
        total += len(chunks[-1])
        if total >= count:
            break
    return np.concatenate(chunks)[:count]


def quantize_openvino(ov_model, images):
    """int8 `ov.Model` of a float one with `nncf.quantize`, calibrated on `images`.

    Args:
        ov_model: an `openvino.Model` that takes `uint8` `(batch, H, W, C)` images.
        images: `uint8` `(n, H, W, C)`, the representative set (one image per NNCF sample).

    Returns:
        `(quantized ov.Model, record)`; `record` describes the quantization for metadata.
    """
    import nncf

    dataset = nncf.Dataset([image[None] for image in images])
    quantized = nncf.quantize(ov_model, dataset, subset_size=len(images), preset=nncf.QuantizationPreset.PERFORMANCE)
    record = {
        "method": "nncf.quantize (post-training, min-max statistics, performance preset: symmetric int8)",
        "nncf": nncf.__version__,
        "calibration_images": int(len(images)),
        "calibration_source": "the run's train split (first images, as evaluated: no augmentation)",
    }
    return quantized, record


def litert_int8_flatbuffer(model, image_size, channels, images):
    """A full-integer LiteRT flatbuffer of float32 `model` behind the `uint8` scaling.

    Input `images` `uint8` `(batch, H, W, C)` (batch resizable, 1 by default); output
    `probabilities` `float32`; every operator an int8 builtin.

    Raises:
        RuntimeError: the converter failed.
    """
    from keras_ninception.deploy.export import _archive

    data_format = keras.config.image_data_format()

    def serve(pixels):
        return {"probabilities": tf.cast(model(scale_images(pixels, data_format), training=False), tf.float32)}

    spec = tf.TensorSpec((None, *image_size, channels), tf.uint8, name="images")

    def representative_dataset():
        for image in images:
            yield {"images": image[None]}

    with tempfile.TemporaryDirectory(prefix=".tmp-saved-model-") as saved:
        _archive(model, serve, spec).write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=["serve"])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative_dataset
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        try:
            return converter.convert()
        except Exception as error:  # the converter raises ConverterError and others
            raise RuntimeError(
                f"LiteRT int8 conversion of {model.name!r} failed: {str(error).splitlines()[0][:300]}"
            ) from None


def export_litert_int8(model, path, class_names, calibration_images, *, overwrite=False, source=None, eval_crop=None):
    """Exports `model` as a full-integer LiteRT file, `model.tflite`, calibrated on `calibration_images`.

    The contract of `deploy.export.export_litert` (signature `serve(images)`, `uint8`
    `(batch, H, W, C)` in, `float32` probabilities out), with int8 weights and activations:
    every convolution, pooling, dense and softmax runs an int8 builtin kernel; the input
    cast and scaling (`x / 127.5 - 1`) run in float32 before the first `QUANTIZE`, and the
    probabilities are dequantized at the end.

    Args:
        model, path, class_names, overwrite, source, eval_crop: as for `export_litert`.
        calibration_images: `uint8` `(n, H, W, C)`, the representative set
            (`representative_images`).

    Returns:
        `path`.

    Raises:
        ValueError: as for `export_litert`, or bad calibration images.
        FileExistsError: see `write_export_atomic`.
        RuntimeError: the converter failed.
    """
    from keras_ninception.deploy.export import LITERT_FILE, _check_export_arguments, _metadata, write_export_atomic
    from keras_ninception.training.precision import to_float32

    path, class_names, image_size, channels = _check_export_arguments(model, path, class_names, overwrite)
    check_calibration_images(calibration_images, image_size, channels)
    metadata = _metadata("litert", model, class_names, image_size, channels, source, eval_crop)
    metadata["outputs"] += "; int8 weights and activations (full-integer post-training quantization), see 'quantization'"
    metadata["quantization"] = {
        "method": "tf.lite.TFLiteConverter full-integer post-training quantization "
        "(representative_dataset, TFLITE_BUILTINS_INT8)",
        "tensorflow": tf.__version__,
        "calibration_images": int(len(calibration_images)),
        "calibration_source": "the run's train split (first images, as evaluated: no augmentation)",
    }
    float_model = to_float32(model)

    def write(tmp):
        flatbuffer = litert_int8_flatbuffer(float_model, image_size, channels, calibration_images)
        with open(os.path.join(tmp, LITERT_FILE), "wb") as f:
            f.write(flatbuffer)

    return write_export_atomic(path, write, metadata, overwrite)
