/**
 * Preprocessing of every colour space, bit depth, orientation, alpha, animation and corruption case we know of: each
 * gives a correct `[S, S, 3]` RGB tensor or a rejection with its reason (dataset/preprocess.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp, { type Sharp } from 'sharp';
import { classifyError, orderedMap, preprocessImage, PreprocessError, RESIZE_KERNEL, type PreprocessOptions } from '../dataset/preprocess.ts';
import { listCovers } from './helpers/dataset.ts';

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
