#!/usr/bin/env bash
# Regenerate the hashed lock files from pyproject.toml (needs uv: pip install uv).
#   requirements.lock      every dependency incl. CUDA wheels of torch (GPU machines, Docker, Colab)
#   requirements-cpu.lock  the same pins without the CUDA runtime packages (CPU machines, CI);
#                          also accepts the local CPU build of torch (torch-2.13.0+cpu) by its hash.
# Neither file names an index host (--no-emit-index-url / --no-emit-find-links).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_VERSION=2.13.0
# sha256 of torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl (the CPU build these machines carry)
TORCH_CPU_HASH=6746dbcbeb526eb61330b76b41ff1b4eb848951103a892eeb080dfa2b264667b
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo "torch==${TORCH_VERSION}" > "$constraints"
common=(pyproject.toml --extra dev --generate-hashes --no-emit-index-url --no-emit-find-links
        --python-version 3.11 --python-platform x86_64-manylinux_2_28 --constraint "$constraints" --quiet)
uv pip compile "${common[@]}" -o requirements.lock
cuda_pkgs=$(grep -oE '^(nvidia-[a-z0-9-]+|cuda-[a-z-]+|triton)==' requirements.lock | tr -d '=' | sort -u)
no_emit=()
for p in $cuda_pkgs; do no_emit+=(--no-emit-package "$p"); done
uv pip compile "${common[@]}" "${no_emit[@]}" -o requirements-cpu.lock
python3 - "$TORCH_CPU_HASH" <<'PY'
import re, sys
path = "requirements-cpu.lock"
text = open(path).read()
text = re.sub(r"(^torch==\S+ \\\n)", lambda m: m.group(1) + f"    --hash=sha256:{sys.argv[1]} \\\n", text, count=1, flags=re.M)
open(path, "w").write(text)
PY
# the generated header repeats the command line with a temporary path: make it stable
sed -i "s#--constraint [^ ]*#--constraint <(echo torch==${TORCH_VERSION})#" requirements.lock requirements-cpu.lock
echo "wrote requirements.lock and requirements-cpu.lock"
