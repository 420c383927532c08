"""``torch.load`` of files a user can point at: one line naming the file when it is not what it should be.

For a file its weights-only unpickler refuses, PyTorch's own message runs to ~700 characters and advises
re-running with ``weights_only=False``, which executes whatever the file contains: dangerous advice for a file of
unknown origin. Every ``torch.load`` in the package goes through :func:`load_torch_file` instead, which turns any
failure into an :class:`ArtifactError` (``error: ...`` and exit status 2 at the entry points) naming the file, what
it is not, and what to do.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .errors import ArtifactError

_GLOBAL = re.compile(r"Unsupported global: GLOBAL ([\w.]+)")


def _reason(exc: Exception, weights_only: bool) -> str:
    """Why the file could not be loaded, in a few words (PyTorch's text is long and names the dangerous fix)."""
    text = str(exc)
    found = _GLOBAL.search(text)
    if found:  # only the weights-only unpickler refuses a global: say so, it is the answer to "why not load it?"
        return f"it holds a pickled object ({found.group(1)}), and objects are never unpickled (unsafe)"
    refused = " (objects are never unpickled, for safety)" if weights_only else ""
    if isinstance(exc, EOFError):
        return f"it is empty or cut short{refused}"
    if weights_only:
        return f"it is corrupt or in another format{refused}"
    detail = " ".join(text.split())[:80]  # a full unpickler's reasons are short ("invalid load key, 'x'.")
    return f"it is corrupt or in another format ({type(exc).__name__}: {detail})" if detail else type(exc).__name__


def load_torch_file(path: str | Path, *, kind: str, remedy: str, weights_only: bool = True) -> Any:
    """``torch.load(path)`` on the CPU; any failure becomes one line: ``{path} is not a {kind}: ...; {remedy}``.

    ``weights_only=True`` (tensors, containers, primitives) is the default and must stay so for files of unknown
    origin; ``False`` only where a Lightning checkpoint needs more.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{kind} {path} not found; {remedy}")
    try:
        return torch.load(path, map_location="cpu", weights_only=weights_only)
    except MemoryError:
        raise
    except Exception as exc:  # any failure to unpickle means this file is unusable: say which and why, briefly
        raise ArtifactError(f"{path} is not a {kind}: {_reason(exc, weights_only)}; {remedy}") from exc


def load_checkpoint(
    path: str | Path,
    *,
    kind: str,
    remedy: str,
    weights_only: bool = True,
    required: Sequence[str] = ("state_dict",),
) -> dict:
    """:func:`load_torch_file` for a checkpoint: the result must be a mapping holding the ``required`` keys."""
    checkpoint = load_torch_file(path, kind=kind, remedy=remedy, weights_only=weights_only)
    if not isinstance(checkpoint, dict):
        holds = type(checkpoint)
        raise ArtifactError(f"{path} is not a {kind}: it holds a {holds.__module__}.{holds.__qualname__}; {remedy}")
    missing = [key for key in required if key not in checkpoint]
    if missing:
        raise ArtifactError(f"{path} is not a {kind}: it has no {', '.join(missing)}; {remedy}")
    return checkpoint
