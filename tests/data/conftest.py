"""Fixtures of the data tests: image folders and prepared TFDS metadata."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tests.data.images import CLASS_VALUES
from tests.data.images import write_image


@pytest.fixture
def image_folder(tmp_path):
    """Builds `root/<split>/<class>/` of constant-colour 30x40 images.

    Returns a function `make(splits={"train": 10}, extra_gray=True)` that
    writes, for each split, that many RGB images per class of
    `CLASS_VALUES` (PNG and JPEG alternating), plus one grayscale PNG in
    `train/dog/` when `extra_gray`, and returns the root path.
    """

    def make(splits=None, extra_gray=True, root_name="images"):
        root = tmp_path / root_name
        for split, per_class in (splits or {"train": 10}).items():
            for class_name, value in CLASS_VALUES.items():
                for index in range(per_class):
                    image_format = "png" if index % 2 == 0 else "jpg"
                    write_image(
                        str(root / split / class_name / f"{index:03d}.{image_format}"),
                        np.full((30, 40, 3), value, np.uint8),
                        "png" if image_format == "png" else "jpeg",
                    )
        if extra_gray:
            write_image(
                str(root / "train" / "dog" / "gray.png"),
                np.full((30, 40, 1), CLASS_VALUES["dog"], np.uint8),
            )
        return str(root)

    return make


@pytest.fixture
def prepared_tfds_metadata(tmp_path):
    """Writes the metadata of a prepared TFDS dataset into a data_dir.

    `make(name, {"train": 24, "test": 24}, class_names=None)` writes
    `dataset_info.json` and `features.json` with those split sizes into
    `tmp_path/tfds/<name>/<version>`,
    so that `builder.is_prepared()` holds, and returns that data_dir. Use it
    with `tfds.testing.mock_data(num_examples=..., data_dir=data_dir)`, which
    then serves random examples of the dataset's real features (and the
    given `num_examples` for every split or slice). `class_names` sets the
    label names that such a dataset reads from its downloaded files.
    """

    def make(name, split_sizes, class_names=None):
        data_dir = str(tmp_path / "tfds")
        builder = tfds.builder(name, data_dir=data_dir)
        if class_names is not None:
            # Some datasets (cifar10) take their names from the download.
            builder.info.features["label"].names = list(class_names)
        builder.info.set_splits(
            tfds.core.SplitDict(
                [
                    tfds.core.SplitInfo(name=split, shard_lengths=[size], num_bytes=0)
                    for split, size in split_sizes.items()
                ]
            )
        )
        builder.data_path.mkdir(parents=True)
        builder.info.write_to_directory(builder.data_path)
        return data_dir

    return make
