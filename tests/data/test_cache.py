"""The cache policy (keras_ninception.data.cache) and what load_dataset does with it."""

import logging

import numpy as np
import pytest

from keras_ninception.data import cache
from keras_ninception.data import load_dataset

# The digits at the default 32 px, 1 channel: 1,293 train, 144 validation, 360 test images.
DIGITS_BYTES = {"train": 1293 * 32 * 32, "validation": 144 * 32 * 32, "test": 360 * 32 * 32}


@pytest.mark.parametrize(
    "given,expected", [(True, "memory"), (False, "none"), ("auto", "auto"), ("memory", "memory"), ("none", "none")]
)
def test_validate_cache(given, expected):
    assert cache.validate_cache(given) == expected


def test_plan_cache_spends_the_budget_in_split_order():
    sizes = {"train": (1000, 10, 10, 3), "validation": (100, 10, 10, 3), "test": (50, 10, 10, 3)}
    # train 300,000 bytes, validation 30,000, test 15,000; budget 40,000: train is over it,
    # validation fits (10,000 left), test does not.
    plan = cache.plan_cache("auto", sizes, budget=40_000)
    assert {split: entry.target for split, entry in plan.items()} == {
        "train": "none", "validation": "memory", "test": "none"
    }
    assert [entry.estimated_bytes for entry in plan.values()] == [300_000, 30_000, 15_000]
    assert plan["train"].describe() == (
        "train: not cached (1,000 x 10 x 10 x 3 bytes = 300.0 kB, over what is left of the "
        "budget of 40.0 kB, the given budget: decoded again each epoch)"
    )
    assert plan["validation"].describe().startswith("validation: in memory (100 x 10 x 10 x 3 bytes = 30.0 kB, within")
    assert {e.target for e in cache.plan_cache("auto", sizes, budget=345_000).values()} == {"memory"}
    assert {e.target for e in cache.plan_cache("memory", sizes).values()} == {"memory"}
    assert {e.target for e in cache.plan_cache("none", sizes).values()} == {"none"}
    assert {e.target for e in cache.plan_cache("/tmp/c", sizes).values()} == {"/tmp/c"}


def test_default_budget_is_a_quarter_of_available_memory(monkeypatch):
    monkeypatch.setattr(cache, "available_memory_bytes", lambda: 8_000_000_000)
    assert cache.default_cache_budget() == 2_000_000_000
    monkeypatch.setattr(cache, "available_memory_bytes", lambda: None)
    assert cache.default_cache_budget() == 0


def test_available_memory_matches_proc_meminfo():
    with open("/proc/meminfo") as file:
        kilobytes = next(int(line.split()[1]) for line in file if line.startswith("MemAvailable:"))
    # Both read the kernel's MemAvailable; the machine's use moves between the two reads.
    assert abs(cache.available_memory_bytes() - kilobytes * 1024) < 0.1 * kilobytes * 1024


def test_load_dataset_auto_cache_within_a_budget(caplog):
    # 600,000 bytes: train (1,324,032) is over; validation (147,456) fits, leaving 452,544;
    # test (368,640) fits.
    with caplog.at_level(logging.INFO, logger="keras_ninception"):
        splits = load_dataset("digits", cache="auto", cache_budget=600_000, augment="none")
    assert [line.split(" (")[0] for line in splits.cache_plan.values()] == [
        "train: not cached", "validation: in memory", "test: in memory"
    ]
    assert "1,293 x 32 x 32 x 1 bytes = 1.3 MB" in splits.cache_plan["train"]
    assert [r.getMessage().split(" (")[0] for r in caplog.records if r.name == "keras_ninception.data.cache"] == [
        "Cache train: not cached", "Cache validation: in memory", "Cache test: in memory"
    ]
    # Same batches whatever is cached (the budget also bounds the shuffle buffer: 585 images).
    cached = load_dataset("digits", cache="memory", cache_budget=600_000, augment="none")
    for split in ("train", "validation", "test"):
        for (x1, y1), (x2, y2) in zip(getattr(splits, split), getattr(cached, split), strict=True):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)


def test_train_config_cache_and_eval_crop_fields():
    from keras_ninception.training.config import EXECUTION_FIELDS, TrainConfig

    config = TrainConfig(cache="none", eval_crop=0.875, augment="inception", color_distortion=True).validate()
    assert (config.cache, config.eval_crop, config.color_distortion) == ("none", 0.875, True)
    assert "cache" in EXECUTION_FIELDS  # where images are kept is not what a run trains
    for field, value in (("eval_crop", 0), ("eval_crop", 1.5), ("cache", ""), ("color_distortion", "yes")):
        with pytest.raises(ValueError, match=f"Received: {field}={value!r}"):
            TrainConfig(**{field: value}).validate()
