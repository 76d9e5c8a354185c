"""Sources: read one of three kinds of source into decoded, unbatched splits.

This is the first stage of `load_dataset` (see `loader.py`). Each reader
returns a `SourceSplits` whose datasets yield `(image, label)` pairs:

- `image`: `uint8` tensor of shape `(height, width, channels)`, values
  0..255, at the source's own size (the pipeline resizes it later);
- `label`: `int32` scalar, the index of the class in `class_names`.

The three readers:

- `read_digits`: the embedded UCI handwritten digits (Alpaydin & Kaynak,
  1998, "Optical Recognition of Handwritten Digits", UCI Machine Learning
  Repository), bundled with scikit-learn as `sklearn.datasets.load_digits`.
- `read_image_folder`: a `root/<split>/<class>/*.jpg|jpeg|png` folder, in the
  layout and order of the TFDS loader `tfds.folder_dataset.ImageFolder`,
  listed, checked and decoded by `files.py`.
- `read_tfds`: a dataset of the TFDS catalog, read with `tfds.builder`.

Nothing here writes to disk or reaches the network, except
`download_and_prepare()` when `read_tfds` is asked to download.
"""

import dataclasses
import math
import os
import random
import socket
import threading
import urllib.parse
import warnings

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_ninception.data import files as files_lib

EMBEDDED_DATASETS = ("digits",)

# Folder names taken as the validation split of an image folder, by priority.
VALIDATION_SPLIT_FOLDERS = ("validation", "val")
# How many bad files an error or warning names before "and N more".
BAD_FILES_NAMED = 5

# Seconds the connectivity probe before a TFDS download waits for the dataset's host.
DOWNLOAD_PROBE_TIMEOUT_S = 3.0

# The UCI digits hold 4x4-block counts 0..16 on an 8x8 grid.
DIGITS_MAX_VALUE = 16
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_RANDOM_STATE = 0


