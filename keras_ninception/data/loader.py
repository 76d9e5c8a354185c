"""`load_dataset`: one loader for the embedded digits, image folders and TFDS.

Data flows `sources.py` (read and decode each source) -> `pipeline.py`
(resize, cache, shuffle, augment, batch, scale, labels, prefetch) ->
`DatasetSplits`.
"""

import dataclasses
import numbers
import os

import keras
import tensorflow as tf

from keras_ninception.data import cache as cache_policy
from keras_ninception.data import files
from keras_ninception.data import pipeline
from keras_ninception.data import prepared
from keras_ninception.data import sources

ON_BAD_IMAGE_MODES = ("error", "skip")
CHECK_IMAGES_MODES = files.CHECK_IMAGES
CHANNEL_COUNTS = (1, 3)
SPLITS = ("train", "validation", "test")


@dataclasses.dataclass(frozen=True)
class DatasetSplits:
    """The batched splits of one dataset and what a model needs to know.

    Attributes:
        train: batches of `(images, labels)`, shuffled and augmented; `None`
            when not requested (`load_dataset`'s `splits`).
            `images`: `float32`, values in [-1, 1], shape `(batch, *input_shape)`.
            `labels`: `int32` `(batch,)` class indices, or a dict of them keyed
            by output name (see `load_dataset`'s `output_names`).
        validation: the same structure, neither shuffled nor augmented;
            `None` when not requested.
        test: the same structure as `validation`, or `None` when the source
            has no test split or it was not requested.
        class_names: the class names, indexed by label.
        input_shape: the model input shape: `(height, width, channels)` for
            channels_last, `(channels, height, width)` for channels_first.
        num_examples: `{"train": n, "validation": n, "test": n}` examples
            (not batches); 0 for a split that is `None`.
        source: `"digits"`, the folder path, or the TFDS name.
        cache_plan: `{split: "in memory (why)"}`, what `cache` chose for each split
            (see `keras_ninception.data.cache`).
        file_sharded: whether the splits read record files (a prepared folder), so that a
            multi-worker run can shard them by file (`AutoShardPolicy.FILE`). Such
            splits have no declared cardinality: a worker's share is known only once
            the files are split between the workers.
        available_splits: the splits the source has, requested or not (a validation split
            carved from train counts), e.g. `("train", "validation")` for a folder with no
            `test/`.
    """

    train: tf.data.Dataset
    validation: tf.data.Dataset
    test: tf.data.Dataset | None
    class_names: tuple[str, ...]
    input_shape: tuple[int, int, int]
    num_examples: dict[str, int]
    source: str
    cache_plan: dict[str, str] = dataclasses.field(default_factory=dict)
    file_sharded: bool = False
    available_splits: tuple[str, ...] = SPLITS

    def get_split(self, split):
        """The batches of `split` (`"train"`, `"validation"` or `"test"`).

        Raises:
            ValueError: the dataset has no such split, naming the splits it has, e.g.
                `The dataset 'cats' has no 'test' split; it has ['train', 'validation']: pass
                split='validation' (`--split validation`) or another dataset.`; or it has
                it but `load_dataset` was asked for other `splits`.
        """
        data = getattr(self, split, None) if split in SPLITS else None
        if data is None and split in self.available_splits:
            raise ValueError(
                f"The {split!r} split of the dataset {self.source!r} was not read: load it with "
                f"`splits` including {split!r} (or splits=None). Received: split={split!r}"
            )
        if data is None:
            present = list(self.available_splits)
            other = next((name for name in ("validation", "test", "train") if name in present and name != split), None)
            hint = f"pass split={other!r} (`--split {other}`) or another dataset" if other else "pass another dataset"
            raise ValueError(
                f"The dataset {self.source!r} has no {split!r} split; it has {present}: {hint}. "
                f"Received: split={split!r}"
            )
        return data

    @property
    def num_classes(self) -> int:
        """The number of classes, `len(class_names)`."""
        return len(self.class_names)


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_path(value):
    return isinstance(value, (str, os.PathLike))


def _validate_image_size(image_size):
    """Returns `(height, width)` from an int or a pair."""
    if _is_int(image_size) and image_size >= 1:
        return (int(image_size), int(image_size))
    if (
        isinstance(image_size, (tuple, list))
        and len(image_size) == 2
        and all(_is_int(side) and side >= 1 for side in image_size)
    ):
        return (int(image_size[0]), int(image_size[1]))
    raise ValueError(
        "`image_size` must be a positive integer or a (height, width) pair of "
        f"positive integers. Received: image_size={image_size!r}"
    )


