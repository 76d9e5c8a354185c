"""Exports reload in their own runtimes and predict what the Keras inference model predicts."""

import json
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ninception import build_googlenet, build_nin
from keras_ninception.deploy import export_keras, export_run
from keras_ninception.deploy.export import default_export_dir, inference_model, preprocess, write_export_atomic
from keras_ninception.training.evaluate import load_run
from keras_ninception.cli.main import main
from tests.deploy.conftest import run_python

pytestmark = pytest.mark.xdist_group("deploy-runs")  # one worker under pytest-xdist: the shared runs of conftest.py

# One float32 model on two runtimes: the same TF kernels (SavedModel), or LiteRT's own
# (XNNPACK); measured differences are about 3e-8 and 1e-7.
SAVED_MODEL_ATOL = 1e-6
LITERT_ATOL = 1e-5


def random_images(batch, height, width, channels, seed=0):
    images = np.random.default_rng(seed).integers(0, 256, (batch, height, width, channels)).astype(np.uint8)
    images[0] = 0  # a black image too: a different class for both runs
    return images


def reference(run_dir, images):
    """The Keras inference model's probabilities on the training preprocessing of `images`."""
    model, _ = load_run(run_dir)
    model = inference_model(model)
    return model(preprocess(tf.constant(images), model.input_shape[1:3]), training=False).numpy()


@pytest.fixture(scope="session")
def digits_exports(digits_run):
    return {fmt: export_run(digits_run, fmt) for fmt in ("keras", "saved_model", "litert")}


def test_export_arguments_are_checked_before_anything_is_written(tmp_path):
    model = build_nin(input_shape=(8, 8, 1), num_classes=3, config="cifar10")
    with pytest.raises(ValueError, match="Received: format='tflite'"):
        export_run(str(tmp_path / "no_run"), "tflite")
    with pytest.raises(FileNotFoundError, match="not a completed run"):
        export_run(str(tmp_path / "no_run"), "keras")
    with pytest.raises(ValueError, match="list of 3 strings"):
        export_keras(model, str(tmp_path / "a"), ["0", "1"])
    with pytest.raises(ValueError, match="Received: class_names=None"):
        export_keras(model, str(tmp_path / "a"), None)
    googlenet = build_googlenet(input_shape=(20, 20, 3), num_classes=3, variant="cifar")
    with pytest.raises(ValueError, match="to_inference_model"):
        export_keras(googlenet, str(tmp_path / "b"), ["a", "b", "c"])
    assert os.listdir(tmp_path) == []


def test_preprocess_is_the_training_pipeline():
    from keras_ninception.data.pipeline import build_pipeline

    for shape in ((4, 31, 17, 3), (2, 12, 12, 1), (3, 5, 9, 1)):
        images = np.random.default_rng(0).integers(0, 256, shape).astype(np.uint8)
        dataset = tf.data.Dataset.from_tensor_slices((images, np.zeros(len(images), np.int32)))
        pipeline = build_pipeline(
            dataset, split="test", num_examples=len(images), image_size=(12, 12), batch_size=len(images),
            training=False, augmenter=None, output_names=None, data_format="channels_last", cache=False, seed=0,
        )
        trained_on = next(iter(pipeline))[0].numpy()
        np.testing.assert_array_equal(preprocess(tf.constant(images), (12, 12), "channels_last"), trained_on)


def test_existing_output_is_replaced_only_with_overwrite_and_only_if_an_export(tmp_path):
    model = build_nin(input_shape=(8, 8, 1), num_classes=3, config="cifar10")
    path = str(tmp_path / "export")
    export_keras(model, path, ["a", "b", "c"])
    before = open(os.path.join(path, "model.keras"), "rb").read()
    with pytest.raises(FileExistsError, match="--overwrite"):
        export_keras(model, path, ["x", "y", "z"])
    assert json.load(open(os.path.join(path, "metadata.json")))["class_names"] == ["a", "b", "c"]

    # A failure while writing keeps the old export whole, and leaves no temporary folder.
    def fail(tmp):
        open(os.path.join(tmp, "model.keras"), "w").write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_export_atomic(path, fail, {"format": "keras"}, overwrite=True)
    assert open(os.path.join(path, "model.keras"), "rb").read() == before
    assert os.listdir(tmp_path) == ["export"]

    export_keras(model, path, ["x", "y", "z"], overwrite=True)
    assert json.load(open(os.path.join(path, "metadata.json")))["class_names"] == ["x", "y", "z"]
    assert os.listdir(tmp_path) == ["export"]

    other = tmp_path / "thesis"
    other.mkdir()
    (other / "chapter1.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not one"):
        export_keras(model, str(other), ["a", "b", "c"], overwrite=True)
    assert os.listdir(other) == ["chapter1.txt"]


