"""Prepared folders: an image folder written once as TFDS record shards, and read back.

`prepare_image_folder(folder, out)` (`ninception prepare FOLDER --out DIR`) reads a
`root/<split>/<class>/*.jpg|jpeg|png` folder (the layout `load_dataset` reads) and writes
it with TFDS' own writer (`tfds.dataset_builders.store_as_tfds_dataset`): the encoded
files as they are (no decoding, no re-encoding) in the features

    {"image": tfds.features.Image(), "label": tfds.features.ClassLabel(names),
     "image/filename": tfds.features.Text()}

as TFRecord shards `image_folder-<split>.tfrecord-NNNNN-of-MMMMM`, in TFDS' shuffled order,
with TFDS' metadata (`dataset_info.json`: split sizes, shard lengths; `features.json`;
`label.labels.txt`). The folder is laid out:

    DIR/prepared.json                    the index: classes, counts per split and class,
                                         where the validation split came from
    DIR/image_folder/1.0.0/...           TFDS' dataset folder (`tfds.builder_from_directory`)

A folder without a validation split gets one, carved as `load_dataset` carves it: the first
`ceil(validation_fraction * n)` training files in a fixed seeded order. So a prepared folder
has fixed `train`, `validation` and (when the source has one) `test` splits.

`read_prepared_folder(DIR)` reads each split's shards with interleaved parallel reads
(`tf.data.Dataset.interleave` over `TFRecordDataset`s, `num_parallel_calls=AUTOTUNE`), the
training shards in a new seeded order each epoch. The splits start from the list of shard
files, so a multi-worker run can give each worker its own files (`AutoShardPolicy.FILE`).
"""

import json
import math
import os
import random
import shutil
import tempfile
import warnings

import tensorflow as tf
import tensorflow_datasets as tfds

from keras_ninception.data import files as files_lib
from keras_ninception.data import sources
from keras_ninception.options import CHECK_IMAGES, ON_BAD_IMAGE

PREPARED_INDEX = "prepared.json"
PREPARED_FORMAT = "keras_ninception prepared image folder"
TFDS_NAME = "image_folder"
TFDS_VERSION = "1.0.0"
# Seed of the order the validation split is carved in (the same for every preparation).
CARVE_SEED = 0
# Shards per split: enough files that several workers each get some, none over ~128 MB.
MIN_SHARDS = 16
SHARD_BYTES = 128 * 2**20
# Shards a training split reads at once.
INTERLEAVE_CYCLE = 16


def is_prepared_folder(path):
    """Whether `path` is a folder written by `prepare_image_folder` (holds `prepared.json`)."""
    return os.path.isfile(os.path.join(path, PREPARED_INDEX))


def default_num_shards(num_bytes):
    """`max(MIN_SHARDS, ceil(num_bytes / SHARD_BYTES))`: 16 for small folders, ~1,100 for
    ImageNet's 140 GB of training JPEGs."""
    return max(MIN_SHARDS, math.ceil(num_bytes / SHARD_BYTES))


def _check_out(out):
    out = os.path.abspath(os.path.expanduser(os.fspath(out)))
    if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise FileExistsError(
            f"The output folder {out!r} exists and is not empty; prepare writes a new "
            "folder. Remove it or pass another --out."
        )
    parent = os.path.dirname(out)
    if not os.path.isdir(parent):
        raise ValueError(f"The parent of the output folder, {parent!r}, does not exist. Received: out={out!r}")
    return out


