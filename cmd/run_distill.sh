#!/usr/bin/env bash
# Distil the teacher into a student with DLLM2Rec: run-distill.
# Extra arguments are Hydra overrides, passed through unchanged, e.g.
#   ./cmd/run_distill.sh dataset=ml-1m distill.teacher_outputs_dir=result/result_X/teacher_outputs
# Runs through `poetry run` when Poetry manages the project, else the project's .venv, else python3
# (see cmd/_common.sh). Stops on the first error with its exit code (2 = a user error, one line).
set -euo pipefail
# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
ilora_setup
ilora_run_module run_distill "$@"
