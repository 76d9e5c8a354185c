"""Named recipes: the table fills TrainConfig, flags override it, schedules and losses by hand."""

import dataclasses
import json
import math

import keras
import numpy as np
import pytest

from keras_ninception.training import recipes
from keras_ninception.training.compile import (
    SparseCategoricalCrossentropyWithSmoothing,
    compile_model,
    make_optimizer,
)
from keras_ninception.training.config import TrainConfig, config_differences, saved_train_config
from keras_ninception.training.schedules import OneCycle, make_schedule


def test_the_fast_recipe_is_the_previous_defaults():
    config = TrainConfig().validate().resolved()
    assert config.recipe == "fast"
    assert (config.optimizer, config.learning_rate, config.schedule, config.warmup_epochs) == ("adam", 2e-3, "cosine", 1)
    assert (config.epochs, config.batch_size, config.weight_decay, config.augment) == (6, 64, None, None)
    assert (config.label_smoothing, config.dropout_rate, config.ema) == (0.0, None, False)


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_every_recipe_fills_every_recipe_field_and_flags_override_it(name):
    recipe = recipes.RECIPES[name]
    config = TrainConfig(recipe=name).validate().resolved()
    for field in recipes.RECIPE_FIELDS:
        assert getattr(config, field) == getattr(recipe, field), field
    overridden = TrainConfig(recipe=name, epochs=2, learning_rate=0.5, weight_decay=0.0).validate().resolved()
    assert (overridden.epochs, overridden.learning_rate, overridden.weight_decay) == (2, 0.5, 0.0)
    assert overridden.optimizer == recipe.optimizer
    assert recipe.source  # every recipe names its source


def test_paper_recipes_hold_the_papers_settings():
    nin = recipes.RECIPES["nin-paper"]
    assert (nin.optimizer, nin.batch_size, nin.schedule, nin.decay_rate, nin.augment) == ("momentum", 128, "step", 0.1, "none")
    assert len(nin.decay_epochs) == 2  # the rate divided by 10 twice
    googlenet = recipes.RECIPES["googlenet-paper"]
    # Section 6: momentum 0.9, 4% decrease every 8 epochs, Polyak averaging.
    assert (googlenet.optimizer, googlenet.schedule, googlenet.decay_epochs, googlenet.decay_rate, googlenet.ema) == (
        "momentum", "exponential", (8,), 0.96, True,
    )


def test_the_resolved_recipe_is_recorded_and_an_old_config_resumes_as_fast():
    config = TrainConfig(recipe="cifar", epochs=3).validate().resolved()
    saved = {"train_config": json.loads(json.dumps(dataclasses.asdict(config)))}  # as config.json holds it
    assert saved["train_config"]["recipe"] == "cifar" and saved["train_config"]["weight_decay"] == 5e-3
    assert config_differences(saved_train_config(saved, config), config) == ""
    # A run folder written before recipes existed: no recipe fields, the old defaults.
    old = {"train_config": {"model": "nin", "epochs": 6, "batch_size": 64, "learning_rate": 2e-3, "optimizer": "adam",
                            "weight_decay": None, "augment": None}}
    now = TrainConfig(model="nin").validate().resolved()
    assert config_differences(saved_train_config(old, now), now) == ""


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("recipe", "slow", r"`recipe` must be one of .*'fast'.*Received: recipe='slow'"),
        ("optimizer", "lbfgs", r"`optimizer` must be one of"),
        ("schedule", "linear", r"`schedule` must be one of"),
        ("label_smoothing", 1.0, r"`label_smoothing` must be a number in \[0, 1\)"),
        ("dropout_rate", -0.1, r"`dropout_rate` must be a number in \[0, 1\)"),
        ("decay_epochs", "8", r"`decay_epochs` must be positive epoch numbers"),
        ("decay_epochs", (30, -1), r"`decay_epochs` must be positive epoch numbers"),
        ("decay_rate", 0, r"`decay_rate` must be a finite number > 0. Received: decay_rate=0"),
        ("decay_rate", float("nan"), r"`decay_rate` must be a finite number > 0"),
        ("learning_rate", -1e-3, r"`learning_rate` must be a finite number > 0"),
        ("ema", "yes", r"ema"),
    ],
)
def test_bad_recipe_fields_are_refused_in_the_packages_words(field, value, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**{field: value}).validate()


