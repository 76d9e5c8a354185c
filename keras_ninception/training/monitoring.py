"""What a run shows beyond scalars: a confusion matrix and labelled validation images in
TensorBoard's Images tab, and learning-curve PNGs in the run folder.

- `ValidationImageSummaries`, a Keras callback: every `freq` epochs it predicts a bounded
  number of validation batches and writes, with `tf.summary`, to its own TensorBoard run
  `<run_dir>/logs/validation_images` (beside Keras' `train` and `validation` runs, like the
  `cm` run of TensorBoard's confusion-matrix tutorial; one writer per folder, so TensorBoard's
  live reload never misses events of a second writer there):
    - `confusion_matrix` (image): the main head's matrix, rows the true class, columns the
      predicted one; cells are coloured by the row's share (recall) and hold the counts.
    - `confusion_matrix_counts` (text, up to `MAX_ANNOTATED_CLASSES` classes): the counts as
      a Markdown table.
    - `predictions` (image): the first `num_images` validation images, always the same,
      titled with the predicted and true class, green when right and red when wrong.
  Each is written at step `epoch` (0-based), the step of Keras' epoch scalars.
- `confusion_matrix`, the pure counting function, and `plot_confusion_matrix`,
  `plot_image_grid`, `figure_to_array`, which draw with Matplotlib's Agg canvas (no pyplot,
  no display, no global state).
- `plot_learning_curves(history, path)`: loss and accuracy per head, train and validation,
  from a Keras history (`history.json`), as one PNG written atomically.
- `parse_profile_batch`: the `profile_batch` of a run, checked.
"""

import math
import os

import keras
import numpy as np
import tensorflow as tf

from keras_ninception.checks import check_int, is_int, is_number
from keras_ninception.training.run_folder import read_json, replace_atomic
from keras_ninception.options import MAX_SUMMARY_IMAGES  # noqa: F401 (re-exported)

LOG_SUBDIR = "validation_images"
# Matplotlib resolution of every figure, dots per inch.
DPI = 100
# One cell of the image grid, (width, height) in inches: the image and a two-line title.
GRID_CELL_INCHES = (1.6, 1.9)
# Above this many classes the confusion matrix has no numbers in its cells, no text table,
# and no tick labels (they would not be readable).
MAX_ANNOTATED_CLASSES = 30
# The learning-curve figure, (width, height) in inches: loss beside accuracy.
LEARNING_CURVES_INCHES = (12.0, 4.5)
RIGHT_COLOR = "tab:green"
WRONG_COLOR = "tab:red"


def confusion_matrix(labels, predictions, num_classes):
    """Counts of (true class, predicted class) pairs, with `tf.math.confusion_matrix`.

    Args:
        labels: 1-D integer class indices in [0, num_classes), the true classes.
        predictions: 1-D integer class indices, the same length as `labels`.
        num_classes: int >= 1.

    Returns:
        `int64` NumPy array `(num_classes, num_classes)`: entry `[i, j]` is the number of
        examples of class `i` predicted as class `j`; it sums to `len(labels)`.

    Raises:
        ValueError: `labels` and `predictions` are not 1-D integer sequences of the same
            length, or hold an index outside [0, num_classes).
    """
    num_classes = check_int("num_classes", num_classes)
    arrays = {}
    for name, value in (("labels", labels), ("predictions", predictions)):
        array = np.asarray(value)
        if array.ndim != 1 or not (array.size == 0 or np.issubdtype(array.dtype, np.integer)):
            raise ValueError(f"`{name}` must be a 1-D sequence of class indices. Received: {name} of shape "
                             f"{array.shape} and dtype {array.dtype}")
        if array.size and (array.min() < 0 or array.max() >= num_classes):
            raise ValueError(f"`{name}` must hold class indices in [0, {num_classes}). Received: {name} "
                             f"in [{array.min()}, {array.max()}]")
        arrays[name] = array.astype(np.int64)
    if arrays["labels"].shape != arrays["predictions"].shape:
        raise ValueError(f"`labels` and `predictions` must have the same length. Received: "
                         f"{arrays['labels'].size} labels and {arrays['predictions'].size} predictions")
    return tf.math.confusion_matrix(
        arrays["labels"], arrays["predictions"], num_classes=num_classes, dtype=tf.int64
    ).numpy()


