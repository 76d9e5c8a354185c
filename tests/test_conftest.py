"""The fast lane's guard (tests/conftest.py): unmarked tests neither train nor start processes."""

import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.conftest import pytest_collection_modifyitems, refuse_slow_work
from tests.conftest import refuse_writes


class FakeItem:
    def __init__(self, slow):
        self.nodeid = "tests/x.py::test_x"
        self._slow = slow

    def get_closest_marker(self, name):
        return object() if name == "slow" and self._slow else None


def tiny_model():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_an_unmarked_test_cannot_fit_or_spawn():
    model = tiny_model()
    before = keras.Model.__dict__.get("fit"), subprocess.Popen.__init__
    with refuse_slow_work(FakeItem(slow=False)):
        with pytest.raises(AssertionError, match=r"tests/x.py::test_x trains a model .* add @pytest.mark.slow"):
            model.fit(np.zeros((2, 2)), np.zeros((2, 1)), verbose=0)
        with pytest.raises(AssertionError, match=r"tests/x.py::test_x starts a process"):
            subprocess.run([sys.executable, "-c", "pass"])
    # Restored on the way out (to this unmarked test's own guard, set by the conftest hooks).
    assert (keras.Model.__dict__.get("fit"), subprocess.Popen.__init__) == before


@pytest.mark.slow
def test_a_slow_test_may_fit_and_spawn():
    model = tiny_model()
    with refuse_slow_work(FakeItem(slow=True)):
        history = model.fit(np.zeros((2, 2)), np.zeros((2, 1)), epochs=1, verbose=0)
        assert len(history.history["loss"]) == 1
        assert subprocess.run([sys.executable, "-c", "pass"]).returncode == 0


def test_the_hooks_guard_every_unmarked_test():
    with pytest.raises(AssertionError, match=r"test_conftest.py::test_the_hooks_guard_every_unmarked_test trains"):
        tiny_model().fit(np.zeros((2, 2)), np.zeros((2, 1)), verbose=0)


def test_a_file_left_in_the_working_directory_fails_the_test(tmp_path):
    (tmp_path / "old").write_text("")
    with pytest.raises(AssertionError, match=r"the test wrote \[.*False-test.index'\] outside its tmp_path"):
        with refuse_writes({str(tmp_path)}):
            (tmp_path / "False-test.index").write_text("")
    with refuse_writes({str(tmp_path)}):  # reading, rewriting and removing are fine
        (tmp_path / "old").write_text("new")
        (tmp_path / "False-test.index").unlink()


def test_an_alone_test_waits_for_running_tests_and_new_tests_queue_behind_it(tmp_path):
    import threading
    import time

    from tests.conftest import worker_lock

    prefix = str(tmp_path / "run")
    events = []

    def hold(name, alone, seconds):
        with worker_lock(prefix, alone):
            events.append(f"{name} start")
            time.sleep(seconds)
            events.append(f"{name} end")

    running = threading.Thread(target=hold, args=("running", False, 0.6))
    running.start()
    time.sleep(0.2)
    alone = threading.Thread(target=hold, args=("alone", True, 0.4))
    alone.start()
    time.sleep(0.2)  # the alone test now waits, holding the turnstile
    later = threading.Thread(target=hold, args=("later", False, 0.1))
    later.start()
    for thread in (running, alone, later):
        thread.join(timeout=10)
    assert events == ["running start", "running end", "alone start", "alone end", "later start", "later end"]


class MarkedItem:
    def __init__(self, name, *marks):
        self.name, self.marks = name, set(marks)

    def get_closest_marker(self, name):
        return object() if name in self.marks else None


def test_alone_then_long_then_grouped_tests_go_first_each_in_collection_order():
    items = [
        MarkedItem("plain1"), MarkedItem("grouped1", "xdist_group"), MarkedItem("long1", "slow", "long"),
        MarkedItem("alone1", "slow", "alone"), MarkedItem("plain2", "slow"), MarkedItem("long2", "long", "xdist_group"),
        MarkedItem("grouped2", "xdist_group"), MarkedItem("alone2", "alone"),
    ]
    pytest_collection_modifyitems(None, items)
    assert [item.name for item in items] == [
        "alone1", "alone2", "long1", "long2", "grouped1", "grouped2", "plain1", "plain2",
    ]
