/**
 * Preprocessing of every colour space, bit depth, orientation, alpha, animation and corruption case we know of: each
 * gives a correct `[S, S, 3]` RGB tensor or a rejection with its reason (dataset/preprocess.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { crc32 } from 'node:zlib';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { classifyError, fastJpeg, orderedMap, preprocessCounts, preprocessImage, PreprocessError, RESIZE_KERNEL, type PreprocessOptions } from '../dataset/preprocess.ts';
import { listCovers } from './helpers/dataset.ts';

/** Why the Pillow comparison cannot run here, or false when Python's Pillow imports. */
const NO_PILLOW: string | false = spawnSync('python3', ['-c', 'import PIL'], { stdio: 'ignore' }).status === 0
  ? false
  : 'needs Python with Pillow (pip install -r test/python/requirements.txt)';

const S = 16;
const opts: PreprocessOptions = { size: S, fit: 'cover', maxPixels: 10_000_000 };

/** A W×H RGB image whose left half is `left` and right half `right`. */
async function halves(w: number, h: number, left: [number, number, number], right: [number, number, number]): Promise<Sharp> {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.set(x < w / 2 ? left : right, (y * w + x) * 3);
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } });
}

/** The pixel at (x, y) of an `[S, S, 3]` tensor. */
const px = (t: Uint8Array, x: number, y: number, size = S) => [...t.subarray((y * size + x) * 3, (y * size + x) * 3 + 3)];

function near(actual: number[], expected: number[], tol: number, what: string) {
  for (let c = 0; c < 3; c++) assert.ok(Math.abs(actual[c]! - expected[c]!) <= tol, `${what}: got [${actual}], expected [${expected}] ± ${tol}`);
}

async function rejectReason(input: string | Buffer): Promise<string> {
  try {
    await preprocessImage(input, opts);
  } catch (e) {
    assert.ok(e instanceof PreprocessError, `expected a PreprocessError, got ${String(e)}`);
    assert.ok(e.detail.length > 0);
    return e.reason;
  }
  assert.fail('expected a rejection');
}

/** A PNG whose header declares w×h pixels but holds a 1×1 image's data: a decompression bomb's header. */
async function pngBomb(w: number, h: number): Promise<Buffer> {
  const png = Buffer.from(await sharp({ create: { width: 1, height: 1, channels: 3, background: 'black' } }).png().toBuffer());
  png.writeUInt32BE(w, 16);
  png.writeUInt32BE(h, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)) >>> 0, 29); // IHDR CRC over type + data
  return png;
}

test('a plain sRGB JPEG gives exactly S·S·3 bytes equal to a direct sharp decode', async () => {
  const cover = listCovers()[0]!.path;
  const t = await preprocessImage(cover, opts);
  assert.equal(t.length, S * S * 3);
  const direct = await sharp(cover).resize(S, S, { fit: 'cover', kernel: RESIZE_KERNEL }).raw().toBuffer();
  assert.deepEqual(Buffer.from(t), direct);
});

test('CMYK JPEG is converted to sRGB', async () => {
  const cmyk = await sharp({ create: { width: 24, height: 24, channels: 3, background: { r: 220, g: 40, b: 40 } } }).toColourspace('cmyk').jpeg().toBuffer();
  assert.equal((await sharp(cmyk).metadata()).space, 'cmyk');
  const t = await preprocessImage(cmyk, opts);
  assert.equal(t.length, S * S * 3);
  near(px(t, 8, 8), [220, 40, 40], 40, 'CMYK red');
  assert.ok(px(t, 8, 8)[0]! > 150 && px(t, 8, 8)[1]! < 100, 'still red after the CMYK round trip');
});

