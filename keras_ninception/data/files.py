"""Image files: which folders are splits and classes, and whether TF decodes a file.

One home for three rules that the image-folder reader (`sources.read_image_folder`) and
`predict` share, so that the up-front check, the training pipeline and `predict` accept the
same files:

- **Listing** (`list_image_folder`): the layout of `tfds.folder_dataset.ImageFolder`,
  `root/<split>/<class>/*.jpg|jpeg|png`, without the folders that are not data. A hidden
  name (a leading `.`: `.ipynb_checkpoints`, `.git`, `.DS_Store`, `.Trash-1000`, macOS'
  `._name.jpg` resource forks) or an OS or tool folder (`IGNORED_NAMES`: `__MACOSX`,
  `__pycache__`, `@eaDir`, ...) is never a split, a class or an image. Keras'
  `image_dataset_from_directory` skips hidden folders too; TFDS `ImageFolder` does not,
  which is why the package lists the folder itself.
- **Decoding** (`decode_image`): TF's decoders, as `tfds.features.Image` decodes
  (`tf.io.decode_image(channels=C, expand_animations=False)`), with one deviation: a gray
  image (`channels=1`) from a file TF cannot turn into gray directly (a CMYK JPEG, a GIF, BMP
  or WebP file) is decoded to RGB and converted with `tf.image.rgb_to_grayscale`.
- **Checking** (`find_bad_image_files`): a file is damaged when that decoder cannot decode
  it, not by a byte pattern: a JPEG with bytes after its end-of-image marker (padding, data
  that phones append) decodes to the same pixels and is accepted. Modes (`CHECK_IMAGES`):
  `"full"` decodes every file; `"header"` (the default) parses JPEG headers with libjpeg
  (`tf.io.extract_jpeg_shape`) and decodes other files in full (TF has no header-only
  reader for them); `"none"` checks nothing. The scan runs in a parallel `tf.data` map.

A file that passes a header check and still fails to decode, or any bad file under
`"none"`, stops the pipeline with an error that names it (`decode_image_files`,
`named_decode_error`), never an anonymous `InvalidArgumentError`.
"""

import dataclasses
import os
import re

import numpy as np
import tensorflow as tf

from keras_ninception.options import CHECK_IMAGES  # noqa: F401 (re-exported: `files.CHECK_IMAGES`)

# The file endings `tfds.folder_dataset.ImageFolder` reads (case-insensitive).
IMAGE_FILE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Folders and files of operating systems and tools that are never data (compared
# case-insensitively); hidden names (a leading '.') are ignored as well.
IGNORED_NAMES = frozenset(
    name.casefold()
    for name in (
        "__MACOSX",  # macOS zip archives
        "__pycache__",
        "@eaDir",  # Synology NAS thumbnails
        "$RECYCLE.BIN",  # Windows
        "System Volume Information",  # Windows
        "lost+found",  # ext file systems
        "Thumbs.db",  # Windows thumbnails
        "desktop.ini",  # Windows
        "Icon\r",  # macOS custom folder icons
    )
)
# Why a file is bad, beside the decoder's own words.
NOT_AN_IMAGE = "not an image file (TF decodes JPEG, PNG, GIF, BMP and WebP)"
DAMAGED = "damaged or truncated"
# The pipeline's error for a file it cannot read or decode; `named_decode_error` finds it.
DECODE_ERROR_MARKER = "keras_ninception: cannot read or decode the image file"
# PNG's first 8 bytes (TF's own decode_image dispatches on them too).
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Examples per batch when collecting the results of the parallel scan.
SCAN_BATCH = 4096


def is_ignored(name):
    """Whether a file or folder name is hidden (a leading '.') or OS/tool debris."""
    return name.startswith(".") or name.casefold() in IGNORED_NAMES


@dataclasses.dataclass(frozen=True)
class FolderListing:
    """The image files of a folder, by split and class, and what was ignored.

    Attributes:
        files: `{split: {class: [path, ...]}}`, sorted by name; paths are
            `os.path.join(root, split, class, file)`, as ImageFolder joins them.
        ignored: paths relative to the root of the hidden and OS/tool entries that were
            left out (folders end with `/`), sorted.
    """

    files: dict
    ignored: tuple


def visible_folders(path):
    """`(visible, ignored)`: the sorted names of the folders in `path` that are data, and of
    those that are hidden or OS/tool debris (`is_ignored`). The one rule for splits and
    classes."""
    visible, ignored = [], []
    with os.scandir(path) as entries:
        for entry in entries:
            if entry.is_dir():
                (ignored if is_ignored(entry.name) else visible).append(entry.name)
    return sorted(visible), sorted(ignored)


def split_folders(root):
    """The sorted visible folders of `root`: its splits."""
    return visible_folders(root)[0]


def list_image_folder(root, splits=None):
    """Lists the image files of `root/<split>/<class>/*.jpg|jpeg|png` (see the module docstring).

    Splits are the visible folders of `root`, classes the visible folders of a split
    (`visible_folders`), images the visible entries of a class whose name ends in `.jpg`,
    `.jpeg` or `.png` (any case). An entry named like an image that is a folder is listed, so
    that the check reports it.

    Args:
        root: the folder.
        splits: names of the splits to read, or `None` for every split. Only these split
            folders are opened: reading one split needs only that split.

    Returns:
        A `FolderListing`.
    """
    ignored = []

    def folders(path, relative):
        visible, hidden = visible_folders(path)
        ignored.extend(os.path.join(relative, name) + "/" for name in hidden)
        return visible

    files = {}
    for split in folders(root, ""):
        if splits is not None and split not in splits:
            continue
        files[split] = {}
        for class_name in folders(os.path.join(root, split), split):
            class_dir = os.path.join(root, split, class_name)
            names = []
            with os.scandir(class_dir) as entries:
                for entry in entries:
                    if not entry.name.lower().endswith(IMAGE_FILE_EXTENSIONS):
                        continue
                    if is_ignored(entry.name):
                        ignored.append(os.path.join(split, class_name, entry.name))
                    else:
                        names.append(entry.name)
            files[split][class_name] = [os.path.join(class_dir, name) for name in sorted(names)]
    return FolderListing(files=files, ignored=tuple(sorted(ignored)))


# ---------------------------------------------------------------------------
# Decoding: the one decoder of the check, the pipeline and predict.
# ---------------------------------------------------------------------------


def _gray_directly(contents):
    """Whether TF decodes `contents` to gray itself: a PNG, or a JPEG that is not CMYK.

    libjpeg gives a JPEG's own luma, libpng its gray conversion; TF refuses gray from a
    CMYK (4-component) JPEG, a GIF, BMP or WebP file.
    """
    return tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.not_equal(tf.io.extract_jpeg_shape(contents)[2], 4),
        lambda: tf.equal(tf.strings.substr(contents, 0, len(PNG_SIGNATURE)), PNG_SIGNATURE),
    )


