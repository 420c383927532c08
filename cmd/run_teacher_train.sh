#!/usr/bin/env bash
# The specification's name (seed 004 section 8) for cmd/run_teacher.sh: same arguments, same behaviour.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/run_teacher.sh" "$@"