def to_display(images):
    """Undoes the pipeline's `x / 127.5 - 1`: [-1, 1] → [0, 1] (clipped), channels last.

    Args:
        images: float array `(n, height, width, channels)`, or `(n, channels, height,
            width)` when `keras.config.image_data_format()` is `"channels_first"`.

    Returns:
        `float32` array `(n, height, width, channels)` with values in [0, 1].
    """
    images = np.asarray(images, dtype=np.float32)
    if keras.config.image_data_format() == "channels_first":
        images = np.transpose(images, (0, 2, 3, 1))
    return np.clip((images + 1.0) / 2.0, 0.0, 1.0)


def _figure(size_inches):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size_inches, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def figure_to_array(figure):
    """Renders a Matplotlib figure with the Agg canvas.

    Returns:
        `uint8` array `(height, width, 3)`, RGB; height and width are the figure's size in
        inches times its dpi.
    """
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()


def confusion_matrix_inches(num_classes):
    """The (width, height) in inches of `plot_confusion_matrix`'s figure for `num_classes`."""
    side = min(max(4.0, 0.5 * num_classes + 2.0), 12.0)
    return (side + 1.0, side)  # + the colour bar


def plot_confusion_matrix(matrix, class_names, title="Confusion matrix"):
    """Draws a confusion matrix with class names on both axes.

    Args:
        matrix: `(n, n)` counts, rows the true class and columns the predicted one (as
            `confusion_matrix` returns).
        class_names: n class names, indexed by class.
        title: the figure's title.

    Returns:
        A `matplotlib.figure.Figure` of `confusion_matrix_inches(n)` inches at `DPI`. Cells
        are coloured by their share of the row (the recall of the true class, 0 to 1); up to
        `MAX_ANNOTATED_CLASSES` classes each cell shows its count.

    Raises:
        ValueError: `matrix` is not square or does not match `class_names`.
    """
    matrix = np.asarray(matrix)
    n = len(class_names)
    if matrix.shape != (n, n):
        raise ValueError(f"`matrix` must be ({n}, {n}) for {n} class names. Received: matrix of shape "
                         f"{matrix.shape}")
    rows = matrix.sum(axis=1, keepdims=True)
    shares = np.divide(matrix, rows, out=np.zeros(matrix.shape, np.float64), where=rows > 0)
    figure = _figure(confusion_matrix_inches(n))
    axes = figure.add_subplot()
    image = axes.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of the true class")
    axes.set_title(title, fontsize=9)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    if n <= MAX_ANNOTATED_CLASSES:
        names = [str(name)[:12] for name in class_names]
        slanted = max(map(len, names)) > 2  # longer names than digits would overlap
        axes.set_xticks(range(n), names, rotation=45 if slanted else 0, ha="right" if slanted else "center",
                        fontsize=8)
        axes.set_yticks(range(n), names, fontsize=8)
        for i in range(n):
            for j in range(n):
                axes.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7,
                          color="white" if shares[i, j] > 0.5 else "black")
    else:
        axes.set_xticks([])
        axes.set_yticks([])
    return figure


def grid_shape(num_images):
    """(rows, columns) of the image grid: square-ish, columns = ceil(sqrt(num_images))."""
    columns = max(1, math.ceil(math.sqrt(num_images)))
    return max(1, math.ceil(num_images / columns)), columns


