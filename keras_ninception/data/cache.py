"""Cache policy: which splits `load_dataset` keeps decoded in memory, in files, or not at all.

`cache="auto"` (the default) estimates each split's decoded size, the bytes that
`tf.data.Dataset.cache()` would hold:

    images x height x width x channels   (uint8: one byte a value)

with `height x width` the cached image size: `image_size` for splits cached after the
resize, the mean size of the first `SIZE_SAMPLE` decoded images for a training split
cached before its random-resized crop (`augment="inception"`, which reads the original
image). The splits are taken in the order train, validation, test, and each is cached in
memory when its estimate fits in what is left of the budget, else not cached (decoded
again each epoch). The budget is a quarter of the available memory (`psutil`'s
`virtual_memory().available`, or `MemAvailable` of `/proc/meminfo`); `load_dataset`'s
`cache_budget` overrides it.

The other policies: `"memory"` (`cache()` every split, whatever its size), `"none"`,
and a path prefix (`cache(f"{path}-{split}")`: tf.data's file cache, written during the
first epoch and read in the next ones).
"""

import dataclasses
import logging
import os

from keras_ninception.options import CACHE_POLICIES

# Share of the available memory that `"auto"` may fill with cached splits.
AUTO_BUDGET_FRACTION = 0.25
# Decoded images sampled to estimate the size of a split cached at the source's own size.
SIZE_SAMPLE = 16

logger = logging.getLogger(__name__)


def available_memory_bytes():
    """The memory available to new allocations, in bytes.

    `psutil.virtual_memory().available` when psutil is installed, else `MemAvailable` of
    `/proc/meminfo` (Linux), else None.
    """
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        return int(psutil.virtual_memory().available)
    try:
        with open("/proc/meminfo") as file:
            for line in file:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024  # the file counts kB
    except OSError:
        pass
    return None


def default_cache_budget():
    """`AUTO_BUDGET_FRACTION` of `available_memory_bytes()`; 0 (cache nothing) when unknown."""
    available = available_memory_bytes()
    return 0 if available is None else int(available * AUTO_BUDGET_FRACTION)


def format_bytes(num_bytes):
    """`"1.5 GB"`, `"820.0 MB"`, `"12.3 kB"`: decimal units."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{int(num_bytes)} B"


@dataclasses.dataclass(frozen=True)
class SplitCache:
    """The cache chosen for one split.

    Attributes:
        split: `"train"`, `"validation"` or `"test"`.
        target: `"memory"`, `"none"`, or the file path prefix.
        estimated_bytes: the decoded size of the split (see the module docstring), or
            None when not estimated (explicit policies).
        reason: why, in words, for the log.
    """

    split: str
    target: str
    estimated_bytes: int | None
    reason: str

    def describe(self):
        """`"train: in memory (1,000 x 32 x 32 x 3 = 3.1 MB, within the budget ...)"`."""
        where = {"memory": "in memory", "none": "not cached"}.get(self.target, f"files {self.target}-{self.split}*")
        return f"{self.split}: {where} ({self.reason})"


def plan_cache(policy, sizes, budget=None):
    """Chooses each split's cache.

    Args:
        policy: `"auto"`, `"memory"`, `"none"`, or a file path prefix (str).
        sizes: `{split: (num_images, height, width, channels)}` in the order the budget is
            spent (train first); the cached image shape of each split, for `"auto"`.
        budget: bytes `"auto"` may hold in memory; None for `default_cache_budget()`.

    Returns:
        `{split: SplitCache}`, same keys as `sizes`.
    """
    if policy in ("memory", "none"):
        reason = f"cache={policy!r}"
        return {split: SplitCache(split, policy, None, reason) for split in sizes}
    if policy != "auto":
        return {split: SplitCache(split, policy, None, "tf.data file cache") for split in sizes}
    if budget is None:
        budget = default_cache_budget()
        budget_words = f"{format_bytes(budget)}, a quarter of the available memory"
    else:
        budget_words = f"{format_bytes(budget)}, the given budget"
    plan, left = {}, budget
    for split, (count, height, width, channels) in sizes.items():
        estimate = int(count * height * width * channels)
        shape = f"{count:,} x {height} x {width} x {channels} bytes = {format_bytes(estimate)}"
        if estimate <= left:
            left -= estimate
            plan[split] = SplitCache(split, "memory", estimate, f"{shape}, within the budget of {budget_words}")
        else:
            plan[split] = SplitCache(
                split, "none", estimate,
                f"{shape}, over what is left of the budget of {budget_words}: decoded again each epoch",
            )
    return plan


def log_plan(plan):
    """Logs each split's choice (logger `keras_ninception`, level INFO)."""
    for entry in plan.values():
        logger.info("Cache %s", entry.describe())


def validate_cache(cache):
    """Normalizes `load_dataset`'s `cache`: `True` -> `"memory"`, `False` -> `"none"`.

    Returns:
        `"auto"`, `"memory"`, `"none"`, or a path prefix (str) whose directory exists.

    Raises:
        ValueError: anything else, or a path whose directory does not exist.
    """
    if cache is True:
        return "memory"
    if cache is False:
        return "none"
    if cache in CACHE_POLICIES:
        return cache
    if not isinstance(cache, (str, os.PathLike)) or not os.fspath(cache):
        raise ValueError(
            f"`cache` must be one of {CACHE_POLICIES}, True (memory), False (none), or a file "
            f"path prefix. Received: cache={cache!r}"
        )
    cache_dir = os.path.dirname(os.path.abspath(os.fspath(cache)))
    if not os.path.isdir(cache_dir):
        raise ValueError(
            f"The directory of the cache file, {cache_dir!r}, does not exist. Create it or "
            f"pass another path. Received: cache={cache!r}"
        )
    return os.fspath(cache)
