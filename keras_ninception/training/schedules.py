"""Learning-rate schedules by name (`recipes.SCHEDULES`), built from a resolved `TrainConfig`.

Every schedule is a step function of the optimizer's iteration count, so a run resumed by
`BackupAndRestore` (which restores the iterations) continues on the same curve.
"""

import logging
import math

import keras

logger = logging.getLogger(__name__)

def make_schedule(config, steps_per_epoch):
    """The learning-rate schedule of a resolved `TrainConfig` (its recipe fields filled).

    Args:
        config: a `TrainConfig` after `resolved()`: `learning_rate`, `schedule`,
            `warmup_epochs`, `decay_epochs`, `decay_rate` and `epochs` are set.
        steps_per_epoch: int >= 1, optimizer steps per epoch.

    Returns:
        A `keras.optimizers.schedules.LearningRateSchedule` (a float for `"constant"`).
    """
    total = max(1, steps_per_epoch * config.epochs)
    rate = float(config.learning_rate)
    if config.schedule in ("step", "exponential"):
        unreached = [e for e in config.decay_epochs if e >= config.epochs]
        if unreached:
            # Typically a recipe's epochs cut by `--epochs` (`nin-paper`: 300 epochs, cuts at
            # 150 and 225) with its decay epochs left as they were.
            logger.warning(
                "The learning rate is never cut at epoch(s) %s of decay_epochs=%s: the run has "
                "%d epochs. Pass --decay-epochs (TrainConfig.decay_epochs) scaled to the run.",
                unreached, list(config.decay_epochs), config.epochs,
            )
    if config.schedule == "cosine":
        warmup = int(round(config.warmup_epochs * steps_per_epoch)) if config.epochs > 1 else 0
        warmup = min(warmup, total - 1)
        return keras.optimizers.schedules.CosineDecay(
            initial_learning_rate=rate * (0.1 if warmup else 1.0),
            decay_steps=max(1, total - warmup),
            warmup_target=rate if warmup else None,
            warmup_steps=warmup,
        )
    if config.schedule == "one_cycle":
        return OneCycle(rate, total)
    if config.schedule == "step":
        # PiecewiseConstantDecay switches after a boundary (step > boundary): the first step
        # of epoch e (step e * steps_per_epoch) already has the new rate.
        boundaries = [int(e * steps_per_epoch) - 1 for e in config.decay_epochs]
        values = [rate * config.decay_rate**i for i in range(len(boundaries) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    if config.schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(
            rate, decay_steps=max(1, int(config.decay_epochs[0] * steps_per_epoch)),
            decay_rate=config.decay_rate, staircase=True,
        )
    return rate


@keras.saving.register_keras_serializable(package="keras_ninception")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """The one-cycle learning rate (Smith & Topin 2019, arXiv:1708.07120), PyTorch's defaults.

    A linear rise from `peak / div_factor` to `peak` over the first `pct_start` of
    `total_steps`, then cosine annealing to `peak / div_factor / final_div_factor`.

    Args:
        peak: float > 0, the highest learning rate.
        total_steps: int >= 1.
        pct_start: float in (0, 1). Default 0.3.
        div_factor: float. Default 25.
        final_div_factor: float. Default 1e4.
    """

    def __init__(self, peak, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        up = max(1.0, self.pct_start * self.total_steps)
        down = max(1.0, self.total_steps - up)
        start = self.peak / self.div_factor
        end = start / self.final_div_factor
        rising = start + (self.peak - start) * ops.minimum(step / up, 1.0)
        progress = ops.clip((step - up) / down, 0.0, 1.0)
        falling = end + (self.peak - end) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < up, rising, falling)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }
