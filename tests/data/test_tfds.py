"""load_dataset(<TFDS name>): served by tfds.testing.mock_data, offline."""

import os
import socket
import time
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_ninception.data import load_dataset
from keras_ninception.data import sources

HEADS = ("main", "aux1", "aux2")
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)


def test_mnist_element_spec_and_label_dicts(prepared_tfds_metadata):
    data_dir = prepared_tfds_metadata("mnist", {"train": 24, "test": 16})
    with tfds.testing.mock_data(num_examples=24, data_dir=data_dir):
        splits = load_dataset(
            "mnist", data_dir=data_dir, output_names=HEADS, batch_size=8
        )
        images, labels = next(iter(splits.train))
    assert splits.source == "mnist"
    assert splits.class_names == tuple(str(digit) for digit in range(10))
    assert splits.input_shape == (32, 32, 1)
    # No validation split in mnist: train[:3] / train[3:], ceil(0.1 * 24) = 3.
    assert splits.num_examples == {"train": 21, "validation": 3, "test": 16}
    label_spec = {name: tf.TensorSpec((None,), tf.int32) for name in HEADS}
    for dataset in (splits.train, splits.validation, splits.test):
        assert dataset.element_spec == (
            tf.TensorSpec((None, 32, 32, 1), tf.float32),
            label_spec,
        )
    assert images.shape == (8, 32, 32, 1)
    assert -1.0 <= float(tf.reduce_min(images)) <= float(tf.reduce_max(images)) <= 1.0
    np.testing.assert_array_equal(labels["main"], labels["aux1"])
    np.testing.assert_array_equal(labels["main"], labels["aux2"])


def test_cifar10_rgb_and_channel_conversion(prepared_tfds_metadata):
    data_dir = prepared_tfds_metadata(
        "cifar10", {"train": 20, "test": 10}, class_names=CIFAR10_CLASSES
    )
    with tfds.testing.mock_data(num_examples=20, data_dir=data_dir):
        splits = load_dataset("cifar10", data_dir=data_dir, image_size=16)
        gray = load_dataset("cifar10", data_dir=data_dir, channels=1)
        images, labels = next(iter(splits.validation))
        gray_images, _ = next(iter(gray.validation))
    assert splits.class_names == CIFAR10_CLASSES
    assert splits.num_classes == 10
    assert splits.input_shape == (16, 16, 3)
    assert splits.train.element_spec == (
        tf.TensorSpec((None, 16, 16, 3), tf.float32),
        tf.TensorSpec((None,), tf.int32),
    )
    assert images.shape[1:] == (16, 16, 3)
    assert labels.dtype == tf.int32
    assert gray.input_shape == (32, 32, 1)
    assert gray_images.shape[1:] == (32, 32, 1)


def test_validation_split_used_when_present(prepared_tfds_metadata):
    data_dir = prepared_tfds_metadata(
        "mnist", {"train": 30, "validation": 7, "test": 5}
    )
    with tfds.testing.mock_data(num_examples=30, data_dir=data_dir):
        splits = load_dataset("mnist", data_dir=data_dir)
    assert splits.num_examples == {"train": 30, "validation": 7, "test": 5}


def test_no_test_split(prepared_tfds_metadata):
    data_dir = prepared_tfds_metadata("mnist", {"train": 10})
    with tfds.testing.mock_data(num_examples=10, data_dir=data_dir):
        splits = load_dataset("mnist", data_dir=data_dir)
    assert splits.test is None
    assert splits.num_examples == {"train": 9, "validation": 1, "test": 0}
    assert splits.available_splits == ("train", "validation")
    with pytest.raises(ValueError, match=r"'mnist' has no 'test' split; it has \['train', 'validation'\]: pass split='validation'"):
        splits.get_split("test")


@pytest.mark.parametrize(
    "name,channels,augment", [("mnist", 1, "crop"), ("cifar10", 3, "crop_flip")]
)
def test_default_augmentation_by_channels(
    prepared_tfds_metadata, name, channels, augment
):
    """Gray (digit-like) datasets are not flipped; colour ones are."""
    data_dir = prepared_tfds_metadata(name, {"train": 10})
    with tfds.testing.mock_data(num_examples=10, data_dir=data_dir):
        raw = sources.read_tfds(
            name,
            channels=None,
            validation_fraction=0.1,
            data_dir=data_dir,
            download=False,
        )
    assert raw.default_augment == augment
    assert raw.channels == channels


def test_not_prepared_offline(tmp_path):
    data_dir = tmp_path / "empty_tfds"
    data_dir.mkdir()
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("mnist", data_dir=str(data_dir))
    message = str(info.value)
    assert "'mnist'" in message
    assert str(data_dir) in message
    assert "download=True" in message and "--download" in message
    assert os.listdir(data_dir) == []


