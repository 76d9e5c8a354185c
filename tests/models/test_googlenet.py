"""GoogLeNet against the paper: Table 1 shapes, golden parameter counts, names, errors."""

import numpy as np
import pytest

from keras_ninception import build_googlenet, min_input_size, to_inference_model
from keras_ninception.models.googlenet import INCEPTION_MODULES, feature_side
from tests.forward import forward

pytestmark = pytest.mark.xdist_group("paper-model")  # one pytest-xdist worker: the shared fixtures

# Table 1 of Szegedy et al. 2015: output size of each stage at 224×224×3.
TABLE_1_SHAPES = {
    "conv1_7x7_s2": (112, 112, 64),
    "pool1_3x3_s2": (56, 56, 64),
    "conv2_3x3_reduce": (56, 56, 64),
    "conv2_3x3": (56, 56, 192),
    "pool2_3x3_s2": (28, 28, 192),
    "inception_3a_output": (28, 28, 256),
    "inception_3b_output": (28, 28, 480),
    "pool3_3x3_s2": (14, 14, 480),
    "inception_4a_output": (14, 14, 512),
    "inception_4b_output": (14, 14, 512),
    "inception_4c_output": (14, 14, 512),
    "inception_4d_output": (14, 14, 528),
    "inception_4e_output": (14, 14, 832),
    "pool4_3x3_s2": (7, 7, 832),
    "inception_5a_output": (7, 7, 832),
    "inception_5b_output": (7, 7, 1024),
    "global_average_pooling": (1024,),
    "main": (1000,),
    "aux1_ave_pool": (4, 4, 512),
    "aux2_ave_pool": (4, 4, 528),
    "aux1_conv": (4, 4, 128),
    "aux1_fc": (1024,),
    "aux2": (1000,),
}


@pytest.fixture(scope="module")
def paper_model():
    return build_googlenet()


def test_stage_shapes_match_table_1(paper_model):
    for layer_name, shape in TABLE_1_SHAPES.items():
        assert paper_model.get_layer(layer_name).output.shape[1:] == shape, layer_name


def test_golden_parameter_counts(paper_model):
    assert paper_model.count_params() == 13_378_280
    assert build_googlenet(aux_classifiers=False).count_params() == 6_998_552


def test_table_rows_give_the_papers_channel_totals():
    totals = {name: f1 + f3 + f5 + pool for name, f1, _, f3, _, f5, pool in INCEPTION_MODULES}
    assert totals == {
        "inception_3a": 256, "inception_3b": 480, "inception_4a": 512, "inception_4b": 512,
        "inception_4c": 512, "inception_4d": 528, "inception_4e": 832, "inception_5a": 832,
        "inception_5b": 1024,
    }


def test_outputs_are_main_aux1_aux2_in_order(paper_model):
    assert paper_model.output_names == ["main", "aux1", "aux2"]
    assert build_googlenet(aux_classifiers=False).output_names == ["main"]


def test_aux_heads_hang_off_4a_and_4d(paper_model):
    assert paper_model.get_layer("aux1_ave_pool").input.name == paper_model.get_layer("inception_4a_output").output.name
    assert paper_model.get_layer("aux2_ave_pool").input.name == paper_model.get_layer("inception_4d_output").output.name
    assert paper_model.get_layer("aux1_drop_fc").rate == 0.7
    assert paper_model.get_layer("dropout").rate == 0.4


def test_pool_branch_is_stride_1_same_max_pool_then_projection(paper_model):
    pool = paper_model.get_layer("inception_3a_pool")
    assert (pool.pool_size, pool.strides, pool.padding) == ((3, 3), (1, 1), "same")
    assert paper_model.get_layer("inception_3a_pool_proj").input.name == pool.output.name
    assert paper_model.get_layer("inception_3a_5x5").kernel_size == (5, 5)


def test_layer_names_are_stable_across_rebuilds():
    first = [layer.name for layer in build_googlenet(aux_classifiers=True).layers]
    second = [layer.name for layer in build_googlenet(aux_classifiers=True).layers]
    assert first == second
    assert "inception_4a_3x3_reduce" in first and "input" in first
    assert not any("/" in name for name in first)


def test_each_call_builds_fresh_layers():
    a, b = build_googlenet(variant="cifar", num_classes=10), build_googlenet(variant="cifar", num_classes=10)
    assert a.get_layer("main_classifier") is not b.get_layer("main_classifier")


def test_cifar_variant_golden_parameter_counts():
    assert build_googlenet(variant="cifar", num_classes=10).count_params() == 7_203_230
    assert build_googlenet(variant="cifar", num_classes=10, aux_classifiers=False).count_params() == 5_997_962


def test_cifar_variant_shapes_at_32px():
    model = build_googlenet(variant="cifar", input_shape=(32, 32, 3), num_classes=10)
    assert model.get_layer("pool2_3x3_s2").output.shape[1:] == (16, 16, 192)
    assert model.get_layer("inception_4a_output").output.shape[1:] == (8, 8, 512)
    assert model.get_layer("aux1_ave_pool").output.shape[1:] == (2, 2, 512)
    assert model.get_layer("inception_5b_output").output.shape[1:] == (4, 4, 1024)
    assert [o.shape[1:] for o in model.outputs] == [(10,)] * 3


