#!/bin/bash
# Per-image PSNR/SSIM of fine-tuned subnets (train.py eval's CSV), whole images and, with TILE set, tiled.
#   bash benchmarks/per_image_psnr.sh RUN_DIR...            e.g. runs/reproduce/denoise-proxy-conv-gate-seed1
#   bash benchmarks/per_image_psnr.sh --tile 128 RUN_DIR...  # tiled inference (overlap 32)
set -euo pipefail
TILE=""
if [ "${1:-}" = "--tile" ]; then TILE=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: $0 [--tile N] RUN_DIR..." >&2; exit 2; }
PY=${PY:-.venv/bin/python}
csv=$(mktemp)
trap 'rm -f "$csv"' EXIT
for run in "$@"; do
  for sub in "$run"/subnet-*/; do
    [ -f "$sub/subnet.pt" ] || { echo "$sub: no subnet.pt (fine-tuning not finished)" >&2; exit 1; }
    "$PY" train.py eval --checkpoint "$sub/subnet.pt" --csv "$csv" ${TILE:+--tile "$TILE" --overlap 32} > /dev/null 2>&1
    echo "$sub${TILE:+ (tile $TILE)}: $(tail -n +2 "$csv" | tr -d '\r' | tr '\n' ' ')"
  done
done
