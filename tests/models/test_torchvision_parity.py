"""Parity with torchvision's googlenet: convert its weights, feed both the same images.

Needs torch and torchvision (the optional `torch` extra); skipped without them. The
optional job: `python3.11 -m pip install ".[test,torch]" && python3.11 -m pytest
tests/models/test_torchvision_parity.py -s -n 0` (prints the maximum differences). torch runs in
a subprocess (`torchvision_reference.py`): torchvision crashes when imported after
TensorFlow in one process.
"""

import importlib.util
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from keras_ninception import build_googlenet, load_torchvision_weights

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchvision") is None,
    reason="needs torch and torchvision (pip install '.[torch]'); the optional parity job",
)

NUM_CLASSES = 10
SIDES = (224, 99)  # at 99 px the sides are odd (99 → 50 → 25 → 13 → 7 → 4): ceil mode matters

# torchvision module → this package's layer, to compare every stage.
STAGES = {
    "conv1": "conv1_7x7_s2_relu",
    "maxpool1": "pool1_3x3_s2",
    "conv2": "conv2_3x3_reduce_relu",
    "conv3": "conv2_3x3_relu",
    "maxpool2": "pool2_3x3_s2",
    **{f"inception{m}": f"inception_{m}_output" for m in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")},
    "maxpool3": "pool3_3x3_s2",
    "maxpool4": "pool4_2x2_s2",
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("torchvision") / "reference.npz"
    script = os.path.join(os.path.dirname(__file__), "torchvision_reference.py")
    result = subprocess.run(
        [sys.executable, script, str(out), str(NUM_CLASSES), *map(str, SIDES)],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    data = np.load(out)
    state = {k[len("state/"):]: data[k] for k in data.files if k.startswith("state/")}
    return state, data


def keras_twin(state, side):
    model = build_googlenet(variant="bn", input_shape=(side, side, 3), num_classes=NUM_CLASSES,
                            classifier_activation=None)
    return load_torchvision_weights(model, state)


def nhwc(x):
    return x.transpose(0, 2, 3, 1)


@pytest.mark.parametrize("side", SIDES)
def test_eval_mode_logits_agree(reference, side):
    state, data = reference
    main, _, _ = keras_twin(state, side)(nhwc(data[f"images/{side}"]), training=False)
    difference = np.abs(main.numpy() - data[f"eval/{side}"]).max()
    print(f"\nmax |main logit difference| at {side} px: {difference:.2e}")
    assert difference < 1e-4


@pytest.mark.parametrize("side", SIDES)
def test_every_stage_has_the_same_shape_and_values(reference, side):
    state, data = reference
    model = keras_twin(state, side)
    features = keras.Model(model.input, {k: model.get_layer(v).output for k, v in STAGES.items()})
    ours = features(nhwc(data[f"images/{side}"]), training=False)
    for name in STAGES:
        theirs = nhwc(data[f"stage/{side}/{name}"])
        assert tuple(ours[name].shape) == theirs.shape, name
        relative = np.abs(ours[name].numpy() - theirs).max() / max(1.0, np.abs(theirs).max())
        assert relative < 1e-4, name


def test_train_mode_aux_outputs_agree_with_bn_in_inference_mode(reference):
    state, data = reference
    outputs = keras_twin(state, 224)(nhwc(data["images/224"]), training=False)
    for head, ours in zip(("main", "aux1", "aux2"), outputs):
        difference = np.abs(ours.numpy() - data[f"train/{head}"]).max()
        print(f"\nmax |{head} logit difference| (train mode, BN inference, no dropout): {difference:.2e}")
        assert difference < 1e-4


def test_bad_state_dicts_get_clear_errors(reference):
    state, _ = reference
    broken = dict(state)
    del broken["inception4a.branch3.1.conv.weight"]
    with pytest.raises(ValueError, match="inception4a.branch3.1.conv.weight"):
        load_torchvision_weights(build_googlenet(variant="bn", num_classes=NUM_CLASSES), broken)
    with pytest.raises(ValueError, match="Shape mismatch for layer 'main_classifier'"):
        load_torchvision_weights(build_googlenet(variant="bn", num_classes=5), state)
    with pytest.raises(ValueError, match="variant='bn'"):
        load_torchvision_weights(build_googlenet(num_classes=NUM_CLASSES), state)
