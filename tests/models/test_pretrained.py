"""ImageNet weights without the real file: a synthetic TF-slim checkpoint in slim's exact naming.

The checkpoint (`slim_reference.synthetic_tensors`: all 230 tensors, random values, BN
statistics not 0 / 1) is loaded by `build_googlenet(weights=...)`, and the logits are compared
with an independent `tf.nn` forward pass in slim's semantics (`slim_reference.slim_logits`).
Print the parity with `-s`.
"""

import importlib.util
import os
import socket
import time
import urllib.request

import numpy as np
import pytest

from keras_ninception import build_googlenet
from keras_ninception.models import pretrained
from keras_ninception.models.pretrained import load_slim_checkpoint, slim_tensor_names
from tests.forward import forward
from tests.models import slim_reference

pytestmark = pytest.mark.xdist_group("pretrained-checkpoint")  # one pytest-xdist worker: the shared fixtures

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def tensors():
    return slim_reference.synthetic_tensors()


@pytest.fixture(scope="module")
def checkpoint(tensors, tmp_path_factory):
    return slim_reference.write_checkpoint(tensors, tmp_path_factory.mktemp("slim") / "inception_v1.ckpt")


@pytest.fixture(scope="module")
def archive(checkpoint, tmp_path_factory):
    path = tmp_path_factory.mktemp("archive") / pretrained.IMAGENET_ARCHIVE
    return slim_reference.write_archive(checkpoint, path)


def images(side, n=2, seed=1):
    return np.random.default_rng(seed).uniform(-1, 1, (n, side, side, 3)).astype(np.float32)


def test_tensor_names_are_slims_230():
    names = slim_tensor_names()
    assert len(names) == len(set(names)) == 230
    assert set(names) == set(slim_reference.synthetic_tensors())  # written independently
    assert sum(n.endswith("/weights") for n in names) == 57 + 1
    assert "InceptionV1/Mixed_5b/Branch_2/Conv2d_0a_3x3/weights" in names  # slim's quirk
    assert "InceptionV1/Mixed_5c/Branch_2/Conv2d_0b_3x3/weights" in names
    assert not any("gamma" in n or n.endswith("Conv2d_1a_7x7/biases") for n in names)


def test_synthetic_statistics_are_not_zero_one(tensors):
    means = np.concatenate([v for k, v in tensors.items() if k.endswith("moving_mean")])
    variances = np.concatenate([v for k, v in tensors.items() if k.endswith("moving_variance")])
    assert abs(means.mean() - 0.3) < 0.01 and variances.min() >= 0.5 and variances.max() > 1.9


@pytest.mark.parametrize("side", (224, 99))  # 99 px: odd sides, where SAME and ceil mode differ
def test_slim_variant_logits_match_slims_semantics(tensors, checkpoint, side):
    model = build_googlenet(weights=checkpoint, input_shape=(side, side, 3), classifier_activation=None)
    assert model.name == "googlenet" and len(model.outputs) == 1  # slim variant, no aux heads
    assert model.get_layer("conv1_7x7_s2").padding == "same"
    x = images(side)
    ours = forward(model, x)
    reference = slim_reference.slim_logits(tensors, x)
    difference = np.abs(ours - reference).max()
    print(f"\nslim variant, {side} px: max |logit difference| {difference:.2e} "
          f"(logits span {reference.min():.1f} .. {reference.max():.1f})")
    assert ours.shape == (2, 1000) and np.abs(reference).max() > 1.0
    assert difference < TOLERANCE


def test_1001_classes_keep_background(tensors, checkpoint):
    model = build_googlenet(weights=checkpoint, num_classes=1001, classifier_activation=None)
    x = images(224, n=1)
    ours = forward(model, x)
    reference = slim_reference.slim_logits(tensors, x, num_classes=1001)
    assert ours.shape == (1, 1001) and np.abs(ours - reference).max() < TOLERANCE
    # 1000 outputs are the 1001 without column 0, "background".
    kernel = build_googlenet(weights=checkpoint).get_layer("main_classifier").kernel.numpy()
    np.testing.assert_array_equal(kernel, tensors["InceptionV1/Logits/Conv2d_0c_1x1/weights"][0, 0, :, 1:])


def test_softmax_head_gives_the_references_probabilities(tensors, checkpoint):
    x = images(224, n=1)
    probabilities = forward(build_googlenet(weights=checkpoint), x)
    logits = slim_reference.slim_logits(tensors, x)
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)


def test_include_top_false_gives_slims_features(tensors, checkpoint):
    model = build_googlenet(weights=checkpoint, include_top=False, pooling="avg")
    x = images(224)
    reference = slim_reference.slim_features(tensors, x).numpy().mean(axis=(1, 2))
    assert model.output.shape[1:] == (1024,)
    assert np.abs(forward(model, x) - reference).max() < TOLERANCE


