"""The public blocks: shapes, names, the naive module, ceil-mode pooling, LRN values."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ninception import (
    LocalResponseNormalization,
    apply_aux_head,
    apply_inception,
    apply_mlpconv,
    apply_pool,
)


def test_mlpconv_is_kxk_then_1x1_convs_with_relu():
    inputs = keras.Input((32, 32, 3))
    outputs = apply_mlpconv(inputs, (192, 160, 96), 5, name="mlpconv1")
    model = keras.Model(inputs, outputs)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(c.name, c.kernel_size, c.filters) for c in convs] == [
        ("mlpconv1_conv", (5, 5), 192), ("mlpconv1_cccp1", (1, 1), 160), ("mlpconv1_cccp2", (1, 1), 96)
    ]
    assert all(c.activation.__name__ == "relu" for c in convs)
    with pytest.raises(ValueError, match="Received: filters=\\(192,\\)"):
        apply_mlpconv(inputs, (192,), 5, name="bad")


def test_inception_module_branches_and_channel_total():
    inputs = keras.Input((28, 28, 192))
    outputs = apply_inception(inputs, 64, 96, 128, 16, 32, 32, name="inception_3a")
    assert outputs.shape[1:] == (28, 28, 256)
    naive = apply_inception(inputs, 64, 96, 128, 16, 32, 32, naive=True, name="naive_3a")
    assert naive.shape[1:] == (28, 28, 64 + 128 + 32 + 192)  # pool branch passes 192 through


def test_aux_head_shapes_and_layers():
    inputs = keras.Input((14, 14, 512))
    output = apply_aux_head(inputs, 1000, name="aux1")
    model = keras.Model(inputs, output)
    assert model.get_layer("aux1_ave_pool").output.shape[1:] == (4, 4, 512)
    assert model.get_layer("aux1_conv").output.shape[1:] == (4, 4, 128)
    assert model.get_layer("aux1_fc").units == 1024
    assert model.get_layer("aux1_drop_fc").rate == 0.7
    assert model.output_names == ["aux1"]
    assert model.count_params() == 65_664 + 2_098_176 + 1_025_000


@pytest.mark.parametrize("side, expected", [(112, 56), (27, 13), (14, 7), (13, 6), (7, 3), (8, 4)])
def test_pool_uses_ceil_mode_like_caffe_and_torchvision(side, expected):
    # ceil((n - 3) / 2) + 1, torch.nn.MaxPool2d(3, 2, ceil_mode=True)
    inputs = keras.Input((side, side, 4))
    assert apply_pool(inputs, "max", 3, 2, name="pool").shape[1] == expected


@pytest.mark.parametrize("side", [7, 8])
def test_pool_values_match_a_ceil_mode_reference(side):
    x = np.random.default_rng(0).uniform(0, 1, (1, side, side, 1)).astype("float32")  # post-ReLU
    inputs = keras.Input((side, side, 1))
    y = keras.ops.convert_to_numpy(keras.Model(inputs, apply_pool(inputs, "max", 3, 2, name="pool"))(x))[0, :, :, 0]
    count = -(-(side - 3) // 2) + 1  # ceil((n - 3) / 2) + 1: 3 at 7 px, 4 at 8 px
    starts = range(0, 2 * count, 2)  # the last window of 8 px runs off the edge
    expected = np.array([[x[0, r:r + 3, c:c + 3, 0].max() for c in starts] for r in starts])
    np.testing.assert_allclose(y, expected)


def test_lrn_matches_caffe_formula_and_tf_op():
    x = np.random.default_rng(0).normal(0, 3, (2, 4, 4, 7)).astype("float32")
    layer = LocalResponseNormalization(size=5, alpha=1e-4, beta=0.75, k=1.0)
    ours = keras.ops.convert_to_numpy(layer(x))  # a backend tensor: TF's or JAX's
    tf_op = tf.nn.local_response_normalization(x, depth_radius=2, bias=1.0, alpha=1e-4 / 5, beta=0.75).numpy()
    np.testing.assert_allclose(ours, tf_op, rtol=1e-5)
    # By hand for one position: channels 0..2 are in channel 0's window (zero padding).
    c0 = x[0, 0, 0, 0] / (1 + 1e-4 / 5 * np.sum(x[0, 0, 0, 0:3] ** 2)) ** 0.75
    assert ours[0, 0, 0, 0] == pytest.approx(c0, rel=1e-5)
    with pytest.raises(ValueError, match="Received: size=4"):
        LocalResponseNormalization(size=4)


def test_lrn_round_trips_its_config():
    layer = LocalResponseNormalization(size=3, alpha=2e-4, beta=0.5, k=2.0, name="norm")
    clone = LocalResponseNormalization.from_config(layer.get_config())
    assert (clone.size, clone.alpha, clone.beta, clone.k, clone.name) == (3, 2e-4, 0.5, 2.0, "norm")
