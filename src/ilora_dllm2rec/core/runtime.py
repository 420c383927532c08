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
