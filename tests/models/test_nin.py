"""NIN against the paper's CIFAR-10 model and the Caffe model zoo's ImageNet model."""

import pytest

from keras_ninception import build_nin


def test_cifar10_model_has_the_papers_966986_parameters():
    assert build_nin().count_params() == 966_986


def test_cifar10_stage_shapes():
    model = build_nin()
    expected = {
        "mlpconv1_conv": (32, 32, 192), "mlpconv1_cccp1": (32, 32, 160), "mlpconv1_cccp2": (32, 32, 96),
        "pool1": (16, 16, 96), "mlpconv2_cccp2": (16, 16, 192), "pool2": (8, 8, 192),
        "mlpconv3_conv": (8, 8, 192), "mlpconv3_cccp2": (8, 8, 10), "global_average_pooling": (10,),
    }
    for name, shape in expected.items():
        assert model.get_layer(name).output.shape[1:] == shape, name
    assert model.get_layer("mlpconv1_conv").kernel_size == (5, 5)
    assert model.get_layer("mlpconv3_conv").kernel_size == (3, 3)
    assert type(model.get_layer("pool1")).__name__ == "MaxPooling2D"
    assert type(model.get_layer("pool2")).__name__ == "AveragePooling2D"
    assert [model.get_layer(f"dropout{i}").rate for i in (1, 2)] == [0.5, 0.5]


def test_classifier_is_global_average_pooling_with_no_dense_layer():
    model = build_nin()
    assert not any(type(layer).__name__ == "Dense" for layer in model.layers)
    assert model.output_names == ["main"]
    assert model.get_layer("global_average_pooling").count_params() == 0
    assert model.get_layer("mlpconv3_cccp2").activation.__name__ == "relu"


def test_imagenet_model_from_the_caffe_model_zoo():
    model = build_nin(config="imagenet", num_classes=1000)
    assert model.count_params() == 7_595_176
    assert model.get_layer("mlpconv1_conv").kernel_size == (11, 11)
    assert model.get_layer("mlpconv1_conv").strides == (4, 4)
    assert [model.get_layer(f"pool{i}").output.shape[1] for i in (1, 2, 3)] == [27, 13, 6]


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        ({"num_classes": 1}, "num_classes"),
        ({"input_shape": (32, 32)}, "input_shape"),
        ({"input_shape": (32, 32, 3, 1)}, "input_shape"),
        ({"config": "mnist"}, "config"),
        ({"dropout_rate": 2}, "dropout_rate"),
    ],
)
def test_bad_arguments(kwargs, arg):
    with pytest.raises(ValueError, match=rf"`{arg}`.*Received: {arg}="):
        build_nin(**kwargs)


def test_include_top_false_stops_before_the_class_maps():
    model = build_nin(include_top=False, pooling="avg")
    assert model.output_shape == (None, 192)
    assert "mlpconv3_cccp2" not in [layer.name for layer in model.layers]
    assert build_nin(include_top=False).output_shape == (None, 8, 8, 192)


def test_imagenet_config_needs_11_px():
    with pytest.raises(ValueError, match="at least 11×11 px"):
        build_nin(config="imagenet", input_shape=(10, 10, 3))


def test_widths_and_kernel_sizes_keep_the_tables_ratios():
    model = build_nin(widths=(96, 192, 96), kernel_sizes=(3, 5, 5))
    convs = {layer.name: layer for layer in model.layers if type(layer).__name__ == "Conv2D"}
    assert [convs[f"mlpconv1_{n}"].filters for n in ("conv", "cccp1", "cccp2")] == [96, 80, 48]
    assert [convs[f"mlpconv3_{n}"].filters for n in ("conv", "cccp1", "cccp2")] == [96, 96, 10]
    assert [convs[f"mlpconv{i}_conv"].kernel_size for i in (1, 2, 3)] == [(3, 3), (5, 5), (5, 5)]
    for kwargs, arg in (({"widths": (1, 2)}, "widths"), ({"kernel_sizes": "553"}, "kernel_sizes")):
        with pytest.raises(ValueError, match=rf"`{arg}`.*Received: {arg}="):
            build_nin(**kwargs)
