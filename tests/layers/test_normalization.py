"""Keras' BatchNormalization switched to TF's fused kernel computes what Keras' own arithmetic computes.

`use_fused_batch_normalization` changes only the function a layer computes with, never its
class or config; `FusedBatchNormalization` (version 0.1's layer) stays loadable.
"""

import numpy as np
import pytest
import keras
import tensorflow as tf

from keras_ninception.layers import FusedBatchNormalization, use_fused_batch_normalization
from keras_ninception.training.compile import compile_model
from keras_ninception.training.precision import dtype_policy

CHANNELS = 6


def make_pair(input_shape=(4, 5, 7, CHANNELS), policy="float32", **kwargs):
    """A Keras BN and one switched to the fused kernel, same non-trivial weights, built on `input_shape`."""
    kwargs.setdefault("momentum", 0.9)
    with dtype_policy(policy):
        reference = keras.layers.BatchNormalization(**kwargs)
        fused = use_fused_batch_normalization(keras.layers.BatchNormalization(**kwargs))
    reference.build(input_shape)
    fused.build(input_shape)
    rng = np.random.default_rng(1)
    channels = input_shape[reference.axis]
    if reference.scale:
        reference.gamma.assign(rng.uniform(0.5, 2.0, channels).astype("float32"))
    if reference.center:
        reference.beta.assign(rng.normal(0.0, 1.0, channels).astype("float32"))
    reference.moving_mean.assign(rng.normal(0.0, 1.0, channels).astype("float32"))
    reference.moving_variance.assign(rng.uniform(0.5, 3.0, channels).astype("float32"))
    fused.set_weights(reference.get_weights())
    return reference, fused


def inputs(shape=(4, 5, 7, CHANNELS), seed=0):
    # Per-channel offsets and scales, so mean and variance differ from channel to channel.
    rng = np.random.default_rng(seed)
    return (rng.normal(3.0, 2.0, shape) * rng.uniform(0.5, 4.0, shape[-1])).astype("float32")


def uses_fused_kernel(layer, x, training):
    function = tf.function(lambda t: layer(t, training=training))
    graph = function.get_concrete_function(tf.TensorSpec(x.shape, x.dtype)).graph
    return any(op.type.startswith("FusedBatchNorm") for op in graph.get_operations())


def test_training_step_matches_keras_output_moving_statistics_and_gradients():
    reference, fused = make_pair()
    x = tf.constant(inputs())
    results = {}
    for name, layer in (("keras", reference), ("fused", fused)):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            # A loss that weights every output differently, so every gradient term matters.
            loss = tf.reduce_sum(y * tf.reshape(tf.range(tf.size(y), dtype="float32") % 7.0, y.shape))
        grads = tape.gradient(loss, [x, layer.gamma, layer.beta])
        results[name] = [y.numpy()] + [g.numpy() for g in grads] + [
            layer.moving_mean.numpy(), layer.moving_variance.numpy()
        ]
    for got, expected in zip(results["fused"], results["keras"]):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    # And against the formula, by hand: biased batch variance, momentum 0.9.
    data = inputs().reshape(-1, CHANNELS).astype("float64")
    gamma, beta, mean0, var0 = make_pair()[0].get_weights()
    np.testing.assert_allclose(fused.moving_mean.numpy(), 0.9 * mean0 + 0.1 * data.mean(0), rtol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), 0.9 * var0 + 0.1 * data.var(0), rtol=1e-5)
    expected = gamma * (data - data.mean(0)) / np.sqrt(data.var(0) + 1e-3) + beta
    np.testing.assert_allclose(results["fused"][0].reshape(-1, CHANNELS), expected, rtol=1e-4, atol=1e-4)
    assert uses_fused_kernel(fused, x, training=True)


@pytest.mark.parametrize("trainable", [True, False])
def test_inference_and_frozen_layers_use_the_moving_statistics(trainable):
    reference, fused = make_pair()
    reference.trainable = fused.trainable = trainable
    x = inputs(seed=2)
    training = not trainable  # a frozen layer in training mode is in inference mode (Keras 3)
    before = fused.get_weights()
    np.testing.assert_allclose(fused(x, training=training), reference(x, training=training), rtol=1e-5, atol=1e-5)
    for got, expected in zip(fused.get_weights(), before):
        np.testing.assert_array_equal(got, expected)  # nothing updated
    assert uses_fused_kernel(fused, x, training=training)


def test_single_value_per_channel_gives_zero_variance_not_nan():
    # n = 1: the kernel's unbiased variance divides by n - 1; the biased one Keras tracks is 0.
    reference, fused = make_pair(input_shape=(1, 1, 1, CHANNELS))
    x = inputs(shape=(1, 1, 1, CHANNELS))
    np.testing.assert_allclose(fused(x, training=True), reference(x, training=True), atol=1e-5)
    np.testing.assert_allclose(fused.moving_variance.numpy(), reference.moving_variance.numpy(), rtol=1e-6)
    assert np.isfinite(fused.moving_variance.numpy()).all()


