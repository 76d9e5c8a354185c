"""`ninception train` on an image folder with an empty JPEG and a text file named .jpg."""

import os
import subprocess
import sys

import numpy as np
import pytest

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
    assert os.path.join("train", "dog", "notes.jpg") + " (not a JPEG or PNG file)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists()

    result = train(folder_with_bad_files, tmp_path, "--on-bad-image", "skip")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Skipped 2 unreadable image file(s)" in result.stderr
    assert (tmp_path / "run" / "model.keras").is_file()
