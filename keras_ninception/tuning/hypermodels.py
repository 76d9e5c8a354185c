"""KerasTuner HyperModels for GoogLeNet and NIN, written like `keras_tuner.applications`.

Each HyperModel fixes the problem in `__init__` (`input_shape`, `num_classes`, and what
is not searched: the GoogLeNet variant and its aux heads, NIN's batch normalization) and
checks it before any search starts. `build(hp)` declares every hyperparameter with a
default and builds a fresh model with the package's own blocks and builders; compiling is
the overridable `_compile(model, hp)` (the package's `compile_model` recipe); training-time
choices (the batch size) go through `fit(hp, model, ...)`.

Hyperparameter names are the arguments they feed (`width_multiplier`, `dropout_rate`,
`aux_loss_weight`, ...), so a trial reads like a `build_googlenet` / `compile_model` call.
Pre-declare one to narrow or fix it, the KerasTuner way:

    hp = keras_tuner.HyperParameters()
    hp.Fixed("width_multiplier", 0.25)                  # not searched
    hp.Choice("batch_size", [32, 64])                   # a narrower domain
    tuner = keras_tuner.RandomSearch(HyperGoogLeNet((32, 32, 3), 10, variant="cifar"),
                                     objective=keras_tuner.Objective("val_main_accuracy", "max"),
                                     hyperparameters=hp, max_trials=10)
"""

import warnings

import keras
import keras_tuner
import tensorflow as tf

from keras_ninception.checks import check_bool, check_choice, check_int, check_num_classes
from keras_ninception.models import GOOGLENET_VARIANTS, NIN_CONFIGS, build_googlenet, build_nin, min_input_size
from keras_ninception.models import common
from keras_ninception.training.compile import AUX_LOSS_WEIGHT, compile_model

# The GoogLeNet search space. Defaults are the paper's values where it gives one
# (dropout 0.4 and 0.7, aux loss weight 0.3, full width), else `compile_model`'s.
GOOGLENET_WIDTH_MULTIPLIERS = (0.25, 0.5, 0.75, 1.0)
GOOGLENET_OPTIMIZERS = ("adam", "sgd", "rmsprop")  # Keras 3 decays weights decoupled in all three
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 1e-3)
AUX_LOSS_WEIGHTS = (0.0, 0.1, 0.3, 0.5, 1.0)
BATCH_SIZES = (32, 64, 128)
LEARNING_RATE_RANGE = (1e-4, 1e-2)  # log-uniform
DEFAULT_LEARNING_RATE = 1e-3

# The NIN search space, around the rows of `NIN_CONFIGS["cifar10"]`: per block, the width
# of its k×k convolution (the block's 1×1 convolutions keep the table's ratio to it) and its
# kernel size; defaults are the table's (192 / 5, 192 / 5, 192 / 3, dropout 0.5).
NIN_CONFIG = "cifar10"
NIN_FILTERS = (48, 96, 192)
NIN_KERNEL_SIZES = (3, 5)


def _check_input_shape(input_shape):
    """A fully known 3-tuple in the current data format, or ValueError."""
    if input_shape is None:
        raise ValueError(
            "`input_shape` must be given: a tuple of 3 positive integers, one image's shape in "
            f"the '{keras.config.image_data_format()}' data format, e.g. (32, 32, 3). "
            "Received: input_shape=None"
        )
    shape = common.resolve_input_shape(input_shape, None, default_size=None)
    if any(side is None for side in shape):
        raise ValueError(
            "A HyperModel fixes the problem: every dimension of `input_shape` must be known. "
            f"Received: input_shape={input_shape!r}"
        )
    return shape


def rebatch(dataset, batch_size):
    """A batched `tf.data.Dataset` re-cut into batches of `batch_size` (last one smaller).

    The order of the examples and everything the pipeline did before (shuffling,
    augmentation) are kept: `dataset.unbatch().batch(batch_size).prefetch(AUTOTUNE)`.
    """
    return dataset.unbatch().batch(batch_size).prefetch(tf.data.AUTOTUNE)


