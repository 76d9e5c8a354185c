"""load_dataset(<folder>): image folders read with TFDS ImageFolder."""

import math
import os
import pathlib
import re
import shutil
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from keras_ninception.data import files
from keras_ninception.data import load_dataset
from keras_ninception.data import sources
from tests.data.images import CLASS_VALUES
from tests.data.images import write_image

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
CIFAR_TAR = REPO_ROOT.parent / "shared" / "data" / "cifar10-jpg-train.tar"


def all_examples(dataset):
    """Concatenated `(images, labels)` of a batched split."""
    batches = list(dataset)
    return (
        np.concatenate([images.numpy() for images, _ in batches]),
        np.concatenate([labels.numpy() for _, labels in batches]),
    )


def file_snapshot(root):
    return sorted(
        (str(path), path.stat().st_size, path.stat().st_mtime_ns)
        for path in pathlib.Path(root).rglob("*")
    )


def test_validation_carved_from_train(image_folder):
    root = image_folder({"train": 10})  # 3 classes x 10 + 1 gray = 31 images.
    splits = load_dataset(root, image_size=16, batch_size=8, augment="none")
    assert splits.class_names == ("cat", "dog", "frog")
    assert splits.num_classes == 3
    # ceil(0.1 * 31) = 4 validation images, the first 4 of ImageFolder's order.
    assert splits.num_examples == {"train": 27, "validation": 4, "test": 0}
    assert splits.test is None
    assert splits.input_shape == (16, 16, 3)
    assert splits.source == root
    assert splits.train.element_spec == (
        tf.TensorSpec((None, 16, 16, 3), tf.float32),
        tf.TensorSpec((None,), tf.int32),
    )
    assert len(splits.train) == math.ceil(27 / 8)
    train_images, train_labels = all_examples(splits.train)
    val_images, val_labels = all_examples(splits.validation)
    assert train_images.shape == (27, 16, 16, 3)
    assert val_images.shape == (4, 16, 16, 3)
    # Constant images keep their value through resize: label <-> pixel match.
    images = np.concatenate([train_images, val_images])
    labels = np.concatenate([train_labels, val_labels])
    for image, label in zip(images, labels, strict=True):
        value = CLASS_VALUES[splits.class_names[label]]
        np.testing.assert_allclose(image, value / 127.5 - 1.0, atol=1.5 / 127.5)
    assert np.bincount(labels).tolist() == [10, 11, 10]


def test_carved_validation_is_stable(image_folder):
    root = image_folder({"train": 10})
    first = load_dataset(root, seed=0, augment="none")
    second = load_dataset(root, seed=7, augment="none")
    for a, b in zip(
        all_examples(first.validation), all_examples(second.validation), strict=True
    ):
        np.testing.assert_array_equal(a, b)


def test_val_and_test_folders_used(image_folder):
    root = image_folder({"train": 4, "val": 2, "test": 3}, extra_gray=False)
    splits = load_dataset(
        root, image_size=(20, 12), output_names=("main", "aux1", "aux2")
    )
    assert splits.num_examples == {"train": 12, "validation": 6, "test": 9}
    assert splits.input_shape == (20, 12, 3)
    for dataset in (splits.train, splits.validation, splits.test):
        images, labels = next(iter(dataset))
        assert images.shape[1:] == (20, 12, 3)
        assert set(labels) == {"main", "aux1", "aux2"}
    test_labels = np.concatenate([y["main"].numpy() for _, y in splits.test])
    assert np.bincount(test_labels).tolist() == [3, 3, 3]


def test_validation_folder_preferred_over_val(image_folder):
    root = image_folder({"train": 4, "validation": 1, "val": 2}, extra_gray=False)
    splits = load_dataset(root)
    assert splits.num_examples == {"train": 12, "validation": 3, "test": 0}


def test_default_augmentation_flips(image_folder):
    raw = sources.read_image_folder(
        image_folder({"train": 2}),
        channels=None,
        validation_fraction=0.1,
        on_bad_image="error",
    )
    assert raw.default_augment == "crop_flip"
    assert raw.channels == 3