test('grayscale (1 channel) JPEG and grayscale+alpha PNG become RGB', async () => {
  const gray = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 90, g: 90, b: 90 } } }).toColourspace('b-w').jpeg().toBuffer();
  assert.equal((await sharp(gray).metadata()).channels, 1);
  near(px(await preprocessImage(gray, opts), 3, 3), [90, 90, 90], 2, 'gray');
  const grayAlpha = await sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 200, g: 200, b: 200, alpha: 0.5 } } }).toColourspace('b-w').png().toBuffer();
  assert.equal((await sharp(grayAlpha).metadata()).channels, 2);
  near(px(await preprocessImage(grayAlpha, opts), 3, 3), [100, 100, 100], 2, 'gray + alpha flattened on black');
});

test('16-bit PNG is reduced to 8-bit', async () => {
  const png16 = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 200, g: 30, b: 60 } } }).toColourspace('rgb16').png().toBuffer();
  assert.equal((await sharp(png16).metadata()).depth, 'ushort');
  const t = await preprocessImage(png16, opts);
  assert.equal(t.length, S * S * 3);
  near(px(t, 5, 5), [200, 30, 60], 1, '16-bit');
});

test('a PNG with alpha named .jpg is sniffed by content and flattened on black', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pp-'));
  try {
    const png = await sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 200, g: 100, b: 50, alpha: 0.5 } } }).png().toBuffer();
    const file = join(dir, 'a123.jpg');
    writeFileSync(file, png);
    near(px(await preprocessImage(file, opts), 4, 4), [100, 50, 25], 2, 'half-transparent colour over black');
    const clear = await sharp({ create: { width: 20, height: 20, channels: 4, background: { r: 255, g: 255, b: 255, alpha: 0 } } }).png().toBuffer();
    near(px(await preprocessImage(clear, opts), 4, 4), [0, 0, 0], 0, 'fully transparent white is black');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('progressive JPEG decodes like the baseline JPEG of the same image', async () => {
  const img = await halves(40, 40, [250, 0, 0], [0, 0, 250]);
  const base = await preprocessImage(await img.clone().jpeg({ quality: 95 }).toBuffer(), opts);
  const prog = await preprocessImage(await img.clone().jpeg({ quality: 95, progressive: true }).toBuffer(), opts);
  near(px(prog, 2, 8), px(base, 2, 8), 3, 'progressive left');
  near(px(prog, 13, 8), px(base, 13, 8), 3, 'progressive right');
});

test('EXIF orientation is honoured (orientation 6: rotate 90° clockwise)', async () => {
  // Stored upright: left half red, right half blue. Orientation 6 means "rotate 90° CW to display": red ends on top.
  const jpeg = await (await halves(40, 40, [250, 0, 0], [0, 0, 250])).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  assert.equal((await sharp(jpeg).metadata()).orientation, 6);
  const t = await preprocessImage(jpeg, opts);
  near(px(t, 8, 2), [250, 0, 0], 30, 'top is red');
  near(px(t, 8, 13), [0, 0, 250], 30, 'bottom is blue');
});

test('fit: cover crops the centre, fill stretches, contain pads black', async () => {
  // 60×20: red | green | blue thirds.
  const raw = Buffer.alloc(60 * 20 * 3);
  for (let y = 0; y < 20; y++) for (let x = 0; x < 60; x++) raw.set(x < 20 ? [255, 0, 0] : x < 40 ? [0, 255, 0] : [0, 0, 255], (y * 60 + x) * 3);
  const png = await sharp(raw, { raw: { width: 60, height: 20, channels: 3 } }).png().toBuffer();
  const cover = await preprocessImage(png, { ...opts, fit: 'cover' });
  near(px(cover, 1, 8), [0, 255, 0], 5, 'cover: left edge is the centre third');
  near(px(cover, 14, 8), [0, 255, 0], 5, 'cover: right edge is the centre third');
  const fill = await preprocessImage(png, { ...opts, fit: 'fill' });
  near(px(fill, 1, 8), [255, 0, 0], 5, 'fill: left is red');
  near(px(fill, 14, 8), [0, 0, 255], 5, 'fill: right is blue');
  const contain = await preprocessImage(png, { ...opts, fit: 'contain' });
  near(px(contain, 8, 0), [0, 0, 0], 0, 'contain: top padding is black');
  near(px(contain, 8, 15), [0, 0, 0], 0, 'contain: bottom padding is black');
  near(px(contain, 8, 8), [0, 255, 0], 5, 'contain: centre is green');
});

