"""Per-head evaluation of a saved run on any split of any dataset.

For each head (`main`, `aux1`, `aux2`; `main` alone for NIN, no-aux and pruned runs): loss,
top-1 and top-5 accuracy, and the parameters and measured latency of the network up to that
head. Reports and charts of the result are written by `keras_ninception.training.heads`.
"""

import os
import statistics
import time

import keras

from keras_ninception.checks import check_int
from keras_ninception.data import load_dataset
from keras_ninception.models import head_models
from keras_ninception.models.common import load_keras_file
from keras_ninception.models.profile import profile_model
from keras_ninception.training.compile import compile_model
from keras_ninception.training.run import per_head_metrics
from keras_ninception.training.run_folder import read_json

SPLITS = ("train", "validation", "test")
TOP_K = 5
# Latency: timed and untimed `predict_on_batch` calls per head.
LATENCY_REPEATS = 10
LATENCY_WARMUP = 2


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


def check_compatible(model, splits, class_names=None, check_shape=True):
    """Raises ValueError when a dataset's images or classes do not fit a model.

    `class_names`: the names the model was trained with (from `config.json`); when given,
    the dataset must have the same names in the same order, or the reported accuracy would
    compare unrelated labels. `check_shape=False` skips the image shape.
    """
    expected = tuple(model.input_shape[1:])
    if check_shape and tuple(splits.input_shape) != expected:
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


def load_run_splits(
    model, config, dataset=None, data_dir=None, download=False, batch_size=None, splits=None, uncropped=False
):
    """The dataset of a run (or `dataset`), read as the run was trained, checked against `model`.

    Images get the run's image size, channels and preprocessing, labels are keyed by the
    model's output names (plain for a single output), the train split is not augmented.
    Labels are indices into the run's class names (`config.json`): an image folder's class
    folders map to them by name, so a folder may hold only some of the classes.
    `splits`: `None` for every split, or the ones to read (`("test",)`): an image folder
    then needs only those folders (`load_dataset`'s `splits`).
    `uncropped`: for a run trained with `eval_crop`, images at the size it resizes to before
    the central crop (`pipeline.central_crop_size`), not cropped: for an export, which crops
    them itself (`deploy.evaluate`); the image shape is then not checked against `model`.

    Raises:
        ValueError: a bad batch size, or a dataset whose image shape, class count or class
            names do not fit the model.
    """
    if batch_size is not None:
        check_int("batch_size", batch_size)
    train_config = config["train_config"]
    output_names = list(model.output_names)
    image_size, eval_crop = train_config["image_size"], train_config.get("eval_crop")
    if uncropped and eval_crop is not None:
        from keras_ninception.data.pipeline import central_crop_size

        image_size, eval_crop = central_crop_size((image_size, image_size), eval_crop), None
    splits = load_dataset(
        dataset or train_config["dataset"],
        image_size=image_size,
        channels=config["input_shape"][-1 if keras.config.image_data_format() == "channels_last" else 0],
        batch_size=batch_size if batch_size is not None else train_config["batch_size"],
        output_names=output_names if len(output_names) > 1 else None,
        validation_fraction=train_config["validation_fraction"],
        augment="none",
        data_dir=data_dir if data_dir is not None else train_config["data_dir"],
        download=download,
        seed=train_config["seed"],
        on_bad_image=train_config["on_bad_image"],
        check_images=train_config.get("check_images", "header"),
        splits=splits,
        class_names=config.get("class_names"),
        eval_crop=eval_crop,
        cache="none",  # each split is read once
    )
    check_compatible(model, splits, config.get("class_names"), check_shape=image_size == train_config["image_size"])
    return splits


def top_k_of(num_classes):
    """The k of the top-5 accuracy: 5, or the number of classes when there are fewer."""
    return min(TOP_K, int(num_classes))


