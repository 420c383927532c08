"""Write a file or build a folder so that no reader ever sees it half-done.

Both work under a temporary name in the destination's own folder (same file system, so ``os.replace`` is
atomic) and remove it on failure, so the destination keeps its previous content. Every file and folder the
package writes for others to read goes through these two helpers.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def _temp_name(final: Path, kind: str = "tmp") -> Path:
    """A hidden sibling of ``final``; pid plus random so concurrent writers (DDP ranks, parallel runs) never collide."""
    return final.with_name(f".{final.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    The caller creates the temporary file (so it gets the usual permissions, not a private temp file's).
    On error it is removed and ``path`` keeps its previous content.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_dir(final: str | Path, fill: Callable[[Path], None], is_complete: Callable[[Path], bool]) -> Path:
    """Build folder ``final`` by ``fill(tmp)`` in a temporary folder, then rename it into place.

    ``is_complete(folder)`` tells a finished folder from a leftover: a folder that another process (e.g. a DDP
    rank) finished meanwhile is kept and ours discarded; an unfinished leftover is replaced. On error the
    temporary folder is removed. Returns ``final``.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(final)
    tmp.mkdir()
    try:
        fill(tmp)
        if is_complete(final):
            return final  # another process finished the same folder first: keep it
        if final.exists():  # leftover of an interrupted attempt: move it aside first, then delete it
            trash = _temp_name(final, "old")
            os.replace(final, trash)
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.replace(tmp, final)
        except OSError:
            if not is_complete(final):  # lost a race to a complete folder: fine; otherwise fail
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final
