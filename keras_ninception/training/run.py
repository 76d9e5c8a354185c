"""Training runs: data → builder → compile → `model.fit` → a run folder under `saved_models/`.

The configuration is `training.config.TrainConfig`, the run folder's files and their atomic
writes are `training.run_folder`, and the callbacks `training.callbacks`; this module runs
`fit`, evaluates every head and saves the run.
"""

import dataclasses
import logging
import math
import os
import shutil
import tempfile

import keras
import tensorflow as tf

from keras_ninception.data import load_dataset
from keras_ninception.data.files import named_decode_error
from keras_ninception.models import build_googlenet, build_nin, to_inference_model
from keras_ninception.training import distribute, monitoring, transfer
from keras_ninception.training.callbacks import make_callbacks
from keras_ninception.training.compile import compile_model
from keras_ninception.training.recipes import describe_recipe
from keras_ninception.training.schedules import make_schedule
from keras_ninception.training.config import (
    TrainConfig,
    config_differences,
    default_run_dir,
    hparams_of,
    saved_train_config,
)
from keras_ninception.training.precision import dtype_policy
from keras_ninception.training.run_folder import (
    LEARNING_CURVES_FILE,
    RUN_FILES,
    check_run_folder,
    clear_run_folder,
    read_history,
    read_saved_run,
    save_model_atomic,
    write_json_atomic,
)

logger = logging.getLogger(__name__)


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
        saved = read_saved_run(run_dir)
        differences = config_differences(saved_train_config(saved, config), config)
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
    return read_saved_run(run_dir), False


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
        check_images=config.check_images,
        cache=config.cache,
        eval_crop=config.eval_crop,
        color_distortion=config.color_distortion,
    )


def preprocessing_description(eval_crop):
    """How evaluation images are preprocessed, in words, for `config.json`."""
    if eval_crop is None:
        return "resize (bilinear) to image_size, then x / 127.5 - 1"
    return (
        f"resize (bilinear) to round(image_size / {eval_crop}), central crop of image_size, "
        "then x / 127.5 - 1"
    )


def build_model(config, input_shape, num_classes):
    """The uncompiled model a `TrainConfig` asks for, its layers in `config.precision`'s policy."""
    with dtype_policy(config.precision):
        if config.model == "nin":
            return build_nin(
                input_shape=input_shape,
                num_classes=num_classes,
                batch_norm=config.batch_norm,
                dropout_rate=config.dropout_rate,
            )
        dropout = {} if config.dropout_rate is None else {"dropout_rate": config.dropout_rate}
        return build_googlenet(
            input_shape=input_shape,
            num_classes=num_classes,
            variant=config.resolved_variant(),
            aux_classifiers=config.aux_classifiers,
            **dropout,
        )


def start_from(model, source, source_name, config, num_classes):
    """Copies the source's weights into `model` and freezes its backbone for `fine_tune="head"`.

    Logs what was copied, which heads start fresh (e.g. the aux heads, which no ImageNet
    checkpoint has), and what is frozen.
    """
    logger.info("%s", transfer.transfer_weights(source, model, source_name).describe(num_classes))
    if config.fine_tune == "head":
        frozen = transfer.freeze_backbone(model)
        logger.info(
            "Fine-tuning the heads: %d backbone layers frozen (batch normalization in inference "
            "mode, moving statistics kept).",
            frozen,
        )
    else:
        logger.info("Fine-tuning all layers at learning rate %g.", config.learning_rate)


def learning_rate_schedule(config, steps_per_epoch):
    """The learning-rate schedule of a resolved `TrainConfig` (`recipes.make_schedule`).

    The schedule is a step function of the optimizer's iterations, so a resumed run
    (`BackupAndRestore` restores the iterations) continues on the same curve.
    """
    return make_schedule(config, steps_per_epoch)


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
        saved, automatic = (read_saved_run(run_dir) if shared else None), False
    if saved is not None:
        config = saved_train_config(saved, config)  # run_dir: the folder given now, even if moved
        if automatic:
            logger.info("Resuming the interrupted run in %s (same configuration).", run_dir)
        else:
            logger.info("Resuming %s with its saved configuration (other training flags are ignored).", run_dir)
    # `resolved()` turned "auto" into the policy this machine gets; a resumed run keeps its own.
    logger.info("Precision: %s (--precision float32 forces full precision)", config.precision)
    logger.debug("Configuration: %s", dataclasses.asdict(config))
    logger.info("Recipe: %s", describe_recipe(config))

    # Before any other TensorFlow work (MultiWorkerMirroredStrategy's requirement).
    strategy = distribute.make_strategy(strategy_name)
    replicas = strategy.num_replicas_in_sync
    if config.batch_size % replicas:
        raise ValueError(
            f"`batch_size` is the global batch and must be a multiple of the {replicas} "
            f"replicas, so that each gets the same share. Received: batch_size={config.batch_size}"
        )
    if strategy_name != "none":
        logger.info("Strategy %s", distribute.describe(strategy_name, strategy, config.batch_size))
    if not role.is_chief:
        logger.info("Worker %s %s: the chief writes %s.", role.task_type, role.task_id, run_dir)

    keras.utils.set_random_seed(config.seed)
    splits = load_splits(config)
    splits = dataclasses.replace(
        splits,
        train=distribute.shard(splits.train, splits.file_sharded),
        validation=distribute.shard(splits.validation, splits.file_sharded),
        test=distribute.shard(splits.test, splits.file_sharded),
    )
    steps_per_epoch = math.ceil(splits.num_examples["train"] / config.batch_size)
    monitoring.check_profile_batch(config.profile_batch, steps_per_epoch * config.epochs)
    source = None
    if config.weights is not None:
        source = transfer.source_model(
            config.weights, config.resolved_variant(), splits.input_shape, splits.num_classes
        )
    with strategy.scope():
        model = build_model(config, splits.input_shape, splits.num_classes)
        if source is not None:
            start_from(model, *source, config, splits.num_classes)
        compile_model(
            model,
            optimizer=config.optimizer,
            learning_rate=learning_rate_schedule(config, steps_per_epoch),
            aux_loss_weight=config.aux_loss_weight,
            weight_decay=config.weight_decay,
            label_smoothing=config.label_smoothing,
            use_ema=config.ema,
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
            "preprocessing": preprocessing_description(config.eval_crop),
            "eval_crop": config.eval_crop,
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
        named = named_decode_error(error)  # an image file the pipeline could not decode
        if named is not None:
            raise named from None
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
    monitoring.plot_learning_curves(history_dict, os.path.join(run_dir, LEARNING_CURVES_FILE))
    write_json_atomic(os.path.join(run_dir, "metrics.json"), metrics)
    save_model_atomic(to_inference_model(model), os.path.join(run_dir, "inference.keras"))
    # model.keras last: its presence marks the run as complete. Then the backup can go.
    save_model_atomic(model, os.path.join(run_dir, "model.keras"))
    shutil.rmtree(os.path.join(run_dir, "checkpoints", "backup"), ignore_errors=True)

    if run_dir == config.run_dir:
        final = metrics.get("test", metrics["validation"])
        split = "test" if "test" in metrics else "validation"
        logger.info("Final %s accuracy (%d images): %s", split, final["num_examples"], format_accuracy(final))
        logger.info("Run saved in %s", run_dir)
    return {"run_dir": config.run_dir, "metrics": metrics, "history": history_dict}


def _version():
    from keras_ninception import __version__

    return __version__