def schedule_values(config, steps_per_epoch, steps):
    schedule = make_schedule(config.validate().resolved(), steps_per_epoch)
    return [float(schedule(step)) if callable(schedule) else float(schedule) for step in steps]


def test_cosine_schedule_warms_up_for_the_given_epochs_then_decays_to_zero():
    values = schedule_values(TrainConfig(epochs=4, learning_rate=1.0, warmup_epochs=1), 10, [0, 5, 10, 25, 40])
    # Warm-up from 0.1 to 1.0 over 10 steps, then cosine over the remaining 30.
    assert values == pytest.approx([0.1, 0.55, 1.0, 0.5 * (1 + math.cos(math.pi * 15 / 30)), 0.0], abs=1e-6)


def test_step_schedule_divides_at_the_given_epochs():
    config = TrainConfig(recipe="nin-paper", epochs=4, learning_rate=1.0, decay_epochs=(2, 3))
    assert schedule_values(config, 10, [0, 19, 20, 29, 30, 39]) == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])


@pytest.mark.parametrize(
    "fields, unreached",
    [
        ({"recipe": "nin-paper", "epochs": 60}, "[150, 225]"),  # the recipe's cuts, for 300 epochs
        ({"recipe": "nin-paper", "epochs": 200}, "[225]"),
        ({"recipe": "googlenet-paper", "epochs": 8}, "[8]"),  # exponential: its first period
        ({"recipe": "nin-paper", "epochs": 60, "decay_epochs": (30, 45)}, None),
        ({"recipe": "nin-paper"}, None),
    ],
)
def test_a_schedule_whose_cuts_fall_past_the_last_epoch_says_so(fields, unreached, caplog):
    with caplog.at_level("WARNING", logger="keras_ninception"):
        schedule_values(TrainConfig(**fields), 10, [0])
    if unreached is None:
        assert "never cut" not in caplog.text
    else:
        assert f"never cut at epoch(s) {unreached}" in caplog.text
        assert f"the run has {fields['epochs']} epochs" in caplog.text


def test_decay_flags_reach_the_config():
    from keras_ninception.cli.main import build_parser

    args = build_parser().parse_args(["train", "--recipe", "nin-paper", "--epochs", "60", "--decay-epochs", "30", "45",
                                      "--decay-rate", "0.2"])
    assert (args.decay_epochs, args.decay_rate) == ([30.0, 45.0], 0.2)
    config = TrainConfig(recipe=args.recipe, epochs=args.epochs, decay_epochs=args.decay_epochs,
                         decay_rate=args.decay_rate).validate().resolved()
    assert (config.decay_epochs, config.decay_rate) == ((30.0, 45.0), 0.2)


def test_exponential_schedule_is_googlenets_four_percent_every_eight_epochs():
    config = TrainConfig(recipe="googlenet-paper", epochs=40, learning_rate=1.0)
    values = schedule_values(config, 5, [0, 39, 40, 79, 80, 199])
    assert values == pytest.approx([1, 1, 0.96, 0.96, 0.96**2, 0.96**4], rel=1e-6)


def test_one_cycle_rises_to_the_peak_then_anneals():
    schedule = OneCycle(peak=1.0, total_steps=100)
    assert float(schedule(0)) == pytest.approx(1 / 25)
    assert float(schedule(15)) == pytest.approx(1 / 25 + (1 - 1 / 25) * 0.5)
    assert float(schedule(30)) == pytest.approx(1.0)
    assert float(schedule(65)) == pytest.approx(1 / 25e4 + (1 - 1 / 25e4) * 0.5, rel=1e-5)
    assert float(schedule(100)) == pytest.approx(1 / 25e4, rel=1e-4)
    assert OneCycle(**schedule.get_config()).get_config() == schedule.get_config()


