"""Training runs: data → builder → compile → `model.fit` → a run folder under `saved_models/`.

A run folder holds `config.json` (the resolved configuration), `logs/` (TensorBoard),
`checkpoints/` (`last.keras` and the `BackupAndRestore` state), `history.csv` (one row per
finished epoch, appended across resumes), and at the end `model.keras` (every head),
`inference.keras` (aux heads removed), `metrics.json`, `history.json` and
`learning_curves.png`. Every file is written to a temporary name and renamed into place,
so a crash never leaves a half-written file under its final name.
"""

import csv
import dataclasses
import datetime
import json
import math
import os
import re
import shutil
import tempfile

import keras
import tensorflow as tf

from keras_ninception.checks import check_bool, check_choice, check_int, check_number
from keras_ninception.data import load_dataset
from keras_ninception.models import (
    build_googlenet,
    build_nin,
    min_input_size,
    to_inference_model,
    with_keras_batch_normalization,
)
from keras_ninception.training import monitoring
from keras_ninception.training import distribute
from keras_ninception.training.compile import compile_model
from keras_ninception.training.precision import PRECISIONS, dtype_policy, resolve_precision

DEFAULT_RUNS_DIR = "saved_models"
MODELS = ("googlenet", "nin")
OUTPUT_NAMES = ("main", "aux1", "aux2")
# The embedded digits are 8×8 px: 24 px (3×) is enough for both models and keeps the default
# GoogLeNet run within a few CPU minutes.
DEFAULT_IMAGE_SIZES = {"digits": 24}


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run; saved as `config.json`.

    Attributes:
        model: `"googlenet"` (default) or `"nin"`.
        dataset: `"digits"` (embedded, default), an image-folder path, or a TFDS name.
        variant: GoogLeNet variant; None picks `"cifar"` below the paper variant's minimum
            input size (79 px) and `"paper"` above. Ignored for NIN.
        image_size: int, the square input side in pixels images are resized to. Default
            None: `DEFAULT_IMAGE_SIZES[dataset]`, else 32.
        epochs: int >= 1. Default 6.
        batch_size: int >= 1. Default 64.
        learning_rate: float > 0, the peak of the one-epoch warm-up then cosine decay.
            Default 2e-3.
        optimizer: `"adam"` (default), `"adamw"`, `"sgd"` or `"rmsprop"`.
        weight_decay: float or None (default).
        aux_loss_weight: weight of each aux head's loss. Default 0.3 (paper).
        aux_classifiers: bool, GoogLeNet's aux heads. Default True.
        batch_norm: NIN only: batch normalization after each convolution. Default True
            (deviation from the paper, for training only: the plain NIN stayed at the
            chance loss ln(10) for 6 epochs on the digits with Adam 2e-3 and 5e-4 and SGD
            0.02 and 0.05; NIN without normalization is sensitive to the learning rate and
            the initialization). False trains the paper's form.
        validation_fraction: share of train carved out for validation when the source
            has no validation split. Default 0.1.
        augment: None (the loader's default for the source), `"none"`, `"crop"`,
            `"crop_flip"`.
        seed: int, seeds Keras, TF and NumPy, and the shuffling. Default 0.
        data_dir: TFDS data directory, or None for TFDS' default.
        download: bool, let TFDS download a named dataset. Default False.
        run_dir: the run folder; None makes `saved_models/<model>-<dataset>-<time>`.
        on_bad_image: `"error"` (default) or `"skip"` for unreadable files in a folder.
        image_summary_freq: int >= 0, epochs between the confusion-matrix and validation-
            image summaries in TensorBoard (`monitoring.ValidationImageSummaries`); 0 turns
            them off. Default 1.
        num_summary_images: int in [0, 64], validation images in the TensorBoard grid.
            Default 16.
        histogram_freq: int >= 0, epochs between weight histograms (Keras' `TensorBoard`
            argument); 0 (default) turns them off.
        profile_batch: None (default, no profiling), a batch number, `(start, stop)` or
            `"start,stop"`: the training batches (from 1) the TF profiler traces (Keras'
            `TensorBoard` argument); stored as `(start, stop)`.
        strategy: `"auto"` (default), `"none"`, `"mirrored"` or `"multiworker"`: the
            `tf.distribute` strategy (see `keras_ninception.training.distribute`; `"auto"`
            is multi-worker when `TF_CONFIG` names several workers, mirrored with more than
            one GPU, else none). `batch_size` is the global batch, split between replicas.
            How a run is executed, not what it trains: a run may resume under another
            strategy.
        precision: the Keras dtype policy of the model: `"auto"` (default: bfloat16 mixed
            precision on CPUs with AVX512-BF16 or AMX, float16 on GPUs, else float32; see
            `training.precision`), or `"float32"`, `"mixed_bfloat16"`, `"mixed_float16"` to
            force one. Weights and the softmax outputs stay float32. `train` records the
            resolved policy in `config.json`.
    """

    model: str = "googlenet"
    dataset: str = "digits"
    variant: str | None = None
    image_size: int | None = None
    epochs: int = 6
    batch_size: int = 64
    learning_rate: float = 2e-3
    optimizer: str = "adam"
    weight_decay: float | None = None
    aux_loss_weight: float = 0.3
    aux_classifiers: bool = True
    batch_norm: bool = True
    validation_fraction: float = 0.1
    augment: str | None = None
    seed: int = 0
    data_dir: str | None = None
    download: bool = False
    run_dir: str | None = None
    on_bad_image: str = "error"
    image_summary_freq: int = 1
    num_summary_images: int = 16
    histogram_freq: int = 0
    profile_batch: tuple[int, int] | None = None
    strategy: str = "auto"
    precision: str = "auto"

    def validate(self):
        """Raises ValueError, in the package's words, for a bad field. Returns self.

        Paths (`dataset`, `data_dir`, `run_dir`) may be `os.PathLike`; they become strings.
        """
        for field in ("dataset", "data_dir", "run_dir"):
            value = getattr(self, field)
            if value is None and field != "dataset":
                continue
            if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
                raise ValueError(f"`{field}` must be a non-empty string or path. Received: {field}={value!r}")
            setattr(self, field, os.fspath(value))
        check_choice("model", self.model, MODELS)
        check_choice("strategy", self.strategy, distribute.STRATEGIES)
        check_choice("precision", self.precision, PRECISIONS)
        check_int("epochs", self.epochs)
        check_int("batch_size", self.batch_size)
        if self.image_size is not None:
            check_int("image_size", self.image_size)
        check_int("seed", self.seed, minimum=0, maximum=2**32 - 1)
        check_number("learning_rate", self.learning_rate, strict=True)
        check_number("aux_loss_weight", self.aux_loss_weight)
        if self.weight_decay is not None:
            check_number("weight_decay", self.weight_decay)
        for flag in ("aux_classifiers", "batch_norm", "download"):
            check_bool(flag, getattr(self, flag))
        check_int("image_summary_freq", self.image_summary_freq, minimum=0)
        check_int("num_summary_images", self.num_summary_images, minimum=0, maximum=monitoring.MAX_SUMMARY_IMAGES)
        check_int("histogram_freq", self.histogram_freq, minimum=0)
        self.profile_batch = monitoring.parse_profile_batch(self.profile_batch)
        return self

    def resolved(self):
        """A copy with `image_size`, `variant` and `precision` filled in; this is what
        `config.json` holds. `precision="auto"` becomes the policy this machine gets, so a
        resumed run keeps the policy it started with."""
        config = dataclasses.replace(self)
        if config.image_size is None:
            config.image_size = DEFAULT_IMAGE_SIZES.get(config.dataset, 32)
        config.variant = config.resolved_variant()
        config.precision = resolve_precision(config.precision)
        return config

    def resolved_variant(self):
        if self.model != "googlenet":
            return None
        if self.variant is not None:
            return self.variant
        return "paper" if (self.image_size or 32) >= min_input_size("paper") else "cifar"

    def output_names(self):
        """The model's output names, which key the per-head labels."""
        if self.model == "googlenet" and self.aux_classifiers:
            return OUTPUT_NAMES
        return None


def slug(text):
    return re.sub(r"[^A-Za-z0-9]+", "-", os.path.basename(os.path.normpath(str(text)))).strip("-")


def default_run_dir(config):
    """`saved_models/<model>-<dataset>-<YYYYmmdd-HHMMSS>`, unique in `saved_models/`."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(DEFAULT_RUNS_DIR, f"{config.model}-{slug(config.dataset)}-{stamp}")
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    return path


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_atomic(path, write, suffix):
    """Calls `write(tmp_path)` on a temporary file beside `path`, then renames it into place.

    The file gets the usual permissions (0666 less the umask), and the temporary file is
    removed if `write` fails, so `path` is either the old file or the whole new one.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomic(path, data):
    """Writes `data` as JSON to `path` atomically (temporary file + `os.replace`)."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"  # fails before any file exists

    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    replace_atomic(path, write, ".json")


def save_model_atomic(model, path):
    """`model.save(path)` atomically: a `.keras` file is whole or absent, never half-written.

    Batch normalization is written as Keras' own layer (`with_keras_batch_normalization`: same
    config and weights), so the run's `model.keras` and `inference.keras` load with Keras alone.
    """
    replace_atomic(path, with_keras_batch_normalization(model).save, ".keras")


def read_json(path):
    """Reads a JSON file, or raises ValueError naming it."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read {path!r}: {error}") from None


