"""Tuning runs: a run definition → data → HyperModel → KerasTuner search → trial table → best model.

A tuning run folder (default `saved_models/<name>/`) holds:

- `search/`: the KerasTuner project (`oracle.json`, `trial_*/`), and
  `search/definition.json`, the run definition and the resolved search space it was
  started with (a resumed search must match it);
- `search/logs/<trial_id>/execution0/`: one TensorBoard folder per trial, with the per-head
  scalars of `model.fit` (`train/`, `validation/`) and the trial's HParams session; the
  experiment's HParams configuration (every hyperparameter's domain, and
  `val_main_accuracy` as the metric) is in `search/logs/` itself;
- `trials.csv`, `trials.json`: every trial, best first;
- the best model in the form of a `ninception train` run: `model.keras`,
  `inference.keras`, `metrics.json`, `config.json`, `history.json` (and `logs/`,
  `checkpoints/` when it is retrained). `ninception evaluate <run_dir>` reads it.

Distributed search (KerasTuner's chief oracle and workers over gRPC) is switched on by the
environment variables `KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP` and
`KERASTUNER_ORACLE_PORT`, which this module reads and never sets; see `tuning/README.md`.
"""

import contextlib
import csv
import dataclasses
import io
import json
import logging
import os
import warnings

import keras
import keras_tuner
import tensorflow as tf

from keras_ninception.checks import check_bool, check_choice, check_int
from keras_ninception.models import to_inference_model
from keras_ninception.training.callbacks import make_callbacks
from keras_ninception.training.config import DEFAULT_RUNS_DIR, MODELS, TrainConfig, slug
from keras_ninception.training.run import evaluate_splits, format_accuracy, load_splits
from keras_ninception.training.run_folder import (
    RUN_FILES,
    check_run_folder,
    clear_run_folder,
    read_json,
    replace_atomic,
    save_model_atomic,
    write_json_atomic,
)
from keras_ninception.tuning.hypermodels import HyperGoogLeNet, HyperNIN
from keras_ninception.tuning.memory import releasing_tuner_class
from keras_ninception.options import BEST_MODEL_MODES  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)
# The metric every trial is scored on; `compile_model` names it for every model.
OBJECTIVE = keras_tuner.Objective("val_main_accuracy", "max")
TUNERS = {
    "random": keras_tuner.RandomSearch,
    "bayesian": keras_tuner.BayesianOptimization,
    "hyperband": keras_tuner.Hyperband,
}
DISTRIBUTION_STRATEGIES = (None, "mirrored")
COMPLETED = keras_tuner.engine.trial.TrialStatus.COMPLETED
SEARCH_DIR = "search"
# How long a distributed worker waits for its chief oracle to serve.
CHIEF_WAIT_SECONDS = 600
DEFINITION_FILE = "definition.json"
TABLE_FILES = ("trials.csv", "trials.json")
# Everything a tuning run writes in its folder; `overwrite` removes these and nothing else.
TUNE_FILES = tuple(RUN_FILES) + (SEARCH_DIR,) + TABLE_FILES
# Fields that may change when a search is resumed: where it lives, how long it runs
# (`max_trials` may grow to extend a search) and what is done with its result.
RESUMABLE_FIELDS = (
    "name", "run_dir", "max_trials", "best_model", "num_best", "download", "data_dir", "distribution_strategy",
)
# Keys a definition file may hold besides `TuneConfig`'s fields.
DEFINITION_COMMENT_KEYS = ("description",)


