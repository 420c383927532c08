"""Process-level runtime settings applied once by every entry point.

glibc's malloc serves blocks above a threshold (128 KiB, raised adaptively up to 32 MiB) with fresh ``mmap``
pages and gives freed memory back to the kernel, so each large activation of an LLM forward is page-faulted
(and zeroed by the kernel) again on first touch. On the 2-core benchmark machine a SmolLM2 forward over
32 prompts x 141 tokens took 160,000-380,000 minor page faults; keeping large blocks on the heap and never
trimming it cut that to ~4,000 and the forward from 1.43 s to 1.07-1.19 s (docs/BENCHMARKS.md). This is the
same fix as the usual advice to preload jemalloc/tcmalloc for PyTorch on CPU, done with glibc's own
``mallopt`` so nothing extra is installed. Peak RSS is unchanged (the heap keeps what it already reached).

Threads (:func:`configure_threads`): torch runs its CPU kernels on an OpenMP team of one thread per core, and
OpenMP's threads spin at the end of every parallel region waiting for the next one. When another process uses a
core, one of the team is descheduled, and every one of the thousands of small parallel regions in a SASRec step
waits for it while its partner spins away the CPU time it needs: an ml-100k epoch took 65-147 s instead of
~20 s (docs/BENCHMARKS.md "CPU contention and thread settings"). Waiting passively (``OMP_WAIT_POLICY=PASSIVE``)
gives the core back instead; the thread count itself is a setting (``general.num_threads``).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
from pathlib import Path

from .errors import ConfigError

log = logging.getLogger(__name__)

# The OpenMP variables as the user's environment set them, read when this module is first imported (before any
# entry point's task runs): configure_threads exports its own choices, and a later job of the same process (a
# Hydra multirun) must still tell the user's values from those.
USER_OMP_NUM_THREADS = os.environ.get("OMP_NUM_THREADS")
USER_OMP_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")
USER_GOMP_SPINCOUNT = os.environ.get("GOMP_SPINCOUNT")
# general.thread_wait -> the OpenMP variables it sets (None: unset, the runtime's default). short: an idle thread
# spins for 30,000 iterations (well under a millisecond) and then sleeps. It catches the next of a training step's
# thousands of small parallel regions like spinning does, and gives the core back when another process needs it
# (docs/BENCHMARKS.md "CPU contention and thread settings": on 2 idle cores 1.6x faster than passive, 1.2x slower
# than spinning; next to one other job 1.7x faster than passive, where spinning is 8x slower). GOMP_SPINCOUNT is
# read by GNU OpenMP (libgomp), the runtime of PyTorch's Linux wheels; other runtimes keep their default.
WAIT_POLICIES: dict[str, dict[str, str | None]] = {
    "passive": {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": None},
    "short": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": "30000"},
    "spin": {"OMP_WAIT_POLICY": None, "GOMP_SPINCOUNT": None},
}

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


def _cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The CPU quota of this process's cgroup, rounded up to whole CPUs (``docker run --cpus=2`` on a larger host
    shows every host CPU in the affinity mask but lets the container use two); None without a quota."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]  # cgroup v2: "max 100000" or "200000 100000"
    except (OSError, ValueError):
        try:  # cgroup v1
            quota = (root / "cpu" / "cpu.cfs_quota_us").read_text().strip()
            period = (root / "cpu" / "cpu.cfs_period_us").read_text().strip()
        except OSError:
            return None
    if quota in ("max", "-1"):
        return None
    try:
        return max(1, -(-int(quota) // int(period)))
    except (ValueError, ZeroDivisionError):
        log.debug("unreadable cgroup CPU quota %r / %r: ignored", quota, period)
        return None


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity mask (``taskset``, a scheduler's allocation), capped by a
    cgroup CPU quota (containers)."""
    try:
        count = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: no affinity masks
        count = os.cpu_count() or 1
    limit = _cgroup_cpu_limit()
    return min(count, limit) if limit else count


def resolve_num_threads(setting: object, env: str | None = None) -> tuple[int, str]:
    """``general.num_threads`` as a thread count and where it came from: an integer is used as it is; ``auto`` is
    ``OMP_NUM_THREADS`` when the environment sets it (``env``), else :func:`available_cpus`."""
    if setting != "auto":
        return int(setting), "general.num_threads"  # type: ignore[call-overload]
    if env is not None and env.strip().isdigit() and int(env) >= 1:
        return int(env), "OMP_NUM_THREADS"
    if env is not None:
        log.warning("OMP_NUM_THREADS=%r is not a positive integer: ignored", env)
    return available_cpus(), "the CPUs available"


