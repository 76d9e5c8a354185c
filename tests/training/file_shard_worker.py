"""One process of tests/training/test_file_sharding.py: the images one worker reads.

Usage: `python -m tests.training.file_shard_worker PREPARED_DIR`, with `TF_CONFIG` set.
Reads the training split of a prepared folder as `train` does under `--strategy
multiworker` (`distribute.shard`, then `experimental_distribute_dataset`) and prints the
pixel values of the images this worker got, as one JSON list (each image is one value).
"""

import json
import sys

import numpy as np

from keras_ninception.training import distribute

if __name__ == "__main__":
    strategy = distribute.make_strategy("multiworker")  # before any other TF work
    from keras_ninception.data import load_dataset

    splits = load_dataset(sys.argv[1], image_size=4, batch_size=8, augment="none", cache="none")
    dataset = distribute.shard(splits.train, splits.file_sharded)
    values = []
    for images, _ in strategy.experimental_distribute_dataset(dataset):
        for local in strategy.experimental_local_results(images):
            values.extend(int(v) for v in np.round((local.numpy().mean(axis=(1, 2, 3)) + 1.0) * 127.5))
    print(json.dumps({"file_sharded": splits.file_sharded, "values": values}))
