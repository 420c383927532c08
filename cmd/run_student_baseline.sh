#!/usr/bin/env bash
# Train and evaluate a baseline student (SASRec / GRU4Rec / Caser): run-student-baseline.
# Extra arguments are Hydra overrides, passed through unchanged, e.g.
#   ./cmd/run_student_baseline.sh train=student train.batch_size=64 student=gru4rec
# Runs through `poetry run` when Poetry manages the project, else the project's .venv, else python3
# (see cmd/_common.sh). Stops on the first error with its exit code (2 = a user error, one line).
set -euo pipefail
# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
ilora_setup
ilora_run_module run_student_baseline "$@"
