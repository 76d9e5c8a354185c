"""Memory over many trials in one process.

Measured (NIN, 16-32 filters, 8 px, TF 2.21 / Keras 3.15, 2 cores): resident memory grows by
about 28 MiB per trial, linearly (815 → 1199 MiB over 14 trials), with or without the
TensorBoard callbacks. A bare Keras loop (build, compile, `fit` one epoch, `clear_session`)
grows by the same 28 MiB per `fit`, and not at all with `run_eagerly=True`: the traced
training graphs of each model stay referenced inside TensorFlow after `clear_session`. Nothing
here caches models or layers (each trial builds fresh ones; see test_hypermodels.py). This
test guards the per-trial cost so that a leak of our own (a kept model, dataset or writer per
trial) shows up; long searches can be split with `--resume`, or spread over workers.
"""

import gc
import os
import resource

import pytest

from keras_ninception.tuning import run as run_module
from keras_ninception.tuning.run import TuneConfig, tune

TRIALS = 6
# TensorFlow's own per-`fit` graph cost measured above, plus a margin.
MAX_MIB_PER_TRIAL = 40


def resident_mib():
    """Current resident memory (Linux /proc), else the peak (getrusage)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10


@pytest.mark.slow
def test_resident_memory_per_trial_stays_at_tensorflows_graph_cost(tmp_path, monkeypatch):
    samples = []
    make_tuner = run_module.make_tuner

    def recording_tuner(*args, **kwargs):
        tuner = make_tuner(*args, **kwargs)
        on_trial_end = tuner.on_trial_end

        def record(trial):
            on_trial_end(trial)
            gc.collect()
            samples.append(resident_mib())

        tuner.on_trial_end = record
        return tuner

    monkeypatch.setattr(run_module, "make_tuner", recording_tuner)
    space = {"mlpconv1_filters": [16, 32], "mlpconv2_filters": [16, 32], "mlpconv3_filters": 16}
    config = TuneConfig(model="nin", image_size=8, max_trials=TRIALS, epochs=1, search_space=space, run_dir=str(tmp_path / "run"))
    result = tune(config, verbose=0)
    assert len(result["trials"]) == TRIALS and len(samples) == TRIALS
    print("resident MiB after each trial:", [round(s, 1) for s in samples])
    per_trial = (samples[-1] - samples[1]) / (TRIALS - 2)
    assert per_trial < MAX_MIB_PER_TRIAL, samples
