"""Monitoring: the confusion matrix, the TensorBoard image summaries and the learning curves,
each checked by reading the event files or the PNG back."""

import glob
import json
import os

import keras
import matplotlib.image
import numpy as np
import pytest
import tensorflow as tf

from keras_ninception import TrainConfig, train
from keras_ninception.training import monitoring
from keras_ninception.training.monitoring import (
    DPI,
    GRID_CELL_INCHES,
    LEARNING_CURVES_INCHES,
    ValidationImageSummaries,
    confusion_matrix,
    confusion_matrix_inches,
    figure_to_array,
    grid_shape,
    learning_curves_figure,
    parse_profile_batch,
    plot_confusion_matrix,
    plot_image_grid,
    plot_learning_curves,
    to_display,
)
from keras_ninception.training.run_folder import RUN_FILES, check_run_folder
from tests.training.events import decode_image_summary, parse_markdown_matrix, read_summaries

pytestmark = pytest.mark.xdist_group("monitored-run")  # one pytest-xdist worker: the shared fixtures

TINY = dict(model="nin", image_size=8, epochs=1, batch_size=128)


def test_confusion_matrix_matches_a_hand_count():
    labels = [0, 0, 1, 2, 2, 2, 1]
    predictions = [0, 1, 1, 2, 0, 2, 1]
    # Row = true class, column = predicted class, counted by hand from the pairs above:
    # (0,0) (0,1) | (1,1) (1,1) | (2,2) (2,0) (2,2).
    expected = [[1, 1, 0], [0, 2, 0], [1, 0, 2]]
    matrix = confusion_matrix(labels, predictions, num_classes=3)
    np.testing.assert_array_equal(matrix, expected)
    assert matrix.dtype == np.int64 and matrix.sum() == len(labels)
    # A class nobody predicts or holds still has its row and column.
    np.testing.assert_array_equal(confusion_matrix([1], [1], num_classes=4), np.diag([0, 1, 0, 0]))


@pytest.mark.parametrize(
    "labels, predictions, message",
    [
        ([0, 1], [0], "same length"),
        ([0, 3], [0, 1], r"\[0, 3\)"),
        ([0, -1], [0, 1], r"\[0, 3\)"),
        ([0.5, 1.0], [0, 1], "class indices"),
        ([[0, 1]], [[0, 1]], "1-D"),
    ],
)
def test_confusion_matrix_refuses_bad_input(labels, predictions, message):
    with pytest.raises(ValueError, match=message):
        confusion_matrix(labels, predictions, num_classes=3)


def test_to_display_undoes_the_pipeline_scaling():
    pixels = np.array([0.0, 51.0, 127.5, 255.0], np.float32)
    scaled = (pixels / 127.5 - 1).reshape(1, 1, 4, 1)  # the pipeline's preprocessing
    np.testing.assert_allclose(to_display(scaled).ravel(), pixels / 255.0, atol=1e-6)
    np.testing.assert_array_equal(to_display(np.array([-3.0, 3.0]).reshape(1, 1, 2, 1)).ravel(), [0.0, 1.0])


def _color_pixels(image, color, tolerance=40):
    return int((np.abs(image.astype(int) - color).max(axis=-1) < tolerance).sum())


def test_image_grid_titles_are_green_when_right_and_red_when_wrong():
    images = np.full((2, 8, 8, 1), 0.5, np.float32)
    figure = plot_image_grid(images, labels=[0, 1], predictions=[0, 0], class_names=["zero", "one"])
    pixels = figure_to_array(figure)
    assert grid_shape(2) == (1, 2)
    assert pixels.shape == (round(GRID_CELL_INCHES[1] * DPI), round(2 * GRID_CELL_INCHES[0] * DPI), 3)
    green, red = (44, 160, 44), (214, 39, 40)  # matplotlib's tab:green and tab:red
    left, right = pixels[:, : pixels.shape[1] // 2], pixels[:, pixels.shape[1] // 2 :]
    assert _color_pixels(left, green) > 20 and _color_pixels(left, red) == 0
    assert _color_pixels(right, red) > 20 and _color_pixels(right, green) == 0


def test_confusion_matrix_figure_size_and_checks():
    assert confusion_matrix_inches(10) == (8.0, 7.0)
    figure = plot_confusion_matrix(np.eye(10, dtype=int), [str(i) for i in range(10)])
    assert figure_to_array(figure).shape == (700, 800, 3)
    with pytest.raises(ValueError, match=r"must be \(3, 3\)"):
        plot_confusion_matrix(np.eye(2), ["a", "b", "c"])


@pytest.mark.parametrize(
    "value, expected",
    [(None, None), (0, None), (5, (5, 5)), ("5", (5, 5)), ("10,20", (10, 20)), (" 10 , 20 ", (10, 20)),
     ((3, 4), (3, 4)), ([3, 4], (3, 4))],
)
def test_parse_profile_batch(value, expected):
    assert parse_profile_batch(value) == expected


@pytest.mark.parametrize(
    "field, value",
    [
        ("image_summary_freq", -1), ("image_summary_freq", 1.5), ("num_summary_images", 65),
        ("num_summary_images", -1), ("histogram_freq", -1), ("histogram_freq", True),
        ("profile_batch", "20,10"), ("profile_batch", "0,5"), ("profile_batch", "ten"),
        ("profile_batch", "1,2,3"), ("profile_batch", -3), ("profile_batch", 2.0),
    ],
)
def test_bad_monitoring_configuration_is_refused_before_anything_is_written(tmp_path, field, value):
    run_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=rf"`{field}`.*Received: {field}="):
        train(TrainConfig(**{**TINY, "run_dir": str(run_dir), field: value}))
    assert not run_dir.exists()