def test_bn_variant_takes_the_same_tensors_with_gamma_one(tensors, checkpoint):
    model = build_googlenet(variant="bn", weights=checkpoint)
    bn = model.get_layer("inception_4a_3x3_bn")
    np.testing.assert_array_equal(bn.gamma.numpy(), np.ones(208, np.float32))
    np.testing.assert_array_equal(bn.moving_variance.numpy(), tensors["InceptionV1/Mixed_4b/Branch_1/Conv2d_0b_3x3/BatchNorm/moving_variance"])
    np.testing.assert_array_equal(
        model.get_layer("inception_5a_5x5").kernel.numpy(), tensors["InceptionV1/Mixed_5b/Branch_2/Conv2d_0a_3x3/weights"]
    )
    assert model.get_layer("conv1_7x7_s2_pad").padding == ((3, 3), (3, 3))  # torchvision's
    assert len(model.outputs) == 1
    # The reference sees the padding: torchvision's 3 / 3 is not slim's 2 / 3.
    x = images(224, n=1)
    bn_logits = forward(build_googlenet(variant="bn", weights=checkpoint, classifier_activation=None), x)
    assert np.abs(bn_logits - slim_reference.slim_logits(tensors, x)).max() > 10 * TOLERANCE


def test_aux_heads_on_request_start_fresh(checkpoint):
    model = build_googlenet(weights=checkpoint, aux_classifiers=True)
    assert model.output_names == ["main", "aux1", "aux2"]
    fresh = build_googlenet(variant="slim", aux_classifiers=True)
    assert not np.array_equal(model.get_layer("conv1_7x7_s2").kernel.numpy(), fresh.get_layer("conv1_7x7_s2").kernel.numpy())


def test_archive_and_v2_checkpoint_paths(tensors, archive, tmp_path):
    x = images(224, n=1)
    reference = slim_reference.slim_logits(tensors, x)
    from_archive = forward(build_googlenet(weights=archive, classifier_activation=None), x)
    assert np.abs(from_archive - reference).max() < TOLERANCE
    prefix = slim_reference.write_checkpoint(tensors, tmp_path / "v2.ckpt", version="V2")
    assert os.path.isfile(prefix + ".index") and not os.path.exists(prefix)
    from_v2 = forward(build_googlenet(weights=prefix, classifier_activation=None), x)
    assert np.abs(from_v2 - reference).max() < TOLERANCE


@pytest.fixture
def no_network(monkeypatch):
    """Every way out of the process fails the test: no connection is even attempted."""
    touched = []

    def refuse(*args, **kwargs):
        touched.append(args)
        raise AssertionError("the network was touched")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(urllib.request, "urlretrieve", refuse)
    return touched


def test_imagenet_from_the_keras_cache_touches_no_network(tensors, archive, tmp_path, monkeypatch, no_network):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "models").mkdir()
    cached = tmp_path / "models" / "inception_v1_2016_08_28.tar.gz"
    cached.write_bytes(open(archive, "rb").read())
    x = images(224, n=1)
    model = build_googlenet(weights="imagenet", classifier_activation=None)
    assert np.abs(forward(model, x) - slim_reference.slim_logits(tensors, x)).max() < TOLERANCE
    assert no_network == []
    # keras.utils.get_file extracted it next to the archive.
    assert (tmp_path / "models" / "inception_v1_2016_08_28_extracted" / "inception_v1.ckpt").is_file()


def test_imagenet_offline_fails_fast_and_says_where_to_put_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))

    def unreachable(*args, **kwargs):
        raise OSError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(urllib.request, "urlopen", unreachable)
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as error:
        build_googlenet(weights="imagenet")
    assert time.perf_counter() - start < 2
    message = str(error.value)
    assert str(tmp_path / "home" / "models" / "inception_v1_2016_08_28.tar.gz") in message
    assert "$KERAS_HOME/models/" in message and pretrained.IMAGENET_ORIGIN in message
    assert "name resolution" in message  # the cause


def test_imagenet_probe_that_hangs_gives_up_after_the_timeout(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(pretrained, "PROBE_TIMEOUT_S", 0.5)
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: time.sleep(30))
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=r"cannot be reached \(no answer within 0.5 s\)"):
        pretrained.imagenet_checkpoint_path()
    # Gave up at the timeout, not at the end of the 30 s hang; the bound leaves a loaded
    # machine 9.5 s of slack and is still 3x below the hang.
    assert time.perf_counter() - start < 10


@pytest.fixture(scope="module")
def slim_model():
    return build_googlenet(variant="slim", aux_classifiers=False)


