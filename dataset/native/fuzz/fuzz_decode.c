/*
 * libFuzzer harness for the fast JPEG path's decode entry point (fj_decode, ../fastjpeg_core.c): the bytes are a
 * file from a stranger. Each input is decoded twice, as the shards stage would (cover fit to 64x64) and with other
 * parameters (fill to 37x37, an odd size, so that the resampler's edges differ), under a small maxPixels so that
 * inputs stay fast. A crash, an out-of-bounds access (ASan), undefined behaviour (UBSan, -fno-sanitize-recover), a
 * leak, or a status other than OK / FALLBACK / REJECT fails the run.
 *
 * Build and run: dataset/native/fuzz/run.sh (what .ci/run does).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../fastjpeg_core.h"

static unsigned char out64[64 * 64 * 3];
static unsigned char out37[37 * 37 * 3];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *reject;
  char reason[FJ_REASON_BYTES];
  int s = fj_decode(data, size, out64, 64, FJ_FIT_COVER, 4e6, &reject, reason);
  if (s != FJ_OK && s != FJ_FALLBACK && s != FJ_REJECT) abort();
  if (s == FJ_REJECT && (!reject || !reason[0])) abort(); /* a rejection always names its reason and detail */
  s = fj_decode(data, size, out37, 37, FJ_FIT_FILL, 4e6, &reject, reason);
  if (s != FJ_OK && s != FJ_FALLBACK && s != FJ_REJECT) abort();
  /* and the EXIF parser alone, on the raw bytes as an APP1 payload */
  char why[160];
  (void)fj_exif_orientation(data, size, why, sizeof why);
  return 0;
}
