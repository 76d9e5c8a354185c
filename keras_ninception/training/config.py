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
from keras_ninception.options import CHECK_IMAGES, MAX_SUMMARY_IMAGES, MODELS, ON_BAD_IMAGE, OPTIMIZERS, PRECISIONS, STRATEGIES
from keras_ninception.training import recipes

DEFAULT_RUNS_DIR = "saved_models"
OUTPUT_NAMES = ("main", "aux1", "aux2")
# `fine_tune`: train the heads on a frozen backbone, or every layer (training/transfer.py).
FINE_TUNE_CHOICES = ("head", "all")
# ImageNet weights are trained at 224 px: runs that start from them default to it.
PRETRAINED_IMAGE_SIZE = 224
# The embedded digits are 8×8 px: 24 px (3×) is enough for both models and keeps the default
# GoogLeNet run within a few CPU minutes.
DEFAULT_IMAGE_SIZES = {"digits": 24}
# TrainConfig fields that say how and where a run is executed, not what it trains: they are
# not compared when the same command resumes a run, and `resume` takes them from the call.
EXECUTION_FIELDS = ("run_dir", "strategy", "check_images", "cache")
# TrainConfig fields that say what is logged, not how the model is trained.
MONITORING_FIELDS = ("image_summary_freq", "num_summary_images", "histogram_freq", "profile_batch")


