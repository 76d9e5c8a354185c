"""Prepared folders: `prepare_image_folder` writes TFDS record shards, `load_dataset` reads them."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_ninception.data import load_dataset
from keras_ninception.data import prepared
from tests.data.images import CLASS_VALUES


def read_all(dataset):
    """`(pixel value of each image, labels)` over a split (constant-colour images)."""
    values, labels = [], []
    for images, batch_labels in dataset:
        values.extend(np.round((images.numpy().mean(axis=(1, 2, 3)) + 1.0) * 127.5))
        labels.extend(batch_labels.numpy())
    return np.array(values), np.array(labels)


def test_prepare_writes_shards_and_an_index(image_folder, tmp_path):
    root = image_folder({"train": 10, "test": 2})  # 31 training images (one gray), 6 test
    out = tmp_path / "prepared"
    index = prepared.prepare_image_folder(root, out, num_shards=3)
    assert json.loads((out / "prepared.json").read_text()) == index
    assert index["class_names"] == ["cat", "dog", "frog"]
    # No validation/ folder: ceil(0.1 * 31) = 4 carved from train.
    assert index["validation_from"] == "carved: 4 of train/ (validation_fraction 0.1)"
    counts = {split: entry["num_examples"] for split, entry in index["splits"].items()}
    assert counts == {"train": 27, "validation": 4, "test": 6}
    assert sum(index["splits"]["train"]["per_class"].values()) == 27
    assert index["splits"]["test"]["per_class"] == {"cat": 2, "dog": 2, "frog": 2}
    tfds_dir = out / "image_folder" / "1.0.0"
    assert sorted(os.listdir(out)) == ["image_folder", "prepared.json"]
    for split in ("train", "validation", "test"):
        shards = sorted(name for name in os.listdir(tfds_dir) if name.startswith(f"image_folder-{split}.tfrecord"))
        assert shards == [f"image_folder-{split}.tfrecord-{i:05d}-of-00003" for i in range(3)]
    # TFDS reads it as its own dataset, with the same counts and class names.
    builder = tfds.builder_from_directory(str(tfds_dir))
    assert {name: split.num_examples for name, split in builder.info.splits.items()} == counts
    assert builder.info.features["label"].names == ["cat", "dog", "frog"]
    # The files are stored as they are: the same bytes.
    example = next(iter(builder.as_dataset(split="test", decoders={"image": tfds.decode.SkipDecoding()})))
    with open(os.path.join(root, example["image/filename"].numpy().decode()), "rb") as file:
        assert example["image"].numpy() == file.read()


def test_load_prepared_folder_reads_every_image_once(image_folder, tmp_path):
    root = image_folder({"train": 10, "validation": 2})
    out = tmp_path / "prepared"
    index = prepared.prepare_image_folder(root, out, num_shards=4)
    assert index["validation_from"] == "validation/"
    tf.random.set_seed(0)
    splits = load_dataset(str(out), image_size=8, batch_size=5, augment="none")
    # The training files come in a new order each epoch, the same for the same seed.
    first = [read_all(splits.train)[1] for _ in range(2)]
    tf.random.set_seed(0)
    again = read_all(load_dataset(str(out), image_size=8, batch_size=5, augment="none").train)[1]
    np.testing.assert_array_equal(first[0], again)
    assert not np.array_equal(first[0], first[1])
    assert splits.file_sharded
    assert splits.class_names == ("cat", "dog", "frog")
    assert splits.num_examples == {"train": 31, "validation": 6, "test": 0}
    for split, count in (("train", 31), ("validation", 6)):
        values, labels = read_all(getattr(splits, split))
        assert len(labels) == count
        # Every image's colour is its class's (JPEG within 2 levels).
        expected = np.array([CLASS_VALUES[splits.class_names[label]] for label in labels])
        np.testing.assert_allclose(values, expected, atol=2)
    assert np.bincount(first[0]).tolist() == [10, 11, 10]  # and the gray dog


def test_prepare_refuses_a_used_out_and_bad_images(image_folder, tmp_path):
    root = image_folder({"train": 2})
    out = tmp_path / "used"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        prepared.prepare_image_folder(root, out)
    assert os.listdir(out) == ["keep.txt"]
    with open(os.path.join(root, "train", "cat", "bad.jpg"), "wb") as file:
        file.write(b"not an image")
    with pytest.raises(ValueError, match=r"train/cat/bad.jpg \(not an image file"):
        prepared.prepare_image_folder(root, tmp_path / "new")
    assert sorted(os.listdir(tmp_path)) == sorted(["images", "used"])  # nothing left behind
    with pytest.warns(UserWarning, match="Skipped 1 unreadable"):
        index = prepared.prepare_image_folder(root, tmp_path / "new", on_bad_image="skip", num_shards=1)
    assert index["splits"]["train"]["num_examples"] + index["splits"]["validation"]["num_examples"] == 7


def test_default_num_shards():
    assert prepared.default_num_shards(1_000) == 16
    assert prepared.default_num_shards(140 * 10**9) == 1044  # ImageNet's training JPEGs
