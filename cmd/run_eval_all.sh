#!/usr/bin/env bash
# Evaluate baseline, teacher and distilled models side by side: run-eval-all.
# Extra arguments are Hydra overrides, passed through unchanged, e.g.
#   ./cmd/run_eval_all.sh dataset=ml-1m eval.split=test
# Runs through `poetry run` when Poetry manages the project, else the project's .venv, else python3
# (see cmd/_common.sh). Stops on the first error with its exit code (2 = a user error, one line).
set -euo pipefail
# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
ilora_setup
ilora_run_module run_eval_all "$@"
