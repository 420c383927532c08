#!/usr/bin/env bash
# The whole pipeline (baseline -> teacher -> export -> distill -> eval-all) into ONE run folder: run-pipeline.
# Extra arguments are Hydra overrides, passed through unchanged, e.g.
#   ./cmd/run_all_pipeline.sh experiment=quickstart
# Runs through `poetry run` when Poetry manages the project, else the project's .venv, else python3
# (see cmd/_common.sh). Stops on the first error with its exit code (2 = a user error, one line).
set -euo pipefail
# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
ilora_setup
ilora_run_module run_pipeline "$@"
