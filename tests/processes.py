"""Helpers for tests that start real processes: polling, and leaving no process behind."""

import os
import signal
import time


def wait_for(predicate, timeout, interval=0.2):
    """Polls `predicate()` until it is true (returns True) or `timeout` seconds pass (False)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return False


def stop_all(processes, logs=None):
    """Kills every process group still running (each started with `start_new_session=True`)
    and closes the logs."""
    for process in processes.values():
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for log in (logs or {}).values():
        log.close()