class _NinceptionHyperModel(keras_tuner.HyperModel):
    """What both HyperModels share: the problem check and the training-time choices."""

    # Hyperparameters declared by `fit` (training-time choices), not by `build`.
    tunes_batch_size = False

    def __init__(self, input_shape, num_classes, name=None, tunable=True):
        self.input_shape = _check_input_shape(input_shape)
        self.num_classes = check_num_classes(num_classes)
        super().__init__(name=name, tunable=tunable)

    def declare_hyperparameters(self, hp):
        """Declares the training-time hyperparameters, so the search space holds them
        from the first trial (KerasTuner calls this before the first `build`)."""
        if self.tunes_batch_size:
            hp.Choice("batch_size", list(BATCH_SIZES), default=64)

    def fit(self, hp, model, x=None, *args, **kwargs):
        """`model.fit` with the trial's batch size.

        Batch size is a training-time choice: with arrays it is passed to `model.fit`; a
        `tf.data.Dataset` (what `load_dataset` returns) is batched by its pipeline, so the
        training data is re-cut with `rebatch` (`unbatch().batch(batch_size)`: same order,
        shuffling and augmentation). Validation data keeps its batches (the batch size does
        not change a validation score). Everything else goes to `model.fit` unchanged:
        KerasTuner's callbacks, `epochs` (Hyperband sets it per trial), `validation_data`.

        Returns:
            The `History` of `model.fit`.
        """
        if isinstance(x, tf.data.Dataset):
            kwargs.setdefault("shuffle", False)  # the pipeline shuffles; Keras would only warn
        if self.tunes_batch_size:
            batch_size = hp.Choice("batch_size", list(BATCH_SIZES), default=64)
            if isinstance(x, tf.data.Dataset):
                x = rebatch(x, batch_size)
                kwargs.pop("batch_size", None)
                with warnings.catch_warnings():
                    # A re-cut pipeline has an unknown number of batches: Keras counts them in
                    # the first epoch and warns when the (finite) data ends, which is expected.
                    warnings.filterwarnings("ignore", message="Your input ran out of data")
                    return model.fit(x, *args, **kwargs)
            kwargs["batch_size"] = batch_size
        return model.fit(x, *args, **kwargs)


class HyperGoogLeNet(_NinceptionHyperModel):
    """A GoogLeNet (Inception v1) HyperModel: `build_googlenet` + `compile_model`.

    Search space (name: domain, default):
        - `width_multiplier`: choice of `GOOGLENET_WIDTH_MULTIPLIERS`, default 1.0 (Table 1),
          on every stem and Inception channel count.
        - `dropout_rate`: 0.0-0.7 in steps of 0.1, default 0.4 (the paper's, before the
          main classifier).
        - `aux_dropout_rate`: 0.0-0.8 in steps of 0.1, default 0.7 (the paper's, in each aux
          head). Only with aux heads.
        - `optimizer`: `"adam"` (default), `"sgd"` (momentum 0.9, Nesterov) or `"rmsprop"`.
        - `learning_rate`: log-uniform in [1e-4, 1e-2], default 1e-3 (constant during a
          trial).
        - `weight_decay`: choice of 0, 1e-5, 1e-4, 1e-3, default 0 (none); decoupled.
        - `aux_loss_weight`: choice of 0, 0.1, 0.3, 0.5, 1.0, default 0.3 (Section 5).
          Only with aux heads.
        - `batch_size`: choice of 32, 64, 128, default 64; a training-time choice
          (declared by `declare_hyperparameters`, applied by `fit`).

    The outputs are `main`, `aux1`, `aux2` (or `main` only): give labels keyed by output
    name (`load_dataset(..., output_names=("main", "aux1", "aux2"))`) and tune on
    `keras_tuner.Objective("val_main_accuracy", "max")`.

    Args:
        input_shape: one image's shape in the current data format, e.g. `(32, 32, 3)`;
            every dimension known. With aux heads the side must be at least
            `min_input_size(variant)` (20 px cifar, 79 px paper, 63 px bn).
        num_classes: int >= 2.
        variant: `"cifar"` (default, small images), `"paper"` or `"bn"`: not searched.
        aux_classifiers: bool, train with the aux heads. Default True.
        name, tunable: as for `keras_tuner.HyperModel`.

    Raises:
        ValueError: a bad problem definition, in `__init__`, before any search.
    """

    tunes_batch_size = True

    def __init__(self, input_shape, num_classes, variant="cifar", aux_classifiers=True, name=None, tunable=True):
        check_choice("variant", variant, tuple(GOOGLENET_VARIANTS))
        check_bool("aux_classifiers", aux_classifiers)
        shape = _check_input_shape(input_shape)
        if aux_classifiers:
            smallest = min_input_size(variant)
            if min(common.spatial_size(shape)) < smallest:
                raise ValueError(
                    f"GoogLeNet variant '{variant}' with aux classifiers needs inputs of at least "
                    f"{smallest}×{smallest} px; use a larger image size, another variant or "
                    f"aux_classifiers=False. Received: input_shape={input_shape!r}"
                )
        self.variant = variant
        self.aux_classifiers = aux_classifiers
        super().__init__(shape, num_classes, name=name, tunable=tunable)

    def build(self, hp):
        """A fresh `build_googlenet` model with this trial's values, compiled by `_compile`."""
        width_multiplier = hp.Choice("width_multiplier", list(GOOGLENET_WIDTH_MULTIPLIERS), default=1.0)
        dropout_rate = hp.Float("dropout_rate", 0.0, 0.7, step=0.1, default=0.4)
        aux_dropout_rate = 0.7
        if self.aux_classifiers:
            aux_dropout_rate = hp.Float("aux_dropout_rate", 0.0, 0.8, step=0.1, default=0.7)
        model = build_googlenet(
            input_shape=self.input_shape,
            num_classes=self.num_classes,
            aux_classifiers=self.aux_classifiers,
            variant=self.variant,
            dropout_rate=dropout_rate,
            aux_dropout_rate=aux_dropout_rate,
            width_multiplier=width_multiplier,
        )
        self._compile(model, hp)
        return model

    def _compile(self, model, hp):
        """Compiles with `compile_model` (a loss and accuracy per head, aux weight from hp).

        Override to change the optimizer or loss while keeping the architecture space.
        """
        weight_decay = hp.Choice("weight_decay", list(WEIGHT_DECAYS), default=0.0)
        aux_loss_weight = AUX_LOSS_WEIGHT
        if self.aux_classifiers:
            aux_loss_weight = hp.Choice("aux_loss_weight", list(AUX_LOSS_WEIGHTS), default=AUX_LOSS_WEIGHT)
        compile_model(
            model,
            optimizer=hp.Choice("optimizer", list(GOOGLENET_OPTIMIZERS), default="adam"),
            learning_rate=hp.Float("learning_rate", *LEARNING_RATE_RANGE, sampling="log", default=DEFAULT_LEARNING_RATE),
            weight_decay=weight_decay or None,
            aux_loss_weight=aux_loss_weight,
        )


