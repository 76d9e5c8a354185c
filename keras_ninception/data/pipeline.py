"""Pipeline: turn decoded `(image, label)` examples into training batches.

The second stage of `load_dataset` (see `loader.py`), applied per split, in
this order:

1. resize to `image_size` (`tf.image.resize`, bilinear), back to `uint8`;
2. `cache()`: in memory, in a file, or not at all;
3. `shuffle` (train only; seeded, reshuffled each iteration);
4. `batch(batch_size)` (the last batch may be smaller);
5. augment (train only; Keras preprocessing layers, per batch);
6. scale to `float32` in [-1, 1] (`x / 127.5 - 1`, the Inception
   preprocessing) and transpose to channels_first if that is the Keras
   image data format;
7. labels: the `int32` tensor, or a dict of it per model output;
8. `prefetch(tf.data.AUTOTUNE)`.

Epochs are finite: nothing repeats.
"""

import keras
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


def build_augmenter(mode, channels, seed):
    """Builds the train-time augmentation of batches from Keras layers.

    - `"none"`: no augmentation (returns `None`).
    - `"crop"`: `keras.layers.RandomTranslation(0.125, 0.125)`, a random
      shift of up to 1/8 of each side, which stands in for a random crop of
      a padded image. The uncovered border is filled with 0 (black) for
      one-channel images (digits on a black ground), and mirrored
      (`fill_mode="reflect"`) for RGB photos.
    - `"crop_flip"`: the same, then `keras.layers.RandomFlip("horizontal")`.

    The layers work in channels_last whatever the Keras image data format,
    since the pipeline transposes after augmenting.

    Args:
        mode: one of `AUGMENT_MODES`.
        channels: 1 or 3.
        seed: integer seed of the layers.

    Returns:
        A function from a `(batch, h, w, c)` batch to a `float32` batch of the
        same shape, values 0..255, or `None` for `"none"`.
    """
    if mode == "none":
        return None
    layers = [
        keras.layers.RandomTranslation(
            TRANSLATION_FACTOR,
            TRANSLATION_FACTOR,
            fill_mode="constant" if channels == 1 else "reflect",
            seed=seed,
            data_format="channels_last",
        )
    ]
    if mode == "crop_flip":
        layers.append(
            keras.layers.RandomFlip(
                "horizontal", seed=seed, data_format="channels_last"
            )
        )

    def augment(images):
        for layer in layers:
            images = layer(images, training=True)
        return images

    return augment


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
        seed: shuffle seed.

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
    dataset = dataset.batch(batch_size)
    if training and augmenter is not None:
        # Sequential on purpose: the layers draw from one seed generator, and
        # a parallel map would draw in a nondeterministic order.
        dataset = dataset.map(lambda images, labels: (augmenter(images), labels))
    dataset = dataset.map(
        lambda images, labels: (
            scale_images(images, data_format),
            make_labels(labels, output_names),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.prefetch(tf.data.AUTOTUNE)