# Everything a run folder may hold, including what `ninception evaluate` and `ninception export`
# write into it later (`evaluation/`, `export/`): `--overwrite` replaces the run with these,
# since an old report or export is of the old model.
RUN_FILES = (
    "config.json", "model.keras", "inference.keras", "metrics.json", "history.json", "history.csv", "logs",
    "checkpoints", monitoring.LEARNING_CURVES_FILE, "evaluation", "export",
)
# TrainConfig fields that say how and where a run is executed, not what it trains: they are
# not compared when the same command resumes a run, and `resume` takes them from the call.
EXECUTION_FIELDS = ("run_dir", "strategy")


def check_run_folder(run_dir, resume, overwrite, markers, own_files, kind="run"):
    """The run-folder policy shared by train and tune runs; deletes nothing.

    A folder holds a `kind` when it has one of `markers`. A new run needs a missing or empty
    folder; an existing one is refused unless `resume` (continue it) or `overwrite` (replace
    it, and only when every entry is one of `own_files`).

    Returns:
        True when there is a run to resume, else False.

    Raises:
        ValueError: both `resume` and `overwrite`.
        FileExistsError: `run_dir` is a file, holds something else, or holds a `kind` and
            neither flag was given.
        FileNotFoundError: `resume` without a `kind` in `run_dir`.
    """
    if resume and overwrite:
        raise ValueError("Pass either `resume` or `overwrite`, not both.")
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise FileExistsError(f"--run-dir {run_dir!r} is a file, not a folder; choose another --run-dir.")
    entries = set(os.listdir(run_dir)) if os.path.isdir(run_dir) else set()
    if not entries & set(markers):
        if resume:
            raise FileNotFoundError(
                f"Cannot resume: {run_dir!r} holds no {kind} (no {' or '.join(markers)}). Drop "
                "--resume to start a new one there."
            )
        if entries:
            raise FileExistsError(
                f"Run folder {run_dir!r} is not empty and holds no {kind}; choose another "
                "--run-dir (nothing was written)."
            )
        return False
    if overwrite:
        foreign = sorted(e for e in entries if e not in own_files and not e.startswith(".tmp-"))
        if foreign:
            raise FileExistsError(
                f"--overwrite only replaces a {kind}, and {run_dir!r} also holds {foreign[:5]}; "
                "move them or choose another --run-dir (nothing was deleted)."
            )
        return False
    if not resume:
        raise FileExistsError(
            f"Run folder {run_dir!r} already holds a {kind}. Pass --resume to continue it, "
            "--overwrite to replace it, or choose another --run-dir (nothing was written)."
        )
    return True


