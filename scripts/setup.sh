#!/usr/bin/env bash
# One set-up for every command: system packages (TTS engines), a virtual environment in the repo,
# and the package installed editable with its train and dev extras. Safe to re-run: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
# Offline text-to-speech engines for the embedded synthetic dataset, and the fortune texts its running speech reads (Debian main).
APT_PACKAGES="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts fortunes"

"$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' 2>/dev/null || {
  echo "kws_nb needs Python >= 3.11; '$PYTHON' is $("$PYTHON" --version 2>&1). Set PYTHON=/path/to/python3.11." >&2; exit 1; }
# Debian splits venv/ensurepip out of python3; add it when it is missing.
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || APT_PACKAGES="$APT_PACKAGES python3-venv"

missing=""
for p in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "[setup] apt-get install$missing"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  else
    echo "[setup] kws_nb needs system packages. Run this, then re-run the command:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends$missing" >&2
    exit 1
  fi
fi

[ -x "$VENV/bin/python" ] || { echo "[setup] creating $VENV"; "$PYTHON" -m venv "$VENV"; }
# Reinstall only when the project's requirements changed (the stamp holds the packaging files' hash).
stamp="$VENV/.kws_nb-install-stamp"
want=$(cat settings.ini setup.py pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$VENV/bin/python" -c 'import kws_nb, torch, torchaudio' 2>/dev/null; then
  # base install = the runtime (torch, torchaudio, numpy, soundfile, fastcore); `train` = synthesis, training and the
  # notebooks; `dev` = nbdev and the tests. The README's commands need all three.
  echo "[setup] pip install -e .[train,dev] into $VENV (torch + torchaudio are ~5 GB on first install)"
  # (sed drops pip's notes about this machine's local index folders; errors still stop the script)
  "$VENV/bin/python" -m pip install -q --upgrade pip 2>&1 | sed '/is ignored: it is neither/d'
  "$VENV/bin/python" -m pip install -q -e ".[train,dev]" 2>&1 | sed '/is ignored: it is neither/d'

  echo "$want" > "$stamp"
fi
echo "[setup] ready: $("$VENV/bin/python" -c 'import kws_nb, torch, torchaudio; print("kws_nb", kws_nb.__version__, "torch", torch.__version__, "torchaudio", torchaudio.__version__)')"
