#!/usr/bin/env bash
# Builds the GPU benchmark bundle: a directory (and a .tar.xz of it, ≤ 64 MiB) that runs on a Linux x86-64 machine
# with an NVIDIA GPU and no Node.js: this machine's Node binary, bench/gpu/gpu-bench.ts bundled with esbuild, the
# production node_modules it imports (TensorFlow.js core/layers/backends and the webgpu package with only its
# linux-x64 Dawn binary), Debian's Vulkan loader package (libvulkan1: the .deb and its libvulkan.so.1), the PyTorch
# script and the AlexNet spec. Usage: bench/gpu/pack.sh [OUT_DIR] (default bench/gpu/dist, git-ignored).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
dist="$(mkdir -p "${1:-$repo/bench/gpu/dist}" && cd "${1:-$repo/bench/gpu/dist}" && pwd)"
stage="$dist/covers-gpu-bench"
rm -rf "$stage" && mkdir -p "$stage/lib"
cd "$repo"

cp "$(node -p process.execPath)" "$stage/node"
node_modules/.bin/esbuild bench/gpu/gpu-bench.ts --bundle --platform=node --format=esm --target=node20 \
  --packages=external --outfile="$stage/gpu-bench.mjs" --log-level=warning
cp bench/torch_train.py bench/gpu/run.sh "$stage/"
node --import tsx -e "import('./train/model-params.ts').then((m) => process.stdout.write(JSON.stringify(m.resolveModelSpec('AlexNet', ''))))" > "$stage/alexnet-spec.json"

# Production dependencies of the bundle, at the versions this repository has installed.
ver() { node -p "require('./node_modules/$1/package.json').version"; }
cat > "$stage/package.json" <<JSON
{ "name": "covers-gpu-bench", "private": true, "type": "module", "dependencies": {
  "@tensorflow/tfjs-core": "$(ver @tensorflow/tfjs-core)", "@tensorflow/tfjs-layers": "$(ver @tensorflow/tfjs-layers)",
  "@tensorflow/tfjs-backend-cpu": "$(ver @tensorflow/tfjs-backend-cpu)", "@tensorflow/tfjs-backend-webgpu": "$(ver @tensorflow/tfjs-backend-webgpu)",
  "@tensorflow/tfjs-backend-wasm": "$(ver @tensorflow/tfjs-backend-wasm)", "webgpu": "$(ver webgpu)" } }
JSON
(cd "$stage" && npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
# Only what runs: no source maps, no browser bundles, Dawn for linux-x64 only.
find "$stage/node_modules" -name '*.map' -delete
find "$stage/node_modules/@tensorflow" -maxdepth 3 \( -name '*.min.js' -o -name '*.es2017.js' -o -name '*.fesm.js' -o -name 'miniprogram' \) -exec rm -rf {} +
find "$stage/node_modules/webgpu/dist" -mindepth 1 -maxdepth 1 ! -name linux-x64 -exec rm -rf {} +

# The Vulkan loader (Dawn dlopens libvulkan.so.1; NVIDIA's driver ships the ICD but not always the loader).
(cd "$stage/lib" && apt-get download libvulkan1 >/dev/null 2>&1 && dpkg-deb -x libvulkan1_*.deb x \
  && cp -P x/usr/lib/x86_64-linux-gnu/libvulkan.so.1* . && rm -rf x)
ls "$stage/lib"/libvulkan.so.1 >/dev/null

XZ_OPT="-T0 -6" tar -C "$dist" -cJf "$dist/covers-gpu-bench-linux-x64.tar.xz" covers-gpu-bench
bytes=$(stat -c %s "$dist/covers-gpu-bench-linux-x64.tar.xz")
echo "bundle: $stage ($(du -sh "$stage" | cut -f1)); $dist/covers-gpu-bench-linux-x64.tar.xz: $((bytes / 1048576)) MiB"
if [ "$bytes" -gt $((64 * 1048576)) ]; then echo "pack.sh: the bundle is over 64 MiB compressed" >&2; exit 1; fi
