/*
 * fastjpeg_core: decode a plain JPEG with libjpeg-turbo's DCT scaling (the system libjpeg, API 6.2) and resample it to
 * S x S RGB (uint8, HWC, row-major) with an antialiased Catmull-Rom cubic filter. No Node-API here: fastjpeg.c wraps
 * it for Node, fuzz/fuzz_decode.c for libFuzzer. See fastjpeg_core.h for the contract and fastjpeg.c for what the fast
 * path accepts.
 *
 * Bytes from strangers: every offset, length and count read from the file is checked by subtraction against what is
 * left (never `offset + n > len`, which wraps), and every size product is computed in double or size_t after a bound
 * on each factor. Memory stays bounded: a file over maxPixels, a decode needing more than MAX_DECODER_BYTES of libjpeg
 * memory (progressive coefficient buffers), more than MAX_SCANS progressive scans (libjpeg-turbo's own guard against
 * scan-flood files, as in TurboJPEG's TJPARAM_SCANLIMIT), a decoded image over MAX_IMAGE_BYTES or a resample buffer
 * over MAX_RESAMPLE_BYTES is refused before allocating.
 *
 * Same pixels on every machine: the SSE2 path and the scalar path (FASTJPEG_NO_SIMD, or any target without SSE2, e.g.
 * ARM) do the same float operations in the same order (two partial sums over even and odd taps, then their sum) and
 * round halves up the same way (+0.5, then truncation); build with -ffp-contract=off so that no compiler fuses a
 * multiply-add on one path only (binding.gyp does).
 */
#define _POSIX_C_SOURCE 200809L
#include "fastjpeg_core.h"
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <setjmp.h>
#include <math.h>
#include <jpeglib.h>
#if defined(__SSE2__) && !defined(FASTJPEG_NO_SIMD)
#define FJ_SSE2 1
#include <emmintrin.h>
#endif

const char *fj_simd(void) {
#ifdef FJ_SSE2
  return "sse2";
#else
  return "none";
#endif
}

/* Bounds per task (several run at once, one per thread-pool thread). Covers are ~20-300 KB; bigger inputs are rare
 * and go through sharp. */
#define MAX_FILE_BYTES FJ_MAX_FILE_BYTES
#define MAX_DECODER_BYTES (256L * 1024 * 1024)
#define MAX_RESAMPLE_BYTES (64.0 * 1024 * 1024)
#define MAX_IMAGE_BYTES (64.0 * 1024 * 1024)
#define MAX_SCANS 500

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jump;
  int warned;
  char message[JMSG_LENGTH_MAX];
} ErrorMgr;

static void on_error_exit(j_common_ptr cinfo) {
  ErrorMgr *err = (ErrorMgr *)cinfo->err;
  (*cinfo->err->format_message)(cinfo, err->message);
  longjmp(err->jump, 1);
}

static void on_emit_message(j_common_ptr cinfo, int level) {
  ErrorMgr *err = (ErrorMgr *)cinfo->err;
  if (level < 0 && !err->warned) { /* a warning (corrupt data, premature end): the general path decides */
    err->warned = 1;
    (*cinfo->err->format_message)(cinfo, err->message);
  }
}

/* A progress monitor that stops progressive files with absurdly many scans (each scan re-walks the coefficients). */
static void on_progress(j_common_ptr cinfo) {
  if (cinfo->is_decompressor) {
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > MAX_SCANS) {
      ErrorMgr *err = (ErrorMgr *)cinfo->err;
      snprintf(err->message, sizeof err->message, "more than %d progressive scans", MAX_SCANS);
      longjmp(err->jump, 1);
    }
  }
}

