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
- `read_image_folder`: a `root/<split>/<class>/*.jpg|jpeg|png` folder read
  with the TFDS loader `tfds.folder_dataset.ImageFolder`.
- `read_tfds`: a dataset of the TFDS catalog, read with `tfds.builder`.

Nothing here writes to disk or reaches the network, except
`download_and_prepare()` when `read_tfds` is asked to download.
"""

import dataclasses
import math
import os
import warnings

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

EMBEDDED_DATASETS = ("digits",)

# The file endings `tfds.folder_dataset.ImageFolder` reads (case-insensitive).
IMAGE_FILE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# First bytes of the two formats ImageFolder's files may hold.
JPEG_SIGNATURE = b"\xff\xd8\xff"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What a whole file ends with (within its last 64 bytes): the JPEG EOI marker, the PNG IEND chunk.
JPEG_END = b"\xff\xd9"
PNG_END = b"IEND"
# Folder names taken as the validation split of an image folder, by priority.
VALIDATION_SPLIT_FOLDERS = ("validation", "val")
# How many bad files an error or warning names before "and N more".
BAD_FILES_NAMED = 5

# The UCI digits hold 4x4-block counts 0..16 on an 8x8 grid.
DIGITS_MAX_VALUE = 16
DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_RANDOM_STATE = 0


@dataclasses.dataclass(frozen=True)
class SourceSplits:
    """Decoded, unbatched splits of one source, before the pipeline.

    Attributes:
        train: dataset of `(image, label)`: `uint8` `(h, w, channels)` and
            `int32` `()`.
        validation: same structure as `train`.
        test: same structure, or `None` when the source has no test split.
        class_names: names of the classes, indexed by label.
        channels: channel count of every image (1 or 3).
        num_examples: `{"train": n, "validation": n, "test": n}` (test 0
            when absent).
        default_augment: the augmentation that suits the source
            (`"crop"` or `"crop_flip"`).
        source: `"digits"`, the folder path, or the TFDS name.
        file_sharded: whether the splits read record files that a multi-worker run
            can shard by file (a prepared folder). Default False.
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
# Image folder: root/<split>/<class>/*.jpg|jpeg|png via tfds ImageFolder.
# ---------------------------------------------------------------------------


def list_image_files(root):
    """Lists the image files of a folder, by split and class.

    Follows the rule of `tfds.folder_dataset.ImageFolder`: every
    sub-directory of `root` is a split, every sub-directory of a split a
    class, and every entry of a class whose name ends in `.jpg`, `.jpeg` or
    `.png` (any case) an image. Paths are joined as ImageFolder joins them, so
    they equal its `image/filename` feature.

    Args:
        root: the folder.

    Returns:
        `{split: {class: [path, ...]}}`, sorted by name.
    """

    def sub_directories(path):
        with os.scandir(path) as entries:
            return sorted(entry.name for entry in entries if entry.is_dir())

    files = {}
    for split in sub_directories(root):
        split_dir = os.path.join(root, split)
        files[split] = {}
        for class_name in sub_directories(split_dir):
            class_dir = os.path.join(split_dir, class_name)
            with os.scandir(class_dir) as entries:
                names = sorted(
                    entry.name
                    for entry in entries
                    if entry.name.lower().endswith(IMAGE_FILE_EXTENSIONS)
                )
            files[split][class_name] = [os.path.join(class_dir, name) for name in names]
    return files


