"""Polling helper for tests of threaded robot code (emulators, physics threads)."""

import time


def wait_until(predicate, timeout: float = 2.0) -> bool:
    """Poll ``predicate`` every 10 ms until it is true or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())
