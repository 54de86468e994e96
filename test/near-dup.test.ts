/**
 * Perceptual hashes and near-duplicate search (dataset/phash.ts, dataset/near-dup.ts), and the manifest's added
 * columns (schemas/manifest.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import sharp from 'sharp';
import sharpPhashModule from 'sharp-phash';
import { greySample, hamming, phashFromHex, phashOfGrey32, phashOfImage, phashOfRaw, phashToBits, phashToHex, popcount32, type PHash } from '../dataset/phash.ts';
import { groupsOf, MultiIndex, nearPairs, packHashes } from '../dataset/near-dup.ts';
import { manifestFormat } from '../schemas/manifest.ts';
import { SplitRng } from '../dataset/split.ts';
import { nearDuplicateOf } from '../stages/download.ts';

/** sharp-phash is CommonJS (`module.exports = phash`); its types declare an ES default export. */
const sharpPhash = sharpPhashModule as unknown as (image: Buffer) => Promise<string>;

/** A seeded "cover": a 12×12 grid of random colours with a few soft shapes, `side`×`side` JPEG. */
async function cover(seed: number, side = 350): Promise<Buffer> {
  const rng = new SplitRng(seed, 'test-cover');
  const grid = Buffer.alloc(12 * 12 * 3);
  for (let k = 0; k < grid.length; k++) grid[k] = rng.below(256);
  return sharp(grid, { raw: { width: 12, height: 12, channels: 3 } }).resize(side, side, { kernel: 'cubic' }).jpeg({ quality: 90 }).toBuffer();
}

test('popcount32 and hamming count bits without BigInt', () => {
  assert.equal(popcount32(0), 0);
  assert.equal(popcount32(0xffffffff), 32);
  assert.equal(popcount32(0x80000001), 2);
  const rng = new SplitRng(1, 'pop');
  for (let k = 0; k < 200; k++) {
    const x = rng.nextUint32();
    assert.equal(popcount32(x), x.toString(2).split('').filter((c) => c === '1').length);
  }
  assert.equal(hamming({ hi: 0xffffffff, lo: 0 }, { hi: 0, lo: 0xffffffff }), 64);
  assert.equal(hamming({ hi: 5, lo: 6 }, { hi: 5, lo: 6 }), 0);
  const h: PHash = { hi: 0x0123abcd, lo: 0xfedc9876 };
  assert.equal(phashToHex(h), '0123abcdfedc9876');
  assert.deepEqual(phashFromHex('0123ABCDfedc9876'), h);
  assert.throws(() => phashFromHex('0123'), /not a perceptual hash/);
});

test('phashOfGrey32 gives sharp-phash\'s bits for the same 32×32 grey image', async () => {
  for (let seed = 0; seed < 12; seed++) {
    const grey = Buffer.alloc(32 * 32);
    const rng = new SplitRng(seed, 'grey');
    // smooth-ish content: random values on a 4×4 grid, upsampled
    const coarse = Buffer.from(Array.from({ length: 16 }, () => rng.below(256)));
    const up = await sharp(coarse, { raw: { width: 4, height: 4, channels: 1 } }).resize(32, 32, { kernel: 'cubic' }).raw().toBuffer();
    up.copy(grey);
    const png = await sharp(grey, { raw: { width: 32, height: 32, channels: 1 } }).png().toBuffer();
    const theirs = await sharpPhash(png);
    const ours = phashToBits(phashOfGrey32(grey));
    assert.equal(ours, theirs, `seed ${seed}`);
  }
  assert.throws(() => phashOfGrey32(new Uint8Array(100)), /expected 32×32/);
});

test('greySample box-averages [H, W, C] pixels into 32×32 cells; tiny images fill every cell', () => {
  const w = 64;
  const h = 64;
  const raw = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw.fill(x < 32 ? 0 : 200, (y * w + x) * 3, (y * w + x) * 3 + 3);
  const g = greySample(raw, w, h, 3);
  assert.equal(g[0], 0);
  assert.ok(Math.abs(g[31]! - 200) < 1e-9, `${g[31]}`);
  const tiny = greySample(Uint8Array.from([10, 250]), 2, 1, 1);
  assert.equal(tiny[0], 10);
  assert.equal(tiny[31 * 32 + 31], 250);
  assert.throws(() => greySample(new Uint8Array(5), 2, 2, 3), /not a 2×2×3 image/);
});

