#!/usr/bin/env bash
# The CPU numbers in benchmarks/README.md: PyTorch fp32 eager vs ONNX Runtime on this machine.
# Usage: benchmarks/bench_cpu.sh [OUT_DIR] [extra `uniad-edge bench` options...]
# Needs the training stack (`pip install torch==2.13.0 -e ".[train]"`): --preset builds a
# random-weight model and exports it with the project's exporter. Run it on a quiet machine:
# the report records the load average at start and end.
set -euo pipefail
out="${1:-runs/bench}"  # runs/ is ignored by git: results are not committed
shift || true
mkdir -p "$out"
host="$(hostname -s)"

# Acceptance run: mvtec-224, batch 1, ONNX Runtime vs PyTorch (TensorRT reported as skipped here).
uniad-edge bench --preset mvtec-224 --backends onnxruntime,torch --batch 1 \
  --json "$out/$host-mvtec-224-b1.json" --markdown "$out/$host-mvtec-224-b1.md" "$@"

# Batch 8, fp16 (mixed-precision ONNX; emulated on most CPUs) and the matmul roofline.
uniad-edge bench --preset mvtec-224 --backends onnxruntime,torch --batch 1,8 \
  --precision fp32,fp16 --roofline --seconds 20 \
  --json "$out/$host-mvtec-224-full.json" --markdown "$out/$host-mvtec-224-full.md" "$@"
