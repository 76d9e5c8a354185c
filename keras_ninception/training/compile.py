"""The deep-supervision compile recipe: one loss per head, weights [1, 0.3, 0.3].

Szegedy et al. 2015, Section 5: "During training, their loss gets added to the total loss
of the network with a discount weight (the losses of the auxiliary classifiers were
weighted by 0.3)." In Keras 3 that needs a loss, a loss weight and metrics *per output*,
keyed by output name; a single loss string with `loss_weights`, or a flat
`metrics=["accuracy"]`, fails or logs the wrong thing on a multi-output model.
"""

import keras

from keras_ninception.checks import check_int, check_number
from keras_ninception.layers.normalization import use_fused_batch_normalization

AUX_LOSS_WEIGHT = 0.3

# Optimizers by name, with the settings used when only a learning rate is given.
OPTIMIZERS = {
    "adam": lambda lr, wd: keras.optimizers.Adam(lr, weight_decay=wd),
    "adamw": lambda lr, wd: keras.optimizers.AdamW(lr, weight_decay=wd if wd else 1e-4),
    "sgd": lambda lr, wd: keras.optimizers.SGD(lr, momentum=0.9, nesterov=True, weight_decay=wd),
    "rmsprop": lambda lr, wd: keras.optimizers.RMSprop(lr, weight_decay=wd),
}


def outputs_are_logits(model, output_name):
    """True when output `output_name` of `model` comes from a layer with no activation.

    Raises:
        ValueError: when it cannot tell (the output is not a layer's with an `activation`):
            pass `from_logits` to `compile_model` then.
    """
    try:
        layer = model.get_layer(output_name)
    except ValueError:
        layer = None
    if layer is None or not hasattr(layer, "activation"):
        raise ValueError(
            f"Cannot tell whether output {output_name!r} gives probabilities or logits; pass "
            "`from_logits=True` or `from_logits=False`. Received: from_logits=None"
        )
    return layer.activation is None or layer.activation is keras.activations.linear


def make_optimizer(optimizer="adam", learning_rate=1e-3, weight_decay=None):
    """A Keras optimizer from a name (`OPTIMIZERS`), or `optimizer` itself if it is one.

    Args:
        optimizer: `"adam"` (default), `"adamw"`, `"sgd"` (momentum 0.9, Nesterov) or
            `"rmsprop"`, or a `keras.optimizers.Optimizer` (returned unchanged).
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
            Default 1e-3.
        weight_decay: float or None (default): decoupled weight decay.

    Raises:
        ValueError: for an unknown optimizer name, a learning rate that is not a finite
            number > 0 (or a schedule), or a negative or non-finite weight decay.
    """
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    if not isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        check_number("learning_rate", learning_rate, strict=True)
    if weight_decay is not None:
        check_number("weight_decay", weight_decay)
    if optimizer not in OPTIMIZERS:
        raise ValueError(
            f"`optimizer` must be one of {sorted(OPTIMIZERS)} or a keras.optimizers.Optimizer. "
            f"Received: optimizer={optimizer!r}"
        )
    return OPTIMIZERS[optimizer](learning_rate, weight_decay)


def deep_supervision_loss_weights(output_names, aux_loss_weight=AUX_LOSS_WEIGHT):
    """`{"main": 1.0, "aux1": w, "aux2": w}` for the given output names."""
    return {name: 1.0 if name == "main" else float(aux_loss_weight) for name in output_names}


