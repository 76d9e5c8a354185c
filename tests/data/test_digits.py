"""load_dataset("digits"): the embedded UCI handwritten digits."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from sklearn import datasets as sklearn_datasets
from sklearn import model_selection

from keras_ninception.data import EMBEDDED_DATASETS
from keras_ninception.data import DatasetSplits
from keras_ninception.data import load_dataset
from keras_ninception.data import sources

HEADS = ("main", "aux1", "aux2")


def test_embedded_datasets():
    assert EMBEDDED_DATASETS == ("digits",)


def test_default_augmentation_has_no_flips():
    """A mirrored digit is another symbol: digits only get random shifts."""
    assert (
        sources.read_digits(channels=None, validation_fraction=0.1).default_augment
        == "crop"
    )


def test_split_sizes_and_class_names():
    splits = load_dataset("digits")
    assert isinstance(splits, DatasetSplits)
    # Stratified 20% test: ceil(0.2 * 1797) = 360; then ceil(0.1 * 1437) = 144.
    assert splits.num_examples == {"train": 1293, "validation": 144, "test": 360}
    assert sum(splits.num_examples.values()) == 1797
    assert splits.class_names == tuple(str(digit) for digit in range(10))
    assert splits.num_classes == 10
    assert splits.input_shape == (32, 32, 1)
    assert splits.source == "digits"


@pytest.mark.parametrize("output_names", [None, "main"])
def test_element_spec_single_output(output_names):
    splits = load_dataset("digits", output_names=output_names)
    for dataset in (splits.train, splits.validation, splits.test):
        assert dataset.element_spec == (
            tf.TensorSpec((None, 32, 32, 1), tf.float32),
            tf.TensorSpec((None,), tf.int32),
        )


def test_element_spec_three_heads():
    splits = load_dataset("digits", output_names=HEADS)
    label_spec = {name: tf.TensorSpec((None,), tf.int32) for name in HEADS}
    for dataset in (splits.train, splits.validation, splits.test):
        assert dataset.element_spec == (
            tf.TensorSpec((None, 32, 32, 1), tf.float32),
            label_spec,
        )
    images, labels = next(iter(splits.train))
    assert images.shape == (64, 32, 32, 1)
    assert set(labels) == set(HEADS)
    np.testing.assert_array_equal(labels["main"], labels["aux1"])
    np.testing.assert_array_equal(labels["main"], labels["aux2"])


def test_values_within_minus_one_one_and_all_examples_seen():
    splits = load_dataset("digits", batch_size=256)
    for split in ("train", "validation", "test"):
        dataset = getattr(splits, split)
        seen = 0
        for images, labels in dataset:
            assert float(tf.reduce_min(images)) >= -1.0
            assert float(tf.reduce_max(images)) <= 1.0
            assert labels.dtype == tf.int32
            assert set(labels.numpy()) <= set(range(10))
            seen += int(labels.shape[0])
        assert seen == splits.num_examples[split]


def test_test_images_equal_the_scaled_sklearn_digits():
    """At 8x8 there is no resize: pixels are round(v * 255 / 16) / 127.5 - 1."""
    digits = sklearn_datasets.load_digits()
    _, x_test, _, y_test = model_selection.train_test_split(
        digits.images,
        digits.target,
        test_size=0.2,
        stratify=digits.target,
        random_state=0,
    )
    expected = np.round(x_test * 255.0 / 16.0)[..., np.newaxis] / 127.5 - 1.0
    splits = load_dataset("digits", image_size=8, batch_size=1000)
    images, labels = next(iter(splits.test))
    np.testing.assert_array_equal(labels, y_test)
    np.testing.assert_allclose(images, expected, atol=1e-6)
    # A stroke at full ink (16) is 255, i.e. 1.0; the background 0 is -1.0.
    assert float(tf.reduce_max(images)) == 1.0
    assert float(tf.reduce_min(images)) == -1.0


def test_split_does_not_depend_on_seed():
    first = load_dataset("digits", seed=0, batch_size=512)
    second = load_dataset("digits", seed=123, batch_size=512)
    for split in ("validation", "test"):
        for (x1, y1), (x2, y2) in zip(
            getattr(first, split), getattr(second, split), strict=True
        ):
            np.testing.assert_array_equal(y1, y2)
            np.testing.assert_array_equal(x1, x2)

    def label_counts(splits):
        labels = np.concatenate([y.numpy() for _, y in splits.train])
        return np.bincount(labels, minlength=10)

    np.testing.assert_array_equal(label_counts(first), label_counts(second))


def test_epochs_are_finite_and_reshuffled():
    splits = load_dataset("digits")
    epochs = [[labels.numpy() for _, labels in splits.train] for _ in range(2)]
    # ceil(1293 / 64) = 21 batches, the last one of 1293 - 20 * 64 = 13.
    assert [len(epoch) for epoch in epochs] == [21, 21]
    assert len(splits.train) == 21
    assert epochs[0][-1].shape == (13,)
    first, second = (np.concatenate(epoch) for epoch in epochs)
    assert not np.array_equal(first, second)
    np.testing.assert_array_equal(np.sort(first), np.sort(second))


def test_validation_is_not_shuffled_or_augmented():
    splits = load_dataset("digits", augment="crop")
    first = [images.numpy() for images, _ in splits.validation]
    second = [images.numpy() for images, _ in splits.validation]
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


def test_three_channels_and_image_size_pair():
    splits = load_dataset("digits", channels=3, image_size=(24, 16))
    assert splits.input_shape == (24, 16, 3)
    images, _ = next(iter(splits.validation))
    assert images.shape[1:] == (24, 16, 3)
    np.testing.assert_array_equal(images[..., 0], images[..., 2])


def test_channels_first():
    previous = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        splits = load_dataset("digits", output_names=HEADS)
    finally:
        keras.config.set_image_data_format(previous)
    assert splits.input_shape == (1, 32, 32)
    assert splits.train.element_spec[0] == tf.TensorSpec((None, 1, 32, 32), tf.float32)
    images, _ = next(iter(splits.train))
    assert images.shape == (64, 1, 32, 32)


def test_no_cache_and_file_cache(tmp_path):
    uncached = load_dataset("digits", cache=False, augment="none")
    prefix = tmp_path / "digits_cache"
    cached = load_dataset("digits", cache=str(prefix), augment="none")
    for (x1, y1), (x2, y2) in zip(uncached.test, cached.test, strict=True):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert any(path.name.startswith("digits_cache-test") for path in tmp_path.iterdir())


@pytest.mark.slow
def test_label_dicts_fit_a_three_output_model():
    """The dict labels match a Keras model whose outputs are named per head."""
    splits = load_dataset("digits", image_size=8, output_names=HEADS)
    inputs = keras.Input(splits.input_shape)
    features = keras.layers.Flatten(name="flatten")(inputs)
    outputs = {
        name: keras.layers.Dense(splits.num_classes, name=name)(features)
        for name in HEADS
    }
    model = keras.Model(inputs, outputs, name="tiny_three_heads")
    model.compile(
        optimizer="sgd",
        loss={
            name: keras.losses.SparseCategoricalCrossentropy(from_logits=True)
            for name in HEADS
        },
    )
    history = model.fit(
        splits.train.take(2),
        validation_data=splits.validation.take(1),
        epochs=1,
        shuffle=False,  # The dataset shuffles itself.
        verbose=0,
    )
    assert {"main_loss", "aux1_loss", "aux2_loss", "val_main_loss"} <= set(
        history.history
    )