def test_one_channel(image_folder):
    root = image_folder({"train": 3})
    splits = load_dataset(root, channels=1, image_size=8)
    assert splits.input_shape == (8, 8, 1)
    images, _ = all_examples(splits.train)
    assert images.shape[1:] == (8, 8, 1)


def test_nothing_written_to_the_folder(image_folder):
    root = image_folder({"train": 3, "test": 1})
    before = file_snapshot(root)
    splits = load_dataset(root)
    for dataset in (splits.train, splits.validation, splits.test):
        all_examples(dataset)
    assert file_snapshot(root) == before


@pytest.fixture
def cifar_folder(tmp_path):
    """Five real CIFAR-10 JPEGs of each of three classes, from the shared tar."""
    if not CIFAR_TAR.is_file():
        pytest.skip(f"the shared CIFAR-10 tar is absent: {CIFAR_TAR}")
    wanted = {"airplane": [], "automobile": [], "bird": []}
    with tarfile.open(CIFAR_TAR) as tar:
        for member in tar:
            parts = member.name.split("/")
            if (
                member.isfile()
                and len(parts) == 3
                and parts[1] in wanted
                and len(wanted[parts[1]]) < 5
            ):
                path = tmp_path / "cifar" / member.name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(tar.extractfile(member).read())
                wanted[parts[1]].append(member.name)
            if all(len(names) == 5 for names in wanted.values()):
                break
    return tmp_path / "cifar"


def test_real_cifar_jpegs(cifar_folder):
    splits = load_dataset(str(cifar_folder), augment="none", batch_size=4)
    assert splits.class_names == ("airplane", "automobile", "bird")
    assert splits.num_examples == {"train": 13, "validation": 2, "test": 0}
    assert splits.input_shape == (32, 32, 3)
    train_images, train_labels = all_examples(splits.train)
    val_images, val_labels = all_examples(splits.validation)
    images = np.concatenate([train_images, val_images])
    assert images.shape == (15, 32, 32, 3)
    assert np.bincount(np.concatenate([train_labels, val_labels])).tolist() == [5, 5, 5]
    # 32x32 files are not resized: the pipeline gives the decoded JPEG, scaled.
    decoded = [
        tf.io.decode_jpeg(tf.io.read_file(str(path)), channels=3).numpy()
        for path in sorted(cifar_folder.rglob("*.jpg"))
    ]
    expected = sorted(float(image.astype(np.float64).sum()) for image in decoded)
    got = sorted(
        float(((image + 1.0) * 127.5).astype(np.float64).sum()) for image in images
    )
    np.testing.assert_allclose(got, expected, rtol=1e-5)


# --- Bad folders and bad files ----------------------------------------------


def test_empty_folder(tmp_path):
    with pytest.raises(ValueError, match="no training images") as info:
        load_dataset(str(tmp_path))
    assert str(tmp_path) in str(info.value)


