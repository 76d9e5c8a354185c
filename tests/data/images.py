"""Small image files written at test time."""

import os

import tensorflow as tf

# Pixel value of every image of a class in the `image_folder` fixture: after
# the pipeline, 0 -> -1.0, 128 -> 128 / 127.5 - 1 = 0.0039, 255 -> 1.0.
CLASS_VALUES = {"cat": 0, "dog": 128, "frog": 255}


def write_image(path, image, image_format="png"):
    """Writes a `uint8` `(h, w, c)` array as a `"png"` or `"jpeg"` file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    encode = tf.io.encode_png if image_format == "png" else tf.io.encode_jpeg
    tf.io.write_file(path, encode(tf.constant(image, tf.uint8)))