def decode_image(contents, channels):
    """Decodes the bytes of an image file to `uint8` `(height, width, channels)`.

    `tf.io.decode_image(contents, channels=channels, expand_animations=False)`, as
    `tfds.features.Image` decodes: gray files are repeated into RGB, an alpha channel is
    dropped, a palette expanded, 16-bit samples reduced to 8, an animation gives its first
    frame. Deviation: for `channels=1`, a file TF cannot decode to gray (a CMYK JPEG, a GIF,
    BMP or WebP file) is decoded to RGB, then `tf.image.rgb_to_grayscale` (ITU-R 601 weights).

    Args:
        contents: scalar `string` tensor, the file's bytes.
        channels: 1 or 3.

    Returns:
        `uint8` tensor `(height, width, channels)`.

    Raises:
        tf.errors.InvalidArgumentError: when TF cannot decode the bytes.
    """
    if channels != 1:
        return tf.io.decode_image(contents, channels=channels, expand_animations=False)
    return tf.cond(
        _gray_directly(contents),
        lambda: tf.io.decode_image(contents, channels=1, expand_animations=False),
        lambda: tf.image.rgb_to_grayscale(
            tf.io.decode_image(contents, channels=3, expand_animations=False)
        ),
    )


def _check_contents(contents, mode, channels):
    """The shape `(3,)` of what `mode` learns of an image; raises where the check fails."""
    if mode == "full":
        return tf.shape(decode_image(contents, channels))
    return tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.io.extract_jpeg_shape(contents),
        lambda: tf.shape(decode_image(contents, channels)),
    )


def _inspect(path, mode, channels):
    """`(what the check learned, None)` for a good file, `(None, reason)` for a bad one."""
    if os.path.isdir(path):
        return None, "a directory"
    try:
        with open(path, "rb") as file:
            contents = file.read()
    except OSError as err:
        return None, f"cannot be read ({err.strerror or err})"
    if not contents:
        return None, "empty file"
    contents = tf.constant(contents)
    try:
        if mode == "full":
            return decode_image(contents, channels), None
        return _check_contents(contents, mode, channels), None
    except tf.errors.InvalidArgumentError as err:
        message = _decoder_message(err)
        if message.startswith("Unknown image file format"):
            return None, NOT_AN_IMAGE
        return None, f"{DAMAGED}: {message}"


def image_file_problem(path, mode="full", channels=3):
    """Why one file fails the check `mode`, or `None` when it passes.

    Args:
        path: the file.
        mode: `"full"` (default) or `"header"` (see the module docstring).
        channels: 1 or 3, the channels it is decoded to.

    Returns:
        `None`, or `"a directory"`, `"cannot be read (...)"`, `"empty file"`,
        `NOT_AN_IMAGE`, or `"damaged or truncated: <the decoder's message>"`.
    """
    return _inspect(path, mode, channels)[1]


def _decoder_message(error):
    """The first line of a TF error, without its `{{function_node ...}}` and `[Op:...]` parts."""
    message = (error.message or "").strip().splitlines()[0] if error.message else ""
    message = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", message)
    return re.sub(r"\s*\[Op:\w+\].*$", "", message)[:120]


