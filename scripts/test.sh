#!/usr/bin/env bash
# The README's test command: set up (scripts/setup.sh), then the full test suite in order, stopping at the
# first failure. `.ci/run` and the GitHub workflow call exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
bash scripts/setup.sh
export PATH="$PWD/$VENV/bin:$PATH"

echo "== 0/4 pip check (the environment's requirements are consistent)"
python -m pip check

echo "== 1/4 nbdev_clean leaves no diff (notebooks committed clean)"
nbdev_clean
if [ -n "$(git status --porcelain -- nbs)" ]; then
  git status --short -- nbs; git --no-pager diff --stat -- nbs
  echo "FAIL: nbdev_clean changed notebooks; run 'nbdev_clean' and commit." >&2; exit 1
fi

echo "== 2/4 nbdev_export leaves no diff in kws_nb/ (package in sync with notebooks)"
nbdev_export
if [ -n "$(git status --porcelain -- kws_nb)" ]; then
  git status --short -- kws_nb; git --no-pager diff --stat -- kws_nb
  echo "FAIL: kws_nb/ is out of sync with nbs/; run 'nbdev_export' and commit." >&2; exit 1
fi

echo "== 3/4 nbdev_test (unit checks in notebook cells)"
nbdev_test --n_workers "${NBDEV_TEST_WORKERS:-2}" --timing

echo "== 4/4 pytest (integration tests, incl. papermill re-execution of every notebook)"
python -m pytest -ra tests "$@"
