"""Shared test settings: quiet TensorFlow, fixed seeds, a fresh Keras state per test, and
the fast lane's guard, and `alone` under pytest-xdist.

The fast lane (`pytest -m "not slow"`) runs no training and starts no process: a test (or a
fixture it sets up) that calls `keras.Model.fit` or starts a subprocess without
`@pytest.mark.slow` fails, naming the mark it needs.
"""

import contextlib
import fcntl
import os
import subprocess

from keras_ninception.cli.main import quiet_tensorflow_logs  # imports no TensorFlow

# Under pytest-xdist, each worker's TensorFlow (and the processes its tests start) gets its
# share of the cores for its thread pools, not all of them: two workers of two threads each on
# 2 cores ran two GoogLeNet trainings 11% slower than one thread each (137.4 s against 121.7 s,
# tests/training/test_forms.py's `googlenet-cifar` pair). TensorFlow reads these at its first
# session (tensorflow/core/common_runtime/process_util.cc); a value set by hand is kept.
if os.environ.get("PYTEST_XDIST_WORKER_COUNT"):
    _share = str(max(1, len(os.sched_getaffinity(0)) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _share)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", _share)

# TensorFlow's load-time C++ lines (oneDNN, CUDA stubs) ignore TF_CPP_MIN_LOG_LEVEL; the CLI's
# helper imports it with stderr on /dev/null, as the commands do. Under KERAS_BACKEND=jax (the
# CI's JAX job) TensorFlow is not imported here.
if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    quiet_tensorflow_logs()
else:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import pytest  # noqa: E402


def shared_run_folder(config):
    """The folder of this pytest run that its pytest-xdist workers share, or None in one
    process: xdist gives each worker `--basetemp RUN/popen-gwN`; RUN is pytest's, pruned by it."""
    basetemp = config.option.basetemp if hasattr(config, "workerinput") else None
    return os.path.dirname(os.path.abspath(basetemp)) if basetemp else None


def pytest_configure(config):
    """Under pytest-xdist: one JAX compilation cache on disk for the run's workers and the
    processes they start (`tests/test_backends.py`).

    JAX compiles every new shape's initializer and step (about 40 s of one GoogLeNet build on
    2 cores); with the cache, a process reuses what another compiled. Child processes read the
    environment; this process, whose JAX is already imported under KERAS_BACKEND=jax, its
    `jax.config`."""
    folder = shared_run_folder(config)
    if folder is None:
        return
    settings = {
        "jax_compilation_cache_dir": os.path.join(folder, "jax-compilation-cache"),
        "jax_persistent_cache_min_compile_time_secs": 0,
        "jax_persistent_cache_min_entry_size_bytes": 0,
    }
    os.environ.update({name.upper(): str(value) for name, value in settings.items()})
    if keras.backend.backend() == "jax":
        import jax

        for name, value in settings.items():
            jax.config.update(name, value)


def schedule_rank(item):
    """Where a test goes in the run's order: `alone` tests, then `long` ones, then tests of an
    `xdist_group` (several tests sharing trained fixtures), then the rest, each in collection
    order.

    pytest-xdist hands each worker the next unit of work (a test, or a whole group) in this
    order when it runs low (`--dist loadgroup`, with `--no-loadscope-reorder` in setup.cfg so
    it keeps the order). Longest first is what keeps the workers finishing together: a
    minutes-long test that started last would leave the other core idle until it ended. An
    `alone` test goes before everything, while nothing long is running that it would wait
    for with a core idle.
    """
    if item.get_closest_marker("alone") is not None:
        return 0
    if item.get_closest_marker("long") is not None:
        return 1
    if item.get_closest_marker("xdist_group") is not None:
        return 2
    return 3


def pytest_collection_modifyitems(config, items):
    items.sort(key=schedule_rank)  # stable: collection order within each rank


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    keras.utils.set_random_seed(0)
    yield
    # Keras' state (layer-name counters, the TF graph, kernel caches) is reset after every
    # test; without `gc.collect()` (`free_memory=False`), which took 0.3-3 s per test here and
    # which Python's own collector does anyway.
    keras.backend.clear_session(free_memory=False)
    # A test that sets Keras' global dtype policy (mixed precision) must not leak it into the
    # next test's arithmetic.
    keras.config.set_dtype_policy("float32")


@contextlib.contextmanager
def refuse_slow_work(item):
    """While a test without the `slow` mark is set up and run, `keras.Model.fit` and
    `subprocess.Popen` raise an AssertionError that names the test."""
    if item.get_closest_marker("slow") is not None:
        yield
        return

    def refuse(what):
        def refused(*args, **kwargs):
            raise AssertionError(
                f"{item.nodeid} {what}, and is not marked slow: add @pytest.mark.slow (the fast "
                "lane `pytest -m 'not slow'` neither trains nor starts processes)."
            )

        return refused

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(keras.Model, "fit", refuse("trains a model (keras.Model.fit)"))
        patch.setattr(subprocess.Popen, "__init__", refuse("starts a process (subprocess.Popen)"))
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    with refuse_slow_work(item):  # fixtures too: a module fixture that trains is set up here
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with refuse_slow_work(item):
        yield


REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _entries(folder):
    try:
        return set(os.listdir(folder))
    except OSError:
        return set()


@contextlib.contextmanager
def refuse_writes(folders):
    """Raises an AssertionError, naming the new entries, when the block leaves new files or
    folders directly in any of `folders`."""
    before = {folder: _entries(folder) for folder in folders}
    yield
    written = {
        os.path.join(folder, name)
        for folder in folders
        for name in _entries(folder) - before[folder]
        if name not in (".pytest_cache", "__pycache__")
    }
    assert not written, f"the test wrote {sorted(written)} outside its tmp_path"


@pytest.fixture(autouse=True)
def _nothing_written_outside_tmp():
    """A test leaves the working directory and the repository's root as it found them.

    Files a test writes there (once, `False-test.*` tf.data cache files from `cache=False`
    read as a path prefix) end up committed; the test that wrote them fails, naming them.
    """
    with refuse_writes({os.getcwd(), REPO}):
        yield


@contextlib.contextmanager
def _flock(path, mode):
    with open(path, "a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Under pytest-xdist, a test marked `alone` runs while no other worker runs a test.

    Such a test measures the machine (resident memory over epochs) or runs several
    TensorFlow processes against each other under deadlines, and a neighbour's load changes
    what it sees (last seen: a resident-memory step of 7.8 MiB, and two workers' losses
    apart by 1.7e-3). A readers-writer lock on files shared by the run's workers: every
    test holds it shared, an `alone` test exclusively; the turnstile makes a waiting `alone`
    test stop new tests from starting, so it is not starved.
    """
    folder = shared_run_folder(item.config)
    if folder is None:  # one process: nothing runs beside
        yield
        return
    with worker_lock(os.path.join(folder, "keras-ninception"), alone=item.get_closest_marker("alone") is not None):
        yield


@contextlib.contextmanager
def worker_lock(prefix, alone):
    """Holds the readers-writer lock on the files `prefix.lock` and `prefix.turnstile`:
    shared, or exclusive if `alone`. A waiting exclusive holder keeps the turnstile, so new
    holders queue behind it."""
    with contextlib.ExitStack() as held:
        with _flock(prefix + ".turnstile", fcntl.LOCK_EX):
            held.enter_context(_flock(prefix + ".lock", fcntl.LOCK_EX if alone else fcntl.LOCK_SH))
        yield
