"""Reads TensorBoard event files back, as TensorBoard does, for the monitoring tests."""

import io

import numpy as np


def read_summaries(logdir):
    """`{tag: {step: (plugin_name, value)}}` of the TF2 summaries (tensors) in one run folder.

    `value` is the NumPy value of the summary tensor: for an image summary a string array
    `[width, height, png, ...]`, for text a string scalar, for a histogram the bucket array.
    """
    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    accumulator = EventAccumulator(str(logdir), size_guidance={"tensors": 0})
    accumulator.Reload()
    summaries = {}
    for tag in accumulator.Tags()["tensors"]:
        plugin = accumulator.SummaryMetadata(tag).plugin_data.plugin_name
        summaries[tag] = {e.step: (plugin, tf.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)}
    return summaries


def decode_image_summary(value):
    """The single image of an image summary: `(width, height, pixels)`, pixels `(h, w, c)`."""
    import matplotlib.image

    width, height, png = int(value[0]), int(value[1]), value[2]
    return width, height, matplotlib.image.imread(io.BytesIO(png), format="png")


def parse_markdown_matrix(text):
    """The integer matrix of the `confusion_matrix_counts` Markdown table."""
    rows = np.asarray(text).item().decode().splitlines()[2:]  # after the header and the rule
    return np.array([[int(cell) for cell in row.strip("|").split("|")[1:]] for row in rows])
