"""load_dataset rejects bad arguments early, in the package's words."""

import re

import pytest

from keras_ninception.data import load_dataset

BAD_ARGUMENTS = [
    ("image_size", 0),
    ("image_size", -3),
    ("image_size", 32.0),
    ("image_size", True),
    ("image_size", (32,)),
    ("image_size", (32, 0)),
    ("image_size", "32"),
    ("batch_size", 0),
    ("batch_size", 2.5),
    ("channels", 2),
    ("channels", 4),
    ("validation_fraction", 0),
    ("validation_fraction", 1.0),
    ("validation_fraction", -0.1),
    ("validation_fraction", "0.1"),
    ("augment", "flip"),
    ("augment", "crop+flip"),
    ("on_bad_image", "ignore"),
    ("output_names", ()),
    ("output_names", ("main", "main")),
    ("output_names", ["main", 3]),
    ("seed", None),
    ("download", "yes"),
    ("cache", 1),
    ("cache", ""),
    ("cache_budget", -1),
    ("cache_budget", 1.5),
    ("eval_crop", 0),
    ("eval_crop", 1.5),
    ("eval_crop", True),
    ("eval_crop", "0.875"),
    ("color_distortion", "yes"),
]


@pytest.mark.parametrize("argument,value", BAD_ARGUMENTS)
def test_bad_argument(argument, value):
    expected = f"`{argument}` must .*Received: {argument}={re.escape(repr(value))}$"
    with pytest.raises(ValueError, match=expected):
        load_dataset("digits", **{argument: value})


def test_bad_source_type():
    with pytest.raises(ValueError, match=r"Received: source=42$"):
        load_dataset(42)


def test_cache_directory_must_exist(tmp_path):
    missing = tmp_path / "no_such_dir" / "cache"
    with pytest.raises(ValueError, match="does not exist") as info:
        load_dataset("digits", cache=str(missing))
    assert str(info.value).endswith(f"Received: cache={str(missing)!r}")
    assert not (tmp_path / "no_such_dir").exists()


def test_arguments_checked_before_the_source(tmp_path):
    """A bad argument is reported even when the source would fail too."""
    with pytest.raises(ValueError, match="Received: batch_size=0"):
        load_dataset(str(tmp_path), batch_size=0)


@pytest.mark.parametrize("fraction", [0.001, 0.999])
def test_digits_fraction_too_small_for_stratified_split(fraction):
    with pytest.raises(ValueError, match="one per class") as info:
        load_dataset("digits", validation_fraction=fraction)
    assert str(info.value).endswith(f"Received: validation_fraction={fraction!r}")


def test_color_distortion_needs_inception_augmentation():
    with pytest.raises(ValueError, match=r"Received: augment='crop_flip', color_distortion=True$"):
        load_dataset("digits", augment="crop_flip", color_distortion=True)