def test_train_split_without_images(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("not an image")
    (tmp_path / "test" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="no training images.*test/"):
        load_dataset(str(tmp_path))


def test_one_class(tmp_path):
    for index in range(3):
        write_image(
            str(tmp_path / "train" / "cat" / f"{index}.png"),
            np.zeros((8, 8, 3), np.uint8),
        )
    with pytest.raises(ValueError, match="1 class.*at least 2 classes") as info:
        load_dataset(str(tmp_path))
    assert str(tmp_path) in str(info.value)


@pytest.fixture
def folder_with_bad_files(image_folder):
    root = pathlib.Path(image_folder({"train": 4, "test": 2}, extra_gray=False))
    (root / "train" / "cat" / "empty.jpg").write_bytes(b"")
    (root / "train" / "dog" / "readme.jpg").write_text("this is text, not a JPEG")
    (root / "test" / "frog" / "empty.png").write_bytes(b"")
    return root


def test_bad_files_raise_naming_them(folder_with_bad_files):
    root = folder_with_bad_files
    with pytest.raises(ValueError) as info:
        load_dataset(str(root))
    message = str(info.value)
    assert "3 unreadable image file(s)" in message
    assert os.path.join("train", "cat", "empty.jpg") + " (empty file)" in message
    assert (
        os.path.join("train", "dog", "readme.jpg") + f" ({files.NOT_AN_IMAGE})"
        in message
    )
    assert os.path.join("test", "frog", "empty.png") in message
    assert "on_bad_image='skip'" in message


def test_bad_files_skipped(folder_with_bad_files):
    with pytest.warns(UserWarning, match="Skipped 3 unreadable image file"):
        splits = load_dataset(
            str(folder_with_bad_files), on_bad_image="skip", augment="none"
        )
    # 12 good training images: ceil(1.2) = 2 validation; 6 good test images.
    assert splits.num_examples == {"train": 10, "validation": 2, "test": 6}
    for split in ("train", "validation", "test"):
        images, labels = all_examples(getattr(splits, split))
        assert len(labels) == splits.num_examples[split]
        assert images.shape[1:] == (32, 32, 3)


def test_many_bad_files_are_counted(image_folder):
    root = pathlib.Path(image_folder({"train": 2}, extra_gray=False))
    for index in range(8):
        (root / "train" / "cat" / f"bad{index}.png").write_bytes(b"GIF89a..")
    with pytest.raises(ValueError, match="8 unreadable .*, and 3 more"):
        load_dataset(str(root))


def test_image_file_problem(tmp_path):
    jpeg = tmp_path / "a.jpg"
    write_image(str(jpeg), np.zeros((4, 4, 3), np.uint8), "jpeg")
    png_named_jpg = tmp_path / "b.jpg"
    write_image(str(png_named_jpg), np.zeros((4, 4, 1), np.uint8), "png")
    empty = tmp_path / "c.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "d.png"
    text.write_text("hello")
    for mode in ("header", "full"):
        assert files.image_file_problem(str(jpeg), mode) is None
        assert files.image_file_problem(str(png_named_jpg), mode) is None
        assert files.image_file_problem(str(empty), mode) == "empty file"
        assert files.image_file_problem(str(text), mode) == files.NOT_AN_IMAGE
        assert files.image_file_problem(str(tmp_path), mode) == "a directory"
        assert files.image_file_problem(str(tmp_path / "missing.jpg"), mode) == (
            "cannot be read (No such file or directory)"
        )


# --- Folders that are not data: hidden and OS/tool debris ---------------------

DEBRIS_FOLDERS = [".ipynb_checkpoints", "__MACOSX", ".git", "@eaDir", "__pycache__", ".Trash-1000", "$RECYCLE.BIN"]


@pytest.mark.parametrize("debris", DEBRIS_FOLDERS)
@pytest.mark.parametrize("level", ["train", "root"])
def test_debris_folders_are_never_classes_or_splits(image_folder, debris, level):
    root = pathlib.Path(image_folder({"train": 4, "test": 1}, extra_gray=False))
    parent = root / "train" if level == "train" else root
    # An empty debris folder, and one holding a valid image (a thumbnail, a checkpoint copy).
    (parent / debris).mkdir()
    write_image(str(parent / debris / "cat" / "thumb.jpg"), np.zeros((8, 8, 3), np.uint8), "jpeg")
    relative = f"{debris}/" if level == "root" else f"train/{debris}/"
    with pytest.warns(UserWarning, match=re.escape(f"never splits, classes or images): {relative}.")):
        splits = load_dataset(str(root), image_size=8)
    assert splits.class_names == ("cat", "dog", "frog")
    assert splits.num_examples == {"train": 10, "validation": 2, "test": 3}


def test_debris_at_both_levels_and_hidden_files_are_listed_once(image_folder):
    root = pathlib.Path(image_folder({"train": 2}, extra_gray=False))
    (root / ".ipynb_checkpoints").mkdir()
    (root / "__MACOSX" / "train" / "cat").mkdir(parents=True)
    (root / "__MACOSX" / "train" / "cat" / "._000.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (root / "train" / ".ipynb_checkpoints").mkdir()
    (root / "train" / "cat" / "._001.jpg").write_bytes(b"\x00\x05\x16\x07 AppleDouble")  # a macOS fork
    (root / "train" / "dog" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    listing = files.list_image_folder(str(root))
    assert listing.ignored == (".ipynb_checkpoints/", "__MACOSX/", "train/.ipynb_checkpoints/", "train/cat/._001.jpg")
    assert sorted(listing.files) == ["train"]
    assert {name: len(paths) for name, paths in listing.files["train"].items()} == {"cat": 2, "dog": 2, "frog": 2}
    with pytest.warns(UserWarning) as record:
        splits = load_dataset(str(root), image_size=8)
    assert [str(w.message) for w in record] == [
        f"Ignored in the image folder {str(root)!r} (hidden and OS or tool folders and files are never "
        "splits, classes or images): .ipynb_checkpoints/, __MACOSX/, train/.ipynb_checkpoints/, "
        "train/cat/._001.jpg."
    ]
    assert splits.class_names == ("cat", "dog", "frog")
    assert splits.num_examples["train"] + splits.num_examples["validation"] == 6


def test_a_clean_folder_warns_nothing(image_folder, recwarn):
    load_dataset(image_folder({"train": 2}), image_size=8)
    assert [str(w.message) for w in recwarn if issubclass(w.category, UserWarning)] == []


@pytest.mark.parametrize("name", ["Thumbs.db", "thumbs.db", "desktop.ini", "lost+found", ".x", "__MACOSX"])
def test_is_ignored(name):
    assert files.is_ignored(name)


@pytest.mark.parametrize("name", ["cat", "_cat", "MACOSX", "eaDir", "checkpoints", "a.b"])
def test_is_not_ignored(name):
    assert not files.is_ignored(name)


# --- One split, read alone, named by a model's classes ------------------------


def test_a_folder_with_only_test_reads_its_test_split(image_folder):
    root = pathlib.Path(image_folder({"test": 2}, extra_gray=False))
    splits = load_dataset(str(root), splits=("test",), class_names=("cat", "dog", "frog"), image_size=8)
    assert (splits.train, splits.validation) == (None, None)
    assert splits.num_examples == {"train": 0, "validation": 0, "test": 6}
    images, labels = all_examples(splits.test)
    assert sorted(labels.tolist()) == [0, 0, 1, 1, 2, 2]
    for image, label in zip(images, labels, strict=True):
        value = CLASS_VALUES[("cat", "dog", "frog")[label]]
        np.testing.assert_allclose(image, value / 127.5 - 1.0, atol=1.5 / 127.5)


def test_folder_names_map_to_the_model_classes(image_folder):
    """A test folder with 2 of the model's 4 classes: labels are the model's indices."""
    root = pathlib.Path(image_folder({"test": 1}, extra_gray=False))
    shutil.rmtree(root / "test" / "cat")
    model_classes = ("ant", "dog", "frog", "zebra")
    splits = load_dataset(str(root), splits=("test",), class_names=model_classes, image_size=8)
    assert splits.class_names == model_classes
    images, labels = all_examples(splits.test)
    assert sorted(labels.tolist()) == [1, 2]
    assert {int(label): round(float(image.mean()), 3) for image, label in zip(images, labels)} == {
        1: round(128 / 127.5 - 1.0, 3),
        2: 1.0,
    }


def test_a_class_unknown_to_the_model_is_an_error(image_folder):
    root = image_folder({"test": 1}, extra_gray=False)
    with pytest.raises(ValueError, match=r"class folders that are not classes of the model: test/frog/\. "
                       r"Its classes: cat, dog\. Rename or remove"):
        load_dataset(root, splits=("test",), class_names=("cat", "dog"))


def test_validation_only_folder(image_folder):
    root = image_folder({"validation": 2}, extra_gray=False)
    splits = load_dataset(root, splits=("validation",), image_size=8)
    assert splits.num_examples == {"train": 0, "validation": 6, "test": 0}
    assert splits.class_names == ("cat", "dog", "frog")
    with pytest.raises(ValueError, match="no training images"):
        load_dataset(root)


def test_a_carved_validation_split_needs_train(image_folder):
    root = image_folder({"test": 1}, extra_gray=False)
    with pytest.raises(ValueError, match=r"no training images \(the validation split is carved from train/ "
                       r"when there is no validation/ or val/\)"):
        load_dataset(root, splits=("validation",))
    # Read alone, a carved validation split holds what it holds with every split.
    root = image_folder({"train": 10}, root_name="full")
    alone = load_dataset(root, splits=("validation",), augment="none")
    together = load_dataset(root, augment="none")
    for a, b in zip(all_examples(alone.validation), all_examples(together.validation), strict=True):
        np.testing.assert_array_equal(a, b)
    assert alone.train is None and alone.test is None
    # And train alone is train without the carved images, as in training.
    alone = load_dataset(root, splits=("train",), augment="none")
    assert alone.num_examples == {"train": 27, "validation": 0, "test": 0}
    assert sorted(all_examples(alone.train)[1].tolist()) == sorted(all_examples(together.train)[1].tolist())


def test_only_the_read_splits_are_checked(image_folder):
    root = pathlib.Path(image_folder({"train": 2, "test": 1}, extra_gray=False))
    (root / "train" / "cat" / "empty.jpg").write_bytes(b"")
    assert load_dataset(str(root), splits=("test",)).num_examples["test"] == 3
    with pytest.raises(ValueError, match="train/cat/empty.jpg"):
        load_dataset(str(root))


@pytest.mark.parametrize(
    "kwargs, received",
    [
        ({"splits": ("tests",)}, "splits=('tests',)"),
        ({"splits": ()}, "splits=()"),
        ({"splits": ("test", "test")}, "splits=('test', 'test')"),
        ({"class_names": ("a", "a")}, "class_names=('a', 'a')"),
        ({"class_names": "ab"}, "class_names='ab'"),
    ],
)
def test_splits_and_class_names_are_validated(kwargs, received):
    with pytest.raises(ValueError, match=re.escape(f"Received: {received}")):
        load_dataset("digits", **kwargs)


def test_digits_with_other_class_names_is_an_error():
    with pytest.raises(ValueError, match=r"has the classes \['0', '1'.*not \['a', 'b'\]"):
        load_dataset("digits", class_names=("a", "b"))
    splits = load_dataset("digits", splits=("test",), class_names=[str(i) for i in range(10)])
    assert splits.num_examples == {"train": 0, "validation": 0, "test": 360}
    assert splits.train is None


def test_a_missing_split_is_named_with_the_splits_the_folder_has(image_folder):
    # Whether or not the other splits were read, the error lists what the dataset offers.
    no_test = image_folder({"train": 4, "val": 2}, extra_gray=False, root_name="no-test")
    only_test = image_folder({"test": 2}, extra_gray=False, root_name="only-test")
    cases = (
        (no_test, None, "test", r"has no 'test' split; it has \['train', 'validation'\]: pass split='validation'"),
        (no_test, ("test",), "test", r"has no 'test' split; it has \['train', 'validation'\]: pass split='validation'"),
        (only_test, ("test",), "validation", r"has no 'validation' split; it has \['test'\]: pass split='test'"),
    )
    for root, wanted, split, match in cases:
        splits = load_dataset(root, image_size=8, batch_size=2, splits=wanted)
        with pytest.raises(ValueError, match=match):
            splits.get_split(split)
    splits = load_dataset(no_test, image_size=8, batch_size=2, splits=("validation",))
    assert splits.available_splits == ("train", "validation")
    assert splits.get_split("validation") is splits.validation
    with pytest.raises(ValueError, match=r"The 'train' split of the dataset .* was not read"):
        splits.get_split("train")  # present but not read: still named, never a silent None