class HyperNIN(_NinceptionHyperModel):
    """A Network in Network HyperModel around the rows of `NIN_CONFIGS["cifar10"]`.

    Search space (name: domain, default):
        - `mlpconv{i}_filters` (i = 1, 2, 3): choice of 48, 96, 192, default 192 (the
          table's): the filters of block i's k×k convolution; its 1×1 convolutions keep
          the table's ratio to it (192-160-96 at 192, 96-80-48 at 96), and the last one
          keeps one map per class.
        - `mlpconv{i}_kernel_size`: choice of 3, 5, default the table's (5, 5, 3).
        - `dropout_rate`: 0.0-0.7 in steps of 0.1, default 0.5 (the paper's, after blocks
          1 and 2).
        - `learning_rate`: log-uniform in [1e-4, 1e-2], default 1e-3; Adam.

    The batch size is not searched: it is the pipeline's.

    The model is `build_nin(config="cifar10", widths=..., kernel_sizes=...,
    dropout_rate=..., batch_norm=...)`: no second copy of the architecture.

    Args:
        input_shape: one image's shape in the current data format; every dimension known.
        num_classes: int >= 2.
        batch_norm: bool, batch normalization after each convolution (not searched).
            Default True, as `ninception train` (the plain NIN did not leave the chance
            loss on the digits).
        name, tunable: as for `keras_tuner.HyperModel`.

    Raises:
        ValueError: a bad problem definition, in `__init__`, before any search.
    """

    def __init__(self, input_shape, num_classes, batch_norm=True, name=None, tunable=True):
        check_bool("batch_norm", batch_norm)
        self.batch_norm = batch_norm
        super().__init__(input_shape, num_classes, name=name, tunable=tunable)

    def build(self, hp):
        """A fresh NIN with this trial's widths, kernels and dropout, compiled by `_compile`."""
        blocks = NIN_CONFIGS[NIN_CONFIG]["blocks"]
        dropout_rate = hp.Float("dropout_rate", 0.0, 0.7, step=0.1, default=0.5)
        widths, kernel_sizes = [], []
        for block, kernel, _, _, filters, _, _ in blocks:
            width = hp.Choice(f"{block}_filters", list(NIN_FILTERS), default=filters[0])
            kernel = hp.Choice(f"{block}_kernel_size", list(NIN_KERNEL_SIZES), default=kernel)
            # Values of a pre-declared (search_space) hyperparameter are not ours: name them.
            widths.append(check_int(f"{block}_filters", width))
            kernel_sizes.append(check_int(f"{block}_kernel_size", kernel))
        model = build_nin(
            input_shape=self.input_shape,
            num_classes=self.num_classes,
            config=NIN_CONFIG,
            dropout_rate=dropout_rate,
            batch_norm=self.batch_norm,
            widths=widths,
            kernel_sizes=kernel_sizes,
        )
        self._compile(model, hp)
        return model

    def _compile(self, model, hp):
        """Compiles with `compile_model` (Adam; NIN logs `main_accuracy`)."""
        compile_model(
            model,
            learning_rate=hp.Float("learning_rate", *LEARNING_RATE_RANGE, sampling="log", default=DEFAULT_LEARNING_RATE),
        )