@dataclasses.dataclass
class TuneConfig:
    """Everything that defines a tuning run; read from `tuning/*.json`, saved in the run.

    Attributes:
        name: the run's name; the run folder is `saved_models/<name>` unless `run_dir`
            is given. Default None: `<model>-<dataset>-tune`.
        model: `"nin"` (default) or `"googlenet"`.
        dataset: `"digits"` (embedded, default), an image-folder path, or a TFDS name.
        variant: GoogLeNet variant; None picks `"cifar"` below 79 px, else `"paper"`.
        image_size: int, the square input side. Default None: 24 for digits, else 32.
        aux_classifiers: GoogLeNet's aux heads (their labels come keyed by output name).
            Default True.
        batch_norm: NIN: batch normalization after each convolution. Default True.
        tuner: `"random"` (default), `"bayesian"` or `"hyperband"`.
        max_trials: int >= 1, the most trials (Hyperband too: its brackets stop there).
            Default 6.
        epochs: int >= 1, epochs per trial (Hyperband: its `max_epochs`). Default 3.
        executions_per_trial: int >= 1, fits per trial, scores averaged. Default 1.
        hyperband_factor: int >= 2, Hyperband's reduction factor. Default 3.
        batch_size: int >= 1, the pipeline's batch size; a tuned `batch_size`
            hyperparameter re-cuts the training batches (`HyperGoogLeNet.fit`). Default 64.
        search_space: `{name: spec}` narrowing or fixing the HyperModel's hyperparameters
            (see `search_space_from_definition`). Default `{}`: the HyperModel's space.
        best_model: `"restore"` (default: the best trial's best epoch, from its checkpoint)
            or `"retrain"` (the best hyperparameters trained again for `epochs`, logged and
            checkpointed like a training run).
        num_best: int >= 1, rows of the printed table. Default 10.
        validation_fraction, augment, seed, data_dir, download, on_bad_image, check_images:
            as in `TrainConfig`; `seed` also seeds the tuner.
        run_dir: the run folder, or None for `saved_models/<name>`.
        distribution_strategy: None (default) or `"mirrored"`: each trial's model is built,
            compiled and trained under `tf.distribute.MirroredStrategy()` (all local GPUs).
    """

    name: str | None = None
    model: str = "nin"
    dataset: str = "digits"
    variant: str | None = None
    image_size: int | None = None
    aux_classifiers: bool = True
    batch_norm: bool = True
    tuner: str = "random"
    max_trials: int = 6
    epochs: int = 3
    executions_per_trial: int = 1
    hyperband_factor: int = 3
    batch_size: int = 64
    search_space: dict = dataclasses.field(default_factory=dict)
    best_model: str = "restore"
    num_best: int = 10
    validation_fraction: float = 0.1
    augment: str | None = None
    seed: int = 0
    data_dir: str | None = None
    download: bool = False
    on_bad_image: str = "error"
    check_images: str = "header"
    run_dir: str | None = None
    distribution_strategy: str | None = None

    @classmethod
    def from_json(cls, path, **overrides):
        """A `TuneConfig` from a definition file, with `overrides` (non-None) on top.

        Raises:
            ValueError: an unreadable file, not a JSON object, or unknown keys.
        """
        data = read_json(path)
        if not isinstance(data, dict):
            raise ValueError(f"The run definition {path!r} must be a JSON object. Received: {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - fields - set(DEFINITION_COMMENT_KEYS))
        if unknown:
            raise ValueError(
                f"The run definition {path!r} has unknown keys {unknown}; the keys are "
                f"{sorted(fields)} (and 'description')."
            )
        data = {k: v for k, v in data.items() if k in fields}
        data.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**data)

    def train_config(self):
        """The `TrainConfig` of the same data and model family (without the searched values)."""
        return TrainConfig(
            model=self.model,
            dataset=self.dataset,
            variant=self.variant,
            image_size=self.image_size,
            epochs=self.epochs,
            batch_size=self.batch_size,
            aux_classifiers=self.aux_classifiers,
            batch_norm=self.batch_norm,
            validation_fraction=self.validation_fraction,
            augment=self.augment,
            seed=self.seed,
            data_dir=self.data_dir,
            download=self.download,
            run_dir=self.run_dir,
            on_bad_image=self.on_bad_image,
            check_images=self.check_images,
            precision="float32",  # trials build under Keras' global policy, float32 by default
        )

    def validate(self):
        """Raises ValueError, in the package's words, for a bad field. Returns self."""
        train_config = self.train_config().validate()  # the shared fields, checked once
        for field in ("dataset", "data_dir", "run_dir"):
            setattr(self, field, getattr(train_config, field))
        if self.name is not None and (not isinstance(self.name, str) or not slug(self.name)):
            raise ValueError(f"`name` must be a non-empty string. Received: name={self.name!r}")
        check_choice("model", self.model, MODELS)
        check_choice("tuner", self.tuner, tuple(TUNERS))
        check_choice("best_model", self.best_model, BEST_MODEL_MODES)
        check_int("max_trials", self.max_trials)
        check_int("executions_per_trial", self.executions_per_trial)
        check_int("hyperband_factor", self.hyperband_factor, minimum=2)
        check_int("num_best", self.num_best)
        check_choice("distribution_strategy", self.distribution_strategy, DISTRIBUTION_STRATEGIES)
        check_bool("aux_classifiers", self.aux_classifiers)
        check_bool("batch_norm", self.batch_norm)
        search_space_from_definition(self.search_space)  # checks its form
        return self

    def resolved(self):
        """A copy with `name`, `image_size`, `variant` and `run_dir` filled in."""
        config = dataclasses.replace(self, search_space=dict(self.search_space))
        train_config = config.train_config().resolved()
        config.image_size = train_config.image_size
        config.variant = train_config.variant
        if config.name is None:
            config.name = f"{config.model}-{slug(config.dataset)}-tune"
        if config.run_dir is None:
            config.run_dir = os.path.join(DEFAULT_RUNS_DIR, slug(config.name))
        return config

    def output_names(self):
        """The model's output names, which key the per-head labels (None: one output)."""
        return self.train_config().output_names()