int fj_exif_orientation(const unsigned char *p, size_t len, char *why, size_t whyLen) {
  if (len < 6 || memcmp(p, "Exif\0\0", 6) != 0) return 1; /* another APP1 (XMP): no orientation here */
  const unsigned char *t = p + 6;
  const size_t n = len - 6; /* the TIFF structure: every offset below is relative to t and checked against n */
  if (n < 8) {
    snprintf(why, whyLen, "EXIF TIFF header is %zu bytes, needs 8", n);
    return -1;
  }
  int le;
  if (t[0] == 'I' && t[1] == 'I') le = 1;
  else if (t[0] == 'M' && t[1] == 'M') le = 0;
  else {
    snprintf(why, whyLen, "EXIF byte order mark is neither II nor MM");
    return -1;
  }
#define U16(q) (le ? (uint32_t)((q)[0] | ((q)[1] << 8)) : (uint32_t)(((q)[0] << 8) | (q)[1]))
#define U32(q) (le ? ((uint32_t)(q)[0] | ((uint32_t)(q)[1] << 8) | ((uint32_t)(q)[2] << 16) | ((uint32_t)(q)[3] << 24)) \
                   : (((uint32_t)(q)[0] << 24) | ((uint32_t)(q)[1] << 16) | ((uint32_t)(q)[2] << 8) | (uint32_t)(q)[3]))
  if (U16(t + 2) != 42) {
    snprintf(why, whyLen, "EXIF TIFF magic is %u, not 42", (unsigned)U16(t + 2));
    return -1;
  }
  const uint32_t ifd = U32(t + 4);
  /* ifd <= n first, so that n - ifd cannot wrap; then room for the 2-byte entry count. */
  if (ifd < 8 || ifd > n || n - ifd < 2) {
    snprintf(why, whyLen, "EXIF IFD0 offset %lu is outside the %zu-byte TIFF structure", (unsigned long)ifd, n);
    return -1;
  }
  const uint32_t count = U16(t + ifd);
  const size_t room = (n - ifd - 2) / 12; /* whole 12-byte entries that fit after the count */
  if (count > room) {
    snprintf(why, whyLen, "EXIF IFD0 declares %lu entries, its segment holds %zu", (unsigned long)count, room);
    return -1;
  }
  for (uint32_t i = 0; i < count; i++) {
    const unsigned char *e = t + ifd + 2 + (size_t)12 * i; /* i < count <= room: inside t[0, n) */
    if (U16(e) == 0x0112) return (int)U16(e + 8);
  }
  return 1;
#undef U16
#undef U32
}

/*
 * Walks the JPEG's marker segments from SOI to the first SOS, before libjpeg sees the file: every segment's 2-byte
 * length must be at least 2 (it counts itself) and must fit in what is left of the file (compared by subtraction, so
 * nothing wraps). A SOFn's dimensions are checked against maxPixels here, so that a bomb is refused by what it
 * declares. Returns FJ_OK, or FJ_REJECT with *reject and reason set.
 */
static int walk_markers(const unsigned char *p, size_t len, double maxPixels, const char **reject, char *reason) {
  size_t at = 2; /* after SOI */
  for (;;) {
    /* Fill bytes: any number of 0xFF before a marker code. */
    size_t m = at;
    while (m < len && p[m] == 0xFF) m++;
    if (m == at || m >= len) return FJ_OK; /* not a marker here, or the end: libjpeg reports what is wrong */
    const unsigned code = p[m];
    const size_t seg = m + 1; /* first length byte */
    if (code == 0xD8 || code == 0xD9 || code == 0x01 || (code >= 0xD0 && code <= 0xD7)) { /* no length field */
      if (code == 0xD9) return FJ_OK;
      at = seg;
      continue;
    }
    if (len - seg < 2) {
      snprintf(reason, FJ_REASON_BYTES, "JPEG marker 0xFF%02X at byte %zu: the file ends inside its length field", code, m - 1);
      *reject = "truncated";
      return FJ_REJECT;
    }
    const size_t L = ((size_t)p[seg] << 8) | p[seg + 1];
    if (L < 2) {
      snprintf(reason, FJ_REASON_BYTES, "JPEG marker 0xFF%02X at byte %zu declares a length of %zu (at least 2)", code, m - 1, L);
      *reject = "corrupt";
      return FJ_REJECT;
    }
    if (L > len - seg) {
      snprintf(reason, FJ_REASON_BYTES, "JPEG marker 0xFF%02X at byte %zu declares %zu bytes, the file has %zu left", code, m - 1, L, len - seg);
      *reject = "truncated";
      return FJ_REJECT;
    }
    /* SOF0..SOF15 except DHT (C4), JPG (C8), DAC (CC): precision(1) height(2) width(2) at seg + 2. */
    if (code >= 0xC0 && code <= 0xCF && code != 0xC4 && code != 0xC8 && code != 0xCC && L >= 7) {
      const double h = (double)(((unsigned)p[seg + 3] << 8) | p[seg + 4]), w = (double)(((unsigned)p[seg + 5] << 8) | p[seg + 6]);
      if (w * h > maxPixels) {
        snprintf(reason, FJ_REASON_BYTES, "%.0fx%.0f = %.0f pixels, over image.maxPixels=%.0f", w, h, w * h, maxPixels);
        *reject = "too-many-pixels";
        return FJ_REJECT;
      }
    }
    if (code == 0xDA) return FJ_OK; /* SOS: entropy-coded data follows, libjpeg's job */
    at = seg + L;
  }
}

