#!/usr/bin/env bash
# make bench: every benchmark, one JSON object per line ({"name", "value", "unit"}).
set -euo pipefail
cd "$(dirname "$0")/.."
# Helper modules (load_*, faults_*) are not benchmarks; the fault scenarios are `make faults`.
for script in bench/*.py; do
  case "$(basename "$script")" in faults*.py | load_*.py) continue ;; esac
  .venv/bin/python "$script"
done
