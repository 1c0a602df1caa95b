#!/usr/bin/env bash
# Every GPU measurement of this project in one prepared run (a lent GPU machine's time is short):
# the float16/float32 check (gpu_check.py), the torch rows of `bench` for the B4 and Lite0
# presets (engine-only and end-to-end at 1280x720), and 1/4/8 cameras on one torch backend.
#   bash benchmarks/gpu_session.sh OUTDIR [all|check|bench]
# Needs PyTorch with CUDA, numpy, onnx, onnxruntime, opencv, typer, rich and this checkout on
# PYTHONPATH (plus efficientnet_pytorch, and the Lite0 weights package for pretrained Lite).
# Each step has its own time limit and writes its own file, so one slow step loses only itself.
set -uo pipefail
out=${1:?usage: gpu_session.sh OUTDIR [all|check|bench]}
phase=${2:-all}
presets=${GPU_CHECK_PRESETS:-mvtec-224 mvtec-512 lite0-224}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
step() { echo "== $* ($(date -u +%H:%M:%S))"; }

if [ "$phase" != bench ]; then
  step machine
  { nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
    "$py" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
  } 2>&1 | tee "$out/machine.txt"
  step "gpu_check ($presets)"
  # shellcheck disable=SC2086
  timeout "${GPU_CHECK_SECONDS:-300}" "$py" benchmarks/gpu_check.py --out "$out/gpu_check.json" \
    --presets $presets
fi
if [ "$phase" != check ]; then
  for preset in mvtec-224 lite0-224; do
    step "bench $preset"
    timeout 130 "$py" -m uniad_edge bench --preset "$preset" --backends torch \
      --precision fp32,fp16 --batch 1,8,32 --seconds 2 --frame-size 1280x720 \
      --json "$out/bench-$preset.json" --markdown "$out/bench-$preset.md"
  done
  step multicam
  timeout 100 "$py" benchmarks/multicam.py --backend torch --preset mvtec-224 --cameras 1,4,8 \
    --seconds 8 --json "$out/multicam.json"
fi
step done