def search_space_from_definition(search_space):
    """A `keras_tuner.HyperParameters` from a definition's `search_space` mapping.

    Each entry narrows or fixes one of the HyperModel's hyperparameters (declared first,
    it wins over the HyperModel's own declaration, the KerasTuner way):

    - a number, string or bool: `hp.Fixed(name, value)` (not searched);
    - a list, or `{"values": [...], "default": v}`: `hp.Choice`;
    - `{"min_value": a, "max_value": b, "step": s, "sampling": "log", "default": v}`:
      `hp.Int` when `a` and `b` are integers, else `hp.Float` (`"type": "float"` forces
      a float range).

    Raises:
        ValueError: for anything else, naming the entry.
    """
    if not isinstance(search_space, dict):
        raise ValueError(
            "`search_space` must be a mapping {hyperparameter name: value, list of values, or "
            f"range}}. Received: search_space={search_space!r}"
        )
    hp = keras_tuner.HyperParameters()
    for name, spec in search_space.items():
        try:
            if isinstance(spec, (bool, int, float, str)):
                hp.Fixed(name, spec)
            elif isinstance(spec, list) or (isinstance(spec, dict) and "values" in spec):
                values = spec if isinstance(spec, list) else spec["values"]
                extra = {} if isinstance(spec, list) else {k: v for k, v in spec.items() if k != "values"}
                hp.Choice(name, values, **extra)
            elif isinstance(spec, dict) and {"min_value", "max_value"} <= set(spec):
                spec = dict(spec)
                kind = spec.pop("type", None)
                ints = all(isinstance(spec[k], int) and not isinstance(spec[k], bool) for k in ("min_value", "max_value"))
                (hp.Int if ints and kind != "float" else hp.Float)(name, **spec)
            else:
                raise ValueError("unknown form")
        except (ValueError, TypeError) as error:
            raise ValueError(
                f"`search_space` entry {name!r} must be a value (fixed), a list of values, "
                '{"values": [...], "default": ...}, or a range {"min_value": ..., "max_value": '
                f'..., "step"/"sampling"/"default": ...}} ({error}). Received: {name}={spec!r}'
            ) from None
    return hp


def make_hypermodel(config, input_shape, num_classes):
    """The HyperModel a resolved `TuneConfig` asks for."""
    if config.model == "nin":
        return HyperNIN(input_shape, num_classes, batch_norm=config.batch_norm)
    return HyperGoogLeNet(
        input_shape, num_classes, variant=config.variant, aux_classifiers=config.aux_classifiers
    )


def resolve_search_space(hypermodel, search_space):
    """`(hp, space)`: the definition's HyperParameters and the full resolved space as JSON.

    Builds the model twice (once as the HyperModel declares it, once with the
    definition's entries) to check every entry names one of the HyperModel's
    hyperparameters and that its values build.

    Raises:
        ValueError: an entry that is not one of the HyperModel's hyperparameters, or a
            value the builder refuses.
    """
    own = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(own)
    hypermodel.build(own)
    overrides = search_space_from_definition(search_space)
    unknown = sorted(set(overrides.values) - set(own.values))
    if unknown:
        raise ValueError(
            f"`search_space` names hyperparameters {unknown} that {type(hypermodel).__name__} "
            f"does not have; its hyperparameters are {sorted(own.values)}."
        )
    resolved = overrides.copy()
    hypermodel.declare_hyperparameters(resolved)
    hypermodel.build(resolved)
    keras.backend.clear_session()
    space = sorted((p.get_config() | {"class_name": type(p).__name__} for p in resolved.space), key=lambda c: c["name"])
    return overrides, json.loads(json.dumps(space))


