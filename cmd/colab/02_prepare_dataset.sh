#!/usr/bin/env bash
# Prepare a data set: download MovieLens when it is missing, then run
# run-preprocess-data (splits, cached). The first argument names the data set (default ml-1m); the rest
# are Hydra overrides:
#   bash cmd/colab/02_prepare_dataset.sh                       MovieLens-1M into data/ml-1m/
#   bash cmd/colab/02_prepare_dataset.sh ml-100k dataset.limit_data_rows=10000
#   bash cmd/colab/02_prepare_dataset.sh synthetic             the embedded generated data set (no download)
# Other data sets (csv, amazon_games, sequence_example) are read from dataset.data_dir as they are.
set -euo pipefail
dataset=ml-1m
if [[ $# -gt 0 && $1 != *=* ]]; then
    dataset=$1
    shift
fi
# shellcheck source=../_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../_common.sh"
ilora_setup_colab

case $dataset in
    ml-1m | movielens) download=ml-1m marker=ratings.dat ;;
    ml-100k) download=ml-100k marker=u.data ;;
    *) download="" marker="" ;;
esac
if [[ -n $download ]]; then
    data_dir=$(ilora_override_value dataset.data_dir "$@")
    if [[ -z $data_dir ]]; then
        data_root=$(ilora_override_value paths.data_dir "$@")
        data_dir=${data_root:-data}/$download
    fi
    data_dir=$(ilora_abspath "$data_dir")
    if [[ -f $data_dir/$marker ]]; then
        ilora_log "$dataset found in $data_dir"
    else
        bash "$ILORA_ROOT/cmd/movielens.sh" "$download" "$data_dir"
    fi
fi
ilora_run_module run_preprocess_data "dataset=$dataset" "$@"