def find_bad_image_files(paths, mode="header", channels=3):
    """Checks image files in parallel; returns `[(path, reason), ...]` of those that fail.

    Every file is read and checked (`mode`: `"full"` or `"header"`, see the module
    docstring) in a `tf.data` map with `num_parallel_calls=tf.data.AUTOTUNE`; the files whose
    check raises are then re-checked one by one (`image_file_problem`) for the reason.
    `"none"` checks nothing.

    Args:
        paths: the files.
        mode: one of `CHECK_IMAGES`; default `"header"`.
        channels: 1 or 3, the channels the pipeline decodes to.

    Returns:
        `[(path, reason), ...]` in the order of `paths`.
    """
    paths = list(paths)
    if mode == "none" or not paths:
        return []
    scan = (
        tf.data.Dataset.from_tensor_slices(tf.constant(paths, tf.string))
        .enumerate()
        .map(
            lambda index, path: (
                index,
                _check_contents(tf.io.read_file(path), mode, channels),
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=False,
        )
        .ignore_errors()
        .map(lambda index, shape: index)
        .batch(SCAN_BATCH)
    )
    good = np.zeros(len(paths), bool)
    for indices in scan.as_numpy_iterator():
        good[indices] = True
    bad = []
    for index in np.flatnonzero(~good):
        reason = image_file_problem(paths[index], mode, channels)
        # A file that passes alone failed on a transient read error: say so rather than drop it.
        bad.append((paths[index], reason or "could not be read during the scan"))
    return bad


# ---------------------------------------------------------------------------
# The pipeline's decoding, with errors that name the file.
# ---------------------------------------------------------------------------


def decode_image_files(paths, labels, channels):
    """A dataset of decoded `(image, label)` from files, whose errors name the file.

    Reads and decodes in a parallel, ordered `tf.data` map (`decode_image`). A file that
    cannot be read or decoded stops the iteration with a `tf.errors.InvalidArgumentError`
    whose message starts with `DECODE_ERROR_MARKER` and names the file
    (`named_decode_error` turns it into a `ValueError` with the reason): the failed element
    is dropped (`ignore_errors`) and a sequential `scan` that counts the elements asserts
    that none is missing. A `tf.data` map cannot catch its own errors; this is how the
    pipeline says which file failed.

    Args:
        paths: list of file paths, in the order of the examples.
        labels: list of `int` class indices, one per path.
        channels: 1 or 3.

    Returns:
        A `tf.data.Dataset` of `(uint8 (h, w, channels), int32 ())`, in the order of `paths`.
    """
    count = len(paths)
    path_tensor = tf.constant(list(paths) or [""], tf.string)
    label_tensor = tf.constant(list(labels) or [0], tf.int32)

    def load(index):
        image = decode_image(tf.io.read_file(path_tensor[index]), channels)
        return image, label_tensor[index], index

    def check_order(expected, example):
        index = example[2]
        missing = path_tensor[tf.minimum(expected, count - 1)]
        assertion = tf.debugging.Assert(
            tf.equal(index, expected),
            [DECODE_ERROR_MARKER, f"(channels={channels}):", missing],
        )
        with tf.control_dependencies([assertion]):
            return expected + 1, tf.nest.map_structure(tf.identity, example)

    end = tf.data.Dataset.from_tensors(
        (tf.zeros((0, 0, channels), tf.uint8), tf.constant(0, tf.int32), tf.constant(count, tf.int64))
    )
    return (
        tf.data.Dataset.range(count)
        .map(load, num_parallel_calls=tf.data.AUTOTUNE)
        .ignore_errors()
        .concatenate(end)
        .scan(tf.constant(0, tf.int64), check_order)
        .filter(lambda image, label, index: index < count)
        .map(lambda image, label, index: (image, label))
    )


def named_decode_error(error):
    """The `ValueError` for a pipeline error of `decode_image_files`, or `None` for another error.

    Args:
        error: any exception.

    Returns:
        `ValueError("Cannot read or decode the image file PATH (reason). ...")` when `error`
        is the pipeline's error for a bad file, else `None`.
    """
    message = getattr(error, "message", None) or str(error)
    found = re.search(
        re.escape(DECODE_ERROR_MARKER) + r"\]?\s*\[?\(channels=(\d)\):\]?\s*\[?(.+?)\]?(?:\n|$)",
        message,
    )
    if found is None:
        return None
    channels, path = int(found[1]), found[2].strip()
    reason = image_file_problem(path, "full", channels)
    return ValueError(
        f"Cannot read or decode the image file {path} ({reason or 'failed while training'}). "
        "It passed the check before training (or was not checked): check every file in full "
        "with check_images='full' (CLI: --check-images full), and fix or remove the bad "
        "files or skip them with on_bad_image='skip' (CLI: --on-bad-image skip)."
    )


def read_image_file(path, channels):
    """Reads and decodes one image file, as the pipeline does, to a `uint8` array.

    Returns:
        `uint8` `numpy` array `(height, width, channels)`.

    Raises:
        ValueError: `"PATH (reason)"`, the reason from `image_file_problem`.
    """
    image, reason = _inspect(path, "full", channels)
    if reason is not None:
        raise ValueError(f"{path} ({reason})")
    return image.numpy()
