"""The deep-supervision recipe: per-head losses checked against hand computation."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ninception import build_googlenet, build_nin, compile_model
from tests.forward import forward

pytestmark = pytest.mark.xdist_group("tiny-googlenet")  # one pytest-xdist worker: the shared fixtures

NUM_CLASSES = 4


def crossentropy(probabilities, labels):
    """Mean negative log-likelihood, by hand."""
    return float(np.mean(-np.log(probabilities[np.arange(len(labels)), labels])))


@pytest.fixture(scope="module")
def tiny_googlenet():
    return build_googlenet(
        variant="cifar", input_shape=(20, 20, 3), num_classes=NUM_CLASSES, width_multiplier=0.125
    )


@pytest.mark.parametrize("aux_loss_weight", [0.3, 0.5])
def test_each_head_gets_its_own_labels_and_loss(tiny_googlenet, aux_loss_weight):
    model = compile_model(tiny_googlenet, aux_loss_weight=aux_loss_weight)
    rng = np.random.default_rng(1)
    images = rng.uniform(-1, 1, (16, 20, 20, 3)).astype("float32")
    # Different labels for every head: a routing bug would pair a head with another's labels.
    labels = {
        "main": rng.integers(0, NUM_CLASSES, 16),
        "aux1": rng.integers(0, NUM_CLASSES, 16),
        "aux2": rng.integers(0, NUM_CLASSES, 16),
    }
    assert not np.array_equal(labels["main"], labels["aux1"])
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(16)
    logs = model.evaluate(dataset, return_dict=True, verbose=0)
    predictions = dict(zip(model.output_names, forward(model, images)))

    expected = {name: crossentropy(predictions[name], labels[name]) for name in labels}
    for name in labels:
        assert logs[f"{name}_loss"] == pytest.approx(expected[name], rel=1e-4), name
        accuracy = np.mean(np.argmax(predictions[name], axis=1) == labels[name])
        assert logs[f"{name}_accuracy"] == pytest.approx(accuracy), name
    total = expected["main"] + aux_loss_weight * (expected["aux1"] + expected["aux2"])
    assert logs["loss"] == pytest.approx(total, rel=1e-4)


def test_recipe_is_keyed_by_output_name(tiny_googlenet):
    model = compile_model(tiny_googlenet)
    assert model._compile_config.config["loss_weights"] == {"main": 1.0, "aux1": 0.3, "aux2": 0.3}
    assert set(model._compile_config.config["metrics"]) == {"main", "aux1", "aux2"}


@pytest.mark.slow
def test_single_output_model_logs_main_accuracy():
    model = compile_model(build_nin(input_shape=(8, 8, 1), num_classes=3), learning_rate=1e-3)
    images = np.zeros((4, 8, 8, 1), "float32")
    history = model.fit(images, np.array([0, 1, 2, 0]), validation_data=(images, np.array([0, 1, 2, 0])), verbose=0)
    assert set(history.history) == {"loss", "main_accuracy", "val_loss", "val_main_accuracy"}


def test_logits_models_get_from_logits_losses():
    model = build_nin(input_shape=(8, 8, 1), num_classes=3, classifier_activation=None)
    compile_model(model)
    assert model.loss.from_logits is True


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"aux_loss_weight": -1}, "aux_loss_weight"),
        ({"optimizer": "adagrad2"}, "optimizer"),
    ],
)
def test_bad_compile_arguments(tiny_googlenet, kwargs, message):
    with pytest.raises(ValueError, match=rf"`{message}`.*Received: {message}="):
        compile_model(tiny_googlenet, **kwargs)


def test_xla_is_on_only_where_a_gpu_is(monkeypatch):
    """`jit_compile="auto"` (the default): on TensorFlow, XLA off on CPU-only machines, where it
    was 3x slower; on JAX, Keras' "auto" always compiles (JAX runs nothing un-jitted fast)."""
    model = build_nin(input_shape=(8, 8, 1), num_classes=NUM_CLASSES)
    if keras.backend.backend() != "tensorflow":
        assert compile_model(model).jit_compile is True
        assert compile_model(build_nin(input_shape=(8, 8, 1), num_classes=NUM_CLASSES), jit_compile=False).jit_compile is False
        return
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    assert compile_model(model).jit_compile is has_gpu

    class FakeGPU:
        device_type = "GPU"
        name = "/physical_device:GPU:0"

    real = tf.config.list_physical_devices

    def with_a_gpu(device_type=None):
        return real(device_type) + ([FakeGPU()] if device_type in (None, "GPU") else [])

    monkeypatch.setattr(tf.config, "list_physical_devices", with_a_gpu)
    assert compile_model(build_nin(input_shape=(8, 8, 1), num_classes=NUM_CLASSES)).jit_compile is True
    forced = compile_model(build_nin(input_shape=(8, 8, 1), num_classes=NUM_CLASSES), jit_compile=False)
    assert forced.jit_compile is False


@pytest.mark.slow
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the second trace is TensorFlow's tf.function")
@pytest.mark.parametrize("optimizer, use_ema", [("sgd", False), ("adam", True)])
@pytest.mark.parametrize("model_kind", ["googlenet", "nin"])
def test_the_train_step_is_traced_once_and_fit_creates_no_variables(model_kind, optimizer, use_ema):
    # A tf.function whose first trace creates variables (the optimizer's slots, the metrics'
    # totals) is traced twice; compile_model creates them up front.
    if model_kind == "googlenet":
        model = build_googlenet(variant="cifar", input_shape=(20, 20, 3), num_classes=NUM_CLASSES, width_multiplier=0.125)
        labels = {name: np.arange(8) % NUM_CLASSES for name in ("main", "aux1", "aux2")}
    else:
        model = build_nin(input_shape=(8, 8, 3), num_classes=NUM_CLASSES)
        labels = np.arange(8) % NUM_CLASSES
    model = compile_model(model, optimizer=optimizer, weight_decay=1e-4, use_ema=use_ema)
    assert model.optimizer.built

    def all_variables():
        return {id(v) for v in [*model.variables, *model.optimizer.variables, *model.metrics_variables]}

    before = all_variables()
    traces = []
    train_step = model.train_step

    def counting_train_step(data):
        traces.append(1)  # Python runs once per trace, not per step
        return train_step(data)

    model.train_step = counting_train_step
    images = np.random.default_rng(0).uniform(-1, 1, (8,) + model.input_shape[1:]).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).batch(2)
    history = model.fit(dataset, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    assert len(traces) == 1
    assert all_variables() == before
