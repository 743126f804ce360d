#!/usr/bin/env bash
# Trains the bundled zoo with `jsnet-edge train`, on the CPU (bf16 autocast), resumably:
# run it again after an interruption and each model continues from its checkpoint.
#
# Data: 25 photographs from Debian's wallpaper packages (../shared/tools/training-photos.sh);
# the first 20 by name train, the last 5 validate. Test photographs (benchmarks/quality.py)
# are scikit-image's and were never trained on.
#
# Initialisation: the authors' released SR checkpoints (body weights only where shapes
# match; never the same task and scale), read from ../shared/official/. On 2 CPU cores a
# random start does not get far enough in the steps we can afford (see docs/zoo.md).
#
# The step counts grew while the zoo was made (each model's card lists the commands it
# was resumed with): a run with a checkpoint continues to the --steps given here.
set -euo pipefail
cd "$(dirname "$0")/.."
OFF=${OFFICIAL:-../shared/official}
DATA=${DATA:-data}
OUT=${OUT:-runs/zoo}
mkdir -p "$OUT"
if [ ! -d "$DATA/train" ]; then
  bash ../shared/tools/training-photos.sh "$DATA/photos"
  mkdir -p "$DATA/train" "$DATA/val"
  ls "$DATA/photos" | head -20 | while read -r f; do ln -sf "../photos/$f" "$DATA/train/$f"; done
  ls "$DATA/photos" | tail -5 | while read -r f; do ln -sf "../photos/$f" "$DATA/val/$f"; done
fi
run() { # name, then train options; a run with a checkpoint continues (up to --steps)
  local name=$1; shift
  local resume=()
  [ -f "$OUT/$name.ckpt.safetensors" ] && resume=(--resume)
  jsnet-edge train --threads "${THREADS:-1}" --data "$DATA/train" --val "$DATA/val" --out "$OUT/$name.safetensors" \
    "${resume[@]}" "$@"
}
run sr-x4        --task sr-x4 --steps 1500 --batch 8 --patch 192 \
                 --init "$OFF/jsnet_sr_x2_official.pt"
run denoise      --task denoise --sigma-range 0,50 --steps 5000 --batch 16 --patch 48 \
                 --init "$OFF/jsnet_sr_x2_official.pt"
run sr-x2        --task sr-x2 --steps 4500 --batch 8 --patch 96 \
                 --init "$OFF/jsnet_sr_x4_official.pt"
run jpeg         --task jpeg --quality-range 10,40 --steps 1500 --batch 8 --patch 48 \
                 --init "$OFF/jsnet_sr_x2_official.pt"
run denoise-gray --task denoise --gray --sigma 25 --steps 4000 --batch 8 --patch 48 \
                 --init "$OFF/jsnet_sr_x2_official.pt"
