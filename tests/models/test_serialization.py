"""`.keras` files reload in a fresh interpreter: no custom_objects, safe mode on.

A model with batch normalization holds this package's `FusedBatchNormalization` and loads
where `keras_ninception` is imported (as KerasHub models need `import keras_hub`);
`with_keras_batch_normalization` gives a copy that loads with Keras alone.
"""

import json
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_ninception import build_googlenet, build_nin, compile_model

# Every test reads models reloaded in fresh interpreters (`reloaded`), one of them fitted.
pytestmark = pytest.mark.slow

RELOAD = """
import json, sys
import numpy as np
import keras
if sys.argv[1] == "import":
    import keras_ninception  # registers its layers (LRN, fused BN); no custom_objects
for path, images, out in json.loads(sys.argv[2]):
    model = keras.saving.load_model(path)  # safe_mode=True is the default
    outputs = model.predict(np.load(images), verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    np.savez(out, *outputs)
    print(model.name, model.output_names)
"""


def models_to_reload():
    """`{case: (model, images, import_package)}`: every model the tests reload."""
    rng = np.random.default_rng(0)
    googlenet = compile_model(
        build_googlenet(variant="cifar", input_shape=(20, 20, 1), num_classes=3, width_multiplier=0.125)
    )
    # Moving statistics away from their initial 0 / 1, so inference-mode BN does something.
    nin_bn = build_nin(input_shape=(16, 16, 3), num_classes=3, batch_norm=True)
    nin_bn_images = rng.uniform(-1, 1, (2, 16, 16, 3)).astype("float32")
    nin_bn.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    nin_bn.fit(nin_bn_images, np.array([0, 2]), epochs=1, verbose=0)
    from keras_ninception.models.common import with_keras_batch_normalization

    return {
        "googlenet_aux": (googlenet, rng.uniform(-1, 1, (3, 20, 20, 1)).astype("float32"), True),
        # LRN and fused BN are this package's registered layers: importing keras_ninception
        # registers them, no custom_objects and safe mode stay as they are. NIN without batch
        # normalization (the default) is plain Keras.
        "paper": (build_googlenet(input_shape=(79, 79, 3), num_classes=3, width_multiplier=0.125),
                  rng.uniform(-1, 1, (2, 79, 79, 3)).astype("float32"), True),
        "bn": (build_googlenet(variant="bn", input_shape=(63, 63, 3), num_classes=3, width_multiplier=0.125),
               rng.uniform(-1, 1, (2, 63, 63, 3)).astype("float32"), True),
        "nin": (build_nin(input_shape=(16, 16, 3), num_classes=3), rng.uniform(-1, 1, (2, 16, 16, 3)).astype("float32"), False),
        "nin_bn_trained": (nin_bn, nin_bn_images, None),  # the source of the next one, not reloaded
        "nin_keras_bn": (with_keras_batch_normalization(nin_bn), nin_bn_images, False),
    }


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory):
    """Every model saved, then reloaded in two fresh interpreters (one that imports
    keras_ninception, one with Keras alone). Returns `{case: (model, images, outputs, stdout line)}`."""
    tmp_path = tmp_path_factory.mktemp("reload")
    cases = models_to_reload()
    jobs = {True: [], False: []}
    for case, (model, images, import_package) in cases.items():
        if import_package is None:
            continue
        model.save(tmp_path / f"{case}.keras")
        np.save(tmp_path / f"{case}.npy", images)
        jobs[import_package].append((case, [str(tmp_path / f"{case}.{ext}") for ext in ("keras", "npy", "npz")]))
    lines = {}
    for import_package, job in jobs.items():
        result = subprocess.run(
            [sys.executable, "-c", RELOAD, "import" if import_package else "plain-keras",
             json.dumps([paths for _, paths in job])],
            capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        assert "keras_ninception" not in result.stderr
        lines.update(zip([case for case, _ in job], result.stdout.strip().splitlines()[-len(job):], strict=True))
    out = {}
    for case, (model, images, _) in cases.items():
        if case in lines:
            npz = np.load(tmp_path / f"{case}.npz")
            out[case] = (model, images, [npz[f"arr_{i}"] for i in range(len(npz.files))], lines[case])
    out["nin_bn_trained"] = cases["nin_bn_trained"][:2]
    return out


def test_googlenet_with_aux_heads_reloads_with_equal_outputs(reloaded):
    model, images, outputs, stdout = reloaded["googlenet_aux"]
    assert "['main', 'aux1', 'aux2']" in stdout
    for ours, theirs in zip(model.predict(images, verbose=0), outputs):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_paper_googlenet_with_lrn_bn_variant_and_nin_reload(reloaded):
    for case in ("paper", "bn", "nin"):
        model, images, outputs, _ = reloaded[case]
        ours = model.predict(images, verbose=0)
        ours = ours if isinstance(ours, list) else [ours]
        for a, b in zip(ours, outputs):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_with_keras_batch_normalization_loads_with_keras_alone(reloaded):
    from keras_ninception.layers import FusedBatchNormalization

    model, images = reloaded["nin_bn_trained"]
    plain, _, outputs, _ = reloaded["nin_keras_bn"]
    kinds = {type(layer) for layer in plain.layers}
    assert keras.layers.BatchNormalization in kinds and FusedBatchNormalization not in kinds
    assert [layer.name for layer in plain.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(plain.predict(images, verbose=0), model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(outputs[0], model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)
