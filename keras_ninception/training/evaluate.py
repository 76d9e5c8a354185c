"""Per-head evaluation of a saved run on any split of any dataset."""

import os

import keras

from keras_ninception.data import load_dataset
from keras_ninception.checks import check_int
from keras_ninception.models.common import load_keras_file
from keras_ninception.training.run import per_head_metrics, read_json

SPLITS = ("train", "validation", "test")


def load_run(run_dir):
    """Loads `(model, config)` of a completed run folder.

    The `.keras` file is loaded with Keras' safe mode on and without `custom_objects`:
    loading it reads configuration and weights, never code (`load_keras_file`).

    Raises:
        FileNotFoundError: `run_dir` has no `model.keras` or `config.json`.
        ValueError: `model.keras` holds code (a `Lambda` layer) or is not readable, or
            `config.json` is not a run configuration.
    """
    model_path = os.path.join(run_dir, "model.keras")
    config_path = os.path.join(run_dir, "config.json")
    for path in (config_path, model_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"{run_dir!r} is not a completed run: {os.path.basename(path)} is missing."
            )
    config = read_json(config_path)
    if not isinstance(config, dict) or not isinstance(config.get("train_config"), dict):
        raise ValueError(f"{config_path!r} is not a run configuration (no 'train_config').")
    return load_keras_file(model_path), config


def check_compatible(model, splits, class_names=None):
    """Raises ValueError when a dataset's images or classes do not fit a model.

    `class_names`: the names the model was trained with (from `config.json`); when given,
    the dataset must have the same names in the same order, or the reported accuracy would
    compare unrelated labels.
    """
    expected = tuple(model.input_shape[1:])
    if tuple(splits.input_shape) != expected:
        raise ValueError(
            f"The dataset's images have shape {tuple(splits.input_shape)} but the model takes "
            f"{expected} (height, width, channels in the data format). Received: "
            f"source={splits.source!r}"
        )
    num_classes = model.outputs[0].shape[-1]
    if splits.num_classes != num_classes:
        raise ValueError(
            f"The dataset has {splits.num_classes} classes but the model was trained on "
            f"{num_classes}. Received: source={splits.source!r}"
        )
    if class_names is not None and list(splits.class_names) != list(class_names):
        raise ValueError(
            f"The dataset's classes {list(splits.class_names)[:10]} are not the classes the "
            f"model was trained on {list(class_names)[:10]} (same order). "
            f"Received: source={splits.source!r}"
        )


def evaluate_run(run_dir, dataset=None, split="test", data_dir=None, download=False, batch_size=None, verbose="auto"):
    """Loss and accuracy of every head of a saved run on one split.

    Args:
        run_dir: a run folder written by `train` (`model.keras` + `config.json`).
        dataset: a source for `load_dataset` (`"digits"`, a folder, a TFDS name); default
            the run's own dataset.
        split: `"train"`, `"validation"` or `"test"` (default). The train split is read
            without augmentation.
        data_dir, download: as for `load_dataset`; default the run's.
        batch_size: default the run's.
        verbose: Keras verbosity.

    Returns:
        `{"run_dir", "dataset", "split", "num_examples", "loss", "heads": {"main":
        {"loss", "accuracy"}, "aux1": ..., "aux2": ...}}`.

    Raises:
        ValueError: an unknown split, a bad batch size, a split the dataset lacks, a dataset
            whose image shape, class count or class names do not fit the model, or an
            unreadable `model.keras`/`config.json`.
        FileNotFoundError: `run_dir` is not a completed run.
    """
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {list(SPLITS)}. Received: split={split!r}")
    if batch_size is not None:
        check_int("batch_size", batch_size)
    model, config = load_run(run_dir)
    train_config = config["train_config"]
    output_names = list(model.output_names)
    splits = load_dataset(
        dataset or train_config["dataset"],
        image_size=train_config["image_size"],
        channels=config["input_shape"][-1 if keras.config.image_data_format() == "channels_last" else 0],
        batch_size=batch_size if batch_size is not None else train_config["batch_size"],
        output_names=output_names if len(output_names) > 1 else None,
        validation_fraction=train_config["validation_fraction"],
        augment="none",
        data_dir=data_dir if data_dir is not None else train_config["data_dir"],
        download=download,
        seed=train_config["seed"],
        on_bad_image=train_config["on_bad_image"],
    )
    check_compatible(model, splits, config.get("class_names"))
    data = getattr(splits, split)
    if data is None:
        raise ValueError(
            f"The dataset {splits.source!r} has no {split!r} split. Received: split={split!r}"
        )
    logs = model.evaluate(data, return_dict=True, verbose=verbose)
    return {
        "run_dir": run_dir,
        "dataset": splits.source,
        "split": split,
        "num_examples": int(splits.num_examples[split]),
        **per_head_metrics(logs, output_names),
    }
