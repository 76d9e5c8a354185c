"""The shipped ImageNet class list, `preprocess_input` and `decode_predictions`."""

import configparser
import hashlib
import os

import numpy as np
import pytest

import keras_ninception
from keras_ninception import decode_predictions, preprocess_input
from keras_ninception.models.imagenet import CLASS_FILE, imagenet_class_names, imagenet_wnids

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


def test_the_class_list_is_the_1000_sorted_wnids_tench_to_toilet_tissue():
    wnids, names = imagenet_wnids(), imagenet_class_names()
    assert len(wnids) == len(set(wnids)) == len(names) == 1000
    assert list(wnids) == sorted(wnids)
    assert (wnids[0], names[0]) == ("n01440764", "tench")
    assert (wnids[1], names[1]) == ("n01443537", "goldfish")
    assert (wnids[999], names[999]) == ("n15075141", "toilet tissue")
    assert all(w.startswith("n") and len(w) == 9 and w[1:].isdigit() for w in wnids)
    # The wnid column is timm 1.0.31's imagenet_synsets.txt byte for byte.
    digest = hashlib.sha256("".join(f"{w}\n" for w in wnids).encode()).hexdigest()
    assert digest == "70002b0ff5de60a3a17a82dbfcff291931f96225ddf941ad2e182fc39e183d15"


def test_the_class_file_is_package_data():
    config = configparser.ConfigParser()
    config.read(os.path.join(ROOT, "setup.cfg"))
    assert CLASS_FILE in config["options.package_data"]["keras_ninception.models"]
    assert os.path.isfile(os.path.join(os.path.dirname(keras_ninception.__file__), "models", CLASS_FILE))


def test_preprocess_input_scales_to_minus_one_one():
    x = np.array([[[[0, 127.5, 255]]]], np.float32)
    np.testing.assert_allclose(preprocess_input(x.copy()), [[[[-1.0, 0.0, 1.0]]]])
    as_ints = preprocess_input(np.array([[[[0, 51, 255]]]], np.uint8))
    np.testing.assert_allclose(as_ints, [[[[-1.0, 51 / 127.5 - 1, 1.0]]]], rtol=1e-6)


def test_decode_predictions_top_k_with_and_without_background():
    preds = np.zeros((2, 1000), np.float32)
    preds[0, [0, 999, 1]] = [0.5, 0.3, 0.2]
    preds[1, 500] = 1.0
    decoded = decode_predictions(preds, top=3)
    assert decoded[0] == [("n01440764", "tench", 0.5), ("n15075141", "toilet tissue", pytest.approx(0.3)),
                          ("n01443537", "goldfish", pytest.approx(0.2))]
    assert decoded[1][0][2] == 1.0 and len(decoded[1]) == 3
    with_background = np.concatenate([np.full((2, 1), 9.0, np.float32), preds], axis=1)
    assert decode_predictions(with_background, top=3) == decoded  # class 0 ("background") dropped
    assert len(decode_predictions(preds)[0]) == 5


@pytest.mark.parametrize("preds, top, message", [
    (np.zeros((1, 10)), 5, r"shape \(samples, 1000\).*Received array with shape: \(1, 10\)"),
    (np.zeros(1000), 5, r"Received array with shape: \(1000,\)"),
    (np.zeros((1, 1000)), 0, "Received: top=0"),
])
def test_decode_predictions_rejects_bad_input(preds, top, message):
    with pytest.raises(ValueError, match=message):
        decode_predictions(preds, top=top)