def clear_run_folder(run_dir, own_files):
    """Removes the entries `own_files` from `run_dir`, nothing else."""
    for entry in own_files:
        path = os.path.join(run_dir, entry)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def _read_saved_run(run_dir):
    """The `config.json` of the run in `run_dir`; raises ValueError when it is not one."""
    path = os.path.join(run_dir, "config.json")
    saved = read_json(path)
    if not isinstance(saved, dict) or not isinstance(saved.get("train_config"), dict):
        raise ValueError(f"{path!r} is not a run configuration.")
    return saved


def _saved_config(saved, config):
    """The `TrainConfig` saved in `config.json`, with the execution fields of `config`."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    restored = TrainConfig(**{k: v for k, v in saved["train_config"].items() if k in fields})
    for field in EXECUTION_FIELDS:
        setattr(restored, field, getattr(config, field))
    return restored.validate().resolved()


def _config_differences(saved_config, config):
    """`epochs: 3 saved, 4 now; ...` for the fields (not EXECUTION_FIELDS) that differ."""
    saved_fields, fields = dataclasses.asdict(saved_config), dataclasses.asdict(config)
    return "; ".join(
        f"{name}: {saved_fields[name]!r} saved, {fields[name]!r} now"
        for name in fields
        if name not in EXECUTION_FIELDS and saved_fields[name] != fields[name]
    )


def _check_run_dir(run_dir, resume, overwrite, config):
    """`check_run_folder` for a train run, plus resuming an interrupted run by the same command.

    A folder with `config.json` and no `model.keras` holds an interrupted run. Without
    `resume` or `overwrite`, it is resumed when its saved configuration equals `config`
    (`EXECUTION_FIELDS` aside), and refused otherwise.

    Returns:
        `(saved, automatic)`: the saved `config.json` when resuming (else None), and
        whether the resume was chosen here rather than asked for.
    """
    interrupted = os.path.isfile(os.path.join(run_dir, "config.json")) and not os.path.exists(
        os.path.join(run_dir, "model.keras")
    )
    if interrupted and not resume and not overwrite:
        saved = _read_saved_run(run_dir)
        differences = _config_differences(_saved_config(saved, config), config)
        if differences:
            raise FileExistsError(
                f"Run folder {run_dir!r} holds an interrupted run with another configuration "
                f"({differences}). Pass --resume to continue it with its saved configuration, "
                "--overwrite to replace it, or choose another --run-dir (nothing was written)."
            )
        return saved, True
    if not check_run_folder(run_dir, resume, overwrite, ("config.json", "model.keras"), RUN_FILES):
        return None, False
    if os.path.exists(os.path.join(run_dir, "model.keras")):
        raise FileExistsError(
            f"The run in {run_dir!r} is already complete (model.keras exists); nothing to "
            "resume. Pass --overwrite to train it again."
        )
    return _read_saved_run(run_dir), False


def load_splits(config):
    """`load_dataset` with the data fields of a run configuration (train or tune)."""
    return load_dataset(
        config.dataset,
        image_size=config.image_size,
        batch_size=config.batch_size,
        output_names=config.output_names(),
        validation_fraction=config.validation_fraction,
        augment=config.augment,
        data_dir=config.data_dir,
        download=config.download,
        seed=config.seed,
        on_bad_image=config.on_bad_image,
    )


def build_model(config, input_shape, num_classes):
    """The uncompiled model a `TrainConfig` asks for, its layers in `config.precision`'s policy."""
    with dtype_policy(config.precision):
        if config.model == "nin":
            return build_nin(
                input_shape=input_shape, num_classes=num_classes, batch_norm=config.batch_norm
            )
        return build_googlenet(
            input_shape=input_shape,
            num_classes=num_classes,
            variant=config.resolved_variant(),
            aux_classifiers=config.aux_classifiers,
        )