def compile_for_evaluation(model, config=None):
    """Recompiles `model` with its own loss and loss weights plus a top-5 accuracy per head.

    The losses, loss weights and accuracy metrics are the ones the model was compiled with
    (read back with `Model.get_compile_config`; `compile_model` with the run's
    `aux_loss_weight` for an uncompiled model), so the total loss and each head's loss and
    accuracy are what training reported. Each head also gets
    `keras.metrics.SparseTopKCategoricalAccuracy(k=min(5, num_classes))`, logged as
    `{head}_top5_accuracy`. The optimizer is kept (evaluation does not use it).

    Returns:
        `model`.
    """
    names = list(model.output_names)
    compile_config = model.get_compile_config() if model.compiled else {}
    if not compile_config:
        aux_loss_weight = ((config or {}).get("train_config") or {}).get("aux_loss_weight", 0.3)
        compile_model(model, aux_loss_weight=aux_loss_weight)
        compile_config = model.get_compile_config()
    compile_config = keras.saving.deserialize_keras_object(compile_config)
    k = top_k_of(model.outputs[0].shape[-1])

    def top_k(name):
        return keras.metrics.SparseTopKCategoricalAccuracy(k=k, name=name)

    if len(names) == 1:
        # Named in full, as compile_model names a single output's accuracy.
        metrics = [
            keras.metrics.SparseCategoricalAccuracy(name=f"{names[0]}_accuracy"),
            top_k(f"{names[0]}_top5_accuracy"),
        ]
    else:  # Keras prefixes each metric with its output's name: main_top5_accuracy.
        metrics = {name: ["accuracy", top_k("top5_accuracy")] for name in names}
    model.compile(**{**compile_config, "optimizer": model.optimizer, "metrics": metrics})
    return model


def measure_latency(model, images, repeats=LATENCY_REPEATS, warmup=LATENCY_WARMUP):
    """Median inference time of `model` on one fixed batch, in milliseconds.

    Runs `model.predict_on_batch(images)` (the compiled `tf.function` predict step, outputs
    copied to NumPy) `warmup` times untimed (the first call traces the graph), then
    `repeats` times timed with `time.perf_counter`; the median is robust to a busy machine.

    Args:
        model: a `keras.Model`.
        images: one batch of inputs, `(batch, H, W, C)` float32 (array or tensor).
        repeats: int >= 1, timed calls. Default 10.
        warmup: int >= 0, untimed calls first. Default 2.

    Returns:
        `{"latency_ms_per_batch": median ms of one call, "latency_ms_per_image": that / batch}`.
    """
    return time_batch_calls(lambda: model.predict_on_batch(images), int(images.shape[0]), repeats, warmup)


def time_batch_calls(call, batch_size, repeats=LATENCY_REPEATS, warmup=LATENCY_WARMUP):
    """Median wall-clock time of `call()`, one batch of `batch_size` images, in milliseconds.

    `call` runs `warmup` times untimed, then `repeats` times timed with `time.perf_counter`.
    Used for Keras models (`measure_latency`) and exported runtimes (`deploy.evaluate`).

    Returns:
        `{"latency_ms_per_batch": median ms of one call, "latency_ms_per_image": that / batch_size}`.

    Raises:
        ValueError: `repeats` < 1 or `warmup` < 0.
    """
    check_int("repeats", repeats)
    check_int("warmup", warmup, minimum=0)
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    per_batch = 1000.0 * statistics.median(times)
    return {"latency_ms_per_batch": per_batch, "latency_ms_per_image": per_batch / batch_size}


def _device():
    import tensorflow as tf

    return "GPU" if tf.config.list_logical_devices("GPU") else "CPU"


