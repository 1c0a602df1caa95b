#!/usr/bin/env bash
# Every GPU measurement of this project in one prepared run (a lent GPU machine's time is short):
# the float16/float32 check (gpu_check.py), the torch rows of `bench` for the B4 and Lite0
# presets, and several cameras on one torch backend. Writes its results under OUTDIR.
#   bash benchmarks/gpu_session.sh OUTDIR [SECONDS_PER_BENCH_ROW]
# Needs PyTorch with CUDA, numpy, onnx, onnxruntime, opencv, typer, rich and this checkout on
# PYTHONPATH (plus efficientnet_pytorch and, for Lite0, its weights package).
set -uo pipefail
out=${1:?usage: gpu_session.sh OUTDIR [SECONDS]}
seconds=${2:-2}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
step() { echo "== $* ($(date -u +%H:%M:%S))"; }

step nvidia-smi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>&1 | tee "$out/machine.txt"
"$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" \
  2>&1 | tee -a "$out/machine.txt"

step gpu_check
timeout 300 "$py" benchmarks/gpu_check.py --out "$out/gpu_check.json"

for preset in mvtec-224 lite0-224; do
  step "bench $preset"
  timeout 150 "$py" -m uniad_edge bench --preset "$preset" --backends torch \
    --precision fp32,fp16 --batch 1,8,32 --seconds "$seconds" --frame-size 1280x720 \
    --json "$out/bench-$preset.json" --markdown "$out/bench-$preset.md"
done

step multicam
timeout 120 "$py" benchmarks/multicam.py --backend torch --preset mvtec-224 --cameras 1,4,8 \
  --seconds 10 --json "$out/multicam.json"
step done
