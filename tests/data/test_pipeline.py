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
    assert pipeline.build_augmenter("none", 3) is None


def test_mirrored_indices_repeat_the_edge_pixel():
    # 4 pixels a b c d: shifted by -2 -> b a a b; by +3 -> d d c b (edge repeated).
    np.testing.assert_array_equal(pipeline.mirrored_indices(4, tf.constant(-2)), [1, 0, 0, 1])
    np.testing.assert_array_equal(pipeline.mirrored_indices(4, tf.constant(3)), [3, 3, 2, 1])
    np.testing.assert_array_equal(pipeline.mirrored_indices(4, tf.constant(0)), [0, 1, 2, 3])


def candidates(image, mode, fill):
    """Every output a shift of up to round(side / 8) (and a flip) may give, as np.pad windows."""
    h, w = image.shape[:2]
    ph, pw = round(h / 8), round(w / 8)
    padded = np.pad(image, [(ph, ph), (pw, pw), (0, 0)], mode=fill)
    out = []
    for dy in range(2 * ph + 1):
        for dx in range(2 * pw + 1):
            window = padded[dy:dy + h, dx:dx + w]
            out.append(window)
            if mode == "crop_flip":
                out.append(window[:, ::-1])
    return out


@pytest.mark.parametrize(
    "mode, channels, fill", [("crop", 1, "constant"), ("crop", 3, "symmetric"), ("crop_flip", 3, "symmetric")]
)
def test_augmenter_shifts_whole_pixels_with_the_right_fill(mode, channels, fill):
    """Each output is one window of the image padded by 2 px (16 / 8): black or mirrored."""
    image = np.random.default_rng(0).integers(1, 256, (16, 16, channels)).astype(np.uint8)
    augment = pipeline.build_augmenter(mode, channels)
    allowed = candidates(image, mode, fill)
    seen = set()
    for i in range(60):
        out = augment(tf.constant(image), tf.constant([i, 7], tf.int64)).numpy()
        assert out.dtype == np.uint8 and out.shape == image.shape
        matches = [k for k, c in enumerate(allowed) if np.array_equal(out, c)]
        assert matches, f"seed {i}: not a shifted window of the padded image"
        seen.add(matches[0])
    # 25 shifts (x2 with flips): 60 draws reach many of them.
    assert len(seen) >= 12
    if mode == "crop_flip":
        assert any(k % 2 for k in seen) and any(k % 2 == 0 for k in seen)


def test_augment_dataset_is_seeded_parallel_and_varies_by_epoch():
    images = np.random.default_rng(0).integers(0, 256, (6, 16, 16, 3)).astype(np.uint8)
    dataset = tf.data.Dataset.from_tensor_slices((images, np.arange(6, dtype=np.int32)))
    augment = pipeline.build_augmenter("crop_flip", 3)

    def epochs(seed):
        tf.random.set_seed(0)
        augmented = pipeline.augment_dataset(dataset, augment, seed)
        return [np.stack([x for x, _ in augmented.as_numpy_iterator()]) for _ in range(2)]

    first, again, other = epochs(1), epochs(1), epochs(2)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[1])  # a new draw each epoch
    assert not np.array_equal(first[0], other[0])
    labels = [y for _, y in pipeline.augment_dataset(dataset, augment, 1).as_numpy_iterator()]
    assert labels == list(range(6))  # order kept


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