def configure_threads(num_threads: object = "auto", wait: str = "short") -> dict[str, object]:
    """Set torch's CPU threads (``general.num_threads``) and how idle OpenMP threads wait (``general.thread_wait``)
    for this process; return what was applied. Called first by every entry point, before torch is imported: the
    OpenMP runtime reads ``OMP_WAIT_POLICY`` and ``GOMP_SPINCOUNT`` once, when torch loads it.

    Precedence: an integer ``general.num_threads`` wins over ``OMP_NUM_THREADS`` (and is exported to it, so that
    processes started from this one, such as Lightning's DDP ranks, use the same count); ``auto`` uses
    ``OMP_NUM_THREADS`` when set and otherwise leaves it unset, so that Lightning's DDP on CPU can divide the cores
    among its processes. An ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` in the environment wins over
    ``general.thread_wait``."""
    count, source = resolve_num_threads(num_threads, USER_OMP_NUM_THREADS)
    cpus = available_cpus()
    if count > cpus:
        log.warning("%d torch threads on %d available CPUs (%s): threads will wait on each other", count, cpus, source)
    if source == "general.num_threads":
        if USER_OMP_NUM_THREADS is not None and USER_OMP_NUM_THREADS != str(count):
            log.info("general.num_threads=%d overrides OMP_NUM_THREADS=%s", count, USER_OMP_NUM_THREADS)
        os.environ["OMP_NUM_THREADS"] = str(count)
    elif USER_OMP_NUM_THREADS is None:
        os.environ.pop("OMP_NUM_THREADS", None)  # an earlier job of this process may have exported its own count
    # the user's own OpenMP variables win; otherwise general.thread_wait's (spin: none, the runtime's default)
    user = {"OMP_WAIT_POLICY": USER_OMP_WAIT_POLICY, "GOMP_SPINCOUNT": USER_GOMP_SPINCOUNT}
    wanted = user if any(user.values()) else WAIT_POLICIES[wait]
    if "torch" not in sys.modules:
        for name, value in wanted.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    elif any(os.environ.get(name) != value for name, value in wanted.items()):
        # a later job of a multirun, or a caller that imported torch first: the OpenMP runtime has read it already
        log.warning("general.thread_wait=%s cannot take effect: torch was loaded before the thread settings", wait)
    policy = ", ".join(f"{name}={value}" for name, value in wanted.items() if value is not None) or None
    import torch

    torch.set_num_threads(count)
    applied = {"num_threads": count, "source": source, "wait_policy": policy}
    log.info("torch threads: %d (%s); OpenMP waiting: %s", count, source, policy or "the runtime's default (spin)")
    return applied


BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86 AVX512-BF16 / AMX; Arm's "bf16" feature


CPU_BF16_ENV = "ILORA_CPU_BF16"  # 1: keep bf16 on any CPU (e.g. to halve a large LLM's memory); 0: never


def cpu_bf16_override() -> bool | None:
    """The user's ``ILORA_CPU_BF16`` choice: True (1), False (0) or None (unset: read the CPU flags). Any other
    value is refused rather than ignored, so a typo (``yes``, ``true``) cannot silently run in another precision."""
    value = os.environ.get(CPU_BF16_ENV, "").strip()
    if value in ("", "0", "1"):
        return None if value == "" else value == "1"
    raise ConfigError(
        f"environment variable {CPU_BF16_ENV}={value!r}: use 1 (keep bf16 on this CPU), 0 (fp32) "
        "or leave it unset (decided from the CPU flags)"
    )


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bf16 matmuls natively (``/proc/cpuinfo`` flags). Without AVX512-BF16, AMX or
    Arm's bf16 extension, oneDNN emulates bf16, about 3.5x slower than fp32 on an AVX-512 Xeon (measured), and a
    bf16 teacher runs many times slower. Where cpuinfo cannot be read (macOS, Windows) the request is kept.
    ``ILORA_CPU_BF16=1|0`` overrides the flags."""
    forced = cpu_bf16_override()
    if forced is not None:
        return forced
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return True
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            return not BF16_CPU_FLAGS.isdisjoint(value.split())
    return True