def _definition(config, space):
    return {
        "tune_config": dataclasses.asdict(config),
        "objective": {"name": OBJECTIVE.name, "direction": OBJECTIVE.direction},
        "search_space": space,
    }


def _definition_differences(saved, current):
    """Human-readable differences between two definitions, ignoring `RESUMABLE_FIELDS`."""
    differences = []
    old, new = saved.get("tune_config", {}), current["tune_config"]
    for key in sorted(set(old) | set(new)):
        if key not in RESUMABLE_FIELDS and old.get(key) != new.get(key):
            differences.append(f"{key}: saved {old.get(key)!r}, now {new.get(key)!r}")
    old_space = {p["name"]: p for p in saved.get("search_space", [])}
    new_space = {p["name"]: p for p in current["search_space"]}
    for name in sorted(set(old_space) | set(new_space)):
        if old_space.get(name) != new_space.get(name):
            differences.append(
                f"search space {name!r}: saved {_describe(old_space.get(name))}, now {_describe(new_space.get(name))}"
            )
    if saved.get("objective") != current["objective"]:
        differences.append(f"objective: saved {saved.get('objective')}, now {current['objective']}")
    return differences


def _describe(param):
    if param is None:
        return "absent"
    config = {k: v for k, v in param.items() if k not in ("name", "conditions") and v is not None}
    return json.dumps(config, sort_keys=True)


def _check_run_dir(run_dir, resume, overwrite):
    """Decides what to do with `run_dir` before anything is loaded, built or written.

    Returns:
        The saved definition when resuming, else None. Nothing is deleted here.

    Raises:
        FileExistsError / FileNotFoundError / ValueError: see `tune`.
    """
    if not check_run_folder(run_dir, resume, overwrite, (SEARCH_DIR,), TUNE_FILES, kind="tuning run"):
        return None
    path = os.path.join(run_dir, SEARCH_DIR, DEFINITION_FILE)
    saved = read_json(path)
    if not isinstance(saved, dict) or not isinstance(saved.get("tune_config"), dict):
        raise ValueError(f"{path!r} is not a tuning run definition.")
    return saved


def is_distributed_worker():
    """True in a distributed search on a worker (not the chief): see `tuning/README.md`."""
    return "KERASTUNER_ORACLE_IP" in os.environ and "chief" not in os.environ.get("KERASTUNER_TUNER_ID", "")


def wait_for_chief(timeout=CHIEF_WAIT_SECONDS):
    """Blocks until the chief oracle named by the environment accepts connections.

    The chief serves only once it has checked the run folder and written its definition, so
    a worker that waits here never races it for the folder.

    Raises:
        RuntimeError: no chief after `timeout` seconds, or the environment is incomplete.
    """
    import grpc

    for variable in ("KERASTUNER_ORACLE_PORT", "KERASTUNER_TUNER_ID"):
        if variable not in os.environ:
            raise RuntimeError(f"KERASTUNER_ORACLE_IP is set but {variable} is not; set both for a distributed search.")
    address = f"{os.environ['KERASTUNER_ORACLE_IP']}:{os.environ['KERASTUNER_ORACLE_PORT']}"
    channel = grpc.insecure_channel(address)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise RuntimeError(
            f"No chief oracle answered at {address} within {timeout:g} s; start the chief "
            "(KERASTUNER_TUNER_ID=chief) with the same run definition first."
        ) from None
    finally:
        channel.close()


EXECUTION_HISTORIES_FILE = "execution_histories.json"


