"""Process-level runtime settings applied once by every entry point.

glibc's malloc serves blocks above a threshold (128 KiB, raised adaptively up to 32 MiB) with fresh ``mmap``
pages and gives freed memory back to the kernel, so each large activation of an LLM forward is page-faulted
(and zeroed by the kernel) again on first touch. On the 2-core benchmark machine a SmolLM2 forward over
32 prompts x 141 tokens took 160,000-380,000 minor page faults; keeping large blocks on the heap and never
trimming it cut that to ~4,000 and the forward from 1.43 s to 1.07-1.19 s (docs/BENCHMARKS.md). This is the
same fix as the usual advice to preload jemalloc/tcmalloc for PyTorch on CPU, done with glibc's own
``mallopt`` so nothing extra is installed. Peak RSS is unchanged (the heap keeps what it already reached).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys

log = logging.getLogger(__name__)

M_TRIM_THRESHOLD = -1  # glibc <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's upper bound for M_MMAP_THRESHOLD on 64-bit systems
TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: 2 GiB of free heap top before trimming = never, here


def _glibc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    libc = ctypes.CDLL(name)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "gnu_get_libc_version") else None


def tune_malloc(enabled: bool = True, libc: ctypes.CDLL | None = None) -> dict[str, int] | None:
    """Keep blocks up to 32 MiB on the heap and never trim it (glibc only); return what was set, or None."""
    if not enabled:
        return None
    libc = libc if libc is not None else _glibc()
    if libc is None:
        log.debug("malloc tuning skipped: not glibc")
        return None
    settings = {"M_MMAP_THRESHOLD": MMAP_THRESHOLD_MAX, "M_TRIM_THRESHOLD": TRIM_THRESHOLD}
    ok = libc.mallopt(ctypes.c_int(M_MMAP_THRESHOLD), ctypes.c_int(MMAP_THRESHOLD_MAX))
    ok &= libc.mallopt(ctypes.c_int(M_TRIM_THRESHOLD), ctypes.c_int(TRIM_THRESHOLD))
    if not ok:
        log.warning("glibc mallopt refused the malloc tuning; continuing with the defaults")
        return None
    return settings


def release_free_heap(libc: ctypes.CDLL | None = None) -> bool:
    """Give the heap's free pages back to the kernel (glibc ``malloc_trim(0)``); False where unavailable.

    Long inference loops over every training row (the teacher export, the selection policies' student pass)
    leave freed score buffers scattered through the heap, which glibc neither reuses nor returns: at ml-1m
    scale (960k rows x 3.7k items) the process grew by ~1.3 GB per 200k rows with or without
    :func:`tune_malloc`, to a 10.6 GB peak, all of it free memory that ``malloc_trim`` hands back
    (docs/BENCHMARKS.md "Memory at ml-1m scale")."""
    libc = libc if libc is not None else _glibc()
    if libc is None or not hasattr(libc, "malloc_trim"):
        return False
    libc.malloc_trim(ctypes.c_size_t(0))
    return True


def resident_mb() -> float | None:
    """This process's resident set size in MB (Linux ``/proc/self/statm``), else None."""
    try:
        with open("/proc/self/statm") as fh:
            pages = int(fh.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


class HeapGuard:
    """Call :meth:`check` once per batch of a long loop: when the process has grown ``slack_mb`` beyond the
    resident size after the last trim, the free heap is released. A loop whose working set fits in the slack
    (an LLM's activations) is never trimmed, so :func:`tune_malloc`'s page reuse is kept; one whose working
    set is larger would be trimmed every batch, so a trim within ``min_batches`` of the previous one doubles
    the slack instead of thrashing."""

    def __init__(self, slack_mb: float = 1024.0, min_batches: int = 10) -> None:
        self.slack_mb = slack_mb
        self.min_batches = min_batches
        self.base = resident_mb()
        self.trims = 0
        self.since_trim = 0

    def check(self) -> None:
        self.since_trim += 1
        now = resident_mb()
        if now is None or self.base is None or now - self.base <= self.slack_mb:
            return
        if self.trims and self.since_trim < self.min_batches:
            self.slack_mb *= 2  # the growth is this loop's working set, not leftover free memory
        if release_free_heap():
            self.trims += 1
        self.since_trim = 0
        self.base = resident_mb()
