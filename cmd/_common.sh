# shellcheck shell=bash
# Shared logic of the cmd/ and cmd/colab/ scripts. Source it; do not run it.
#
# What a script gets from here:
#   ILORA_ROOT                 the project folder (the parent of cmd/)
#   ilora_setup                cd into the work folder, source env_shell/*.sh, choose how to run Python
#   ilora_setup_colab          the same for cmd/colab/ (never the project's .venv: the notebook's Python)
#   ilora_run_module NAME ...  run `python -m ilora_dllm2rec.exp.NAME ...` with the chosen runner
#   ilora_override_value KEY ARGS...   the value of the last KEY=value among ARGS (empty if none)
#   ilora_hydra_value VALUE    VALUE quoted for a Hydra override when it holds spaces or special characters
#   ilora_newest_artifact ROOT REL [FILE]   the newest ROOT/result_*/REL holding manifest.json (and FILE)
#   ilora_log / ilora_die      messages on stderr; ilora_die CODE MESSAGE exits with CODE
#
# Environment variables a user (or a test) may set:
#   ILORA_PYTHON     the Python interpreter to use; skips the Poetry / .venv detection below
#   ILORA_USE_POETRY auto (default) | 1 | 0: run through `poetry run` when Poetry manages the project
#   ILORA_WORKDIR    the folder commands run in (data/ and result/ are relative to it); default: ILORA_ROOT
#   ILORA_ENV_SHELL  the folder whose *.sh files are sourced first; default: ILORA_ROOT/env_shell
#
# Why `python -m ilora_dllm2rec.exp.NAME` and not the console script `run-NAME`: it works with any
# interpreter the package is installed in, with or without the environment's bin/ on PATH.

ILORA_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ILORA_RUN=()

ilora_log() {
    printf '[%s] %s\n' "$(basename "$0")" "$*" >&2
}

ilora_die() {
    local code=$1
    shift
    printf 'error: %s\n' "$*" >&2
    exit "$code"
}

# Users' env_shell scripts set CUDA / PATH variables. They are often written for an
# interactive shell (e.g. `export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH` with the
# variable unset), so they are sourced without `set -u`; a failing command in them still stops us.
ilora_source_env_shell() {
    local dir=${ILORA_ENV_SHELL:-$ILORA_ROOT/env_shell}
    local file
    [[ -d $dir ]] || return 0
    for file in "$dir"/*.sh; do
        [[ -f $file ]] || continue
        ilora_log "sourcing $file"
        set +u
        # shellcheck source=/dev/null
        source "$file"
        set -u
    done
}

# Poetry manages the project when `poetry` is on PATH and has an environment for it
# (`poetry env info -p` succeeds after `poetry install`).
ilora_poetry_manages() {
    case ${ILORA_USE_POETRY:-auto} in
        0 | false | no) return 1 ;;
        1 | true | yes)
            command -v poetry >/dev/null 2>&1 || ilora_die 2 "ILORA_USE_POETRY=${ILORA_USE_POETRY} but poetry is not on PATH"
            return 0
            ;;
    esac
    command -v poetry >/dev/null 2>&1 || return 1
    (cd "$ILORA_ROOT" && poetry env info -p >/dev/null 2>&1)
}

# Sets ILORA_RUN to the command that runs Python. Order: ILORA_PYTHON, Poetry, then (cmd/ scripts)
# the project's .venv, then the python3 on PATH. The Colab scripts skip .venv: they install into and
# run with the Python of the notebook (see cmd/colab/01_install_dependencies.sh).
ilora_select_runner() {
    local mode=$1
    if [[ -n ${ILORA_PYTHON:-} ]]; then
        ILORA_RUN=("$ILORA_PYTHON")
    elif ilora_poetry_manages; then
        # --project (Poetry 2) keeps the current folder; it is only needed when that is not the project
        ILORA_RUN=(poetry)
        [[ $PWD == "$ILORA_ROOT" ]] || ILORA_RUN+=(--project "$ILORA_ROOT")
        ILORA_RUN+=(run python)
    elif [[ $mode != colab && -x $ILORA_ROOT/.venv/bin/python ]]; then
        ILORA_RUN=("$ILORA_ROOT/.venv/bin/python")
    elif command -v python3 >/dev/null 2>&1; then
        ILORA_RUN=(python3)
    elif command -v python >/dev/null 2>&1; then
        ILORA_RUN=(python)
    else
        ilora_die 2 "no Python found: install Python 3.11+, or set ILORA_PYTHON=/path/to/python"
    fi
}

_ilora_setup() {
    local workdir=${ILORA_WORKDIR:-$ILORA_ROOT}
    [[ -d $workdir ]] || ilora_die 2 "ILORA_WORKDIR=$workdir is not a folder"
    cd "$workdir" || ilora_die 2 "cannot enter $workdir"
    ilora_source_env_shell
    ilora_select_runner "$1"
}

# cmd/*.sh: Poetry, else the project's .venv, else python3
ilora_setup() {
    _ilora_setup project
}

# cmd/colab/*.sh: Poetry, else the notebook's python3 (never the project's .venv)
ilora_setup_colab() {
    _ilora_setup colab
}

ilora_run_module() {
    local module=ilora_dllm2rec.exp.$1
    shift
    [[ ${#ILORA_RUN[@]} -gt 0 ]] || ilora_select_runner project
    ilora_log "running: ${ILORA_RUN[*]} -m $module $*"
    "${ILORA_RUN[@]}" -m "$module" "$@"
}

ilora_override_value() {
    local key=$1 arg value=""
    shift
    for arg in "$@"; do
        if [[ $arg == "$key="* || $arg == "+$key="* || $arg == "++$key="* ]]; then
            value=${arg#*=}
        fi
    done
    printf '%s' "$value"
}

# An absolute form of a path relative to the current folder (the work folder after ilora_setup).
ilora_abspath() {
    case $1 in
        /*) printf '%s' "$1" ;;
        *) printf '%s/%s' "$PWD" "${1#./}" ;;
    esac
}

# Hydra reads `key=value` with its own grammar: a path with spaces, commas, brackets or quotes must be
# quoted (e.g. Google Drive's "My Drive"). Plain paths are passed as they are.
ilora_hydra_value() {
    local value=$1
    if [[ $value =~ ^[A-Za-z0-9_./:@+~-]+$ ]]; then
        printf '%s' "$value"
    else
        value=${value//\'/\\\'}
        printf "'%s'" "$value"
    fi
}

# The newest complete artifact, chosen as the platform chooses: run folders result_YYYYMMDD_HHMMSS
# sort by name in time order, and a folder counts only once its manifest.json exists (written last).
ilora_newest_artifact() {
    local root=$1 rel=$2 need=${3:-manifest.json}
    local runs=() i folder
    [[ -d $root ]] || return 1
    local LC_ALL=C  # byte order for the glob: result_20250102_... after result_20250101_...
    runs=("$root"/result_*/)
    for ((i = ${#runs[@]} - 1; i >= 0; i--)); do
        folder=${runs[i]%/}/$rel
        if [[ -f $folder/manifest.json && -f $folder/$need ]]; then
            printf '%s' "$folder"
            return 0
        fi
    done
    return 1
}
