"""HyperGoogLeNet and HyperNIN: exact defaults, hp.Fixed overrides, problem checks, fit."""

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from keras_ninception import build_nin
from keras_ninception.tuning import HyperGoogLeNet, HyperNIN, rebatch

GOOGLENET_DEFAULTS = {
    "width_multiplier": 1.0,
    "dropout_rate": 0.4,
    "aux_dropout_rate": 0.7,
    "optimizer": "adam",
    "learning_rate": 1e-3,
    "weight_decay": 0.0,
    "aux_loss_weight": 0.3,
    "batch_size": 64,
}
NIN_DEFAULTS = {
    "mlpconv1_filters": 192,
    "mlpconv1_kernel_size": 5,
    "mlpconv2_filters": 192,
    "mlpconv2_kernel_size": 5,
    "mlpconv3_filters": 192,
    "mlpconv3_kernel_size": 3,
    "dropout_rate": 0.5,
    "learning_rate": 1e-3,
}


def declared(hypermodel, hp=None):
    """`(hp, model)` after what KerasTuner does: declare_hyperparameters, then build."""
    hp = hp or keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    return hp, hypermodel.build(hp)


def test_googlenet_default_hyperparameters():
    hp, model = declared(HyperGoogLeNet((20, 20, 1), 10))
    assert hp.values == GOOGLENET_DEFAULTS
    assert model.output_names == ["main", "aux1", "aux2"]
    assert model._compile_config.config["loss_weights"] == {"main": 1.0, "aux1": 0.3, "aux2": 0.3}
    assert model.get_layer("dropout").rate == pytest.approx(0.4)


def test_googlenet_without_aux_heads_has_no_aux_hyperparameters():
    hp, model = declared(HyperGoogLeNet((8, 8, 3), 5, aux_classifiers=False))
    expected = {k: v for k, v in GOOGLENET_DEFAULTS.items() if not k.startswith("aux")}
    assert hp.values == expected
    assert model.output_names == ["main"]


def test_nin_default_hyperparameters_give_build_nin_layer_for_layer():
    hp, model = declared(HyperNIN((8, 8, 1), 10))
    assert hp.values == NIN_DEFAULTS
    reference = build_nin(input_shape=(8, 8, 1), num_classes=10, batch_norm=True)
    assert [layer.name for layer in model.layers] == [layer.name for layer in reference.layers]
    assert model.count_params() == reference.count_params() == 961_640
    assert model.output_names == ["main"]


def test_googlenet_fixed_overrides_reach_the_builder_and_compile():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("width_multiplier", 0.125)
    hp.Fixed("dropout_rate", 0.2)
    hp.Fixed("aux_dropout_rate", 0.5)
    hp.Fixed("aux_loss_weight", 1.0)
    hp.Fixed("optimizer", "sgd")
    hp.Fixed("learning_rate", 0.05)
    hp.Fixed("weight_decay", 1e-4)
    hp, model = declared(HyperGoogLeNet((20, 20, 3), 4), hp)
    assert hp.values == {
        **GOOGLENET_DEFAULTS,
        "width_multiplier": 0.125,
        "dropout_rate": 0.2,
        "aux_dropout_rate": 0.5,
        "aux_loss_weight": 1.0,
        "optimizer": "sgd",
        "learning_rate": 0.05,
        "weight_decay": 1e-4,
    }
    assert model.get_layer("conv1_3x3").filters == 8  # 64 × 0.125
    assert model.get_layer("inception_3a_pool_proj").filters == 4  # 32 × 0.125
    assert model.get_layer("dropout").rate == pytest.approx(0.2)
    assert model.get_layer("aux1_drop_fc").rate == pytest.approx(0.5)
    assert model._compile_config.config["loss_weights"] == {"main": 1.0, "aux1": 1.0, "aux2": 1.0}
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.05)
    assert model.optimizer.weight_decay == pytest.approx(1e-4)