/** A seeded [H, W, C] uint8 image: an 8×8 grid of random levels per channel plus ±20 of noise (no codec involved). */
function blockImage(seed: number, w: number, h: number, ch: number): Uint8Array {
  const rng = new SplitRng(seed, 'grey-sample');
  const grid = Array.from({ length: 8 * 8 * ch }, () => rng.below(256));
  const raw = new Uint8Array(w * h * ch);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      for (let c = 0; c < ch; c++) {
        const v = grid[(Math.floor((8 * y) / h) * 8 + Math.floor((8 * x) / w)) * ch + c]! + rng.below(41) - 20;
        raw[(y * w + x) * ch + c] = Math.max(0, Math.min(255, v));
      }
    }
  }
  return raw;
}

/** greySample as its TSDoc defines it, pixel by pixel, without any of the product's speed-ups. */
function greySampleByDefinition(raw: Uint8Array, w: number, h: number, ch: number): Float64Array {
  const s = Math.max(1, Math.floor(Math.min(w, h) / 128));
  const sums = new Float64Array(1024);
  const counts = new Float64Array(1024);
  for (let y = 0; y < h; y += s) {
    for (let x = 0; x < w; x += s) {
      const at = (y * w + x) * ch;
      const cell = Math.floor((32 * y) / h) * 32 + Math.floor((32 * x) / w);
      sums[cell]! += ch >= 3 ? 299 * raw[at]! + 587 * raw[at + 1]! + 114 * raw[at + 2]! : 1000 * raw[at]!;
      counts[cell]!++;
    }
  }
  return sums.map((v, k) => (counts[k] ? v / (1000 * counts[k]!) : 0));
}

test('greySample equals its definition bit for bit, and phashOfRaw keeps the bits it had before its speed-up', () => {
  // [seed, W, H, C, hash]: the hashes computed by the first implementation (commit 2c5a75a) — manifests written by it
  // must hash the same on a rebuild, so a faster greySample or DCT must give exactly these.
  const pinned: [number, number, number, number, string][] = [
    [1, 350, 350, 3, 'e3abcd074d395fff'],
    [2, 300, 200, 3, '134b5ff97763f1ff'],
    [3, 640, 640, 4, '4f2945f9a3c33bff'],
    [4, 351, 349, 1, '6bb797109f3f22ff'],
    [5, 350, 350, 2, '8626d0fbc63b8d4a'],
    [6, 129, 700, 3, 'a14f330f69892dff'],
    [7, 40, 33, 3, '86d8b851c6d47e8d'],
    [8, 20, 17, 3, '2c9883eca54bc51a'],
  ];
  for (const [seed, w, h, ch, hex] of pinned) {
    const raw = blockImage(seed, w, h, ch);
    if (w >= 32 && h >= 32) assert.deepEqual(greySample(raw, w, h, ch), greySampleByDefinition(raw, w, h, ch), `${w}×${h}×${ch}`);
    assert.equal(phashToHex(phashOfRaw(raw, w, h, ch)), hex, `${w}×${h}×${ch}`);
    // greySample hands out a new array each call (phashOfRaw reuses scratch arrays internally)
    assert.notEqual(greySample(raw, w, h, ch), greySample(raw, w, h, ch));
  }
});

test('a re-encoded, resized, slightly cropped copy hashes within a few bits; other covers are far', async () => {
  const a = await cover(1);
  const ha = await phashOfImage(a);
  const copies = [
    await sharp(a).jpeg({ quality: 60 }).toBuffer(),
    await sharp(a).resize(300, 300).jpeg({ quality: 80 }).toBuffer(),
    await sharp(a).extract({ left: 7, top: 7, width: 336, height: 336 }).resize(350, 350).jpeg({ quality: 75 }).toBuffer(),
  ];
  for (const c of copies) assert.ok(hamming(ha, await phashOfImage(c)) <= 6, `copy at ${hamming(ha, await phashOfImage(c))} bits`);
  for (let s = 2; s < 12; s++) {
    const d = hamming(ha, await phashOfImage(await cover(s)));
    assert.ok(d > 12, `cover ${s} at ${d} bits from cover 1`);
  }
});

