"""Normalization layers: local response normalization, and batch normalization on TF's fused kernel.

- `LocalResponseNormalization`: Keras 3 has no LRN layer, and a `Lambda` wrapping
  `tf.nn.local_response_normalization` does not reload in safe mode, so this is a small
  serializable layer written with `keras.ops`.
- Batch normalization on TensorFlow's fused kernel (`tf.nn.fused_batch_norm`, the
  `fused=True` path of tf.keras 2): `use_fused_batch_normalization(model)` switches Keras' own
  `BatchNormalization` layers to it without changing their class, so saved files stay plain
  Keras. Keras 3 composes batch normalization from `moments` and element-wise ops (and, under
  a mixed policy, casts to float32 and back): on a 2-core CPU that made GoogLeNet's training
  step 1.37x slower in bfloat16 and 1.17x in float32 (`benchmarks/speed.py --ablations`;
  keras-team/keras-core#225). `FusedBatchNormalization`, the registered layer that version
  0.1's builders used, stays for the files saved with it.
"""

import types

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_ninception")
class LocalResponseNormalization(keras.layers.Layer):
    """Local response normalization across channels (Caffe's `LRN`, `ACROSS_CHANNELS`).

    `b_c = a_c / (k + alpha / size * sum_{c' in window(c)} a_{c'}^2) ** beta`, with a window of
    `size` channels centred on `c` (zero outside). Defaults are those of GoogLeNet's
    normalization layers in the BVLC Caffe replication (size 5, alpha 1e-4, beta 0.75, k 1).
    Caffe divides `alpha` by `size`; `tf.nn.local_response_normalization` does not, so its
    equivalent is `depth_radius=size // 2, alpha=alpha / size, bias=k, beta=beta`.

    Reference: Krizhevsky et al. 2012, Section 3.3; Szegedy et al. 2015, Table 1 / Figure 3.

    Args:
        size: odd int, the number of channels in the window. Default 5.
        alpha: float, scale. Default 1e-4.
        beta: float, exponent. Default 0.75.
        k: float, bias. Default 1.0.
        data_format: `"channels_last"`, `"channels_first"` or None (the Keras default).
        **kwargs: base `Layer` arguments (`name`, `dtype`, ...).

    Input/output: 4-D float tensor, shape and dtype unchanged; no weights. Computed in float32
    whatever the input dtype (a bfloat16 window sum would lose the `alpha` term).

    Raises:
        ValueError: `size` is not a positive odd integer.
    """

    def __init__(self, size=5, alpha=1e-4, beta=0.75, k=1.0, data_format=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(size, bool) or not isinstance(size, int) or size < 1 or size % 2 == 0:
            raise ValueError(f"`size` must be a positive odd integer. Received: size={size!r}")
        self.size = size
        self.alpha = alpha
        self.beta = beta
        self.k = k
        data_format = data_format or keras.config.image_data_format()
        if data_format not in ("channels_last", "channels_first"):
            raise ValueError(
                "`data_format` must be 'channels_last', 'channels_first' or None. "
                f"Received: data_format={data_format!r}"
            )
        self.data_format = data_format

    def call(self, inputs):
        # In float32 under a mixed policy (like BatchNormalization): in bfloat16 the sum of
        # squares keeps 8 bits and `k + alpha / size * window` rounds to `k`.
        dtype = inputs.dtype
        inputs = ops.cast(inputs, "float32")
        axis = 3 if self.data_format == "channels_last" else 1
        channels = inputs.shape[axis]
        half = self.size // 2
        padding = [[0, 0]] * 4
        padding[axis] = [half, half]
        squares = ops.pad(ops.square(inputs), padding)
        window = None
        for offset in range(self.size):
            index = [slice(None)] * 4
            index[axis] = slice(offset, offset + channels)
            part = squares[tuple(index)]
            window = part if window is None else window + part
        outputs = inputs / ops.power(self.k + (self.alpha / self.size) * window, self.beta)
        return ops.cast(outputs, dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "size": self.size,
            "alpha": self.alpha,
            "beta": self.beta,
            "k": self.k,
            "data_format": self.data_format,
        }


# `tf.nn.fused_batch_norm` raises a smaller epsilon to this silently (cuDNN's minimum); a layer
# with a smaller epsilon keeps Keras' composite arithmetic so its output does not change.
FUSED_BATCH_NORM_MIN_EPSILON = 1.001e-5


def check_tensorflow_backend(feature):
    """Raises `RuntimeError` naming the backend unless Keras runs on TensorFlow."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise RuntimeError(
            f"{feature} needs the TensorFlow backend; Keras runs on {backend!r} "
            f"(KERAS_BACKEND={backend}). Received: backend={backend!r}"
        )


def _uses_fused_kernel(layer, inputs, mask):
    return (
        keras.backend.backend() == "tensorflow"
        and mask is None
        and not layer.renorm
        and not layer.synchronized
        and len(inputs.shape) == 4
        and layer.axis in (3, -1)
        and layer.epsilon >= FUSED_BATCH_NORM_MIN_EPSILON
    )


def fused_batch_normalization_call(layer, inputs, training=None, mask=None):
    """`keras.layers.BatchNormalization.call` of `layer`, computed by TF's fused kernel where it applies.

    Same results, weights and updates as Keras' `call` (Ioffe & Szegedy 2015): in training,
    `y = gamma * (x - mean_B) / sqrt(var_B + epsilon) + beta` with the batch's biased
    variance, and `moving = moving * momentum + batch * (1 - momentum)`; in inference (or when
    the layer is frozen) the moving statistics. The difference is the kernel: one
    `FusedBatchNormV3` op (oneDNN on x86 CPUs, cuDNN on GPUs) and its fused gradient instead of
    Keras 3's `moments` + element-wise ops, and under a mixed policy it reads and writes the
    16-bit activations directly (statistics still accumulate in float32 inside the kernel)
    instead of casting them to float32 and back. Grappler also folds a following ReLU into it
    (`_FusedBatchNormEx`).

    The fused kernel is used when all hold; otherwise Keras' own `call` runs, so it is always
    correct:
    - the TensorFlow backend, a 4-D input, channels last (`axis` 3 or -1);
    - no mask, `renorm=False`, `synchronized=False`;
    - `epsilon >= 1.001e-5` (the fused kernel's minimum).

    Deviation from the kernel's own output, corrected here: in training `FusedBatchNormV3`
    returns the Bessel-corrected batch variance (divided by `n - 1`); Keras' moving variance
    tracks the biased one (divided by `n`), so it is rescaled by `(n - 1) / n`, `n` the number
    of values per channel (batch x height x width).

    Args:
        layer: a `keras.layers.BatchNormalization` (or subclass), built.
        inputs: 4-D float tensor `(batch, height, width, channels)` in the layer's compute
            dtype (float32, bfloat16 or float16).
        training, mask: as for Keras' `call`.

    Returns:
        A tensor of the shape and dtype of `inputs`.
    """
    if not _uses_fused_kernel(layer, inputs, mask):
        return keras.layers.BatchNormalization.call(layer, inputs, training=training, mask=mask)
    import tensorflow as tf

    channels = inputs.shape[-1]
    scale = layer.gamma.value if layer.scale else tf.ones((channels,), "float32")
    offset = layer.beta.value if layer.center else tf.zeros((channels,), "float32")
    if training and layer.trainable:
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs, scale, offset, epsilon=layer.epsilon, data_format="NHWC", is_training=True
        )
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), "float32")
        variance = variance * ((count - 1.0) / tf.maximum(count, 1.0))  # unbiased -> biased
        momentum = layer.momentum
        layer.moving_mean.assign(layer.moving_mean.value * momentum + mean * (1.0 - momentum))
        layer.moving_variance.assign(
            layer.moving_variance.value * momentum + variance * (1.0 - momentum)
        )
        return outputs
    outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
        inputs,
        scale,
        offset,
        mean=layer.moving_mean.value,
        variance=layer.moving_variance.value,
        epsilon=layer.epsilon,
        data_format="NHWC",
        is_training=False,
    )
    return outputs


def _sublayers(layer):
    yield layer
    for sublayer in getattr(layer, "layers", None) or ():
        yield from _sublayers(sublayer)


def uses_fused_batch_normalization(layer):
    """True when `layer` computes batch normalization with `fused_batch_normalization_call`."""
    return isinstance(layer, FusedBatchNormalization) or (
        layer.__dict__.get("call") is not None
        and getattr(layer.__dict__["call"], "__func__", None) is fused_batch_normalization_call
    )


def use_fused_batch_normalization(model):
    """Runs every `keras.layers.BatchNormalization` of `model` on TF's fused kernel, in place.

    TensorFlow backend only. Each layer keeps its class, config and weights; only the
    function that computes it changes (`fused_batch_normalization_call`, set on the layer
    object), from the next trace on. So a `.keras` file saved from `model` holds Keras' own
    `BatchNormalization` and loads with Keras alone, and the copy loaded there computes the
    same outputs with Keras' composite arithmetic (equal up to float rounding, most under
    `mixed_bfloat16`). `compile_model` calls this on TensorFlow: Keras 3 composes batch
    normalization from `moments` and element-wise ops (keras-team/keras-core#225), which made
    GoogLeNet's training step 1.37x slower in bfloat16 and 1.17x in float32 on a 2-core CPU
    (`benchmarks/speed.py --ablations`).

    Nested models are walked; layers of other classes (subclasses of `BatchNormalization`
    included, they may override `call`) are left as they are. Calling it twice is harmless.

    Args:
        model: a `keras.Model` or layer.

    Returns:
        `model`.

    Raises:
        RuntimeError: Keras runs on another backend than TensorFlow (the message names it).
    """
    check_tensorflow_backend("The fused batch-normalization kernel (`use_fused_batch_normalization`)")
    for layer in _sublayers(model):
        if type(layer) is keras.layers.BatchNormalization and not uses_fused_batch_normalization(layer):
            layer.call = types.MethodType(fused_batch_normalization_call, layer)
    return model


@keras.saving.register_keras_serializable(package="keras_ninception")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` computed by TensorFlow's fused batch-norm kernel (old files).

    The builders of keras-ninception 0.1 used this registered layer, so a `.keras` file saved
    from their models loads where `keras_ninception.layers` is imported; the class stays for
    those files. Builders now return Keras' own `BatchNormalization`, and `compile_model`
    switches it to the same kernel (`use_fused_batch_normalization`), so saved files load with
    Keras alone: prefer that. `with_keras_batch_normalization` turns an old model into one
    with Keras' layers (same config and weights).

    Same arguments, weights, config and results as `keras.layers.BatchNormalization`; the
    kernel and when it applies are those of `fused_batch_normalization_call`. TensorFlow
    backend only: on another backend the constructor raises `RuntimeError` naming it.

    Input/output: 4-D float tensor `(batch, height, width, channels)`, shape and dtype
    unchanged (float32, bfloat16 or float16 by the layer's dtype policy).
    """

    def __init__(self, *args, **kwargs):
        check_tensorflow_backend("`FusedBatchNormalization` (TensorFlow's fused kernel)")
        super().__init__(*args, **kwargs)

    def call(self, inputs, training=None, mask=None):
        return fused_batch_normalization_call(self, inputs, training=training, mask=mask)