def recording_executions(tuner_class):
    """A subclass of a KerasTuner tuner class that keeps every execution's per-epoch history.

    KerasTuner reduces a trial's executions to one score (each execution's best epoch,
    averaged) and keeps no per-epoch history, while its checkpoint holds the single best
    epoch over all executions (one `SaveBestEpoch` shared by them). `run_trial` here writes
    the `History.history` of each execution, in order, to `<trial dir>/execution_histories.json`,
    so the saved weights' own history and score can be told (`saved_execution`).
    """

    class RecordingTuner(tuner_class):
        def run_trial(self, trial, *args, **kwargs):
            histories = super().run_trial(trial, *args, **kwargs)
            records = [
                {name: [float(v) for v in values] for name, values in history.history.items()}
                for history in histories
                if hasattr(history, "history")
            ]
            trial_dir = self.get_trial_dir(trial.trial_id)
            os.makedirs(trial_dir, exist_ok=True)
            write_json_atomic(os.path.join(trial_dir, EXECUTION_HISTORIES_FILE), records)
            return histories

    RecordingTuner.__name__ = RecordingTuner.__qualname__ = tuner_class.__name__
    return RecordingTuner


def saved_execution(histories, objective=OBJECTIVE):
    """`(execution, epoch, value)` of the epoch KerasTuner's checkpoint holds, from the trial's histories.

    `SaveBestEpoch` saves when the objective is strictly better than the best so far, over
    the executions in order: the first (execution, epoch) that reaches the best value.
    `execution` counts from 0 (KerasTuner's `execution0` folders), `epoch` from 1. None
    when no history has the objective.
    """
    best = None
    for execution, history in enumerate(histories):
        for epoch, value in enumerate(history.get(objective.name, []), 1):
            if best is None or objective.better_than(value, best[2]):
                best = (execution, epoch, float(value))
    return best


def make_tuner(config, hypermodel, hyperparameters):
    """The KerasTuner tuner of a resolved `TuneConfig`, on the project `run_dir/search`.

    KerasTuner's own `overwrite` stays False: `tune` decides about the folder first, so
    an existing project is only ever reloaded on purpose (`resume`). Each trial releases
    its traced graphs when it ends (`keras_ninception.tuning.memory`), so memory stays
    bounded over many trials in one process.
    """
    common = dict(
        hypermodel=hypermodel,
        objective=OBJECTIVE,
        seed=config.seed,
        hyperparameters=hyperparameters,
        tune_new_entries=True,
        executions_per_trial=config.executions_per_trial,
        directory=config.run_dir,
        project_name=SEARCH_DIR,
        overwrite=False,
    )
    if config.distribution_strategy == "mirrored":
        common["distribution_strategy"] = tf.distribute.MirroredStrategy()
    if config.tuner == "hyperband":
        tuner = recording_executions(releasing_tuner_class(keras_tuner.Hyperband))(max_epochs=config.epochs, factor=config.hyperband_factor, **common)
        # Hyperband sizes its brackets from max_epochs and factor; `max_trials` caps them
        # (the oracle stops creating trials there, as RandomSearch does).
        tuner.oracle.max_trials = config.max_trials
        return tuner
    return recording_executions(releasing_tuner_class(TUNERS[config.tuner]))(max_trials=config.max_trials, **common)


def write_hparams_config(log_dir, space_hp, output_names=("main",)):
    """Writes the HParams experiment (domains + metrics) to `log_dir`, once.

    The domains are KerasTuner's own conversion of the search space (the same as in each
    trial's session); the metrics are the scalars the trials' `TensorBoard` callbacks
    write in `<trial>/execution0/validation` and `.../train`, shown under the names Keras
    logs them: `val_main_accuracy` first, then `val_loss`, each head's `val_<head>_loss`
    (models with aux heads) and `main_accuracy`.
    """
    from keras_tuner.src.engine import tuner_utils
    from tensorboard.plugins.hparams import api as hparams_api

    if os.path.isdir(log_dir) and any(f.startswith("events.out.tfevents") for f in os.listdir(log_dir)):
        return
    hparams = list(tuner_utils.convert_hyperparams_to_hparams(space_hp, hparams_api))
    metrics = [
        hparams_api.Metric("epoch_main_accuracy", group="validation", display_name="val_main_accuracy"),
        hparams_api.Metric("epoch_loss", group="validation", display_name="val_loss"),
    ]
    if len(output_names) > 1:
        metrics += [
            hparams_api.Metric(f"epoch_{name}_loss", group="validation", display_name=f"val_{name}_loss")
            for name in output_names
        ]
    metrics.append(hparams_api.Metric("epoch_main_accuracy", group="train", display_name="main_accuracy"))
    writer = tf.summary.create_file_writer(log_dir)
    with writer.as_default():
        hparams_api.hparams_config(hparams=hparams, metrics=metrics)
    writer.close()