def _validate_output_names(output_names):
    if output_names is None:
        return None
    if isinstance(output_names, str):
        if output_names:
            return output_names
    elif isinstance(output_names, (tuple, list)):
        names = tuple(output_names)
        if (
            names
            and all(isinstance(name, str) and name for name in names)
            and len(set(names)) == len(names)
        ):
            return names
    raise ValueError(
        "`output_names` must be None, one output name, or a non-empty tuple of "
        "distinct output names such as ('main', 'aux1', 'aux2'). "
        f"Received: output_names={output_names!r}"
    )


def _validate_arguments(
    *,
    source,
    image_size,
    channels,
    batch_size,
    output_names,
    validation_fraction,
    augment,
    data_dir,
    download,
    seed,
    on_bad_image,
    check_images,
    cache,
    splits,
    class_names,
    cache_budget,
    eval_crop,
    color_distortion,
    manual_dir,
):
    """Checks every argument of `load_dataset`; returns the normalized ones."""
    if not _is_path(source) or not os.fspath(source):
        raise ValueError(
            "`source` must be 'digits', the path of an image folder, or a TFDS "
            f"dataset name. Received: source={source!r}"
        )
    image_size = _validate_image_size(image_size)
    if channels is not None and (
        not _is_int(channels) or channels not in CHANNEL_COUNTS
    ):
        raise ValueError(
            "`channels` must be None (the source's own count), 1 or 3. "
            f"Received: channels={channels!r}"
        )
    if not _is_int(batch_size) or batch_size < 1:
        raise ValueError(
            "`batch_size` must be a positive integer. "
            f"Received: batch_size={batch_size!r}"
        )
    output_names = _validate_output_names(output_names)
    if (
        not isinstance(validation_fraction, numbers.Real)
        or isinstance(validation_fraction, bool)
        or not 0.0 < validation_fraction < 1.0
    ):
        raise ValueError(
            "`validation_fraction` must be a number strictly between 0 and 1. "
            f"Received: validation_fraction={validation_fraction!r}"
        )
    if augment is not None and augment not in pipeline.AUGMENT_MODES:
        raise ValueError(
            "`augment` must be None (the source's default) or one of "
            f"{pipeline.AUGMENT_MODES}. Received: augment={augment!r}"
        )
    if data_dir is not None and not _is_path(data_dir):
        raise ValueError(
            f"`data_dir` must be None or a path. Received: data_dir={data_dir!r}"
        )
    if not isinstance(download, bool):
        raise ValueError(
            f"`download` must be True or False. Received: download={download!r}"
        )
    if not _is_int(seed):
        raise ValueError(f"`seed` must be an integer. Received: seed={seed!r}")
    if on_bad_image not in ON_BAD_IMAGE_MODES:
        raise ValueError(
            f"`on_bad_image` must be one of {ON_BAD_IMAGE_MODES}. "
            f"Received: on_bad_image={on_bad_image!r}"
        )
    if check_images not in CHECK_IMAGES_MODES:
        raise ValueError(
            f"`check_images` must be one of {CHECK_IMAGES_MODES}. "
            f"Received: check_images={check_images!r}"
        )
    if splits is not None:
        if isinstance(splits, str):
            splits = (splits,)
        if (
            not isinstance(splits, (tuple, list))
            or not splits
            or any(split not in SPLITS for split in splits)
            or len(set(splits)) != len(splits)
        ):
            raise ValueError(
                f"`splits` must be None (all of {SPLITS}) or a non-empty tuple of distinct "
                f"names from {SPLITS}. Received: splits={splits!r}"
            )
        splits = tuple(splits)
    if class_names is not None:
        if (
            not isinstance(class_names, (tuple, list))
            or not class_names
            or not all(isinstance(name, str) and name for name in class_names)
            or len(set(class_names)) != len(class_names)
        ):
            raise ValueError(
                "`class_names` must be None or a non-empty sequence of distinct class names. "
                f"Received: class_names={class_names!r}"
            )
        class_names = tuple(class_names)
    cache = cache_policy.validate_cache(cache)
    if cache_budget is not None and (not _is_int(cache_budget) or cache_budget < 0):
        raise ValueError(
            "`cache_budget` must be None (a quarter of the available memory) or a number of "
            f"bytes >= 0. Received: cache_budget={cache_budget!r}"
        )
    if eval_crop is not None and (
        not isinstance(eval_crop, numbers.Real)
        or isinstance(eval_crop, bool)
        or not 0.0 < eval_crop <= 1.0
    ):
        raise ValueError(
            "`eval_crop` must be None (no crop) or the central fraction of each side kept, "
            f"in (0, 1], such as 0.875. Received: eval_crop={eval_crop!r}"
        )
    if not isinstance(color_distortion, bool):
        raise ValueError(
            "`color_distortion` must be True or False. "
            f"Received: color_distortion={color_distortion!r}"
        )
    if manual_dir is not None and (not _is_path(manual_dir) or not download):
        raise ValueError(
            "`manual_dir` must be a path, given with download=True: TFDS reads it when it "
            f"prepares the dataset. Received: manual_dir={manual_dir!r}"
        )
    if color_distortion and augment != "inception":
        raise ValueError(
            "`color_distortion` is part of augment='inception'; pass augment='inception' "
            f"with it. Received: augment={augment!r}, color_distortion=True"
        )
    return image_size, output_names, cache, splits, class_names