test('animated GIF and WebP use the first frame', async () => {
  const red = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer();
  const blue = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 0, g: 0, b: 255 } } }).png().toBuffer();
  for (const fmt of ['gif', 'webp'] as const) {
    const anim = await sharp([red, blue], { join: { animated: true } })[fmt]({ loop: 0 }).toBuffer();
    assert.equal((await sharp(anim).metadata()).pages, 2, `${fmt} has two frames`);
    const t = await preprocessImage(anim, opts);
    assert.equal(t.length, S * S * 3, `${fmt}: one frame, not a strip of frames`);
    near(px(t, 8, 8), [255, 0, 0], 8, `${fmt}: first frame`);
    near(px(t, 8, 15), [255, 0, 0], 8, `${fmt}: first frame at the bottom too`);
  }
});

test('truncated JPEG, truncated PNG, random bytes, empty and missing files are rejected with their reason', async () => {
  const jpeg = await (await halves(64, 64, [10, 20, 30], [200, 100, 0])).jpeg().toBuffer();
  assert.equal(await rejectReason(jpeg.subarray(0, Math.floor(jpeg.length * 0.6))), 'truncated');
  const prog = await (await halves(64, 64, [10, 20, 30], [200, 100, 0])).jpeg({ progressive: true }).toBuffer();
  assert.equal(await rejectReason(prog.subarray(0, Math.floor(prog.length * 0.6))), 'truncated');
  const png = await (await halves(64, 64, [10, 20, 30], [200, 100, 0])).png().toBuffer();
  assert.equal(await rejectReason(png.subarray(0, png.length - 40)), 'truncated');
  const noise = Buffer.alloc(4096);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  assert.equal(await rejectReason(noise), 'unsupported-format');
  assert.equal(await rejectReason(Buffer.from('<html><body>403 Forbidden</body></html>')), 'unsupported-format');
  assert.equal(await rejectReason(Buffer.alloc(0)), 'empty');
  assert.equal(await rejectReason(join(tmpdir(), 'no-such-dir-xyz', 'a1.jpg')), 'missing');
});

test('a decompression bomb (tiny file declaring huge dimensions) is refused before decoding', async () => {
  const bomb = await pngBomb(100_000, 100_000);
  assert.ok(bomb.length < 200, 'the bomb file is tiny');
  const before = process.memoryUsage().rss;
  assert.equal(await rejectReason(bomb), 'too-many-pixels');
  assert.ok(process.memoryUsage().rss - before < 200 * 1024 * 1024, 'nothing was allocated for its pixels');
  // A JPEG whose SOF declares 60000×60000.
  const jpeg = Buffer.from(await sharp({ create: { width: 8, height: 8, channels: 3, background: 'black' } }).jpeg().toBuffer());
  const sof = jpeg.indexOf(Buffer.from([0xff, 0xc0]));
  jpeg.writeUInt16BE(60000, sof + 5);
  jpeg.writeUInt16BE(60000, sof + 7);
  assert.equal(await rejectReason(jpeg), 'too-many-pixels');
  // An ordinary image over image.maxPixels is refused the same way.
  const big = await sharp({ create: { width: 400, height: 300, channels: 3, background: 'white' } }).png().toBuffer();
  await assert.rejects(preprocessImage(big, { ...opts, maxPixels: 400 * 300 - 1 }), (e: PreprocessError) => e.reason === 'too-many-pixels');
  assert.equal((await preprocessImage(big, { ...opts, maxPixels: 400 * 300 })).length, S * S * 3);
});

test('classifyError maps libvips messages to reasons', () => {
  assert.equal(classifyError('Input image exceeds pixel limit'), 'too-many-pixels');
  assert.equal(classifyError('Input buffer contains unsupported image format'), 'unsupported-format');
  assert.equal(classifyError('VipsJpeg: premature end of JPEG image'), 'truncated');
  assert.equal(classifyError('Input file is missing: /x.jpg'), 'missing');
  assert.equal(classifyError('VipsJpeg: Corrupt JPEG data: bad Huffman code'), 'corrupt');
});

