"""Local response normalization across channels, as a registered Keras layer.

Keras 3 has no LRN layer, and a `Lambda` wrapping `tf.nn.local_response_normalization` does
not reload in safe mode, so this is a small serializable layer written with `keras.ops`.
"""

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