def test_download_failure_names_the_dataset(tmp_path, monkeypatch):
    def offline(self, *args, **kwargs):
        raise ConnectionError("Temporary failure in name resolution")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", offline)
    monkeypatch.setattr(sources, "download_addresses", lambda builder: [])  # no probe
    with pytest.raises(RuntimeError, match="'cifar10'.*name resolution") as info:
        load_dataset("cifar10", data_dir=str(tmp_path), download=True)
    assert str(tmp_path) in str(info.value)


def closed_port():
    """A TCP port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_download_addresses_are_the_urls_tfds_fetches(tmp_path):
    builder = tfds.builder("cifar10", data_dir=str(tmp_path))
    assert sources.download_addresses(builder) == [("www.cs.toronto.edu", 443)]


def test_offline_download_fails_within_seconds_before_any_retry(tmp_path, monkeypatch):
    port = closed_port()
    monkeypatch.setattr(sources, "download_addresses", lambda builder: [("127.0.0.1", port)])

    def never(self, *args, **kwargs):
        raise AssertionError("download_and_prepare must not run when the host is unreachable")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", never)
    start = time.perf_counter()
    with pytest.raises(RuntimeError) as info:
        load_dataset("cifar10", data_dir=str(tmp_path), download=True)
    assert time.perf_counter() - start < sources.DOWNLOAD_PROBE_TIMEOUT_S + 2
    message = str(info.value)
    assert message.startswith(
        f"Could not download and prepare the TFDS dataset 'cifar10' into data_dir {str(tmp_path)!r}: "
        f"cannot connect to 127.0.0.1:{port} (ConnectionRefusedError: "
    )
    assert message.endswith("Downloading needs network access; offline, point data_dir to a prepared copy.")


def test_probe_gives_up_after_its_timeout(monkeypatch):
    """A name lookup or connect that hangs: the probe answers after its timeout."""
    def hang(*args, **kwargs):
        time.sleep(30)
        raise OSError("gave up")

    monkeypatch.setattr(sources.socket, "create_connection", hang)
    start = time.perf_counter()
    assert sources.probe_connection(("127.0.0.1", 9), timeout=0.5) == "no answer within 0.5 s"
    # At the timeout, not at the end of the 30 s hang (the abandoned daemon thread sleeps on);
    # the bound leaves a loaded machine 9.5 s of slack and is still 3x below the hang.
    assert time.perf_counter() - start < 10


def test_probe_of_a_listening_port_passes():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert sources.probe_connection(server.getsockname()) is None


@pytest.mark.parametrize("name", ["no_such_dataset_xyz", "./no/such/folder"])
def test_unknown_source(name):
    with pytest.raises(ValueError, match="Unknown dataset source") as info:
        load_dataset(name)
    message = str(info.value)
    assert repr(name) in message
    assert "'digits'" in message and "image folder" in message and "TFDS" in message


def test_imagenet2012_from_manual_dir(prepared_tfds_metadata, tmp_path):
    """The ImageNet route: TFDS prepares `imagenet2012` from the archives in manual_dir
    (mocked here), then it reads like any TFDS dataset: 1000 classes, its own validation
    split, RGB (crop_flip by default; inception asked here), the eval crop."""
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    data_dir = prepared_tfds_metadata("imagenet2012", {"train": 12, "validation": 6})
    calls = []

    def prepare(self, *, download_config=None, **kwargs):
        calls.append((self.name, download_config.manual_dir))

    # mock_data replaces download_and_prepare too: the spy goes inside it (and is undone first).
    with tfds.testing.mock_data(num_examples=12, data_dir=data_dir), mock.patch.object(
        tfds.core.DatasetBuilder, "download_and_prepare", prepare
    ):
        splits = load_dataset(
            "imagenet2012", data_dir=data_dir, download=True, manual_dir=manual_dir,
            image_size=32, augment="inception", eval_crop=0.875, batch_size=4,
        )
        images, labels = next(iter(splits.train))
        val_images, _ = next(iter(splits.validation))
    assert calls == [("imagenet2012", str(manual_dir))]
    assert splits.num_classes == 1000 and splits.class_names[0] == "n01440764"
    assert splits.num_examples == {"train": 12, "validation": 6, "test": 0}
    assert images.shape == (4, 32, 32, 3) and val_images.shape == (4, 32, 32, 3)
    assert 0 <= int(tf.reduce_min(labels)) and int(tf.reduce_max(labels)) < 1000


def test_manual_dir_needs_download(tmp_path):
    with pytest.raises(ValueError, match=r"download=True.*Received: manual_dir="):
        load_dataset("imagenet2012", data_dir=str(tmp_path), manual_dir=str(tmp_path))
