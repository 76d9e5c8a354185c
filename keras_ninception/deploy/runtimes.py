"""Exports for the CPU runtimes people serve with: ONNX (ONNX Runtime) and OpenVINO IR.

Both go through Keras' own exporters (`keras.Model.export(path, format="onnx")`, which
converts with tf2onnx, and `format="openvino"`, which converts with
`openvino.convert_model`), applied to the float32 copy of the inference model
(`training.precision.to_float32`: Keras' ONNX export wants a float32 policy, and a
`mixed_bfloat16` graph does not compile on OpenVINO's CPU plugin, "cpu_convert can't convert
from f32 to dynamic"). The runtime picks its own compute precision: OpenVINO runs bfloat16
on CPUs with AVX512-BF16 or AMX unless told `INFERENCE_PRECISION_HINT=f32`.

Like the LiteRT export, the model takes `uint8` `(batch, H, W, C)` images at the model's
size, input `images`, and scales them inside (`x / 127.5 - 1`, laid out for the model's
data format); the caller resizes first (bilinear, rounded to `uint8`, as `predict` does; for a
run trained with `eval_crop`, recorded in `metadata.json`, to `image_size / eval_crop` and then
the central `image_size`).
The output is `float32` `(batch, num_classes)` probabilities. The batch is dynamic.

Files: `model.onnx`; or `model.xml` + `model.bin`. `metadata.json` as for every export.
"""

import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_ninception.data.pipeline import scale_images
from keras_ninception.deploy.export import (
    _check_export_arguments,
    _metadata,
    write_export_atomic,
)
from keras_ninception.extras import require
from keras_ninception.training.precision import to_float32

ONNX_FILE = "model.onnx"
OPENVINO_FILE = "model.xml"
OPENVINO_WEIGHTS_FILE = "model.bin"
INPUT_NAME = "images"


class UInt8ImageModel(keras.Model):
    """`model` behind the scaling of `uint8` images, so the export takes raw pixels.

    Input `uint8` `(batch, H, W, C)`; output `float32` probabilities of `model`.
    Only for export (never saved as `.keras`).
    """

    def __init__(self, model, data_format, **kwargs):
        super().__init__(name=f"{model.name}_uint8", **kwargs)
        self.model = model
        self.data_format = data_format

    def call(self, images):
        return tf.cast(self.model(scale_images(images, self.data_format), training=False), tf.float32)


def uint8_image_model(model, image_size, channels):
    """A built `UInt8ImageModel` of the float32 copy of `model`, and its input signature."""
    wrapper = UInt8ImageModel(to_float32(model), keras.config.image_data_format())
    wrapper(np.zeros((1, *image_size, channels), np.uint8))  # builds it: export needs a built model
    spec = tf.TensorSpec((None, *image_size, channels), tf.uint8, name=INPUT_NAME)
    return wrapper, spec


INT8_NOTE = "int8 weights and activations (NNCF post-training quantization), see 'quantization'"


def export_onnx(model, path, class_names, *, overwrite=False, source=None, eval_crop=None):
    """Exports `model` as ONNX, `model.onnx`, for ONNX Runtime (the `[onnx]` extra).

    Written by `keras.Model.export(format="onnx")` (tf2onnx, its default opset) from the
    float32 copy of `model` behind the `uint8` scaling (see the module docstring).

    Args, Returns: as for `deploy.export.export_keras`.

    Raises:
        ValueError, FileExistsError: as for `export_keras`.
        MissingExtraError: `onnx` or `tf2onnx` is not installed (nothing was written).
    """
    path, class_names, image_size, channels = _check_export_arguments(model, path, class_names, overwrite)
    for module in ("onnx", "tf2onnx"):
        require(module, "onnx", "ONNX export")

    def write(tmp):
        wrapper, spec = uint8_image_model(model, image_size, channels)
        wrapper.export(os.path.join(tmp, ONNX_FILE), format="onnx", input_signature=[spec], verbose=False)

    return write_export_atomic(
        path, write, _metadata("onnx", model, class_names, image_size, channels, source, eval_crop), overwrite
    )


def export_openvino(
    model, path, class_names, *, overwrite=False, source=None, eval_crop=None, calibration_images=None
):
    """Exports `model` as OpenVINO IR, `model.xml` + `model.bin` (the `[openvino]` extra).

    Written by `keras.Model.export(format="openvino")` from the float32 copy of `model`
    behind the `uint8` scaling (see the module docstring); weights stay float32 in the file
    (`compress_to_fp16=False`), the runtime picks its compute precision.

    Args:
        model, path, class_names, overwrite, source, eval_crop: as for
            `deploy.export.export_keras`.
        calibration_images: None for a float model; else `uint8` `(n, H, W, C)` images
            (the representative set, at the model's size) for `quantize.quantize_openvino`:
            the exported model is then int8 (NNCF post-training quantization).

    Returns:
        `path`.

    Raises:
        ValueError, FileExistsError: as for `export_keras`; calibration images of the
            wrong shape or dtype.
        MissingExtraError: `openvino` (or, with calibration images, `nncf`) is not installed.
    """
    path, class_names, image_size, channels = _check_export_arguments(model, path, class_names, overwrite)
    ov = require("openvino", "openvino", "OpenVINO export")
    metadata = _metadata("openvino", model, class_names, image_size, channels, source, eval_crop)
    if calibration_images is not None:
        from keras_ninception.deploy.quantize import check_calibration_images, quantize_openvino

        check_calibration_images(calibration_images, image_size, channels)
        require("nncf", "openvino", "OpenVINO int8 export")
        metadata["outputs"] += f"; {INT8_NOTE}"

    def write(tmp):
        wrapper, spec = uint8_image_model(model, image_size, channels)
        if calibration_images is None:
            wrapper.export(os.path.join(tmp, OPENVINO_FILE), format="openvino", input_signature=[spec], verbose=False)
            return
        with tempfile.TemporaryDirectory(prefix=".tmp-float-", dir=tmp) as float_dir:
            xml = os.path.join(float_dir, OPENVINO_FILE)
            wrapper.export(xml, format="openvino", input_signature=[spec], verbose=False)
            quantized, metadata["quantization"] = quantize_openvino(ov.Core().read_model(xml), calibration_images)
            ov.save_model(quantized, os.path.join(tmp, OPENVINO_FILE), compress_to_fp16=False)

    return write_export_atomic(path, write, metadata, overwrite)
