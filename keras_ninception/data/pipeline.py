"""Pipeline: turn decoded `(image, label)` examples into training batches.

The second stage of `load_dataset` (see `loader.py`), applied per split, in
this order:

1. resize to `image_size` (`tf.image.resize`, bilinear), back to `uint8`;
   evaluation splits with an `eval_crop` fraction are resized to
   `image_size / eval_crop` and centrally cropped to `image_size`; a training
   split with `"inception"` augmentation keeps the original image (its random
   crop reads the whole image and resizes the crop);
2. `cache()`: in memory, in a file, or not at all (see `cache.py`);
3. `shuffle` (train only; seeded, reshuffled each iteration; a buffer of at
   most `MAX_SHUFFLE_BUFFER` examples and `max_shuffle_bytes` of images);
4. augment (train only; per image, in a parallel map, with stateless random
   draws seeded from `tf.data.Dataset.random`, so it is deterministic);
5. `batch(batch_size)` (the last batch may be smaller);
6. scale to `float32` in [-1, 1] (`x / 127.5 - 1`, the Inception
   preprocessing) and transpose to channels_first if that is the Keras
   image data format;
7. labels: the `int32` tensor, or a dict of it per model output;
8. `prefetch(tf.data.AUTOTUNE)`.

Epochs are finite: nothing repeats.
"""

import keras
import tensorflow as tf

from keras_ninception.options import AUGMENT_MODES  # noqa: F401 (re-exported)
from keras_ninception.data import cache as cache_policy

# Random translation of up to 1/8 of the height and width: 4 pixels at 32x32,
# the reach of the usual "pad 4, random crop" of CIFAR training.
TRANSLATION_FACTOR = 0.125
# Largest shuffle buffer, in examples; smaller datasets shuffle whole.
MAX_SHUFFLE_BUFFER = 10_000
# Largest shuffle buffer, in bytes of decoded images: 1,700 images of 224 x 224 x 3.
MAX_SHUFFLE_BYTES = 256 * 2**20
# GoogLeNet's scale augmentation (Szegedy et al., 2014, Section 6): patches of 8% to 100%
# of the image area, aspect ratio (width / height) in [3/4, 4/3].
INCEPTION_AREA_RANGE = (0.08, 1.0)
INCEPTION_ASPECT_RATIO_RANGE = (3 / 4, 4 / 3)
INCEPTION_MAX_ATTEMPTS = 100
# TF-slim's `distort_color` (inception_preprocessing.py), color_ordering 0, on [0, 1] values.
BRIGHTNESS_MAX_DELTA = 32.0 / 255.0
SATURATION_RANGE = (0.5, 1.5)
HUE_MAX_DELTA = 0.2
CONTRAST_RANGE = (0.5, 1.5)


def resize_image(image, image_size):
    """Resizes one `uint8` image to `image_size`, bilinear, back to `uint8`.

    Args:
        image: `uint8` `(h, w, c)`.
        image_size: `(height, width)`.

    Returns:
        `uint8` `(height, width, c)`, values 0..255 (rounded, clipped).
    """
    resized = tf.image.resize(image, image_size, method="bilinear")
    return tf.cast(tf.clip_by_value(tf.round(resized), 0.0, 255.0), tf.uint8)


def central_crop_size(image_size, eval_crop):
    """The size an evaluation image is resized to before its central crop.

    `round(side / eval_crop)` per side: 256 x 256 for 224 px and 0.875 (TF-slim's
    `central_fraction`, the "resize 256, crop 224" of ImageNet evaluation).
    """
    return tuple(int(round(side / eval_crop)) for side in image_size)


def resize_and_central_crop(image, image_size, eval_crop):
    """Resizes one `uint8` image to `image_size / eval_crop`, then crops its centre.

    TF-slim's `preprocess_for_eval` crops the central `central_fraction` of the image
    (`tf.image.central_crop`) and resizes that to `image_size`; this resizes first and crops
    the central `image_size` (the order of torchvision's `Resize` + `CenterCrop`): the same
    region, one resampling. The crop starts at `(resized - image_size) // 2` on each axis.

    Args:
        image: `uint8` `(h, w, c)`, or a batch `(batch, h, w, c)`.
        image_size: `(height, width)`.
        eval_crop: the kept fraction of each side, in (0, 1].

    Returns:
        `uint8` `(height, width, c)` (or `(batch, height, width, c)`).
    """
    height, width = image_size
    resized_height, resized_width = central_crop_size(image_size, eval_crop)
    resized = resize_image(image, (resized_height, resized_width))
    top = (resized_height - height) // 2
    left = (resized_width - width) // 2
    return resized[..., top : top + height, left : left + width, :]