def plot_image_grid(images, labels, predictions, class_names):
    """Draws images in a grid, each titled with its predicted and true class.

    Args:
        images: `(n, height, width, channels)` with values in [0, 1] (see `to_display`);
            1 channel is drawn in grey.
        labels: n true class indices.
        predictions: n predicted class indices.
        class_names: the class names, indexed by class.

    Returns:
        A `matplotlib.figure.Figure` of `grid_shape(n)` cells of `GRID_CELL_INCHES` at
        `DPI`; a title is green when the prediction is right and red when it is wrong.
    """
    rows, columns = grid_shape(len(images))
    figure = _figure((columns * GRID_CELL_INCHES[0], rows * GRID_CELL_INCHES[1]))
    for index, (image, label, prediction) in enumerate(zip(images, labels, predictions)):
        axes = figure.add_subplot(rows, columns, index + 1)
        if image.shape[-1] == 1:
            axes.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0)
        else:
            axes.imshow(image)
        axes.set_axis_off()
        axes.set_title(
            f"pred {str(class_names[prediction])[:12]}\ntrue {str(class_names[label])[:12]}",
            fontsize=8,
            color=RIGHT_COLOR if prediction == label else WRONG_COLOR,
        )
    return figure


def _markdown_table(matrix, class_names):
    header = "| true \\ predicted | " + " | ".join(map(str, class_names)) + " |"
    lines = [header, "|" + "---|" * (len(class_names) + 1)]
    for name, row in zip(class_names, matrix):
        lines.append(f"| **{name}** | " + " | ".join(str(int(v)) for v in row) + " |")
    return "\n".join(lines)


