/*
 * fastjpeg: the fast path of dataset/preprocess.ts. One call decodes a plain JPEG with libjpeg-turbo's DCT scaling
 * (the system libjpeg, API 6.2) and resamples it to S x S RGB (uint8, HWC, row-major) with an antialiased Catmull-Rom
 * cubic filter, in one libuv thread-pool task: no libvips pipeline, no intermediate JS buffers.
 *
 * It only accepts what it can do exactly like the general sharp path would: baseline/extended/progressive 8-bit
 * JPEGs in YCbCr (3 components) or grayscale (1), without an ICC profile, without an EXIF orientation other than 1,
 * within maxPixels, decoding without any libjpeg warning (a truncated or damaged file warns). Everything else comes
 * back as status "fallback" with the reason, and preprocess.ts gives it to sharp, which also names the rejection
 * reason of a bad file.
 *
 * JS API (typed in dataset/preprocess.ts, FastJpegAddon): decode(input: string | Buffer, out: Buffer, size, fit, maxPixels,
 * callback(err, result)) where input is a file path (read inside the thread-pool task, so that an image costs the
 * main thread one call and one callback, and no fs round trip) or the encoded bytes; fit is 0 = cover (centre crop),
 * 1 = fill (stretch), 2 = contain (only square inputs, where it equals fill); result is "" on success (out holds
 * S*S*3 bytes) or the reason to fall back.
 *
 * Bad input never crashes the process and memory stays bounded: a file over MAX_FILE_BYTES, an image over maxPixels,
 * a decode needing more than MAX_DECODER_BYTES of libjpeg memory (progressive coefficient buffers), more than
 * MAX_SCANS progressive scans (libjpeg-turbo's own guard against scan-flood files, as in TurboJPEG's
 * TJPARAM_SCANLIMIT), a resample buffer over MAX_RESAMPLE_BYTES, and every libjpeg error or warning become a fallback
 * reason; the sharp path then decides and names the rejection reason.
 */
#define _POSIX_C_SOURCE 200809L /* open, fstat, read, O_CLOEXEC under -std=c11 */
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <math.h>
#include <jpeglib.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define FIT_COVER 0
#define FIT_FILL 1
#define FIT_CONTAIN 2

/* Bounds per task (several run at once, one per thread-pool thread). Covers are ~20-300 KB; bigger inputs are rare
 * and go through sharp. */
#define MAX_FILE_BYTES (64L * 1024 * 1024)
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

/* EXIF orientation (tag 0x0112 of IFD0) of an APP1 "Exif\0\0" payload; 1 when absent, -1 when unreadable. */
static int exif_orientation(const unsigned char *p, unsigned int len) {
  if (len < 14 || memcmp(p, "Exif\0\0", 6) != 0) return 1;
  const unsigned char *t = p + 6;
  unsigned int n = len - 6;
  int le;
  if (t[0] == 'I' && t[1] == 'I') le = 1;
  else if (t[0] == 'M' && t[1] == 'M') le = 0;
  else return -1;
#define U16(q) (le ? (unsigned)((q)[0] | ((q)[1] << 8)) : (unsigned)(((q)[0] << 8) | (q)[1]))
#define U32(q) (le ? ((unsigned)(q)[0] | ((unsigned)(q)[1] << 8) | ((unsigned)(q)[2] << 16) | ((unsigned)(q)[3] << 24)) \
                   : (((unsigned)(q)[0] << 24) | ((unsigned)(q)[1] << 16) | ((unsigned)(q)[2] << 8) | (unsigned)(q)[3]))
  unsigned int ifd = U32(t + 4);
  if (ifd + 2 > n) return -1;
  unsigned int count = U16(t + ifd);
  for (unsigned int i = 0; i < count; i++) {
    unsigned int e = ifd + 2 + 12 * i;
    if (e + 12 > n) return -1;
    if (U16(t + e) == 0x0112) return (int)U16(t + e + 8);
  }
  return 1;
#undef U16
#undef U32
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