def learning_rate_schedule(config, steps_per_epoch):
    """Linear warm-up over the first epoch to `learning_rate`, then cosine decay to 0.

    The schedule is a step function of the optimizer's iterations, so a resumed run
    (`BackupAndRestore` restores the iterations) continues on the same curve.
    """
    total = steps_per_epoch * config.epochs
    warmup = steps_per_epoch if config.epochs > 1 else 0
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=config.learning_rate * (0.1 if warmup else 1.0),
        decay_steps=max(1, total - warmup),
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def _finite(logs):
    return all(math.isfinite(v) for v in (logs or {}).values() if isinstance(v, float))


class FiniteModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """`ModelCheckpoint` that skips an epoch whose logs hold NaN or inf (keeps the last good).

    The file is replaced atomically: Keras saves to `.tmp-<name>` beside `filepath`, which
    is then renamed into place, so a run killed while saving keeps the previous checkpoint.
    Other arguments as for `ModelCheckpoint`.
    """

    def __init__(self, filepath, **kwargs):
        directory, name = os.path.split(filepath)
        super().__init__(os.path.join(directory, f".tmp-{name}"), **kwargs)
        self.final_filepath = filepath

    def on_epoch_end(self, epoch, logs=None):
        if _finite(logs):
            super().on_epoch_end(epoch, logs)
            if os.path.exists(self.filepath):
                os.replace(self.filepath, self.final_filepath)


class FiniteBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`BackupAndRestore` that does not back up an epoch whose logs hold NaN or inf.

    `restore_dir`: restore from the state in this folder instead of `backup_dir` (a
    multi-worker run's non-chief workers restore the chief's state and back up into their
    own temporary folder). Other arguments as for `BackupAndRestore`.
    """

    def __init__(self, backup_dir, restore_dir=None, **kwargs):
        super().__init__(backup_dir, **kwargs)
        self.restore_dir = restore_dir

    def on_train_begin(self, logs=None):
        if self.restore_dir is None:
            return super().on_train_begin(logs)
        source = keras.callbacks.BackupAndRestore(self.restore_dir, double_checkpoint=self.double_checkpoint)
        source.set_model(self.model)
        source.on_train_begin(logs)

    def on_epoch_end(self, epoch, logs=None):
        if _finite(logs):
            super().on_epoch_end(epoch, logs)


# TrainConfig fields that say what is logged, not how the model is trained.
MONITORING_FIELDS = ("image_summary_freq", "num_summary_images", "histogram_freq", "profile_batch")


def hparams_of(config):
    """The run's hyperparameters for TensorBoard's HParams dashboard (None values left out)."""
    return {
        k: v
        for k, v in dataclasses.asdict(config).items()
        if isinstance(v, (bool, int, float, str)) and k not in ("run_dir", "data_dir") + MONITORING_FIELDS
    }


def make_callbacks(run_dir, hparams=None, config=None, splits=None, restore_dir=None, keep_backup=False):
    """Keras callbacks of a run: history, resume state, last checkpoint, TensorBoard, NaN stop.

    - `CSVLogger(run_dir/history.csv, append=True)`: one row per finished epoch, kept
      across resumes (`history.json` is made from it). It runs before the backup, so an
      epoch is never backed up without its row (a kill in between can repeat a row, and
      `read_history` keeps the last).
    - `BackupAndRestore(run_dir/checkpoints/backup)`: a killed run started again (by the
      same command, or with `resume=True`) continues from the last completed epoch. It
      keeps the previous epoch's state too (`double_checkpoint=True`): a backup cut short
      by a kill is replaced by the one before. With `restore_dir`, the state is restored
      from that folder instead. With `keep_backup`, the backup outlives `fit`
      (`delete_checkpoint=False`): `train` removes it once `model.keras` is saved, so a
      run killed while evaluating or saving does not train again.
    - `ModelCheckpoint(run_dir/checkpoints/last.keras)`: the model after each epoch,
      replaced atomically.
    - `TensorBoard(run_dir/logs)`: per-head losses and accuracies (`main_loss`,
      `aux1_accuracy`, ...) and the learning rate, each epoch.
    - `TerminateOnNaN`: stops on a NaN loss. Both checkpoints skip an epoch with a NaN or
      inf in its logs, so the last good epoch stays.
    - With `hparams` (a dict): TensorBoard's `hparams_api.KerasCallback` writes an HParams
      session for the run in `run_dir/logs`, so `tensorboard --logdir saved_models/` shows
      train runs beside tuning trials in the HParams dashboard, with `val_main_accuracy`.
    - With `config` (a `TrainConfig`): its `histogram_freq` and `profile_batch` go to
      `TensorBoard` (weight histograms and the profiler trace in `run_dir/logs/train`), and
      with `splits` too (a `DatasetSplits`) and `image_summary_freq` > 0,
      `monitoring.ValidationImageSummaries` writes the main head's confusion matrix and a
      labelled grid of validation images to `run_dir/logs/validation_images`.
    """
    checkpoints = os.path.join(run_dir, "checkpoints")
    extra = []
    tensorboard = {}
    if config is not None:
        tensorboard = {"histogram_freq": config.histogram_freq, "profile_batch": config.profile_batch or 0}
        if splits is not None and config.image_summary_freq:
            extra.append(
                monitoring.ValidationImageSummaries(
                    os.path.join(run_dir, "logs", monitoring.LOG_SUBDIR),
                    splits.validation,
                    splits.class_names,
                    freq=config.image_summary_freq,
                    num_images=config.num_summary_images,
                )
            )
    if hparams:
        from tensorboard.plugins.hparams import api as hparams_api

        extra.append(
            hparams_api.KerasCallback(
                os.path.join(run_dir, "logs"), hparams, trial_id=os.path.basename(os.path.normpath(run_dir))
            )
        )
    return extra + [
        keras.callbacks.TerminateOnNaN(),
        keras.callbacks.CSVLogger(os.path.join(run_dir, "history.csv"), append=True),
        FiniteBackupAndRestore(
            os.path.join(checkpoints, "backup"),
            restore_dir=restore_dir,
            double_checkpoint=True,
            delete_checkpoint=not keep_backup,
        ),
        FiniteModelCheckpoint(os.path.join(checkpoints, "last.keras")),
        keras.callbacks.TensorBoard(os.path.join(run_dir, "logs"), write_graph=False, **tensorboard),
    ]


def read_history(path):
    """`{"loss": [...], "val_main_accuracy": [...], ...}`, one value per epoch, from a `CSVLogger` file.

    An epoch written twice (a run killed between its row and its backup, then resumed)
    keeps its last row; a row cut short by a kill is skipped. `"NA"` values become NaN.
    Returns `{}` when the file does not exist.
    """
    if not os.path.exists(path):
        return {}
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if None in row or None in row.values():
                continue
            try:
                epoch = int(row.pop("epoch"))
                rows[epoch] = {k: math.nan if v == "NA" else float(v) for k, v in row.items()}
            except ValueError:
                continue
    epochs = sorted(rows)
    keys = sorted({k for values in rows.values() for k in values})
    return {k: [rows[e].get(k, math.nan) for e in epochs] for k in keys}


def per_head_metrics(logs, output_names):
    """Turns Keras' flat logs (`main_loss`, `aux1_accuracy`, `loss`) into per-head dicts.

    Returns:
        `{"loss": total, "heads": {"main": {"loss": ..., "accuracy": ...}, ...}}`. For a
        single-output model the head's loss is the total loss. A head gets
        `"top5_accuracy"` too when the logs have `{head}_top5_accuracy`.
    """
    names = list(output_names)
    heads = {}
    for name in names:
        heads[name] = {
            "loss": float(logs.get(f"{name}_loss", logs["loss"] if len(names) == 1 else math.nan)),
            "accuracy": float(logs[f"{name}_accuracy"]),
        }
        if f"{name}_top5_accuracy" in logs:
            heads[name]["top5_accuracy"] = float(logs[f"{name}_top5_accuracy"])
    return {"loss": float(logs["loss"]), "heads": heads}


def evaluate_splits(model, splits, verbose="auto"):
    """Per-head metrics of a compiled model on the validation and test splits."""
    results = {}
    for split in ("validation", "test"):
        dataset = getattr(splits, split)
        if dataset is None:
            continue
        logs = model.evaluate(dataset, return_dict=True, verbose=verbose)
        results[split] = {
            "num_examples": int(splits.num_examples[split]),
            **per_head_metrics(logs, model.output_names),
        }
    return results


def format_accuracy(metrics):
    """`main 0.9861 | aux1 0.9750 | aux2 0.9806` for one split's metrics."""
    return " | ".join(f"{name} {m['accuracy']:.4f}" for name, m in metrics["heads"].items())


