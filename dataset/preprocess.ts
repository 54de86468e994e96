/**
 * Preprocessing: one downloaded cover → one `[S, S, 3]` uint8 RGB tensor (HWC, row-major), with sharp (libvips).
 *
 * What every image goes through, in order:
 * 1. decode the first page/frame only (animated GIF/WebP: frame 0), refusing more than `maxPixels` pixels
 *    (`limitInputPixels`: a decompression bomb, i.e. a small file declaring huge dimensions, is refused from its header
 *    before any pixel is decoded) and refusing truncated data (`failOn: 'truncated'`);
 * 2. honour the EXIF orientation (`autoOrient`);
 * 3. resize to S×S with `fit`: `cover` (centre crop to a square, then resize), `fill` (stretch) or `contain`
 *    (letterbox, padded black), with the {@link RESIZE_KERNEL} filter. JPEG inputs are shrunk on load (libjpeg DCT scaling by 2, 4 or 8) when the image is at
 *    least twice the target size (`fastShrinkOnLoad`);
 * 4. flatten any alpha channel onto black; convert CMYK, Lab, grayscale and every other colour space to sRGB
 *    (3 channels); reduce 16-bit samples to 8-bit;
 * 5. write raw bytes: exactly S·S·3.
 *
 * Two implementations (`decoder`, config `shards.decoder`; {@link resolveDecoder}):
 * - `fast`: plain JPEGs (8-bit baseline/progressive YCbCr or grayscale, no ICC profile, no EXIF orientation other than
 *   1, within `maxPixels`, `contain` only when square) go through dataset/native/fastjpeg.c in one thread-pool task
 *   that also reads the file (the main thread only starts the task and takes its callback):
 *   libjpeg-turbo decodes at 1/d scale (d = 8, 4, 2 or 1, the largest keeping the crop at least S: Pillow's `draft`),
 *   then a separable antialiased Catmull-Rom resample of the crop box (Pillow's `resize` with BICUBIC and a box).
 *   Its pixels differ from sharp's by a few levels (mean absolute difference ~1-2) and match Pillow's `draft` +
 *   `resize` to within ~0.2 levels on average. Anything else, a libjpeg error or warning (truncated data), a file or
 *   decode over the addon's memory bounds, or a missing addon, takes the sharp path, which also gives bad files their
 *   rejection reason. Throughput and CPU per image against Pillow: bench/preprocess.bench.ts (bench/RESULTS.md).
 * - `sharp`: the steps above in libvips, for every image. sharp's cost here is mostly libvips' per-pipeline
 *   machinery (threads, regions, allocation: ~0.5 ms per image) and its slower JPEG decode through that machinery,
 *   not the resampling.
 * - `auto` (the default): `fast` when the addon loaded, else `sharp`.
 *
 * Speed (docs/PITFALLS.md #4): libvips runs one thread per image here (`sharp.concurrency()` is 1 on this machine), so both
 * cores come from having several images in flight at once (`shards.concurrency`, {@link orderedMap}); libuv runs
 * each sharp pipeline, and each fast-path task (file read included), on its own thread-pool thread. The pool has
 * UV_THREADPOOL_SIZE threads (4 by default), fixed when the process first uses it, which under tsx is before this
 * module loads: to use more than 4 cores, set UV_THREADPOOL_SIZE in the environment that starts Node. The operation
 * cache is disabled ({@link configureSharp}): every image is seen once, so caching only costs memory.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import sharp, { type OutputInfo } from 'sharp';

/** How a non-square image becomes S×S (config `image.fit`). */
export type Fit = 'cover' | 'fill' | 'contain';

/** Options of {@link preprocessImage}. */
export interface PreprocessOptions {
  /** Side S of the output, in pixels (config `image.size`). */
  size: number;
  /** config `image.fit`. */
  fit: Fit;
  /** Largest accepted decoded image, width × height in pixels (config `image.maxPixels`). */
  maxPixels: number;
  /**
   * config `shards.decoder`. `sharp` (the default here, for callers that pass nothing): every image through sharp.
   * `fast`: plain JPEGs through {@link fastJpeg} (libjpeg-turbo DCT scaling + Pillow-like cubic resample), everything
   * else through sharp. `auto`: `fast` when the addon loaded, else `sharp` ({@link resolveDecoder}).
   */
  decoder?: Decoder;
}