def check_image_file(path):
    """Checks that a file starts and ends like a JPEG or a PNG.

    Reads only the first 8 and the last 64 bytes, so that 50,000 files take about a
    second. That finds empty files, other formats renamed `.jpg`, directories named like
    images, and truncated files (a JPEG ends with the EOI marker `FF D9`, a PNG with its
    `IEND` chunk). A file whose body is damaged in the middle still fails later, when the
    pipeline decodes it.

    Args:
        path: the file.

    Returns:
        `None` for a good file, else why it is bad: `"empty file"`, `"a directory"`,
        `"not a JPEG or PNG file"`, `"truncated"` or `"cannot be read (...)"`.
    """
    if os.path.isdir(path):
        return "a directory"
    try:
        with open(path, "rb") as file:
            head = file.read(len(PNG_SIGNATURE))
            file.seek(max(0, os.fstat(file.fileno()).st_size - 64))
            tail = file.read()
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    if not head:
        return "empty file"
    if head.startswith(JPEG_SIGNATURE):
        return None if JPEG_END in tail else "truncated"
    if head.startswith(PNG_SIGNATURE):
        return None if PNG_END in tail else "truncated"
    return "not a JPEG or PNG file"


def find_bad_image_files(paths):
    """Returns `[(path, reason), ...]` for the files `check_image_file` rejects."""
    bad = []
    for path in paths:
        reason = check_image_file(path)
        if reason is not None:
            bad.append((path, reason))
    return bad


def describe_bad_files(bad, root):
    """`"train/cat/x.jpg (empty file), ... and 3 more"` for messages."""
    named = ", ".join(
        f"{os.path.relpath(path, root)} ({reason})"
        for path, reason in bad[:BAD_FILES_NAMED]
    )
    more = len(bad) - BAD_FILES_NAMED
    return named + (f", and {more} more" if more > 0 else "")