class ValidationImageSummaries(keras.callbacks.Callback):
    """Writes a confusion matrix and labelled validation images to TensorBoard.

    Every `freq` epochs (the first epoch, then every `freq`-th, and the last) it predicts the
    first `max_batches` batches of `validation_data` with the model and writes, at step
    `epoch`, to `log_dir` (see the module docstring for the tags):
    the `output_name` head's confusion matrix over those batches, as an image and (up to
    `MAX_ANNOTATED_CLASSES` classes) a Markdown table, and a grid of the first `num_images`
    validation images with predicted and true classes. The pipeline must not shuffle
    `validation_data` (`load_dataset`'s validation split does not), so the grid shows the
    same images every time.

    Args:
        log_dir: the folder of the TensorBoard run, e.g. `<run_dir>/logs/validation_images`.
        validation_data: a `tf.data.Dataset` of `(images, labels)` batches, images in
            [-1, 1] and labels class indices or a dict of them keyed by output name.
        class_names: the class names, indexed by class.
        freq: int >= 1, epochs between summaries. Default 1.
        num_images: int in [0, `MAX_SUMMARY_IMAGES`], images in the grid; 0 writes no grid.
            Default 16.
        max_batches: int >= 1, validation batches predicted each time (bounds the cost;
            the grid's images must fit in them). Default 8.
        output_name: the head to show. Default `"main"`; a single-output model's one
            output is used whatever its name.

    Raises:
        ValueError: a bad argument (at construction), or a model without `output_name`
            (when training begins).
    """

    def __init__(self, log_dir, validation_data, class_names, freq=1, num_images=16, max_batches=8,
                 output_name="main"):
        super().__init__()
        self.freq = check_int("freq", freq)
        self.num_images = check_int("num_images", num_images, minimum=0, maximum=MAX_SUMMARY_IMAGES)
        self.max_batches = check_int("max_batches", max_batches)
        if validation_data is None:
            raise ValueError("`validation_data` is needed for validation image summaries. Received: "
                             "validation_data=None")
        self.log_dir = os.fspath(log_dir)
        self.validation_data = validation_data
        self.class_names = tuple(str(name) for name in class_names)
        self.output_name = output_name
        self._writer = None
        self._forward = None

    def on_train_begin(self, logs=None):
        self._forward = None  # traced again for this model
        names = list(self.model.output_names)
        if len(names) > 1 and self.output_name not in names:
            raise ValueError(f"The model has no output {self.output_name!r} to show in TensorBoard; its outputs are "
                             f"{names}. Received: output_name={self.output_name!r}")

    def _due(self, epoch):
        last = self.params.get("epochs") if self.params else None
        return epoch % self.freq == 0 or (last is not None and epoch == last - 1)

    def _head(self, values):
        """The shown head's entry of a model output or label structure."""
        if isinstance(values, dict):
            return values[self.output_name]
        if isinstance(values, (list, tuple)):
            return values[list(self.model.output_names).index(self.output_name)]
        return values

    def _local_forward(self):
        """The model's forward pass on this process alone, as a `tf.function`.

        Not `predict_on_batch`: under a multi-worker strategy `predict` is a collective that
        gathers every worker's batch, while the labels here are this process's own. Each
        worker computes its own summaries (only the chief's reach the run folder).
        """
        if self._forward is None:
            model = self.model
            self._forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
        return self._forward

    def predict(self):
        """`(images, labels, predictions)`: the first `num_images` images, and the labels and
        predicted classes of all examples in the first `max_batches` validation batches."""
        images, labels, predictions = [], [], []
        kept = 0
        for x, y in self.validation_data.take(self.max_batches):
            probabilities = self._head(self._local_forward()(x))
            labels.append(np.asarray(self._head(y)).reshape(-1))
            predictions.append(np.argmax(np.asarray(probabilities), axis=-1))
            if kept < self.num_images:
                images.append(np.asarray(x)[: self.num_images - kept])
                kept += len(images[-1])
        images = np.concatenate(images) if images else np.zeros((0, 1, 1, 1), np.float32)
        return images, np.concatenate(labels), np.concatenate(predictions)

    def on_epoch_end(self, epoch, logs=None):
        if self._due(epoch):
            self.write(epoch)

    def write(self, step):
        """Predicts and writes the summaries at `step`."""
        images, labels, predictions = self.predict()
        matrix = confusion_matrix(labels, predictions, len(self.class_names))
        accuracy = float(np.trace(matrix)) / max(1, int(matrix.sum()))
        figure = plot_confusion_matrix(
            matrix,
            self.class_names,
            title=f"{self.output_name}, epoch {step + 1}: {matrix.sum()} validation images, accuracy {accuracy:.4f}",
        )
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        with self._writer.as_default(step=step):
            tf.summary.image(
                "confusion_matrix",
                figure_to_array(figure)[None],
                description=f"Confusion matrix of the {self.output_name!r} head on the first {len(labels)} "
                "validation images: rows true class, columns predicted class, colour the share of the row.",
            )
            if len(self.class_names) <= MAX_ANNOTATED_CLASSES:
                tf.summary.text("confusion_matrix_counts", _markdown_table(matrix, self.class_names))
            if len(images):
                grid = plot_image_grid(to_display(images), labels[: len(images)], predictions[: len(images)],
                                       self.class_names)
                tf.summary.image(
                    "predictions",
                    figure_to_array(grid)[None],
                    description=f"The first {len(images)} validation images with the {self.output_name!r} "
                    "head's prediction and the true class (green right, red wrong).",
                )
        self._writer.flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def parse_profile_batch(profile_batch):
    """Checks a `profile_batch` and returns it as `(start, stop)`, or None for no profiling.

    Args:
        profile_batch: None or 0 (off), a batch number `n` (profiles batch n), a pair
            `(start, stop)`, or a string `"n"` or `"start,stop"` (the CLI's form). Batches
            are counted from 1 across the epochs of one `fit` call, as Keras' `TensorBoard`
            counts them.

    Returns:
        None, or `(start, stop)` with 1 <= start <= stop.

    Raises:
        ValueError: anything else.
    """
    if profile_batch is None or (is_int(profile_batch) and profile_batch == 0):
        return None
    value = profile_batch
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
        value = [int(p) if p.isdigit() else p for p in parts]
    elif is_int(value):
        value = [value]
    elif isinstance(value, (list, tuple)):
        value = list(value)
    else:
        value = [value]
    if len(value) == 1:
        value = value * 2
    if len(value) != 2 or not all(is_int(v) and v >= 1 for v in value) or value[0] > value[1]:
        raise ValueError(
            "`profile_batch` must be a batch number >= 1 or a range 'start,stop' of them with "
            f"start <= stop (e.g. '10,20'), or None for no profiling. Received: profile_batch={profile_batch!r}"
        )
    return int(value[0]), int(value[1])


