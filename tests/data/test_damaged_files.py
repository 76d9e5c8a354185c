"""Damaged files found before training: truncated images, directories named like images, empty splits."""

import os

import pytest

from keras_ninception.data import load_dataset


def truncate(path, keep=0.5):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])


@pytest.mark.parametrize("name", ["001.jpg", "000.png"])
def test_truncated_image_is_named_in_the_error(image_folder, name):
    root = image_folder()
    truncate(os.path.join(root, "train", "cat", name))
    with pytest.raises(ValueError, match=rf"train/cat/{name} \(truncated\)"):
        load_dataset(root, image_size=8)


def test_truncated_image_is_skipped_on_request(image_folder):
    root = image_folder()
    truncate(os.path.join(root, "train", "cat", "001.jpg"))
    with pytest.warns(UserWarning, match="Skipped 1"):
        splits = load_dataset(root, image_size=8, on_bad_image="skip")
    assert sum(splits.num_examples[s] for s in ("train", "validation")) == 30  # 31 - 1
    assert sum(int(x.shape[0]) for x, _ in splits.train) == splits.num_examples["train"]


def test_directory_named_like_an_image_is_an_error_even_when_skipping(image_folder):
    root = image_folder()
    os.makedirs(os.path.join(root, "train", "cat", "x.jpg"))
    for mode in ("error", "skip"):
        with pytest.raises(ValueError, match=r"directories named like image files: train/cat/x.jpg"):
            load_dataset(root, image_size=8, on_bad_image=mode)


@pytest.mark.parametrize("split", ["val", "test"])
def test_empty_split_folder_is_an_error(image_folder, split):
    root = image_folder()
    os.makedirs(os.path.join(root, split, "cat"))
    with pytest.raises(ValueError, match=rf"{split}/ split with no readable images"):
        load_dataset(root, image_size=8)
