"""One process of tests/data/test_cache_memory.py: `fit` on a folder, RSS at each epoch end.

Usage: `python -m tests.data.cache_memory_worker '{"root": ..., "budget": ..., "epochs": ...}'`.
Prints one JSON line: the cache plan, the RSS (MiB) before `fit` and after each epoch.
"""

import json
import sys

import keras
import numpy as np
import psutil

from keras_ninception.data import load_dataset


def rss_mib():
    return psutil.Process().memory_info().rss / 2**20


class RecordRss(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.rss = []

    def on_epoch_end(self, epoch, logs=None):
        self.rss.append(rss_mib())


if __name__ == "__main__":
    options = json.loads(sys.argv[1])
    keras.utils.set_random_seed(0)
    splits = load_dataset(
        options["root"], image_size=options["image_size"], batch_size=64, augment="crop_flip",
        cache="auto", cache_budget=options["budget"],
    )
    # A tiny model: the test is about the input pipeline's memory.
    model = keras.Sequential([
        keras.Input(splits.input_shape),
        keras.layers.Conv2D(4, 3, strides=4),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(splits.num_classes, activation="softmax"),
    ])
    model.compile("sgd", "sparse_categorical_crossentropy")
    # Builds the step functions on zeros, so that the data is not read before `before`.
    model.fit(np.zeros((64, *splits.input_shape), "float32"), np.zeros(64, "int32"), verbose=0)
    before = rss_mib()
    record = RecordRss()
    model.fit(splits.train, epochs=options["epochs"], callbacks=[record], verbose=0)
    print(json.dumps({"cache_plan": splits.cache_plan, "before": before, "epochs": record.rss}))
