"""Every form trains from scratch with the CLI's defaults (its default recipe) on the digits.

For each form: the main head's training loss leaves chance (ln(10) = 2.3026 on 10 classes:
a network whose class maps died sits exactly there, with no gradient) by a clear margin, in
epoch 1 for the batch-normalized forms and within 10 epochs for the paper's NIN (its He-normal
start puts epoch 1 at about 2.35, above chance, and it needs a few epochs to break the
symmetry), and the main head's test accuracy after the default budget is at least 0.90
(360 test digits).
"""

import math

import pytest

from keras_ninception.training.config import TrainConfig
from keras_ninception.training.run import train

pytestmark = pytest.mark.slow

CHANCE = math.log(10)

# (form, TrainConfig fields, epochs within which the loss must leave chance): the forms
# `ninception train` builds at the digits' default 24 px.
FORMS = [
    ("nin-bn", {"model": "nin"}, 1),
    ("nin-paper", {"model": "nin", "batch_norm": False}, 10),
    ("googlenet-cifar-aux", {"model": "googlenet"}, 1),
    ("googlenet-cifar-no-aux", {"model": "googlenet", "aux_classifiers": False}, 1),
]


@pytest.mark.parametrize("form, fields, within", FORMS, ids=[form for form, _, _ in FORMS])
def test_every_form_trains_from_scratch_with_the_default_recipe(form, fields, within, tmp_path):
    result = train(TrainConfig(**fields, run_dir=str(tmp_path / form), image_summary_freq=0), verbose=0)
    history = result["history"]
    main_loss = history.get("main_loss", history["loss"])
    assert min(main_loss[:within]) < CHANCE - 0.1, f"{form}: losses {main_loss[:within]} stay at chance ({CHANCE:.4f})"
    test = result["metrics"]["test"]
    assert test["num_examples"] == 360
    assert test["heads"]["main"]["accuracy"] >= 0.90, f"{form}: {test['heads']}"