def trial_table(oracle):
    """Every trial as a row, best first: rank, trial, status, score, epoch, hyperparameters.

    `epoch` is the 1-based epoch of the trial's best `val_main_accuracy`.
    """
    names = [p.name for p in oracle.get_space().space]
    trials = oracle.get_best_trials(len(oracle.trials))
    rows = []
    for rank, trial in enumerate(trials, start=1):
        values = trial.hyperparameters.values
        rows.append(
            {
                "rank": rank,
                "trial_id": trial.trial_id,
                "status": trial.status,
                OBJECTIVE.name: None if trial.score is None else float(trial.score),
                "epoch": None if trial.best_step is None else int(trial.best_step) + 1,
                **{name: values.get(name) for name in names},
            }
        )
    return rows


def format_table(rows, limit=None):
    """The trial table as aligned text (floats to 4 significant digits)."""
    if not rows:
        return "(no trials)"
    columns = list(rows[0])

    def cell(value):
        if value is None:
            return "-"
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    shown = [[cell(row.get(c)) for c in columns] for row in rows[:limit]]
    widths = [max(len(c), *(len(r[i]) for r in shown)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in shown]
    return "\n".join(lines)


def write_table(run_dir, rows):
    """`trials.json` and `trials.csv` in `run_dir`, each written atomically."""
    write_json_atomic(os.path.join(run_dir, "trials.json"), rows)
    text = io.StringIO()
    if rows:
        writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)

    def write(tmp):
        with open(tmp, "w", newline="") as f:
            f.write(text.getvalue())

    replace_atomic(os.path.join(run_dir, "trials.csv"), write, ".csv")


def _trial_history(trial):
    """`{metric: [value per epoch]}` of a trial (means over executions), like history.json."""
    history = {}
    for name, tracker in trial.metrics.metrics.items():
        history[name] = [float(obs.mean()) for obs in tracker.get_history()]
    return history


def _best_model(config, tuner, hypermodel, splits, verbose):
    """`(model, history, saved)` of the best trial: restored from its checkpoint, or retrained.

    `history` is the per-epoch history of the fit whose weights `model` holds: with
    `restore`, the execution whose best epoch KerasTuner's checkpoint saved (with
    `executions_per_trial` > 1 the trial's score is the executions' mean, not this one's);
    with `retrain`, the new fit. `saved` is `{"execution", "epoch", <objective>}` of those
    weights (`execution` None when retrained; None when the trial kept no histories).
    """
    best = tuner.oracle.get_best_trials(1)[0]
    # Under a per-trial strategy the best model's variables (optimizer state included) are
    # made in its scope, as KerasTuner does for the trials. (`tuner.load_model` enters the
    # scope itself and clears the Keras session, which would drop an outer scope.)
    strategy = getattr(tuner, "distribution_strategy", None)
    scope = strategy.scope if strategy is not None else contextlib.nullcontext
    if config.best_model == "restore":
        with warnings.catch_warnings():
            # The checkpoint holds the trial's optimizer state; only the weights are restored.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model = tuner.load_model(best)
        # A fresh optimizer state (zeros), built so that model.keras reloads without a warning.
        with scope():
            model.optimizer.build(model.trainable_variables)
        path = os.path.join(tuner.get_trial_dir(best.trial_id), EXECUTION_HISTORIES_FILE)
        histories = read_json(path) if os.path.exists(path) else []
        found = saved_execution(histories)
        if found is None:  # a search from before the histories were kept
            return model, _trial_history(best), None
        execution, epoch, value = found
        return model, histories[execution], {"execution": execution, "epoch": epoch, OBJECTIVE.name: value}
    keras.utils.set_random_seed(config.seed)
    hp = best.hyperparameters
    with scope():
        model = hypermodel.build(hp)
        history = hypermodel.fit(
            hp,
            model,
            splits.train,
            validation_data=splits.validation,
            epochs=config.epochs,
            callbacks=make_callbacks(config.run_dir),
            verbose=verbose,
        )
    history = {k: [float(v) for v in values] for k, values in history.history.items()}
    values = history.get(OBJECTIVE.name) or [None]
    return model, history, {"execution": None, "epoch": len(values), OBJECTIVE.name: values[-1]}


