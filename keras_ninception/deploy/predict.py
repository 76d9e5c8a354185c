"""Predict the classes of image files with a run folder or an export.

`load_predictor(path)` takes any of:

- a run folder (`config.json` + `model.keras`): its inference model (aux heads dropped);
- a `.keras` file, or a `keras` export folder (`model.keras` + `metadata.json`);
- a SavedModel folder (`saved_model.pb`; the `saved_model` export);
- a `.tflite` file, or a `litert` export folder (`model.tflite` + `metadata.json`);
- a `.onnx` file, or an `onnx` export folder: run by ONNX Runtime (the `[onnx]` extra);
- an OpenVINO `.xml` file, or an `openvino` export folder: run by OpenVINO on the CPU (the
  `[openvino]` extra), in float32 unless `precision` says otherwise.

- `"imagenet"`: `build_googlenet(weights="imagenet")`, TF-slim's ImageNet weights (from the
  Keras cache, see `keras_ninception.models.pretrained`), 224 px.

Class names come from the run's `config.json`, the export's `metadata.json`, or the
SavedModel's `class_names` signature; a bare `.keras` or `.tflite` file with neither beside
it gets the ImageNet class names when it has 1000 outputs (1001: TF-slim's "background"
first), else the class indices `"0"`, `"1"`, ... as names.

Images: JPEG or PNG files of any size, decoded with
`tf.io.decode_image(channels=C, expand_animations=False)` for the model's channel count `C`,
by the training pipeline's own decoder (`keras_ninception.data.files.decode_image`): gray
files become RGB (the channel repeated) for an RGB model, RGB files become gray for a gray
model (the decoder's luminance; a CMYK JPEG through RGB and `tf.image.rgb_to_grayscale`),
and an alpha channel is dropped. Then the training preprocessing (bilinear
resize to the model's size, round to `uint8`, `x / 127.5 - 1`) runs, in Python for Keras
models and inside the SavedModel, and the LiteRT, ONNX and OpenVINO models (whose caller,
here, resizes). A run trained with `--eval-crop F` (`eval_crop` in `config.json` or the
export's `metadata.json`) is resized to `image_size / F` and centrally cropped to
`image_size`, as its validation was.

Every file is read and decoded before anything is predicted: a missing, empty, damaged or
non-image file, or a directory, gives one error that names every bad file. A file is
damaged when the decoder cannot decode it.
"""

import glob
import json
import os
import warnings

import keras
import numpy as np
import tensorflow as tf

from keras_ninception.checks import check_choice, check_int
from keras_ninception.data.pipeline import resize_for_evaluation
from keras_ninception.data.files import IMAGE_FILE_EXTENSIONS, read_image_file
from keras_ninception.models import build_googlenet
from keras_ninception.models.imagenet import imagenet_class_names
from keras_ninception.deploy.export import (
    KERAS_FILE,
    LITERT_FILE,
    METADATA_FILE,
    SAVED_MODEL_FILE,
    inference_model,
    input_geometry,
    preprocess,
)
from keras_ninception.deploy.runtimes import ONNX_FILE, OPENVINO_FILE

DEFAULT_TOP_K = 5
# Bad files named in one error message; the rest are counted.
BAD_FILES_NAMED = 10


def _read_json_if_exists(path):
    if not os.path.isfile(path):
        return None
    from keras_ninception.training.run_folder import read_json

    return read_json(path)


def _class_names_beside(model_file, num_classes):
    """Class names from `metadata.json` or a run's `config.json` in the file's folder."""
    folder = os.path.dirname(os.path.abspath(model_file))
    for name in (METADATA_FILE, "config.json"):
        data = _read_json_if_exists(os.path.join(folder, name))
        if isinstance(data, dict) and isinstance(data.get("class_names"), list):
            names = [str(n) for n in data["class_names"]]
            if len(names) != num_classes:
                raise ValueError(
                    f"{os.path.join(folder, name)!r} lists {len(names)} class names but the "
                    f"model {model_file!r} has {num_classes} classes."
                )
            return names
    return default_class_names(num_classes)


def default_class_names(num_classes):
    """The ImageNet class names for 1000 outputs (1001: "background" first), else `"0"`, `"1"`, ..."""
    if num_classes == 1000:
        return list(imagenet_class_names())
    if num_classes == 1001:
        return ["background", *imagenet_class_names()]
    return [str(i) for i in range(num_classes)]


def _eval_crop_beside(model_file):
    """The `eval_crop` of `metadata.json` or a run's `config.json` in the file's folder."""
    folder = os.path.dirname(os.path.abspath(model_file))
    metadata = _read_json_if_exists(os.path.join(folder, METADATA_FILE))
    if isinstance(metadata, dict):
        return metadata.get("eval_crop")
    config = _read_json_if_exists(os.path.join(folder, "config.json"))
    if isinstance(config, dict) and isinstance(config.get("train_config"), dict):
        return config["train_config"].get("eval_crop")
    return None


