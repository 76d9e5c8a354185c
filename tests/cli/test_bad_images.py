"""`ninception train` on image folders with bad files: an empty JPEG, a text file named .jpg,
a JPEG cut inside its image data (passes the default header check), a JPEG with trailing bytes."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_ninception.data.files import NOT_AN_IMAGE
from tests.data.images import write_image

pytestmark = pytest.mark.slow
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture
def folder_with_bad_files(tmp_path):
    root = tmp_path / "images"
    for index, name in enumerate(("cat", "dog")):
        for i in range(6):
            write_image(str(root / "train" / name / f"{i}.png"), np.full((8, 8, 3), 40 + 160 * index, np.uint8))
    (root / "train" / "cat" / "empty.jpg").write_bytes(b"")
    (root / "train" / "dog" / "notes.jpg").write_text("this is text, not a JPEG")
    return root


def train(root, cwd, *flags):
    return subprocess.run(
        [sys.executable, "-m", "keras_ninception", "train", "--model", "nin", "--image-size", "8", "--epochs", "1",
         "--batch-size", "4", "--dataset", str(root), "--run-dir", "run", *flags],
        capture_output=True, text=True, timeout=300, env=ENV, cwd=cwd,
    )


def test_bad_files_are_named_or_skipped_with_their_count(folder_with_bad_files, tmp_path):
    result = train(folder_with_bad_files, tmp_path)
    assert result.returncode == 2
    assert "ninception train: error:" in result.stderr and "2 unreadable image file(s)" in result.stderr
    assert os.path.join("train", "cat", "empty.jpg") + " (empty file)" in result.stderr
    assert os.path.join("train", "dog", "notes.jpg") + f" ({NOT_AN_IMAGE})" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()

    result = train(folder_with_bad_files, tmp_path, "--on-bad-image", "skip")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Skipped 2 unreadable image file(s)" in result.stderr
    assert (tmp_path / "run" / "model.keras").is_file()


@pytest.fixture
def folder_with_a_cut_jpeg(tmp_path):
    """train/{cat,dog}/ of noisy 32x32 JPEGs; cat/3.jpg cut at half (inside its image data),
    dog/0.jpg with 63 zero bytes after its end marker."""
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for name in ("cat", "dog"):
        for i in range(6):
            write_image(str(root / "train" / name / f"{i}.jpg"), rng.integers(0, 256, (32, 32, 3), np.uint8), "jpeg")
    cut = root / "train" / "cat" / "3.jpg"
    cut.write_bytes(cut.read_bytes()[: len(cut.read_bytes()) // 2])
    padded = root / "train" / "dog" / "0.jpg"
    padded.write_bytes(padded.read_bytes() + bytes(63))
    return root


def test_a_file_that_passes_the_header_check_is_named_when_it_fails_to_decode(folder_with_a_cut_jpeg, tmp_path):
    cut = folder_with_a_cut_jpeg / "train" / "cat" / "3.jpg"
    result = train(folder_with_a_cut_jpeg, tmp_path)  # --check-images header (default)
    assert result.returncode == 2, result.stderr[-3000:]
    assert f"ninception train: error: Cannot read or decode the image file {cut} (damaged or truncated: " in result.stderr
    assert "Traceback" not in result.stderr and "InvalidArgumentError" not in result.stderr

    assert not (tmp_path / "run").exists()  # a new run with no finished epoch leaves nothing

    # A full check finds it up front (the padded JPEG is good) and skipping leaves it out.
    result = train(folder_with_a_cut_jpeg, tmp_path, "--check-images", "full", "--on-bad-image", "skip")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"Skipped 1 unreadable image file(s) in {str(folder_with_a_cut_jpeg)!r}: " + os.path.join(
        "train", "cat", "3.jpg"
    ) + " (damaged or truncated: " in result.stderr
    config = json.load(open(tmp_path / "run" / "config.json"))
    assert config["train_config"]["check_images"] == "full"
    assert config["num_examples"]["train"] + config["num_examples"]["validation"] == 11
