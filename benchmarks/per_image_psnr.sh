#!/bin/bash
# Per-image PSNR/SSIM of fine-tuned subnets (train.py eval's CSV), whole images and, with TILE set, tiled.
#   bash benchmarks/per_image_psnr.sh RUN_DIR...            e.g. runs/reproduce/denoise-proxy-conv-gate-seed1
#   bash benchmarks/per_image_psnr.sh --tile 128 RUN_DIR...  # tiled inference (overlap 32)
#   bash benchmarks/per_image_psnr.sh --held-out RUN_DIR...  # on photos no embedded set uses instead: scikit-image's
#     motorcycle stereo pair and matplotlib's Grace Hopper portrait (mpl_grace_hopper, a JPEG; named to sort after
#     the pair so the pair keeps its noise draws); same degradation, fixed by split_seed
set -euo pipefail
TILE=""
HELD_OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --tile) TILE=$2; shift 2 ;;
    --held-out) HELD_OUT=1; shift ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--tile N] [--held-out] RUN_DIR..." >&2; exit 2; }
PY=${PY:-.venv/bin/python}
csv=$(mktemp)
log=$(mktemp)
photos=""
trap 'rm -rf "$csv" "$log" ${photos:+"$photos"}' EXIT
DATA=()
if [ -n "$HELD_OUT" ]; then
  photos=$(mktemp -d)
  "$PY" - "$photos" <<'PYEOF'
import shutil, sys
from pathlib import Path
from skimage import data
from supernet.data.sources import EMBEDDED_IMAGES
names = ["motorcycle_left", "motorcycle_right"]
assert not set(names) & set(EMBEDDED_IMAGES), "a held-out photo is in EMBEDDED_IMAGES"
for name in names:
    shutil.copy(Path(data.__file__).parent / f"{name}.png", Path(sys.argv[1]) / f"{name}.png")
from matplotlib import cbook
shutil.copy(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), Path(sys.argv[1]) / "mpl_grace_hopper.jpg")
PYEOF
  DATA=(--set data.source=clean --set "data.train_dir=$photos" --set "data.val_dir=$photos")
fi
for run in "$@"; do
  for sub in "$run"/subnet-*/; do
    [ -f "$sub/subnet.pt" ] || { echo "$sub: no subnet.pt (fine-tuning not finished)" >&2; exit 1; }
    "$PY" train.py eval --checkpoint "$sub/subnet.pt" --csv "$csv" ${TILE:+--tile "$TILE" --overlap 32} \
      ${DATA[@]+"${DATA[@]}"} > "$log" 2>&1 || { echo "$sub: train.py eval failed:" >&2; tail -n 5 "$log" >&2; exit 1; }
    echo "$sub${TILE:+ (tile $TILE)}${HELD_OUT:+ (held-out)}: $(tail -n +2 "$csv" | tr -d '\r' | tr '\n' ' ')"
  done
done