def _load_keras(path):
    try:
        return keras.saving.load_model(path)
    except Exception as error:  # zipfile, h5py and Keras raise many types for a bad file
        raise ValueError(
            f"{path!r} is not a readable .keras model file ({str(error).splitlines()[0][:200]})."
        ) from None


def _litert_interpreter(path):
    """A LiteRT interpreter: `ai_edge_litert`'s when installed, else `tf.lite.Interpreter`."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # tf.lite: "deprecated, use ai_edge_litert"
        try:
            return Interpreter(model_path=path)
        except ValueError as error:
            raise ValueError(f"{path!r} is not a readable LiteRT model ({error}).") from None


class Predictor:
    """Class probabilities of `uint8` images with one loaded model.

    Attributes:
        kind: `"run"`, `"keras"`, `"saved_model"`, `"litert"`, `"onnx"` or `"openvino"`.
        path: what was loaded.
        class_names: list of str, one per class.
        channels: 1 or 3, the model's input channels.
        image_size: `(height, width)` of the model, or None for a SavedModel without
            `metadata.json` (it resizes inside, so the size is not needed).
    """

    def __init__(self, kind, path, class_names, channels, image_size, probabilities):
        self.kind = kind
        self.path = path
        self.class_names = list(class_names)
        self.channels = channels
        self.image_size = image_size
        self._probabilities = probabilities

    def probabilities(self, image):
        """`float32` `(num_classes,)` class probabilities of one `uint8` `(h, w, C)` image."""
        return np.asarray(self._probabilities(tf.convert_to_tensor(image, tf.uint8)[None]))[0]

    def batch_probabilities(self, images):
        """`float32` `(batch, num_classes)` of a `uint8` `(batch, h, w, C)` batch (one size)."""
        return np.asarray(self._probabilities(tf.convert_to_tensor(images, tf.uint8)))


def _keras_predictor(kind, path, model, class_names, eval_crop=None):
    image_size, channels = input_geometry(model)

    def probabilities(images):
        return model(preprocess(images, image_size, eval_crop=eval_crop), training=False).numpy()

    return Predictor(kind, path, class_names, channels, image_size, probabilities)


def _saved_model_predictor(path):
    try:
        loaded = tf.saved_model.load(path)
        serve = loaded.signatures["serve"]
        names = loaded.signatures["class_names"]()["class_names"].numpy()
    except (KeyError, OSError, ValueError, tf.errors.OpError) as error:
        raise ValueError(
            f"{path!r} is not a SavedModel exported by `ninception export --format "
            f"saved_model` (signatures 'serve' and 'class_names'): {str(error).splitlines()[0][:200]}"
        ) from None
    spec = serve.structured_input_signature[1]["images"]
    metadata = _read_json_if_exists(os.path.join(path, METADATA_FILE)) or {}
    image_size = tuple(metadata["image_size"]) if "image_size" in metadata else None

    def probabilities(images):
        return serve(images=images)["probabilities"].numpy()

    return Predictor(
        "saved_model", path, [n.decode() for n in names], int(spec.shape[-1]), image_size, probabilities
    )


def _litert_predictor(path):
    interpreter = _litert_interpreter(path)
    try:
        runner = interpreter.get_signature_runner("serve")
    except ValueError:
        raise ValueError(
            f"{path!r} has no 'serve' signature; export it with `ninception export --format litert`."
        ) from None
    detail = runner.get_input_details()["images"]
    _, height, width, channels = (int(d) for d in detail["shape"])
    num_classes = int(runner.get_output_details()["probabilities"]["shape"][-1])
    image_size = (height, width)
    eval_crop = _eval_crop_beside(path)

    def probabilities(images):
        return runner(images=resize_for_evaluation(images, image_size, eval_crop).numpy())["probabilities"]

    return Predictor(
        "litert", path, _class_names_beside(path, num_classes), channels, image_size, probabilities
    )


def _onnx_predictor(path):
    """ONNX Runtime (CPU) on a `.onnx` file of `export --format onnx` (the `[onnx]` extra)."""
    from keras_ninception.extras import require

    onnxruntime = require("onnxruntime", "onnx", "Predicting with an ONNX model")
    try:
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types for bad files
        raise ValueError(f"{path!r} is not a readable ONNX model ({str(error).splitlines()[0][:200]}).") from None
    (model_input,) = session.get_inputs()
    _, height, width, channels = model_input.shape
    image_size = (int(height), int(width))
    num_classes = int(session.get_outputs()[0].shape[-1])
    eval_crop = _eval_crop_beside(path)

    def probabilities(images):
        pixels = resize_for_evaluation(images, image_size, eval_crop).numpy()
        return session.run(None, {model_input.name: pixels})[0]

    return Predictor("onnx", path, _class_names_beside(path, num_classes), int(channels), image_size, probabilities)


# OpenVINO's CPU compute precision for predict: float32, so the top-k matches the Keras model
# (OpenVINO's own default is bfloat16 on CPUs with AVX512-BF16 or AMX).
OPENVINO_PRECISIONS = {"float32": "f32", "bfloat16": "bf16", "auto": None}


def _openvino_predictor(path, precision="float32"):
    """OpenVINO (CPU) on a `.xml` file of `export --format openvino` (the `[openvino]` extra)."""
    from keras_ninception.extras import require

    ov = require("openvino", "openvino", "Predicting with an OpenVINO model")
    check_choice("precision", precision, tuple(OPENVINO_PRECISIONS))  # the options' OPENVINO_PRECISIONS
    config = {} if OPENVINO_PRECISIONS[precision] is None else {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[precision]}
    core = ov.Core()
    try:
        compiled = core.compile_model(core.read_model(path), "CPU", config)
    except RuntimeError as error:
        raise ValueError(f"{path!r} is not a readable OpenVINO model ({str(error).splitlines()[0][:200]}).") from None
    shape = compiled.inputs[0].get_partial_shape()
    height, width, channels = (shape[axis].get_length() for axis in (1, 2, 3))
    image_size = (int(height), int(width))
    num_classes = int(compiled.outputs[0].get_partial_shape()[-1].get_length())
    request = compiled.create_infer_request()
    eval_crop = _eval_crop_beside(path)

    def probabilities(images):
        return request.infer({0: resize_for_evaluation(images, image_size, eval_crop).numpy()})[0].copy()

    return Predictor("openvino", path, _class_names_beside(path, num_classes), int(channels), image_size, probabilities)


def load_predictor(path, precision="float32"):
    """Loads a run folder or an export for prediction (see the module docstring).

    `.keras` files load with Keras' safe mode, without `custom_objects`.

    Args:
        path: a run folder, a `.keras`, `.tflite`, `.onnx` or OpenVINO `.xml` file, an
            export folder, or `"imagenet"`.
        precision: OpenVINO's CPU compute precision, `"float32"` (default: the Keras
            model's probabilities), `"bfloat16"`, or `"auto"` (OpenVINO's default:
            bfloat16 on CPUs with AVX512-BF16 or AMX). Other runtimes compute in float32
            (int8 models in int8).

    Returns:
        A `Predictor`.

    Raises:
        FileNotFoundError: `path` does not exist (for `"imagenet"`: the weights are not in
            the Keras cache and cannot be downloaded).
        ValueError: `path` is none of the above, or its files cannot be read.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ValueError(f"`path` must be a non-empty string or path. Received: path={path!r}")
    path = os.fspath(path)
    if path == "imagenet" and not os.path.exists(path):
        model = build_googlenet(weights="imagenet")
        return _keras_predictor("imagenet", path, model, imagenet_class_names())
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path!r} does not exist (expected a run folder or an export).")
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "config.json")) and os.path.isfile(os.path.join(path, "model.keras")):
            from keras_ninception.training.evaluate import load_run

            model, config = load_run(path)
            model = inference_model(model)
            names = config.get("class_names") or default_class_names(model.outputs[0].shape[-1])
            return _keras_predictor("run", path, model, names, config["train_config"].get("eval_crop"))
        if os.path.isfile(os.path.join(path, SAVED_MODEL_FILE)):
            return _saved_model_predictor(path)
        for name in (KERAS_FILE, LITERT_FILE, ONNX_FILE, OPENVINO_FILE):
            if os.path.isfile(os.path.join(path, name)):
                return load_predictor(os.path.join(path, name), precision)
        raise ValueError(
            f"{path!r} is neither a run folder (config.json + model.keras) nor an export "
            f"({KERAS_FILE}, {SAVED_MODEL_FILE}, {LITERT_FILE}, {ONNX_FILE} or {OPENVINO_FILE})."
        )
    if path.endswith(".keras"):
        model = inference_model(_load_keras(path))
        return _keras_predictor(
            "keras", path, model, _class_names_beside(path, model.outputs[0].shape[-1]), _eval_crop_beside(path)
        )
    if path.endswith(".tflite"):
        return _litert_predictor(path)
    if path.endswith(".onnx"):
        return _onnx_predictor(path)
    if path.endswith(".xml"):
        return _openvino_predictor(path, precision)
    raise ValueError(
        f"{path!r} is not a model: expected a run folder, a .keras, .tflite, .onnx or OpenVINO "
        ".xml file, or an export folder."
    )


