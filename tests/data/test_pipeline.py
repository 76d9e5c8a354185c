"""The tf.data stages of keras_ninception.data.pipeline, on small inputs."""

import numpy as np
import pytest
import tensorflow as tf

from keras_ninception.data import AUGMENT_MODES
from keras_ninception.data import pipeline


def test_augment_modes():
    assert AUGMENT_MODES == ("none", "crop", "crop_flip")


def test_resize_image_bilinear_to_uint8():
    # 1x2 image [0, 255] -> 1x4, bilinear with half-pixel centres:
    # 0, 0.25 * 255 = 63.75 -> 64, 0.75 * 255 = 191.25 -> 191, 255.
    image = tf.constant([[[0], [255]]], tf.uint8)
    resized = pipeline.resize_image(image, (1, 4))
    assert resized.dtype == tf.uint8
    np.testing.assert_array_equal(resized[0, :, 0], [0, 64, 191, 255])


def test_scale_images_values_and_layout():
    images = tf.constant([0, 127.5, 255], tf.float32)[
        tf.newaxis, :, tf.newaxis, tf.newaxis
    ]
    scaled = pipeline.scale_images(images, "channels_last")
    assert scaled.dtype == tf.float32
    np.testing.assert_allclose(scaled[0, :, 0, 0], [-1.0, 0.0, 1.0])
    batch = tf.zeros((2, 5, 6, 3), tf.uint8)
    assert pipeline.scale_images(batch, "channels_first").shape == (2, 3, 5, 6)


def test_make_labels():
    labels = tf.constant([3, 1], tf.int32)
    assert pipeline.make_labels(labels, None) is labels
    assert pipeline.make_labels(labels, "main") is labels
    heads = pipeline.make_labels(labels, ("main", "aux1"))
    assert list(heads) == ["main", "aux1"]
    np.testing.assert_array_equal(heads["aux1"], [3, 1])


def test_no_augmenter_for_none():
    assert pipeline.build_augmenter("none", 3, seed=0) is None


@pytest.mark.parametrize("mode,channels", [("crop", 1), ("crop_flip", 3)])
def test_augmenter_is_seeded_and_varies(mode, channels):
    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, channels))
    dataset = tf.data.Dataset.from_tensor_slices(images.astype(np.uint8)).batch(2)

    def augmented(seed):
        augment = pipeline.build_augmenter(mode, channels, seed=seed)
        return [batch.numpy() for batch in dataset.map(augment)]

    first, again = augmented(seed=1), augmented(seed=1)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert first[0].shape == (2, 16, 16, channels)
    assert first[0].min() >= 0.0 and first[0].max() <= 255.0
    assert not np.array_equal(first[0], images[:2])


def test_fill_black_for_gray_and_mirrored_for_rgb():
    """A shift uncovers a border: black for digits, mirrored for photos."""
    white_gray = tf.fill((8, 16, 16, 1), tf.constant(255, tf.uint8))
    white_rgb = tf.fill((8, 16, 16, 3), tf.constant(255, tf.uint8))
    gray = pipeline.build_augmenter("crop", 1, seed=0)(white_gray).numpy()
    rgb = pipeline.build_augmenter("crop", 3, seed=0)(white_rgb).numpy()
    assert gray.min() == 0.0  # Some image moved: constant 0 came in.
    np.testing.assert_allclose(rgb, 255.0)  # Reflecting white stays white.


def test_build_pipeline_order_and_finite_epochs():
    images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1) * 25
    labels = np.arange(10, dtype=np.int32)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    built = pipeline.build_pipeline(
        dataset,
        split="validation",
        num_examples=10,
        image_size=(2, 2),
        batch_size=4,
        training=False,
        augmenter=None,
        output_names=None,
        data_format="channels_last",
        cache=True,
        seed=0,
    )
    batches = list(built)
    assert [int(y.shape[0]) for _, y in batches] == [4, 4, 2]
    x, y = batches[0]
    np.testing.assert_array_equal(y, [0, 1, 2, 3])
    np.testing.assert_allclose(x[:, 0, 0, 0], np.array([0, 25, 50, 75]) / 127.5 - 1.0)
    assert len(list(built)) == 3
