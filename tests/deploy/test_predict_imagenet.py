"""`predict` with ImageNet models: the `imagenet` model path and ImageNet class names."""

import numpy as np

from keras_ninception.deploy.predict import default_class_names, predict_files
from keras_ninception.models.imagenet import imagenet_class_names
from tests.data.images import write_image
from tests.models import slim_reference


def test_default_class_names():
    assert default_class_names(1000)[:2] == ["tench", "goldfish"] and len(default_class_names(1000)) == 1000
    assert default_class_names(1001)[:2] == ["background", "tench"]
    assert default_class_names(3) == ["0", "1", "2"]


def test_predict_with_the_imagenet_model_prints_class_names(tmp_path, monkeypatch):
    tensors = slim_reference.synthetic_tensors()
    (tmp_path / "models").mkdir()
    checkpoint = slim_reference.write_checkpoint(tensors, tmp_path / "inception_v1.ckpt")
    slim_reference.write_archive(checkpoint, tmp_path / "models" / "inception_v1_2016_08_28.tar.gz")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    image = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    write_image(str(tmp_path / "photo.png"), image)
    [result] = predict_files("imagenet", [str(tmp_path / "photo.png")], top_k=3)
    logits = slim_reference.slim_logits(tensors, (image[None].astype(np.float32) / 127.5 - 1))[0]
    best = np.argsort(-logits)[:3]
    assert [p["class_name"] for p in result["predictions"]] == [imagenet_class_names()[i] for i in best]
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose([p["probability"] for p in result["predictions"]], probabilities[best], atol=1e-5)
