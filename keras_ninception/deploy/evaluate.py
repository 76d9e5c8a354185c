"""Top-1 and top-k accuracy of an export (any format) on a split of its run's dataset.

So an int8 or another runtime's model sits beside the Keras model on the same images: the
split is read as `ninception evaluate RUN_DIR` reads it (`load_run_splits`: the run's image
size, channels, validation fraction and seed, no augmentation), turned back into the
`uint8` pixels an export takes, and predicted by `load_predictor` (the export's own
runtime). An export holds the inference model only, so it has one head, `main` (the aux
heads of a GoogLeNet run are dropped at export).
"""

import json
import math
import os

import numpy as np

from keras_ninception.checks import check_int
from keras_ninception.deploy.export import METADATA_FILE, inference_model
from keras_ninception.deploy.predict import load_predictor
from keras_ninception.deploy.quantize import to_uint8_pixels

# Keras' sparse categorical crossentropy clips probabilities to [epsilon, 1 - epsilon].
EPSILON = 1e-7


def is_export(path):
    """True when `path` is an export folder (a `metadata.json` with a `format`)."""
    try:
        with open(os.path.join(path, METADATA_FILE)) as f:
            return isinstance(json.load(f).get("format"), str)
    except (OSError, ValueError, TypeError, AttributeError):
        return False


def find_run(export_dir, metadata, run_dir=None):
    """The run folder an export came from: `run_dir`, else the metadata's `source`, else
    the folder two levels up (`RUN_DIR/export/<format>`), the first that is a run.

    Raises:
        FileNotFoundError: none of them is a run folder (`config.json` + `model.keras`).
    """
    candidates = [run_dir] if run_dir is not None else [
        metadata.get("source"),
        os.path.dirname(os.path.dirname(os.path.abspath(export_dir))),
    ]
    for candidate in candidates:
        if isinstance(candidate, str) and all(
            os.path.isfile(os.path.join(candidate, name)) for name in ("config.json", "model.keras")
        ):
            return candidate
    raise FileNotFoundError(
        f"Cannot find the run of the export {export_dir!r} (tried {candidates}); pass the run folder "
        "with --run (run_dir=...): its dataset and split are the ones evaluated."
    )


def evaluate_export(
    export_dir, run_dir=None, dataset=None, split=None, data_dir=None, batch_size=None,
    precision="float32", latency_repeats=10, latency_warmup=2,
):
    """Loss, top-1 and top-k accuracy of an export's model on one split of its run's dataset.

    Args:
        export_dir: an export folder (`ninception export`), any format.
        run_dir: the run it came from; default found by `find_run`.
        dataset, data_dir, batch_size: as for `training.evaluate.evaluate_run`.
        split: `"train"`, `"validation"` or `"test"`; default test, or validation when the
            dataset has no test split.
        precision: OpenVINO's compute precision (`load_predictor`); default float32.
        latency_repeats, latency_warmup: timed and untimed calls on the split's first batch
            for the median latency (0 repeats: not measured).

    Returns:
        The dict of `evaluate_run` with one head, `main` (`loss`, `accuracy`,
        `top5_accuracy`, `params`, `macs_per_image`, latencies in ms), plus
        `"export": {"path", "format", "quantization", "precision"}` and `"note"`.

    Raises:
        ValueError: not an export, an unknown split or bad counts, a dataset that does not
            fit the run.
        FileNotFoundError: the run cannot be found.
        MissingExtraError: the export's runtime is not installed.
    """
    from keras_ninception.models.profile import profile_model
    from keras_ninception.training.evaluate import (
        SPLITS, _device, load_run, load_run_splits, time_batch_calls, top_k_of,
    )

    if not is_export(export_dir):
        raise ValueError(f"{export_dir!r} is not an export folder (no {METADATA_FILE} with a 'format').")
    if split is not None and split not in SPLITS:
        raise ValueError(f"`split` must be one of {list(SPLITS)}. Received: split={split!r}")
    check_int("latency_repeats", latency_repeats, minimum=0)
    check_int("latency_warmup", latency_warmup, minimum=0)
    with open(os.path.join(export_dir, METADATA_FILE)) as f:
        metadata = json.load(f)
    run_dir = find_run(export_dir, metadata, run_dir)
    model, config = load_run(run_dir)
    model = inference_model(model)
    # The export resizes (and, for a run trained with eval_crop, crops) the images itself.
    splits = load_run_splits(model, config, dataset, data_dir, False, batch_size, uncropped=True)
    if split is None:
        split = "test" if splits.test is not None else "validation"
    data = splits.get_split(split)
    predictor = load_predictor(export_dir, precision)
    k = top_k_of(splits.num_classes)
    count = correct = correct_k = 0
    loss_sum = 0.0
    first = None
    for images, labels in data:
        pixels = to_uint8_pixels(images.numpy())
        first = pixels if first is None else first
        probabilities = predictor.batch_probabilities(pixels)
        labels = labels.numpy().astype(np.int64)
        order = np.argsort(-probabilities, axis=-1, kind="stable")
        correct += int((order[:, 0] == labels).sum())
        correct_k += int((order[:, :k] == labels[:, None]).any(axis=-1).sum())
        picked = probabilities[np.arange(len(labels)), labels]
        loss_sum += float(-np.log(np.clip(picked, EPSILON, 1 - EPSILON)).sum())
        count += len(labels)
    head = {
        "loss": loss_sum / count if count else math.nan,
        "accuracy": correct / count if count else math.nan,
        "top5_accuracy": correct_k / count if count else math.nan,
        "params": int(model.count_params()),
        "macs_per_image": int(profile_model(model).macs),
        "latency_ms_per_batch": None,
        "latency_ms_per_image": None,
    }
    if latency_repeats and first is not None:
        head.update(time_batch_calls(lambda: predictor.batch_probabilities(first), len(first),
                                     latency_repeats, latency_warmup))
    return {
        "run_dir": run_dir,
        "dataset": splits.source,
        "split": split,
        "num_examples": count,
        "top_k": k,
        "loss": head["loss"],
        "heads": {"main": head},
        "latency": {
            "batch_size": None if first is None else int(len(first)),
            "repeats": latency_repeats,
            "warmup": latency_warmup,
            "device": _device() if predictor.kind in ("run", "keras", "saved_model") else "CPU",
            "method": f"median wall-clock time of the {predictor.kind} runtime on the split's first batch "
            "(resize + inference), after the warm-up calls; milliseconds",
        },
        "export": {
            "path": export_dir,
            "format": metadata["format"],
            "runtime": predictor.kind,
            "quantization": metadata.get("quantization"),
            "precision": precision if predictor.kind == "openvino" else None,
        },
        "note": "an export holds the inference model only: one head, main (aux heads dropped at export)",
    }
