"""The tf.data stages of keras_ninception.data.pipeline, on small inputs."""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_ninception.data import AUGMENT_MODES
from keras_ninception.data import pipeline


def test_augment_modes():
    assert AUGMENT_MODES == ("none", "crop", "crop_flip", "inception")


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


def center_of_mass(image):
    """(row, column) of the brightness centre of a (h, w, 1) image."""
    weights = image[..., 0] / image.sum()
    rows, cols = np.indices(weights.shape)
    return float((rows * weights).sum()), float((cols * weights).sum())


@pytest.mark.parametrize("mode", ["crop", "crop_flip"])
def test_augmenter_translates_by_up_to_an_eighth_sub_pixel(mode):
    """A bright 2x2 square at rows 10-11, columns 4-5 of a 32x32 image moves by <= 4 px."""
    image = np.zeros((32, 32, 1), np.uint8)
    image[10:12, 4:6] = 255
    augment = pipeline.build_augmenter(mode, 1)
    row_shifts, col_shifts, mirrored = [], [], 0
    for i in range(40):
        out = augment(tf.constant(image), tf.constant([i, 3], tf.int64)).numpy()
        assert out.dtype == np.float32 and out.shape == image.shape
        assert out.min() >= 0.0 and out.max() <= 255.0
        row, col = center_of_mass(out)
        if col > 15.5:  # mirrored: the square is now at columns 26-27 (centre 26.5)
            mirrored += 1
            col = 31 - col
        row_shifts.append(row - 10.5)
        col_shifts.append(col - 4.5)
    assert max(map(abs, row_shifts + col_shifts)) <= 4.0 + 1e-4
    # Uniform and sub-pixel: shifts both ways, most of them not whole pixels.
    assert min(row_shifts) < -1 and max(row_shifts) > 1 and min(col_shifts) < -1 and max(col_shifts) > 1
    assert sum(abs(s - round(s)) > 0.05 for s in row_shifts) > 20
    assert (mirrored > 5) if mode == "crop_flip" else (mirrored == 0)


def test_fill_black_for_gray_and_mirrored_for_rgb():
    """A shift uncovers a border: black for digits, mirrored for photos."""
    augment_gray = pipeline.build_augmenter("crop", 1)
    augment_rgb = pipeline.build_augmenter("crop_flip", 3)
    white_gray = tf.fill((16, 16, 1), tf.constant(255, tf.uint8))
    white_rgb = tf.fill((16, 16, 3), tf.constant(255, tf.uint8))
    gray = [augment_gray(white_gray, tf.constant([i, 0])).numpy() for i in range(8)]
    rgb = [augment_rgb(white_rgb, tf.constant([i, 0])).numpy() for i in range(8)]
    assert min(x.min() for x in gray) == 0.0  # some image moved: black came in
    np.testing.assert_allclose(np.stack(rgb), 255.0, rtol=1e-6)  # reflecting white stays white


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
        cache="memory",
        seed=0,
    )
    batches = list(built)
    assert [int(y.shape[0]) for _, y in batches] == [4, 4, 2]
    x, y = batches[0]
    np.testing.assert_array_equal(y, [0, 1, 2, 3])
    np.testing.assert_allclose(x[:, 0, 0, 0], np.array([0, 25, 50, 75]) / 127.5 - 1.0)
    assert len(list(built)) == 3


def test_central_crop_by_hand():
    """8x8 image, value 10 * row + column; image_size 4 with eval_crop 0.5 resizes to
    round(4 / 0.5) = 8 (the same size: no resampling) and keeps rows and columns 2..5."""
    image = (10 * np.arange(8)[:, None] + np.arange(8)[None, :]).astype(np.uint8)[..., None]
    cropped = pipeline.resize_and_central_crop(tf.constant(image), (4, 4), 0.5).numpy()
    assert cropped.dtype == np.uint8
    np.testing.assert_array_equal(cropped[..., 0], image[2:6, 2:6, 0])
    # 2x4 at 0.5 -> resized 4x8 = image[::2] bilinear... take a 4-row, 8-column input: 4x8 kept,
    # rows 1..2, columns 2..5.
    np.testing.assert_array_equal(
        pipeline.resize_and_central_crop(tf.constant(image[:4]), (2, 4), 0.5).numpy()[..., 0], image[1:3, 2:6, 0]
    )
    # Slim's 0.875 at 224: resize to 256 (224 / 0.875), crop offset (256 - 224) // 2 = 16.
    assert pipeline.central_crop_size((224, 224), 0.875) == (256, 256)
    # 7 px at 0.875: resized to 8, crop offset (8 - 7) // 2 = 0: rows and columns 0..6.
    np.testing.assert_array_equal(
        pipeline.resize_and_central_crop(tf.constant(image), (7, 7), 0.875).numpy()[..., 0], image[:7, :7, 0]
    )


def test_inception_crop_statistics():
    """Over 400 draws on a 300x400 image: area 8..100% of the image, aspect ratio (width /
    height) 3/4..4/3 (up to the rounding of the box to whole pixels), both ranges covered."""
    shape = tf.constant([300, 400, 3], tf.int32)
    areas, aspects = [], []
    for i in range(400):
        begin, size = pipeline.sample_crop_box(shape, tf.constant([i, 7], tf.int64))
        begin, size = begin.numpy(), size.numpy()
        assert size[2] == -1 and begin[2] == 0  # -1: every channel (tf.slice)
        assert 0 <= begin[0] and begin[0] + size[0] <= 300 and 0 <= begin[1] and begin[1] + size[1] <= 400
        areas.append(size[0] * size[1] / (300 * 400))
        aspects.append(size[1] / size[0])
    areas, aspects = np.array(areas), np.array(aspects)
    assert areas.min() >= 0.08 - 0.005 and areas.max() <= 1.0
    assert aspects.min() >= 3 / 4 - 0.02 and aspects.max() <= 4 / 3 + 0.02
    # Spread: small and large patches, narrow and wide ones.
    assert areas.min() < 0.15 and areas.max() > 0.8
    assert aspects.min() < 0.8 and aspects.max() > 1.25


