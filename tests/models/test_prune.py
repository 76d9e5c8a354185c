"""prune_to_head and head_models: the network up to one head, and nothing past it."""

import keras
import numpy as np
import pytest

from keras_ninception import build_googlenet, build_nin, compile_model, to_inference_model
from keras_ninception.models import head_models, prune_to_head
from keras_ninception.models.googlenet import INCEPTION_MODULES

MODULES = [row[0] for row in INCEPTION_MODULES]


def tiny_googlenet(**kwargs):
    return build_googlenet(
        input_shape=(20, 20, 1), num_classes=5, variant="cifar", width_multiplier=0.125, **kwargs
    )


@pytest.fixture
def fitted():
    """A tiny GoogLeNet with random BatchNorm statistics, so inference-mode normalization is
    not the identity, and a batch of images."""
    model = tiny_googlenet()
    rng = np.random.default_rng(0)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            size = layer.moving_mean.shape
            layer.moving_mean.assign(rng.normal(0, 0.1, size).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, size).astype("float32"))
    x = rng.uniform(-1, 1, (8, 20, 20, 1)).astype("float32")
    return model, x


def infer(model, x):
    """Inference-mode outputs (dropout off, BatchNorm on its moving statistics), eagerly."""
    return keras.tree.map_structure(keras.ops.convert_to_numpy, model(x, training=False))


def layers_after(module):
    return MODULES[MODULES.index(module) + 1:]


@pytest.mark.parametrize("head", ["aux1", "aux2", "main"])
def test_pruned_predictions_equal_the_heads_output(fitted, head):
    model, x = fitted
    full = dict(zip(model.output_names, infer(model, x)))
    assert not np.allclose(full["aux1"], full["main"])  # the heads differ, so the check can fail
    pruned = prune_to_head(model, head)
    assert pruned.output_names == [head]
    np.testing.assert_allclose(infer(pruned, x), full[head], atol=1e-5)
    renamed = prune_to_head(model, head, output_name="main")
    assert renamed.output_names == ["main"]
    np.testing.assert_allclose(infer(renamed, x), full[head], atol=1e-5)


@pytest.mark.parametrize("head, branch, other", [("aux1", "inception_4a", "aux2"), ("aux2", "inception_4d", "aux1")])
def test_nothing_past_the_branch_point_remains(head, branch, other):
    names = [layer.name for layer in prune_to_head(tiny_googlenet(), head).layers]
    assert f"{branch}_output" in names and f"{head}_classifier" in names and "conv1_3x3" in names
    for module in layers_after(branch):
        assert not [n for n in names if n.startswith(module)], module
    for prefix in (other, "main", "pool4", "global_average_pooling", "dropout"):
        assert not [n for n in names if n.startswith(prefix)], prefix
    # Every module up to the branch point is there.
    for module in MODULES[: MODULES.index(branch) + 1]:
        assert f"{module}_output" in names


def test_renamed_output_is_the_only_main_layer_and_works_as_a_single_head_model():
    pruned = prune_to_head(tiny_googlenet(), "aux1", output_name="main")
    names = [layer.name for layer in pruned.layers]
    assert [n for n in names if n.startswith("main")] == ["main"]
    assert pruned.get_layer("main").dtype_policy.name == "float32"
    assert to_inference_model(pruned).output_names == ["main"]
    compile_model(pruned)
    x = np.zeros((2, 20, 20, 1), "float32")
    logs = pruned.evaluate(x, np.array([0, 1]), return_dict=True, verbose=0)
    assert set(logs) == {"loss", "main_accuracy"}


def test_main_is_the_inference_model():
    model = tiny_googlenet()
    pruned = prune_to_head(model, "main")
    assert pruned.count_params() == to_inference_model(model).count_params()
    assert not [layer.name for layer in pruned.layers if layer.name.startswith("aux")]


def test_parameter_counts_of_the_paper_networks_up_to_each_head():
    # By hand from Table 1 (biases included): stem 9,472 + 4,160 + 110,784; module
    # cin·c1 + c1 + cin·r3 + r3 + 9·r3·c3 + c3 + cin·r5 + r5 + 25·r5·c5 + c5 + cin·pp + pp;
    # aux head (c·128 + 128) + (4·4·128·1024 + 1024) + (1024·1000 + 1000).
    # Up to 4a: 1,053,024 + aux1 3,188,840; up to 4d: 2,617,664 + aux2 3,190,888; main: the
    # README's 6,998,552.
    model = build_googlenet()
    counts = {head: network.count_params() for head, network in head_models(model).items()}
    assert counts == {"main": 6_998_552, "aux1": 4_241_864, "aux2": 5_808_552}
    assert list(counts) == ["main", "aux1", "aux2"]


def test_head_models_of_single_head_models():
    nin = build_nin(input_shape=(8, 8, 1), num_classes=3, widths=(8, 8, 8))
    assert list(head_models(nin)) == ["main"]
    assert head_models(nin)["main"].count_params() == nin.count_params()
    no_aux = tiny_googlenet(aux_classifiers=False)
    assert list(head_models(no_aux)) == ["main"]
    pruned = prune_to_head(tiny_googlenet(), "aux2", output_name="main")
    assert head_models(pruned)["main"].count_params() == pruned.count_params()


@pytest.mark.parametrize(
    "make, head, message",
    [
        (tiny_googlenet, "aux3", r"`head` must be one of \['aux1', 'aux2', 'main'\]. Received: head='aux3'"),
        (lambda: build_nin(input_shape=(8, 8, 1), num_classes=3), "aux1", "must be a GoogLeNet"),
        (lambda: build_nin(input_shape=(8, 8, 1), num_classes=3), "main", "must be a GoogLeNet"),
        (lambda: tiny_googlenet(aux_classifiers=False), "aux1", r"no 'aux1' head: its outputs are \['main'\]"),
        (lambda: prune_to_head(tiny_googlenet(), "aux1", output_name="main"), "aux2", "no 'aux2' head"),
        (lambda: "model.keras", "aux1", "must be a keras.Model"),
    ],
)
def test_bad_input_gets_a_clear_error(make, head, message):
    with pytest.raises(ValueError, match=message):
        prune_to_head(make(), head)


def test_bad_output_name_is_refused():
    with pytest.raises(ValueError, match="Received: output_name=''"):
        prune_to_head(tiny_googlenet(), "aux1", output_name="")


def test_a_head_that_does_not_read_from_its_branch_point_is_caught():
    # A hand-made "GoogLeNet" whose aux1 reads from 4b: pruning must not silently keep 4b.
    model = tiny_googlenet()
    x = model.get_layer("inception_4b_output").output
    aux1 = keras.layers.Dense(5, name="aux1")(keras.layers.GlobalAveragePooling2D(name="aux1_gap")(x))
    odd = keras.Model(model.inputs, [model.get_layer("main").output, aux1])
    with pytest.raises(RuntimeError, match="past inception_4a"):
        prune_to_head(odd, "aux1")
