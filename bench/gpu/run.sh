#!/usr/bin/env bash
# The GPU benchmark, run from the unpacked bundle (bench/gpu/pack.sh): AlexNet-224 training and inference images/s
# on TensorFlow.js webgpu (the bundle's own Node binary, Dawn from the webgpu package, the bundled Vulkan loader)
# and on PyTorch with the same model and batch (the machine's python3 with torch; CUDA when available).
# Writes OUT/results.json and OUT/results.md. Needs no Node.js and no network.
#
#   ./run.sh [--out DIR] [--batch 32] [--steps 10] [--warmup 2] [--torch-device auto|cuda|cpu] [--note TEXT]
#
# Against SwiftShader (a software adapter, for checking the bundle on a machine without a GPU):
#   VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json ./run.sh --batch 2 --steps 1 --warmup 1 --torch-device cpu
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/out"; batch=32; steps=10; warmup=2; device=auto; note=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --torch-device) device="$2"; shift 2 ;;
    --note) note="$2"; shift 2 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
mkdir -p "$out"
if ! python3 -c 'import torch' 2>/dev/null; then
  echo "run.sh: python3 ($(command -v python3 || echo 'not found')) cannot import torch; install PyTorch first" >&2
  exit 1
fi
# The bundled Vulkan loader (Debian's libvulkan1), used when the machine has none; the GPU driver provides the ICD.
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$here/lib"
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
if command -v nvidia-smi >/dev/null 2>&1; then nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt" || true; fi
ls /usr/share/vulkan/icd.d /etc/vulkan/icd.d 2>/dev/null > "$out/vulkan-icds.txt" || true

echo "== TensorFlow.js webgpu (Node $("$here/node" --version))" >&2
"$here/node" "$here/gpu-bench.mjs" measure --backend webgpu --batch "$batch" --steps "$steps" --warmup "$warmup" --out "$out/webgpu.json"

echo "== PyTorch ($device)" >&2
for mode in train infer; do
  python3 "$here/torch_train.py" --spec "$here/alexnet-spec.json" --size 224 --batch "$batch" --steps "$steps" --warmup "$warmup" \
    --threads "$(nproc)" --device "$device" --mode "$mode" | tail -n 1 > "$out/torch-$mode.json"
done

"$here/node" "$here/gpu-bench.mjs" report --out "$out/results" --webgpu "$out/webgpu.json" \
  --torch-train "$out/torch-train.json" --torch-infer "$out/torch-infer.json" ${note:+--note "$note"}
echo "wrote $out/results.json and $out/results.md" >&2
