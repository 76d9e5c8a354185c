"""`export_run`: a run's inference model exported in any format, into its export folder.

The dispatcher over every exporter: Keras, SavedModel and LiteRT (`deploy.export`, which
also holds the export folder's contract), ONNX and OpenVINO (`deploy.runtimes`) and int8
(`deploy.quantize`). It lives apart from `deploy.export` so that the runtime and int8
exporters can use that contract without importing their own dispatcher back.
"""

import os

from keras_ninception.checks import check_bool, check_choice, check_int
from keras_ninception.deploy.export import (
    EXPORTERS,
    FORMATS,
    _check_target,
    default_export_dir,
    inference_model,
    run_name,
)
from keras_ninception.options import INT8_FORMATS

def _runtime_exporter(format):
    """The exporter of a format, the ONNX and OpenVINO ones imported only when asked for."""
    if format in ("onnx", "openvino"):
        from keras_ninception.deploy import runtimes

        return {"onnx": runtimes.export_onnx, "openvino": runtimes.export_openvino}[format]
    return EXPORTERS[format]


def _export_int8(
    format, model, run_model, config, output, class_names, overwrite, source, calibration_images, eval_crop=None
):
    """The int8 export of `format` (`INT8_FORMATS`), calibrated on the run's train split."""
    from keras_ninception.deploy.quantize import export_litert_int8, representative_images

    if format == "openvino":  # the missing extra is reported before the images are read
        from keras_ninception.extras import require

        require("openvino", "openvino", "OpenVINO export")
        require("nncf", "openvino", "OpenVINO int8 export")
    images = representative_images(run_model, config, calibration_images)
    if format == "litert":
        return export_litert_int8(
            model, output, class_names, images, overwrite=overwrite, source=source, eval_crop=eval_crop
        )
    return _runtime_exporter(format)(
        model, output, class_names, overwrite=overwrite, source=source, eval_crop=eval_crop,
        calibration_images=images,
    )


def export_run(run_dir, format, output=None, *, overwrite=False, int8=False, calibration_images=None):
    """Exports the inference model (aux heads dropped) of a completed run.

    Loads `RUN_DIR/model.keras` with `load_run` (safe mode), takes
    `to_inference_model` of it, and writes the export folder with the class names of
    `config.json`.

    Args:
        run_dir: a run folder written by `train` or `tune`.
        format: `"keras"`, `"saved_model"`, `"litert"`, `"onnx"` or `"openvino"` (see
            the module docstring and `deploy.runtimes`; the last two need the `[onnx]` or
            `[openvino]` extra).
        output: the export folder; default `RUN_DIR/export/<format>` (`<format>-int8`
            with `int8`).
        overwrite: replace an export already at `output`.
        int8: post-training int8 quantization (`deploy.quantize`), for `"openvino"` (NNCF)
            and `"litert"` (full integer), calibrated on the run's own train split.
        calibration_images: int >= 1, images of the representative set; default 300
            (`quantize.DEFAULT_CALIBRATION_IMAGES`). Only with `int8`.

    Returns:
        The export folder.

    Raises:
        ValueError: an unknown format, `int8` for a format without it, a bad
            `calibration_images`, or a run folder whose files cannot be read.
        FileNotFoundError: `run_dir` is not a completed run.
        FileExistsError: `output` exists and `overwrite` is False, or is not an export.
        RuntimeError: the LiteRT conversion failed.
        MissingExtraError: the format's extra is not installed (nothing was written).
    """
    from keras_ninception.training.evaluate import load_run

    check_choice("format", format, FORMATS)
    check_bool("int8", int8)
    if int8:
        if format not in INT8_FORMATS:
            raise ValueError(f"`int8` applies to the formats {list(INT8_FORMATS)}. Received: format={format!r}, int8=True")
        from keras_ninception.deploy.quantize import DEFAULT_CALIBRATION_IMAGES

        calibration_images = DEFAULT_CALIBRATION_IMAGES if calibration_images is None else calibration_images
        check_int("calibration_images", calibration_images)
    elif calibration_images is not None:
        raise ValueError(f"`calibration_images` is only for int8 exports. Received: calibration_images={calibration_images!r}")
    output = default_export_dir(run_dir, format, int8) if output is None else output
    _check_target(os.fspath(output), overwrite)  # before loading the model
    model, config = load_run(run_dir)
    class_names = config.get("class_names")
    if not isinstance(class_names, list):
        raise ValueError(f"{os.path.join(run_dir, 'config.json')!r} has no list of 'class_names'.")
    source = run_name(run_dir)
    eval_crop = config["train_config"].get("eval_crop")
    if int8:
        return _export_int8(
            format, inference_model(model), model, config, output, class_names, overwrite, source, calibration_images,
            eval_crop,
        )
    return _runtime_exporter(format)(
        inference_model(model), output, class_names, overwrite=overwrite, source=source, eval_crop=eval_crop
    )