def read_image(path, channels):
    """Reads one image file as a `uint8` `(h, w, channels)` array, as training decodes it.

    `keras_ninception.data.files.read_image_file`: the pipeline's decoder, so a file is
    accepted exactly when TF's decoder decodes it (a JPEG with bytes after its end marker
    is; a CMYK JPEG gives gray through RGB).

    Raises:
        ValueError: the file is missing, empty, a directory, not an image, or cannot be
            decoded (damaged or truncated); the message names the file and why.
    """
    return read_image_file(path, channels)


def read_images(paths, channels):
    """Reads every file with `read_image`, and fails once, naming every bad file.

    Returns:
        A list of `uint8` `(h, w, channels)` arrays, in the order of `paths`.

    Raises:
        ValueError: no paths, or one or more bad files (all named, up to 10).
    """
    if not paths:
        raise ValueError("No image files given.")
    images, bad = [], []
    for path in paths:
        try:
            images.append(read_image(os.fspath(path), channels))
        except ValueError as error:
            bad.append(str(error))
    if bad:
        more = len(bad) - BAD_FILES_NAMED
        raise ValueError(
            f"Cannot read {len(bad)} of {len(paths)} image files (nothing was predicted): "
            + ", ".join(bad[:BAD_FILES_NAMED])
            + (f", and {more} more" if more > 0 else "")
        )
    return images