static inline unsigned char clip8(float v) {
  if (v <= 0.0f) return 0;
  if (v >= 255.0f) return 255;
  return (unsigned char)(v + 0.5f);
}

typedef struct {
  /* inputs: a path (read in the task into `owned`) or caller bytes */
  char *path;
  unsigned char *owned;
  const unsigned char *jpeg;
  size_t jpegLen;
  unsigned char *out;
  int size, fit;
  double maxPixels;
  /* result: "" or the reason to fall back */
  char reason[JMSG_LENGTH_MAX + 32];
  napi_ref jpegRef, outRef, callbackRef;
  napi_async_work work;
} Task;

static void fallback(Task *t, const char *reason) {
  snprintf(t->reason, sizeof t->reason, "%s", reason);
}

/* Reads t->path into t->owned (at most MAX_FILE_BYTES); 0 with t->reason set when the file cannot be used here. */
static int read_file(Task *t) {
  int fd = open(t->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { snprintf(t->reason, sizeof t->reason, "open: %s", strerror(errno)); return 0; }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { fallback(t, "not a regular file"); close(fd); return 0; }
  if (st.st_size < 4) { fallback(t, "too short for a JPEG"); close(fd); return 0; }
  if (st.st_size > MAX_FILE_BYTES) { fallback(t, "file over the fast path's size limit"); close(fd); return 0; }
  size_t len = (size_t)st.st_size, got = 0;
  t->owned = malloc(len);
  if (!t->owned) { fallback(t, "out of memory"); close(fd); return 0; }
  while (got < len) {
    ssize_t r = read(fd, t->owned + got, len - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break; /* error, or the file shrank: use what we have; libjpeg reports truncation */
    got += (size_t)r;
  }
  close(fd);
  t->jpeg = t->owned;
  t->jpegLen = got;
  return 1;
}

/* Decodes and resamples t->jpeg into t->out (S*S*3), or sets t->reason. Runs on a thread-pool thread. */
static void run(Task *t) {
  struct jpeg_decompress_struct cinfo;
  ErrorMgr err;
  unsigned char *volatile img = NULL; /* decoded, scaled image, w x h x 3 */
  float *volatile tmp = NULL;
  int *bh = NULL, *bv = NULL;
  float *wh = NULL, *wv = NULL;
  t->reason[0] = 0;
  if (t->path && !read_file(t)) return;
  if (t->jpegLen < 4 || t->jpeg[0] != 0xFF || t->jpeg[1] != 0xD8 || t->jpeg[2] != 0xFF) { fallback(t, "not a JPEG"); return; }
  struct jpeg_progress_mgr progress;
  memset(&cinfo, 0, sizeof cinfo);
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error_exit;
  err.pub.emit_message = on_emit_message;
  err.warned = 0;
  err.message[0] = 0;
  if (setjmp(err.jump)) {
    char m[sizeof t->reason];
    snprintf(m, sizeof m, "libjpeg: %s", err.message);
    fallback(t, m);
    goto done;
  }
  jpeg_create_decompress(&cinfo);
  cinfo.mem->max_memory_to_use = MAX_DECODER_BYTES; /* over it: "Backing store not supported", a fallback */
  progress.progress_monitor = on_progress;
  cinfo.progress = &progress;
  jpeg_mem_src(&cinfo, t->jpeg, (unsigned long)t->jpegLen);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xffff);
  jpeg_save_markers(&cinfo, JPEG_APP0 + 2, 0xffff);
  jpeg_read_header(&cinfo, TRUE);
  const int W = (int)cinfo.image_width, H = (int)cinfo.image_height, S = t->size;
  if ((double)W * (double)H > t->maxPixels) { fallback(t, "over maxPixels"); goto done; }
  if (cinfo.data_precision != 8) { fallback(t, "not 8-bit"); goto done; }
  if (!((cinfo.jpeg_color_space == JCS_YCbCr && cinfo.num_components == 3) || (cinfo.jpeg_color_space == JCS_GRAYSCALE && cinfo.num_components == 1))) {
    fallback(t, "not YCbCr or grayscale");
    goto done;
  }
  if (cinfo.arith_code) { fallback(t, "arithmetic coding"); goto done; }
  for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next) {
    if (m->marker == JPEG_APP0 + 2 && m->data_length >= 12 && memcmp(m->data, "ICC_PROFILE", 12) == 0) { fallback(t, "ICC profile"); goto done; }
    if (m->marker == JPEG_APP0 + 1) {
      int o = exif_orientation(m->data, m->data_length);
      if (o != 1) { fallback(t, "EXIF orientation"); goto done; }
    }
  }
  if (t->fit == FIT_CONTAIN && W != H) { fallback(t, "contain of a non-square image"); goto done; }
  /* The source box to resample, in original pixels (fill: everything; cover: the square that sharp's cover crop
   * keeps: libvips scales the short side to S and the long side L to round(L * S / short), then sharp's
   * CalculateCrop takes S pixels from (round(L * S / short) - S + 1) / 2 (integer division). A centred box at
   * (L - short) / 2 would differ by up to a pixel, which on fine-textured covers moves the mean absolute difference
   * to sharp's output from ~1 to ~10 levels.) */
  double bx = 0, by = 0, bw = W, bh0 = H;
  if (t->fit == FIT_COVER && W != H) {
    const int lng = W > H ? W : H, shrt = W > H ? H : W;
    const double f = (double)S / shrt;
    const int scaled = (int)floor(lng * f + 0.5);
    const int off = scaled > S ? (scaled - S + 1) / 2 : 0;
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
  jpeg_start_decompress(&cinfo);
  const int w = (int)cinfo.output_width, h = (int)cinfo.output_height, comps = cinfo.output_components;
  if (comps != 3) { fallback(t, "unexpected output components"); jpeg_abort_decompress(&cinfo); goto done; }
  if ((double)w * h * 3 > MAX_IMAGE_BYTES) { fallback(t, "decoded image over the fast path's limit"); jpeg_abort_decompress(&cinfo); goto done; }
  img = malloc((size_t)w * h * 3);
  if (!img) { fallback(t, "out of memory"); jpeg_abort_decompress(&cinfo); goto done; }
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW rows[4];
    int n = 0;
    for (; n < 4 && (int)cinfo.output_scanline + n < h; n++) rows[n] = img + (size_t)(cinfo.output_scanline + n) * w * 3;
    jpeg_read_scanlines(&cinfo, rows, (JDIMENSION)n);
    if (err.warned) break;
  }
  if (err.warned) {
    char m[sizeof t->reason];
    snprintf(m, sizeof m, "libjpeg warning: %s", err.message);
    fallback(t, m);
    jpeg_abort_decompress(&cinfo);
    goto done;
  }
  jpeg_finish_decompress(&cinfo);
  if (err.warned) {
    char m[sizeof t->reason];
    snprintf(m, sizeof m, "libjpeg warning: %s", err.message);
    fallback(t, m);
    goto done;
  }
  /* The box in decoded (scaled) pixels. */
  const double sx = (double)w / W, sy = (double)h / H;
  const double x0 = bx * sx, y0 = by * sy, xl = bw * sx, yl = bh0 * sy;
  int kh, kv;
  if (!precompute(w, x0, xl, S, &bh, &wh, &kh) || !precompute(h, y0, yl, S, &bv, &wv, &kv)) { fallback(t, "out of memory"); goto done; }
  /* Vertical pass first (vectorises: whole rows), into S rows of w RGB floats (+1 float of padding so that the
   * horizontal pass can load 4 floats at any pixel), then the horizontal pass, 4 lanes (R, G, B, unused) per tap.
   * Only the columns [xmin, xmax) that the output reads are filtered vertically. */
  {
    int xmin = bh[0], xmax = 0;
    for (int i = 0; i < S; i++) {
      if (bh[2 * i] < xmin) xmin = bh[2 * i];
      if (bh[2 * i] + bh[2 * i + 1] > xmax) xmax = bh[2 * i] + bh[2 * i + 1];
    }
    /* tmp row j holds columns [xmin, xmax) as RGB floats, + 4 floats of padding. */
    const int rowLen = (xmax - xmin) * 3 + 4;
    if ((double)S * rowLen * sizeof(float) > MAX_RESAMPLE_BYTES) { fallback(t, "resample buffer over the fast path's limit"); goto done; }
    tmp = malloc(sizeof(float) * (size_t)S * rowLen);
    if (!tmp) { fallback(t, "out of memory"); goto done; }
    for (int j = 0; j < S; j++) {
      const int y0i = bv[2 * j], n = bv[2 * j + 1];
      const float *k = wv + (size_t)j * kv;
      float *acc = tmp + (size_t)j * rowLen;
      const int a = xmin * 3, b = xmax * 3;
      for (int x = 0; x < rowLen; x++) acc[x] = 0;
      for (int yy = 0; yy < n; yy++) {
        const float kk = k[yy];
        const unsigned char *s = img + (size_t)(y0i + yy) * w * 3 + a;
        for (int x = 0; x < b - a; x++) acc[x] += kk * (float)s[x];
      }
    }
    for (int j = 0; j < S; j++) {
      const float *src = tmp + (size_t)j * rowLen;
      unsigned char *o = t->out + (size_t)j * S * 3;
      for (int i = 0; i < S; i++) {
        const int x0i = bh[2 * i], n = bh[2 * i + 1];
        const float *k = wh + (size_t)i * kh;
        const float *s = src + (size_t)(x0i - xmin) * 3;
#ifdef __SSE2__
        __m128 acc0 = _mm_setzero_ps(), acc1 = _mm_setzero_ps();
        int x = 0;
        for (; x + 1 < n; x += 2) {
          acc0 = _mm_add_ps(acc0, _mm_mul_ps(_mm_set1_ps(k[x]), _mm_loadu_ps(s + 3 * x)));
          acc1 = _mm_add_ps(acc1, _mm_mul_ps(_mm_set1_ps(k[x + 1]), _mm_loadu_ps(s + 3 * x + 3)));
        }
        if (x < n) acc0 = _mm_add_ps(acc0, _mm_mul_ps(_mm_set1_ps(k[x]), _mm_loadu_ps(s + 3 * x)));
        /* round to nearest, saturate to 0..255 */
        __m128i q = _mm_cvtps_epi32(_mm_add_ps(acc0, acc1));
        q = _mm_packs_epi32(q, q);
        q = _mm_packus_epi16(q, q);
        const int px = _mm_cvtsi128_si32(q);
        o[3 * i] = (unsigned char)px;
        o[3 * i + 1] = (unsigned char)(px >> 8);
        o[3 * i + 2] = (unsigned char)(px >> 16);
#else
        float r = 0, g = 0, bb = 0;
        for (int x = 0; x < n; x++) {
          r += k[x] * s[3 * x];
          g += k[x] * s[3 * x + 1];
          bb += k[x] * s[3 * x + 2];
        }
        o[3 * i] = clip8(r);
        o[3 * i + 1] = clip8(g);
        o[3 * i + 2] = clip8(bb);
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
}

static void free_task(Task *t) {
  free(t->path);
  free(t->owned);
  free(t);
}

static void execute(napi_env env, void *data) {
  (void)env;
  run((Task *)data);
}

static void complete(napi_env env, napi_status status, void *data) {
  Task *t = (Task *)data;
  napi_value cb, undef, argv[2];
  napi_get_reference_value(env, t->callbackRef, &cb);
  napi_get_undefined(env, &undef);
  if (status != napi_ok) {
    napi_value msg;
    napi_create_string_utf8(env, "fastjpeg: task failed", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &argv[0]);
    argv[1] = undef;
  } else {
    napi_get_null(env, &argv[0]);
    napi_create_string_utf8(env, t->reason, NAPI_AUTO_LENGTH, &argv[1]);
  }
  if (t->jpegRef) napi_delete_reference(env, t->jpegRef);
  napi_delete_reference(env, t->outRef);
  napi_delete_reference(env, t->callbackRef);
  napi_delete_async_work(env, t->work);
  free_task(t);
  napi_call_function(env, undef, cb, 2, argv, NULL);
}

#define CHECK(call, what)                                   \
  do {                                                      \
    if ((call) != napi_ok) {                                \
      napi_throw_type_error(env, NULL, "fastjpeg: " what); \
      return NULL;                                          \
    }                                                       \
  } while (0)

/* decode(input: string path | Buffer, out, size, fit, maxPixels, callback) */
static napi_value decode(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL), "bad arguments");
  if (argc != 6) {
    napi_throw_type_error(env, NULL, "fastjpeg: decode(input, out, size, fit, maxPixels, callback)");
    return NULL;
  }
  napi_valuetype inputType, cbType;
  void *jpeg = NULL, *out;
  size_t jpegLen = 0, outLen, pathLen = 0;
  int32_t size, fit;
  double maxPixels;
  CHECK(napi_typeof(env, argv[0], &inputType), "bad input");
  if (inputType == napi_string) CHECK(napi_get_value_string_utf8(env, argv[0], NULL, 0, &pathLen), "input must be a path or a Buffer");
  else CHECK(napi_get_buffer_info(env, argv[0], &jpeg, &jpegLen), "input must be a path or a Buffer");
  CHECK(napi_get_buffer_info(env, argv[1], &out, &outLen), "out must be a Buffer");
  CHECK(napi_get_value_int32(env, argv[2], &size), "size must be a number");
  CHECK(napi_get_value_int32(env, argv[3], &fit), "fit must be a number");
  CHECK(napi_get_value_double(env, argv[4], &maxPixels), "maxPixels must be a number");
  CHECK(napi_typeof(env, argv[5], &cbType), "bad callback");
  if (cbType != napi_function) {
    napi_throw_type_error(env, NULL, "fastjpeg: callback must be a function");
    return NULL;
  }
  if (size < 1 || size > 8192 || outLen != (size_t)size * size * 3 || fit < 0 || fit > 2 || !(maxPixels >= 0)) {
    napi_throw_range_error(env, NULL, "fastjpeg: size out of range, out not size*size*3 bytes, fit not 0..2, or bad maxPixels");
    return NULL;
  }
  Task *t = calloc(1, sizeof(Task));
  if (!t) {
    napi_throw_error(env, NULL, "fastjpeg: out of memory");
    return NULL;
  }
  if (inputType == napi_string) {
    t->path = malloc(pathLen + 1);
    if (!t->path) {
      free_task(t);
      napi_throw_error(env, NULL, "fastjpeg: out of memory");
      return NULL;
    }
    napi_get_value_string_utf8(env, argv[0], t->path, pathLen + 1, &pathLen);
    if (strlen(t->path) != pathLen) { /* a NUL inside the path: let the general path report it */
      free(t->path);
      t->path = NULL;
      t->jpegLen = 0; /* "not a JPEG" fallback */
    }
  } else {
    t->jpeg = jpeg;
    t->jpegLen = jpegLen;
    napi_create_reference(env, argv[0], 1, &t->jpegRef);
  }
  t->out = out;
  t->size = size;
  t->fit = fit;
  t->maxPixels = maxPixels;
  napi_value name;
  napi_create_string_utf8(env, "fastjpeg.decode", NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, argv[1], 1, &t->outRef);
  napi_create_reference(env, argv[5], 1, &t->callbackRef);
  if (napi_create_async_work(env, NULL, name, execute, complete, t, &t->work) != napi_ok || napi_queue_async_work(env, t->work) != napi_ok) {
    if (t->jpegRef) napi_delete_reference(env, t->jpegRef);
    napi_delete_reference(env, t->outRef);
    napi_delete_reference(env, t->callbackRef);
    free_task(t);
    napi_throw_error(env, NULL, "fastjpeg: cannot queue the task");
    return NULL;
  }
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "decode", NAPI_AUTO_LENGTH, decode, NULL, &fn);
  napi_set_named_property(env, exports, "decode", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
