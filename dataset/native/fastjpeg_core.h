/*
 * fastjpeg_core: the decode + resample of dataset/native/fastjpeg.c without any Node-API, so that the same code is
 * linked into the Node addon (fastjpeg.c), the libFuzzer harness (fuzz/fuzz_decode.c) and the sanitizer builds.
 */
#ifndef FASTJPEG_CORE_H
#define FASTJPEG_CORE_H

#include <stddef.h>

#define FJ_FIT_COVER 0
#define FJ_FIT_FILL 1
#define FJ_FIT_CONTAIN 2

/* Outcome of fj_decode. */
#define FJ_OK 0       /* out holds size*size*3 bytes */
#define FJ_FALLBACK 1 /* not for the fast path (why in `reason`): the general (sharp) path decides */
#define FJ_REJECT 2   /* the file is bad: `reject` holds the rejection reason (e.g. "exif-unreadable"), `reason` the detail */

/* Largest encoded file the fast path takes (covers are ~20-300 KB; bigger files go through sharp). */
#define FJ_MAX_FILE_BYTES (64L * 1024 * 1024)

/* Size of the `reason` buffer fj_decode needs. */
#define FJ_REASON_BYTES 256

/*
 * Decodes the JPEG `jpeg[0, len)` and resamples it to size x size RGB (uint8, HWC, row-major) into `out`
 * (size*size*3 bytes). fit: FJ_FIT_*. maxPixels: the largest accepted width*height of the file.
 * Returns FJ_OK, FJ_FALLBACK (reason set) or FJ_REJECT (*reject set to a static rejection reason, reason to the
 * detail). Never reads outside `jpeg[0, len)` nor writes outside `out`, whatever the bytes; thread-safe.
 * Preconditions (the caller's job): 1 <= size <= 8192, 0 <= fit <= 2, reason has FJ_REASON_BYTES bytes.
 */
int fj_decode(const unsigned char *jpeg, size_t len, unsigned char *out, int size, int fit, double maxPixels, const char **reject, char *reason);

/*
 * EXIF orientation (TIFF tag 0x0112 of IFD0) of an APP1 payload `p[0, len)`: 1 when the payload is not EXIF or has no
 * orientation tag, the tag's value otherwise, or -1 with *why set when the EXIF structure points outside the payload
 * (an IFD offset or an entry count past its end, a bad byte order mark or TIFF magic).
 */
int fj_exif_orientation(const unsigned char *p, size_t len, char *why, size_t whyLen);

/* The resampler's horizontal pass this build runs: "sse2", or "none" (scalar: FASTJPEG_NO_SIMD or no SSE2). */
const char *fj_simd(void);

#endif