test('nearPairs and MultiIndex find the same pairs; groupsOf joins chains', () => {
  const rng = new SplitRng(3, 'hashes');
  const hashes: PHash[] = [];
  for (let k = 0; k < 3000; k++) hashes.push({ hi: rng.nextUint32(), lo: rng.nextUint32() });
  // plant near copies: flip up to 9 random bits
  for (let k = 0; k < 300; k++) {
    const src = hashes[rng.below(hashes.length)]!;
    let { hi, lo } = src;
    for (let f = rng.below(10); f > 0; f--) {
      const b = rng.below(64);
      if (b < 32) hi ^= 1 << b;
      else lo ^= 1 << (b - 32);
    }
    hashes.push({ hi: hi >>> 0, lo: lo >>> 0 });
  }
  const packed = packHashes(hashes);
  for (const d of [0, 4, 8, 10]) {
    const brute = nearPairs(packed, d);
    const mih = new MultiIndex(packed).pairs(d);
    assert.deepEqual(mih, brute, `maxDistance ${d}`);
    for (const p of brute) assert.equal(p.distance, hamming(hashes[p.i]!, hashes[p.j]!));
    if (d === 8) assert.ok(brute.length >= 250, `${brute.length} planted pairs found`);
  }
  assert.deepEqual(groupsOf(6, [{ i: 4, j: 1 }, { i: 1, j: 2 }, { i: 0, j: 5 }]), [[0, 5], [1, 2, 4]]);
  assert.deepEqual(groupsOf(3, []), []);
});

test('manifest.tsv: phash and band_id columns; a manifest written before them is still read', () => {
  const row = { item_id: 1, genre: 'jazz', art_id: 2, url: null, sha256: 'ab'.repeat(32), bytes: 9, width: 350, height: 350, phash: '0123abcdfedc9876', band_id: 77 };
  assert.deepEqual(manifestFormat.parse(manifestFormat.format([row])), [row]);
  const old = 'item_id\tgenre\tart_id\turl\tsha256\tbytes\twidth\theight\n1\tjazz\t2\t\t' + 'ab'.repeat(32) + '\t9\t350\t350\n';
  assert.deepEqual(manifestFormat.parse(old), [{ ...row, phash: null, band_id: null }]);
  assert.ok(manifestFormat.isHeader('item_id\tgenre\tart_id\turl\tsha256\tbytes\twidth\theight'));
  assert.ok(!manifestFormat.isHeader('item_id\tgenre\tart_id\turl\tsha256\tbytes\twidth'));
  assert.throws(() => manifestFormat.parse(old.replace('\t350\n', '\t350\tx\n')), /line 2: expected 8 tab-separated cells, found 9/);
});

test('nearDuplicateOf: another genre always rejects, the same genre only with dedupe.near=drop; the nearest, then the first kept', () => {
  const kept = [
    { itemId: 1, genre: 'jazz', phash: { hi: 0, lo: 0 } },
    { itemId: 2, genre: 'metal', phash: { hi: 0, lo: 0b111 } },
    { itemId: 3, genre: 'metal', phash: { hi: 0, lo: 0b011 } },
    { itemId: 4, genre: 'rock', phash: { hi: 0, lo: 0b011 } },
  ];
  const h = { hi: 0, lo: 0b1 };
  assert.deepEqual(nearDuplicateOf(h, 'jazz', kept, 10, false), { ...kept[2]!, distance: 1 }, 'nearest of another genre, first kept on a tie');
  assert.deepEqual(nearDuplicateOf(h, 'jazz', kept, 10, true), { ...kept[0]!, distance: 1 }, 'drop: the same genre counts too');
  assert.equal(nearDuplicateOf(h, 'jazz', kept.slice(0, 1), 10, false), null, 'group: the same genre is kept');
  assert.equal(nearDuplicateOf({ hi: 0xffffffff, lo: 0 }, 'jazz', kept, 10, true), null, 'beyond maxDistance');
});