test('orderedMap yields in input order whatever the completion order, with bounded concurrency', async () => {
  let inFlight = 0;
  let maxInFlight = 0;
  const delays = [30, 1, 20, 2, 10, 0, 5, 3];
  const out: number[] = [];
  for await (const v of orderedMap(delays, 3, async (d, i) => {
    inFlight++;
    maxInFlight = Math.max(maxInFlight, inFlight);
    await new Promise((r) => setTimeout(r, d));
    inFlight--;
    return i;
  })) out.push(v);
  assert.deepEqual(out, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.ok(maxInFlight <= 3 && maxInFlight >= 2, `max in flight ${maxInFlight}`);
});

// ---- decoder: 'fast' (dataset/native/fastjpeg.c) ----

const fastOpts: PreprocessOptions = { ...opts, decoder: 'fast' };

/** Runs `fn` and returns which path (fast or sharp) each preprocessImage call inside it took. */
async function paths<T>(fn: () => Promise<T>): Promise<{ result: T; fast: number; sharp: number }> {
  const before = { ...preprocessCounts };
  const result = await fn();
  return { result, fast: preprocessCounts.fast - before.fast, sharp: preprocessCounts.sharp - before.sharp };
}

/** `jpeg` with an APP1 EXIF segment (IFD0 holding only Orientation = `orientation`) inserted after SOI. */
function withExifOrientation(jpeg: Buffer, orientation: number, littleEndian: boolean): Buffer {
  const tiff = Buffer.alloc(8 + 2 + 12 + 4);
  const u16 = (v: number, at: number) => (littleEndian ? tiff.writeUInt16LE(v, at) : tiff.writeUInt16BE(v, at));
  const u32 = (v: number, at: number) => (littleEndian ? tiff.writeUInt32LE(v, at) : tiff.writeUInt32BE(v, at));
  tiff.write(littleEndian ? 'II' : 'MM', 0, 'latin1');
  u16(42, 2);
  u32(8, 4); // IFD0 offset
  u16(1, 8); // one entry
  u16(0x0112, 10); // Orientation
  u16(3, 12); // SHORT
  u32(1, 14); // count
  u16(orientation, 18); // value, left-justified in the 4-byte field
  u32(0, 22); // no next IFD
  const payload = Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
  const header = Buffer.from([0xff, 0xe1, 0, 0]);
  header.writeUInt16BE(payload.length + 2, 2);
  return Buffer.concat([jpeg.subarray(0, 2), header, payload, jpeg.subarray(2)]);
}

/** Mean and max absolute difference of two equally long byte arrays. */
function diff(a: Uint8Array, b: Uint8Array): { mean: number; max: number } {
  assert.equal(a.length, b.length);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

test('fast decoder: the native addon is built (npm install / npm run build:native)', () => {
  assert.ok(fastJpeg(), 'dataset/native/build/Release/fastjpeg.node did not load: run `npm run build:native` (needs g++ and libjpeg-turbo headers)');
});

test('fast decoder: real covers (300×300 progressive, 640×640 baseline) match Pillow draft + resize, and sharp closely', { skip: NO_PILLOW }, async () => {
  const covers = listCovers();
  const picks = [covers[0]!.path, covers.find((c) => c.genre === 'metal')!.path];
  for (const path of picks) {
    const size = 64;
    const o = { size, fit: 'fill' as const, maxPixels: 50_000_000 };
    const { result: fast, fast: nFast } = await paths(() => preprocessImage(path, { ...o, decoder: 'fast' }));
    assert.equal(nFast, 1, `${path}: took the fast path`);
    assert.equal(fast.length, size * size * 3);
    const viaSharp = await preprocessImage(path, o);
    const ds = diff(fast, viaSharp);
    assert.ok(ds.mean < 4, `${path}: mean difference to sharp ${ds.mean.toFixed(2)}`);
    const py = spawnSync('python3', ['-c', `import sys\nfrom PIL import Image\nim = Image.open(sys.argv[1]); im.draft('RGB', (${size}, ${size}))\nsys.stdout.buffer.write(im.convert('RGB').resize((${size}, ${size})).tobytes())`, path], { maxBuffer: 1 << 24 });
    assert.equal(py.status, 0, `Pillow reference failed: ${py.stderr}`);
    const dp = diff(fast, py.stdout);
    assert.ok(dp.mean < 0.6 && dp.max <= 24, `${path}: difference to Pillow mean ${dp.mean.toFixed(2)}, max ${dp.max}`);
  }
});

test('fast decoder: plain RGB and grayscale JPEGs take the fast path; cover, fill and square contain are right', async () => {
  const raw = Buffer.alloc(60 * 20 * 3);
  for (let y = 0; y < 20; y++) for (let x = 0; x < 60; x++) raw.set(x < 20 ? [255, 0, 0] : x < 40 ? [0, 255, 0] : [0, 0, 255], (y * 60 + x) * 3);
  const jpeg = await sharp(raw, { raw: { width: 60, height: 20, channels: 3 } }).jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer();
  const cover = await paths(() => preprocessImage(jpeg, { ...fastOpts, fit: 'cover' }));
  assert.equal(cover.fast, 1);
  near(px(cover.result, 1, 8), [0, 255, 0], 8, 'cover: left edge is the centre third');
  near(px(cover.result, 14, 8), [0, 255, 0], 8, 'cover: right edge is the centre third');
  const fill = await paths(() => preprocessImage(jpeg, { ...fastOpts, fit: 'fill' }));
  assert.equal(fill.fast, 1);
  near(px(fill.result, 1, 8), [255, 0, 0], 8, 'fill: left is red');
  near(px(fill.result, 14, 8), [0, 0, 255], 8, 'fill: right is blue');
  // contain of a non-square image needs padding: the sharp path does it.
  const contain = await paths(() => preprocessImage(jpeg, { ...fastOpts, fit: 'contain' }));
  assert.deepEqual([contain.fast, contain.sharp], [0, 1]);
  near(px(contain.result, 8, 0), [0, 0, 0], 0, 'contain: top padding is black');
  near(px(contain.result, 8, 8), [0, 255, 0], 8, 'contain: centre is green');
  const square = await (await halves(40, 40, [250, 0, 0], [0, 0, 250])).jpeg({ quality: 95 }).toBuffer();
  const containSquare = await paths(() => preprocessImage(square, { ...fastOpts, fit: 'contain' }));
  assert.equal(containSquare.fast, 1, 'contain of a square image is fill: fast path');
  near(px(containSquare.result, 2, 8), [250, 0, 0], 12, 'square contain left');
  near(px(containSquare.result, 13, 8), [0, 0, 250], 12, 'square contain right');
  const gray = await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 90, g: 90, b: 90 } } }).toColourspace('b-w').jpeg().toBuffer();
  const g = await paths(() => preprocessImage(gray, fastOpts));
  assert.equal(g.fast, 1, 'grayscale JPEG: fast path');
  assert.equal(g.result.length, S * S * 3);
  near(px(g.result, 3, 3), [90, 90, 90], 2, 'gray becomes RGB gray');
  const prog = await (await halves(40, 40, [250, 0, 0], [0, 0, 250])).jpeg({ quality: 95, progressive: true }).toBuffer();
  const p = await paths(() => preprocessImage(prog, fastOpts));
  assert.equal(p.fast, 1, 'progressive JPEG: fast path');
  near(px(p.result, 2, 8), [250, 0, 0], 12, 'progressive left');
  // Larger than 2·S: DCT-scaled decode (1/2, 1/4, 1/8) still gives the right picture.
  const big = await (await halves(300, 300, [250, 0, 0], [0, 0, 250])).jpeg({ quality: 95 }).toBuffer();
  const b = await paths(() => preprocessImage(big, fastOpts));
  assert.equal(b.fast, 1);
  near(px(b.result, 2, 8), [250, 0, 0], 12, 'scaled decode left');
  near(px(b.result, 13, 8), [0, 0, 250], 12, 'scaled decode right');
});

