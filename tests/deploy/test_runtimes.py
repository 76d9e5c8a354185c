"""ONNX and OpenVINO exports, int8 exports, and evaluating an export beside its run.

The export tests skip (with the reason) when the `[onnx]` or `[openvino]` extra is not
installed; the missing-extra errors are tested either way.
"""

import json
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

from keras_ninception import build_nin
from keras_ninception.cli.main import main
from keras_ninception.deploy import export_run
from keras_ninception.deploy.evaluate import evaluate_export
from keras_ninception.extras import MissingExtraError
from keras_ninception.deploy.predict import load_predictor, predict_files
from keras_ninception.deploy.quantize import to_uint8_pixels
from keras_ninception.deploy.runtimes import export_onnx, export_openvino
from keras_ninception.training.evaluate import evaluate_run
from tests.deploy.test_export import random_images, reference

pytestmark = pytest.mark.xdist_group("deploy-runs")  # one pytest-xdist worker: the shared fixtures

# The bound on probabilities, float32 against the Keras model (measured: about 2e-7).
PARITY_ATOL = 1e-4
EXTRA_MODULES = {"onnx": ("onnx", "tf2onnx", "onnxruntime"), "openvino": ("openvino",)}
FILES = {"onnx": ["metadata.json", "model.onnx"], "openvino": ["metadata.json", "model.bin", "model.xml"]}


def needs(extra, *more):
    for module in EXTRA_MODULES[extra] + more:
        pytest.importorskip(module, reason=f"the [{extra}] extra is not installed: pip install 'keras-ninception[{extra}]'")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["onnx", "openvino"])
@pytest.mark.parametrize("run", ["digits_run", "rgb_run"])
def test_float_export_predicts_what_keras_predicts(run, fmt, request, tmp_path):
    needs(fmt)
    run_dir = request.getfixturevalue(run)
    config = json.load(open(os.path.join(run_dir, "config.json")))
    side, channels = config["input_shape"][0], config["input_shape"][-1]
    path = export_run(run_dir, fmt, output=str(tmp_path / fmt))
    assert sorted(os.listdir(path)) == FILES[fmt]
    metadata = json.load(open(os.path.join(path, "metadata.json")))
    assert metadata["format"] == fmt and metadata["class_names"] == config["class_names"]
    assert (metadata["image_size"], metadata["channels"]) == ([side, side], channels)
    assert "scaled inside" in metadata["input"]

    predictor = load_predictor(path)
    assert (predictor.kind, predictor.image_size, predictor.channels) == (fmt, (side, side), channels)
    for images in (random_images(4, side, side, channels, seed=1), random_images(3, 25, 14, channels, seed=2)):
        probabilities = predictor.batch_probabilities(images)
        expected = reference(run_dir, images)
        assert probabilities.shape == expected.shape and probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities, expected, atol=PARITY_ATOL)
    # The runs tell images apart, so a wrong scaling or layout could not pass.
    assert np.ptp(expected, axis=0).max() > 0.05


def test_missing_extras_are_named_and_nothing_is_written(monkeypatch, tmp_path):
    model = build_nin(input_shape=(8, 8, 3), num_classes=3, widths=(4, 4, 4), kernel_sizes=(3, 1, 1))
    # Every package of both extras, so the result does not depend on which of them this machine
    # has: the first one the export imports is named.
    for module in ("onnx", "tf2onnx", "onnxruntime", "openvino", "nncf"):
        monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
    with pytest.raises(MissingExtraError, match=r"'(onnx|tf2onnx)'.*pip install 'keras-ninception\[onnx\]'"):
        export_onnx(model, str(tmp_path / "onnx"), ["a", "b", "c"])
    with pytest.raises(MissingExtraError, match=r"pip install 'keras-ninception\[openvino\]'"):
        export_openvino(model, str(tmp_path / "openvino"), ["a", "b", "c"])
    assert os.listdir(tmp_path) == []
    (tmp_path / "model.onnx").write_bytes(b"onnx")
    with pytest.raises(MissingExtraError, match=r"ONNX model needs .*'onnxruntime'.*\[onnx\]"):
        load_predictor(str(tmp_path / "model.onnx"))
    (tmp_path / "model.xml").write_text("<net/>")
    with pytest.raises(MissingExtraError, match=r"OpenVINO model needs .*\[openvino\]"):
        load_predictor(str(tmp_path / "model.xml"))