/** Which implementation preprocesses an image (config `shards.decoder`); see {@link PreprocessOptions.decoder}. */
export type Decoder = 'auto' | 'sharp' | 'fast';

/**
 * Why an image was rejected; the `reason` column of `DATA_DIR/shards/rejected.tsv`.
 * - `missing`: the file does not exist or cannot be read;
 * - `empty`: zero bytes;
 * - `unsupported-format`: not an image format libvips knows (random bytes, HTML error pages);
 * - `truncated`: the data ends early;
 * - `too-many-pixels`: declared dimensions over `image.maxPixels` (a decompression bomb, or just too large);
 * - `exif-unreadable`: an EXIF block whose structure points outside itself (an IFD offset or entry count past the
 *   APP1 segment); found by the fast JPEG path, which rejects instead of reading on;
 * - `corrupt`: any other decoding failure;
 * - `decoder-crash`: the decoding process died on this file (a signal such as SIGSEGV, or an exit), alone;
 * - `decoder-timeout`: decoding this file took longer than the decode timeout (dataset/decode-pool.ts).
 */
export type RejectReason = 'missing' | 'empty' | 'unsupported-format' | 'truncated' | 'too-many-pixels' | 'exif-unreadable' | 'corrupt' | 'decoder-crash' | 'decoder-timeout';

/** Every {@link RejectReason}, e.g. to check a reason that crossed a process boundary. */
export const REJECT_REASONS: readonly RejectReason[] = ['missing', 'empty', 'unsupported-format', 'truncated', 'too-many-pixels', 'exif-unreadable', 'corrupt', 'decoder-crash', 'decoder-timeout'];

/** A preprocessing failure of one image, with its {@link RejectReason} and libvips' message as `detail`. */
export class PreprocessError extends Error {
  constructor(
    readonly reason: RejectReason,
    readonly detail: string,
  ) {
    super(`${reason}: ${detail}`);
    this.name = 'PreprocessError';
  }
}

let configured = false;

/**
 * Process-wide sharp settings for preprocessing: no operation cache (each image is seen once), and libvips threads per
 * image left at sharp's default (one per core, which here is 1). Idempotent.
 */
function configureSharp(): void {
  if (configured) return;
  sharp.cache(false);
  configured = true;
}

/** Classifies a sharp/libvips error message into a {@link RejectReason}. */
export function classifyError(message: string): RejectReason {
  const m = message.toLowerCase();
  if (m.includes('pixel limit')) return 'too-many-pixels';
  if (m.includes('unsupported image format') || m.includes('is not a known file format') || m.includes('not a known')) return 'unsupported-format';
  if (m.includes('premature end') || m.includes('truncated') || m.includes('unexpected end') || m.includes('end of file') || m.includes('read error') || m.includes('out of data')) {
    return 'truncated';
  }
  if (m.includes('is missing') || m.includes('no such file') || m.includes('enoent') || m.includes('file not found') || m.includes('does not exist')) return 'missing';
  return 'corrupt';
}

const BLACK = { r: 0, g: 0, b: 0, alpha: 1 } as const;

/**
 * The resampling kernel: `cubic` (Catmull-Rom), the filter of Pillow's default `Image.resize` (BICUBIC), antialiased
 * when shrinking like Pillow's. About 20% cheaper than sharp's default `lanczos3` on 300×300 → 256×256.
 */
export const RESIZE_KERNEL = 'cubic' as const;

/**
 * A readers–writer lock over libvips pipelines. libvips keeps one process-wide error buffer, so when two pipelines fail
 * at once one may read the other's message, or "Unknown error" (seen here with truncated files). Pipelines run
 * shared; a failed image is retried alone (exclusive), which gives its own, reproducible message. Waiters are served
 * in arrival order, so an exclusive request is not starved.
 */
