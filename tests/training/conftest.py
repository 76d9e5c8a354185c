"""Trained runs shared by the training tests, at session scope: tests only read them (copy
one to change it)."""

import pytest

from keras_ninception import TrainConfig, train
from keras_ninception.training import precision

# NIN on the 8-px digits for one epoch: a few seconds on 2 cores.
TINY = dict(model="nin", image_size=8, epochs=1, batch_size=128)


@pytest.fixture(scope="session")
def tiny_nin_run(tmp_path_factory):
    """`(run_dir, result)` of `train(TrainConfig(**TINY))` with `precision="auto"` on a CPU
    that reports AVX512-BF16, so "auto" resolves to `mixed_bfloat16` on every machine."""
    run_dir = str(tmp_path_factory.mktemp("runs") / "nin")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(precision, "gpu_compute_capabilities", lambda: [])
        patch.setattr(precision, "cpu_flags", lambda: {"avx512_bf16"})
        result = train(TrainConfig(**TINY, run_dir=run_dir), verbose=0)
    return run_dir, result
