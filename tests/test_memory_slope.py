"""`tests/memory.py`: the slope the memory tests bound reads a leak, not an allocator step."""

import pytest

from tests.memory import leak_bound, theil_sen_slope

# The cache test's RSS growth (MiB) after epochs 2-6 under load: allocator steps, then flat.
STEPS_IN_A_SUITE = [25.7, 32.7, 49.8, 50.3, 50.3]  # a fresh-clone suite, a training beside
STEPS_ALONE_UNDER_LOAD = [24.7, 33.8, 53.1, 53.7, 53.8]  # the same test again, alone, under load

@pytest.mark.parametrize("samples, low, high", [
    ([30.0, 40.9, 41.0, 41.0, 41.0], 0.0, 0.5),         # one step of 11 MiB, then flat (seen in a suite run)
    ([30.0, 32.9, 32.9, 34.1, 34.2, 34.2], 0.0, 1.0),   # the idle machine's creep
    ([29.4, 100.6, 171.8, 243.0, 314.2], 71.1, 71.3),   # the 71.2 MiB split held again every epoch
    ([815.0, 843.0, 871.0, 899.0], 27.9, 28.1),         # the tuner's old 28 MiB a trial
    ([41.0, 30.0, 41.0, 30.0, 41.0], -11.0, 11.0),      # noise either way: bounded by its size
    (STEPS_IN_A_SUITE, 6.0, 7.0),
    (STEPS_ALONE_UNDER_LOAD, 8.0, 8.5),
])
def test_the_slope_reads_a_steady_leak_and_not_one_step(samples, low, high):
    assert low <= theil_sen_slope(samples) <= high


@pytest.mark.parametrize("steps", [STEPS_IN_A_SUITE, STEPS_ALONE_UNDER_LOAD, [30.0, 40.9, 41.0, 41.0, 41.0]])
def test_the_bound_passes_the_allocators_steps_and_fails_the_leak(steps):
    split = 71.2  # the cache test's split, held again each epoch by a leaking pipeline
    assert theil_sen_slope(steps) < leak_bound(split)
    leaking = [value + split * epoch for epoch, value in enumerate(steps)]  # the same steps, plus the leak
    assert theil_sen_slope(leaking) > leak_bound(split)
    half_leak = [value + split / 2 * epoch for epoch, value in enumerate(steps)]  # half the split each epoch
    assert theil_sen_slope(half_leak) > leak_bound(split)


def test_one_sample_is_refused():
    with pytest.raises(ValueError, match="2 or more samples"):
        theil_sen_slope([30.0])