def prepare_image_folder(
    folder, out, *, validation_fraction=0.1, on_bad_image="error", check_images="header", num_shards=None
):
    """Writes an image folder as TFDS record shards, with an index (see the module docstring).

    The folder is listed and its files checked first, as `load_dataset` lists and checks them
    (`files.list_image_folder`: hidden and OS/tool folders are left out, with a `UserWarning`;
    `files.find_bad_image_files` with `check_images`).
    Everything is written into a temporary folder next to `out` and renamed to `out` at
    the end, so an interrupted run leaves no half-written `out`.

    Args:
        folder: `root/<split>/<class>/*.jpg|jpeg|png`; `train/` required, `validation/`
            or `val/` and `test/` optional.
        out: the new folder (must not exist, or be empty).
        validation_fraction: share of train written as the validation split when the
            folder has none, in (0, 1). Default 0.1.
        on_bad_image: `"error"` (default) or `"skip"`, as in `load_dataset`.
        check_images: `"header"` (default), `"full"` or `"none"`, as in `load_dataset`.
        num_shards: shards per split; None (default) for `default_num_shards` of the
            training files' bytes.

    Returns:
        The index (the dict written to `out/prepared.json`): `class_names`, and per split
        `num_examples`, `num_shards` and `per_class` counts.

    Raises:
        ValueError: a bad argument or folder (as `load_dataset` raises them).
        FileExistsError: `out` exists and is not empty.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(
            "`validation_fraction` must be a number strictly between 0 and 1. "
            f"Received: validation_fraction={validation_fraction!r}"
        )
    if num_shards is not None and (not isinstance(num_shards, int) or num_shards < 1):
        raise ValueError(f"`num_shards` must be None or a positive integer. Received: num_shards={num_shards!r}")
    if on_bad_image not in ON_BAD_IMAGE:
        raise ValueError(f"`on_bad_image` must be one of {ON_BAD_IMAGE}. Received: on_bad_image={on_bad_image!r}")
    if check_images not in CHECK_IMAGES:
        raise ValueError(f"`check_images` must be one of {CHECK_IMAGES}. Received: check_images={check_images!r}")
    root_name = os.fspath(folder)
    root = os.path.expanduser(root_name)
    if not os.path.isdir(root):
        raise ValueError(f"`folder` must be an existing image folder. Received: folder={root_name!r}")
    out = _check_out(out)

    listing = files_lib.list_image_folder(root)
    if listing.ignored:
        warnings.warn(
            f"Ignored in the image folder {root_name!r} (hidden and OS or tool folders and "
            f"files are never splits, classes or images): {sources.describe_ignored(listing.ignored)}.",
            stacklevel=2,
        )
    files = listing.files
    files.setdefault("train", {})
    validation_split = next((name for name in sources.VALIDATION_SPLIT_FOLDERS if name in files), None)
    used = {"train": "train", "validation": validation_split, "test": "test" if "test" in files else None}
    examples = {}
    for split, folder_split in used.items():
        if folder_split is None:
            continue
        examples[split] = [
            (path, class_name) for class_name, paths in files[folder_split].items() for path in paths
        ]
    if not examples["train"]:
        raise ValueError(
            f"The image folder {root_name!r} has no training images: it needs the layout "
            "root/train/<class>/*.jpg|jpeg|png."
        )
    bad = files_lib.find_bad_image_files(
        (path for pairs in examples.values() for path, _ in pairs), check_images
    )
    if bad and on_bad_image == "error":
        raise ValueError(
            f"The image folder {root_name!r} has {len(bad)} unreadable image file(s) (TF's "
            f"decoder cannot read them): {sources.describe_bad_files(bad, root)}. Fix or "
            "remove them, or pass on_bad_image='skip' (--on-bad-image skip) to leave them out."
        )
    if bad:
        warnings.warn(
            f"Skipped {len(bad)} unreadable image file(s) in {root_name!r}: "
            f"{sources.describe_bad_files(bad, root)}.",
            stacklevel=2,
        )
        bad_paths = {path for path, _ in bad}
        examples = {split: [e for e in pairs if e[0] not in bad_paths] for split, pairs in examples.items()}
    class_names = sorted({class_name for pairs in examples.values() for _, class_name in pairs})
    if len({class_name for _, class_name in examples["train"]}) < 2:
        raise ValueError(
            f"The image folder {root_name!r} has training images of fewer than 2 classes: a "
            "classifier needs at least 2, one sub-folder of train/ each."
        )
    if validation_split is None:
        ordered = sorted(examples["train"])
        random.Random(CARVE_SEED).shuffle(ordered)
        num_validation = sources.num_validation_examples(
            len(ordered), validation_fraction, f"The image folder {root_name!r}"
        )
        examples["validation"], examples["train"] = ordered[:num_validation], ordered[num_validation:]
        validation_from = f"carved: {num_validation} of train/ (validation_fraction {validation_fraction})"
    else:
        validation_from = f"{validation_split}/"

    features = tfds.features.FeaturesDict(
        {
            "image": tfds.features.Image(shape=(None, None, 3)),
            "label": tfds.features.ClassLabel(names=class_names),
            "image/filename": tfds.features.Text(),
        }
    )

    def generate(pairs):
        for path, class_name in pairs:
            relative = os.path.relpath(path, root)
            yield relative, {"image": path, "label": class_name, "image/filename": relative}

    if num_shards is None:
        num_shards = default_num_shards(sum(os.path.getsize(path) for path, _ in examples["train"]))

    staging = tempfile.mkdtemp(prefix=os.path.basename(out) + ".tmp-", dir=os.path.dirname(out))
    try:
        # TFDS' DownloadConfig sets one shard count for every split.
        tfds.dataset_builders.store_as_tfds_dataset(
            name=TFDS_NAME,
            version=TFDS_VERSION,
            features=features,
            split_datasets={split: generate(pairs) for split, pairs in examples.items()},
            data_dir=staging,
            download_config=tfds.download.DownloadConfig(num_shards=num_shards),
        )
        index = {
            "format": PREPARED_FORMAT,
            "source": os.path.abspath(root),
            "class_names": class_names,
            "validation_from": validation_from,
            "tfds_dir": os.path.join(TFDS_NAME, TFDS_VERSION),
            "splits": {
                split: {
                    "num_examples": len(pairs),
                    "num_shards": num_shards,
                    "per_class": {
                        name: count
                        for name in class_names
                        if (count := sum(1 for _, c in pairs if c == name))
                    },
                }
                for split, pairs in examples.items()
            },
        }
        shutil.rmtree(os.path.join(staging, "downloads"), ignore_errors=True)  # TFDS' empty cache
        with open(os.path.join(staging, PREPARED_INDEX), "w") as file:
            json.dump(index, file, indent=2)
        if os.path.isdir(out):
            os.rmdir(out)  # empty: checked above
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return index


def read_index(path):
    """The index `prepared.json` of a prepared folder, as a dict.

    Raises:
        ValueError: the file is not a prepared folder's index.
    """
    with open(os.path.join(path, PREPARED_INDEX)) as file:
        index = json.load(file)
    if not isinstance(index, dict) or index.get("format") != PREPARED_FORMAT:
        raise ValueError(f"{os.path.join(path, PREPARED_INDEX)!r} is not the index of a prepared folder.")
    return index


def split_files(path, index, split):
    """The shard files of one split, sorted, and its TFDS features (`tfds.builder_from_directory`)."""
    builder = tfds.builder_from_directory(os.path.join(path, index["tfds_dir"]))
    data_dir = os.fspath(builder.data_dir)
    files = sorted(os.path.join(data_dir, name) for name in builder.info.splits[split].filenames)
    return files, builder.info.features


def read_prepared_folder(path, *, channels, seed):
    """Reads a prepared folder into decoded splits.

    Each split is `interleave` over its shard files (`TFRecordDataset`s,
    `num_parallel_calls=AUTOTUNE`, `cycle_length` up to `INTERLEAVE_CYCLE`); the training
    files are shuffled each epoch with `seed`. Records are parsed with the TFDS features
    (`deserialize_example`, the image kept encoded) and the images decoded with
    `tf.io.decode_image(channels=channels)`, as for an image folder. No cardinality is
    declared: under multi-worker file sharding a worker reads only its files.

    Args:
        path: the prepared folder.
        channels: 1 or 3, or `None` for 3.
        seed: seed of the order of the training files.

    Returns:
        A `sources.SourceSplits` with `file_sharded=True` and default augmentation
        `"crop_flip"`.
    """
    channels = 3 if channels is None else channels
    index = read_index(path)

    def read_split(split):
        files, features = split_files(path, index, split)
        dataset = tf.data.Dataset.from_tensor_slices(files)
        if split == "train":
            dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
        dataset = dataset.interleave(
            tf.data.TFRecordDataset,
            cycle_length=min(len(files), INTERLEAVE_CYCLE),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

        def decode(record):
            example = features.deserialize_example(record, decoders={"image": tfds.decode.SkipDecoding()})
            image = tf.io.decode_image(example["image"], channels=channels, expand_animations=False)
            return image, tf.cast(example["label"], tf.int32)

        return dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)

    splits = index["splits"]
    return sources.SourceSplits(
        train=read_split("train"),
        validation=read_split("validation"),
        test=read_split("test") if "test" in splits else None,
        class_names=tuple(index["class_names"]),
        channels=channels,
        num_examples={split: splits[split]["num_examples"] if split in splits else 0
                      for split in ("train", "validation", "test")},
        default_augment="crop_flip",
        source=os.fspath(path),
        file_sharded=True,
        available_splits=tuple(split for split in ("train", "validation", "test") if split in splits),
    )