def test_mixed_bfloat16_keeps_16_bit_activations_and_float32_statistics():
    reference, fused = make_pair(policy="mixed_bfloat16")
    x = inputs()
    y = fused(x, training=True)
    assert y.dtype == tf.bfloat16
    assert fused.moving_mean.dtype == "float32" and fused.gamma.dtype == "float32"
    expected = reference(x, training=True)
    # bfloat16 keeps 8 bits: about 2-3 significant digits on outputs of magnitude ~3.
    np.testing.assert_allclose(tf.cast(y, "float32"), tf.cast(expected, "float32"), rtol=0.02, atol=0.05)
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(), rtol=0.01, atol=0.01)
    np.testing.assert_allclose(fused.moving_variance.numpy(), reference.moving_variance.numpy(), rtol=0.02)


@pytest.mark.parametrize(
    "case, kwargs, shape",
    [
        ("2-D input", {}, (8, CHANNELS)),
        ("channels first", {"axis": 1}, (4, CHANNELS, 5, 7)),
        ("renorm", {"renorm": True}, (4, 5, 7, CHANNELS)),
        ("epsilon below the kernel's minimum", {"epsilon": 1e-6}, (4, 5, 7, CHANNELS)),
        ("no scale, no center", {"scale": False, "center": False}, (4, 5, 7, CHANNELS)),
    ],
)
def test_other_cases_compute_what_keras_computes(case, kwargs, shape):
    reference, fused = make_pair(input_shape=shape, **kwargs)
    x = inputs(shape=shape)
    for training in (True, False):
        np.testing.assert_allclose(
            fused(x, training=training), reference(x, training=training), rtol=1e-4, atol=1e-4, err_msg=case
        )
    for got, expected in zip(fused.get_weights(), reference.get_weights()):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=case)
    fused_expected = case == "no scale, no center"  # the only one the kernel takes
    assert uses_fused_kernel(fused, x, training=True) == fused_expected


def test_masked_inputs_fall_back_to_keras():
    reference, fused = make_pair()
    x = inputs()
    mask = np.random.default_rng(3).random((4, 5, 7)) > 0.3
    np.testing.assert_allclose(
        fused(x, training=True, mask=mask), reference(x, training=True, mask=mask), rtol=1e-4, atol=1e-4
    )
    np.testing.assert_allclose(fused.moving_mean.numpy(), reference.moving_mean.numpy(), rtol=1e-5)


def test_the_switch_keeps_class_and_config_and_is_idempotent():
    reference, fused = make_pair()
    assert type(fused) is keras.layers.BatchNormalization
    assert fused.get_config() == {**reference.get_config(), "name": fused.name}
    assert keras.saving.serialize_keras_object(fused)["module"] == "keras.layers"
    assert use_fused_batch_normalization(fused) is fused  # twice: nothing changes
    x = inputs()
    np.testing.assert_allclose(fused(x), reference(x), rtol=1e-5, atol=1e-5)
    assert uses_fused_kernel(fused, x, training=True)
    assert not uses_fused_kernel(reference, x, training=True)


def test_compile_model_switches_nested_layers_unless_told_not_to():
    def tiny(name):
        inputs_ = keras.Input((4, 4, CHANNELS))
        inner = keras.Sequential([keras.layers.BatchNormalization(name="inner_bn")], name="inner")
        x = keras.layers.BatchNormalization(name="bn")(inner(inputs_))
        outputs = keras.layers.Dense(2, activation="softmax", name="main")(keras.layers.Flatten()(x))
        return keras.Model(inputs_, outputs, name=name)

    x = inputs(shape=(2, 4, 4, CHANNELS))
    switched = compile_model(tiny("switched"))
    plain = compile_model(tiny("plain"), fused_batch_normalization=False)
    for model, expected in ((switched, True), (plain, False)):
        for layer in (model.get_layer("bn"), model.get_layer("inner").get_layer("inner_bn")):
            assert type(layer) is keras.layers.BatchNormalization
            assert uses_fused_kernel(layer, x, training=True) is expected, (model.name, layer.name)
    with pytest.raises(ValueError, match="Received: fused_batch_normalization='yes'"):
        compile_model(tiny("bad"), fused_batch_normalization="yes")


def test_version_0_1_layer_round_trips_its_config_and_a_keras_file_in_safe_mode(tmp_path):
    inputs_ = keras.Input((5, 7, CHANNELS))
    model = keras.Model(inputs_, FusedBatchNormalization(momentum=0.9, epsilon=1e-3, name="bn")(inputs_))
    model.layers[-1].set_weights(make_pair()[1].get_weights())
    layer = model.get_layer("bn")
    config = layer.get_config()
    assert config["momentum"] == 0.9 and config["epsilon"] == 1e-3
    assert FusedBatchNormalization.from_config(config).get_config() == config
    assert keras.saving.get_registered_name(FusedBatchNormalization) == "keras_ninception>FusedBatchNormalization"
    path = str(tmp_path / "bn.keras")
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert type(loaded.get_layer("bn")) is FusedBatchNormalization
    x = inputs()
    np.testing.assert_array_equal(loaded.predict_on_batch(x), model.predict_on_batch(x))