def test_weight_decay_shrinks_kernels_but_not_biases_or_batch_norm():
    inputs = keras.Input((3,))
    x = keras.layers.Dense(2, name="fc")(inputs)
    outputs = keras.layers.BatchNormalization(name="bn")(x)
    model = keras.Model(inputs, outputs)
    for variable in model.trainable_variables:
        variable.assign(np.ones(variable.shape, "float32"))
    optimizer = make_optimizer("sgd", learning_rate=0.5, weight_decay=0.1)
    optimizer.build(model.trainable_variables)
    optimizer.apply_gradients([(np.zeros(v.shape, "float32"), v) for v in model.trainable_variables])
    values = {v.path: np.asarray(v) for v in model.trainable_variables}
    np.testing.assert_allclose(values["fc/kernel"], 1 - 0.5 * 0.1)  # decoupled: w -= lr * wd * w
    for path in ("fc/bias", "bn/gamma", "bn/beta"):
        np.testing.assert_allclose(values[path], 1.0, err_msg=path)


def test_label_smoothing_loss_by_hand():
    probabilities = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], "float32")
    labels = np.array([0, 2])
    loss = SparseCategoricalCrossentropyWithSmoothing(0.3)(labels, probabilities)
    targets = np.array([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])  # (1 - 0.3) * one_hot + 0.3 / 3
    expected = np.mean(-(targets * np.log(probabilities)).sum(axis=1))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    restored = SparseCategoricalCrossentropyWithSmoothing.from_config(
        SparseCategoricalCrossentropyWithSmoothing(0.3).get_config()
    )
    assert float(restored(labels, probabilities)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.slow
def test_compile_model_with_smoothing_ema_and_momentum():
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(3, activation="softmax", name="main")(inputs)
    model = keras.Model(inputs, outputs)
    compile_model(model, optimizer="momentum", learning_rate=0.1, label_smoothing=0.1, use_ema=True)
    assert isinstance(model.optimizer, keras.optimizers.SGD) and not model.optimizer.nesterov
    assert model.optimizer.momentum == 0.9
    assert isinstance(model.loss, SparseCategoricalCrossentropyWithSmoothing)
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    y = np.arange(32) % 3
    before = [np.asarray(v) for v in model.trainable_variables]
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    # fit ends by replacing the weights with their moving average (Keras' use_ema).
    averages = model.optimizer._model_variables_moving_average
    for variable, average, start in zip(model.trainable_variables, averages, before):
        np.testing.assert_allclose(np.asarray(variable), np.asarray(average), rtol=1e-6)
        assert not np.allclose(np.asarray(variable), start)
    with pytest.raises(ValueError, match=r"`label_smoothing` must be a number in \[0, 1\)"):
        compile_model(model, label_smoothing=1.5)


def test_describe_recipe_names_the_settings():
    text = recipes.describe_recipe(TrainConfig(recipe="cifar").validate().resolved())
    assert text.startswith("cifar: sgd, learning rate 0.1 (cosine, 1 warm-up epoch(s)), 30 epochs, batch 128")
    assert "weight decay 0.005 (not on BN or biases)" in text and "augment crop_flip" in text


def test_every_googlenet_variant_gets_a_default_image_size_it_builds_at():
    from keras_ninception.models.googlenet import build_googlenet, min_input_size

    sizes = {}
    for variant in ("paper", "bn", "slim", "cifar"):
        for aux in (True, False):
            config = TrainConfig(variant=variant, aux_classifiers=aux).resolved()
            sizes[variant, aux] = config.image_size
            assert config.image_size >= min_input_size(variant, aux)
    # The digits' 24 px unless the aux heads need more; an explicit size is kept (and refused
    # by the builder when too small).
    assert sizes == {("paper", True): 79, ("paper", False): 24, ("bn", True): 63, ("bn", False): 24,
                     ("slim", True): 49, ("slim", False): 24, ("cifar", True): 24, ("cifar", False): 24}
    assert TrainConfig(variant="paper", image_size=40).resolved().image_size == 40
    assert TrainConfig(dataset="/data/photos", variant="paper").resolved().image_size == 79
    assert TrainConfig(model="nin").resolved().image_size == 24
    build_googlenet(input_shape=(63, 63, 3), variant="bn", num_classes=10, width_multiplier=0.125)
