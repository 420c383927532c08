#!/usr/bin/env bash
# Distil the teacher into a student with DLLM2Rec. The teacher knowledge used is,
# in this order:
#   - distill.teacher_outputs_dir=... or distill.teacher_checkpoint_path=... given among the arguments;
#   - a first argument that is a path: a teacher_outputs folder (myrank_train.txt ...), a result_* run
#     folder holding one, or a teacher checkpoint (models/teacher folder or .ckpt file; exported first);
#   - the newest result/result_*/teacher_outputs holding manifest.json (a complete export), found here.
#   bash cmd/colab/12_run_distill.sh dataset=ml-1m
#   bash cmd/colab/12_run_distill.sh result/result_20250101_130000 dataset=ml-1m distill.batch_size=128
# Result: result/result_{YYYYMMDD_HHMMSS}/models/distill/ (best.ckpt, manifest.json) and metrics/.
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

extra=()
if [[ -n $(ilora_override_value distill.teacher_outputs_dir "$@") ||
    -n $(ilora_override_value distill.teacher_checkpoint_path "$@") ]]; then
    ilora_log "using the teacher given on the command line"
elif [[ -n $given ]]; then
    if [[ -f $given/myrank_train.txt ]]; then
        extra=("distill.teacher_outputs_dir=$(ilora_hydra_value "$given")")
    elif [[ -f $given/teacher_outputs/myrank_train.txt ]]; then
        extra=("distill.teacher_outputs_dir=$(ilora_hydra_value "$given/teacher_outputs")")
    elif [[ -f $given || -f $given/best.ckpt ]]; then
        extra=("distill.teacher_checkpoint_path=$(ilora_hydra_value "$given")")
    else
        ilora_die 2 "$given is neither a teacher_outputs folder (myrank_train.txt) nor a teacher checkpoint"
    fi
else
    result_root=$(ilora_override_value paths.result_root "$@")
    result_root=${result_root:-result}
    if folder=$(ilora_newest_artifact "$result_root" teacher_outputs); then
        ilora_log "newest complete teacher export: $folder"
        extra=("distill.teacher_outputs_dir=$(ilora_hydra_value "$(ilora_abspath "$folder")")")
    else
        ilora_log "no complete teacher export under $result_root/: run-distill looks for one itself"
    fi
fi
ilora_run_module run_distill "${extra[@]}" "$@"
