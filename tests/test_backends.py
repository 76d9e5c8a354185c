"""The model API is backend-neutral: a `.keras` file saved on one Keras backend loads on the
other with equal outputs; the TensorFlow-only features say so, naming the backend."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SAVE = """
import json, sys
import numpy as np
import keras
from keras_ninception import build_googlenet, build_nin, compile_model
out = sys.argv[1]
keras.utils.set_random_seed(0)
models = [
    build_googlenet(variant="cifar", input_shape=(20, 20, 3), num_classes=3, width_multiplier=0.125),
    build_nin(input_shape=(16, 16, 3), num_classes=3, batch_norm=True),
]
rng = np.random.default_rng(0)
for index, model in enumerate(models):
    images = rng.uniform(-1, 1, (4, *model.input_shape[1:])).astype("float32")
    compile_model(model, optimizer="sgd", learning_rate=0.01)
    # Batch normalization's four vectors and the biases away from their initial 1 / 0 (the
    # kernels are random already), without a training step: compiling one took this test 41 s
    # on 2 cores, most of it JAX's (143.8 s with `fit`, 103.1 s without).
    model.set_weights([
        rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) if v.path.endswith(("gamma", "moving_variance"))
        else rng.normal(0, 0.1, w.shape).astype(w.dtype) if v.path.endswith(("beta", "moving_mean", "bias"))
        else w
        for v, w in zip(model.weights, model.get_weights())
    ])
    model.save(f"{out}/{index}.keras")
    np.save(f"{out}/{index}-images.npy", images)
    outputs = model.predict(images, verbose=0)
    np.savez(f"{out}/{index}-saved.npz", *(outputs if isinstance(outputs, list) else [outputs]))
print(json.dumps({"backend": keras.backend.backend(), "models": len(models)}))
"""

LOAD = """
import json, sys
import numpy as np
import keras
out, count = sys.argv[1], int(sys.argv[2])
for index in range(count):
    model = keras.saving.load_model(f"{out}/{index}.keras")  # safe mode, no custom objects
    outputs = model.predict(np.load(f"{out}/{index}-images.npy"), verbose=0)
    np.savez(f"{out}/{index}-loaded.npz", *(outputs if isinstance(outputs, list) else [outputs]))
print(json.dumps({"backend": keras.backend.backend()}))
"""


def run(code, backend, *args):
    # Under pytest-xdist, JAX_COMPILATION_CACHE_DIR (tests/conftest.py) lets the second JAX
    # process reuse the first's compilations.
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": ROOT}
    result = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True,
                            timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.long
def test_a_keras_file_saved_on_one_backend_loads_on_the_other_with_equal_outputs(tmp_path):
    # Both directions in one test: the JAX process of the second reuses the first's
    # compilations (the run's JAX compilation cache, see tests/conftest.py).
    pytest.importorskip("jax", reason="the cross-backend test needs jax (pip install '.[jax]')")
    for saved_on, loaded_on in [("jax", "tensorflow"), ("tensorflow", "jax")]:
        folder = tmp_path / f"{saved_on}-to-{loaded_on}"
        folder.mkdir()
        saved = run(SAVE, saved_on, folder)
        assert saved == {"backend": saved_on, "models": 2}
        assert run(LOAD, loaded_on, folder, saved["models"]) == {"backend": loaded_on}
        for index in range(saved["models"]):
            before, after = np.load(folder / f"{index}-saved.npz"), np.load(folder / f"{index}-loaded.npz")
            assert len(before.files) == (3 if index == 0 else 1)  # GoogLeNet's main, aux1, aux2
            for name in before.files:
                assert before[name].max() < 0.99, "saturated softmax outputs would hide a difference"
                np.testing.assert_allclose(after[name], before[name], rtol=1e-5, atol=1e-5,
                                           err_msg=f"saved on {saved_on}, loaded on {loaded_on}, model {index}")


def tiny_model():
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.BatchNormalization()(inputs)
    outputs = keras.layers.Dense(2, activation="softmax", name="main")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def test_tensorflow_only_features_name_the_backend(monkeypatch, tmp_path):
    from keras_ninception import compile_model
    from keras_ninception.deploy.export import export_litert, export_saved_model
    from keras_ninception.layers import FusedBatchNormalization, use_fused_batch_normalization
    from keras_ninception.training.distribute import make_strategy

    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    message = r"needs the TensorFlow backend; Keras runs on 'jax' \(KERAS_BACKEND=jax\)"
    model = tiny_model()
    for call in (
        lambda: use_fused_batch_normalization(model),
        lambda: compile_model(model, fused_batch_normalization=True),
        lambda: FusedBatchNormalization(),
        lambda: export_saved_model(model, tmp_path / "sm", ["a", "b"]),
        lambda: export_litert(model, tmp_path / "litert", ["a", "b"]),
        lambda: make_strategy("mirrored"),
        lambda: make_strategy("multiworker"),
    ):
        with pytest.raises(RuntimeError, match=message):
            call()
    assert not os.listdir(tmp_path)  # nothing written
    compile_model(model)  # the default: Keras' own batch normalization on other backends
    assert "call" not in model.layers[1].__dict__
