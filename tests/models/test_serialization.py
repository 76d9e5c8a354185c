"""`.keras` files reload in a fresh interpreter: no custom_objects, safe mode on.

Whatever the builders return, trained with `compile_model` (batch normalization on TF's
fused kernel) and saved with plain `model.save`, loads with Keras alone in an interpreter
that never imports `keras_ninception`; only the paper GoogLeNet's LRN layer needs
`import keras_ninception.layers`. Files of version 0.1 (`FusedBatchNormalization`) still load.
"""

import json
import subprocess
import sys
import zipfile

import keras
import numpy as np
import pytest

from keras_ninception import build_googlenet, build_nin, compile_model, to_inference_model
from keras_ninception.layers.normalization import FusedBatchNormalization, uses_fused_batch_normalization
from keras_ninception.models.common import copy_model, load_keras_file, with_keras_batch_normalization

RELOAD = """
import json
import sys
import numpy as np
import keras
paths, out_dir, mode = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
if mode == "import":
    import keras_ninception.layers  # registers its layers (LRN, version 0.1's fused BN)
for index, path in enumerate(paths):
    model = keras.saving.load_model(path)  # safe_mode=True is the default
    outputs = model.predict(np.load(path + ".npy"), verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    np.savez(f"{out_dir}/out{index}.npz", *outputs)
    print(model.name, model.output_names)
print("imported:", sorted(name for name in sys.modules if name.startswith("keras_ninception")))
"""


def reload_in_fresh_interpreter(tmp_path, models_and_images, import_package=False):
    """Saves each `(model, images)` with `model.save`; one fresh interpreter loads them all and predicts.

    Returns the reloaded outputs (a list of arrays per model) and the interpreter's stdout.
    Without `import_package` the interpreter imports Keras and NumPy only, and the test
    checks that no `keras_ninception` module was ever imported there.
    """
    paths = []
    for index, (model, images) in enumerate(models_and_images):
        path = str(tmp_path / f"{index}-{model.name}.keras")
        model.save(path)
        np.save(path + ".npy", images)
        paths.append(path)
    result = subprocess.run(
        [sys.executable, "-c", RELOAD, json.dumps(paths), str(tmp_path), "import" if import_package else "plain-keras"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "keras_ninception" not in result.stderr
    if not import_package:
        assert "imported: []" in result.stdout
    outputs = []
    for index in range(len(paths)):
        out = np.load(tmp_path / f"out{index}.npz")
        outputs.append([out[f"arr_{i}"] for i in range(len(out.files))])
    return outputs, result.stdout


def trained(model, images):
    """`model` after one `compile_model` + `fit` step: moving statistics away from 0 / 1, fused kernel on."""
    compile_model(model, optimizer="sgd", learning_rate=0.01)
    labels = np.arange(len(images)) % model.outputs[0].shape[-1]
    y = {name: labels for name in model.output_names} if len(model.output_names) > 1 else labels
    model.fit(images, y, epochs=1, batch_size=len(images), verbose=0)
    return model


def assert_same_outputs(model, images, reloaded):
    ours = model.predict(images, verbose=0)
    ours = ours if isinstance(ours, list) else [ours]
    assert len(ours) == len(reloaded)
    for a, b in zip(ours, reloaded):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
@pytest.mark.long
def test_every_builder_model_trained_with_compile_model_reloads_with_keras_alone(tmp_path):
    # The README's first snippet (build, compile_model: fused kernel, fit, plain model.save)
    # for every variant with batch normalization, and NIN without. The interpreter that
    # loads them never imports keras_ninception (cwd is tmp_path, not the repository).
    models = [
        build_googlenet(variant="cifar", input_shape=(20, 20, 1), num_classes=3, width_multiplier=0.125),
        build_googlenet(variant="bn", input_shape=(63, 63, 3), num_classes=3, width_multiplier=0.125),
        build_nin(input_shape=(16, 16, 3), num_classes=3, batch_norm=True),
        build_nin(input_shape=(16, 16, 3), num_classes=3),
    ]
    rng = np.random.default_rng(0)
    cases = []
    for model in models:
        images = rng.uniform(-1, 1, (2, *model.input_shape[1:])).astype("float32")
        cases.append((trained(model, images), images))
    on_tensorflow = keras.backend.backend() == "tensorflow"
    assert uses_fused_batch_normalization(models[0].get_layer("conv1_3x3_bn")) == on_tensorflow
    cases.append((to_inference_model(models[0]), cases[0][1]))
    reloaded, stdout = reload_in_fresh_interpreter(tmp_path, cases)
    assert "['main', 'aux1', 'aux2']" in stdout
    for (model, images), outputs in zip(cases, reloaded):
        assert_same_outputs(model, images, outputs)


@pytest.mark.slow
def test_paper_googlenet_reloads_with_its_registered_lrn_layer(tmp_path):
    # LRN is this package's registered layer: importing keras_ninception.layers registers
    # it, no custom_objects and safe mode stay as they are.
    model = build_googlenet(input_shape=(79, 79, 3), num_classes=3, width_multiplier=0.125)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 79, 79, 3)).astype("float32")
    (reloaded,), _ = reload_in_fresh_interpreter(tmp_path, [(model, images)], import_package=True)
    assert_same_outputs(model, images, reloaded)


def version_0_1_model(model):
    """`model` as version 0.1's builders made it: `FusedBatchNormalization` layers, same weights."""

    def clone(layer):
        layer_class = FusedBatchNormalization if type(layer) is keras.layers.BatchNormalization else type(layer)
        return layer_class.from_config(layer.get_config())

    return copy_model(model, clone)


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="FusedBatchNormalization is TensorFlow's")
def test_version_0_1_files_load_in_the_package_and_convert_to_plain_keras(tmp_path):
    images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    model = trained(build_nin(input_shape=(16, 16, 3), num_classes=3, batch_norm=True), images)
    old = version_0_1_model(model)
    assert FusedBatchNormalization in {type(layer) for layer in old.layers}
    old.save(tmp_path / "old.keras")
    loaded = load_keras_file(tmp_path / "old.keras", compile=False)
    kinds = {type(layer) for layer in loaded.layers}
    assert keras.layers.BatchNormalization in kinds and FusedBatchNormalization not in kinds
    assert uses_fused_batch_normalization(loaded.get_layer("mlpconv1_conv_bn"))
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
    plain = with_keras_batch_normalization(old)
    plain.save(tmp_path / "plain.keras")
    assert "keras_ninception" in open_config(tmp_path / "old.keras")
    assert "keras_ninception" not in open_config(tmp_path / "plain.keras")
    np.testing.assert_allclose(plain.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)


def open_config(path):
    with zipfile.ZipFile(path) as archive:
        return archive.read("config.json").decode()
