#!/usr/bin/env bash
# Train and evaluate the baseline student. Arguments are Hydra overrides:
#   bash cmd/colab/10_run_student_baseline.sh dataset=ml-1m
#   bash cmd/colab/10_run_student_baseline.sh dataset=ml-1m student=gru4rec train.batch_size=512
# Result: result/result_{YYYYMMDD_HHMMSS}/models/baseline/ (best.ckpt, manifest.json), used by 11.
set -euo pipefail
# shellcheck source=../_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../_common.sh"
ilora_setup_colab
ilora_run_module run_student_baseline "$@"