@dataclasses.dataclass
class TrainConfig:
    """Everything that defines a training run; saved as `config.json`.

    Attributes:
        model: `"googlenet"` (default) or `"nin"`.
        dataset: `"digits"` (embedded, default), an image-folder path, or a TFDS name.
        variant: GoogLeNet variant; None picks `"cifar"` below the paper variant's minimum
            input size (79 px) and `"paper"` above; with `weights`, the source's variant
            (`"slim"` for ImageNet weights). Ignored for NIN.
        image_size: int, the square input side in pixels images are resized to. Default
            None: 224 with ImageNet weights, else `DEFAULT_IMAGE_SIZES[dataset]`, else 32;
            raised to the GoogLeNet variant's smallest input
            (`models.googlenet.min_input_size`: 79 px for `"paper"`, 63 for `"bn"` with aux
            heads) when the chosen `variant` needs more, so that every form builds with the
            defaults.
        recipe: the name of a training recipe (`training.recipes.RECIPES`): `"fast"`,
            `"fast-plain"`, `"cifar"`, `"nin-paper"` or `"googlenet-paper"`. It fills every
            field of `recipes.RECIPE_FIELDS` left None. Default None: the form's default
            (`recipes.default_recipe`): `"fast"` for the batch-normalized forms,
            `"fast-plain"` for the paper's unnormalized ones (NIN with `batch_norm=False`,
            GoogLeNet `"paper"`).
        epochs, batch_size, learning_rate, optimizer, schedule, warmup_epochs,
        decay_epochs, decay_rate, weight_decay, augment, label_smoothing, dropout_rate,
        ema: None (default) takes the recipe's value; a value overrides it (see
            `recipes.Recipe` for each). With the `"fast"` recipe: 6 epochs, batch 64, Adam,
            peak learning rate 2e-3 after one warm-up epoch, then cosine decay; no weight
            decay, the source's augmentation, the builders' dropout, no label smoothing, no
            EMA. `weight_decay=0` turns a recipe's weight decay off; `augment="none"` its
            augmentation.
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
        check_images: how the files of an image folder are checked before training:
            `"header"` (default: JPEG headers parsed, other files decoded), `"full"` (every
            file decoded) or `"none"` (see `load_dataset`). How a run is executed, not what
            it trains: a run may resume with another mode.
        image_summary_freq: int >= 0, epochs between the confusion-matrix and validation-
            image summaries in TensorBoard (`monitoring.ValidationImageSummaries`); 0 turns
            them off. Default 1.
        weights: None (random initialization, default), `"imagenet"` (TF-slim's
            inception_v1 checkpoint, see `build_googlenet`), a path to a copy of that
            checkpoint (`.tar.gz`, `.ckpt`) or to torchvision's `.pth`, a finished run folder,
            or a `.keras` file: the run starts from these weights
            (`keras_ninception.training.transfer`); heads that do not fit start fresh.
        fine_tune: with `weights`: `"all"` (default, every layer trains) or `"head"` (the
            backbone is frozen, its batch normalization in inference mode; only the heads
            train).
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
    recipe: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    optimizer: str | None = None
    schedule: str | None = None
    warmup_epochs: float | None = None
    decay_epochs: tuple | None = None
    decay_rate: float | None = None
    weight_decay: float | None = None
    label_smoothing: float | None = None
    dropout_rate: float | None = None
    ema: bool | None = None
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
    check_images: str = "header"
    image_summary_freq: int = 1
    num_summary_images: int = 16
    histogram_freq: int = 0
    profile_batch: tuple[int, int] | None = None
    strategy: str = "auto"
    precision: str = "auto"
    weights: str | None = None
    fine_tune: str = "all"

    def validate(self):
        """Raises ValueError, in the package's words, for a bad field. Returns self.

        Paths (`dataset`, `data_dir`, `run_dir`) may be `os.PathLike`; they become strings.
        """
        for field in ("dataset", "data_dir", "run_dir", "weights"):
            value = getattr(self, field)
            if value is None and field != "dataset":
                continue
            if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
                raise ValueError(f"`{field}` must be a non-empty string or path. Received: {field}={value!r}")
            setattr(self, field, os.fspath(value))
        check_choice("model", self.model, MODELS)
        check_choice("strategy", self.strategy, STRATEGIES)
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("on_bad_image", self.on_bad_image, ON_BAD_IMAGE)
        check_choice("check_images", self.check_images, CHECK_IMAGES)
        if self.recipe is not None:
            check_choice("recipe", self.recipe, tuple(recipes.RECIPES))
        if self.epochs is not None:
            check_int("epochs", self.epochs)
        if self.batch_size is not None:
            check_int("batch_size", self.batch_size)
        if self.optimizer is not None:
            check_choice("optimizer", self.optimizer, OPTIMIZERS)
        if self.schedule is not None:
            check_choice("schedule", self.schedule, recipes.SCHEDULES)
        for field in ("learning_rate", "decay_rate"):  # a rate cut by 0 stops training
            if getattr(self, field) is not None:
                check_number(field, getattr(self, field), strict=True)
        for field in ("warmup_epochs", "weight_decay"):
            if getattr(self, field) is not None:
                check_number(field, getattr(self, field))
        for field in ("label_smoothing", "dropout_rate"):
            value = getattr(self, field)
            if value is not None and not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < 1):
                raise ValueError(f"`{field}` must be a number in [0, 1). Received: {field}={value!r}")
        if self.decay_epochs is not None:
            if isinstance(self.decay_epochs, (int, float)) and not isinstance(self.decay_epochs, bool):
                self.decay_epochs = (self.decay_epochs,)
            if isinstance(self.decay_epochs, str) or not all(
                isinstance(e, (int, float)) and not isinstance(e, bool) and e > 0 for e in self.decay_epochs
            ):
                raise ValueError(
                    f"`decay_epochs` must be positive epoch numbers. Received: decay_epochs={self.decay_epochs!r}"
                )
            self.decay_epochs = tuple(self.decay_epochs)
        if self.ema is not None:
            check_bool("ema", self.ema)
        if self.image_size is not None:
            check_int("image_size", self.image_size)
        check_int("seed", self.seed, minimum=0, maximum=2**32 - 1)
        check_number("aux_loss_weight", self.aux_loss_weight)
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
        check_choice("fine_tune", self.fine_tune, FINE_TUNE_CHOICES)
        if self.fine_tune == "head" and self.weights is None:
            raise ValueError(
                "`fine_tune='head'` trains the heads on a frozen pretrained backbone: it needs "
                "`weights` ('imagenet', a run folder or a checkpoint). Received: weights=None"
            )
        if self.weights is not None:
            from keras_ninception.training import transfer

            transfer.check_weights(self.weights, self.model)
        return self

    def resolved(self):
        """A copy with the recipe's fields, `image_size`, `variant` and `precision` filled in;
        this is what `config.json` holds. `precision="auto"` becomes the policy this machine
        gets, so a resumed run keeps the policy it started with."""
        config = dataclasses.replace(self)
        if config.image_size is None and config.weights is not None and config.weights_are_imagenet():
            config.image_size = PRETRAINED_IMAGE_SIZE
        if config.image_size is None:
            config.image_size = DEFAULT_IMAGE_SIZES.get(config.dataset, 32)
            if config.model == "googlenet" and config.variant is not None:
                from keras_ninception.models.googlenet import min_input_size

                smallest = min_input_size(config.variant, config.aux_classifiers)
                config.image_size = max(config.image_size, smallest)
        config.variant = config.resolved_variant()
        if config.recipe is None:
            config.recipe = recipes.default_recipe(config.model, config.batch_norm, config.variant)
        recipe = recipes.get_recipe(config.recipe)
        for field in recipes.RECIPE_FIELDS:
            if getattr(config, field) is None:
                setattr(config, field, getattr(recipe, field))
        config.decay_epochs = tuple(config.decay_epochs)
        from keras_ninception.training.precision import resolve_precision

        config.precision = resolve_precision(config.precision)
        return config

    def resolved_variant(self):
        if self.model != "googlenet":
            return None
        if self.variant is not None:
            return self.variant
        if self.weights is not None:
            from keras_ninception.training import transfer

            if transfer.default_variant(self.weights):
                return transfer.default_variant(self.weights)
        from keras_ninception.models.googlenet import min_input_size

        return "paper" if (self.image_size or 32) >= min_input_size("paper") else "cifar"

    def weights_are_imagenet(self):
        """True when `weights` is ImageNet's (not a run folder or a `.keras` file)."""
        from keras_ninception.training import transfer

        return not transfer.is_run_dir(self.weights) and transfer.is_pretrained(self.weights)

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