def test_nin_fixed_overrides_set_widths_kernels_and_dropout():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("mlpconv1_filters", 16)
    hp.Fixed("mlpconv1_kernel_size", 3)
    hp.Fixed("mlpconv2_filters", 48)
    hp.Fixed("mlpconv3_filters", 96)
    hp.Fixed("mlpconv3_kernel_size", 5)
    hp.Fixed("dropout_rate", 0.0)
    hp.Fixed("learning_rate", 0.01)
    hp, model = declared(HyperNIN((8, 8, 1), 10, batch_norm=False), hp)
    widths = {name: model.get_layer(name).filters for name in (
        "mlpconv1_conv", "mlpconv1_cccp1", "mlpconv1_cccp2",
        "mlpconv2_conv", "mlpconv2_cccp1", "mlpconv2_cccp2",
        "mlpconv3_conv", "mlpconv3_cccp1", "mlpconv3_cccp2",
    )}
    # The table's 192-160-96 / 192-192-192 / 192-192-classes at 16, 48 and 96 filters.
    assert list(widths.values()) == [16, 13, 8, 48, 48, 48, 96, 96, 10]
    assert model.get_layer("mlpconv1_conv").kernel_size == (3, 3)
    assert model.get_layer("mlpconv2_conv").kernel_size == (5, 5)
    assert model.get_layer("mlpconv3_conv").kernel_size == (5, 5)
    assert not [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert not [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert float(model.optimizer.learning_rate) == pytest.approx(0.01)


def test_every_build_is_fresh():
    hypermodel = HyperNIN((8, 8, 1), 10)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("mlpconv1_filters", 48)
    first, second = hypermodel.build(hp), hypermodel.build(hp)
    assert first is not second
    assert not {id(w) for w in first.weights} & {id(w) for w in second.weights}


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: HyperNIN(None, 10), r"`input_shape` must be given.*Received: input_shape=None"),
        (lambda: HyperNIN((8, 8), 10), r"`input_shape`.*Received: input_shape=\(8, 8\)"),
        (lambda: HyperNIN((None, 8, 3), 10), r"every dimension.*Received: input_shape=\(None, 8, 3\)"),
        (lambda: HyperNIN((8, 8, 1), 1), r"`num_classes`.*Received: num_classes=1"),
        (lambda: HyperNIN((8, 8, 1), 10.0), r"`num_classes`.*Received: num_classes=10.0"),
        (lambda: HyperNIN((8, 8, 1), 10, batch_norm=1), r"`batch_norm`.*Received: batch_norm=1"),
        (lambda: HyperGoogLeNet((19, 19, 3), 10), r"at least 20×20.*Received: input_shape=\(19, 19, 3\)"),
        (lambda: HyperGoogLeNet((32, 32, 3), 10, variant="paper"), r"at least 79×79"),
        (lambda: HyperGoogLeNet((32, 32, 3), 10, variant="v3"), r"`variant`.*Received: variant='v3'"),
        (lambda: HyperGoogLeNet((32, 32, 3), 10, aux_classifiers="yes"), r"`aux_classifiers`"),
    ],
)
def test_bad_problem_definitions_fail_in_init(make, match):
    with pytest.raises(ValueError, match=match):
        make()


class _CountBatches(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.sizes = []

    def on_train_batch_end(self, batch, logs=None):
        self.sizes.append(batch)


@pytest.mark.slow
def test_fit_rebatches_a_dataset_to_the_trial_batch_size():
    x = np.random.default_rng(0).normal(size=(40, 4)).astype("float32")
    y = np.arange(40) % 4
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    hypermodel = HyperGoogLeNet((20, 20, 1), 4)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("batch_size", 16)
    hypermodel.declare_hyperparameters(hp)
    # `fit` does not depend on the architecture: a one-layer model keeps this test fast.
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax", name="main")(inputs))
    model.compile("sgd", "sparse_categorical_crossentropy")
    counter = _CountBatches()
    hypermodel.fit(hp, model, data, epochs=1, callbacks=[counter], verbose=0)
    assert len(counter.sizes) == 3  # 40 examples in batches of 16, not 2 batches of 32
    assert [int(b[0].shape[0]) for b in rebatch(data, 16)] == [16, 16, 8]
    counter = _CountBatches()
    hypermodel.fit(hp, model, x, y, epochs=1, callbacks=[counter], verbose=0)
    assert len(counter.sizes) == 3  # arrays: batch_size=16 passed to model.fit
