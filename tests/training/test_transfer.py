"""Starting from pretrained weights: the layer transfer, the frozen backbone, and `train(weights=...)`."""

import logging

import keras
import numpy as np
import pytest

from keras_ninception import build_googlenet
from keras_ninception.training.compile import compile_model
from keras_ninception.training.config import TrainConfig
from keras_ninception.training.transfer import freeze_backbone, is_head, transfer_weights

TINY = {"variant": "cifar", "input_shape": (20, 20, 3), "width_multiplier": 0.125}


def tiny(num_classes, **kwargs):
    return build_googlenet(num_classes=num_classes, **{**TINY, **kwargs})


def test_head_layers():
    assert is_head("main_classifier") and is_head("aux1_fc") and is_head("aux2_conv_bn")
    assert not is_head("inception_4a_1x1") and not is_head("conv1_3x3_bn")


def test_transfer_to_fewer_classes_copies_the_backbone_and_leaves_the_classifiers_fresh():
    source, target = tiny(5), tiny(3)
    before = target.get_layer("main_classifier").get_weights()[0].copy()
    report = transfer_weights(source, target, "run A")
    np.testing.assert_array_equal(target.get_layer("inception_5b_5x5").kernel.numpy(), source.get_layer("inception_5b_5x5").kernel.numpy())
    np.testing.assert_array_equal(target.get_layer("main_classifier").get_weights()[0], before)
    assert set(report.fresh) == {"aux1_classifier", "aux2_classifier", "main_classifier"}
    assert report.fresh_heads() == ["main", "aux1", "aux2"]  # the heads' order, not the layers'
    # 57 conv + 57 BN in the backbone, 2 × (conv, BN, fc) in the aux heads.
    assert len(report.copied) == 57 * 2 + 2 * 3
    line = report.describe(3)
    assert "run A: 120 layers copied" in line and "main classifier (3 classes)" in line
    assert "aux1 classifier (3 classes)" in line  # its conv and fc were copied
    assert line.index("main classifier") < line.index("aux1 classifier") < line.index("aux2 classifier")


def test_a_source_without_aux_heads_leaves_them_fresh():
    report = transfer_weights(tiny(3, aux_classifiers=False), tiny(3), "a checkpoint")
    assert set(report.fresh_heads()) == {"aux1", "aux2"} and "main_classifier" in report.copied
    assert report.describe(3) == (
        "Weights from a checkpoint: 115 layers copied; starting fresh: aux1 (not in the source: "
        "random initialization), aux2 (not in the source: random initialization)."
    )


def test_another_variant_is_refused_naming_the_layer():
    with pytest.raises(ValueError, match=r"do not fit layer 'conv1_3x3' .*no such layer"):
        transfer_weights(build_googlenet(variant="bn", input_shape=(64, 64, 3), width_multiplier=0.125), tiny(3), "x")


def _fit_one_epoch(model, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (16, 20, 20, 3)).astype(np.float32) + 0.5  # statistics far from the stored ones
    y = rng.integers(0, 3, 16)
    compile_model(model, learning_rate=1e-2)
    model.fit(x, {"main": y, "aux1": y, "aux2": y}, batch_size=8, epochs=1, verbose=0)


@pytest.mark.slow
def test_frozen_backbone_keeps_weights_and_bn_statistics_and_heads_train():
    model = tiny(3)
    frozen = freeze_backbone(model)
    assert frozen == 57 * 2
    bn = model.get_layer("inception_4a_3x3_bn")
    assert bn.trainable is False
    backbone = {w.path: w.numpy().copy() for l in model.layers if not is_head(l.name) for w in l.weights}
    head = {w.path: w.numpy().copy() for l in model.layers if is_head(l.name) for w in l.weights}
    _fit_one_epoch(model)
    after = {w.path: w.numpy() for l in model.layers for w in l.weights}
    assert all(np.array_equal(after[p], v) for p, v in backbone.items())  # moving statistics too
    assert any(p.endswith("moving_mean") for p in backbone)
    assert all(not np.array_equal(after[p], v) for p, v in head.items() if "moving" not in p)
    # In training mode the frozen BN computes with its moving statistics (inference mode).
    x = np.random.default_rng(3).uniform(-1, 1, (4, 20, 20, 3)).astype(np.float32)
    features = keras.Model(model.input, model.get_layer("inception_5b_output").output)
    np.testing.assert_allclose(features(x, training=True), features(x, training=False), atol=1e-5)


@pytest.mark.slow
def test_without_freezing_the_statistics_move():
    model = tiny(3)
    mean = model.get_layer("inception_4a_3x3_bn").moving_mean.numpy().copy()
    _fit_one_epoch(model)
    assert not np.array_equal(model.get_layer("inception_4a_3x3_bn").moving_mean.numpy(), mean)


@pytest.mark.parametrize("fields, message", [
    ({"fine_tune": "head"}, "needs `weights`"),
    ({"fine_tune": "some"}, r"`fine_tune` must be one of \['head', 'all'\]"),
    ({"weights": "imagenet", "model": "nin"}, "ImageNet weights are GoogLeNet's"),
    ({"weights": "no/such/run"}, r"`weights` must be 'imagenet', a finished run folder"),
])
def test_bad_weights_configurations(fields, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**fields).validate()