/* Catmull-Rom cubic (a = -0.5), the kernel of Pillow's BICUBIC and libvips' "cubic". */
static double cubic(double x) {
  const double a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/*
 * Weights of a 1-D antialiased resampling of the source interval [box0, box0 + boxLen) (n source samples) to out
 * samples, like Pillow's precompute_coeffs: the kernel is stretched by the reduction factor when shrinking.
 * bounds[2*i] = first source index, bounds[2*i+1] = tap count; weights[i*ksize + k], summing to 1.
 */
static int precompute(int n, double box0, double boxLen, int out, int **boundsOut, float **weightsOut, int *ksizeOut) {
  double scale = boxLen / out;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = 2.0 * filterscale;
  /* (int)(c + s + 0.5) - (int)(c - s + 0.5) <= ceil(2s) + 1 <= ksize: every tap fits. */
  int ksize = (int)ceil(support) * 2 + 1;
  int *bounds = malloc(sizeof(int) * 2 * out);
  float *weights = malloc(sizeof(float) * (size_t)ksize * out);
  double *tmp = malloc(sizeof(double) * ksize);
  if (!bounds || !weights || !tmp) { free(bounds); free(weights); free(tmp); return 0; }
  for (int i = 0; i < out; i++) {
    double center = box0 + (i + 0.5) * scale;
    double ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > n) xmax = n;
    xmax -= xmin;
    if (xmax > ksize) xmax = ksize;
    if (xmax < 1) { xmin = center < 0 ? 0 : n - 1; xmax = 1; }
    double ww = 0;
    float *w = weights + (size_t)i * ksize;
    for (int x = 0; x < xmax; x++) {
      double v = cubic((x + xmin - center + 0.5) * ss);
      tmp[x] = v;
      ww += v;
    }
    for (int x = 0; x < ksize; x++) w[x] = x < xmax ? (float)(ww != 0 ? tmp[x] / ww : 1.0 / xmax) : 0.0f;
    bounds[2 * i] = xmin;
    bounds[2 * i + 1] = xmax;
  }
  free(tmp);
  *boundsOut = bounds;
  *weightsOut = weights;
  *ksizeOut = ksize;
  return 1;
}

#ifndef FJ_SSE2
/* v + 0.5 truncated, saturated to 0..255: the scalar twin of the SSE2 path's cvtt + saturating packs. */
static inline unsigned char clip8(float v) {
  if (v <= 0.0f) return 0;
  if (v >= 255.0f) return 255;
  return (unsigned char)(v + 0.5f);
}
#endif