class PipelineLock {
  private shared = 0;
  private exclusive = false;
  private readonly waiting: { exclusive: boolean; grant: () => void }[] = [];

  async run<T>(exclusive: boolean, fn: () => Promise<T>): Promise<T> {
    if (this.waiting.length === 0 && this.compatible(exclusive)) this.take(exclusive);
    else await new Promise<void>((grant) => this.waiting.push({ exclusive, grant }));
    try {
      return await fn();
    } finally {
      if (exclusive) this.exclusive = false;
      else this.shared--;
      this.drain();
    }
  }

  private compatible(exclusive: boolean): boolean {
    return exclusive ? !this.exclusive && this.shared === 0 : !this.exclusive;
  }

  private take(exclusive: boolean): void {
    if (exclusive) this.exclusive = true;
    else this.shared++;
  }

  private drain(): void {
    while (this.waiting.length > 0 && this.compatible(this.waiting[0]!.exclusive)) {
      const next = this.waiting.shift()!;
      this.take(next.exclusive);
      next.grant();
    }
  }
}

const lock = new PipelineLock();

/**
 * sharp's messages that say a pipeline failed but not why: libvips' message went to its process-wide error buffer or
 * warning queue at a moment another pipeline (or a late libvips thread) cleared or took it.
 */
const GENERIC_SHARP_ERROR = /^(Unknown error|Warning treated as error due to failOn setting)\s*$/;

/**
 * Runs the libvips pipeline `fn` alongside others; when it fails, runs it again with no other pipeline running and
 * throws that error, whose message is then its own (libvips' error buffer and sharp's warning queue are
 * process-wide, see {@link PipelineLock}). An exclusive run whose message still says nothing specific ("Unknown
 * error", "Warning treated as error due to failOn setting" without the warning) is tried twice more, and the first
 * specific message is thrown: the same bad input gives the same message on every run, whatever ran next to it.
 * @throws the error of the exclusive run(s).
 */
export async function withOwnSharpErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await lock.run(false, fn);
  } catch {
    let last: unknown;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await lock.run(true, fn);
      } catch (e) {
        last = e;
        if (!GENERIC_SHARP_ERROR.test((e as Error)?.message ?? '')) break;
      }
    }
    throw last;
  }
}

async function decodeResize(input: string | Buffer, opts: PreprocessOptions): Promise<{ data: Buffer; info: OutputInfo }> {
  const { size, fit, maxPixels } = opts;
  return sharp(input, {
    failOn: 'truncated',
    limitInputPixels: maxPixels,
    sequentialRead: true,
    autoOrient: true,
    pages: 1,
    page: 0,
  })
    .resize(size, size, { fit, position: 'centre', background: BLACK, kernel: RESIZE_KERNEL, fastShrinkOnLoad: true })
    .flatten({ background: BLACK })
    .toColourspace('srgb')
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
}

function toPreprocessError(e: unknown): PreprocessError {
  const message = (e as Error)?.message ?? String(e);
  if ((e as NodeJS.ErrnoException)?.code === 'ENOENT') return new PreprocessError('missing', message);
  return new PreprocessError(classifyError(message), message.split('\n')[0]!.trim());
}

