"""Damaged files: decided by TF's decoder, before training (check_images) or in the pipeline."""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_ninception.data import files
from keras_ninception.data import load_dataset
from tests.data.images import write_image

# Bytes after a JPEG's end-of-image marker that TF's decoder ignores: padding, and the kind of
# data phones append (a Samsung-style trailer, an MP4 "motion photo" box).
TRAILERS = {
    "63 zero bytes": bytes(63),
    "phone trailer": b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20 + b"SEFT",
}


def noise(seed, shape=(48, 64, 3)):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


@pytest.fixture
def noisy_folder(tmp_path):
    """`train/{cat,dog}/` with 6 noisy 48x64 JPEGs each (about 6 KB: a cut at half their
    size falls inside the image data, after the header)."""
    root = tmp_path / "images"
    for c, class_name in enumerate(("cat", "dog")):
        for index in range(6):
            write_image(str(root / "train" / class_name / f"{index}.jpg"), noise(10 * c + index), "jpeg")
    return root


def cut(path, keep=0.5):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])


def decoded_pixels(splits):
    return np.concatenate([x.numpy() for split in (splits.train, splits.validation) for x, _ in split])


@pytest.mark.parametrize("mode", ["header", "full"])
@pytest.mark.parametrize("trailer", list(TRAILERS))
def test_bytes_after_the_end_of_a_jpeg_are_accepted(noisy_folder, mode, trailer):
    path = noisy_folder / "train" / "cat" / "0.jpg"
    original = tf.io.decode_jpeg(path.read_bytes()).numpy()
    path.write_bytes(path.read_bytes() + TRAILERS[trailer])
    assert files.image_file_problem(str(path), mode) is None
    np.testing.assert_array_equal(files.read_image_file(str(path), 3), original)
    splits = load_dataset(str(noisy_folder), image_size=(48, 64), augment="none", check_images=mode)
    assert splits.num_examples["train"] + splits.num_examples["validation"] == 12
    # The file's pixels reach the pipeline unchanged (no resize at 48x64).
    pixels = np.round((decoded_pixels(splits) + 1.0) * 127.5).astype(np.uint8)
    assert any(np.array_equal(image, original) for image in pixels)


def test_bytes_after_the_end_of_a_png_are_accepted(tmp_path):
    path = tmp_path / "a.png"
    write_image(str(path), noise(0))
    path.write_bytes(path.read_bytes() + bytes(63))
    for mode in ("header", "full"):
        assert files.image_file_problem(str(path), mode) is None
    np.testing.assert_array_equal(files.read_image_file(str(path), 3), noise(0))


def test_a_jpeg_cut_in_its_image_data_is_refused_by_a_full_check(noisy_folder):
    cut(noisy_folder / "train" / "cat" / "1.jpg")
    with pytest.raises(ValueError, match=r"1 unreadable image file\(s\).*train/cat/1.jpg \(damaged or truncated: "):
        load_dataset(str(noisy_folder), image_size=8, check_images="full")
    with pytest.warns(UserWarning, match=r"Skipped 1 unreadable image file\(s\).*train/cat/1.jpg"):
        splits = load_dataset(str(noisy_folder), image_size=8, check_images="full", on_bad_image="skip")
    assert splits.num_examples["train"] + splits.num_examples["validation"] == 11
    assert sum(int(x.shape[0]) for x, _ in splits.train) == splits.num_examples["train"]


@pytest.mark.parametrize("mode", ["header", "none"])
def test_a_file_that_fails_to_decode_in_the_pipeline_is_named(noisy_folder, mode):
    """`header` passes a JPEG cut after its header, `none` checks nothing: the pipeline's
    error names the file, and `named_decode_error` gives the package's ValueError."""
    bad = noisy_folder / "train" / "dog" / "2.jpg"
    cut(bad)
    assert files.image_file_problem(str(bad), "header") is None
    splits = load_dataset(str(noisy_folder), image_size=8, augment="none", check_images=mode, batch_size=4)
    with pytest.raises(tf.errors.InvalidArgumentError, match=files.DECODE_ERROR_MARKER) as info:
        for split in (splits.train, splits.validation):
            for _ in split:
                pass
    assert str(bad) in info.value.message
    error = files.named_decode_error(info.value)
    assert isinstance(error, ValueError)
    assert str(error).startswith(f"Cannot read or decode the image file {bad} (damaged or truncated: ")
    assert "check_images='full'" in str(error)
    assert files.named_decode_error(ValueError("something else")) is None