def load_dataset(
    source="digits",
    *,
    image_size=32,
    channels=None,
    batch_size=64,
    output_names=None,
    validation_fraction=0.1,
    augment=None,
    data_dir=None,
    download=False,
    seed=0,
    on_bad_image="error",
    check_images="header",
    cache="auto",
    cache_budget=None,
    eval_crop=None,
    color_distortion=False,
    manual_dir=None,
    splits=None,
    class_names=None,
):
    """Loads an image-classification dataset as batched train/val/test splits.

    Four kinds of source:

    - `"digits"` (the only entry of `EMBEDDED_DATASETS`): the UCI handwritten
      digits (Alpaydin & Kaynak, 1998), bundled with scikit-learn
      (`sklearn.datasets.load_digits`): 1,797 gray 8x8 images, classes
      `"0"`..`"9"`, available offline. Fixed stratified split, independent of
      `seed`: 360 test images (20%), then `validation_fraction` of the rest
      (with the default 0.1: 1,293 train, 144 validation).
    - the path of an existing directory laid out
      `root/<split>/<class>/*.jpg|jpeg|png`, in the layout and order of the
      TFDS loader `tfds.folder_dataset.ImageFolder`. Hidden folders and OS or
      tool debris (`.ipynb_checkpoints`, `__MACOSX`, `@eaDir`, ...) are never
      splits or classes; a `UserWarning` names what was ignored. `train/` is
      required (unless `splits` asks for no training data); validation is
      `validation/` or `val/` if present, else the first
      `ceil(validation_fraction * n)` training examples in ImageFolder's
      deterministic order; `test/` if present. Files are checked before
      anything is built (see `check_images` and `on_bad_image`).
    - the path of a folder written by `prepare_image_folder` (`ninception prepare`): TFDS
      record shards of the splits `train`, `validation` and maybe `test`, read with
      interleaved parallel reads, the training files in a new seeded order each epoch
      (see `keras_ninception.data.prepared`). A multi-worker run shards them by file.
    - any other string: a TFDS catalog name (`"cifar10"`, `"mnist"`, ...)
      read with `tfds.builder(name, data_dir=data_dir)`; validation is the
      `validation` split if any, else `train[:n]` with
      `n = ceil(validation_fraction * num_train)`; `test` if any.

    The pipeline of each split (see `pipeline.py`): decode -> resize to
    `image_size` (bilinear, back to `uint8`; evaluation splits with `eval_crop`: resize
    to `image_size / eval_crop`, then the central `image_size`; the training split with
    `augment="inception"` is kept at its own size) -> `cache` -> shuffle (train
    only, seeded, reshuffled each epoch) -> augment (train only, per image,
    in parallel) -> `batch(batch_size)` -> scale to `float32` in [-1, 1] (`x / 127.5 - 1`, the
    Inception preprocessing) and transpose to channels_first when
    `keras.config.image_data_format()` is `"channels_first"` (read when this
    function is called) -> labels -> `prefetch`. Each split is one finite
    epoch: iterate it again for the next epoch.

    Args:
        source: `"digits"` (default), an image-folder path, or a TFDS name.
            The string `"digits"` always means the embedded dataset; write
            `"./digits"` for a folder of that name.
        image_size: output side in pixels (int, default 32) or
            `(height, width)`.
        channels: 1 or 3; `None` (default) for the source's own count (digits
            1, folders 3, TFDS from the image feature). Gray and RGB are
            converted with `tf.image`.
        batch_size: examples per batch (default 64); the last batch of a
            split may be smaller.
        output_names: `None` (default) or one name: labels are an `int32`
            `(batch,)` tensor. A tuple such as `("main", "aux1", "aux2")`:
            labels are `{name: labels}` for a multi-output model.
        validation_fraction: fraction of train carved as validation when the
            source has no validation split, in (0, 1); default 0.1.
        augment: `None` (default) for the source's default (`"crop"` for
            digits and gray TFDS datasets: no flips, a mirrored digit is
            another symbol; `"crop_flip"` for image folders and RGB TFDS
            datasets), or `"none"`, `"crop"` (random sub-pixel translation
            up to 1/8 of each side), `"crop_flip"` (that plus random
            horizontal flips) or `"inception"` (GoogLeNet's random crop of 8% to 100%
            of the original image's area, aspect ratio 3/4 to 4/3, resized to
            `image_size`, and a random flip; see `pipeline.build_inception_augmenter`).
            Applied to train only, per image, with stateless `tf.image` ops seeded
            from `seed`.
        data_dir: TFDS data directory; `None` for the TFDS default.
        download: TFDS only: download and prepare the dataset into
            `data_dir` first (needs network). Default False.
        seed: seed of the shuffle and the augmentation (default 0). The split
            of the data does not depend on it.
        on_bad_image: image folders only: what to do with files that fail
            the check (`check_images`): `"error"` (default) raises, naming
            them; `"skip"` leaves them out and warns with their count.
        check_images: image folders only: how each file of the read splits is
            checked before anything is built, in a parallel `tf.data` map.
            `"header"` (default): JPEG headers are parsed by libjpeg
            (`tf.io.extract_jpeg_shape`), other files are decoded in full;
            `"full"`: every file is decoded; `"none"`: no check. A file is bad
            when TF's decoder cannot decode it (bytes after a JPEG's end are
            fine). A file that passes the check and still fails to decode, or
            any bad file under `"none"`, stops the pipeline with an error that
            names it (`keras_ninception.data.files.named_decode_error` turns
            it into a `ValueError`).
        splits: `None` (default) for train, validation and test, or the
            splits to read, e.g. `("test",)`: the others are `None`, and an
            image folder needs only the folders of the splits read (train for
            a carved validation split).
        class_names: `None` (default) for the source's class names (an image
            folder: its sorted class folders), or the names of a model's
            classes: labels are indices into them; an image folder's class
            folders map to them by name and must all be among them, a TFDS or
            embedded source must have exactly these names.
        cache: where the decoded `uint8` images of each split are kept between
            epochs: `"auto"` (default) in memory for each split whose decoded size
            (images x height x width x channels bytes) fits in what is left of
            `cache_budget`, else nowhere; `"memory"` (or `True`) every split in memory;
            `"none"` (or `False`) nowhere (decoded again each epoch); a path string in
            tf.data cache files `<path>-<split>...` (the only thing this function may
            write). See `keras_ninception.data.cache`; the choice is logged (logger
            `keras_ninception.data.cache`, INFO) and returned in `DatasetSplits.cache_plan`.
        cache_budget: bytes `cache="auto"` may fill, which also bound the training
            shuffle buffer (with `pipeline.MAX_SHUFFLE_BYTES`); `None` (default): a
            quarter of the available memory for the cache.
        eval_crop: `None` (default) or the central fraction of each side kept for
            validation and test, in (0, 1]: resize to `round(image_size / eval_crop)`,
            then crop the central `image_size` (0.875 is TF-slim's: 256 then 224).
        color_distortion: with `augment="inception"` only: also TF-slim's random
            brightness, saturation, hue and contrast (`pipeline.distort_color`).
            Default False.
        manual_dir: TFDS only, with `download=True`: the folder of the files a dataset
            needs downloaded by hand (`tfds.download.DownloadConfig(manual_dir=...)`):
            `"imagenet2012"` reads `ILSVRC2012_img_train.tar` and
            `ILSVRC2012_img_val.tar` there. Default None.

    Returns:
        A `DatasetSplits`.

    Raises:
        ValueError: for an invalid argument (the message ends with
            `Received: arg=value`), an unknown source, an image folder without
            training images, with fewer than 2 classes, with class folders
            not in `class_names`, or with bad image files when
            `on_bad_image="error"`, a TFDS or embedded source whose classes
            are not `class_names`, or a TFDS dataset that is not an
            image-classification dataset.
        FileNotFoundError: for a TFDS dataset not prepared in `data_dir` when
            `download` is False.
        RuntimeError: when `download=True` and the download fails.
    """
    image_size, output_names, cache, splits, class_names = _validate_arguments(
        source=source,
        image_size=image_size,
        channels=channels,
        batch_size=batch_size,
        output_names=output_names,
        validation_fraction=validation_fraction,
        augment=augment,
        data_dir=data_dir,
        download=download,
        seed=seed,
        on_bad_image=on_bad_image,
        check_images=check_images,
        cache=cache,
        cache_budget=cache_budget,
        eval_crop=eval_crop,
        color_distortion=color_distortion,
        manual_dir=manual_dir,
        splits=splits,
        class_names=class_names,
    )

    source_name = os.fspath(source)
    if source_name in sources.EMBEDDED_DATASETS:
        raw = sources.read_digits(
            channels=channels, validation_fraction=validation_fraction
        )
    elif prepared.is_prepared_folder(os.path.expanduser(source_name)):
        raw = prepared.read_prepared_folder(source_name, channels=channels, seed=seed)
    elif os.path.isdir(os.path.expanduser(source_name)):
        raw = sources.read_image_folder(
            source_name,
            channels=channels,
            validation_fraction=validation_fraction,
            on_bad_image=on_bad_image,
            check_images=check_images,
            splits=splits,
            class_names=class_names,
        )
    else:
        raw = sources.read_tfds(
            source_name,
            channels=channels,
            validation_fraction=validation_fraction,
            data_dir=None if data_dir is None else os.fspath(data_dir),
            download=download,
            manual_dir=None if manual_dir is None else os.fspath(manual_dir),
        )

    if class_names is not None and raw.class_names != class_names:
        raise ValueError(
            f"The dataset {raw.source!r} has the classes {list(raw.class_names)[:10]}, not "
            f"{list(class_names)[:10]} (same names, same order). "
            f"Received: class_names={list(class_names)[:10]!r}"
        )
    augment = raw.default_augment if augment is None else augment
    keep_original = pipeline.reads_original_image(augment)
    augmenter = pipeline.build_augmenter(
        augment, raw.channels, image_size=image_size, color_distortion=color_distortion
    )
    data_format = keras.config.image_data_format()
    height, width = image_size

    wanted = SPLITS if splits is None else splits
    datasets = {
        split: dataset
        for split, dataset in (("train", raw.train), ("validation", raw.validation), ("test", raw.test))
        if dataset is not None and split in wanted
    }
    sizes = {split: (raw.num_examples[split], height, width, raw.channels) for split in datasets}
    if keep_original and "train" in datasets:
        sizes["train"] = (raw.num_examples["train"], *_mean_image_shape(raw.train))
    plan = cache_policy.plan_cache(cache, sizes, cache_budget)
    cache_policy.log_plan(plan)
    shuffle_buffer = None
    if "train" in datasets:
        max_shuffle_bytes = pipeline.MAX_SHUFFLE_BYTES
        if cache_budget is not None:
            max_shuffle_bytes = min(max_shuffle_bytes, cache_budget)
        _, train_height, train_width, train_channels = sizes["train"]
        shuffle_buffer = pipeline.shuffle_buffer_size(
            raw.num_examples["train"], train_height * train_width * train_channels, max_shuffle_bytes
        )

    def build(split, dataset):
        if split not in datasets:
            return None
        return pipeline.build_pipeline(
            dataset,
            split=split,
            num_examples=raw.num_examples[split],
            image_size=image_size,
            batch_size=batch_size,
            training=split == "train",
            augmenter=augmenter,
            output_names=output_names,
            data_format=data_format,
            cache=plan[split].target,
            seed=seed,
            eval_crop=eval_crop,
            keep_original=keep_original,
            shuffle_buffer=shuffle_buffer,
        )

    if data_format == "channels_first":
        input_shape = (raw.channels, height, width)
    else:
        input_shape = (height, width, raw.channels)
    built = {
        "train": build("train", raw.train),
        "validation": build("validation", raw.validation),
        "test": build("test", raw.test),
    }
    return DatasetSplits(
        **built,
        class_names=raw.class_names,
        input_shape=input_shape,
        num_examples={
            split: raw.num_examples[split] if built[split] is not None else 0
            for split in SPLITS
        },
        source=raw.source,
        cache_plan={split: entry.describe() for split, entry in plan.items()},
        file_sharded=raw.file_sharded,
        available_splits=raw.available_splits,
    )


def _mean_image_shape(dataset):
    """`(height, width, channels)`, the mean over the first `cache.SIZE_SAMPLE` images
    (rounded), for the size estimate of a split cached at the source's own size."""
    shapes = [image.shape for image, _ in dataset.take(cache_policy.SIZE_SAMPLE)]
    if not shapes:
        return (0, 0, 0)
    return tuple(int(round(sum(shape[axis] for shape in shapes) / len(shapes))) for axis in range(3))
