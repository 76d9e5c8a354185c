"""The run's callbacks (keras_ninception.training.callbacks), without training."""

import os

import keras
import pytest

from keras_ninception.training.callbacks import FiniteBackupAndRestore


def dense_model(units):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(units)])
    model.compile(optimizer="adam", loss="mse")
    return model


def back_up(model, backup_dir):
    callback = FiniteBackupAndRestore(str(backup_dir), double_checkpoint=True)
    callback.set_model(model)
    callback.on_epoch_end(0, {"loss": 1.0})
    return sorted(os.listdir(backup_dir))


def dense_bn_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])
    model.compile(optimizer="adam", loss="mse")
    return model


@pytest.mark.parametrize("other", [lambda: dense_model(4), dense_bn_model])
def test_a_backup_that_does_not_fit_the_model_is_a_clear_error_and_is_kept(tmp_path, other):
    backup_dir = tmp_path / "backup"
    files = back_up(dense_model(3), backup_dir)
    assert "latest.weights.h5" in files
    before = {name: (backup_dir / name).read_bytes() for name in files}
    for restore_dir in (None, str(backup_dir)):  # this run's own backup, or the chief's
        callback = FiniteBackupAndRestore(str(tmp_path / "own") if restore_dir else str(backup_dir),
                                          restore_dir=restore_dir, double_checkpoint=True)
        callback.set_model(other())
        with pytest.raises(ValueError, match=r"saved state in '.*backup' does not fit the model .* left as it is"):
            callback.on_train_begin()
        assert {name: (backup_dir / name).read_bytes() for name in sorted(os.listdir(backup_dir))} == before


def test_a_backup_that_fits_is_restored(tmp_path):
    model = dense_model(3)
    back_up(model, tmp_path / "backup")
    fresh = dense_model(3)
    callback = FiniteBackupAndRestore(str(tmp_path / "backup"), double_checkpoint=True)
    callback.set_model(fresh)
    callback.on_train_begin()
    for a, b in zip(model.get_weights(), fresh.get_weights(), strict=True):
        assert (a == b).all()
