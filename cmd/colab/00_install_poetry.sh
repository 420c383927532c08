#!/usr/bin/env bash
# OPTIONAL: install Poetry 2 into the notebook's Python, for users who manage the
# environment with Poetry. Recommended on Colab instead: 01_install_dependencies.sh (pip into the
# notebook's Python, keeping Colab's CUDA PyTorch). `poetry install` builds its own virtual environment
# with its own torch (several GB); afterwards the 02/10/11/12 scripts run through `poetry run` by themselves.
#   bash cmd/colab/00_install_poetry.sh
set -euo pipefail
# shellcheck source=../_common.sh
source "$(dirname "${BASH_SOURCE[0]}")/../_common.sh"

py=${ILORA_PYTHON:-python3}
"$py" -m pip install "poetry>=2,<3"
if command -v poetry >/dev/null 2>&1; then
    poetry --version
else
    ilora_log "poetry is installed but not on PATH: call it as '$py -m poetry'"
fi
ilora_log "next: cd $ILORA_ROOT && poetry install   (add --extras flash for Flash Attention, see docs/USER_GUIDE.md)"
