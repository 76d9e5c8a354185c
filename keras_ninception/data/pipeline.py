"""Pipeline: turn decoded `(image, label)` examples into training batches.

The second stage of `load_dataset` (see `loader.py`), applied per split, in
this order:

1. resize to `image_size` (`tf.image.resize`, bilinear), back to `uint8`;
2. `cache()`: in memory, in a file, or not at all;
3. `shuffle` (train only; seeded, reshuffled each iteration);
4. augment (train only; per image, in parallel, with stateless random ops
   seeded from `tf.data.Dataset.random`, so it is deterministic);
5. `batch(batch_size)` (the last batch may be smaller);
6. scale to `float32` in [-1, 1] (`x / 127.5 - 1`, the Inception
   preprocessing) and transpose to channels_first if that is the Keras
   image data format;
7. labels: the `int32` tensor, or a dict of it per model output;
8. `prefetch(tf.data.AUTOTUNE)`.

Epochs are finite: nothing repeats.
"""

import tensorflow as tf

AUGMENT_MODES = ("none", "crop", "crop_flip")
# Random translation of up to 1/8 of the height and width: 4 pixels at 32x32,
# the reach of the usual "pad 4, random crop" of CIFAR training.
TRANSLATION_FACTOR = 0.125
# Largest shuffle buffer, in examples; smaller datasets shuffle whole.
MAX_SHUFFLE_BUFFER = 10_000


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


def mirrored_indices(size, shift):
    """Source index of each of `size` positions shifted by `shift`, mirrored at the borders.

    The mirror repeats the edge pixel (`... b a | a b c d | d c ...`), like
    `tf.pad(mode="SYMMETRIC")` and `keras.layers.RandomTranslation(fill_mode="reflect")`.

    Args:
        size: int, the side in pixels.
        shift: int32 scalar tensor, `|shift| <= size`.

    Returns:
        int32 `(size,)`, values in `[0, size)`.
    """
    index = tf.math.floormod(tf.range(size) + shift, 2 * size)
    return tf.where(index >= size, 2 * size - 1 - index, index)


def build_augmenter(mode, channels):
    """Builds the train-time augmentation of one image, from stateless random ops.

    - `"none"`: no augmentation (returns `None`).
    - `"crop"`: a random whole-pixel shift of up to `round(side / 8)` pixels
      (`TRANSLATION_FACTOR`) along each axis, uniform over the integers: the
      usual "pad 4, random crop" of CIFAR at 32 px. The uncovered border is
      0 (black) for one-channel images (digits on a black ground), and
      mirrored (edge pixel repeated, like `tf.pad(mode="SYMMETRIC")`) for RGB
      photos.
    - `"crop_flip"`: the same, and a horizontal flip with probability 1/2.

    The shift and the flip are one `tf.gather` of rows and one of columns
    (indices from `tf.random.stateless_uniform`): a `SYMMETRIC` `tf.pad` and
    `tf.image.stateless_random_crop` took 2.5x the time (1.18 against 0.48
    ms per 224 px image). Deviation from the first version, which applied
    `keras.layers.RandomTranslation` (bilinear) and `RandomFlip` to batches:
    those layers draw from a stateful seed generator, so their map had to run
    sequentially to stay deterministic, and at 224 px that one stage held
    the whole pipeline to about 190 images/s on 2 cores. Stateless ops with
    a seed per image run in a parallel map and stay deterministic.

    Args:
        mode: one of `AUGMENT_MODES`.
        channels: 1 or 3.

    Returns:
        A function `(image, seed) -> image`: `image` a `(h, w, c)` tensor of
        any dtype with a static height and width, `seed` an integer `(2,)`
        tensor; the result has the image's shape and dtype. `None` for
        `"none"`.
    """
    if mode == "none":
        return None
    mirror = channels != 1
    flip = mode == "crop_flip"

    def augment(image, seed):
        height, width = image.shape[0], image.shape[1]
        reach = (round(TRANSLATION_FACTOR * height), round(TRANSLATION_FACTOR * width))
        draws = tf.random.stateless_uniform((3,), seed)
        shift_y, shift_x = (
            tf.cast(tf.floor(draws[i] * (2 * reach[i] + 1)), tf.int32) - reach[i] for i in range(2)
        )
        if mirror:
            rows = mirrored_indices(height, shift_y)
            cols = mirrored_indices(width, shift_x)
        else:  # zeros come in: pad, then index the shifted window
            image = tf.pad(image, [[reach[0], reach[0]], [reach[1], reach[1]], [0, 0]])
            rows = tf.range(height) + reach[0] + shift_y
            cols = tf.range(width) + reach[1] + shift_x
        if flip:
            cols = tf.where(draws[2] < 0.5, tf.reverse(cols, [0]), cols)
        return tf.gather(tf.gather(image, rows, axis=0), cols, axis=1)

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


def cache_dataset(dataset, cache, split):
    """Caches in memory (`True`), in files `<cache>-<split>` (a path), or not."""
    if cache is True:
        return dataset.cache()
    if cache:
        return dataset.cache(f"{cache}-{split}")
    return dataset


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
        cache: `True` (memory), a file path prefix, or `False`.
        seed: seed of the shuffle and the augmentation.

    Returns:
        A dataset of `(images, labels)`: `float32` images in [-1, 1] of shape
        `(batch, height, width, c)` (or `(batch, c, height, width)`), and
        `int32` `(batch,)` labels or a dict of them.
    """
    dataset = dataset.map(
        lambda image, label: (resize_image(image, image_size), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    dataset = cache_dataset(dataset, cache, split)
    if training:
        dataset = dataset.shuffle(
            max(1, min(num_examples, MAX_SHUFFLE_BUFFER)),
            seed=seed,
            reshuffle_each_iteration=True,
        )
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
