"""teacher/backends.py: the one list of teacher backends, the same one the config schema accepts."""

from __future__ import annotations

from typing import get_args, get_type_hints

import pytest

from ilora_dllm2rec.core.errors import ConfigError
from ilora_dllm2rec.core.schema_teacher import Teacher
from ilora_dllm2rec.teacher.backends import BACKENDS, teacher_backend


def test_registry_lists_the_backends_the_schema_accepts():
    assert list(BACKENDS) == list(get_args(get_type_hints(Teacher)["backend"]))
    assert [name for name, backend in BACKENDS.items() if backend.uses_llm] == ["ilora"]


def test_unknown_backend_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"teacher.backend='gpt' is unknown; valid: ilora, sasrec, ensemble"):
        teacher_backend("gpt")
