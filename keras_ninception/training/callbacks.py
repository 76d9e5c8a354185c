"""The Keras callbacks of a training run (`make_callbacks`): history, resume state, last
checkpoint, TensorBoard and its image summaries, NaN stop."""

import math
import os

import keras

from keras_ninception.training import monitoring

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
        """Restores the backed-up state, if any.

        Raises:
            ValueError: the backup does not fit the model (it was written by another
                architecture, or by a version of keras-ninception whose layers were stored
                differently), naming the folder; the backup is left as it is.
        """
        folder = self.backup_dir if self.restore_dir is None else self.restore_dir
        try:
            if self.restore_dir is None:
                return super().on_train_begin(logs)
            source = keras.callbacks.BackupAndRestore(self.restore_dir, double_checkpoint=self.double_checkpoint)
            source.set_model(self.model)
            source.on_train_begin(logs)
        except ValueError as error:
            raise ValueError(
                f"The interrupted run's saved state in {folder!r} does not fit the model being "
                "trained: it was written for another architecture, or by another version of "
                "keras-ninception. It was left as it is. Start the run over (`--overwrite`, which "
                "replaces the run folder) or train into another run folder. Keras said: "
                f"{str(error).splitlines()[0]}"
            ) from error

    def on_epoch_end(self, epoch, logs=None):
        if _finite(logs):
            super().on_epoch_end(epoch, logs)


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
