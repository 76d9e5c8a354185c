"""Argument checks shared by the builders, the compile helper and the training runs.

Each raises `ValueError` in the package's words: the argument's name, what is allowed, and
`Received: arg=value`. Integers may be any `numbers.Integral` (NumPy's too), never bool.
"""

import math
import numbers


def is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(arg_name, value, minimum=1, maximum=None):
    """Returns `int(value)`; raises unless it is an integer in [minimum, maximum]."""
    if not is_int(value) or value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"`{arg_name}` must be an integer {bound}. Received: {arg_name}={value!r}")
    return int(value)


def check_number(arg_name, value, minimum=0.0, strict=False):
    """Returns `float(value)`; raises unless it is a finite number >= (or >) minimum."""
    if (
        not is_number(value)
        or not math.isfinite(value)
        or value < minimum
        or (strict and value == minimum)
    ):
        relation = ">" if strict else ">="
        raise ValueError(
            f"`{arg_name}` must be a finite number {relation} {minimum:g}. "
            f"Received: {arg_name}={value!r}"
        )
    return float(value)


def check_num_classes(num_classes):
    if not is_int(num_classes) or num_classes < 2:
        raise ValueError(
            f"`num_classes` must be an integer >= 2. Received: num_classes={num_classes!r}"
        )
    return int(num_classes)


def check_rate(arg_name, value):
    if not is_number(value) or not 0 <= value < 1:
        raise ValueError(f"`{arg_name}` must be a float in [0, 1). Received: {arg_name}={value!r}")


def check_choice(arg_name, value, choices):
    if value not in choices:
        raise ValueError(
            f"`{arg_name}` must be one of {list(choices)}. Received: {arg_name}={value!r}"
        )


def check_bool(arg_name, value):
    """Raises unless `value` is True or False (1 and 0 are not accepted)."""
    if not isinstance(value, bool):
        raise ValueError(f"`{arg_name}` must be True or False. Received: {arg_name}={value!r}")


def check_tensorflow_backend(feature):
    """Raises `RuntimeError` naming the backend unless Keras runs on TensorFlow.

    For the TensorFlow-only features (tf.distribute strategies, SavedModel and LiteRT export,
    the fused batch-normalization kernel); `feature` names the one asked for.
    """
    import keras

    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"{feature} needs the TensorFlow backend; Keras runs on {backend!r} "
            f"(KERAS_BACKEND={backend}). Received: backend={backend!r}"
        )
