#!/usr/bin/env bash
# Train the iLoRA teacher, then export its outputs for distillation: run-teacher.
# Extra arguments are Hydra overrides, passed through unchanged, e.g.
#   ./cmd/run_teacher.sh dataset=ml-1m teacher.rec_model_checkpoint_path=result/result_X/models/baseline/best.ckpt
# Runs through `poetry run` when Poetry manages the project, else the project's .venv, else python3
# (see cmd/_common.sh). Stops on the first error with its exit code (2 = a user error, one line).
set -euo pipefail
# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
ilora_setup
ilora_run_module run_teacher "$@"
