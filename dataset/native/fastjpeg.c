/*
 * fastjpeg: the fast path of dataset/preprocess.ts, as a Node-API addon. One call decodes a plain JPEG with
 * libjpeg-turbo's DCT scaling and resamples it to S x S RGB (uint8, HWC, row-major) with an antialiased Catmull-Rom
 * cubic filter (fastjpeg_core.c), in one libuv thread-pool task: no libvips pipeline, no intermediate JS buffers.
 *
 * It only accepts what it can do exactly like the general sharp path would: baseline/extended/progressive 8-bit
 * JPEGs in YCbCr (3 components) or grayscale (1), without an ICC profile, without an EXIF orientation other than 1,
 * within maxPixels, decoding without any libjpeg warning (a truncated or damaged file warns). Everything else comes
 * back as a fallback reason, and preprocess.ts gives it to sharp, which also names the rejection reason of a bad file.
 * Structures the addon itself must parse and finds broken (an EXIF IFD pointing outside its segment) or dimensions
 * over maxPixels come back as a rejection (reason and detail), without reading further.
 *
 * JS API (typed in dataset/preprocess.ts, FastJpegAddon): decode(input: string | Buffer, out: Buffer, size, fit,
 * maxPixels, callback(err, fallbackReason, rejectReason, rejectDetail)) where input is a file path (read inside the
 * thread-pool task, so that an image costs the main thread one call and one callback, and no fs round trip) or the
 * encoded bytes; fit is 0 = cover (centre crop), 1 = fill (stretch), 2 = contain (only square inputs, where it equals
 * fill). On success all three strings are "" and out holds S*S*3 bytes.
 *
 * Bad input never crashes the process and memory stays bounded (fastjpeg_core.c says how); the libFuzzer harness in
 * fuzz/ and the sanitizer builds in .ci/run check it.
 */
#define _POSIX_C_SOURCE 200809L /* open, fstat, read, ftruncate, mmap, O_CLOEXEC under -std=c11 */
#include <node_api.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "fastjpeg_core.h"

typedef struct {
  /* inputs: a path (read in the task into `owned`) or caller bytes */
  char *path;
  unsigned char *owned;
  const unsigned char *jpeg;
  size_t jpegLen;
  unsigned char *out;
  int size, fit;
  double maxPixels;
  /* result: FJ_OK, FJ_FALLBACK (reason) or FJ_REJECT (reject, reason = detail) */
  int status;
  const char *reject;
  char reason[FJ_REASON_BYTES];
  napi_ref jpegRef, outRef, callbackRef;
  napi_async_work work;
} Task;

static void fallback(Task *t, const char *reason) {
  snprintf(t->reason, sizeof t->reason, "%s", reason);
  t->status = FJ_FALLBACK;
}

/* Reads t->path into t->owned (at most FJ_MAX_FILE_BYTES); 0 with t->reason set when the file cannot be used here. */
static int read_file(Task *t) {
  int fd = open(t->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) { snprintf(t->reason, sizeof t->reason, "open: %s", strerror(errno)); t->status = FJ_FALLBACK; return 0; }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) { fallback(t, "not a regular file"); close(fd); return 0; }
  if (st.st_size < 4) { fallback(t, "too short for a JPEG"); close(fd); return 0; }
  if (st.st_size > FJ_MAX_FILE_BYTES) { fallback(t, "file over the fast path's size limit"); close(fd); return 0; }
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

