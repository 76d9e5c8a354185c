"""Tuning: KerasTuner HyperModels for GoogLeNet and NIN, and the `ninception tune` runner.

Public API:
    - `HyperGoogLeNet`, `HyperNIN`: `keras_tuner.HyperModel`s over the package's builders.
    - `TuneConfig`, `tune`: a search from a run definition (`tuning/*.json`), its trial
      table, TensorBoard HParams logs, and the best model saved like a `ninception train` run.
"""

from keras_ninception.tuning.hypermodels import HyperGoogLeNet, HyperNIN, rebatch
from keras_ninception.tuning.run import TuneConfig, tune