test('fast decoder: CMYK, EXIF orientation, ICC profile, non-JPEG inputs and files over maxPixels go through sharp, correctly', async () => {
  const cmyk = await sharp({ create: { width: 24, height: 24, channels: 3, background: { r: 220, g: 40, b: 40 } } }).toColourspace('cmyk').jpeg().toBuffer();
  const c = await paths(() => preprocessImage(cmyk, fastOpts));
  assert.deepEqual([c.fast, c.sharp], [0, 1], 'CMYK: sharp');
  assert.ok(px(c.result, 8, 8)[0]! > 150 && px(c.result, 8, 8)[1]! < 100, 'still red after the CMYK round trip');
  const oriented = await (await halves(40, 40, [250, 0, 0], [0, 0, 250])).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
  const o = await paths(() => preprocessImage(oriented, fastOpts));
  assert.deepEqual([o.fast, o.sharp], [0, 1], 'EXIF orientation 6: sharp');
  near(px(o.result, 8, 2), [250, 0, 0], 30, 'top is red');
  near(px(o.result, 8, 13), [0, 0, 250], 30, 'bottom is blue');
  // Our own APP1 segments (no ICC profile), in both byte orders, exercise the addon's EXIF parser.
  const plain = await (await halves(40, 40, [250, 0, 0], [0, 0, 250])).jpeg({ quality: 95 }).toBuffer();
  for (const le of [false, true]) {
    assert.equal((await paths(() => preprocessImage(withExifOrientation(plain, 1, le), fastOpts))).fast, 1, `EXIF orientation 1 (${le ? 'II' : 'MM'}): fast path`);
    const six = await paths(() => preprocessImage(withExifOrientation(plain, 6, le), fastOpts));
    assert.deepEqual([six.fast, six.sharp], [0, 1], `EXIF orientation 6 (${le ? 'II' : 'MM'}): sharp`);
    near(px(six.result, 8, 2), [250, 0, 0], 30, 'top is red');
  }
  const icc = await (await halves(40, 40, [250, 0, 0], [0, 0, 250])).jpeg({ quality: 95 }).withIccProfile('p3').toBuffer();
  assert.ok((await sharp(icc).metadata()).icc, 'has an ICC profile');
  assert.deepEqual((await paths(() => preprocessImage(icc, fastOpts))).sharp, 1, 'ICC profile: sharp');
  const png = await (await halves(40, 40, [250, 0, 0], [0, 0, 250])).png().toBuffer();
  assert.equal((await paths(() => preprocessImage(png, fastOpts))).sharp, 1, 'PNG: sharp');
  const big = await sharp({ create: { width: 400, height: 300, channels: 3, background: 'white' } }).jpeg().toBuffer();
  await assert.rejects(preprocessImage(big, { ...fastOpts, maxPixels: 400 * 300 - 1 }), (e: PreprocessError) => e.reason === 'too-many-pixels');
  assert.equal((await paths(() => preprocessImage(big, { ...fastOpts, maxPixels: 400 * 300 }))).fast, 1);
});