def evaluate_run(
    run_dir,
    dataset=None,
    split=None,
    data_dir=None,
    download=False,
    batch_size=None,
    verbose="auto",
    latency_repeats=LATENCY_REPEATS,
    latency_warmup=LATENCY_WARMUP,
):
    """Loss, top-1 and top-5 accuracy, size and speed of every head of a saved run on one split.

    Every head is reported with the network that computes it: for `aux1` the layers up to
    inception 4a plus the aux1 head, for `aux2` up to inception 4d plus its head, for `main`
    the inference model (`keras_ninception.models.head_models`). A NIN, a GoogLeNet without
    aux heads or a pruned run has one head, `main`.

    Args:
        run_dir: a run folder written by `train` or `prune_run` (`model.keras` +
            `config.json`).
        dataset: a source for `load_dataset` (`"digits"`, a folder, a TFDS name); default
            the run's own dataset. With a `split`, only that split is read: a folder holding
            only `test/<class>/...` evaluates `split="test"`; its class folders map to the
            run's class names, and one the run does not know is an error.
        split: `"train"`, `"validation"` or `"test"`, or None (default): `"test"`, and
            `"validation"` when the dataset has no test split (the result's `split` says
            which). The train split is read without augmentation.
        data_dir, download: as for `load_dataset`; default the run's.
        batch_size: default the run's. Also the batch the latency is measured on (the
            split's first batch).
        verbose: Keras verbosity.
        latency_repeats: int >= 0, timed `predict_on_batch` calls per head (see
            `measure_latency`). Default 10; 0 skips the measurement (latencies are None).
        latency_warmup: int >= 0, untimed calls before them. Default 2.

    Returns:
        `{"run_dir", "dataset", "split", "num_examples", "loss", "top_k", "latency",
        "heads": {"main": {"loss", "accuracy", "top5_accuracy", "params", "macs_per_image",
        "latency_ms_per_batch", "latency_ms_per_image"}, "aux1": ..., "aux2": ...}}`.
        `accuracy` is top-1; `top5_accuracy` is top-`top_k` with `top_k = min(5,
        num_classes)`; `params` is `count_params()` of the head's network (BatchNorm moving
        statistics included); `macs_per_image` its multiply-adds per image
        (`keras_ninception.models.profile.profile_model`); latencies are milliseconds, measured as `latency` says
        (`{"batch_size", "repeats", "warmup", "device", "method"}`). A pruned run adds
        `"pruned_from"` (its `config.json` note).

    Raises:
        ValueError: an unknown split, a bad batch size or latency count, a split the dataset
            lacks, a dataset whose image shape, class count or class names do not fit the
            model (a class folder the run does not know), or an unreadable
            `model.keras`/`config.json`.
        FileNotFoundError: `run_dir` is not a completed run.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"`split` must be one of {list(SPLITS)} or None. Received: split={split!r}")
    if batch_size is not None:
        check_int("batch_size", batch_size)
    check_int("latency_repeats", latency_repeats, minimum=0)
    check_int("latency_warmup", latency_warmup, minimum=0)
    model, config = load_run(run_dir)
    splits = load_run_splits(
        model, config, dataset, data_dir, download, batch_size, splits=None if split is None else (split,)
    )
    if split is None:
        split = "test" if splits.test is not None else "validation"
    data = splits.get_split(split)
    compile_for_evaluation(model, config)
    logs = model.evaluate(data, return_dict=True, verbose=verbose)
    result = {
        "run_dir": run_dir,
        "dataset": splits.source,
        "split": split,
        "num_examples": int(splits.num_examples[split]),
        "top_k": top_k_of(splits.num_classes),
        **per_head_metrics(logs, model.output_names),
    }
    images = next(iter(data))[0]
    result["latency"] = {
        "batch_size": int(images.shape[0]),
        "repeats": latency_repeats,
        "warmup": latency_warmup,
        "device": _device(),
        "method": "median wall-clock time of Model.predict_on_batch on the split's first batch, "
        "after the warm-up calls; milliseconds",
    }
    for name, network in head_models(model).items():
        head = result["heads"][name]
        head["params"] = int(network.count_params())
        head["macs_per_image"] = int(profile_model(network).macs)
        timing = {"latency_ms_per_batch": None, "latency_ms_per_image": None}
        if latency_repeats:
            timing = measure_latency(network, images, latency_repeats, latency_warmup)
        head.update(timing)
    if "pruned_from" in config:
        result["pruned_from"] = config["pruned_from"]
    return result