def train(config=None, *, resume=False, overwrite=False, verbose="auto", callbacks=None):
    """Trains a NIN or GoogLeNet with `model.fit` and saves the run.

    A run folder that holds an interrupted run (`config.json`, no `model.keras`) with the
    same configuration is resumed from its last completed epoch without `resume`: the same
    command, started again, continues.

    Under `config.strategy` `"multiworker"` every worker runs this with the same
    configuration; only the chief writes `run_dir`. The other workers write their
    checkpoints and files into a temporary folder, deleted at the end (the pattern of
    TensorFlow's multi-worker Keras tutorial: saving reads variables with collective ops,
    so every worker saves), and restore the chief's backup when the run resumes (so
    resuming a multi-worker run needs `run_dir` on a file system every worker reads).

    Args:
        config: a `TrainConfig` (default: `TrainConfig()`, GoogLeNet with aux heads on the
            embedded digits).
        resume: continue the interrupted run in `config.run_dir` from its last completed
            epoch, with the configuration saved there (the strategy is the one given now).
        overwrite: delete the run in `config.run_dir` first.
        verbose: Keras verbosity for `fit`/`evaluate` (`"auto"` shows progress bars).
        callbacks: optional list of extra `keras.callbacks.Callback`s for `fit`, run
            before the run's own (`make_callbacks`). Default None.

    Returns:
        dict: `{"run_dir": ..., "metrics": ..., "history": ...}`; metrics as in
        `metrics.json`, history as in `history.json` (every epoch, resumed ones too).

    Raises:
        ValueError: a bad configuration, dataset or `TF_CONFIG` (before anything is
            written).
        FileExistsError: `run_dir` already holds a complete run, or an interrupted one
            with another configuration, and neither `resume` nor `overwrite` was given.
        FileNotFoundError: `resume` without a run to resume, or a dataset not on disk.
        FloatingPointError: the loss became NaN or inf (`checkpoints/last.keras` keeps the
            last good epoch).
    """
    config = dataclasses.replace(config or TrainConfig()).validate().resolved()
    tf_config = distribute.read_tf_config()
    strategy_name = distribute.resolve_strategy(
        config.strategy, tf_config, len(tf.config.list_physical_devices("GPU"))
    )
    role = distribute.worker_role(strategy_name, tf_config)
    if config.run_dir is None:
        if resume:
            raise ValueError("`resume` needs the `run_dir` of the run to continue.")
        config.run_dir = default_run_dir(config)
    run_dir = config.run_dir
    if role.is_chief:
        saved, automatic = _check_run_dir(run_dir, resume, overwrite, config)
    else:  # the chief checks the folder; a worker reads the saved run where it can
        shared = resume and os.path.isfile(os.path.join(run_dir, "config.json"))
        saved, automatic = (_read_saved_run(run_dir) if shared else None), False
    if saved is not None:
        config = _saved_config(saved, config)  # run_dir: the folder given now, even if moved
        if automatic:
            print(f"Resuming the interrupted run in {run_dir} (same configuration).")
        else:
            print(f"Resuming {run_dir} with its saved configuration (other training flags are ignored).")
    # `resolved()` turned "auto" into the policy this machine gets; a resumed run keeps its own.
    print(f"Precision: {config.precision} (--precision float32 forces full precision)")

    # Before any other TensorFlow work (MultiWorkerMirroredStrategy's requirement).
    strategy = distribute.make_strategy(strategy_name)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"`batch_size` is the global batch and must be a multiple of the {replicas} "
            f"replicas, so that each gets the same share. Received: batch_size={config.batch_size}"
        )
    if strategy_name != "none":
        print(f"Strategy {distribute.describe(strategy_name, strategy, config.batch_size)}")
    if not role.is_chief:
        print(f"Worker {role.task_type} {role.task_id}: the chief writes {run_dir}.")

    keras.utils.set_random_seed(config.seed)
    splits = load_splits(config)
    splits = dataclasses.replace(
        splits,
        train=distribute.shard_by_data(splits.train),
        validation=distribute.shard_by_data(splits.validation),
        test=distribute.shard_by_data(splits.test),
    )
    steps_per_epoch = math.ceil(splits.num_examples["train"] / config.batch_size)
    monitoring.check_profile_batch(config.profile_batch, steps_per_epoch * config.epochs)
    with strategy.scope():
        model = build_model(config, splits.input_shape, splits.num_classes)
        compile_model(
            model,
            optimizer=config.optimizer,
            learning_rate=learning_rate_schedule(config, steps_per_epoch),
            aux_loss_weight=config.aux_loss_weight,
            weight_decay=config.weight_decay,
        )

    if role.is_chief:
        return _fit_and_save(model, splits, config, run_dir, saved, overwrite, None, verbose, callbacks)
    work_dir = tempfile.mkdtemp(prefix=f"ninception-{role.task_type}{role.task_id}-")
    restore_dir = None if overwrite else os.path.join(run_dir, "checkpoints", "backup")
    try:
        return _fit_and_save(model, splits, config, work_dir, saved, False, restore_dir, verbose, callbacks)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)


