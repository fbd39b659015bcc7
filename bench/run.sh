#!/usr/bin/env bash
# make bench: every benchmark, one JSON object per line ({"name", "value", "unit"}).
set -euo pipefail
cd "$(dirname "$0")/.."
for script in bench/*.py; do
  .venv/bin/python "$script"
done
