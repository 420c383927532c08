"""torch.load of user files: one line naming the file, never PyTorch's advice to set weights_only=False."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import pytest
import torch

from ilora_dllm2rec.core.errors import ArtifactError
from ilora_dllm2rec.core.safe_load import load_checkpoint, load_torch_file

SRC = Path(__file__).resolve().parents[2] / "src" / "ilora_dllm2rec"


def _object_file(path: Path) -> Path:
    torch.save({"weights": PurePosixPath("not/a/tensor")}, path)  # a pickled Python object, not tensors
    return path


def _garbage_file(path: Path) -> Path:
    path.write_bytes(b"\x00not a torch file" * 8)
    return path


def _one_line_refusal(exc: pytest.ExceptionInfo, path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message and len(message.replace(str(path), "")) < 240, message
    assert str(path) in message
    assert "weights_only" not in message  # PyTorch's advice would run whatever the file contains
    return message


@pytest.mark.parametrize("make", [_object_file, _garbage_file])
def test_a_file_that_is_not_tensors_is_one_line_naming_it(tmp_path, make):
    path = make(tmp_path / "all_embeddings.pt")
    with pytest.raises(ArtifactError) as exc:
        load_torch_file(path, kind="tensor file", remedy="re-export the teacher (run-teacher)")
    message = _one_line_refusal(exc, path)
    assert "is not a tensor file" in message and "unpickle" in message
    assert message.endswith("re-export the teacher (run-teacher)")


def test_a_pickled_object_is_named_by_its_type(tmp_path):
    path = _object_file(tmp_path / "x.pt")
    with pytest.raises(ArtifactError, match=re.escape("pathlib.PurePosixPath")):
        load_torch_file(path, kind="tensor file", remedy="re-export the teacher")


def test_an_empty_file_and_a_missing_file(tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ArtifactError) as exc:
        load_torch_file(empty, kind="tensor file", remedy="re-export the teacher")
    assert "empty" in _one_line_refusal(exc, empty)
    with pytest.raises(ArtifactError, match="not found"):
        load_torch_file(tmp_path / "missing.pt", kind="tensor file", remedy="re-export the teacher")


def test_tensors_and_checkpoints_load(tmp_path):
    torch.save(torch.ones(3, 2), tmp_path / "t.pt")
    assert load_torch_file(tmp_path / "t.pt", kind="tensor file", remedy="-").shape == (3, 2)
    torch.save({"state_dict": {"w": torch.zeros(1)}, "epoch": 3}, tmp_path / "c.ckpt")
    assert load_checkpoint(tmp_path / "c.ckpt", kind="student checkpoint", remedy="-")["epoch"] == 3


def test_a_checkpoint_must_be_a_mapping_with_its_keys(tmp_path):
    torch.save(torch.ones(2), tmp_path / "t.ckpt")
    with pytest.raises(ArtifactError) as exc:
        load_checkpoint(tmp_path / "t.ckpt", kind="student checkpoint", remedy="re-train the student")
    assert "is not a student checkpoint" in _one_line_refusal(exc, tmp_path / "t.ckpt")
    torch.save({"epoch": 1}, tmp_path / "d.ckpt")
    with pytest.raises(ArtifactError, match="no state_dict"):
        load_checkpoint(tmp_path / "d.ckpt", kind="student checkpoint", remedy="re-train the student")


def test_full_unpickling_errors_are_wrapped_too(tmp_path):
    """Lightning checkpoints that need more than weights_only allows: same one line when unreadable."""
    path = _garbage_file(tmp_path / "best.ckpt")
    with pytest.raises(ArtifactError) as exc:
        load_checkpoint(path, kind="teacher checkpoint", remedy="re-train the teacher", weights_only=False)
    assert "is not a teacher checkpoint" in _one_line_refusal(exc, path)
    obj = tmp_path / "obj.ckpt"
    torch.save(PurePosixPath("x"), obj)  # unpickles fine without weights_only, but is no checkpoint
    with pytest.raises(ArtifactError, match="PurePosixPath"):
        load_checkpoint(obj, kind="teacher checkpoint", remedy="re-train the teacher", weights_only=False)


def test_student_and_teacher_loaders_refuse_in_one_line(tmp_path):
    from ilora_dllm2rec.student.train import load_student_checkpoint
    from ilora_dllm2rec.teacher.train import load_teacher_checkpoint

    bad = _object_file(tmp_path / "best.ckpt")
    with pytest.raises(ArtifactError) as exc:
        load_student_checkpoint(bad)
    assert "is not a student checkpoint" in _one_line_refusal(exc, bad)
    garbage = _garbage_file(tmp_path / "teacher.ckpt")
    with pytest.raises(ArtifactError) as exc:
        load_teacher_checkpoint(garbage, None, None)
    assert "is not a teacher checkpoint" in _one_line_refusal(exc, garbage)


# torch.load call sites owned by others for now (they should call core/safe_load.py too)
_NOT_YET: set[str] = set()


def test_every_torch_load_goes_through_the_helper():
    calls = [
        f"{p.relative_to(SRC)}:{n}"
        for p in SRC.rglob("*.py")
        if p.name != "safe_load.py" and str(p.relative_to(SRC)) not in _NOT_YET and not p.is_relative_to(SRC / "data")
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if "torch.load(" in line
    ]
    assert calls == []