def read_image_folder(root, *, channels, validation_fraction, on_bad_image):
    """Reads an image-classification folder with TFDS `ImageFolder`.

    Layout: `root/<split>/<class>/*.jpg|jpeg|png`. The split `train` is
    required. Validation is the split `validation` (or else `val`) when
    present, otherwise the first `ceil(validation_fraction * n)` examples of
    train in ImageFolder's deterministic order (it shuffles each split with a
    fixed seed), so the carve is stable across runs. `test` is used when
    present. Class names are ImageFolder's sorted labels over all splits.

    Before any dataset is built, the files of the used splits are checked
    (`check_image_file`: first 8 bytes only). Files are decoded with
    `tf.io.decode_image(channels=channels, expand_animations=False)`, so
    grayscale files give RGB and the reverse.

    Args:
        root: the folder.
        channels: 1 or 3, or `None` for 3.
        validation_fraction: fraction of train carved as validation when the
            folder has no validation split, in (0, 1).
        on_bad_image: `"error"` to raise on bad files, `"skip"` to leave them
            out with a `UserWarning` giving their count.

    Returns:
        A `SourceSplits` with default augmentation `"crop_flip"`.

    Raises:
        ValueError: if the folder has no `train` split or no image in it,
            fewer than 2 classes with training images, too few training
            images to carve validation, or (with `on_bad_image="error"`)
            bad image files, named in the message.
    """
    root_name = os.fspath(root)
    root = os.path.expanduser(root_name)
    channels = 3 if channels is None else channels

    files = list_image_files(root)
    train_files = files.get("train", {})
    num_train_files = sum(len(paths) for paths in train_files.values())
    if num_train_files == 0:
        found = ", ".join(f"{split}/" for split in files) or "nothing"
        raise ValueError(
            f"The image folder {root_name!r} has no training images: it needs "
            "the layout root/train/<class>/*.jpg|jpeg|png (optionally also "
            f"validation/ or val/, and test/). Found splits: {found}."
        )
    validation_split = next(
        (name for name in VALIDATION_SPLIT_FOLDERS if name in files), None
    )
    used_splits = [
        split for split in ("train", validation_split, "test") if split in files
    ]

    bad = find_bad_image_files(
        path
        for split in used_splits
        for paths in files[split].values()
        for path in paths
    )
    directories = [path for path, reason in bad if reason == "a directory"]
    if directories:
        # ImageFolder reads every entry it lists before any filter could drop it.
        raise ValueError(
            f"The image folder {root_name!r} has directories named like image files: "
            f"{describe_bad_files([(d, 'a directory') for d in directories], root)}. "
            "Rename or move them."
        )
    if bad and on_bad_image == "error":
        raise ValueError(
            f"The image folder {root_name!r} has {len(bad)} unreadable image "
            f"file(s) (empty, truncated, or not a JPEG or PNG): "
            f"{describe_bad_files(bad, root)}. Fix or remove them, or pass "
            "`on_bad_image='skip'` to leave them out."
        )
    if bad:
        warnings.warn(
            f"Skipped {len(bad)} unreadable image file(s) in {root_name!r}: "
            f"{describe_bad_files(bad, root)}.",
            stacklevel=3,
        )
    bad_paths = {path for path, _ in bad}

    def good_count(split):
        return sum(
            1
            for paths in files[split].values()
            for path in paths
            if path not in bad_paths
        )

    train_classes = sorted(
        class_name
        for class_name, paths in train_files.items()
        if any(path not in bad_paths for path in paths)
    )
    if len(train_classes) < 2:
        raise ValueError(
            f"The image folder {root_name!r} has training images of "
            f"{len(train_classes)} class(es) ({', '.join(train_classes)}): a "
            "classifier needs at least 2 classes, one sub-folder of train/ "
            "each."
        )

    builder = tfds.folder_dataset.ImageFolder(root)
    class_names = tuple(builder.info.features["label"].names)

    def read_split(split):
        dataset = builder.as_dataset(
            split=split,
            shuffle_files=False,
            decoders={"image": tfds.decode.SkipDecoding()},
        )
        split_bad = [
            path
            for paths in files[split].values()
            for path in paths
            if path in bad_paths
        ]
        if split_bad:
            bad_constant = tf.constant(split_bad)
            dataset = dataset.filter(
                lambda example: tf.reduce_all(
                    tf.not_equal(example["image/filename"], bad_constant)
                )
            )
        return dataset

    def decode(dataset, num_examples):
        dataset = with_cardinality(dataset, num_examples)
        return dataset.map(
            lambda example: (
                tf.io.decode_image(
                    example["image"], channels=channels, expand_animations=False
                ),
                tf.cast(example["label"], tf.int32),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
        )

    for split in (validation_split, "test"):
        if split in files and good_count(split) == 0:
            raise ValueError(
                f"The image folder {root_name!r} has a {split}/ split with no readable "
                f"images. Add images to {split}/<class>/ or remove the {split}/ folder."
            )

    num_train = good_count("train")
    train = read_split("train")
    if validation_split is not None:
        num_validation = good_count(validation_split)
        validation = read_split(validation_split)
    else:
        num_validation = num_validation_examples(
            num_train, validation_fraction, f"The image folder {root_name!r}"
        )
        validation = train.take(num_validation)
        train = train.skip(num_validation)
        num_train -= num_validation
    num_test = good_count("test") if "test" in files else 0
    test = decode(read_split("test"), num_test) if "test" in files else None

    return SourceSplits(
        train=decode(train, num_train),
        validation=decode(validation, num_validation),
        test=test,
        class_names=class_names,
        channels=channels,
        num_examples={
            "train": num_train,
            "validation": num_validation,
            "test": num_test,
        },
        default_augment="crop_flip",
        source=root_name,
    )


# ---------------------------------------------------------------------------
# TFDS catalog: tfds.builder(name).
# ---------------------------------------------------------------------------


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
            network; writes into `data_dir`).
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
        RuntimeError: if `download_and_prepare()` fails (e.g. offline).
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
        try:
            if manual_dir is None:
                builder.download_and_prepare()
            else:
                builder.download_and_prepare(
                    download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
                )
        except Exception as err:
            raise RuntimeError(
                f"Could not download and prepare the TFDS dataset {name!r} "
                f"into data_dir {os.fspath(builder.data_dir_root)!r}: "
                f"{type(err).__name__}: {err}. Downloading needs network "
                "access; offline, point data_dir to a prepared copy."
            ) from err
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
    )
