"""Training: the compile recipe, callbacks, `model.fit` runs and their evaluation."""

from keras_ninception.training.compile import (
    AUX_LOSS_WEIGHT,
    compile_model,
    deep_supervision_loss_weights,
    make_optimizer,
)
