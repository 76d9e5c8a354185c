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
    # Classic momentum, Caffe's SGD solver (the NIN and GoogLeNet papers).
    "momentum": lambda lr, wd: keras.optimizers.SGD(lr, momentum=0.9, nesterov=False, weight_decay=wd),
    "rmsprop": lambda lr, wd: keras.optimizers.RMSprop(lr, weight_decay=wd),
}
# Variables that weight decay never touches: batch-normalization scales and offsets and every
# bias (matched by Keras' `Optimizer.exclude_from_weight_decay(var_names=...)`, a substring
# of the variable's name). Decaying them only shrinks what normalization restores.
NO_WEIGHT_DECAY = ("bias", "gamma", "beta")
# Polyak averaging (`use_ema`): the averaged weights replace the model's at the end of `fit`.
EMA_MOMENTUM = 0.999


@keras.saving.register_keras_serializable(package="keras_ninception")
class SparseCategoricalCrossentropyWithSmoothing(keras.losses.Loss):
    """Cross-entropy of integer labels against smoothed one-hot targets.

    Keras' `SparseCategoricalCrossentropy` has no `label_smoothing`; this turns the labels
    into one-hot rows and calls Keras' `categorical_crossentropy(..., label_smoothing=...)`
    (targets `(1 - s) * one_hot + s / classes`, Szegedy et al. 2016, arXiv:1512.00567,
    Section 7).

    Args:
        label_smoothing: float in [0, 1).
        from_logits: bool. Default False (probabilities).
        Other arguments as for `keras.losses.Loss`.
    """

    def __init__(self, label_smoothing=0.1, from_logits=False, name="sparse_categorical_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)
        self.from_logits = bool(from_logits)

    def call(self, y_true, y_pred):
        ops = keras.ops
        labels = ops.reshape(ops.cast(y_true, "int32"), ops.shape(y_pred)[:-1])
        one_hot = ops.one_hot(labels, ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(
            one_hot, y_pred, from_logits=self.from_logits, label_smoothing=self.label_smoothing
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing, "from_logits": self.from_logits}


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


def make_optimizer(optimizer="adam", learning_rate=1e-3, weight_decay=None, use_ema=False):
    """A Keras optimizer from a name (`OPTIMIZERS`), or `optimizer` itself if it is one.

    Args:
        optimizer: `"adam"` (default), `"adamw"`, `"sgd"` (momentum 0.9, Nesterov),
            `"momentum"` (momentum 0.9, classic) or `"rmsprop"`, or a
            `keras.optimizers.Optimizer` (returned unchanged).
        learning_rate: float or `keras.optimizers.schedules.LearningRateSchedule`.
            Default 1e-3.
        weight_decay: float or None (default): decoupled weight decay (Keras' optimizers
            shrink each variable by `learning_rate * weight_decay` per step), applied to
            kernels only: names containing `NO_WEIGHT_DECAY` (biases, batch-normalization
            gamma and beta) are excluded.
        use_ema: bool, Keras' `use_ema` with momentum `EMA_MOMENTUM` (0.999 per step):
            `fit` replaces the weights with their moving average when it ends. Default False.

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
    instance = OPTIMIZERS[optimizer](learning_rate, weight_decay or None)
    if weight_decay:
        instance.exclude_from_weight_decay(var_names=list(NO_WEIGHT_DECAY))
    if use_ema:
        instance.use_ema = True
        instance.ema_momentum = EMA_MOMENTUM
    return instance


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
    label_smoothing=0.0,
    use_ema=False,
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
        label_smoothing: float in [0, 1), for every head. Default 0.0 (Keras'
            `SparseCategoricalCrossentropy`); above 0,
            `SparseCategoricalCrossentropyWithSmoothing`.
        use_ema: bool, Polyak averaging of the weights (see `make_optimizer`). Default False.
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
    if not (isinstance(label_smoothing, (int, float)) and not isinstance(label_smoothing, bool) and 0 <= label_smoothing < 1):
        raise ValueError(f"`label_smoothing` must be a number in [0, 1). Received: label_smoothing={label_smoothing!r}")
    optimizer = make_optimizer(optimizer, learning_rate, weight_decay, use_ema=use_ema)

    def loss_for(name):
        logits = outputs_are_logits(model, name) if from_logits is None else from_logits
        if label_smoothing:
            return SparseCategoricalCrossentropyWithSmoothing(label_smoothing, from_logits=logits)
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
    build_training_state(model, names)
    return model


def build_training_state(model, names):
    """Creates the optimizer's slots and the metric and loss-tracker variables now, at compile time.

    On TensorFlow with no distribution strategy, Keras defers creating them to the first trace
    of the train step (`TensorFlowTrainer._maybe_symbolic_build`), and a `tf.function` whose
    first trace creates variables is traced a second time
    (https://github.com/tensorflow/tensorflow/issues/48851): for GoogLeNet with its aux heads
    about 10 s of every `fit` on 2 CPU cores. This runs Keras' own symbolic build (the one it
    runs under a distribution strategy) on symbolic inputs and sparse integer labels, one per
    output in `names`. Nothing is computed; a model that is not built yet, or another backend,
    is left to Keras.
    """
    if keras.backend.backend() != "tensorflow" or not model.built or not hasattr(model, "_symbolic_build"):
        return
    inputs = model.inputs[0] if len(model.inputs) == 1 else list(model.inputs)
    labels = {name: keras.KerasTensor((None,), "int32") for name in names}
    model._symbolic_build(data_batch=(inputs, labels if len(names) > 1 else labels[names[0]]))
