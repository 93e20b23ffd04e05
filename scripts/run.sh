#!/usr/bin/env bash
# The README's main command: set up (scripts/setup.sh), then run every notebook in order with the full-size
# parameters (kws-pipeline). Extra arguments go to kws-pipeline, e.g. `--data-dir /path/to/speech_commands`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
bash scripts/setup.sh
"$VENV/bin/kws-pipeline" --profile "${PROFILE:-full}" --out "${OUT:-artifacts}" "$@"