def expand_image_paths(paths):
    """The image files that `paths` name, in order: files as given, folders and glob patterns expanded.

    A folder gives its visible `.jpg`, `.jpeg` and `.png` files (any case; not its
    subfolders), sorted by name; a path that does not exist but has glob characters
    (`*`, `?`, `[`) gives its matches (`glob.glob`, hidden files left out), sorted. A shell
    has usually expanded `photos/*.jpg` already; quoted, it is expanded here.

    Raises:
        ValueError: a folder with no image file, or a pattern that matches nothing (named).
    """
    files = []
    for path in map(os.fspath, paths):
        if os.path.isdir(path):
            found = sorted(
                entry.path
                for entry in os.scandir(path)
                if entry.is_file() and not entry.name.startswith(".")
                and entry.name.lower().endswith(IMAGE_FILE_EXTENSIONS)
            )
            if not found:
                raise ValueError(
                    f"The folder {path!r} holds no image file ({', '.join(IMAGE_FILE_EXTENSIONS)}; "
                    "subfolders are not read)."
                )
            files.extend(found)
        elif not os.path.exists(path) and any(c in path for c in "*?["):
            found = sorted(glob.glob(path))
            if not found:
                raise ValueError(f"No file matches the pattern {path!r}.")
            files.extend(found)
        else:
            files.append(path)
    return files


def rank_classes(probabilities, class_names, k):
    """The `k` most probable classes, most probable first: `[(name, probability), ...]`."""
    order = np.argsort(-np.asarray(probabilities), kind="stable")[:k]
    return [(class_names[i], float(probabilities[i])) for i in order]


def predict_files(model_path, image_paths, top_k=None, precision="float32"):
    """Top-k classes of each image file.

    Args:
        model_path: a run folder or an export (see `load_predictor`).
        image_paths: JPEG or PNG files (any size, gray or RGB), folders of them and glob
            patterns (`expand_image_paths`).
        top_k: classes per image, in [1, num_classes]; default
            `min(5, num_classes)`.
        precision: OpenVINO's compute precision (see `load_predictor`).

    Returns:
        `[{"file": path, "predictions": [{"class_name": str, "probability": float}, ...]}]`,
        one entry per file in order, predictions most probable first.

    Raises:
        ValueError: a bad `top_k`, a model path that is not a model, bad image files (all
            named; nothing is predicted), an empty folder or a pattern matching nothing.
        FileNotFoundError: `model_path` does not exist.
    """
    predictor = load_predictor(model_path, precision)
    num_classes = len(predictor.class_names)
    if top_k is None:
        top_k = min(DEFAULT_TOP_K, num_classes)
    check_int("top_k", top_k, minimum=1, maximum=num_classes)
    paths = expand_image_paths(image_paths)
    images = read_images(paths, predictor.channels)
    results = []
    for path, image in zip(paths, images):
        ranked = rank_classes(predictor.probabilities(image), predictor.class_names, top_k)
        results.append(
            {"file": path, "predictions": [{"class_name": n, "probability": p} for n, p in ranked]}
        )
    return results


def format_predictions(results):
    """Text for the CLI: the file, then one line per class, `  1. name  0.9821`."""
    lines = []
    for result in results:
        lines.append(result["file"])
        width = max(len(p["class_name"]) for p in result["predictions"])
        for rank, p in enumerate(result["predictions"], 1):
            lines.append(f"  {rank}. {p['class_name']:<{width}}  {p['probability']:.4f}")
    return "\n".join(lines)


def format_json(results):
    return json.dumps(results, indent=2)
