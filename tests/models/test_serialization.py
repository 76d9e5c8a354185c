"""`.keras` files reload in a fresh interpreter: no custom_objects, safe mode on."""

import subprocess
import sys

import numpy as np

from keras_ninception import build_googlenet, build_nin, compile_model

RELOAD = """
import sys
import numpy as np
import keras
if sys.argv[4] == "import":
    import keras_ninception  # registers LocalResponseNormalization; no custom_objects
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
    reloaded, stdout = reload_in_fresh_interpreter(tmp_path, model, images)
    assert "['main', 'aux1', 'aux2']" in stdout
    for ours, theirs in zip(model.predict(images, verbose=0), reloaded):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_paper_googlenet_with_lrn_bn_variant_and_nin_reload(tmp_path):
    for model, shape, import_package in (
        # The paper variant's LRN layer is this package's registered layer: importing
        # keras_ninception registers it, no custom_objects and safe mode stay as they are.
        (build_googlenet(input_shape=(79, 79, 3), num_classes=3, width_multiplier=0.125), (2, 79, 79, 3), True),
        (build_googlenet(variant="bn", input_shape=(63, 63, 3), num_classes=3, width_multiplier=0.125), (2, 63, 63, 3), False),
        (build_nin(input_shape=(16, 16, 3), num_classes=3), (2, 16, 16, 3), False),
    ):
        images = np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")
        reloaded, _ = reload_in_fresh_interpreter(tmp_path, model, images, import_package)
        ours = model.predict(images, verbose=0)
        ours = ours if isinstance(ours, list) else [ours]
        for a, b in zip(ours, reloaded):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
