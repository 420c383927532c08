#!/usr/bin/env bash
# Every Colab step in order: 02 prepare data -> 10 baseline -> 11 teacher ->
# 12 distillation -> run-eval-all (the three models side by side). Each step hands its result to the
# next through the newest complete run folder. The first argument names the data set (default ml-1m);
# the rest are Hydra overrides given to every step. Stops at the first failing step with its exit code.
#   bash cmd/colab/run_all_experiments.sh ml-1m dataset.limit_data_rows=10000
#   bash cmd/colab/run_all_experiments.sh synthetic experiment=quickstart
set -euo pipefail
dataset=ml-1m
if [[ $# -gt 0 && $1 != *=* ]]; then
    dataset=$1
    shift
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bash "$here/02_prepare_dataset.sh" "$dataset" "$@"
bash "$here/10_run_student_baseline.sh" "dataset=$dataset" "$@"
bash "$here/11_run_teacher.sh" "dataset=$dataset" "$@"
bash "$here/12_run_distill.sh" "dataset=$dataset" "$@"
# shellcheck source=../_common.sh
source "$here/../_common.sh"
ilora_setup_colab
ilora_run_module run_eval_all "dataset=$dataset" "$@"
