#!/usr/bin/env bash
# Train the iLoRA teacher and export its outputs. The baseline student it builds on
# is, in this order:
#   - teacher.rec_model_checkpoint_path=... given among the arguments;
#   - a first argument that is a path: a best.ckpt, its models/baseline folder, or a result_* run folder;
#   - the newest result/result_*/models/baseline holding manifest.json (a complete run), found here;
#   - none: run-teacher then trains a baseline into its own run folder first.
#   bash cmd/colab/11_run_teacher.sh dataset=ml-1m
#   bash cmd/colab/11_run_teacher.sh result/result_20250101_120000 dataset=ml-1m teacher.batch_size=4
# Result: result/result_{YYYYMMDD_HHMMSS}/models/teacher/ and teacher_outputs/ (manifest.json), used by 12.
set -euo pipefail
given=""
if [[ $# -gt 0 && $1 != *=* ]]; then
    given=$1
    shift
    [[ $given == /* ]] || given=$PWD/$given
fi
# shellcheck source=../_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../_common.sh"
ilora_setup_colab

key=teacher.rec_model_checkpoint_path
extra=()
if [[ -n $(ilora_override_value "$key" "$@") ]]; then
    ilora_log "using the $key given on the command line"
elif [[ -n $given ]]; then
    if [[ -f $given ]]; then
        checkpoint=$given
    elif [[ -f $given/best.ckpt ]]; then
        checkpoint=$given/best.ckpt
    elif [[ -f $given/models/baseline/best.ckpt ]]; then
        checkpoint=$given/models/baseline/best.ckpt
    else
        ilora_die 2 "$given is not a baseline checkpoint: give a best.ckpt, its models/baseline folder or a result_* folder"
    fi
    extra=("$key=$(ilora_hydra_value "$checkpoint")")
else
    result_root=$(ilora_override_value paths.result_root "$@")
    result_root=${result_root:-result}
    if folder=$(ilora_newest_artifact "$result_root" models/baseline best.ckpt); then
        ilora_log "newest complete baseline: $folder"
        extra=("$key=$(ilora_hydra_value "$(ilora_abspath "$folder")/best.ckpt")")
    else
        ilora_log "no complete baseline under $result_root/: run-teacher trains one into its run folder first"
    fi
fi
ilora_run_module run_teacher "${extra[@]}" "$@"
