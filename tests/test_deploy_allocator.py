"""deploy/server/allocator.py: the malloc settings of `pushcut serve` are set on glibc and refused when nonsensical."""

from __future__ import annotations

import ctypes
import platform
import sys

import pytest

from pushcut.deploy.server import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_glibc_takes_the_thresholds():
    assert allocator.keep_freed_memory() is True  # (the settings of `pushcut serve`, now also this process's)


def test_without_mallopt_nothing_changes(monkeypatch):
    def no_libc(*args, **kwargs):
        raise OSError("no C library here")

    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert allocator.keep_freed_memory() is False


def test_thresholds_glibc_would_ignore_are_refused():
    for bad in ({"mmap_threshold": 0}, {"mmap_threshold": allocator.MMAP_THRESHOLD_MAX + 1}, {"trim_threshold": -1}):
        with pytest.raises(ValueError, match="mmap_threshold must be in"):
            allocator.keep_freed_memory(**bad)
