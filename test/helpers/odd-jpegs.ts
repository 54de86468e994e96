/**
 * Test helper: odd and crafted image files, built in memory, for the untrusted-bytes tests
 * (test/shards-untrusted.test.ts) and as seeds of the fuzzer's corpus (test/helpers/fuzz-seeds.ts): CMYK,
 * progressive, grayscale, EXIF variants, ICC profile, truncated files, bombs, and the crafted headers of issue 11
 * (EXIF IFD0 offset near 2^32, EXIF entry count past its segment, zero-length APP1, SOF 65535×65535, a marker length
 * past the end of the file).
 */
import sharp from 'sharp';

/** A 64×64 baseline JPEG with some texture. */
export async function jpeg64(): Promise<Buffer> {
  const raw = Buffer.alloc(64 * 64 * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 7) & 0xff;
  return sharp(raw, { raw: { width: 64, height: 64, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

/** `jpeg` with the segment `marker` (whose 2-byte length field is `length`, default the true one) after SOI. */
export function withSegment(jpeg: Buffer, marker: number, payload: Buffer, length = payload.length + 2): Buffer {
  const header = Buffer.from([0xff, marker, length >> 8, length & 0xff]);
  return Buffer.concat([jpeg.subarray(0, 2), header, payload, jpeg.subarray(2)]);
}

/**
 * An "Exif\0\0" APP1 payload (TIFF little- or big-endian), IFD0 at `ifd` declaring `count` entries and holding one
 * Orientation entry with value `orientation`.
 */
export function exifPayload(ifd: number, count: number, orientation = 1, littleEndian = true): Buffer {
  const tiff = Buffer.alloc(8 + 2 + 12 + 4);
  const u16 = (v: number, at: number) => (littleEndian ? tiff.writeUInt16LE(v, at) : tiff.writeUInt16BE(v, at));
  const u32 = (v: number, at: number) => (littleEndian ? tiff.writeUInt32LE(v, at) : tiff.writeUInt32BE(v, at));
  tiff.write(littleEndian ? 'II' : 'MM', 0, 'latin1');
  u16(42, 2);
  u32(ifd, 4);
  u16(count, 8);
  u16(0x0112, 10);
  u16(3, 12);
  u32(1, 14);
  u16(orientation, 18);
  return Buffer.concat([Buffer.from('Exif\0\0', 'latin1'), tiff]);
}

/** The crafted files of issue 11, by name: bytes and the rejection reason the fast path gives each. */
export async function craftedJpegs(): Promise<Record<string, { bytes: Buffer; reason: string }>> {
  const base = await jpeg64();
  const sof = base.indexOf(Buffer.from([0xff, 0xc0]));
  const huge = Buffer.from(base);
  huge.writeUInt16BE(65535, sof + 5);
  huge.writeUInt16BE(65535, sof + 7);
  // An APP1 (XMP) declaring 65535 bytes in a file far shorter than that.
  const pastEnd = withSegment(base, 0xe1, Buffer.from('http://ns.adobe.com/xap/1.0/\0'), 0xffff);
  return {
    'exif-ifd-offset-near-2^32': { bytes: withSegment(base, 0xe1, exifPayload(0xfffffffe, 1)), reason: 'exif-unreadable' },
    'exif-ifd-count-past-segment': { bytes: withSegment(base, 0xe1, exifPayload(8, 0xffff)), reason: 'exif-unreadable' },
    'zero-length-app1': { bytes: withSegment(base, 0xe1, Buffer.alloc(0), 0), reason: 'corrupt' },
    'sof-65535x65535': { bytes: huge, reason: 'too-many-pixels' },
    'marker-length-past-end': { bytes: pastEnd, reason: 'truncated' },
  };
}

/** Odd but mostly valid files, by name (file name → bytes), plus the crafted ones. */
export async function oddImages(): Promise<Record<string, Buffer>> {
  const base = await jpeg64();
  const colour = () => sharp({ create: { width: 48, height: 40, channels: 3, background: { r: 200, g: 60, b: 30 } } });
  const prog = await sharp(base).jpeg({ progressive: true, quality: 80 }).toBuffer();
  const bomb = Buffer.from(base);
  const sof = bomb.indexOf(Buffer.from([0xff, 0xc0]));
  bomb.writeUInt16BE(60000, sof + 5);
  bomb.writeUInt16BE(60000, sof + 7);
  const out: Record<string, Buffer> = {
    'baseline.jpg': base,
    'progressive.jpg': prog,
    'baseline-444.jpg': await sharp(base).jpeg({ chromaSubsampling: '4:4:4', quality: 95 }).toBuffer(),
    'grayscale.jpg': await colour().toColourspace('b-w').jpeg().toBuffer(),
    'cmyk.jpg': await colour().toColourspace('cmyk').jpeg().toBuffer(),
    'icc-p3.jpg': await sharp(base).jpeg().withIccProfile('p3').toBuffer(),
    'exif-orientation-6.jpg': await sharp(base).jpeg().withMetadata({ orientation: 6 }).toBuffer(),
    'exif-orientation-1-mm.jpg': withSegment(base, 0xe1, exifPayload(8, 1, 1, false)),
    'exif-orientation-8-ii.jpg': withSegment(base, 0xe1, exifPayload(8, 1, 8, true)),
    'truncated-60pct.jpg': base.subarray(0, Math.floor(base.length * 0.6)),
    'truncated-progressive-60pct.jpg': prog.subarray(0, Math.floor(prog.length * 0.6)),
    'bomb-60000x60000.jpg': bomb,
    'png.png': await colour().png().toBuffer(),
  };
  for (const [name, { bytes }] of Object.entries(await craftedJpegs())) out[`${name}.jpg`] = bytes;
  return out;
}