@pytest.mark.parametrize("position", [0, 5, 11])
def test_the_pipeline_names_the_first_middle_and_last_file(tmp_path, position):
    paths = []
    for index in range(12):
        path = str(tmp_path / f"{index}.jpg")
        write_image(path, noise(index, (16, 16, 3)), "jpeg")
        paths.append(path)
    open(paths[position], "wb").write(b"not an image")
    dataset = files.decode_image_files(paths, [index % 2 for index in range(12)], 3)
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        list(dataset)
    assert str(files.named_decode_error(info.value)).startswith(
        f"Cannot read or decode the image file {paths[position]} ({files.NOT_AN_IMAGE})"
    )
    # Good files: every example, in order, with its label.
    good = files.decode_image_files(paths[:position], list(range(position)), 3)
    assert [int(label) for _, label in good] == list(range(position))


def test_a_png_cut_in_its_data_is_refused_by_the_header_check(tmp_path):
    """TF has no header-only PNG reader: `header` decodes PNGs in full."""
    path = tmp_path / "a.png"
    write_image(str(path), noise(0))
    cut(path)
    assert files.image_file_problem(str(path), "header").startswith("damaged or truncated: ")


def test_the_parallel_scan_finds_what_the_file_by_file_check_finds(tmp_path):
    paths = []
    for index in range(40):
        path = tmp_path / f"{index:02d}.jpg"
        write_image(str(path), noise(index, (32, 32, 3)), "jpeg" if index % 3 else "png")
        paths.append(str(path))
    cut(paths[3])  # a PNG: fails both modes
    cut(paths[7])  # a JPEG cut in its data: fails "full" only
    open(paths[20], "wb").close()
    open(paths[31], "w").write("text")
    os.remove(paths[33])
    os.mkdir(paths[33])
    for mode in ("header", "full"):
        expected = [(p, files.image_file_problem(p, mode)) for p in paths if files.image_file_problem(p, mode)]
        assert files.find_bad_image_files(paths, mode) == expected
    assert [p for p, _ in files.find_bad_image_files(paths, "full")] == [paths[i] for i in (3, 7, 20, 31, 33)]
    assert [p for p, _ in files.find_bad_image_files(paths, "header")] == [paths[i] for i in (3, 20, 31, 33)]
    assert files.find_bad_image_files(paths, "none") == []


def test_directory_named_like_an_image_is_a_bad_file(noisy_folder):
    os.makedirs(noisy_folder / "train" / "cat" / "x.jpg")
    with pytest.raises(ValueError, match=r"1 unreadable image file\(s\).*train/cat/x.jpg \(a directory\)"):
        load_dataset(str(noisy_folder), image_size=8)
    with pytest.warns(UserWarning, match=r"Skipped 1 .*train/cat/x.jpg \(a directory\)"):
        splits = load_dataset(str(noisy_folder), image_size=8, on_bad_image="skip")
    assert splits.num_examples["train"] + splits.num_examples["validation"] == 12


def test_check_images_is_validated(noisy_folder):
    with pytest.raises(ValueError, match=r"`check_images` must be one of \('full', 'header', 'none'\). "
                       r"Received: check_images='fast'"):
        load_dataset(str(noisy_folder), check_images="fast")


@pytest.mark.parametrize("split", ["val", "test"])
def test_empty_split_folder_is_an_error(image_folder, split):
    root = image_folder()
    os.makedirs(os.path.join(root, split, "cat"))
    with pytest.raises(ValueError, match=rf"{split}/ split with no readable images"):
        load_dataset(root, image_size=8)