test('fast decoder: truncated, corrupt, bomb, empty and missing files get the same rejection reasons as with sharp', async () => {
  const reason = async (input: string | Buffer) => {
    try {
      await preprocessImage(input, fastOpts);
    } catch (e) {
      assert.ok(e instanceof PreprocessError, String(e));
      return e.reason;
    }
    assert.fail('expected a rejection');
  };
  const jpeg = await (await halves(64, 64, [10, 20, 30], [200, 100, 0])).jpeg().toBuffer();
  assert.equal(await reason(jpeg.subarray(0, Math.floor(jpeg.length * 0.6))), 'truncated');
  const prog = await (await halves(64, 64, [10, 20, 30], [200, 100, 0])).jpeg({ progressive: true }).toBuffer();
  assert.equal(await reason(prog.subarray(0, Math.floor(prog.length * 0.6))), 'truncated');
  const bomb = Buffer.from(await sharp({ create: { width: 8, height: 8, channels: 3, background: 'black' } }).jpeg().toBuffer());
  const sof = bomb.indexOf(Buffer.from([0xff, 0xc0]));
  bomb.writeUInt16BE(60000, sof + 5);
  bomb.writeUInt16BE(60000, sof + 7);
  assert.equal(await reason(bomb), 'too-many-pixels');
  // A JPEG header followed by garbage entropy-coded data.
  const garbage = Buffer.from(jpeg);
  const sos = garbage.indexOf(Buffer.from([0xff, 0xda]));
  for (let i = sos + 20; i < garbage.length - 2; i++) garbage[i] = (i * 2654435761) >>> 24 === 0xff ? 0 : (i * 2654435761) >>> 24;
  const r = await reason(garbage).catch(() => 'decoded');
  assert.ok(['corrupt', 'truncated', 'decoded'].includes(r), `garbage entropy data: ${r}`);
  assert.equal(await reason(Buffer.alloc(0)), 'empty');
  assert.equal(await reason(Buffer.from([0xff, 0xd8, 0xff])), 'truncated');
  assert.equal(await reason(join(tmpdir(), 'no-such-dir-xyz', 'a1.jpg')), 'missing');
});

