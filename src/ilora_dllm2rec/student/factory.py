"""Build a student model from the ``student`` config group (conf/student/*.yaml)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ilora_dllm2rec.core.errors import ConfigError, DataError
from ilora_dllm2rec.student.base import SequentialRecommender
from ilora_dllm2rec.student.caser import Caser
from ilora_dllm2rec.student.gru4rec import GRU4Rec
from ilora_dllm2rec.student.sasrec import POSITION_MODES, SASRec


def _int(cfg: Mapping[str, Any], key: str, default: int | None = None, minimum: int = 1) -> int:
    value = cfg.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"student.{key} must be an integer, got {value!r}") from None
    if number < minimum or number != value:
        raise ConfigError(f"student.{key} must be an integer >= {minimum}, got {value!r}")
    return number


def _dropout(cfg: Mapping[str, Any], default: float) -> float:
    value = float(cfg.get("dropout", default))
    if not 0.0 <= value < 1.0:
        raise ConfigError(f"student.dropout must be in [0, 1), got {value}")
    return value


def _sasrec(cfg: Mapping[str, Any], num_items: int, max_seq_len: int, head: str) -> SequentialRecommender:
    emb, hidden = _int(cfg, "emb_size", 64), _int(cfg, "hidden_size", 64)
    if emb != hidden:
        raise ConfigError(f"SASRec needs student.emb_size == student.hidden_size, got {emb} and {hidden}")
    return SASRec(
        num_items,
        hidden_size=hidden,
        max_seq_len=max_seq_len,
        num_blocks=_int(cfg, "num_blocks", 2, minimum=0),
        num_heads=_int(cfg, "num_heads", 1),
        dropout=_dropout(cfg, 0.2),
        head=head,
        positions=_positions(cfg),
    )


def _positions(cfg: Mapping[str, Any]) -> str:
    # missing key = a checkpoint from before the option existed: those were trained with "absolute"
    value = str(cfg.get("positions", "absolute"))
    if value not in POSITION_MODES:
        raise ConfigError(f"student.positions must be one of {list(POSITION_MODES)}, got {value!r}")
    return value


def _gru4rec(cfg: Mapping[str, Any], num_items: int, max_seq_len: int, head: str) -> SequentialRecommender:
    return GRU4Rec(
        num_items,
        emb_size=_int(cfg, "emb_size", 64),
        hidden_size=_int(cfg, "hidden_size", 64),
        max_seq_len=max_seq_len,
        num_layers=_int(cfg, "num_layers", 1),
        dropout=_dropout(cfg, 0.1),
        head=head,
    )


def _caser(cfg: Mapping[str, Any], num_items: int, max_seq_len: int, head: str) -> SequentialRecommender:
    emb, hidden = _int(cfg, "emb_size", 64), _int(cfg, "hidden_size", 64)
    if emb != hidden:
        raise ConfigError(f"Caser needs student.emb_size == student.hidden_size, got {emb} and {hidden}")
    heights = list(cfg.get("filter_heights", (2, 3, 4)))
    if not heights or any(int(h) != h or not 1 <= int(h) <= max_seq_len for h in heights):
        raise ConfigError(
            f"student.filter_heights must be non-empty integers in [1, max_seq_len={max_seq_len}], got {heights}"
        )
    return Caser(
        num_items,
        hidden_size=hidden,
        max_seq_len=max_seq_len,
        num_horizontal=_int(cfg, "num_horizontal", 16),
        filter_heights=[int(h) for h in heights],
        num_vertical=_int(cfg, "num_vertical", 4),
        dropout=_dropout(cfg, 0.2),
        head=head,
    )


STUDENTS: dict[str, Callable[[Mapping[str, Any], int, int, str], SequentialRecommender]] = {
    "sasrec": _sasrec,
    "gru4rec": _gru4rec,
    "caser": _caser,
}


def build_student(student_cfg: Mapping[str, Any], num_items: int) -> SequentialRecommender:
    """``student_cfg`` is the ``student`` group (DictConfig or dict); ``num_items`` = N of the data set."""
    name = str(student_cfg.get("name", "")).lower()
    if name not in STUDENTS:
        raise ConfigError(f"unknown student.name {student_cfg.get('name')!r}; valid names: {', '.join(STUDENTS)}")
    if num_items < 1:
        raise DataError(f"the data set has no items (num_items={num_items}); check the dataset config and files")
    raw_len = student_cfg.get("max_seq_len")
    try:
        max_seq_len = int(raw_len)
    except (TypeError, ValueError):
        max_seq_len = 0
    if max_seq_len < 1:
        raise ConfigError(
            f"student.max_seq_len (defaults to dataset.max_seq_len) must be an integer >= 1, got {raw_len!r}"
        )
    head = str(student_cfg.get("head", "tied"))
    model = STUDENTS[name](student_cfg, num_items, max_seq_len, head)
    # missing key = a checkpoint from before the option existed (trained without it)
    history_bias = student_cfg.get("history_bias", False)
    if not isinstance(history_bias, bool):
        raise ConfigError(f"student.history_bias must be true or false, got {history_bias!r}")
    if history_bias:
        model.enable_history_bias()
    return model
