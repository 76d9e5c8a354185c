"""Fixtures of the deployment tests: two tiny trained runs and their exports.

- `digits_run`: NIN on the embedded digits at 12 px, gray (1 channel), classes "0".."9";
  2 epochs, about 0.98 test accuracy (about 30 s on 2 cores).
- `rgb_run`: NIN on a small RGB image folder at 16 px, classes "cat", "dog", "frog"
  (noisy constant colours); 3 epochs (about 15 s).
Both are trained enough that their probabilities differ from image to image, so comparing
two runtimes' probabilities can fail. They are shared by every test of the session.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from keras_ninception import TrainConfig, train
from tests.data.images import CLASS_VALUES, write_image

ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


def run_python(code, *args, timeout=300):
    """Runs `code` in a fresh interpreter (the worktree's package first on the path)."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**ENV, "PYTHONPATH": os.pathsep.join([root, ENV.get("PYTHONPATH", "")])}
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def ninception(*args, timeout=300):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {**ENV, "PYTHONPATH": os.pathsep.join([root, ENV.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "keras_ninception.cli.main", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, env=env,
    )


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("runs") / "nin-digits")
    train(TrainConfig(model="nin", image_size=12, epochs=2, batch_size=32, precision="float32", run_dir=run_dir), verbose=0)
    return run_dir


@pytest.fixture(scope="session")
def rgb_run(tmp_path_factory):
    """NIN on 3 classes of noisy constant-colour 30x40 RGB images."""
    root = tmp_path_factory.mktemp("rgb") / "images"
    rng = np.random.default_rng(0)
    for split, count in (("train", 30), ("test", 3)):
        for class_name, value in CLASS_VALUES.items():
            for index in range(count):
                noise = rng.integers(-40, 41, (30, 40, 3))
                image = np.clip(value + noise, 0, 255).astype(np.uint8)
                write_image(str(root / split / class_name / f"{index}.png"), image)
    run_dir = str(tmp_path_factory.mktemp("runs") / "nin-rgb")
    train(
        TrainConfig(
                model="nin", dataset=str(root), image_size=16, epochs=3, batch_size=8, precision="float32",
                run_dir=run_dir,
            ),
        verbose=0,
    )
    return run_dir
