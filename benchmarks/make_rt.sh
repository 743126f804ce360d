#!/usr/bin/env bash
# Makes the zoo's real-time models (denoise-rt, sr-x2-rt) with the product itself:
# profile -> search under a latency budget -> retrain -> publish; docs/recipes.md explains
# each step. Measured on the CPU it runs on (OpenVINO bf16 here), so run it on an idle
# machine: the latency table and the budget check time real networks.
#
# Resumable: a step whose output exists is skipped, training continues from its checkpoint.
# Data as benchmarks/train_zoo.sh (data/train, data/val).
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${DATA:-data}
OUT=${OUT:-runs/rt}
BACKEND=${BACKEND:-openvino}
PRECISION=${PRECISION:-bf16}
SPACE=(--widths 8,12,16 --max-cells 3 --nodes 2 --unshuffle 2)
mkdir -p "$OUT"

make_rt() { # task, budget, then train options
  local task=$1 budget=$2; shift 2
  local name=$task-rt
  [ -f "$OUT/table-$task.json" ] || jsnet-edge profile --device cpu --backend "$BACKEND" \
    --precision "$PRECISION" --input-size 640x360 --task "$task" "${SPACE[@]}" --validate 10 \
    -o "$OUT/table-$task.json"
  local search="$OUT/search-$task-$budget"
  [ -f "$search/genotype.json" ] || jsnet-edge search --task "$task" \
    --latency-budget "$budget" --device cpu --backend "$BACKEND" --precision "$PRECISION" \
    --input-size 640x360 --data "$DATA/train" --val "$DATA/val" "${SPACE[@]}" --steps 400 \
    --warmup-steps 120 --finetune-steps 300 --latency-weight 2 --no-paper --threads 2 \
    --table "$OUT/table-$task.json" --out "$search" --overwrite
  local resume=()
  [ -f "$OUT/$name.ckpt.safetensors" ] && resume=(--resume)
  jsnet-edge train --task "$task" --genotype "$search/genotype.json" \
    --data "$DATA/train" --val "$DATA/val" --threads "${THREADS:-1}" \
    --out "$OUT/$name.safetensors" "${resume[@]}" "$@"
}

# The denoiser starts from the search's short fine-tune of the same network. sr-x2-rt starts
# fresh: its anchored tail (a residual over a bilinear upscale) came after its search.
# Budgets: 15 ms for the denoiser (NLMeans takes ~180 ms a frame here, the target is 10x
# faster), 30 ms for SR (a 40 ms frame period, less decoding and encoding).
make_rt denoise 15ms --sigma-range 0,50 --steps 45000 --batch 16 --patch 96 --precision fp32 \
  --init "$OUT/search-denoise-15ms/budget_15ms/model.safetensors"
make_rt sr-x2 30ms --steps 20000 --batch 16 --patch 96 --precision fp32
python benchmarks/publish_zoo.py --runs "$OUT" denoise-rt sr-x2-rt  # then benchmarks/realtime.py, and again with --realtime
