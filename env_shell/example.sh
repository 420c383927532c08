# shellcheck shell=bash
# env_shell/: machine settings for the cmd/ scripts (seed 004 section 2.4).
#
# Every env_shell/*.sh file is sourced, in name order, by each cmd/*.sh and cmd/colab/*.sh script
# before Python starts (see cmd/_common.sh). Put your CUDA / PATH / cache settings in a file of your
# own here (e.g. env_shell/a100.sh); this template is all comments, so sourcing it changes nothing.
# The files are sourced without `set -u`, so `$LD_LIBRARY_PATH` may be unset; a failing command in
# them stops the script. Use ILORA_ENV_SHELL=/other/folder to source another folder instead.
#
# -- CUDA toolkit (only needed to BUILD extensions such as flash-attn; PyTorch wheels bring their own CUDA)
# export CUDA_HOME=/usr/local/cuda
# export PATH="$CUDA_HOME/bin:$PATH"
# export LD_LIBRARY_PATH="$CUDA_HOME/lib64:$LD_LIBRARY_PATH"
#
# -- which GPUs to use (Lightning then sees only these; train.devices counts among them)
# export CUDA_VISIBLE_DEVICES=0,1,2,3
#
# -- Hugging Face: cache location, token for gated models (Llama-2), offline mode
# export HF_HOME=/mnt/cache/huggingface
# export HF_TOKEN=...                # or run `huggingface-cli login` once; never commit a token
# export HF_HUB_OFFLINE=1            # never download; use only what is cached
#
# -- where converted LLMs are cached (prepare-llm; default: data/models)
# export ILORA_MODEL_CACHE=/mnt/cache/ilora_models
#
# -- how the cmd/ scripts run Python (default: Poetry if it manages the project, else .venv, else python3)
# export ILORA_PYTHON=/opt/conda/bin/python
# export ILORA_USE_POETRY=0
#
# -- CUDA memory allocator (fragmentation on long LLM runs); unset it if the driver rejects it
# export PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
#
# -- threads for CPU runs
# export OMP_NUM_THREADS=8