def test_keras_export_of_a_googlenet_run_drops_the_aux_heads(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    model = build_googlenet(input_shape=(20, 20, 3), num_classes=3, variant="cifar")
    model.save(run_dir / "model.keras")
    (run_dir / "config.json").write_text(json.dumps({"train_config": {}, "class_names": ["a", "b", "c"]}))
    path = export_run(str(run_dir), "keras")
    assert path == default_export_dir(str(run_dir), "keras") == str(run_dir / "export" / "keras")
    exported = keras.saving.load_model(os.path.join(path, "model.keras"))
    assert exported.output_names == ["main"]
    assert not [layer.name for layer in exported.layers if layer.name.startswith("aux")]
    x = np.random.default_rng(0).uniform(-1, 1, (2, 20, 20, 3)).astype("float32")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # it takes a plain batch, as the model does
        np.testing.assert_allclose(exported(x), model(x)[0], atol=1e-6)


@pytest.mark.slow
def test_keras_export_reloads_in_a_fresh_interpreter_in_safe_mode(digits_run, digits_exports, tmp_path):
    path = digits_exports["keras"]
    metadata = json.load(open(os.path.join(path, "metadata.json")))
    assert metadata["format"] == "keras"
    assert metadata["class_names"] == [str(i) for i in range(10)]
    assert (metadata["image_size"], metadata["channels"]) == ([12, 12], 1)
    images = random_images(3, 12, 12, 1)
    inputs = preprocess(tf.constant(images), (12, 12)).numpy()
    np.save(tmp_path / "x.npy", inputs)
    run_python(
        "import sys, keras, numpy as np\n"
        "model = keras.saving.load_model(sys.argv[1], safe_mode=True)\n"
        "np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))\n",
        os.path.join(path, "model.keras"), tmp_path / "x.npy", tmp_path / "y.npy",
    )
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), reference(digits_run, images), atol=1e-6)


SAVED_MODEL_SCRIPT = """
import sys, numpy as np, tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
serve = loaded.signatures["serve"]
out = {"class_names": loaded.signatures["class_names"]()["class_names"].numpy().astype(str)}
for name in sys.argv[3:]:
    result = serve(images=tf.constant(np.load(f"{sys.argv[2]}/{name}.npy")))
    for key, value in result.items():
        out[f"{name}_{key}"] = value.numpy().astype(str) if value.dtype == tf.string else value.numpy()
np.savez(f"{sys.argv[2]}/out.npz", **out)
"""


@pytest.mark.slow
@pytest.mark.parametrize("run", ["digits_run", "rgb_run"])
def test_saved_model_takes_uint8_images_of_any_size_and_batch(run, request, tmp_path):
    run_dir = request.getfixturevalue(run)
    _, config = load_run(run_dir)
    side, channels = config["input_shape"][0], config["input_shape"][-1]
    path = export_run(run_dir, "saved_model", output=str(tmp_path / "sm"))
    batches = {
        "one": random_images(1, side, side, channels, seed=1),
        "three_larger": random_images(3, 31, 17, channels, seed=2),
        "three_smaller": random_images(3, 7, 9, channels, seed=3),
        "empty": np.zeros((0, 9, 11, channels), np.uint8),
    }
    for name, images in batches.items():
        np.save(tmp_path / f"{name}.npy", images)
    run_python(SAVED_MODEL_SCRIPT, path, tmp_path, *batches)
    out = np.load(tmp_path / "out.npz")
    class_names = config["class_names"]
    assert list(out["class_names"]) == class_names
    # An empty batch: empty outputs of the right shapes, not an error (a guard in `serve`).
    assert out["empty_probabilities"].shape == (0, len(class_names))
    assert out["empty_probabilities"].dtype == np.float32
    assert out["empty_class_index"].shape == (0,) and out["empty_class_name"].shape == (0,)
    for name, images in batches.items():
        if not len(images):
            continue
        expected = reference(run_dir, images)
        probabilities = out[f"{name}_probabilities"]
        assert probabilities.shape == (len(images), len(class_names)) and probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities, expected, atol=SAVED_MODEL_ATOL)
        assert list(out[f"{name}_class_index"]) == list(expected.argmax(-1))
        assert list(out[f"{name}_class_name"]) == [class_names[i] for i in expected.argmax(-1)]
    # The runs tell images apart, so a wrong preprocessing could not pass.
    assert np.ptp(out["three_larger_probabilities"], axis=0).max() > 0.05
    # Every weight stored once (float32 runs: 4 bytes per parameter, plus a small index);
    # Keras' own `Model.export` stores each twice (keras-team/keras#23553).
    stored = sum(
        os.path.getsize(os.path.join(folder, name))
        for folder, _, names in os.walk(os.path.join(path, "variables")) for name in names
    )
    params = inference_model(load_run(run_dir)[0]).count_params()
    assert 4 * params <= stored < 4 * params * 1.1 + 20_000, (stored, params)
    # metadata.json: portable fields only, the run by its folder name.
    metadata = json.load(open(os.path.join(path, "metadata.json")))
    assert metadata["source"] == os.path.basename(run_dir)
    assert str(tmp_path) not in json.dumps(metadata) and os.path.dirname(run_dir) not in json.dumps(metadata)