def test_inception_augmenter_is_deterministic_and_reads_the_original():
    """Same seed, same output; another seed, another; the output is image_size whatever the
    input's size; a flat image stays flat (crop, resize and flip move no value)."""
    augment = pipeline.build_augmenter("inception", 3, image_size=(16, 16))
    image = tf.constant(np.random.default_rng(0).integers(0, 256, (60, 90, 3)), tf.uint8)
    first = augment(image, tf.constant([1, 2], tf.int64)).numpy()
    np.testing.assert_array_equal(first, augment(image, tf.constant([1, 2], tf.int64)).numpy())
    assert not np.array_equal(first, augment(image, tf.constant([1, 3], tf.int64)).numpy())
    assert first.shape == (16, 16, 3) and first.dtype == np.float32
    assert 0.0 <= first.min() and first.max() <= 255.0
    flat = tf.fill((45, 30, 3), tf.constant(200, tf.uint8))
    np.testing.assert_allclose(augment(flat, tf.constant([5, 5], tf.int64)).numpy(), 200.0, atol=1e-3)


def test_inception_augmenter_crops_the_original_at_its_resolution():
    """A 200x200 image whose left half is 0 and right half 255: a crop of the original seen at
    16 px has a sharp edge (a pre-shrunk 16 px image would blur it over 2+ pixels), and
    the crops vary in where the edge falls."""
    image = np.zeros((200, 200, 1), np.uint8)
    image[:, 100:] = 255
    augment = pipeline.build_augmenter("inception", 1, image_size=(16, 16))
    edges = set()
    for i in range(30):
        row = augment(tf.constant(image), tf.constant([i, 0], tf.int64)).numpy()[8, :, 0]
        between = np.sum((row > 5) & (row < 250))
        assert between <= 1, row  # at most one blended pixel on the edge
        if 0 < row.mean() < 255:
            edges.add(int(np.argmax(np.abs(np.diff(row)))))
    assert len(edges) > 4


def test_color_distortion_changes_colors_deterministically():
    augment = pipeline.build_augmenter("inception", 3, image_size=(8, 8), color_distortion=True)
    plain = pipeline.build_augmenter("inception", 3, image_size=(8, 8))
    image = tf.constant(np.random.default_rng(1).integers(0, 256, (20, 20, 3)), tf.uint8)
    seed = tf.constant([4, 2], tf.int64)
    np.testing.assert_array_equal(augment(image, seed).numpy(), augment(image, seed).numpy())
    assert np.abs(augment(image, seed).numpy() - plain(image, seed).numpy()).max() > 5.0
    gray = pipeline.build_augmenter("inception", 1, image_size=(8, 8), color_distortion=True)
    assert gray(tf.fill((20, 20, 1), tf.constant(100, tf.uint8)), seed).shape == (8, 8, 1)


def test_shuffle_buffer_size_bounded_by_bytes():
    # 224 x 224 x 3 = 150,528 bytes an image: 256 MiB hold 1,783.
    assert pipeline.shuffle_buffer_size(1_281_167, 224 * 224 * 3) == 1783
    assert pipeline.shuffle_buffer_size(50_000, 32 * 32 * 3) == pipeline.MAX_SHUFFLE_BUFFER
    assert pipeline.shuffle_buffer_size(500, 32 * 32 * 3) == 500
    assert pipeline.shuffle_buffer_size(500, 10_000, max_shuffle_bytes=25_000) == 2
    assert pipeline.shuffle_buffer_size(500, 10_000, max_shuffle_bytes=0) == 1


def test_cache_dataset_reads_booleans_as_policies_and_never_writes_files_named_after_them(tmp_path, monkeypatch):
    # cache=False once wrote tf.data cache files `False-test.*` into the working directory, and a
    # second pipeline then read the first one's images back from them.
    monkeypatch.chdir(tmp_path)
    for target, expected in ((False, [1, 2, 3]), (True, [1, 2, 3]), ("none", [1, 2, 3]), ("memory", [1, 2, 3])):
        cached = pipeline.cache_dataset(tf.data.Dataset.from_tensor_slices([1, 2, 3]), target, "test")
        assert list(cached.as_numpy_iterator()) == expected
        assert sorted(os.listdir(tmp_path)) == []
    prefix = tmp_path / "files"
    cached = pipeline.cache_dataset(tf.data.Dataset.from_tensor_slices([1, 2, 3]), str(prefix), "test")
    assert list(cached.as_numpy_iterator()) == [1, 2, 3]
    assert any(name.startswith("files-test") for name in os.listdir(tmp_path))
    for bad, match in (("auto", "plan_cache"), (0, "must be one of"), (None, "must be one of"),
                       (str(tmp_path / "missing" / "x"), "does not exist")):
        with pytest.raises(ValueError, match=match):
            pipeline.cache_dataset(tf.data.Dataset.from_tensor_slices([1]), bad, "test")
