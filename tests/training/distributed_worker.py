"""One process of tests/training/test_distributed.py: `train()` on a deterministic tiny NIN.

Usage: `python -m tests.training.distributed_worker '<TrainConfig fields as JSON>'`. The
process's `TF_CONFIG` (or its absence) decides the strategy, as for `ninception train`.

The model has neither dropout nor batch normalization: dropout masks are random per
replica, and batch normalization normalizes each replica's share of the global batch on
its own, so with either, a 2-worker run is a different computation from a 1-worker run.
Without them, both compute the same averaged gradient of the same global batches, which
lets the test compare weights.
"""

import json
import sys

from keras_ninception import reporting
from keras_ninception.models import build_nin
from keras_ninception.training import run
from keras_ninception.training.config import TrainConfig


def build_deterministic_nin(config, input_shape, num_classes):
    return build_nin(
        input_shape=input_shape,
        num_classes=num_classes,
        batch_norm=False,
        dropout_rate=0.0,
        widths=(16, 16, 16),
    )


if __name__ == "__main__":
    reporting.configure()  # run messages (the strategy line the test reads) to stderr
    run.build_model = build_deterministic_nin
    run.train(TrainConfig(**json.loads(sys.argv[1])), verbose=2)
