"""Pipeline: turn decoded `(image, label)` examples into training batches.

The second stage of `load_dataset` (see `loader.py`), applied per split, in
this order:

1. resize to `image_size` (`tf.image.resize`, bilinear), back to `uint8`;
2. `cache()`: in memory, in a file, or not at all;
3. `shuffle` (train only; seeded, reshuffled each iteration);
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


def build_augmenter(mode, channels):
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

    Returns:
        A function `(image, seed) -> image`: `image` a `(h, w, c)` tensor,
        values 0..255, with a static height and width; `seed` an integer
        `(2,)` tensor; the result is `float32` `(h, w, c)`, values 0..255.
        `None` for `"none"`.
    """
    if mode == "none":
        return None
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
