#!/usr/bin/env bash
# Run every check: setup, generated-code freshness, ruff, mypy, then the whole pytest suite.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/unit -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=.venv/bin/python

echo "== generated code is fresh"
$PY scripts/gen_api.py --check
echo "== ruff"
.venv/bin/ruff check pinnace services tests bench scripts
echo "== mypy"
.venv/bin/mypy
echo "== pytest"
set +e
$PY -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
