"""Every form trains from scratch with the CLI's defaults (its default recipe) on the digits.

For each form: the main head's epoch-1 training loss is clearly below chance (ln(10) =
2.3026 on 10 classes: a network whose class maps died sits exactly there), and the main
head's test accuracy after the default budget is at least 0.90 (360 test digits).
"""

import math

import pytest

from keras_ninception.training.config import TrainConfig
from keras_ninception.training.run import train

pytestmark = pytest.mark.slow

CHANCE = math.log(10)

# (form, TrainConfig fields): the forms `ninception train` builds.
FORMS = [
    ("nin-bn", {"model": "nin"}),
    ("nin-paper", {"model": "nin", "batch_norm": False}),
    ("googlenet-cifar-aux", {"model": "googlenet"}),
    ("googlenet-cifar-no-aux", {"model": "googlenet", "aux_classifiers": False}),
]


@pytest.mark.parametrize("form, fields", FORMS, ids=[form for form, _ in FORMS])
def test_every_form_trains_from_scratch_with_the_default_recipe(form, fields, tmp_path):
    result = train(TrainConfig(**fields, run_dir=str(tmp_path / form), image_summary_freq=0), verbose=0)
    history = result["history"]
    main_loss = history.get("main_loss", history["loss"])
    assert main_loss[0] < CHANCE - 0.1, f"{form}: epoch-1 loss {main_loss[0]:.4f} is at chance ({CHANCE:.4f})"
    test = result["metrics"]["test"]
    assert test["num_examples"] == 360
    assert test["heads"]["main"]["accuracy"] >= 0.90, f"{form}: {test['heads']}"
