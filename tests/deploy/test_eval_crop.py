"""A run's `eval_crop` goes into the export metadata, and the SavedModel and `predict` apply it."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ninception.data import pipeline
from keras_ninception.deploy import export
from keras_ninception.deploy import predict

# 8x8 image, value 10 * row + column in every channel.
IMAGE = np.repeat((10 * np.arange(8)[:, None] + np.arange(8)[None, :]).astype(np.uint8)[..., None], 3, axis=-1)


def tiny_model():
    keras.utils.set_random_seed(1)
    inputs = keras.Input((4, 4, 3))
    outputs = keras.layers.Dense(3, activation="softmax", name="main")(keras.layers.Flatten()(inputs))
    return keras.Model(inputs, outputs)


def test_preprocess_with_eval_crop_is_the_central_crop():
    # 0.5 at 4 px: resized to 8 (unchanged), central rows and columns 2..5, then x / 127.5 - 1.
    cropped = export.preprocess(tf.constant(IMAGE[None]), (4, 4), "channels_last", eval_crop=0.5).numpy()
    np.testing.assert_allclose(cropped[0], IMAGE[2:6, 2:6] / 127.5 - 1.0, atol=1e-6)
    whole = export.preprocess(tf.constant(IMAGE[None]), (4, 4), "channels_last").numpy()
    assert not np.allclose(whole, cropped)
    assert export.preprocessing_description(0.875).startswith("resize (bilinear) to round(image_size / 0.875)")


def test_saved_model_and_predict_apply_the_eval_crop(tmp_path):
    model = tiny_model()
    expected = model(export.preprocess(tf.constant(IMAGE[None]), (4, 4), eval_crop=0.5)).numpy()
    whole = model(export.preprocess(tf.constant(IMAGE[None]), (4, 4))).numpy()
    assert np.abs(expected - whole).max() > 1e-4  # the crop changes the answer
    for fmt in ("saved_model", "keras"):
        path = tmp_path / fmt
        export.EXPORTERS[fmt](model, str(path), ["a", "b", "c"], eval_crop=0.5)
        metadata = json.loads((path / "metadata.json").read_text())
        assert metadata["eval_crop"] == 0.5
        assert "central crop" in metadata["preprocessing"]
        predictor = predict.load_predictor(str(path))
        np.testing.assert_allclose(predictor.probabilities(IMAGE), expected[0], atol=1e-5)
    assert pipeline.central_crop_size((4, 4), 0.5) == (8, 8)


@pytest.mark.parametrize("fmt, modules", [("litert", ()), ("onnx", ("onnx", "tf2onnx", "onnxruntime")), ("openvino", ("openvino",))])
def test_runtime_exports_record_the_eval_crop_and_their_predictors_apply_it(fmt, modules, tmp_path):
    # These take uint8 images at the model's size: the caller (predict) crops, from metadata.json.
    for module in modules:
        pytest.importorskip(module)
    from keras_ninception.deploy.run_export import _runtime_exporter

    model = tiny_model()
    expected = model(export.preprocess(tf.constant(IMAGE[None]), (4, 4), eval_crop=0.5)).numpy()
    path = tmp_path / fmt
    _runtime_exporter(fmt)(model, str(path), ["a", "b", "c"], eval_crop=0.5)
    metadata = json.loads((path / "metadata.json").read_text())
    assert metadata["eval_crop"] == 0.5
    assert "central crop" in metadata["preprocessing"]
    predictor = predict.load_predictor(str(path))
    np.testing.assert_allclose(predictor.probabilities(IMAGE), expected[0], atol=1e-4)
