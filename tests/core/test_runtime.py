"""Entry-point process settings (core/runtime.py) and the yes/no switch check (core/config.py)."""

from __future__ import annotations

import sys

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