/* Locals written after setjmp and read after a longjmp out of libjpeg are volatile. */
int fj_decode(const unsigned char *jpeg, size_t len, unsigned char *out, int size, int fit, double maxPixels, const char **reject, char *reason) {
  struct jpeg_decompress_struct cinfo;
  struct jpeg_progress_mgr progress;
  ErrorMgr err;
  unsigned char *volatile img = NULL; /* decoded, scaled image, w x h x 3 */
  float *volatile tmp = NULL;
  int *volatile bh = NULL, *volatile bv = NULL;
  float *volatile wh = NULL, *volatile wv = NULL;
  volatile int status = FJ_OK;
  const int S = size;
  *reject = NULL;
  reason[0] = 0;
#define FALLBACK(...) do { snprintf(reason, FJ_REASON_BYTES, __VA_ARGS__); status = FJ_FALLBACK; } while (0)
#define REJECT(code, ...) do { snprintf(reason, FJ_REASON_BYTES, __VA_ARGS__); *reject = (code); status = FJ_REJECT; } while (0)
  if (len < 4 || jpeg[0] != 0xFF || jpeg[1] != 0xD8 || jpeg[2] != 0xFF) {
    FALLBACK("not a JPEG");
    return status;
  }
  if (len > (size_t)MAX_FILE_BYTES) { /* jpeg_mem_src takes an unsigned long; covers are far smaller */
    FALLBACK("file over the fast path's size limit");
    return status;
  }
  if (walk_markers(jpeg, len, maxPixels, reject, reason) == FJ_REJECT) return FJ_REJECT;
  memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error_exit;
  err.pub.emit_message = on_emit_message;
  err.warned = 0;
  err.message[0] = 0;
  if (setjmp(err.jump)) {
    FALLBACK("libjpeg: %s", err.message);
    goto done;
  }
  jpeg_create_decompress(&cinfo);
  cinfo.mem->max_memory_to_use = MAX_DECODER_BYTES; /* over it: "Backing store not supported", a fallback */
  memset(&progress, 0, sizeof progress);
  progress.progress_monitor = on_progress;
  cinfo.progress = &progress;
  jpeg_mem_src(&cinfo, jpeg, (unsigned long)len);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xffff);
  jpeg_read_header(&cinfo, TRUE);
  /* JDIMENSION is at most 65535 here (16-bit SOF fields): the products below are in double. */
  const double W = (double)cinfo.image_width, H = (double)cinfo.image_height;
  if (W * H > maxPixels) {
    REJECT("too-many-pixels", "%.0fx%.0f = %.0f pixels, over image.maxPixels=%.0f", W, H, W * H, maxPixels);
    goto done;
  }
  if (cinfo.data_precision != 8) { FALLBACK("not 8-bit"); goto done; }
  if (!((cinfo.jpeg_color_space == JCS_YCbCr && cinfo.num_components == 3) || (cinfo.jpeg_color_space == JCS_GRAYSCALE && cinfo.num_components == 1))) {
    FALLBACK("not YCbCr or grayscale");
    goto done;
  }
  if (cinfo.arith_code) { FALLBACK("arithmetic coding"); goto done; }
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
    /* data_length is what libjpeg saved (never more than the marker's bytes in the file). */
    if (m->marker == JPEG_APP0 + 2 && m->data_length >= 12 && memcmp(m->data, "ICC_PROFILE", 12) == 0) { FALLBACK("ICC profile"); goto done; }
    if (m->marker == JPEG_APP0 + 1) {
      char why[160];
      int o = fj_exif_orientation(m->data, m->data_length, why, sizeof why);
      if (o < 0) { REJECT("exif-unreadable", "%s", why); goto done; }
      if (o != 1) { FALLBACK("EXIF orientation"); goto done; }
    }
  }
  if (fit == FJ_FIT_CONTAIN && W != H) { FALLBACK("contain of a non-square image"); goto done; }
  /* The source box to resample, in original pixels (fill: everything; cover: the square that sharp's cover crop
   * keeps: libvips scales the short side to S and the long side L to round(L * S / short), then sharp's
   * CalculateCrop takes S pixels from (round(L * S / short) - S + 1) / 2 (integer division). A centred box at
   * (L - short) / 2 would differ by up to a pixel, which on fine-textured covers moves the mean absolute difference
   * to sharp's output from ~1 to ~10 levels.) */
  double bx = 0, by = 0, bw = W, bh0 = H;
  if (fit == FJ_FIT_COVER && W != H) {
    const double lng = W > H ? W : H, shrt = W > H ? H : W;
    const double f = (double)S / shrt;
    const double scaled = floor(lng * f + 0.5);
    const double off = scaled > S ? floor((scaled - S + 1) / 2) : 0;
    const double start = off / f;
    if (W > H) { bw = H; bx = start; }
    else { bh0 = W; by = start; }
  }
  /* DCT scaling by 1/d (d = 8, 4, 2, 1): the largest d that keeps the box at least S in both directions, as
   * Pillow's draft() and libvips' shrink-on-load do. */
  int d = 8;
  while (d > 1 && (bw / d < S || bh0 / d < S)) d /= 2;
  cinfo.scale_num = 1;
  cinfo.scale_denom = (unsigned int)d;
  cinfo.out_color_space = JCS_RGB;
  cinfo.dct_method = JDCT_ISLOW;
  jpeg_calc_output_dimensions(&cinfo);
  /* Bound the decoded image before libjpeg allocates anything for it. */
  if ((double)cinfo.output_width * cinfo.output_height * 3 > MAX_IMAGE_BYTES) { FALLBACK("decoded image over the fast path's limit"); goto done; }
  jpeg_start_decompress(&cinfo);
  const int w = (int)cinfo.output_width, h = (int)cinfo.output_height, comps = cinfo.output_components;
  if (comps != 3 || w < 1 || h < 1) { FALLBACK("unexpected output shape"); jpeg_abort_decompress(&cinfo); goto done; }
  const size_t stride = (size_t)w * 3; /* w <= 65535: no wrap */
  img = malloc(stride * (size_t)h);
  if (!img) { FALLBACK("out of memory"); jpeg_abort_decompress(&cinfo); goto done; }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[4];
    int n = 0;
    for (; n < 4 && (int)cinfo.output_scanline + n < h; n++) rows[n] = img + (size_t)(cinfo.output_scanline + n) * stride;
    jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)n);
    if (err.warned) break;
  }
  if (err.warned) {
    FALLBACK("libjpeg warning: %s", err.message);
    jpeg_abort_decompress(&cinfo);
    goto done;
  }
  jpeg_finish_decompress(&cinfo);
  if (err.warned) {
    FALLBACK("libjpeg warning: %s", err.message);
    goto done;
  }
  {
    /* The box in decoded (scaled) pixels. */
    const double sx = (double)w / W, sy = (double)h / H;
    const double x0 = bx * sx, y0 = by * sy, xl = bw * sx, yl = bh0 * sy;
    int kh, kv;
    int *bhl, *bvl;
    float *whl, *wvl;
    if (!precompute(w, x0, xl, S, &bhl, &whl, &kh)) { FALLBACK("out of memory"); goto done; }
    bh = bhl;
    wh = whl;
    if (!precompute(h, y0, yl, S, &bvl, &wvl, &kv)) { FALLBACK("out of memory"); goto done; }
    bv = bvl;
    wv = wvl;
    /* Vertical pass first (vectorises: whole rows), into S rows of RGB floats (+4 floats of padding so that the
     * horizontal pass can load 4 floats at any pixel), then the horizontal pass, 4 lanes (R, G, B, unused) per tap.
     * Only the columns [xmin, xmax) that the output reads are filtered vertically. precompute keeps every tap
     * inside [0, n). */
    int xmin = bhl[0], xmax = 0;
    for (int i = 0; i < S; i++) {
      if (bhl[2 * i] < xmin) xmin = bhl[2 * i];
      if (bhl[2 * i] + bhl[2 * i + 1] > xmax) xmax = bhl[2 * i] + bhl[2 * i + 1];
    }
    const int rowLen = (xmax - xmin) * 3 + 4;
    if ((double)S * rowLen * sizeof(float) > MAX_RESAMPLE_BYTES) { FALLBACK("resample buffer over the fast path's limit"); goto done; }
    float *acc0 = malloc(sizeof(float) * (size_t)S * (size_t)rowLen);
    tmp = acc0;
    if (!acc0) { FALLBACK("out of memory"); goto done; }
    for (int j = 0; j < S; j++) {
      const int y0i = bvl[2 * j], n = bvl[2 * j + 1];
      const float *k = wvl + (size_t)j * kv;
      float *acc = acc0 + (size_t)j * rowLen;
      const int a = xmin * 3, b = xmax * 3;
      for (int x = 0; x < rowLen; x++) acc[x] = 0;
      for (int yy = 0; yy < n; yy++) {
        const float kk = k[yy];
        const unsigned char *s = img + (size_t)(y0i + yy) * stride + a;
        for (int x = 0; x < b - a; x++) acc[x] += kk * (float)s[x];
      }
    }
    for (int j = 0; j < S; j++) {
      const float *src = acc0 + (size_t)j * rowLen;
      unsigned char *o = out + (size_t)j * S * 3;
      for (int i = 0; i < S; i++) {
        const int x0i = bhl[2 * i], n = bhl[2 * i + 1];
        const float *k = whl + (size_t)i * kh;
        const float *s = src + (size_t)(x0i - xmin) * 3;
        /* Both paths: even taps into one partial sum, odd taps into another, the odd last tap into the first, then
         * first + second, + 0.5, truncated and saturated to 0..255 (halves round up, on every machine). */
#ifdef FJ_SSE2
        __m128 e = _mm_setzero_ps(), od = _mm_setzero_ps();
        int x = 0;
        for (; x + 1 < n; x += 2) {
          e = _mm_add_ps(e, _mm_mul_ps(_mm_set1_ps(k[x]), _mm_loadu_ps(s + 3 * x)));
          od = _mm_add_ps(od, _mm_mul_ps(_mm_set1_ps(k[x + 1]), _mm_loadu_ps(s + 3 * x + 3)));
        }
        if (x < n) e = _mm_add_ps(e, _mm_mul_ps(_mm_set1_ps(k[x]), _mm_loadu_ps(s + 3 * x)));
        /* truncation of v + 0.5 (cvtt), then signed saturation to 16 bits and unsigned to 8: negatives become 0 */
        __m128i q = _mm_cvttps_epi32(_mm_add_ps(_mm_add_ps(e, od), _mm_set1_ps(0.5f)));
        q = _mm_packs_epi32(q, q);
        q = _mm_packus_epi16(q, q);
        const int px = _mm_cvtsi128_si32(q);
        o[3 * i] = (unsigned char)px;
        o[3 * i + 1] = (unsigned char)(px >> 8);
        o[3 * i + 2] = (unsigned char)(px >> 16);
#else
        float er = 0, eg = 0, eb = 0, orr = 0, og = 0, ob = 0;
        int x = 0;
        for (; x + 1 < n; x += 2) {
          er = er + k[x] * s[3 * x];
          eg = eg + k[x] * s[3 * x + 1];
          eb = eb + k[x] * s[3 * x + 2];
          orr = orr + k[x + 1] * s[3 * x + 3];
          og = og + k[x + 1] * s[3 * x + 4];
          ob = ob + k[x + 1] * s[3 * x + 5];
        }
        if (x < n) {
          er = er + k[x] * s[3 * x];
          eg = eg + k[x] * s[3 * x + 1];
          eb = eb + k[x] * s[3 * x + 2];
        }
        o[3 * i] = clip8(er + orr);
        o[3 * i + 1] = clip8(eg + og);
        o[3 * i + 2] = clip8(eb + ob);
#endif
      }
    }
  }
done:
  jpeg_destroy_decompress(&cinfo);
  free(img);
  free(tmp);
  free(bh);
  free(bv);
  free(wh);
  free(wv);
  return status;
#undef FALLBACK
#undef REJECT
}