def test_profile_range_beyond_the_run_is_refused_before_anything_is_written(tmp_path):
    run_dir = tmp_path / "run"
    # 1,293 training digits in batches of 128: 11 batches in one epoch.
    with pytest.raises(ValueError, match=r"only 11 training batches.*Received: profile_batch=10,12"):
        train(TrainConfig(**TINY, run_dir=str(run_dir), profile_batch="10,12"))
    assert not run_dir.exists()


def test_monitoring_fields_are_not_hyperparameters():
    from keras_ninception.training.config import hparams_of

    hparams = hparams_of(TrainConfig(histogram_freq=2, profile_batch="1,2").validate().resolved())
    assert hparams["learning_rate"] == 2e-3
    assert not {"histogram_freq", "image_summary_freq", "num_summary_images", "profile_batch"} & set(hparams)


HISTORY = {
    "loss": [2.0, 1.2, 0.9], "main_loss": [1.5, 0.9, 0.7], "aux1_loss": [1.6, 1.0, 0.7],
    "main_accuracy": [0.4, 0.7, 0.8], "aux1_accuracy": [0.3, 0.6, 0.7],
    "val_loss": [2.1, 1.4, 1.0], "val_main_loss": [1.6, 1.0, 0.8], "val_aux1_loss": [1.7, 1.1, 0.8],
    "val_main_accuracy": [0.35, 0.65, 0.75], "val_aux1_accuracy": [0.3, 0.55, 0.7],
}


def test_learning_curves_png_from_a_history_and_from_history_json(tmp_path):
    assert monitoring.history_heads(HISTORY) == ["main", "aux1"]
    assert tuple(round(v * DPI) for v in LEARNING_CURVES_INCHES) == (1200, 450)  # as documented
    path = plot_learning_curves(HISTORY, tmp_path / "curves.png")
    image = matplotlib.image.imread(path)
    assert image.shape == (450, 1200, 4)  # LEARNING_CURVES_INCHES at DPI
    assert image.std() > 0  # something was drawn
    (tmp_path / "history.json").write_text(json.dumps(HISTORY))
    again = matplotlib.image.imread(plot_learning_curves(str(tmp_path / "history.json"), tmp_path / "again.png"))
    np.testing.assert_array_equal(again, image)
    assert sorted(os.listdir(tmp_path)) == ["again.png", "curves.png", "history.json"]  # no temporary files


def test_learning_curves_use_a_log_scale_for_losses_and_tell_train_from_validation():
    # One huge first validation loss must not flatten the later epochs.
    history = {"loss": [2.3, 0.5, 0.2], "val_loss": [900.0, 0.6, 0.3], "main_accuracy": [0.2, 0.8, 0.9],
               "val_main_accuracy": [0.1, 0.7, 0.85]}
    loss_axes, accuracy_axes = learning_curves_figure(history).axes
    assert loss_axes.get_yscale() == "log" and accuracy_axes.get_yscale() == "linear"
    assert loss_axes.get_ylabel() == "loss (log scale)"
    low, high = loss_axes.get_ylim()
    assert low < 0.2 and high > 900  # every point shows, a decade apart from the next
    # A one-epoch run: train and validation points in distinct markers, validation hollow.
    one_epoch = {"loss": [0.7], "val_loss": [0.7], "main_accuracy": [0.5], "val_main_accuracy": [0.5]}
    for axes in learning_curves_figure(one_epoch).axes:
        train, validation = axes.get_lines()
        assert (train.get_label().endswith("train"), validation.get_label().endswith("validation")) == (True, True)
        assert (train.get_marker(), validation.get_marker()) == ("o", "s")
        assert validation.get_markerfacecolor() == "none" and train.get_markerfacecolor() != "none"
    # A loss that is not positive keeps the linear scale.
    assert learning_curves_figure({"loss": [0.0, 1.0]}).axes[0].get_yscale() == "linear"


@pytest.mark.parametrize(
    "history, message",
    [
        ([1, 2], "non-empty 'loss'"),
        ({"main_accuracy": [0.5]}, "non-empty 'loss'"),
        ({"loss": [1.0, 0.5], "main_accuracy": [0.5]}, r"list of 2 numbers.*main_accuracy"),
        ({"loss": [1.0], "main_accuracy": ["high"]}, "main_accuracy"),
    ],
)
def test_learning_curves_refuse_a_bad_history_and_keep_the_old_png(tmp_path, history, message):
    path = tmp_path / "curves.png"
    path.write_bytes(b"old")
    with pytest.raises(ValueError, match=message):
        plot_learning_curves(history, path)
    assert path.read_bytes() == b"old" and os.listdir(tmp_path) == ["curves.png"]