def check_profile_batch(profile_batch, total_batches):
    """Raises ValueError when the profiled range ends after the run's last training batch."""
    if profile_batch is not None and profile_batch[1] > total_batches:
        raise ValueError(
            f"`profile_batch` ends at batch {profile_batch[1]}, but the run has only {total_batches} training "
            f"batches; choose a range within them. Received: profile_batch={','.join(map(str, profile_batch))}"
        )


def _check_history(history):
    if not isinstance(history, dict) or not isinstance(history.get("loss"), list) or not history["loss"]:
        received = f"keys {sorted(history)[:8]}" if isinstance(history, dict) else type(history).__name__
        raise ValueError("`history` must be a Keras history dict with a non-empty 'loss' list (as in "
                         f"history.json). Received: history with {received}")
    length = len(history["loss"])
    for key, values in history.items():
        if not isinstance(values, list) or len(values) != length or not all(is_number(v) for v in values):
            raise ValueError(f"Every entry of `history` must be a list of {length} numbers, one per epoch. "
                             f"Received: history[{key!r}]={values!r}"[:300])


def history_heads(history):
    """The heads with an accuracy in `history`, `main` first: e.g. `["main", "aux1", "aux2"]`."""
    heads = [k[: -len("_accuracy")] for k in history if k.endswith("_accuracy") and not k.startswith("val_")]
    return sorted(heads, key=lambda name: (name != "main", name))


def plot_learning_curves(history, path):
    """Writes loss and accuracy per head, train and validation, per epoch as one PNG.

    Left: the total loss (black) and each head's loss; right: each head's accuracy. One
    colour per head; solid lines are training, dashed lines validation. A single-output
    model's head loss is the total loss. The PNG is `LEARNING_CURVES_INCHES` at `DPI`
    (1200×450 px) and is written atomically (nothing is left at `path` on failure).

    Args:
        history: a Keras `History.history` dict (`{"loss": [...], "main_accuracy": [...],
            "val_main_accuracy": [...], ...}`, one value per epoch), or the path of a run's
            `history.json`.
        path: where to write the PNG, e.g. `<run_dir>/learning_curves.png`.

    Returns:
        `path`.

    Raises:
        ValueError: `history` is not such a dict, or cannot be read.
        OSError: `path` cannot be written.
    """
    from matplotlib.ticker import MaxNLocator

    if isinstance(history, (str, os.PathLike)):
        history = read_json(history)
    _check_history(history)
    epochs = np.arange(1, len(history["loss"]) + 1)
    heads = history_heads(history)
    colors = {name: f"C{i}" for i, name in enumerate(heads)}
    figure = _figure(LEARNING_CURVES_INCHES)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    for prefix, style, split in (("", "-", "train"), ("val_", "--", "validation")):
        if f"{prefix}loss" in history:
            loss_axes.plot(epochs, history[f"{prefix}loss"], style, marker=".", color="black",
                           label=f"total, {split}")
        for name in heads:
            if len(heads) > 1 and f"{prefix}{name}_loss" in history:
                loss_axes.plot(epochs, history[f"{prefix}{name}_loss"], style, marker=".", color=colors[name],
                               label=f"{name}, {split}")
            if f"{prefix}{name}_accuracy" in history:
                accuracy_axes.plot(epochs, history[f"{prefix}{name}_accuracy"], style, marker=".",
                                   color=colors[name], label=f"{name}, {split}")
    for axes, quantity in ((loss_axes, "loss"), (accuracy_axes, "accuracy")):
        axes.set_xlabel("epoch")
        axes.set_ylabel(quantity)
        axes.set_title(quantity)
        axes.grid(alpha=0.3)
        axes.set_xlim(0.5, len(epochs) + 0.5)
        axes.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if axes.has_data():
            axes.legend(fontsize=8)
    path = os.fspath(path)
    replace_atomic(path, lambda tmp: figure.savefig(tmp, format="png"), ".png")
    return path
