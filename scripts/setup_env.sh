#!/usr/bin/env bash
# Create .venv with everything the project, its tests and the quickstart need. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# torch first, so that no dependency pulls another build (on this CPU machine the 2.13.0 CPU wheel is on local disk).
python -c "import torch" 2>/dev/null || python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test]"
