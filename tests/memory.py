"""The growth rate of a series of resident-memory samples, robust to the allocator's steps.

Resident memory after each epoch or trial does not rise smoothly: glibc keeps freed memory
in its arenas and grows them in steps of several MiB, at moments that depend on how the
threads were scheduled (measured: 29.4, 30.0, 40.9, 41.0 MiB after four epochs on a loaded
machine, 30.0, 32.9, 32.9, 34.1, 34.2, 34.2 on an idle one, for the same pipeline). A check on
two endpoints reads one such step as a leak. A leak grows the memory at every sample, so the
tests bound the Theil-Sen slope instead: the median of the slopes between every pair of
samples, which one step moves little and a steady leak sets exactly.

The bound sits between the two, in units of the leak a test guards against
(`leak_bound`): a quarter of it. Under load the steps add up to more than the idle creep:
25.7, 32.7, 49.8, 50.3, 50.3 MiB (slope 6.5) and 24.7, 33.8, 53.1, 53.7, 53.8 (slope 8.2)
after epochs 2-6 of the cache test, with a training beside, where the leak it guards
against, the 71.2 MiB split held again, adds 71.2 every epoch.
"""

import numpy as np
from scipy import stats


def theil_sen_slope(samples):
    """The median pairwise slope of `samples` (MiB per sample step), `scipy.stats.theilslopes`;
    raises ValueError for fewer than two samples (where scipy returns NaN)."""
    values = np.asarray(samples, dtype="float64")
    if values.size < 2:
        raise ValueError(f"theil_sen_slope: needs 2 or more samples, got {values.size}")
    return float(stats.theilslopes(values).slope)


def leak_bound(leak_mib):
    """The largest slope (MiB per sample) a memory test accepts, given the smallest leak it
    guards against (MiB per sample): a quarter of it, 4x below the leak and above the
    allocator's steps seen under load (up to 8.2 MiB an epoch, above)."""
    return leak_mib / 4
