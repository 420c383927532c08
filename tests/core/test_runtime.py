"""Entry-point process settings (core/runtime.py: malloc, threads) and the yes/no switch check (core/config.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ilora_dllm2rec.core import runtime


class FakeLibc:
    def __init__(self, result: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.result = result

    def mallopt(self, param, value) -> int:
        self.calls.append((param.value, value.value))
        return self.result


def test_tune_malloc_sets_both_thresholds() -> None:
    libc = FakeLibc()
    settings = runtime.tune_malloc(True, libc=libc)
    assert libc.calls == [(-3, 32 * 1024 * 1024), (-1, 2**31 - 1)]  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD
    assert settings == {"M_MMAP_THRESHOLD": 32 * 1024 * 1024, "M_TRIM_THRESHOLD": 2**31 - 1}


def test_tune_malloc_disabled_or_refused_changes_nothing(caplog) -> None:
    libc = FakeLibc()
    assert runtime.tune_malloc(False, libc=libc) is None and libc.calls == []
    assert runtime.tune_malloc(True, libc=FakeLibc(result=0)) is None
    assert "refused" in caplog.text


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_tune_malloc_on_this_linux() -> None:
    assert runtime._glibc() is not None
    assert runtime.tune_malloc(True) is not None


class TrimLibc:
    def __init__(self) -> None:
        self.trims = 0

    def malloc_trim(self, pad) -> int:
        self.trims += 1
        return 1


def test_release_free_heap_calls_malloc_trim() -> None:
    libc = TrimLibc()
    assert runtime.release_free_heap(libc) is True and libc.trims == 1
    assert runtime.release_free_heap(object()) is False  # no malloc_trim: nothing to do
    if sys.platform.startswith("linux"):
        assert runtime.release_free_heap() is True  # the real glibc
        assert runtime.resident_mb() > 10


def test_heap_guard_trims_only_past_its_slack(monkeypatch) -> None:
    """Growth within the slack (an LLM's working set) is left alone; past it the heap is released once and the
    new base is what remains."""
    rss = iter([1000.0, 1500.0, 2100.0, 1200.0, 1900.0, 2300.0, 1300.0])
    monkeypatch.setattr(runtime, "resident_mb", lambda: next(rss))
    released = []
    monkeypatch.setattr(runtime, "release_free_heap", lambda: released.append(1) or True)
    guard = runtime.HeapGuard(slack_mb=1024)  # base 1000
    guard.check()  # 1500: within
    assert released == []
    guard.check()  # 2100: trim, base -> 1200
    assert released == [1] and guard.base == 1200.0
    guard.check()  # 1900: within the new base's slack
    assert released == [1]
    guard.check()  # 2300: trim, base -> 1300
    assert released == [1, 1] and guard.trims == 2 and guard.base == 1300.0


def test_heap_guard_backs_off_when_the_growth_is_a_working_set(monkeypatch) -> None:
    """Growth back past the slack right after a trim is the loop's own working set: the slack doubles."""
    rss = iter([1000.0] + [2100.0, 1000.0] * 4)
    monkeypatch.setattr(runtime, "resident_mb", lambda: next(rss))
    monkeypatch.setattr(runtime, "release_free_heap", lambda: True)
    guard = runtime.HeapGuard(slack_mb=1024, min_batches=10)
    for _ in range(3):
        guard.check()
    assert guard.trims == 2 and guard.slack_mb == 2048  # the second trim came one batch after the first
    guard.check()  # 2100 - 1000 = 1100 < 2048: no more trims
    assert guard.trims == 2


# -- threads (general.num_threads, general.thread_wait) -----------------------------------------------------------
def test_an_integer_num_threads_wins_over_the_environment() -> None:
    assert runtime.resolve_num_threads(3, env="1") == (3, "general.num_threads")


def test_auto_uses_omp_num_threads_else_the_available_cpus(caplog) -> None:
    assert runtime.resolve_num_threads("auto", env="1") == (1, "OMP_NUM_THREADS")
    assert runtime.resolve_num_threads("auto", env=None) == (runtime.available_cpus(), "the CPUs available")
    assert runtime.resolve_num_threads("auto", env="lots") == (runtime.available_cpus(), "the CPUs available")
    assert "OMP_NUM_THREADS='lots'" in caplog.text


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "200000 100000\n"}, 2),  # cgroup v2, docker run --cpus=2
        ({"cpu.max": "150000 100000\n"}, 2),  # 1.5 CPUs: rounded up, a thread is not split
        ({"cpu.max": "max 100000\n"}, None),  # no quota
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1),  # cgroup v1
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({}, None),  # no cgroup files
    ],
)
def test_a_container_cpu_quota_limits_the_cpus(tmp_path, files, expected) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert runtime._cgroup_cpu_limit(tmp_path) == expected


def test_available_cpus_is_within_the_affinity_mask() -> None:
    assert 1 <= runtime.available_cpus() <= (os.cpu_count() or 1)


PROBE = (
    "import os, sys; from ilora_dllm2rec.core.runtime import configure_threads; "
    "applied = configure_threads(*sys.argv[1:2] or ['auto'], *sys.argv[2:3]); import torch; "
    "print(torch.get_num_threads(), os.environ.get('OMP_NUM_THREADS'), os.environ.get('OMP_WAIT_POLICY'), "
    "os.environ.get('GOMP_SPINCOUNT'))"
)


def _probe(env: dict[str, str], *args: str) -> list[str]:
    """configure_threads in a fresh interpreter (the OpenMP runtime reads its variables when torch loads)."""
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    clean["PYTHONPATH"] = str(Path(runtime.__file__).parents[2]) + os.pathsep + clean.get("PYTHONPATH", "")
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], env={**clean, **env}, capture_output=True, text=True, check=True
    )
    return proc.stdout.split()


def test_threads_are_set_before_torch_loads_with_the_environment_first() -> None:
    # an integer: torch uses it and child processes (Lightning's DDP ranks) inherit it; idle threads spin briefly
    assert _probe({"OMP_NUM_THREADS": "2"}, "1") == ["1", "1", "None", "30000"]
    assert _probe({}, "1", "passive") == ["1", "1", "PASSIVE", "None"]
    # auto: the environment's count, and the environment's OpenMP waiting over general.thread_wait
    assert _probe({"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "ACTIVE"}, "auto") == ["1", "1", "ACTIVE", "None"]
    assert _probe({"GOMP_SPINCOUNT": "5"}, "1", "passive") == ["1", "1", "None", "5"]
    # auto without OMP_NUM_THREADS leaves it unset (Lightning's DDP divides the cores); spin = OpenMP's default
    count, env_count, policy, spincount = _probe({}, "auto", "spin")
    assert int(count) == runtime.available_cpus() and env_count == "None" and policy == spincount == "None"