def compile_model(
    model,
    optimizer="adam",
    learning_rate=1e-3,
    aux_loss_weight=AUX_LOSS_WEIGHT,
    weight_decay=None,
    steps_per_execution=1,
    jit_compile="auto",
    from_logits=None,
    fused_batch_normalization=None,
):
    """Compiles a NIN or GoogLeNet model with the paper's deep-supervision recipe.

    For every output (`main`, and `aux1`/`aux2` when present) it sets a sparse categorical
    cross-entropy loss, a loss weight (1.0 for `main`, `aux_loss_weight` for the aux heads)
    and an accuracy metric, all keyed by output name. The total loss is
    `main_loss + 0.3 * aux1_loss + 0.3 * aux2_loss`; Keras logs `loss`, `main_loss`,
    `aux1_loss`, `main_accuracy`, ... and `val_main_accuracy` on validation data. A
    single-output model (NIN, an inference model) gets one loss and logs `loss` and
    `main_accuracy`, so `val_main_accuracy` is the key for every model.

    Labels are integer class indices `(batch,)`; for a multi-output model pass them as a
    dict keyed by output name (what `keras_ninception.data.load_dataset` yields).

    Args:
        model: a `keras.Model` whose outputs are `(batch, num_classes)` probabilities or
            logits (`from_logits` is read off each output layer's activation).
        optimizer: name (`"adam"`, `"adamw"`, `"sgd"`, `"rmsprop"`) or an optimizer.
            Default `"adam"`.
        learning_rate: float or schedule, used with an optimizer name. Default 1e-3.
        aux_loss_weight: float >= 0, the weight of each aux head's loss. Default 0.3
            (Szegedy et al. 2015, Section 5).
        weight_decay: float or None, decoupled weight decay. Default None.
        steps_per_execution: int >= 1, forwarded to `Model.compile`. Default 1: 4 or 8
            gave no steady gain on CPU (GoogLeNet 224 px batch 32: 12.7 against 12.9
            images/s; NIN 32 px batch 128: within the noise), and 1 keeps per-batch callbacks.
        jit_compile: bool or `"auto"`, forwarded to `Model.compile`. Default `"auto"`:
            Keras' rule, XLA off on a machine with only CPUs and on where TensorFlow sees a
            GPU (and no `tf.distribute` strategy). On CPU XLA was 3x slower
            (mixed_bfloat16 training, GoogLeNet 4.0 against 12.9 images/s, NIN 25 against
            86; `benchmarks/speed.py --ablations` on 2 cores); on GPU it fuses the
            elementwise work (batch normalization) around the convolutions.
        from_logits: None (default: read off each output layer's activation), or a bool
            for every output.
        fused_batch_normalization: None (default: True when Keras runs on TensorFlow, else
            False), True or False. True runs the model's `keras.layers.BatchNormalization`
            layers on TensorFlow's fused kernel (`use_fused_batch_normalization`, in place:
            same class, config and weights, so `model.save` still writes Keras' own layer);
            TensorFlow only. False leaves the layers as they are (a fresh model keeps Keras'
            composite arithmetic: GoogLeNet's training 1.37x slower in bfloat16 on CPU).

    Returns:
        `model`, compiled.

    Raises:
        ValueError: `model` is not a Keras model, a bad `aux_loss_weight`,
            `learning_rate`, `weight_decay` or `steps_per_execution`, an unknown optimizer
            name, or outputs whose activation cannot be read and no `from_logits`.
        RuntimeError: `fused_batch_normalization=True` on another backend than TensorFlow.
    """
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={model!r}")
    check_number("aux_loss_weight", aux_loss_weight)
    check_int("steps_per_execution", steps_per_execution)
    if from_logits not in (None, True, False):
        raise ValueError(f"`from_logits` must be None, True or False. Received: from_logits={from_logits!r}")
    if fused_batch_normalization not in (None, True, False):
        raise ValueError(
            "`fused_batch_normalization` must be None, True or False. "
            f"Received: fused_batch_normalization={fused_batch_normalization!r}"
        )
    names = list(getattr(model, "output_names", None) or ["main"])
    optimizer = make_optimizer(optimizer, learning_rate, weight_decay)

    def loss_for(name):
        logits = outputs_are_logits(model, name) if from_logits is None else from_logits
        return keras.losses.SparseCategoricalCrossentropy(from_logits=logits)

    if len(names) == 1:
        # Named after the output, so `val_main_accuracy` is the key for every model.
        accuracy = keras.metrics.SparseCategoricalAccuracy(name=f"{names[0]}_accuracy")
        loss, loss_weights, metrics = loss_for(names[0]), None, [accuracy]
    else:
        loss = {name: loss_for(name) for name in names}
        loss_weights = deep_supervision_loss_weights(names, aux_loss_weight)
        metrics = {name: ["accuracy"] for name in names}
    if fused_batch_normalization is None:
        fused_batch_normalization = keras.backend.backend() == "tensorflow"
    if fused_batch_normalization:
        use_fused_batch_normalization(model)
    model.compile(
        optimizer=optimizer,
        loss=loss,
        loss_weights=loss_weights,
        metrics=metrics,
        steps_per_execution=steps_per_execution,
        jit_compile=jit_compile,
    )
    return model