/** The native addon dataset/native/fastjpeg.c (built by `npm install`, see its binding.gyp). */
export interface FastJpegAddon {
  /**
   * Reads (when `input` is a path) and decodes a JPEG into `out` (S·S·3 bytes, RGB HWC) on a libuv thread-pool thread,
   * then calls back with three strings, all `""` on success:
   * - `fallbackReason`: why the general path must take the image (unreadable file, not a JPEG, not a plain 8-bit
   *   YCbCr/grayscale JPEG, ICC profile, EXIF orientation ≠ 1, over the addon's memory bounds, `contain` of a
   *   non-square image, any libjpeg error or warning);
   * - `rejectReason` and `rejectDetail`: the file is bad and must not be decoded further (`too-many-pixels`: header
   *   dimensions over `maxPixels`; `exif-unreadable`: an EXIF IFD offset or entry count outside its APP1 segment).
   * Never throws for bad image data. `fit`: 0 cover, 1 fill, 2 contain.
   * @throws TypeError / RangeError for wrong argument types or sizes (a programming error).
   */
  decode(
    input: string | Buffer,
    out: Buffer,
    size: number,
    fit: number,
    maxPixels: number,
    callback: (err: Error | null, fallbackReason: string, rejectReason: string, rejectDetail: string) => void,
  ): void;
  /**
   * A Buffer over a shared (MAP_SHARED) mapping of the file `path`, created with mode 0600 or grown to `bytes` bytes;
   * another process mapping the same file sees the same bytes (the decode pool's image slots, dataset/decode-pool.ts).
   * @throws Error when the file cannot be created, sized or mapped; RangeError for bytes outside 1 B..4 GiB.
   */
  mapShared(path: string, bytes: number): Buffer;
  /** The resampler's horizontal pass in this build: `sse2`, or `none` (scalar; built with FASTJPEG_NO_SIMD, or no SSE2). Both give the same bytes. */
  readonly simd: 'sse2' | 'none';
}

const FIT_CODE: Record<Fit, number> = { cover: 0, fill: 1, contain: 2 };

let addon: FastJpegAddon | null | undefined;
let addonError = '';

/**
 * Where the addon is loaded from: `$COVERS_FASTJPEG_ADDON` when set (another build of dataset/native, e.g. the
 * sanitizer or no-SIMD builds of .ci/run and the tests), else dataset/native/build/Release/fastjpeg.node.
 */
export const FASTJPEG_ADDON_PATH =
  process.env.COVERS_FASTJPEG_ADDON ||
  // dataset/preprocess.ts in a checkout; dist/dataset/preprocess.js in the npm package, whose addon is built in dataset/native/.
  fileURLToPath(['./native/build/Release/fastjpeg.node', '../../dataset/native/build/Release/fastjpeg.node'].map((p) => new URL(p, import.meta.url)).find((u) => existsSync(u)) ?? new URL('./native/build/Release/fastjpeg.node', import.meta.url));

/**
 * The fast JPEG path, or `null` where the addon was not built (no compiler or no libjpeg headers when `npm install`
 * ran: `npm run build:native` builds it) or does not load; then every image goes through sharp.
 */
export function fastJpeg(): FastJpegAddon | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(FASTJPEG_ADDON_PATH) as FastJpegAddon;
    } catch (e) {
      addon = null;
      addonError = ((e as Error)?.message ?? String(e)).split('\n')[0]!;
    }
  }
  return addon;
}

/**
 * The implementation a {@link Decoder} setting gives on this machine, and why, in one line (for the stage's log).
 * `auto` → `fast` when {@link fastJpeg} loads, else `sharp`; `fast` without the addon → `sharp` as well.
 */
export function resolveDecoder(decoder: Decoder = 'sharp'): { decoder: 'fast' | 'sharp'; why: string } {
  if (decoder === 'sharp') return { decoder: 'sharp', why: 'shards.decoder is "sharp"' };
  if (fastJpeg()) return { decoder: 'fast', why: `shards.decoder is "${decoder}" and the fastjpeg addon loaded (plain JPEGs natively, everything else through sharp)` };
  return {
    decoder: 'sharp',
    why: `shards.decoder is "${decoder}" but the fastjpeg addon did not load (${addonError}; \`npm run build:native\` needs a C compiler and libjpeg62-turbo-dev): every image through sharp`,
  };
}

/** Counts of images by the path they took in this process, or in its decode workers (for tests and benchmarks). */
export const preprocessCounts = { fast: 0, sharp: 0 };

/**
 * The fast path: the S·S·3 bytes, or `null` when the image must go through sharp.
 * @throws PreprocessError when the addon rejects the file (`too-many-pixels`, `exif-unreadable`).
 */