def test_int8_arguments_are_checked_before_the_run_is_read(tmp_path):
    with pytest.raises(ValueError, match=r"applies to the formats \['litert', 'openvino'\]. Received: format='onnx'"):
        export_run(str(tmp_path / "no_run"), "onnx", int8=True)
    with pytest.raises(ValueError, match="only for int8 exports. Received: calibration_images=10"):
        export_run(str(tmp_path / "no_run"), "openvino", calibration_images=10)
    with pytest.raises(ValueError, match="Received: calibration_images=0"):
        export_run(str(tmp_path / "no_run"), "litert", int8=True, calibration_images=0)
    assert os.listdir(tmp_path) == []


def test_to_uint8_pixels_inverts_the_scaling():
    pixels = np.arange(256, dtype=np.uint8).reshape(1, 4, 64, 1)
    scaled = tf.cast(pixels, tf.float32) / 127.5 - 1.0
    np.testing.assert_array_equal(to_uint8_pixels(scaled.numpy(), "channels_last"), pixels)
    np.testing.assert_array_equal(
        to_uint8_pixels(np.transpose(scaled.numpy(), (0, 3, 1, 2)), "channels_first"), pixels
    )


def _int8_litert_ops(path):
    from keras_ninception.deploy.predict import _litert_interpreter

    interpreter = _litert_interpreter(os.path.join(path, "model.tflite"))
    details = interpreter._get_ops_details()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    return {op["op_name"]: {tensors[i]["dtype"].__name__ for i in op["inputs"] if i >= 0} for op in details}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["openvino", "litert"])
def test_int8_export_is_calibrated_on_the_run_and_keeps_its_accuracy(fmt, digits_run, tmp_path):
    if fmt == "openvino":
        needs("openvino", "nncf")
    path = export_run(digits_run, fmt, output=str(tmp_path / f"{fmt}-int8"), int8=True, calibration_images=64)
    quantization = json.load(open(os.path.join(path, "metadata.json")))["quantization"]
    assert quantization["calibration_images"] == 64 and "train split" in quantization["calibration_source"]
    if fmt == "litert":  # full integer: every convolution runs on int8 tensors
        assert _int8_litert_ops(path)["CONV_2D"] == {"int8", "int32"}  # int8 input and weights, int32 bias
    # Exported outside the run folder: metadata.json names the run portably (its folder
    # name), so the run is given, as `ninception evaluate EXPORT --run RUN` does.
    result = evaluate_export(path, run_dir=digits_run, latency_repeats=0)
    keras_result = evaluate_run(digits_run, verbose=0, latency_repeats=0)
    assert list(result["heads"]) == ["main"] and result["num_examples"] == keras_result["num_examples"] == 360
    int8, float32 = result["heads"]["main"]["accuracy"], keras_result["heads"]["main"]["accuracy"]
    assert float32 > 0.9 and float32 - int8 <= 0.02  # 360 images: 2 points is 7 images
    # ... and it is an int8 model: its probabilities are not the float ones.
    images = random_images(4, 12, 12, 1, seed=5)
    difference = np.abs(load_predictor(path).batch_probabilities(images) - reference(digits_run, images)).max()
    assert 1e-4 < difference < 0.1


@pytest.mark.slow
def test_evaluate_cli_on_an_export_equals_the_run_and_predict_reads_it(digits_run, tmp_path, capsys):
    needs("onnx")
    path = str(tmp_path / "onnx")
    assert main(["export", digits_run, "--format", "onnx", "--output", path]) == 0
    assert f"Exported onnx to {path}" in capsys.readouterr().err
    assert main(["evaluate", path, "--run", digits_run, "--json", "--latency-repeats", "1", "--output-dir", str(tmp_path / "reports")]) == 0
    result = json.loads(capsys.readouterr().out)
    keras_result = evaluate_run(digits_run, verbose=0, latency_repeats=0)
    assert result["run_dir"] == digits_run and result["export"]["runtime"] == "onnx"
    assert result["heads"]["main"]["accuracy"] == pytest.approx(keras_result["heads"]["main"]["accuracy"], abs=1e-6)
    assert result["files"]["json"] == str(tmp_path / "reports" / "test-export-onnx.json")
    assert main(["export", digits_run, "--format", "onnx", "--int8"]) == 2
    assert "applies to the formats" in capsys.readouterr().err

    images = random_images(2, 20, 20, 1, seed=4)
    files = []
    for index, image in enumerate(images):
        files.append(str(tmp_path / f"{index}.png"))
        tf.io.write_file(files[-1], tf.io.encode_png(image))
    results = predict_files(path, files, top_k=3)
    expected = reference(digits_run, images)
    for result, probabilities in zip(results, expected):
        order = np.argsort(-probabilities)[:3]
        assert [p["class_name"] for p in result["predictions"]] == [str(i) for i in order]
        np.testing.assert_allclose([p["probability"] for p in result["predictions"]], probabilities[order], atol=PARITY_ATOL)