def resize_for_evaluation(images, image_size, eval_crop=None):
    """`resize_image`, or `resize_and_central_crop` when `eval_crop` is given: what
    validation, test, `evaluate`, the export and `predict` do to an image or a batch."""
    if eval_crop is None:
        return resize_image(images, image_size)
    return resize_and_central_crop(images, image_size, eval_crop)


def sample_crop_box(image_shape, seed):
    """Samples GoogLeNet's random crop of an image: where it starts and its size.

    `tf.image.stateless_sample_distorted_bounding_box` with the whole image as the
    bounding box, as TF-slim's `distorted_bounding_box_crop` (inception_preprocessing.py)
    calls it: area in `INCEPTION_AREA_RANGE` (8% to 100%, the paper's and torchvision's
    `RandomResizedCrop`'s; slim's default is 5%), aspect ratio in
    `INCEPTION_ASPECT_RATIO_RANGE` [3/4, 4/3], 100 attempts, the whole image when none fits.
    Deviation: `min_object_covered=0` (slim's 0.1 would raise the least area to 10%, since
    the bounding box is the whole image).

    Args:
        image_shape: `int32` `(3,)`: `(height, width, channels)`.
        seed: integer `(2,)` tensor.

    Returns:
        `(begin, size)`: `int32` `(3,)` each, for `tf.slice(image, begin, size)`.
    """
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        image_shape,
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.0,
        aspect_ratio_range=INCEPTION_ASPECT_RATIO_RANGE,
        area_range=INCEPTION_AREA_RANGE,
        max_attempts=INCEPTION_MAX_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    return begin, size