/* Runs on a thread-pool thread. */
static void run(Task *t) {
  t->status = FJ_OK;
  t->reject = NULL;
  t->reason[0] = 0;
  if (t->path && !read_file(t)) return;
  t->status = fj_decode(t->jpeg, t->jpegLen, t->out, t->size, t->fit, t->maxPixels, &t->reject, t->reason);
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
  napi_value cb, undef, argv[4];
  napi_get_reference_value(env, t->callbackRef, &cb);
  napi_get_undefined(env, &undef);
  if (status != napi_ok) {
    napi_value msg;
    napi_create_string_utf8(env, "fastjpeg: task failed", NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &argv[0]);
    argv[1] = argv[2] = argv[3] = undef;
  } else {
    napi_get_null(env, &argv[0]);
    const int rejected = t->status == FJ_REJECT && t->reject;
    napi_create_string_utf8(env, t->status == FJ_FALLBACK ? t->reason : "", NAPI_AUTO_LENGTH, &argv[1]);
    napi_create_string_utf8(env, rejected ? t->reject : "", NAPI_AUTO_LENGTH, &argv[2]);
    napi_create_string_utf8(env, rejected ? t->reason : "", NAPI_AUTO_LENGTH, &argv[3]);
  }
  if (t->jpegRef) napi_delete_reference(env, t->jpegRef);
  napi_delete_reference(env, t->outRef);
  napi_delete_reference(env, t->callbackRef);
  napi_delete_async_work(env, t->work);
  free_task(t);
  napi_call_function(env, undef, cb, 4, argv, NULL);
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

static void unmap(napi_env env, void *data, void *hint) {
  (void)env;
  munmap(data, (size_t)(uintptr_t)hint);
}

/*
 * mapShared(path: string, bytes: number): Buffer — a Buffer over a MAP_SHARED mapping of the file at `path`, created
 * (mode 0600) or grown to `bytes` bytes. Two processes mapping the same file see each other's writes: the decode pool
 * (dataset/decode-pool.ts) hands decoded images from its worker processes to the stage this way, without copying
 * them through a pipe. Unmapped when the Buffer is collected.
 */
static napi_value map_shared(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char path[4096];
  size_t pathLen = 0;
  double bytesD;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL), "bad arguments");
  if (argc != 2) {
    napi_throw_type_error(env, NULL, "fastjpeg: mapShared(path, bytes)");
    return NULL;
  }
  CHECK(napi_get_value_string_utf8(env, argv[0], path, sizeof path, &pathLen), "path must be a string");
  CHECK(napi_get_value_double(env, argv[1], &bytesD), "bytes must be a number");
  if (pathLen == 0 || pathLen >= sizeof path - 1 || strlen(path) != pathLen || !(bytesD >= 1 && bytesD <= 4.0 * 1024 * 1024 * 1024)) {
    napi_throw_range_error(env, NULL, "fastjpeg: mapShared: empty, too long or NUL-containing path, or bytes not in 1..4 GiB");
    return NULL;
  }
  const size_t bytes = (size_t)bytesD;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    char m[4200];
    snprintf(m, sizeof m, "fastjpeg: mapShared: open %s: %s", path, strerror(errno));
    napi_throw_error(env, NULL, m);
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || (st.st_size < (off_t)bytes && ftruncate(fd, (off_t)bytes) != 0)) {
    char m[4200];
    snprintf(m, sizeof m, "fastjpeg: mapShared: size %s: %s", path, strerror(errno));
    close(fd);
    napi_throw_error(env, NULL, m);
    return NULL;
  }
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    char m[4200];
    snprintf(m, sizeof m, "fastjpeg: mapShared: mmap %s: %s", path, strerror(errno));
    napi_throw_error(env, NULL, m);
    return NULL;
  }
  napi_value buf;
  if (napi_create_external_buffer(env, bytes, p, unmap, (void *)(uintptr_t)bytes, &buf) != napi_ok) {
    munmap(p, bytes);
    napi_throw_error(env, NULL, "fastjpeg: mapShared: cannot create the Buffer");
    return NULL;
  }
  return buf;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "decode", NAPI_AUTO_LENGTH, decode, NULL, &fn);
  napi_set_named_property(env, exports, "decode", fn);
  napi_create_function(env, "mapShared", NAPI_AUTO_LENGTH, map_shared, NULL, &fn);
  napi_set_named_property(env, exports, "mapShared", fn);
  napi_value simd;
  napi_create_string_utf8(env, fj_simd(), NAPI_AUTO_LENGTH, &simd);
  napi_set_named_property(env, exports, "simd", simd);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