@dataclasses.dataclass(frozen=True)
class SourceSplits:
    """Decoded, unbatched splits of one source, before the pipeline.

    Attributes:
        train: dataset of `(image, label)`: `uint8` `(h, w, channels)` and
            `int32` `()`; `None` when not requested (`splits`).
        validation: same structure as `train`, or `None` when not requested.
        test: same structure, or `None` when the source has no test split or
            it was not requested.
        class_names: names of the classes, indexed by label.
        channels: channel count of every image (1 or 3).
        num_examples: `{"train": n, "validation": n, "test": n}` (0 for a
            split that is absent or not requested).
        default_augment: the augmentation that suits the source
            (`"crop"` or `"crop_flip"`).
        source: `"digits"`, the folder path, or the TFDS name.
        file_sharded: whether the splits read record files that a multi-worker run
            can shard by file (a prepared folder). Default False.
        available_splits: the splits the source has, requested or not, in the order
            `("train", "validation", "test")`; a validation split carved from train counts.
            For the error that names what a dataset offers when a split is missing.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset | None
    class_names: tuple[str, ...]
    channels: int
    num_examples: dict[str, int]
    default_augment: str
    source: str
    file_sharded: bool = False
    available_splits: tuple[str, ...] = ("train", "validation", "test")


def num_validation_examples(num_train, validation_fraction, where):
    """Size of the validation split carved from `num_train` examples.

    `ceil(validation_fraction * num_train)` (the rounding of scikit-learn's
    `train_test_split`), kept within `[1, num_train - 1]`.

    Raises:
        ValueError: if `num_train < 2`, too few to carve both splits.
    """
    if num_train < 2:
        raise ValueError(
            f"{where} has {num_train} training example(s): at least 2 are "
            "needed to carve a validation split out of train. Add images, "
            "or provide a validation split."
        )
    num_validation = math.ceil(validation_fraction * num_train)
    return min(max(num_validation, 1), num_train - 1)


def with_cardinality(dataset, num_examples):
    """Declares the known example count, so that `len(dataset)` works."""
    return dataset.apply(tf.data.experimental.assert_cardinality(num_examples))


def convert_channels(image, from_channels, to_channels):
    """Converts a `uint8` image between 1, 3 and 4 (RGBA) channels.

    RGBA loses its alpha channel; RGB to gray uses `tf.image.rgb_to_grayscale`
    (ITU-R 601 weights), gray to RGB repeats the channel.
    """
    if from_channels == 4:
        image = image[..., :3]
        from_channels = 3
    if from_channels == to_channels:
        return image
    if to_channels == 3:
        return tf.image.grayscale_to_rgb(image)
    return tf.image.rgb_to_grayscale(image)


# ---------------------------------------------------------------------------
# Embedded: the UCI handwritten digits via scikit-learn.
# ---------------------------------------------------------------------------


def read_digits(*, channels, validation_fraction):
    """Reads the embedded UCI handwritten digits.

    1,797 grayscale 8x8 images of the digits 0-9 (Alpaydin & Kaynak, 1998;
    UCI Machine Learning Repository), bundled with scikit-learn as
    `sklearn.datasets.load_digits`, so they load offline. The values 0..16
    are scaled to `uint8` 0..255 (`round(v * 255 / 16)`).

    The split is fixed and independent of any seed: a stratified 20% test
    split (`train_test_split(..., test_size=0.2, stratify=y,
    random_state=0)`: 360 images), then a stratified `validation_fraction`
    of the rest as validation (same call, `random_state=0`).

    Args:
        channels: 1 or 3 (gray repeated into RGB), or `None` for 1.
        validation_fraction: fraction of the non-test images kept for
            validation, in (0, 1).

    Returns:
        A `SourceSplits` with class names `"0"`..`"9"`, 8x8 images and
        default augmentation `"crop"` (no flips: a mirrored digit is another
        symbol).

    Raises:
        ValueError: if `validation_fraction` leaves fewer validation or
            training images than the 10 classes.
    """
    from sklearn import datasets as sklearn_datasets
    from sklearn import model_selection

    digits = sklearn_datasets.load_digits()
    images = np.round(
        digits.images.astype(np.float64) * (255.0 / DIGITS_MAX_VALUE)
    ).astype(np.uint8)[..., np.newaxis]  # N x 8 x 8 x 1
    labels = digits.target.astype(np.int32)
    class_names = tuple(str(name) for name in digits.target_names)

    x_rest, x_test, y_rest, y_test = model_selection.train_test_split(
        images,
        labels,
        test_size=DIGITS_TEST_FRACTION,
        stratify=labels,
        random_state=DIGITS_SPLIT_RANDOM_STATE,
    )
    try:
        x_train, x_val, y_train, y_val = model_selection.train_test_split(
            x_rest,
            y_rest,
            test_size=validation_fraction,
            stratify=y_rest,
            random_state=DIGITS_SPLIT_RANDOM_STATE,
        )
    except ValueError as err:
        raise ValueError(
            f"`validation_fraction`={validation_fraction} cannot split the "
            f"{len(y_rest)} non-test digits into stratified training and "
            f"validation sets: each needs at least {len(class_names)} images, "
            "one per class. Use a fraction between about 0.01 and 0.99. "
            f"Received: validation_fraction={validation_fraction!r}"
        ) from err

    channels = 1 if channels is None else channels

    def make(x, y):
        dataset = tf.data.Dataset.from_tensor_slices((x, y))
        if channels != 1:
            dataset = dataset.map(
                lambda image, label: (convert_channels(image, 1, channels), label)
            )
        return dataset

    return SourceSplits(
        train=make(x_train, y_train),
        validation=make(x_val, y_val),
        test=make(x_test, y_test),
        class_names=class_names,
        channels=channels,
        num_examples={
            "train": len(y_train),
            "validation": len(y_val),
            "test": len(y_test),
        },
        default_augment="crop",
        source="digits",
    )


# ---------------------------------------------------------------------------
# Image folder: root/<split>/<class>/*.jpg|jpeg|png, listed and checked in files.py.
# ---------------------------------------------------------------------------


def describe_bad_files(bad, root):
    """`"train/cat/x.jpg (empty file), ... and 3 more"` for messages."""
    named = ", ".join(
        f"{os.path.relpath(path, root)} ({reason})"
        for path, reason in bad[:BAD_FILES_NAMED]
    )
    more = len(bad) - BAD_FILES_NAMED
    return named + (f", and {more} more" if more > 0 else "")


def describe_ignored(ignored):
    """`"train/.ipynb_checkpoints/, __MACOSX/ and 3 more"` for messages."""
    named = ", ".join(ignored[:BAD_FILES_NAMED])
    more = len(ignored) - BAD_FILES_NAMED
    return named + (f" and {more} more" if more > 0 else "")


def _folder_examples(split_files, split_folder, label_of):
    """ImageFolder's deterministic order of a split: `[(path, label), ...]`.

    Classes sorted, files sorted within a class, then shuffled with
    `random.Random(split_folder)`, as `tfds.folder_dataset.ImageFolder` orders them, so that
    a validation split carved from train holds the same images as with ImageFolder.
    """
    examples = [
        (path, label_of[class_name])
        for class_name in sorted(split_files)
        for path in split_files[class_name]
    ]
    random.Random(split_folder).shuffle(examples)
    return examples


def read_image_folder(
    root,
    *,
    channels,
    validation_fraction,
    on_bad_image,
    check_images="header",
    splits=None,
    class_names=None,
):
    """Reads an image-classification folder `root/<split>/<class>/*.jpg|jpeg|png`.

    The layout and order of TFDS `tfds.folder_dataset.ImageFolder`, listed by
    `files.list_image_folder`: hidden folders and OS/tool debris (`.ipynb_checkpoints`,
    `__MACOSX`, ...) are never splits or classes, and a `UserWarning` says what was ignored.
    Validation is the split `validation` (or else `val`) when present, otherwise the first
    `ceil(validation_fraction * n)` examples of train in ImageFolder's deterministic order
    (it shuffles each split with a fixed seed), so the carve is stable across runs. `test`
    is used when present. Only the folders of the requested `splits` are read: a folder with
    only `test/` serves `splits=("test",)`.

    Before any dataset is built, the files of the read splits are checked in parallel
    (`files.find_bad_image_files` with `check_images`). Files are decoded with
    `files.decode_image` (`tf.io.decode_image(channels=channels, expand_animations=False)`;
    a CMYK JPEG is decoded to RGB, then gray for `channels=1`); a file that fails to decode
    in the pipeline stops it with an error naming the file (`files.named_decode_error`).

    Args:
        root: the folder.
        channels: 1 or 3, or `None` for 3.
        validation_fraction: fraction of train carved as validation when the
            folder has no validation split, in (0, 1).
        on_bad_image: `"error"` to raise on bad files, `"skip"` to leave them
            out with a `UserWarning` giving their count.
        check_images: `"header"` (default), `"full"` or `"none"` (see `files`).
        splits: the splits to read, a subset of `("train", "validation", "test")`, or `None`
            for all three (then `train/` is required, with at least 2 classes).
        class_names: `None` to name the classes by the sorted class folders of the read
            splits, or the names (a model's) that folder names map to; then every class
            folder must be one of them.

    Returns:
        A `SourceSplits` with default augmentation `"crop_flip"`; a split not requested, or
        a `test/` the folder lacks, is `None`.

    Raises:
        ValueError: if a needed `train/` split holds no image, training has fewer than 2
            classes, there are too few training images to carve validation, a class folder
            is not in `class_names`, a read `validation/`, `val/` or `test/` has no readable
            image, or (with `on_bad_image="error"`) files fail the check, named in the
            message.
    """
    root_name = os.fspath(root)
    root = os.path.expanduser(root_name)
    channels = 3 if channels is None else channels
    wanted = ("train", "validation", "test") if splits is None else tuple(splits)

    split_folders = files_lib.split_folders(root)
    validation_folder = next(
        (name for name in VALIDATION_SPLIT_FOLDERS if name in split_folders), None
    )
    # Without a validation folder, validation is carved from train: reading either needs both.
    carve = validation_folder is None and ("validation" in wanted or "train" in wanted)
    needed = []
    if "train" in wanted or carve:
        needed.append("train")
    if "validation" in wanted and validation_folder is not None:
        needed.append(validation_folder)
    if "test" in wanted and "test" in split_folders:
        needed.append("test")
    listing = files_lib.list_image_folder(root, splits=needed)
    files = listing.files
    if listing.ignored:
        warnings.warn(
            f"Ignored in the image folder {root_name!r} (hidden and OS or tool folders and "
            f"files are never splits, classes or images): {describe_ignored(listing.ignored)}.",
            stacklevel=3,
        )

    if "train" in needed and not any(files.get("train", {}).values()):
        found = ", ".join(f"{split}/" for split in split_folders) or "nothing"
        why = "" if "train" in wanted else (
            f" (the validation split is carved from train/ when there is no "
            f"{' or '.join(f'{name}/' for name in VALIDATION_SPLIT_FOLDERS)})"
        )
        raise ValueError(
            f"The image folder {root_name!r} has no training images{why}: it needs "
            "the layout root/train/<class>/*.jpg|jpeg|png (optionally also "
            f"validation/ or val/, and test/). Found splits: {found}."
        )

    if class_names is None:
        class_names = tuple(sorted({name for split in needed for name in files[split]}))
    else:
        class_names = tuple(class_names)
        unknown = [
            f"{split}/{name}/"
            for split in needed
            for name in files[split]
            if name not in class_names
        ]
        if unknown:
            raise ValueError(
                f"The image folder {root_name!r} has class folders that are not classes of "
                f"the model: {describe_ignored(unknown)}. Its classes: "
                f"{', '.join(class_names[:20])}{' ...' if len(class_names) > 20 else ''}. "
                "Rename or remove those folders."
            )
    label_of = {name: index for index, name in enumerate(class_names)}

    bad = files_lib.find_bad_image_files(
        (path for split in needed for paths in files[split].values() for path in paths),
        check_images,
        channels,
    )
    if bad and on_bad_image == "error":
        raise ValueError(
            f"The image folder {root_name!r} has {len(bad)} unreadable image file(s) (TF's "
            f"decoder cannot read them): {describe_bad_files(bad, root)}. Fix or remove "
            "them, or pass "
            "`on_bad_image='skip'` to leave them out."
        )
    if bad:
        warnings.warn(
            f"Skipped {len(bad)} unreadable image file(s) in {root_name!r}: "
            f"{describe_bad_files(bad, root)}.",
            stacklevel=3,
        )
    bad_paths = {path for path, _ in bad}

    examples = {
        split: [
            example
            for example in _folder_examples(files[split], split, label_of)
            if example[0] not in bad_paths
        ]
        for split in needed
    }
    for split in needed:
        if split != "train" and not examples[split]:
            raise ValueError(
                f"The image folder {root_name!r} has a {split}/ split with no readable "
                f"images. Add images to {split}/<class>/ or remove the {split}/ folder."
            )
    if splits is None:
        train_classes = sorted({class_names[label] for _, label in examples["train"]})
        if len(train_classes) < 2:
            raise ValueError(
                f"The image folder {root_name!r} has training images of "
                f"{len(train_classes)} class(es) ({', '.join(train_classes)}): a "
                "classifier needs at least 2 classes, one sub-folder of train/ "
                "each."
            )

    if carve:
        num_validation = num_validation_examples(
            len(examples["train"]), validation_fraction, f"The image folder {root_name!r}"
        )
        examples["validation"] = examples["train"][:num_validation]
        examples["train"] = examples["train"][num_validation:]
    elif validation_folder in examples:
        examples["validation"] = examples.pop(validation_folder)

    def decode(split):
        if split not in wanted or split not in examples:
            return None
        paths, labels = zip(*examples[split])
        return with_cardinality(
            files_lib.decode_image_files(paths, labels, channels), len(paths)
        )

    return SourceSplits(
        train=decode("train"),
        validation=decode("validation"),
        test=decode("test"),
        class_names=class_names,
        channels=channels,
        num_examples={
            split: len(examples[split]) if split in wanted and split in examples else 0
            for split in ("train", "validation", "test")
        },
        default_augment="crop_flip",
        source=root_name,
        available_splits=tuple(
            split
            for split, present in (
                ("train", "train" in split_folders),
                ("validation", validation_folder is not None or "train" in split_folders),
                ("test", "test" in split_folders),
            )
            if present
        ),
    )


# ---------------------------------------------------------------------------
# TFDS catalog: tfds.builder(name).
# ---------------------------------------------------------------------------


def download_addresses(builder):
    """The `(host, port)` pairs a TFDS builder downloads from, first seen first.

    From the URLs of its registered checksums (`builder.url_infos`, the URLs
    `download_and_prepare` fetches); `[]` when TFDS does not list them.
    """
    try:
        urls = list(builder.url_infos or {})
    except Exception:  # A builder without a checksums file: nothing to probe.
        return []
    addresses = []
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.hostname:
            address = (parts.hostname, parts.port or (80 if parts.scheme == "http" else 443))
            if address not in addresses:
                addresses.append(address)
    return addresses


def probe_connection(address, timeout=DOWNLOAD_PROBE_TIMEOUT_S):
    """Opens and closes a TCP connection to `(host, port)` within `timeout` seconds.

    The name lookup has no timeout of its own, so the probe runs in a daemon thread that is
    abandoned after `timeout`.

    Returns:
        `None` when the host accepted the connection, else why not (a string).
    """
    outcome = {}

    def connect():
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome["error"] = None
        except OSError as err:
            outcome["error"] = f"{type(err).__name__}: {err}"

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome.get("error", f"no answer within {timeout:g} s")


def _download_error(name, builder, reason):
    return RuntimeError(
        f"Could not download and prepare the TFDS dataset {name!r} "
        f"into data_dir {os.fspath(builder.data_dir_root)!r}: {reason}. Downloading "
        "needs network access; offline, point data_dir to a prepared copy."
    )


def read_tfds(name, *, channels, validation_fraction, data_dir, download, manual_dir=None):
    """Reads a dataset of the TFDS catalog (`cifar10`, `mnist`, ...).

    Uses `tfds.builder(name, data_dir=data_dir)` and the dataset's supervised
    keys (an `Image` feature and a `ClassLabel`). Validation is the
    `validation` split when the dataset has one, else carved with the TFDS
    split API as `train[:n]` / `train[n:]`, `n = ceil(validation_fraction *
    num_train)` (absolute counts, so any fraction is exact, not only whole
    percents). `test` is used when present.

    Args:
        name: the TFDS name, with optional config and version
            (`"cifar10"`, `"mnist:3.*.*"`).
        channels: 1 or 3, or `None` for the image feature's channel count.
        validation_fraction: fraction of train carved as validation when the
            dataset has no validation split, in (0, 1).
        data_dir: where TFDS keeps prepared datasets; `None` for the TFDS
            default (`~/tensorflow_datasets` or `$TFDS_DATA_DIR`).
        download: whether to call `download_and_prepare()` first (needs
            network; writes into `data_dir`). When the dataset is not prepared yet, a
            TCP connection to the first host it downloads from is tried first
            (`probe_connection`, 3 s), so that offline it fails within seconds rather
            than after minutes of retries.
        manual_dir: with `download`: the folder of the files TFDS cannot download
            itself (`tfds.download.DownloadConfig(manual_dir=...)`), such as
            `imagenet2012`'s `ILSVRC2012_img_train.tar` and `ILSVRC2012_img_val.tar`.

    Returns:
        A `SourceSplits`; default augmentation `"crop"` for grayscale
        datasets (digit-like: no flips), `"crop_flip"` for color ones.

    Raises:
        ValueError: if TFDS does not know `name`, or the dataset is not an
            image-classification dataset.
        FileNotFoundError: if the dataset is not prepared in `data_dir` and
            `download` is False.
        RuntimeError: if the download host cannot be reached or
            `download_and_prepare()` fails (e.g. offline).
    """
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except ValueError as err:  # Includes tfds' DatasetNotFoundError.
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(
            f"Unknown dataset source {name!r}: valid sources are 'digits' "
            "(embedded), the path of an existing image folder "
            "(root/<split>/<class>/*.jpg), or the name of a TFDS dataset "
            f"such as 'cifar10' or 'mnist'. TFDS says: {reason}"
        ) from err

    if download:
        # Offline, TFDS retries each URL for minutes: probe its first host for seconds.
        for host, port in [] if builder.is_prepared() else download_addresses(builder)[:1]:
            reason = probe_connection((host, port))
            if reason is not None:
                raise _download_error(name, builder, f"cannot connect to {host}:{port} ({reason})")
        try:
            if manual_dir is None:
                builder.download_and_prepare()
            else:
                builder.download_and_prepare(
                    download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
                )
        except Exception as err:
            raise _download_error(name, builder, f"{type(err).__name__}: {err}") from err
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"The TFDS dataset {name!r} is not prepared in data_dir "
            f"{os.fspath(builder.data_dir_root)!r} (looked for "
            f"{os.fspath(builder.data_path)!r}). Pass download=True "
            "(CLI: --download; needs network) to download and prepare it, or "
            "point data_dir to a directory holding a prepared copy."
        )

    info = builder.info
    keys = info.supervised_keys
    if (
        not isinstance(keys, tuple)
        or len(keys) != 2
        or not all(isinstance(key, str) for key in keys)
        or not isinstance(info.features[keys[0]], tfds.features.Image)
        or not isinstance(info.features[keys[1]], tfds.features.ClassLabel)
    ):
        raise ValueError(
            f"The TFDS dataset {name!r} is not an image-classification "
            "dataset: its supervised keys must name an Image feature and a "
            f"ClassLabel feature. Its supervised keys: {keys!r}."
        )
    image_key, label_key = keys
    natural_channels = info.features[image_key].shape[-1]
    if natural_channels not in (1, 3, 4):
        raise ValueError(
            f"The TFDS dataset {name!r} has images with {natural_channels} "
            "channels; only 1 (gray), 3 (RGB) and 4 (RGBA) are supported."
        )
    if channels is None:
        channels = 1 if natural_channels == 1 else 3
    class_names = tuple(info.features[label_key].names)

    if "train" not in info.splits:
        raise ValueError(
            f"The TFDS dataset {name!r} has no 'train' split. Its splits: "
            f"{sorted(info.splits)}."
        )
    if "validation" in info.splits:
        train_split, validation_split = "train", "validation"
    else:
        num_validation = num_validation_examples(
            info.splits["train"].num_examples,
            validation_fraction,
            f"The TFDS dataset {name!r}",
        )
        train_split = f"train[{num_validation}:]"
        validation_split = f"train[:{num_validation}]"
    test_split = "test" if "test" in info.splits else None

    def read_split(split):
        dataset = builder.as_dataset(
            split=split, shuffle_files=False, as_supervised=True
        )
        return dataset.map(
            lambda image, label: (
                convert_channels(image, natural_channels, channels),
                tf.cast(label, tf.int32),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    num_examples = {
        "train": info.splits[train_split].num_examples,
        "validation": info.splits[validation_split].num_examples,
        "test": info.splits[test_split].num_examples if test_split else 0,
    }
    return SourceSplits(
        train=read_split(train_split),
        validation=read_split(validation_split),
        test=read_split(test_split) if test_split else None,
        class_names=class_names,
        channels=channels,
        num_examples=num_examples,
        default_augment="crop" if natural_channels == 1 else "crop_flip",
        source=name,
        available_splits=("train", "validation", "test") if test_split else ("train", "validation"),
    )