def _save_best_model(config, model, history, best, splits, saved=None):
    """Writes the best model like a `ninception train` run; `model.keras` last.

    `config.json`'s `best_trial` names each score for what it is:
    `<objective>_trial_mean`, the trial's score (KerasTuner's: each execution's best epoch,
    averaged over `executions`), and `saved_model`, the execution and epoch the saved
    weights come from with their own `<objective>` (`_best_model`'s `saved`).
    """
    run_dir = config.run_dir
    metrics = evaluate_splits(model, splits, verbose=0)
    values = best.hyperparameters.values
    train_config = config.train_config().resolved()
    # The values a training run would take; the searched architecture values are in
    # `hyperparameters` (a `TrainConfig` cannot express NIN widths or a width multiplier).
    for field in ("learning_rate", "optimizer", "aux_loss_weight", "batch_size"):
        if field in values:
            setattr(train_config, field, values[field])
    if "weight_decay" in values:
        train_config.weight_decay = values["weight_decay"] or None
    write_json_atomic(os.path.join(run_dir, "history.json"), history)
    write_json_atomic(os.path.join(run_dir, "metrics.json"), metrics)
    write_json_atomic(
        os.path.join(run_dir, "config.json"),
        {
            "train_config": dataclasses.asdict(train_config),
            "tune_config": dataclasses.asdict(config),
            "best_trial": {
                "trial_id": best.trial_id,
                f"{OBJECTIVE.name}_trial_mean": best.score,
                "executions": config.executions_per_trial,
                "best_model": config.best_model,
                "saved_model": saved,
            },
            "hyperparameters": values,
            "variant": config.variant,
            "class_names": list(splits.class_names),
            "input_shape": list(splits.input_shape),
            "output_names": list(model.output_names),
            "num_examples": splits.num_examples,
            "preprocessing": "resize (bilinear) to image_size, then x / 127.5 - 1",
            "versions": {"keras": keras.__version__, "keras_tuner": keras_tuner.__version__},
        },
    )
    save_model_atomic(to_inference_model(model), os.path.join(run_dir, "inference.keras"))
    save_model_atomic(model, os.path.join(run_dir, "model.keras"))
    return metrics


