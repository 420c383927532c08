"""core/atomic.py: a failed write or build leaves the old file/folder and no temporary one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ilora_dllm2rec.core import atomic
from ilora_dllm2rec.core.atomic import atomic_dir, atomic_path


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_atomic_path_writes_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "a.json"  # the parent folder is created
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".") and not tmp.exists()
        tmp.write_text("new")
    assert target.read_text() == "new" and _names(target.parent) == ["a.json"]
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert target.stat().st_mode == plain.stat().st_mode  # the usual permissions, not a private temp file's


@pytest.mark.parametrize("written", [False, True])
def test_atomic_path_failure_keeps_the_old_file(tmp_path: Path, written: bool) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(OSError, match="disk full"), atomic_path(target) as tmp:
        if written:
            tmp.write_text("half")  # a partly written temporary file is removed too
        raise OSError("disk full")
    assert target.read_text() == "old" and _names(tmp_path) == ["a.txt"]


def test_atomic_path_failed_rename_removes_the_temporary_file(tmp_path: Path, monkeypatch) -> None:
    def refuse(src, dst):
        raise OSError("cross-device")

    monkeypatch.setattr(atomic.os, "replace", refuse)
    with pytest.raises(OSError, match="cross-device"), atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("new")
    assert _names(tmp_path) == []


def _done(folder: Path) -> bool:
    return (folder / "done.json").is_file()


def _fill(content: str):
    def fill(tmp: Path) -> None:
        (tmp / "data.txt").write_text(content)
        (tmp / "done.json").write_text(json.dumps({"content": content}))  # the completion mark, last

    return fill


def test_atomic_dir_builds_the_folder(tmp_path: Path) -> None:
    final = tmp_path / "cache" / "entry"
    assert atomic_dir(final, _fill("new"), _done) == final
    assert (final / "data.txt").read_text() == "new" and _names(final.parent) == ["entry"]


def test_atomic_dir_failure_keeps_the_old_folder(tmp_path: Path) -> None:
    final = tmp_path / "entry"
    atomic_dir(final, _fill("old"), _done)

    def boom(tmp: Path) -> None:
        (tmp / "data.txt").write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_dir(final, boom, _done)
    assert (final / "data.txt").read_text() == "old" and _names(tmp_path) == ["entry"]


def test_atomic_dir_keeps_a_complete_folder_and_replaces_a_leftover(tmp_path: Path) -> None:
    final = tmp_path / "entry"
    atomic_dir(final, _fill("first"), _done)
    atomic_dir(final, _fill("second"), _done)  # another writer (a DDP rank) finished first: keep its folder
    assert (final / "data.txt").read_text() == "first" and _names(tmp_path) == ["entry"]
    (final / "done.json").unlink()  # now an interrupted attempt
    atomic_dir(final, _fill("third"), _done)
    assert (final / "data.txt").read_text() == "third" and _names(tmp_path) == ["entry"]
