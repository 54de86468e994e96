#!/usr/bin/env bash
# Builds a variant of the fastjpeg addon outside node-gyp's build/ directory, for checks that need another build of
# the same sources; load it with COVERS_FASTJPEG_ADDON=<out> (dataset/preprocess.ts).
#   build-variant.sh nosimd OUT.node   the scalar resampler (FASTJPEG_NO_SIMD, no auto-vectorisation): what a machine
#                                      without SSE2 (e.g. ARM) runs; its shards must be byte-identical (test/shards-simd.test.ts)
#   build-variant.sh asan OUT.node     clang with AddressSanitizer + UndefinedBehaviorSanitizer (UB is fatal); Node must
#                                      run with the ASan runtime preloaded: LD_PRELOAD="$(clang -print-file-name=libclang_rt.asan-x86_64.so)"
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
variant=${1:?variant: nosimd or asan}
out=${2:?output .node path}
node_include=${NODE_INCLUDE:-$(node -p "require('path').join(process.execPath, '..', '..', 'include', 'node')")}
src=("$here/fastjpeg.c" "$here/fastjpeg_core.c")
common=(-shared -fPIC -std=c11 -Wall -ffp-contract=off -I"$node_include" -o "$out")
mkdir -p "$(dirname "$out")"
case "$variant" in
  nosimd) ${CC:-cc} -O3 -DFASTJPEG_NO_SIMD -fno-tree-vectorize "${common[@]}" "${src[@]}" -ljpeg ;;
  asan) clang -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -shared-libasan "${common[@]}" "${src[@]}" -ljpeg ;;
  *) echo "build-variant.sh: unknown variant $variant" >&2; exit 2 ;;
esac