test('fast decoder: bad files read by the addon itself (a path) get the same reason as with sharp, and the addon says why it declined or rejected', async (t) => {
  const fj = fastJpeg();
  if (!fj) return t.skip('fastjpeg addon not built');
  const dir = mkdtempSync(join(tmpdir(), 'pp-fast-'));
  try {
    const jpeg = await (await halves(64, 64, [10, 20, 30], [200, 100, 0])).jpeg().toBuffer();
    const prog = await (await halves(64, 64, [10, 20, 30], [200, 100, 0])).jpeg({ progressive: true }).toBuffer();
    const bomb = Buffer.from(jpeg);
    const sof = bomb.indexOf(Buffer.from([0xff, 0xc0]));
    bomb.writeUInt16BE(60000, sof + 5);
    bomb.writeUInt16BE(60000, sof + 7);
    const files: Record<string, Buffer | 'dir' | 'missing'> = {
      'truncated.jpg': jpeg.subarray(0, Math.floor(jpeg.length * 0.6)),
      'truncated-progressive.jpg': prog.subarray(0, Math.floor(prog.length * 0.6)),
      'bomb.jpg': bomb,
      'soi-only.jpg': Buffer.from([0xff, 0xd8, 0xff]),
      'empty.jpg': Buffer.alloc(0),
      'html.jpg': Buffer.from('<html><body>403 Forbidden</body></html>'),
      'dir.jpg': 'dir',
      'missing.jpg': 'missing',
    };
    const why: Record<string, RegExp> = {
      // cut in the entropy-coded data: libjpeg warns; cut inside a header segment: the addon's marker walk rejects
      'truncated.jpg': /^libjpeg|^rejected truncated: JPEG marker 0xFF[0-9A-F]{2} at byte \d+ declares \d+ bytes, the file has \d+ left$/,
      'truncated-progressive.jpg': /^libjpeg|^rejected truncated: JPEG marker 0xFF[0-9A-F]{2} at byte \d+ declares \d+ bytes, the file has \d+ left$/,
      'bomb.jpg': /^rejected too-many-pixels: 60000x60000 = 3600000000 pixels, over image\.maxPixels=/,
      'soi-only.jpg': /^too short/,
      'empty.jpg': /^too short/,
      'html.jpg': /^not a JPEG$/,
      'dir.jpg': /^not a regular file$/,
      'missing.jpg': /^open: No such file/,
    };
    const reasonOf = async (path: string, decoder: 'fast' | 'sharp') => {
      try {
        await preprocessImage(path, { ...opts, decoder });
        return 'decoded';
      } catch (e) {
        assert.ok(e instanceof PreprocessError, String(e));
        return e.reason;
      }
    };
    for (const [name, content] of Object.entries(files)) {
      const path = join(dir, name);
      if (content === 'dir') mkdirSync(path);
      else if (content !== 'missing') writeFileSync(path, content);
      const declined = await new Promise<string>((resolve, reject) =>
        fj.decode(path, Buffer.alloc(S * S * 3), S, 0, opts.maxPixels, (err, r, rejectReason, detail) => (err ? reject(err) : resolve(rejectReason ? `rejected ${rejectReason}: ${detail}` : r))),
      );
      assert.match(declined, why[name]!, `${name}: the addon's reason`);
      const { result, fast } = await paths(() => reasonOf(path, 'fast'));
      assert.equal(fast, 0, `${name}: not decoded natively`);
      assert.equal(result, await reasonOf(path, 'sharp'), `${name}: same outcome as the sharp path`);
      assert.notEqual(result, 'decoded', `${name}: rejected`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('fast decoder: 300 corrupted variants of real covers (flipped bytes, cuts) never crash the process nor grow memory', async (t) => {
  const fj = fastJpeg();
  if (!fj) return t.skip('fastjpeg addon not built');
  const covers = listCovers();
  const originals = [readFileSync(covers[0]!.path), readFileSync(covers.find((c) => c.genre === 'metal')!.path)];
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const variants: Buffer[] = [];
  for (let i = 0; i < 300; i++) {
    const src = originals[i % originals.length]!;
    const v = Buffer.from(src.subarray(0, i % 3 === 0 ? 2 + Math.floor(rand() * src.length) : src.length));
    // Flip bytes anywhere, headers included (marker lengths, SOF dimensions, Huffman and quantisation tables).
    const flips = 1 + Math.floor(rand() * 8);
    for (let k = 0; k < flips; k++) v[Math.floor(rand() * v.length)] = Math.floor(rand() * 256);
    variants.push(v);
  }
  const rss0 = process.memoryUsage().rss;
  const outcomes = { decoded: 0, declined: 0 };
  for await (const r of orderedMap(variants, 4, (v) => new Promise<string>((resolve, reject) => fj.decode(v, Buffer.alloc(64 * 64 * 3), 64, 0, 50_000_000, (err, why, rejected) => (err ? reject(err) : resolve(why || rejected)))))) {
    if (r === '') outcomes.decoded++;
    else outcomes.declined++;
  }
  assert.equal(outcomes.decoded + outcomes.declined, variants.length);
  assert.ok(outcomes.declined > 50, `most corrupted files are declined: ${JSON.stringify(outcomes)}`);
  assert.ok(process.memoryUsage().rss - rss0 < 200 * 1024 * 1024, 'memory stays bounded');
  // And through preprocessImage: each variant either decodes to S·S·3 bytes or is a PreprocessError.
  for (const v of variants.slice(0, 60)) {
    try {
      assert.equal((await preprocessImage(v, { ...opts, decoder: 'fast' })).length, S * S * 3);
    } catch (e) {
      assert.ok(e instanceof PreprocessError, String(e));
    }
  }
});

test('fast decoder: wrong arguments are a TypeError or RangeError, not a crash', (t) => {
  const fj = fastJpeg();
  if (!fj) return t.skip('fastjpeg addon not built');
  const cb = () => undefined;
  assert.throws(() => fj.decode(Buffer.alloc(10), Buffer.alloc(5), S, 0, 1e6, cb), RangeError);
  assert.throws(() => fj.decode(Buffer.alloc(10), Buffer.alloc(S * S * 3), S, 7, 1e6, cb), RangeError);
  assert.throws(() => fj.decode(42 as unknown as Buffer, Buffer.alloc(S * S * 3), S, 0, 1e6, cb), TypeError);
  assert.throws(() => fj.decode(Buffer.alloc(10), Buffer.alloc(S * S * 3), S, 0, 1e6, 'x' as unknown as typeof cb), TypeError);
});
