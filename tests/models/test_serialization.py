"""`.keras` files reload in a fresh interpreter: no custom_objects, safe mode on.

A model with batch normalization holds this package's `FusedBatchNormalization` and loads
where `keras_ninception` is imported (as KerasHub models need `import keras_hub`);
`with_keras_batch_normalization` gives a copy that loads with Keras alone.
"""

import subprocess
import sys

import keras
import numpy as np

from keras_ninception import build_googlenet, build_nin, compile_model

RELOAD = """
import sys
import numpy as np
import keras
if sys.argv[4] == "import":
    import keras_ninception  # registers its layers (LRN, fused BN); no custom_objects
model = keras.saving.load_model(sys.argv[1])  # safe_mode=True is the default
images = np.load(sys.argv[2])
outputs = model.predict(images, verbose=0)
outputs = outputs if isinstance(outputs, list) else [outputs]
np.savez(sys.argv[3], *outputs)
print(model.name, model.output_names)
"""


def reload_in_fresh_interpreter(tmp_path, model, images, import_package=False):
    path = tmp_path / f"{model.name}.keras"
    model.save(path)
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run(
        [
            sys.executable, "-c", RELOAD, str(path), str(tmp_path / "images.npy"),
            str(tmp_path / "out.npz"), "import" if import_package else "plain-keras",
        ],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "keras_ninception" not in result.stderr
    out = np.load(tmp_path / "out.npz")
    return [out[f"arr_{i}"] for i in range(len(out.files))], result.stdout


def test_googlenet_with_aux_heads_reloads_with_equal_outputs(tmp_path):
    model = compile_model(
        build_googlenet(variant="cifar", input_shape=(20, 20, 1), num_classes=3, width_multiplier=0.125)
    )
    images = np.random.default_rng(0).uniform(-1, 1, (3, 20, 20, 1)).astype("float32")
    reloaded, stdout = reload_in_fresh_interpreter(tmp_path, model, images, import_package=True)
    assert "['main', 'aux1', 'aux2']" in stdout
    for ours, theirs in zip(model.predict(images, verbose=0), reloaded):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_paper_googlenet_with_lrn_bn_variant_and_nin_reload(tmp_path):
    for model, shape, import_package in (
        # LRN and fused BN are this package's registered layers: importing keras_ninception
        # registers them, no custom_objects and safe mode stay as they are. NIN without batch
        # normalization (the default) is plain Keras.
        (build_googlenet(input_shape=(79, 79, 3), num_classes=3, width_multiplier=0.125), (2, 79, 79, 3), True),
        (build_googlenet(variant="bn", input_shape=(63, 63, 3), num_classes=3, width_multiplier=0.125), (2, 63, 63, 3), True),
        (build_nin(input_shape=(16, 16, 3), num_classes=3), (2, 16, 16, 3), False),
    ):
        images = np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")
        reloaded, _ = reload_in_fresh_interpreter(tmp_path, model, images, import_package)
        ours = model.predict(images, verbose=0)
        ours = ours if isinstance(ours, list) else [ours]
        for a, b in zip(ours, reloaded):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_with_keras_batch_normalization_loads_with_keras_alone(tmp_path):
    from keras_ninception.layers import FusedBatchNormalization
    from keras_ninception.models.common import with_keras_batch_normalization

    model = build_nin(input_shape=(16, 16, 3), num_classes=3, batch_norm=True)
    images = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    # Moving statistics away from their initial 0 / 1, so inference-mode BN does something.
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(images, np.array([0, 2]), epochs=1, verbose=0)
    plain = with_keras_batch_normalization(model)
    kinds = {type(layer) for layer in plain.layers}
    assert keras.layers.BatchNormalization in kinds and FusedBatchNormalization not in kinds
    assert [layer.name for layer in plain.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(plain.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
    reloaded, _ = reload_in_fresh_interpreter(tmp_path, plain, images, import_package=False)
    np.testing.assert_allclose(reloaded[0], model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
