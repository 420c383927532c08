"""Build a student model from the ``student`` config group (conf/student/*.yaml).

The keys, their defaults and their checks are the schema's (core/schema_groups.py: ``StudentModel`` and its
variants); this module only maps a checked section to a model class.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ilora_dllm2rec.core.errors import DataError
from ilora_dllm2rec.core.schema import check
from ilora_dllm2rec.core.schema_data import CaserModel, Gru4recModel, SasrecModel, StudentModel
from ilora_dllm2rec.student.base import SequentialRecommender
from ilora_dllm2rec.student.caser import Caser
from ilora_dllm2rec.student.gru4rec import GRU4Rec
from ilora_dllm2rec.student.sasrec import SASRec

# Keys that checkpoints written before the option existed lack: their models were trained with these values
# (not the schema's defaults, which describe new runs).
CHECKPOINT_LEGACY = {"positions": "absolute", "history_bias": False}


def stored_student_cfg(student_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A student config read back from a checkpoint, with the values of :data:`CHECKPOINT_LEGACY` it lacks."""
    return {**CHECKPOINT_LEGACY, **dict(student_cfg)}


def _sasrec(spec: Any, num_items: int) -> SequentialRecommender:
    return SASRec(
        num_items,
        hidden_size=spec.hidden_size,
        max_seq_len=spec.max_seq_len,
        num_blocks=spec.num_blocks,
        num_heads=spec.num_heads,
        dropout=spec.dropout,
        head=spec.head,
        positions=spec.positions,
    )


def _gru4rec(spec: Any, num_items: int) -> SequentialRecommender:
    return GRU4Rec(
        num_items,
        emb_size=spec.emb_size,
        hidden_size=spec.hidden_size,
        max_seq_len=spec.max_seq_len,
        num_layers=spec.num_layers,
        dropout=spec.dropout,
        head=spec.head,
    )


def _caser(spec: Any, num_items: int) -> SequentialRecommender:
    return Caser(
        num_items,
        hidden_size=spec.hidden_size,
        max_seq_len=spec.max_seq_len,
        num_horizontal=spec.num_horizontal,
        filter_heights=list(spec.filter_heights),
        num_vertical=spec.num_vertical,
        dropout=spec.dropout,
        head=spec.head,
    )


STUDENTS: dict[type[StudentModel], Callable[[Any, int], SequentialRecommender]] = {
    SasrecModel: _sasrec,
    Gru4recModel: _gru4rec,
    CaserModel: _caser,
}


def student_spec(student_cfg: Mapping[str, Any], where: str = "student") -> StudentModel:
    """The checked model section of ``student_cfg`` (the ``student`` group, ``teacher.model`` or a checkpoint's
    stored config: other keys are ignored, missing ones take the schema's default)."""
    return check(StudentModel, student_cfg, where)


def build_student(student_cfg: Mapping[str, Any], num_items: int) -> SequentialRecommender:
    """``student_cfg`` is the ``student`` group (DictConfig or dict); ``num_items`` = N of the data set."""
    spec = student_spec(student_cfg)
    if num_items < 1:
        raise DataError(f"the data set has no items (num_items={num_items}); check the dataset config and files")
    builder = next(build for cls, build in STUDENTS.items() if isinstance(spec, cls))
    model = builder(spec, num_items)
    if spec.history_bias:
        model.enable_history_bias()
    return model