def tune(config=None, *, resume=False, overwrite=False, verbose="auto"):
    """Runs a hyperparameter search and saves its table and best model.

    Args:
        config: a `TuneConfig` (default: `TuneConfig()`, NIN on the embedded digits, random
            search, 6 trials of 3 epochs).
        resume: continue the search in `config.run_dir` (KerasTuner reloads its project);
            the run definition and the resolved search space must equal the saved ones
            (only `RESUMABLE_FIELDS` may differ; a larger `max_trials` extends the search).
            Resuming a finished search runs no trial.
        overwrite: delete the tuning run in `config.run_dir` first (only its own files,
            once the data and the search space are ready).
        verbose: Keras and KerasTuner verbosity.

    Returns:
        dict: `{"run_dir", "trials" (the table rows, best first), "best_hyperparameters",
        "metrics" (of the best model, as in metrics.json; None on a worker), "new_trials"}`.

    Raises:
        ValueError: a bad definition or dataset, a search space the HyperModel lacks, or a
            resumed run whose definition differs (before anything is written).
        FileExistsError: `run_dir` already holds a tuning run and neither `resume` nor
            `overwrite` was given, or holds something else.
        FileNotFoundError: `resume` without a tuning run.
        RuntimeError: no trial completed.
    """
    config = dataclasses.replace(config or TuneConfig()).validate().resolved()
    run_dir = config.run_dir
    worker = is_distributed_worker()
    # A worker joins the chief's project: the chief owns the folder and its checks.
    saved = None if worker else _check_run_dir(run_dir, resume, overwrite)

    keras.utils.set_random_seed(config.seed)
    splits = load_splits(config.train_config())  # the data fields, with the train defaults (cache "auto")
    hypermodel = make_hypermodel(config, splits.input_shape, splits.num_classes)
    overrides, space = resolve_search_space(hypermodel, config.search_space)
    definition = _definition(config, space)
    if saved is not None:
        differences = _definition_differences(saved, definition)
        if differences:
            raise ValueError(
                f"Cannot resume the search in {run_dir!r}: its run definition differs from the "
                "saved one (" + "; ".join(differences) + "). Resume with the same definition, "
                "or pass --overwrite to start a new search."
            )

    # Data and search space are ready: only now is anything deleted or written.
    search_dir = os.path.join(run_dir, SEARCH_DIR)
    if worker:
        # The chief serves once its folder is ready: join its search only if it is this one.
        wait_for_chief()
        chief = read_json(os.path.join(search_dir, DEFINITION_FILE))
        differences = _definition_differences(chief, definition)
        if differences:
            raise ValueError(
                f"This worker's run definition differs from its chief's in {run_dir!r} ("
                + "; ".join(differences) + "). Start every process with the same definition."
            )
    else:
        if overwrite:
            clear_run_folder(run_dir, TUNE_FILES)
        os.makedirs(search_dir, exist_ok=True)
        write_json_atomic(os.path.join(search_dir, DEFINITION_FILE), definition)

    tuner = make_tuner(config, hypermodel, overrides)
    completed_before = None if worker else _completed(tuner.oracle)  # a worker's oracle is the chief's
    log_dir = os.path.join(search_dir, "logs")
    if not worker:
        write_hparams_config(log_dir, tuner.oracle.get_space(), config.output_names() or ("main",))
    callbacks = [
        keras.callbacks.TerminateOnNaN(),
        # KerasTuner gives each trial its own `log_dir/<trial_id>/execution<n>` and adds the
        # HParams session callback, for a callback class named exactly `TensorBoard`.
        keras.callbacks.TensorBoard(log_dir, write_graph=False),
    ]
    tuner.search(
        splits.train,
        validation_data=splits.validation,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=verbose,
    )
    if worker:
        logger.info("Worker %s done; the chief writes the results.", os.environ.get("KERASTUNER_TUNER_ID"))
        return {"run_dir": run_dir, "trials": None, "best_hyperparameters": None, "metrics": None, "new_trials": None}

    oracle = tuner.oracle
    rows = trial_table(oracle)
    new_trials = _completed(oracle) - completed_before
    write_table(run_dir, rows)
    done = sum(1 for r in rows if r["status"] == COMPLETED)
    logger.info(
        "\nBest trials of %s (%s, %s): %d of %d completed, %d new\n%s",
        search_dir, OBJECTIVE.name, OBJECTIVE.direction, done, len(rows), new_trials,
        format_table(rows, config.num_best),
    )
    logger.info("Trial table written to %s and trials.json", os.path.join(run_dir, "trials.csv"))
    if not done:
        raise RuntimeError(f"No trial of the search in {search_dir!r} completed; see the trial logs there.")

    best = oracle.get_best_trials(1)[0]
    model_path = os.path.join(run_dir, "model.keras")
    config_path = os.path.join(run_dir, "config.json")
    if new_trials == 0 and os.path.exists(model_path) and os.path.exists(config_path):
        saved_best = read_json(config_path).get("best_trial", {}).get("trial_id")
        if saved_best == best.trial_id:
            logger.info("The search was already complete; its best model (trial %s) is in %s", best.trial_id, run_dir)
            return {
                "run_dir": run_dir,
                "trials": rows,
                "best_hyperparameters": dict(best.hyperparameters.values),
                "metrics": read_json(os.path.join(run_dir, "metrics.json")),
                "new_trials": 0,
            }
    model, history, saved = _best_model(config, tuner, hypermodel, splits, verbose)
    metrics = _save_best_model(config, model, history, best, splits, saved)
    final = metrics.get("test", metrics["validation"])
    split = "test" if "test" in metrics else "validation"
    how = "restored from its best epoch" if config.best_model == "restore" else "retrained"
    logger.info(
        "Best trial %s (%s), %s accuracy (%d images): %s",
        best.trial_id, how, split, final["num_examples"], format_accuracy(final),
    )
    if saved is not None and saved["execution"] is not None and config.executions_per_trial > 1:
        logger.info(
            f"Its {OBJECTIVE.name}: {best.score:.4f} mean of {config.executions_per_trial} executions; the "
            f"saved weights, execution {saved['execution']} epoch {saved['epoch']}: {saved[OBJECTIVE.name]:.4f}"
        )
    logger.info("Best model saved in %s", run_dir)
    return {
        "run_dir": run_dir,
        "trials": rows,
        "best_hyperparameters": dict(best.hyperparameters.values),
        "metrics": metrics,
        "new_trials": new_trials,
    }


def _completed(oracle):
    return sum(1 for t in oracle.trials.values() if t.status == COMPLETED)