def distort_color(image, seed):
    """TF-slim's `distort_color` (color_ordering 0) on a `float32` image in [0, 1].

    Random brightness (+-32/255), saturation (x 0.5..1.5), hue (+-0.2) and contrast
    (x 0.5..1.5), in that order, then clipped to [0, 1]; one-channel images get brightness
    and contrast only. Deviation: slim draws one of four orders per call; this keeps the
    first, so the result depends on the seed only.
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    image = tf.image.stateless_random_brightness(image, BRIGHTNESS_MAX_DELTA, seeds[0])
    if image.shape[-1] == 3:
        image = tf.image.stateless_random_saturation(image, *SATURATION_RANGE, seeds[1])
        image = tf.image.stateless_random_hue(image, HUE_MAX_DELTA, seeds[2])
    image = tf.image.stateless_random_contrast(image, *CONTRAST_RANGE, seeds[3])
    return tf.clip_by_value(image, 0.0, 1.0)


def reads_original_image(mode):
    """Whether an augmentation mode crops the original image (so the pipeline must not
    resize a training image before it)."""
    return mode == "inception"


def build_inception_augmenter(image_size, color_distortion):
    """GoogLeNet's training augmentation of one original image (Section 6 of the paper).

    A random crop (`sample_crop_box`), resized to `image_size` (bilinear), flipped
    horizontally with probability 1/2, then, with `color_distortion`, `distort_color`.
    TF-slim's `preprocess_for_train` without its random choice of resize method (always
    bilinear here). Every draw is stateless, from the image's seed.

    Args:
        image_size: `(height, width)` of the output.
        color_distortion: whether to apply `distort_color`.

    Returns:
        A function `(image, seed) -> image`: `image` `uint8` `(h, w, c)` of any size,
        `seed` an integer `(2,)` tensor; the result is `float32`
        `(height, width, c)`, values 0..255.
    """

    def augment(image, seed):
        crop_seed, flip_seed, color_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
        begin, size = sample_crop_box(tf.shape(image), crop_seed)
        crop = tf.slice(image, begin, size)
        resized = tf.image.resize(crop, image_size, method="bilinear") / 255.0
        resized = tf.image.stateless_random_flip_left_right(resized, flip_seed)
        if color_distortion:
            resized = distort_color(resized, color_seed)
        return tf.clip_by_value(resized * 255.0, 0.0, 255.0)

    return augment


def build_augmenter(mode, channels, image_size=None, color_distortion=False):

    """Builds the train-time augmentation of one image, from stateless random draws.

    - `"none"`: no augmentation (returns `None`).
    - `"crop"`: a random translation by up to 1/8 of each side
      (`TRANSLATION_FACTOR`), uniform and sub-pixel, resampled bilinearly:
      what `keras.layers.RandomTranslation(0.125, 0.125)` does, and the reach
      of the usual "pad 4, random crop" of CIFAR at 32 px. The uncovered
      border is 0 (black) for one-channel images (digits on a black ground),
      and mirrored (`fill_mode="reflect"`) for RGB photos.
    - `"crop_flip"`: the same and, with probability 1/2, a horizontal flip,
      in the same transform.
    - `"inception"`: GoogLeNet's random-resized crop of the original image, a flip and
      optionally TF-slim's colour distortion (`build_inception_augmenter`); the only mode
      that reads the original image and sets the output size.

    One `keras.ops.image.affine_transform` per image, its offsets drawn with
    `tf.random.stateless_uniform` from a seed that comes with the image (see
    `augment_dataset`). Deviation from the first version, which applied
    `keras.layers.RandomTranslation` and `RandomFlip` to batches: those layers
    draw from a stateful seed generator, so their map had to run sequentially
    to stay deterministic, and at 224 px that one stage held the whole
    pipeline to about 190 images/s on 2 cores. Per-image stateless draws run
    in a parallel map and stay deterministic; the transforms are the same.
    (Whole-pixel shifts, a `tf.gather` per axis, were faster still but cost
    test accuracy on the 24-px digits: 0.9875 against 0.9958, two seeds each.)

    Args:
        mode: one of `AUGMENT_MODES`.
        channels: 1 or 3.
        image_size: `(height, width)`, the output size of `"inception"`.
        color_distortion: `"inception"` only: apply `distort_color`.

    Returns:
        A function `(image, seed) -> image`: `image` a `(h, w, c)` tensor,
        values 0..255, with a static height and width; `seed` an integer
        `(2,)` tensor; the result is `float32` `(h, w, c)`, values 0..255.
        `None` for `"none"`.
    """
    if mode == "none":
        return None
    if mode == "inception":
        return build_inception_augmenter(image_size, color_distortion)
    fill_mode = "constant" if channels == 1 else "reflect"
    flip = mode == "crop_flip"

    def augment(image, seed):
        height, width = image.shape[0], image.shape[1]
        draws = tf.random.stateless_uniform((3,), seed)
        shift_y = (2.0 * draws[0] - 1.0) * TRANSLATION_FACTOR * height
        shift_x = (2.0 * draws[1] - 1.0) * TRANSLATION_FACTOR * width
        # Output pixel (x, y) reads input (a0 * x + a2, y + b2); a0 = -1 mirrors.
        mirrored = tf.cast(draws[2] < 0.5, tf.float32) if flip else tf.constant(0.0)
        a0 = 1.0 - 2.0 * mirrored
        a2 = mirrored * (width - 1) - shift_x
        transform = tf.stack([a0, 0.0, a2, 0.0, 1.0, -shift_y, 0.0, 0.0])
        return keras.ops.image.affine_transform(
            tf.cast(image, tf.float32),
            transform,
            interpolation="bilinear",
            fill_mode=fill_mode,
            data_format="channels_last",
        )

    return augment


def augment_dataset(dataset, augmenter, seed):
    """Applies `augmenter` to the images of `(image, label)` examples, in parallel.

    Each example gets its own seed from `tf.data.Dataset.random(seed,
    rerandomize_each_iteration=True)`: the same `seed` gives the same
    augmentations (with the same global TF seed), each epoch different ones.

    Args:
        dataset: unbatched `(image, label)` examples.
        augmenter: from `build_augmenter`.
        seed: integer seed.

    Returns:
        The dataset of augmented `(image, label)`, in the same order.
    """
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    return tf.data.Dataset.zip((dataset, seeds)).map(
        lambda example, pair: (augmenter(example[0], pair), example[1]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def scale_images(images, data_format):
    """Scales images to `float32` in [-1, 1] and lays them out.

    Args:
        images: a batch `(batch, h, w, c)`, values 0..255, any real dtype.
        data_format: `"channels_last"` or `"channels_first"`.

    Returns:
        `float32` `(batch, h, w, c)`, or `(batch, c, h, w)` for
        channels_first; values `x / 127.5 - 1`.
    """
    images = tf.cast(images, tf.float32) / 127.5 - 1.0
    if data_format == "channels_first":
        images = tf.transpose(images, (0, 3, 1, 2))
    return images


def make_labels(labels, output_names):
    """The label structure a model with `output_names` expects.

    Args:
        labels: `int32` `(batch,)`.
        output_names: `None` or one name (a string) for a single-output
            model, or a tuple of names.

    Returns:
        `labels` itself, or `{name: labels for name in output_names}`. A
        dict, not a list: tf.data would stack a list into one tensor.
    """
    if output_names is None or isinstance(output_names, str):
        return labels
    return {name: labels for name in output_names}


def cache_dataset(dataset, target, split):
    """Caches in memory (`"memory"`), in files `<target>-<split>` (a path), or not (`"none"`).

    `target` goes through `cache.validate_cache` first, so `True`/`False` mean memory/none
    (never a file named `True-train`), and anything else that is not a path is refused.

    Raises:
        ValueError: `target` is `"auto"` (plan it with `cache.plan_cache` first), or not a
            cache policy or path (see `cache.validate_cache`).
    """
    target = cache_policy.validate_cache(target)
    if target == "auto":
        raise ValueError(
            "cache='auto' is decided per split by `keras_ninception.data.cache.plan_cache`; "
            "pass its choice ('memory', 'none' or a path) to the pipeline."
        )
    if target == "memory":
        return dataset.cache()
    if target == "none":
        return dataset
    return dataset.cache(f"{target}-{split}")


def shuffle_buffer_size(num_examples, example_bytes, max_shuffle_bytes=MAX_SHUFFLE_BYTES):
    """Examples in the shuffle buffer: the whole split, at most `MAX_SHUFFLE_BUFFER`
    examples and `max_shuffle_bytes // example_bytes`; at least 1."""
    by_bytes = max_shuffle_bytes // max(1, int(example_bytes))
    return int(max(1, min(num_examples, MAX_SHUFFLE_BUFFER, by_bytes)))


def build_pipeline(
    dataset,
    *,
    split,
    num_examples,
    image_size,
    batch_size,
    training,
    augmenter,
    output_names,
    data_format,
    cache,
    seed,
    eval_crop=None,
    keep_original=False,
    shuffle_buffer=None,
):
    """Builds the batched pipeline of one split (see the module docstring).

    Args:
        dataset: unbatched `(image, label)`: `uint8` `(h, w, c)`, `int32`.
        split: `"train"`, `"validation"` or `"test"`, for cache file names.
        num_examples: examples in `dataset`, for the shuffle buffer.
        image_size: `(height, width)`.
        batch_size: examples per batch.
        training: whether to shuffle and augment.
        augmenter: from `build_augmenter`, or `None`; used when `training`.
        output_names: see `make_labels`.
        data_format: `"channels_last"` or `"channels_first"`.
        cache: `"memory"`, `"none"`, or a file path prefix (see `cache_dataset`).
        seed: seed of the shuffle and the augmentation.
        eval_crop: `None` (default) or the central fraction kept of an evaluation
            split's images (`resize_and_central_crop`); unused when `training`.
        keep_original: `training` only: cache and shuffle the original images, for an
            augmenter that crops and resizes them itself (`reads_original_image`).
        shuffle_buffer: examples in the shuffle buffer; `None` for
            `min(num_examples, MAX_SHUFFLE_BUFFER)`.

    Returns:
        A dataset of `(images, labels)`: `float32` images in [-1, 1] of shape
        `(batch, height, width, c)` (or `(batch, c, height, width)`), and
        `int32` `(batch,)` labels or a dict of them.
    """
    if training and keep_original:
        pass  # the augmenter crops the original image and resizes the crop
    elif not training and eval_crop is not None:
        dataset = dataset.map(
            lambda image, label: (resize_and_central_crop(image, image_size, eval_crop), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    else:
        dataset = dataset.map(
            lambda image, label: (resize_image(image, image_size), label),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    dataset = cache_dataset(dataset, cache, split)
    if training:
        if shuffle_buffer is None:
            shuffle_buffer = max(1, min(num_examples, MAX_SHUFFLE_BUFFER))
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if training and augmenter is not None:
        dataset = augment_dataset(dataset, augmenter, seed)
    dataset = dataset.batch(batch_size)
    dataset = dataset.map(
        lambda images, labels: (
            scale_images(images, data_format),
            make_labels(labels, output_names),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
