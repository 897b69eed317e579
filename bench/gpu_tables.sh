#!/usr/bin/env bash
# Issue 18's GPU tables in one prepared run, for a session that is lent a GPU (about 6 minutes of
# an H100; every step has its own time limit so one slow part cannot eat the others):
#   1. DCGAN `paper` (64 px, batch 64) through gankit's Trainer against the PyTorch example's loop,
#      fp32 / bf16 / fp16 / channels_last, with the matrix-product peak of the same run;
#   2. every family's `small` preset: training images/s and sampling latency, fp32 and auto;
#   3. StyleGAN2 `paper256` at its own batch (64), fp32 and auto, in seconds per 1,000 images, the
#      unit of stylegan2-ada's published 21.6-24.2 s/kimg at 256 px on one V100; DCGAN `paper` beside.
# Writes the JSON files, the GPU's name and a log into $OUT (default bench/results/gpu):
#
#     bash bench/gpu_tables.sh                       # on the GPU machine, from the repository root
#     DEVICE=cpu QUICK=1 OUT=/tmp/g bash bench/gpu_tables.sh   # a smoke test of the script on a CPU
#
# The device tool's machine has torch and gankit's other needs in its python3; gankit runs from src/.
set -u
OUT=${OUT:-bench/results/gpu}
DEVICE=${DEVICE:-cuda}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
LOG="$OUT/gpu_tables.log"

if [ -n "${QUICK:-}" ]; then  # the smoke test: the smallest settings that run every step
    SPEED=(--steps 1 --repeats 1 --variants fp32,reference-example --budget 5 --no-flops)
    FAMILIES=(--families dcgan --steps 1 --repeats 1 --images 64)
    PRESETS=(--repeats 1 --paper-batch 2 --only dcgan:tiny)
else
    SPEED=(--steps 20 --repeats 3 --variants fp32,channels_last,bf16,fp16,bf16+channels_last,reference-example)
    FAMILIES=(--steps 10 --repeats 2)
    PRESETS=(--repeats 3 --paper-batch 64 --only stylegan2:paper256 dcgan:paper)
fi

step() {  # step SECONDS NAME COMMAND...: run one table, log it, go on whatever it returns
    local limit=$1 name=$2; shift 2
    echo "== $name ($(date -u +%T))" | tee -a "$LOG"
    timeout "$limit" "$@" >>"$LOG" 2>&1
    echo "== $name: exit $?" | tee -a "$LOG"
}

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  $PY -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'; } >"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt" | tee -a "$LOG"

step 150 "DCGAN paper against the example" \
    $PY bench/throughput.py --device "$DEVICE" "${SPEED[@]}" --out "$OUT/throughput_gpu.json"
step 200 "every family's small preset" \
    $PY bench/family_speed.py --device "$DEVICE" "${FAMILIES[@]}" --out "$OUT/family_speed_gpu.json"
step 120 "StyleGAN2 paper256 at batch 64" \
    $PY bench/preset_throughput.py --device "$DEVICE" "${PRESETS[@]}" --precision fp32 auto \
    --out "$OUT/preset_throughput_gpu.json"
ls -l "$OUT" | tee -a "$LOG"
