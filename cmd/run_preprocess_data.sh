#!/usr/bin/env bash
# Prepare (and cache) a data set's splits: run-preprocess-data.
# Extra arguments are Hydra overrides, passed through unchanged, e.g.
#   ./cmd/run_preprocess_data.sh dataset=ml-1m dataset.write_split_csv=true
# Runs through `poetry run` when Poetry manages the project, else the project's .venv, else python3
# (see cmd/_common.sh). Stops on the first error with its exit code (2 = a user error, one line).
set -euo pipefail
# shellcheck source=_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
ilora_setup
ilora_run_module run_preprocess_data "$@"