def _toy_model():
    inputs = keras.Input((8, 8, 1))
    outputs = keras.layers.Dense(3, activation="softmax", name="main")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


@pytest.mark.slow
def test_callback_writes_on_schedule_from_a_bounded_number_of_batches(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (40, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, 40).astype("int32")
    validation = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)  # 5 batches
    model = _toy_model()
    callback = ValidationImageSummaries(tmp_path, validation, ["a", "b", "c"], freq=2, num_images=5, max_batches=2)
    model.fit(x, y, epochs=4, batch_size=8, verbose=0, callbacks=[callback])

    summaries = read_summaries(tmp_path)
    assert set(summaries) == {"confusion_matrix", "confusion_matrix_counts", "predictions"}
    for tag in summaries:  # epochs 0 and 2 (every 2nd) and 3 (the last)
        assert sorted(summaries[tag]) == [0, 2, 3], tag
    assert summaries["confusion_matrix"][3][0] == "images"
    assert summaries["confusion_matrix_counts"][3][0] == "text"
    # 2 batches of 8: the matrix of the final model on the first 16 validation examples.
    counts = parse_markdown_matrix(summaries["confusion_matrix_counts"][3][1])
    predicted = np.argmax(model.predict(x[:16], verbose=0), axis=-1)
    np.testing.assert_array_equal(counts, confusion_matrix(y[:16], predicted, 3))
    np.testing.assert_array_equal(counts.sum(axis=1), np.bincount(y[:16], minlength=3))
    width, height, pixels = decode_image_summary(summaries["predictions"][2][1])
    assert grid_shape(5) == (2, 3)
    assert (width, height) == (round(3 * GRID_CELL_INCHES[0] * DPI), round(2 * GRID_CELL_INCHES[1] * DPI))
    assert pixels.shape[:2] == (height, width)


def test_callback_arguments_are_checked(tmp_path):
    validation = tf.data.Dataset.from_tensor_slices((np.zeros((2, 8, 8, 1)), np.zeros(2, int))).batch(2)
    with pytest.raises(ValueError, match="Received: freq=0"):
        ValidationImageSummaries(tmp_path, validation, ["a", "b"], freq=0)
    with pytest.raises(ValueError, match="Received: num_images=65"):
        ValidationImageSummaries(tmp_path, validation, ["a", "b"], num_images=65)
    with pytest.raises(ValueError, match="validation_data=None"):
        ValidationImageSummaries(tmp_path, None, ["a", "b"])


@pytest.fixture(scope="module")
def monitored_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("runs") / "nin")
    config = TrainConfig(**{**TINY, "epochs": 2}, run_dir=run_dir, num_summary_images=9, histogram_freq=1,
                         profile_batch="2,3")
    return run_dir, train(config, verbose=0)


@pytest.mark.slow
def test_run_writes_confusion_matrix_and_validation_grid_each_epoch(monitored_run):
    run_dir, result = monitored_run
    summaries = read_summaries(os.path.join(run_dir, "logs", "validation_images"))
    num_validation = result["metrics"]["validation"]["num_examples"]
    assert num_validation == 144
    for step in (0, 1):
        width, height, pixels = decode_image_summary(summaries["confusion_matrix"][step][1])
        assert (width, height) == tuple(round(DPI * s) for s in confusion_matrix_inches(10))
        assert pixels.shape[:2] == (height, width)
        width, height, _ = decode_image_summary(summaries["predictions"][step][1])
        assert (width, height) == (round(3 * GRID_CELL_INCHES[0] * DPI), round(3 * GRID_CELL_INCHES[1] * DPI))
        counts = parse_markdown_matrix(summaries["confusion_matrix_counts"][step][1])
        # Every validation image (2 batches of 128 > 144), and Keras' own accuracy on them.
        assert counts.sum() == num_validation
        assert np.trace(counts) / num_validation == pytest.approx(result["history"]["val_main_accuracy"][step])


@pytest.mark.slow
def test_run_writes_histograms_profile_and_learning_curves(monitored_run):
    run_dir, _ = monitored_run
    train_summaries = read_summaries(os.path.join(run_dir, "logs", "train"))
    histograms = [tag for tag, steps in train_summaries.items() if {p for p, _ in steps.values()} == {"histograms"}]
    assert histograms and all(sorted(train_summaries[tag]) == [0, 1] for tag in histograms)
    assert any("mlpconv1" in tag and tag.endswith("/histogram") for tag in histograms)
    assert glob.glob(os.path.join(run_dir, "logs", "train", "plugins", "profile", "*", "*.xplane.pb"))
    image = matplotlib.image.imread(os.path.join(run_dir, "learning_curves.png"))
    assert image.shape == (450, 1200, 4)  # LEARNING_CURVES_INCHES at DPI
    # Everything the run wrote is the run's own: --overwrite may replace the folder.
    assert check_run_folder(run_dir, False, True, ("config.json",), RUN_FILES) is False
