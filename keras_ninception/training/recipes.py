"""Named training recipes: optimizer, schedule, regularization and budget as data.

A recipe is a row of settings (`Recipe`) that `ninception train --recipe NAME` (and
`TrainConfig(recipe=NAME)`) applies; every field a flag or a `TrainConfig` field sets
explicitly overrides the recipe's, and `config.json` records both the recipe's name and
the resolved values. `RECIPE_FIELDS` are the `TrainConfig` fields a recipe fills.

Pure data (no TensorFlow import), so the command line lists recipes at once; the schedules
that `schedule` names are built by `training.schedules`.
"""

import dataclasses

from keras_ninception.checks import check_choice

SCHEDULES = ("cosine", "one_cycle", "step", "exponential", "constant")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One training recipe. Every field but `source` becomes the `TrainConfig` field of that name.

    Attributes:
        optimizer: `"adam"`, `"adamw"`, `"sgd"` (momentum 0.9, Nesterov), `"momentum"`
            (momentum 0.9, classic: Caffe's and the papers' SGD) or `"rmsprop"`.
        learning_rate: float, the peak learning rate (the base rate for `"step"`,
            `"exponential"` and `"constant"`).
        schedule: one of `SCHEDULES`:
            - `"cosine"`: linear warm-up over `warmup_epochs` from a tenth of the peak, then
              cosine decay to 0 (Loshchilov & Hutter 2017; Goyal et al. 2017's warm-up).
            - `"one_cycle"`: linear rise from peak / 25 to the peak over the first 30% of the
              steps, then cosine decay to peak / 1e4 (Smith & Topin 2019; PyTorch's
              `OneCycleLR` defaults).
            - `"step"`: the rate times `decay_rate` at each of `decay_epochs` (a tuple of
              epochs), Caffe's `multistep`.
            - `"exponential"`: the rate times `decay_rate` every `decay_epochs[0]` epochs,
              staircase (Caffe's `step`; GoogLeNet's "4% every 8 epochs").
            - `"constant"`.
        warmup_epochs: float >= 0, the warm-up of `"cosine"` (0 for the others).
        decay_epochs: tuple of epochs for `"step"` and `"exponential"`, else `()`.
        decay_rate: float, the factor of `"step"` and `"exponential"`.
        weight_decay: float or None. Decoupled weight decay (`keras.optimizers`), applied
            to convolution and dense kernels only: batch-normalization parameters and biases
            are excluded.
        augment: None (the source's default), `"none"`, `"crop"`, `"crop_flip"` or `"inception"`.
        label_smoothing: float in [0, 1), for every head's cross-entropy.
        dropout_rate: None (the builder's table: NIN 0.5, GoogLeNet 0.4 main / 0.7 aux) or
            a float for NIN's dropout layers and GoogLeNet's main-head dropout.
        ema: bool, Polyak averaging of the weights (Keras' `use_ema`, momentum 0.999 per
            step); the averaged weights are the ones evaluated and saved.
        epochs: int, the budget.
        batch_size: int, the global batch.
        source: str, where the recipe comes from and how it deviates.
    """

    optimizer: str
    learning_rate: float
    schedule: str
    warmup_epochs: float
    decay_epochs: tuple
    decay_rate: float
    weight_decay: float | None
    augment: str | None
    label_smoothing: float
    dropout_rate: float | None
    ema: bool
    epochs: int
    batch_size: int
    source: str


# The TrainConfig fields a recipe fills (every Recipe field but `source`).
RECIPE_FIELDS = tuple(f.name for f in dataclasses.fields(Recipe) if f.name != "source")

RECIPES = {
    # This package's defaults, chosen for time to accuracy on 2 CPU cores: the default job
    # (GoogLeNet, digits) reaches 0.98-0.99 test accuracy in 6 epochs.
    "fast": Recipe(
        optimizer="adam",
        learning_rate=2e-3,
        schedule="cosine",
        warmup_epochs=1,
        decay_epochs=(),
        decay_rate=1.0,
        weight_decay=None,
        augment=None,
        label_smoothing=0.0,
        dropout_rate=None,
        ema=False,
        epochs=6,
        batch_size=64,
        source="keras-ninception's defaults: Adam, one warm-up epoch then cosine decay (Loshchilov & "
        "Hutter 2017, arXiv:1608.03983; Goyal et al. 2017, arXiv:1706.02677).",
    ),
    # The unnormalized forms (NIN without BN, GoogLeNet 'paper'): the same job as 'fast', with
    # the gentle start and the lower peak that keep their class maps alive, and the longer
    # budget they need without normalization.
    "fast-plain": Recipe(
        optimizer="adam",
        learning_rate=3e-4,
        schedule="cosine",
        warmup_epochs=1,
        decay_epochs=(),
        decay_rate=1.0,
        weight_decay=None,
        augment=None,
        label_smoothing=0.0,
        dropout_rate=None,
        ema=False,
        epochs=30,
        batch_size=64,
        source="keras-ninception's 'fast' with a peak rate of 3e-4 and 30 epochs, measured on the "
        "digits at 24 px (benchmarks/nin_first_steps.py): the paper's NIN with Adam at 2e-3, 1e-3 "
        "or 5e-4 (with or without the warm-up), or SGD at 0.05, ends with every class map below "
        "zero after the final ReLU (loss pinned at ln(10)); at 3e-4 it reached 0.986 validation "
        "accuracy in 30 epochs (SGD one-cycle to 0.02: 0.597). Adam moves every weight by about "
        "the learning rate per step, which a 1x1 convolution over 192 channels sums coherently.",
    ),
    # CIFAR-10 from scratch in tens of epochs: the usual modern recipe for small
    # convolutional networks, with the regularization the papers had (dropout) kept.
    "cifar": Recipe(
        optimizer="sgd",
        learning_rate=0.1,
        schedule="cosine",
        warmup_epochs=1,
        decay_epochs=(),
        decay_rate=1.0,
        weight_decay=5e-3,
        augment="crop_flip",
        label_smoothing=0.0,
        dropout_rate=None,
        ema=False,
        epochs=30,
        batch_size=128,
        source="SGD with Nesterov momentum 0.9, batch 128, one warm-up epoch then cosine decay, "
        "random crops and flips; decoupled weight decay 5e-3 x learning rate per step, the "
        "same shrinkage as the coupled 5e-4 of PyTorch/Caffe with momentum 0.9 at steady state "
        "(lr * wd / (1 - momentum)). For batch-normalized networks (NIN with BN, GoogLeNet "
        "'cifar'); the paper's NIN without BN needs the 'nin-paper' rates.",
    ),
    # Lin et al. 2014, Section 4: mini-batch 128, momentum 0.9, weight decay, the rate lowered
    # by 10x twice when the accuracy stopped improving; dropout 0.5 after the first two
    # mlpconv blocks; 10.41% CIFAR-10 error without augmentation. The authors' Caffe solver
    # ran 120,000 iterations of 128 images (about 300 epochs).
    "nin-paper": Recipe(
        optimizer="momentum",
        learning_rate=0.01,
        schedule="step",
        warmup_epochs=0,
        decay_epochs=(150, 225),
        decay_rate=0.1,
        weight_decay=1e-3,
        augment="none",
        label_smoothing=0.0,
        dropout_rate=None,
        ema=False,
        epochs=300,
        batch_size=128,
        source="Lin et al. 2014 (arXiv:1312.4400), Section 4 and the authors' Caffe cifar10_nin solver: "
        "SGD momentum 0.9, batch 128, weight decay 1e-4 (coupled; 1e-3 decoupled here, the same "
        "shrinkage at steady state), the rate divided by 10 twice (fixed here at 50% and 75% of "
        "300 epochs instead of on plateaus), no augmentation. Deviation: base rate 0.01 instead "
        "of Caffe's 0.1, since these inputs are scaled to [-1, 1] rather than GCN+ZCA whitened "
        "and the weights start He-normal; 0.1 sends every class map below zero (dead ReLU).",
    ),
    # Szegedy et al. 2015, Section 6: asynchronous SGD with momentum 0.9, the learning rate
    # decreased by 4% every 8 epochs, Polyak averaging for the final model.
    "googlenet-paper": Recipe(
        optimizer="momentum",
        learning_rate=0.01,
        schedule="exponential",
        warmup_epochs=0,
        decay_epochs=(8,),
        decay_rate=0.96,
        weight_decay=2e-3,
        augment="crop_flip",
        label_smoothing=0.0,
        dropout_rate=None,
        ema=True,
        epochs=250,
        batch_size=32,
        source="Szegedy et al. 2015 (arXiv:1409.4842), Section 6: SGD momentum 0.9, the learning rate "
        "decreased by 4% every 8 epochs, Polyak averaging (Keras use_ema) for the model that is "
        "evaluated and saved. Deviations: synchronous SGD (tf.distribute) instead of "
        "DistBelief's asynchronous SGD; base rate 0.01 and weight decay 2e-4 coupled (2e-3 "
        "decoupled here) from BVLC's quick_solver, which the paper does not give; the paper's "
        "photometric distortions and 8-100% area crops are not in this pipeline's 'crop_flip'.",
    ),
}


def default_recipe(model, batch_norm, variant):
    """The recipe a form trains with when none is named.

    `"fast-plain"` for the unnormalized forms, NIN without batch normalization and GoogLeNet
    `"paper"` (local response normalization only): without normalization their class maps
    die (every one below zero after the final ReLU, loss pinned at ln(classes)) at the
    learning rates that suit the batch-normalized forms. `"fast"` for every other form.
    """
    unnormalized = (model == "nin" and not batch_norm) or (model == "googlenet" and variant == "paper")
    return "fast-plain" if unnormalized else "fast"


def get_recipe(name):
    """The `Recipe` called `name`; raises ValueError naming the recipes otherwise."""
    check_choice("recipe", name, tuple(RECIPES))
    return RECIPES[name]


def describe_recipe(config):
    """`fast: adam, learning rate 0.002 (cosine, 1 warm-up epoch), 6 epochs, batch 64, ...`:
    the resolved recipe fields of a `TrainConfig`, for the run's output."""
    parts = [f"{config.optimizer}, learning rate {config.learning_rate:g} ({config.schedule}"]
    if config.schedule == "cosine" and config.warmup_epochs:
        parts[0] += f", {config.warmup_epochs:g} warm-up epoch(s)"
    if config.schedule in ("step", "exponential"):
        parts[0] += f" x{config.decay_rate:g} at epochs {list(config.decay_epochs)}" if config.schedule == "step" else f" x{config.decay_rate:g} every {config.decay_epochs[0]:g} epochs"
    parts[0] += ")"
    parts.append(f"{config.epochs} epochs, batch {config.batch_size}")
    if config.weight_decay:
        parts.append(f"weight decay {config.weight_decay:g} (not on BN or biases)")
    if config.label_smoothing:
        parts.append(f"label smoothing {config.label_smoothing:g}")
    if config.dropout_rate is not None:
        parts.append(f"dropout {config.dropout_rate:g}")
    if config.ema:
        parts.append("EMA of the weights")
    parts.append(f"augment {config.augment or 'source default'}")
    return f"{config.recipe}: " + ", ".join(parts)
