#!/usr/bin/env bash
# The name the users' run guide uses for cmd/run_teacher.sh: same arguments, same behaviour.
set -euo pipefail
exec bash "$(dirname "${BASH_SOURCE[0]}")/run_teacher.sh" "$@"
