#!/usr/bin/env bash
# Fuzzes the fast JPEG path's decode entry point (fuzz_decode.c → fj_decode) with libFuzzer under ASan + UBSan for a
# bounded time, seeded with the odd files the tests build and the first bytes of real covers (generated here, not
# stored in the repository), plus every file in regressions/. Exits non-zero when the fuzzer finds a crash, a leak,
# undefined behaviour or a timeout; the input is left as WORK/crash-* (or leak-*, timeout-*): add it to regressions/
# (test/fuzz-regressions.test.ts then runs it through the stage's decoder) and fix the cause.
#   run.sh [SECONDS=120] [COVERS_DIR]     needs clang and libclang-rt-14-dev (libFuzzer), libjpeg62-turbo-dev
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
seconds=${1:-120}
covers=${2:-${COVERS_DIR:-}} # empty: the tests' own lookup (test/helpers/dataset.ts)
work=${FUZZ_WORK:-$(mktemp -d -t fastjpeg-fuzz.XXXXXX)}
mkdir -p "$work/corpus" "$work/seeds"
clang -g -O1 -std=c11 -ffp-contract=off -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$here/.." "$here/fuzz_decode.c" "$here/../fastjpeg_core.c" -ljpeg -o "$work/fuzz_decode"
(cd "$repo" && node --import tsx test/helpers/fuzz-seeds.ts "$work/seeds" ${covers:+"$covers"})
cp "$here"/regressions/* "$work/seeds/"
echo "fuzz: ${seconds}s, corpus $work/corpus, seeds $(ls "$work/seeds" | wc -l) files"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# -timeout: one input taking 10 s is a hang; -rss_limit_mb: the decoder's own bounds keep it far below.
"$work/fuzz_decode" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$work/" "$work/corpus" "$work/seeds" 2>&1 | grep -vE '^#[0-9]+\s+(NEW|REDUCE|pulse)' || status=${PIPESTATUS[0]}
if [ "${status:-0}" -ne 0 ]; then
  echo "fuzz: FAILED (exit ${status}); the input that failed is under $work/ (crash-*, leak-*, timeout-*)" >&2
  ls -la "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null >&2 || true
  exit 1
fi
echo "fuzz: nothing found in ${seconds}s"