@pytest.mark.slow
@pytest.mark.parametrize("run", ["digits_run", "rgb_run"])
def test_litert_model_predicts_what_keras_predicts(run, request, tmp_path):
    from keras_ninception.data.pipeline import resize_image
    from keras_ninception.deploy.predict import _litert_interpreter

    run_dir = request.getfixturevalue(run)
    _, config = load_run(run_dir)
    side, channels = config["input_shape"][0], config["input_shape"][-1]
    path = export_run(run_dir, "litert", output=str(tmp_path / "litert"))
    metadata = json.load(open(os.path.join(path, "metadata.json")))
    assert metadata["class_names"] == config["class_names"] and metadata["format"] == "litert"

    interpreter = _litert_interpreter(os.path.join(path, "model.tflite"))
    runner = interpreter.get_signature_runner("serve")
    detail = runner.get_input_details()["images"]
    assert list(detail["shape"]) == [1, side, side, channels] and detail["dtype"] == np.uint8
    for images in (random_images(1, side, side, channels, seed=1), random_images(3, 25, 14, channels, seed=2)):
        resized = resize_image(tf.constant(images), (side, side)).numpy()
        probabilities = runner(images=resized)["probabilities"]
        expected = reference(run_dir, images)
        assert probabilities.shape == expected.shape
        np.testing.assert_allclose(probabilities, expected, atol=LITERT_ATOL)
    assert np.ptp(expected, axis=0).max() > 0.05


@pytest.mark.slow
def test_export_cli(digits_run, digits_exports, tmp_path, capsys):
    # In-process: `main` is what the command runs (tests/deploy/test_predict.py starts it once).
    assert main(["export", digits_run, "--format", "keras"]) == 2
    stderr = capsys.readouterr().err
    assert "already exists" in stderr and "Traceback" not in stderr
    output = tmp_path / "out"
    assert main(["export", digits_run, "--format", "keras", "--output", str(output)]) == 0
    captured = capsys.readouterr()
    assert f"Exported keras to {output}" in captured.err and not captured.out
    assert sorted(os.listdir(output)) == ["metadata.json", "model.keras"]


def test_litert_export_of_a_mixed_bfloat16_model_computes_in_float32(tmp_path):
    """LiteRT has no bfloat16 convolution: a model built under `mixed_bfloat16` (the default
    policy on AVX512-BF16 CPUs) is converted through its float32 copy, and the flatbuffer
    computes what that copy computes."""
    from keras_ninception.deploy.export import export_litert
    from keras_ninception.deploy.predict import _litert_interpreter
    from keras_ninception.training.precision import dtype_policy, to_float32

    with dtype_policy("mixed_bfloat16"):
        model = build_nin(input_shape=(12, 12, 3), num_classes=4, widths=(8, 8, 8), kernel_sizes=(3, 3, 3))
    assert model.get_layer("main").dtype_policy.name == "float32"  # the softmax output
    assert any(layer.compute_dtype == "bfloat16" for layer in model.layers)
    path = export_litert(model, str(tmp_path / "litert"), ["a", "b", "c", "d"])
    runner = _litert_interpreter(os.path.join(path, "model.tflite")).get_signature_runner("serve")
    images = random_images(1, 12, 12, 3, seed=3)
    probabilities = runner(images=images)["probabilities"]
    x = images.astype("float32") / 127.5 - 1
    np.testing.assert_allclose(probabilities, to_float32(model).predict(x, verbose=0), atol=LITERT_ATOL)
    # ... and the bfloat16 model itself within bfloat16's precision.
    np.testing.assert_allclose(probabilities, model.predict(x, verbose=0), atol=2e-2)