def test_min_input_size_follows_the_ceil_mode_arithmetic():
    assert min_input_size("paper") == 79
    assert min_input_size("cifar") == 20
    assert feature_side(224) == 14 and feature_side(79) == 5 and feature_side(78) == 4
    build_googlenet(input_shape=(79, 79, 3), num_classes=10)  # smallest that fits
    model = build_googlenet(input_shape=(32, 32, 3), num_classes=10, aux_classifiers=False)
    assert model.output_shape == (None, 10)


def test_small_input_raises_our_error_not_a_keras_one():
    with pytest.raises(ValueError, match=r"at least 79×79 px.*variant='cifar'.*Received: input_shape=\(64, 64, 3\)"):
        build_googlenet(input_shape=(64, 64, 3))
    with pytest.raises(ValueError, match="at least 20×20"):
        build_googlenet(variant="cifar", input_shape=(16, 16, 3))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"input_shape": (224, 224)}, "input_shape"),
        ({"input_shape": (1, 224, 224, 3)}, "input_shape"),
        ({"input_shape": (224, 224, 0)}, "input_shape"),
        ({"num_classes": 1}, "num_classes"),
        ({"num_classes": 2.5}, "num_classes"),
        ({"variant": "v3"}, "variant"),
        ({"pooling": "mean"}, "pooling"),
        ({"dropout_rate": 1.0}, "dropout_rate"),
        ({"aux_dropout_rate": -0.1}, "aux_dropout_rate"),
        ({"width_multiplier": 0}, "width_multiplier"),
        ({"weights": "no/such/file.weights.h5"}, "weights"),
        ({"classifier_activation": "nope"}, "classifier_activation"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=rf"`{message}`.*Received: {message}="):
        build_googlenet(**kwargs)


def test_inference_model_equals_main_head_and_has_no_aux_layers():
    model = build_googlenet(variant="cifar", input_shape=(24, 24, 3), num_classes=5, width_multiplier=0.25)
    inference = to_inference_model(model)
    assert inference.output_names == ["main"]
    assert not any(layer.name.startswith("aux") for layer in inference.layers)
    assert inference.get_layer("main_classifier") is model.get_layer("main_classifier")  # shared weights
    images = np.random.default_rng(0).uniform(-1, 1, (4, 24, 24, 3)).astype("float32")
    main, _, _ = forward(model, images)
    np.testing.assert_allclose(forward(inference, images), main, rtol=1e-6, atol=1e-7)


def test_to_inference_model_rejects_models_without_main():
    import keras

    inputs = keras.Input((3,))
    with pytest.raises(ValueError, match="output named 'main'"):
        to_inference_model(keras.Model(inputs, keras.layers.Dense(2, name="logits")(inputs)))


def test_include_top_false_gives_features():
    model = build_googlenet(include_top=False, pooling="avg")
    assert model.output_shape == (None, 1024)
    assert not any(layer.name.startswith("aux") for layer in model.layers)


def test_keras_applications_arguments(tmp_path):
    import keras

    inputs = keras.Input((32, 32, 3))
    model = build_googlenet(variant="cifar", input_tensor=inputs, num_classes=4, width_multiplier=0.125,
                            classifier_activation=None, name="tiny")
    assert model.inputs[0] is inputs and model.name == "tiny"
    assert model.get_layer("main").activation is keras.activations.linear  # logits
    assert build_googlenet(variant="cifar", include_top=False, pooling="max").output_shape == (None, 1024)
    assert build_googlenet(variant="cifar", include_top=False).output_shape == (None, 4, 4, 1024)

    path = str(tmp_path / "tiny.weights.h5")
    model.save_weights(path)
    again = build_googlenet(variant="cifar", input_shape=(32, 32, 3), num_classes=4, width_multiplier=0.125,
                            classifier_activation=None, weights=path)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype("float32")
    for a, b in zip(forward(model, x), forward(again, x)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(ValueError, match="Could not load `weights`.*same architecture"):
        build_googlenet(variant="cifar", num_classes=5, width_multiplier=0.125, weights=path)


@pytest.mark.parametrize(
    "kwargs, arg",
    [
        ({"include_top": "yes"}, "include_top"),
        ({"input_tensor": np.zeros((1, 32, 32, 3))}, "input_tensor"),
        ({"naive_inception": 1}, "naive_inception"),
        ({"local_response_normalization": "off"}, "local_response_normalization"),
        ({"aux_classifiers": 1}, "aux_classifiers"),
        ({"width_multiplier": float("inf")}, "width_multiplier"),
    ],
)
def test_more_bad_arguments(kwargs, arg):
    with pytest.raises(ValueError, match=rf"`{arg}`.*Received: {arg}="):
        build_googlenet(**kwargs)


def test_naive_googlenet_builds_with_wider_modules():
    model = build_googlenet(variant="cifar", num_classes=10, naive_inception=True, aux_classifiers=False)
    assert "inception_3a_3x3_reduce" not in [layer.name for layer in model.layers]
    assert model.get_layer("inception_3a_output").output.shape[-1] == 64 + 128 + 32 + 192


def test_numpy_integers_are_integers():
    model = build_googlenet(variant="cifar", input_shape=(np.int64(32), 32, 3), num_classes=np.int64(10))
    assert model.output_shape[0] == (None, 10)


def test_tiny_inputs_without_aux_build_and_run():
    for side in (1, 5, 30):
        model = build_googlenet(input_shape=(side, side, 3), num_classes=3, aux_classifiers=False)
        assert model.predict(np.zeros((1, side, side, 3), "float32"), verbose=0).shape == (1, 3)