function tryFast(fj: FastJpegAddon, input: string | Buffer, opts: PreprocessOptions, into?: Buffer): Promise<Buffer | null> {
  const out = into ?? Buffer.allocUnsafe(opts.size * opts.size * 3);
  return new Promise((resolve, reject) => {
    fj.decode(input, out, opts.size, FIT_CODE[opts.fit], opts.maxPixels, (err, fallbackReason, rejectReason, rejectDetail) => {
      if (err) reject(err);
      else if (rejectReason) reject(new PreprocessError(REJECT_REASONS.includes(rejectReason as RejectReason) ? (rejectReason as RejectReason) : 'corrupt', rejectDetail));
      else resolve(fallbackReason === '' ? out : null);
    });
  });
}

/**
 * Decodes and resizes one image to `[S, S, 3]` uint8 RGB, HWC, row-major (see the module comment for the steps).
 * A failure is retried once with no other pipeline running, so that its reason and detail are its own (see
 * {@link PipelineLock}) and the same on every run.
 * @param input the encoded file: a path, or its bytes.
 * @param into where to write the S·S·3 bytes (e.g. a slot of shared memory); by default a new Buffer.
 * @returns exactly S·S·3 bytes: `into` when given, else sharp's or the fast path's output buffer, not copied.
 * @throws PreprocessError with the reason when the image cannot be used (never for a valid image of any colour space,
 *   bit depth, orientation or alpha).
 */
export async function preprocessImage(input: string | Buffer, opts: PreprocessOptions, into?: Buffer): Promise<Buffer> {
  return (await preprocessImageVia(input, opts, into)).image;
}

/**
 * {@link preprocessImage}, also saying which implementation decoded the image (`fast`: the native addon; `sharp`).
 * @throws PreprocessError as {@link preprocessImage}.
 */
export async function preprocessImageVia(input: string | Buffer, opts: PreprocessOptions, into?: Buffer): Promise<{ image: Buffer; via: 'fast' | 'sharp' }> {
  const { size } = opts;
  if (into && into.length !== size * size * 3) throw new RangeError(`preprocessImage: into holds ${into.length} bytes, not ${size}·${size}·3`);
  if (Buffer.isBuffer(input) && input.length === 0) throw new PreprocessError('empty', 'the file has 0 bytes');
  const fj = opts.decoder === 'fast' || opts.decoder === 'auto' ? fastJpeg() : null;
  if (fj) {
    // The addon reads a path itself. A file that cannot be read, or is not a plain JPEG, goes to sharp with the
    // original input, which gives the rejection reason.
    const fast = await tryFast(fj, input, opts, into);
    if (fast) {
      preprocessCounts.fast++;
      return { image: fast, via: 'fast' };
    }
  }
  preprocessCounts.sharp++;
  configureSharp();
  let out: { data: Buffer; info: OutputInfo };
  try {
    out = await withOwnSharpErrors(() => decodeResize(input, opts));
  } catch (e) {
    throw toPreprocessError(e);
  }
  const { data, info } = out;
  const expected = size * size * 3;
  if (info.width !== size || info.height !== size || info.channels !== 3 || data.length !== expected) {
    throw new PreprocessError('corrupt', `decoded to ${info.width}x${info.height}x${info.channels} (${data.length} bytes), expected ${size}x${size}x3`);
  }
  if (into) data.copy(into);
  return { image: into ?? data, via: 'sharp' };
}

/**
 * Maps `items` through the async `fn` with at most `concurrency` calls in flight, yielding the results in input
 * order (so output order never depends on which call finishes first). At most `concurrency` results are held.
 * A rejected call rejects the iteration at its position; callers that must not stop catch inside `fn`.
 */
export async function* orderedMap<T, R>(items: Iterable<T>, concurrency: number, fn: (item: T, index: number) => Promise<R>): AsyncGenerator<R> {
  const it = items[Symbol.iterator]();
  const inFlight: Promise<R>[] = [];
  let index = 0;
  let done = false;
  const fill = () => {
    while (!done && inFlight.length < concurrency) {
      const next = it.next();
      if (next.done) {
        done = true;
        break;
      }
      const p = fn(next.value, index++);
      p.catch(() => undefined); // handled when awaited in order
      inFlight.push(p);
    }
  };
  fill();
  while (inFlight.length > 0) {
    const r = await inFlight.shift()!;
    fill();
    yield r;
  }
}
