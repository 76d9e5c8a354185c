"""Data: one loader for the embedded digits, image folders and TFDS datasets.

`load_dataset(source)` returns a `DatasetSplits` of batched `tf.data`
pipelines. Modules, in the order data flows through them:

- `files`: image folders' files: which folders are splits and classes (no hidden or
  OS/tool folders), whether TF decodes a file, and the one decoder of check, pipeline and
  `predict`;
- `sources`: read and decode each kind of source into unbatched splits;
- `pipeline`: resize, cache, shuffle, batch, augment, scale, labels;
- `loader`: argument checks, `load_dataset` and `DatasetSplits`.
"""

from keras_ninception.data.loader import DatasetSplits
from keras_ninception.data.loader import load_dataset
from keras_ninception.data.pipeline import AUGMENT_MODES
from keras_ninception.data.sources import EMBEDDED_DATASETS

__all__ = [
    "AUGMENT_MODES",
    "DatasetSplits",
    "EMBEDDED_DATASETS",
    "load_dataset",
]