def test_missing_extra_and_misshaped_tensors_are_named(tensors, slim_model):
    missing = dict(tensors)
    del missing["InceptionV1/Mixed_4e/Branch_3/Conv2d_0b_1x1/BatchNorm/moving_mean"]
    with pytest.raises(ValueError, match=r"1 missing: InceptionV1/Mixed_4e/Branch_3/Conv2d_0b_1x1/BatchNorm/moving_mean"):
        load_slim_checkpoint(slim_model, missing)
    extra = {**tensors, "InceptionV1/AuxLogits/Conv2d_0b_1x1/weights": np.zeros((1, 1, 528, 128), np.float32)}
    with pytest.raises(ValueError, match=r"1 not in TF-slim's inception_v1: InceptionV1/AuxLogits/Conv2d_0b_1x1/weights"):
        load_slim_checkpoint(slim_model, extra)
    misshaped = {**tensors, "InceptionV1/Conv2d_2c_3x3/weights": np.zeros((3, 3, 64, 190), np.float32)}
    with pytest.raises(ValueError, match=r"1 mis-shaped: InceptionV1/Conv2d_2c_3x3/weights \(3, 3, 64, 190\) \(the model needs \(3, 3, 64, 192\)\)"):
        load_slim_checkpoint(slim_model, misshaped)
    renamed = dict(tensors)  # the quirk "fixed": one missing and one extra, both named
    renamed["InceptionV1/Mixed_5b/Branch_2/Conv2d_0b_3x3/weights"] = renamed.pop("InceptionV1/Mixed_5b/Branch_2/Conv2d_0a_3x3/weights")
    with pytest.raises(ValueError, match=r"missing: InceptionV1/Mixed_5b/Branch_2/Conv2d_0a_3x3/weights; 1 not in .*Conv2d_0b_3x3/weights"):
        load_slim_checkpoint(slim_model, renamed)
    assert load_slim_checkpoint(slim_model, {**tensors, "global_step": np.int64(7)}) is slim_model


def test_a_broken_checkpoint_file_fails_before_building(tensors, tmp_path):
    del_one = dict(tensors)
    del del_one["InceptionV1/Logits/Conv2d_0c_1x1/biases"]
    path = slim_reference.write_checkpoint(del_one, tmp_path / "broken.ckpt")
    with pytest.raises(ValueError, match="1 missing: InceptionV1/Logits/Conv2d_0c_1x1/biases"):
        build_googlenet(weights=path)
    not_a_checkpoint = tmp_path / "notes.ckpt"
    not_a_checkpoint.write_text("hello")
    with pytest.raises(ValueError, match="is not a readable TF checkpoint"):
        build_googlenet(weights=str(not_a_checkpoint))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"weights": "imagenet", "num_classes": 10}, r"`num_classes` should be 1000 or 1001 .* Received: num_classes=10"),
        ({"weights": "imagenet", "variant": "paper"}, r"`variant` must be one of \['slim', 'bn'\] .* Received: variant='paper'"),
        ({"weights": "imagenet", "classifier_activation": "relu"}, r"Only `None` and `softmax` .* Received: classifier_activation='relu'"),
        ({"weights": "imagenet", "input_shape": (224, 224, 1)}, "3 channels. Received: 1 channels"),
        ({"weights": "imagenet", "width_multiplier": 0.5}, "width_multiplier=1.0"),
        ({"weights": "imagenet.h5"}, r"The `weights` argument should be either `None` .* Received: weights='imagenet.h5'"),
        ({"weights": "ImageNet"}, r"Received: weights='ImageNet'"),
    ],
)
def test_keras_applications_argument_rules(kwargs, message, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # nothing there: would fail if it got that far
    with pytest.raises(ValueError, match=message):
        build_googlenet(**kwargs)


def test_pth_without_torch_says_torch_is_needed(tmp_path, monkeypatch):
    path = tmp_path / "googlenet-1378be20.pth"
    path.write_bytes(b"not read")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else object())
    with pytest.raises(ValueError, match=r"needs torch .*keras-ninception\[torch\]"):
        build_googlenet(variant="bn", weights=str(path))
    with pytest.raises(ValueError, match=r"\['bn'\] with `weights="):
        build_googlenet(variant="slim", weights=str(path))


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("torchvision") is None,
    reason="needs torch and torchvision (pip install '.[torch]'); the optional torch job",
)
def test_torchvision_pth_file_gives_torchvisions_logits(tmp_path):
    import subprocess
    import sys

    script = os.path.join(os.path.dirname(__file__), "torchvision_pth.py")
    pth, out = tmp_path / "googlenet-synthetic.pth", tmp_path / "reference.npz"
    result = subprocess.run([sys.executable, script, str(pth), str(out)], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    reference = np.load(out)
    model = build_googlenet(variant="bn", weights=str(pth), classifier_activation=None)
    difference = np.abs(forward(model, reference["images"]) - reference["logits"]).max()
    print(f"\ntorchvision .pth: max |logit difference| {difference:.2e}")
    assert difference < TOLERANCE
    features = build_googlenet(variant="bn", weights=str(pth), include_top=False, pooling="avg")
    assert features.output.shape[1:] == (1024,)
