"""Tests of the scripts in `benchmarks/`, which are not a package: `load_benchmark` imports one."""

import importlib.util
import os

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "benchmarks")


def benchmark_path(name):
    """The path of `benchmarks/<name>.py`."""
    return os.path.join(BENCHMARKS, f"{name}.py")


def load_benchmark(name):
    """`benchmarks/<name>.py` imported as a module (its `main` does not run)."""
    spec = importlib.util.spec_from_file_location(name, benchmark_path(name))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
