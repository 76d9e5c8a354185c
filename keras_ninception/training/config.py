"""The configuration of a training run: `TrainConfig` (saved as the run's `config.json`), its
defaults, and the names derived from it (run folder, TensorBoard hyperparameters).

Importing this module imports neither TensorFlow nor Keras (the `ninception` command reads
the defaults for its `--help`); the few functions that need them import them when called.
"""

import dataclasses
import datetime
import os
import re

from keras_ninception.checks import check_bool, check_choice, check_int, check_number
from keras_ninception.options import MAX_SUMMARY_IMAGES, MODELS, PRECISIONS, STRATEGIES

DEFAULT_RUNS_DIR = "saved_models"
OUTPUT_NAMES = ("main", "aux1", "aux2")
# The embedded digits are 8×8 px: 24 px (3×) is enough for both models and keeps the default
# GoogLeNet run within a few CPU minutes.
DEFAULT_IMAGE_SIZES = {"digits": 24}
# TrainConfig fields that say how and where a run is executed, not what it trains: they are
# not compared when the same command resumes a run, and `resume` takes them from the call.
EXECUTION_FIELDS = ("run_dir", "strategy", "cache")
# TrainConfig fields that say what is logged, not how the model is trained.
MONITORING_FIELDS = ("image_summary_freq", "num_summary_images", "histogram_freq", "profile_batch")


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run; saved as `config.json`.

    Attributes:
        model: `"googlenet"` (default) or `"nin"`.
        dataset: `"digits"` (embedded, default), an image-folder path, or a TFDS name.
        variant: GoogLeNet variant; None picks `"cifar"` below the paper variant's minimum
            input size (79 px) and `"paper"` above. Ignored for NIN.
        image_size: int, the square input side in pixels images are resized to. Default
            None: `DEFAULT_IMAGE_SIZES[dataset]`, else 32.
        epochs: int >= 1. Default 6.
        batch_size: int >= 1. Default 64.
        learning_rate: float > 0, the peak of the one-epoch warm-up then cosine decay.
            Default 2e-3.
        optimizer: `"adam"` (default), `"adamw"`, `"sgd"` or `"rmsprop"`.
        weight_decay: float or None (default).
        aux_loss_weight: weight of each aux head's loss. Default 0.3 (paper).
        aux_classifiers: bool, GoogLeNet's aux heads. Default True.
        batch_norm: NIN only: batch normalization after each convolution. Default True
            (deviation from the paper, for training only: the plain NIN stayed at the
            chance loss ln(10) for 6 epochs on the digits with Adam 2e-3 and 5e-4 and SGD
            0.02 and 0.05; NIN without normalization is sensitive to the learning rate and
            the initialization). False trains the paper's form.
        validation_fraction: share of train carved out for validation when the source
            has no validation split. Default 0.1.
        augment: None (the loader's default for the source), `"none"`, `"crop"`,
            `"crop_flip"`, `"inception"` (GoogLeNet's random-resized crop of the original
            image and a flip; see `data.pipeline.build_inception_augmenter`).
        color_distortion: bool, with `augment="inception"`: also TF-slim's random
            brightness, saturation, hue and contrast. Default False.
        eval_crop: None (default: validation and test images resized whole) or the central
            fraction of each side kept, in (0, 1]: resize to `image_size / eval_crop`, then
            crop the central `image_size` (0.875 is TF-slim's). Also applied by `evaluate`,
            the export and `predict` (recorded in `config.json` and the export metadata).
        cache: `"auto"` (default), `"memory"`, `"none"` or a file path prefix: where the
            decoded images are kept between epochs (see `data.cache`; `"auto"` caches a
            split in memory when its decoded size fits a quarter of the available memory).
            How a run is executed, not what it trains.
        seed: int, seeds Keras, TF and NumPy, and the shuffling. Default 0.
        data_dir: TFDS data directory, or None for TFDS' default.
        download: bool, let TFDS download a named dataset. Default False.
        run_dir: the run folder; None makes `saved_models/<model>-<dataset>-<time>`.
        on_bad_image: `"error"` (default) or `"skip"` for unreadable files in a folder.
        image_summary_freq: int >= 0, epochs between the confusion-matrix and validation-
            image summaries in TensorBoard (`monitoring.ValidationImageSummaries`); 0 turns
            them off. Default 1.
        num_summary_images: int in [0, 64], validation images in the TensorBoard grid.
            Default 16.
        histogram_freq: int >= 0, epochs between weight histograms (Keras' `TensorBoard`
            argument); 0 (default) turns them off.
        profile_batch: None (default, no profiling), a batch number, `(start, stop)` or
            `"start,stop"`: the training batches (from 1) the TF profiler traces (Keras'
            `TensorBoard` argument); stored as `(start, stop)`.
        strategy: `"auto"` (default), `"none"`, `"mirrored"` or `"multiworker"`: the
            `tf.distribute` strategy (see `keras_ninception.training.distribute`; `"auto"`
            is multi-worker when `TF_CONFIG` names several workers, mirrored with more than
            one GPU, else none). `batch_size` is the global batch, split between replicas.
            How a run is executed, not what it trains: a run may resume under another
            strategy.
        precision: the Keras dtype policy of the model: `"auto"` (default: bfloat16 mixed
            precision on CPUs with AVX512-BF16 or AMX, float16 on GPUs, else float32; see
            `training.precision`), or `"float32"`, `"mixed_bfloat16"`, `"mixed_float16"` to
            force one. Weights and the softmax outputs stay float32. `train` records the
            resolved policy in `config.json`.
    """

    model: str = "googlenet"
    dataset: str = "digits"
    variant: str | None = None
    image_size: int | None = None
    epochs: int = 6
    batch_size: int = 64
    learning_rate: float = 2e-3
    optimizer: str = "adam"
    weight_decay: float | None = None
    aux_loss_weight: float = 0.3
    aux_classifiers: bool = True
    batch_norm: bool = True
    validation_fraction: float = 0.1
    augment: str | None = None
    color_distortion: bool = False
    eval_crop: float | None = None
    cache: str = "auto"
    seed: int = 0
    data_dir: str | None = None
    download: bool = False
    run_dir: str | None = None
    on_bad_image: str = "error"
    image_summary_freq: int = 1
    num_summary_images: int = 16
    histogram_freq: int = 0
    profile_batch: tuple[int, int] | None = None
    strategy: str = "auto"
    precision: str = "auto"

    def validate(self):
        """Raises ValueError, in the package's words, for a bad field. Returns self.

        Paths (`dataset`, `data_dir`, `run_dir`) may be `os.PathLike`; they become strings.
        """
        for field in ("dataset", "data_dir", "run_dir"):
            value = getattr(self, field)
            if value is None and field != "dataset":
                continue
            if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
                raise ValueError(f"`{field}` must be a non-empty string or path. Received: {field}={value!r}")
            setattr(self, field, os.fspath(value))
        check_choice("model", self.model, MODELS)
        check_choice("strategy", self.strategy, STRATEGIES)
        check_choice("precision", self.precision, PRECISIONS)
        check_int("epochs", self.epochs)
        check_int("batch_size", self.batch_size)
        if self.image_size is not None:
            check_int("image_size", self.image_size)
        check_int("seed", self.seed, minimum=0, maximum=2**32 - 1)
        check_number("learning_rate", self.learning_rate, strict=True)
        check_number("aux_loss_weight", self.aux_loss_weight)
        if self.weight_decay is not None:
            check_number("weight_decay", self.weight_decay)
        if self.eval_crop is not None:
            check_number("eval_crop", self.eval_crop, strict=True)
            if self.eval_crop > 1:
                raise ValueError(
                    "`eval_crop` must be the central fraction of each side kept, in (0, 1], such "
                    f"as 0.875. Received: eval_crop={self.eval_crop!r}"
                )
        if not isinstance(self.cache, (str, os.PathLike)) or not os.fspath(self.cache):
            raise ValueError(
                "`cache` must be 'auto', 'memory', 'none' or a file path prefix. "
                f"Received: cache={self.cache!r}"
            )
        self.cache = os.fspath(self.cache)
        for flag in ("aux_classifiers", "batch_norm", "download", "color_distortion"):
            check_bool(flag, getattr(self, flag))
        check_int("image_summary_freq", self.image_summary_freq, minimum=0)
        check_int("num_summary_images", self.num_summary_images, minimum=0, maximum=MAX_SUMMARY_IMAGES)
        check_int("histogram_freq", self.histogram_freq, minimum=0)
        from keras_ninception.training.monitoring import parse_profile_batch

        self.profile_batch = parse_profile_batch(self.profile_batch)
        return self

    def resolved(self):
        """A copy with `image_size`, `variant` and `precision` filled in; this is what
        `config.json` holds. `precision="auto"` becomes the policy this machine gets, so a
        resumed run keeps the policy it started with."""
        config = dataclasses.replace(self)
        if config.image_size is None:
            config.image_size = DEFAULT_IMAGE_SIZES.get(config.dataset, 32)
        config.variant = config.resolved_variant()
        from keras_ninception.training.precision import resolve_precision

        config.precision = resolve_precision(config.precision)
        return config

    def resolved_variant(self):
        if self.model != "googlenet":
            return None
        if self.variant is not None:
            return self.variant
        from keras_ninception.models.googlenet import min_input_size

        return "paper" if (self.image_size or 32) >= min_input_size("paper") else "cifar"

    def output_names(self):
        """The model's output names, which key the per-head labels."""
        if self.model == "googlenet" and self.aux_classifiers:
            return OUTPUT_NAMES
        return None


def slug(text):
    return re.sub(r"[^A-Za-z0-9]+", "-", os.path.basename(os.path.normpath(str(text)))).strip("-")


def default_run_dir(config):
    """`saved_models/<model>-<dataset>-<YYYYmmdd-HHMMSS>`, unique in `saved_models/`."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = os.path.join(DEFAULT_RUNS_DIR, f"{config.model}-{slug(config.dataset)}-{stamp}")
    path, n = base, 1
    while os.path.exists(path):
        n += 1
        path = f"{base}-{n}"
    return path


def hparams_of(config):
    """The run's hyperparameters for TensorBoard's HParams dashboard (None values left out)."""
    return {
        k: v
        for k, v in dataclasses.asdict(config).items()
        if isinstance(v, (bool, int, float, str)) and k not in ("run_dir", "data_dir") + MONITORING_FIELDS
    }


def saved_train_config(saved, config):
    """The `TrainConfig` saved in `config.json`, with the execution fields of `config`."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    restored = TrainConfig(**{k: v for k, v in saved["train_config"].items() if k in fields})
    for field in EXECUTION_FIELDS:
        setattr(restored, field, getattr(config, field))
    return restored.validate().resolved()


def config_differences(saved_config, config):
    """`epochs: 3 saved, 4 now; ...` for the fields (not EXECUTION_FIELDS) that differ."""
    saved_fields, fields = dataclasses.asdict(saved_config), dataclasses.asdict(config)
    return "; ".join(
        f"{name}: {saved_fields[name]!r} saved, {fields[name]!r} now"
        for name in fields
        if name not in EXECUTION_FIELDS and saved_fields[name] != fields[name]
    )