def test_a_folder_that_is_not_a_finished_run_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="without model.keras"):
        TrainConfig(weights=str(tmp_path)).validate()


def test_a_run_folder_is_a_source_model(tmp_path):
    from keras_ninception.training.transfer import source_model

    run = tmp_path / "run"
    run.mkdir()
    tiny(3).save(str(run / "model.keras"))
    model, name = source_model(str(run), "cifar", (20, 20, 3), 2)
    assert name == str(run) and model.get_layer("main_classifier").kernel.shape == (128, 3)  # width 0.125


def test_imagenet_weights_default_to_slim_at_224_px():
    config = TrainConfig(weights="imagenet", dataset="some/folder").validate().resolved()
    assert (config.variant, config.image_size) == ("slim", 224)


@pytest.mark.slow
def test_train_from_imagenet_with_a_frozen_backbone(tmp_path, monkeypatch, caplog):
    """`train(weights="imagenet")` end to end, on a synthetic checkpoint in the Keras cache."""
    from keras_ninception.training.run import train
    from tests.models import slim_reference
    from tests.training.gratings import write_gratings

    tensors = slim_reference.synthetic_tensors()
    checkpoint = slim_reference.write_checkpoint(tensors, tmp_path / "inception_v1.ckpt")
    (tmp_path / "home" / "models").mkdir(parents=True)
    slim_reference.write_archive(checkpoint, tmp_path / "home" / "models" / "inception_v1_2016_08_28.tar.gz")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "home"))
    data = write_gratings(tmp_path / "data", angles=(0, 90), per_split={"train": 6, "test": 2})
    with caplog.at_level(logging.INFO, logger="keras_ninception"):
        result = train(
            TrainConfig(dataset=data, weights="imagenet", fine_tune="head", image_size=56, epochs=1, batch_size=4,
                        image_summary_freq=0, precision="float32", run_dir=str(tmp_path / "run")),
            verbose=0,
        )
    out = caplog.text
    assert "Weights from ImageNet (TF-slim inception_v1): 114 layers copied; starting fresh: main classifier (2 classes), " \
           "aux1 (not in the source: random initialization), aux2 (not in the source: random initialization)." in out
    assert "Fine-tuning the heads: 114 backbone layers frozen" in out
    from keras_ninception.training.evaluate import load_run

    model, config = load_run(result["run_dir"])
    assert config["variant"] == "slim" and config["train_config"]["weights"] == "imagenet"
    np.testing.assert_array_equal(model.get_layer("inception_4a_1x1").kernel.numpy(),
                                  tensors["InceptionV1/Mixed_4b/Branch_0/Conv2d_0a_1x1/weights"])
    np.testing.assert_array_equal(model.get_layer("conv2_3x3_bn").moving_mean.numpy(),
                                  tensors["InceptionV1/Conv2d_2c_3x3/BatchNorm/moving_mean"])


@pytest.mark.slow
@pytest.mark.long
def test_fine_tuning_a_run_beats_training_from_scratch_on_fewer_classes(tmp_path, capsys, caplog):
    """A run on 4 grating orientations, transferred to 2 other orientations, beats scratch.

    Same target budget both ways (3 epochs of batch 4 on 8 images per class, the `fast`
    recipe without warm-up, same seed); the transfer trains the heads on the source run's
    frozen backbone. Augmentation is `crop` only: a horizontal flip turns a 45-degree grating
    into a 135-degree one, another class. Print the figures with -s -n 0.
    """
    from keras_ninception.training.run import train
    from tests.training.gratings import write_gratings

    source_data = write_gratings(tmp_path / "source", angles=(0, 45, 90, 135), per_split={"train": 50}, seed=0)
    target_data = write_gratings(tmp_path / "target", angles=(22, 112), per_split={"train": 8, "test": 25}, seed=1)
    common = {"image_size": 20, "aux_classifiers": False, "variant": "cifar", "image_summary_freq": 0,
              "augment": "crop", "warmup_epochs": 0}
    source = train(TrainConfig(dataset=source_data, epochs=3, batch_size=16, run_dir=str(tmp_path / "source-run"),
                               **common), verbose=0)
    assert source["metrics"]["validation"]["heads"]["main"]["accuracy"] >= 0.8  # the backbone learned orientation
    target = {"dataset": target_data, "epochs": 3, "batch_size": 4, **common}
    scratch = train(TrainConfig(run_dir=str(tmp_path / "scratch"), **target), verbose=0)
    with caplog.at_level(logging.INFO, logger="keras_ninception"):
        tuned = train(TrainConfig(run_dir=str(tmp_path / "tuned"), weights=source["run_dir"], fine_tune="head", **target),
                      verbose=0)
    out = caplog.text
    accuracy = {name: run["metrics"]["test"]["heads"]["main"]["accuracy"] for name, run in
                (("scratch", scratch), ("fine-tuned", tuned))}
    with capsys.disabled():
        print(f"\nsource validation accuracy {source['metrics']['validation']['heads']['main']['accuracy']:.3f}; "
              f"target test accuracy (50 images): scratch {accuracy['scratch']:.3f}, fine-tuned {accuracy['fine-tuned']:.3f}")
    assert "starting fresh: main classifier (2 classes)." in out
    assert accuracy["fine-tuned"] > accuracy["scratch"]
    assert accuracy["fine-tuned"] >= 0.7
