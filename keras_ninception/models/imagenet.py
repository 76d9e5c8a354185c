"""ImageNet inputs and outputs, the keras.applications way: `preprocess_input`, `decode_predictions`.

The 1000 ILSVRC-2012 classes ship with the package (`imagenet_classes.tsv`: WordNet id, tab,
WordNet lemmas), because keras.applications' own `imagenet_class_index.json` is downloaded
at run time. The list is public data; this copy is timm's `timm/data/_info/
imagenet_synsets.txt` with the lemmas of `imagenet_synset_to_lemma.txt` (timm 1.0.31): the
WordNet ids sorted, `n01440764` (tench) to `n15075141` (toilet tissue), which is the order of
TF-slim's classes 1-1000 (0 is "background") and of torchvision's 0-999.
"""

import functools
from importlib import resources

import keras
import numpy as np

CLASS_FILE = "imagenet_classes.tsv"
NUM_CLASSES = 1000


@functools.cache
def _classes():
    text = resources.files("keras_ninception.models").joinpath(CLASS_FILE).read_text("utf-8")
    rows = [line.split("\t") for line in text.splitlines() if line]
    return tuple(wnid for wnid, _ in rows), tuple(lemmas for _, lemmas in rows)


def imagenet_wnids():
    """The 1000 WordNet ids of the ILSVRC-2012 classes, in class-index order (a tuple of str)."""
    return _classes()[0]


def imagenet_class_names():
    """The 1000 class names (each WordNet synset's first lemma, e.g. `"tench"`), in index order."""
    return tuple(lemmas.split(", ")[0] for lemmas in _classes()[1])


def preprocess_input(x, data_format=None):
    """Scales RGB images from [0, 255] to [-1, 1], the input of the ImageNet weights.

    TF-slim's inception preprocessing (and this package's training pipeline): `x / 127.5 - 1`.
    It is keras.applications' `"tf"` mode (`keras.applications.imagenet_utils.
    preprocess_input(x, mode="tf")`, which this calls), as for InceptionV3 and MobileNet.

    Args:
        x: float or integer array / tensor `(..., H, W, 3)` (channels_last) of RGB values
            in [0, 255]. A float NumPy array is scaled in place, as in keras.applications.
        data_format: unused by this mode; kept for keras.applications' signature.

    Returns:
        Float array / tensor (Keras' floatx for integer input) of the same shape, in [-1, 1].
    """
    return keras.applications.imagenet_utils.preprocess_input(x, data_format=data_format, mode="tf")


def decode_predictions(preds, top=5):
    """The top classes of a batch of ImageNet predictions, as keras.applications' `decode_predictions`.

    Args:
        preds: array `(samples, 1000)`, or `(samples, 1001)` with TF-slim's class 0
            ("background") first, which is dropped.
        top: int >= 1, how many classes per sample. Default 5.

    Returns:
        A list with one list per sample of `(wnid, class_name, score)` tuples, highest score
        first, e.g. `("n01440764", "tench", 0.92)`.

    Raises:
        ValueError: `preds` is not 2-D with 1000 or 1001 columns, or a bad `top`.
    """
    preds = np.asarray(keras.ops.convert_to_numpy(preds))
    if preds.ndim != 2 or preds.shape[1] not in (NUM_CLASSES, NUM_CLASSES + 1):
        raise ValueError(
            "`decode_predictions` expects a batch of predictions (i.e. a 2D array of shape "
            "(samples, 1000), or (samples, 1001) with TF-slim's background class first). "
            f"Received array with shape: {preds.shape}"
        )
    if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= NUM_CLASSES:
        raise ValueError(f"`top` must be an integer in [1, 1000]. Received: top={top!r}")
    preds = preds[:, -NUM_CLASSES:]
    wnids, names = imagenet_wnids(), imagenet_class_names()
    results = []
    for row in preds:
        best = np.argsort(-row, kind="stable")[:top]
        results.append([(wnids[i], names[i], float(row[i])) for i in best])
    return results