def _fit_and_save(model, splits, config, run_dir, saved, overwrite, restore_dir, verbose, callbacks=None):
    """`model.fit`, evaluation and the run files, all written into `run_dir` (see `train`).

    `run_dir` is a non-chief worker's temporary folder in a multi-worker run; its result
    then names `config.run_dir`, the chief's folder.
    """
    # Data and model are ready: only now is anything deleted or written.
    if overwrite:
        clear_run_folder(run_dir, RUN_FILES)
    created = not os.path.isdir(run_dir)
    os.makedirs(run_dir, exist_ok=True)
    write_json_atomic(
        os.path.join(run_dir, "config.json"),
        {
            "train_config": dataclasses.asdict(config),
            "variant": config.resolved_variant(),
            "class_names": list(splits.class_names),
            "input_shape": list(splits.input_shape),
            "output_names": list(model.output_names),
            "num_examples": splits.num_examples,
            "preprocessing": "resize (bilinear) to image_size, then x / 127.5 - 1",
            "versions": {"keras": keras.__version__, "keras_ninception": _version()},
        },
    )

    try:
        history = model.fit(
            splits.train,
            validation_data=splits.validation,
            epochs=config.epochs,
            callbacks=list(callbacks or []) + make_callbacks(
                run_dir,
                hparams=hparams_of(config),
                config=config,
                splits=splits,
                restore_dir=restore_dir,
                keep_backup=True,
            ),
            verbose=verbose,
            shuffle=False,  # the tf.data pipeline shuffles; Keras would only warn
        )
    except tf.errors.InvalidArgumentError as error:
        if saved is None and not os.path.exists(os.path.join(run_dir, "checkpoints", "last.keras")):
            clear_run_folder(run_dir, RUN_FILES)  # a new run with no finished epoch: leave nothing half-made
            if created and not os.listdir(run_dir):
                os.rmdir(run_dir)
        raise ValueError(
            f"Training stopped: TensorFlow could not process the data of {config.dataset!r} "
            f"({error.message.splitlines()[0][:300]}). An image file is probably damaged; "
            "check the folder or pass --on-bad-image skip."
        ) from None
    if any(not math.isfinite(v) for v in history.history.get("loss", [])[-1:]):
        raise FloatingPointError(
            "Training stopped on a NaN or inf loss; lower --learning-rate. The last good "
            f"epoch, if any, is in {os.path.join(config.run_dir, 'checkpoints', 'last.keras')}."
        )

    metrics = evaluate_splits(model, splits, verbose=verbose)
    # Every epoch, also those before a resume (fit's history has only this call's).
    history_dict = read_history(os.path.join(run_dir, "history.csv"))
    write_json_atomic(os.path.join(run_dir, "history.json"), history_dict)
    monitoring.plot_learning_curves(history_dict, os.path.join(run_dir, monitoring.LEARNING_CURVES_FILE))
    write_json_atomic(os.path.join(run_dir, "metrics.json"), metrics)
    save_model_atomic(to_inference_model(model), os.path.join(run_dir, "inference.keras"))
    # model.keras last: its presence marks the run as complete. Then the backup can go.
    save_model_atomic(model, os.path.join(run_dir, "model.keras"))
    shutil.rmtree(os.path.join(run_dir, "checkpoints", "backup"), ignore_errors=True)

    if run_dir == config.run_dir:
        final = metrics.get("test", metrics["validation"])
        split = "test" if "test" in metrics else "validation"
        print(f"Final {split} accuracy ({final['num_examples']} images): {format_accuracy(final)}")
        print(f"Run saved in {run_dir}")
    return {"run_dir": config.run_dir, "metrics": metrics, "history": history_dict}


def _version():
    from keras_ninception import __version__

    return __version__
