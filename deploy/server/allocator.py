"""glibc's malloc in a process that serves a model: keep the memory a forward pass frees for the next one.

A forward pass allocates and frees the same intermediate tensors every time. By default glibc maps allocations above
its mmap threshold (128 KiB, raised only to the sizes it has seen freed) as fresh pages and unmaps them when freed, and
returns free memory at the top of the heap to the system beyond its trim threshold: so every pass faults its pages in
again. On the 2-core benchmark machine a batch-4 pass of the small preset took 34-48 ms in the server process against
28-38 ms with the thresholds below (batch 1 unchanged; docs/benchmarks.md, "Policy server"). The price is memory kept
by the process: at most ``trim_threshold`` bytes of free heap.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD = -1  # glibc malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's largest on 64-bit systems


def keep_freed_memory(mmap_threshold: int = MMAP_THRESHOLD_MAX, trim_threshold: int = 256 << 20) -> bool:
    """Serve allocations below ``mmap_threshold`` bytes from the heap and keep up to ``trim_threshold`` bytes of it
    free instead of returning them to the system, for the whole process. True when set; False where the C library
    is not glibc (nothing changes there)."""
    if not 0 < mmap_threshold <= MMAP_THRESHOLD_MAX or trim_threshold < 0:
        raise ValueError(f"mmap_threshold must be in (0, {MMAP_THRESHOLD_MAX}] and trim_threshold >= 0, got "
                         f"{mmap_threshold}, {trim_threshold}")  # fmt: skip
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # no libc to load, or one without mallopt (musl)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(M_TRIM_THRESHOLD, trim_threshold))
