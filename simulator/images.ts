/**
 * The simulator's image CDN (`f4.bcbits.com` stand-in): `/img/a<art_id>_<format>.jpg` in Bandcamp's album-art formats,
 * with content faults, an LRU cache of encoded images and de-duplication of concurrent requests.
 *
 * Format table: `client_template_globals.image_formats` of a 2026 album page
 * (`test/fixtures/bandcamp/DERIVED_image_formats__client_template_globals__2026-05-25.json`,
 * docs/BANDCAMP.md#image-formats): "thumb" = centre crop to the exact square, "fit" = scale to fit within the box without enlarging,
 * "original" = the uploaded file, "scrub" = the original re-encoded without metadata.
 */
import sharp from 'sharp';
type Sharp = ReturnType<typeof sharp>;
import type { Catalog } from './catalog.ts';
import { RENDER_SIZE, renderCover } from './covers.ts';
import type { ImageFault } from './faults.ts';
import { hash32, pick, rngFor } from './rng.ts';

/** One album-art image format. */
export interface ImageFormat {
  id: number;
  name: string;
  algo: 'original' | 'scrub' | 'thumb' | 'fit';
  /** Box width/height in pixels (thumb, fit). */
  size?: number;
  /** JPEG quality (Bandcamp's `quality` where the table gives one, else 85). */
  quality: number;
}

const F = (id: number, name: string, algo: ImageFormat['algo'], size?: number, quality = 85): ImageFormat => ({ id, name, algo, size, quality });

/** Album-art formats served (docs/BANDCAMP.md#image-formats). */
export const ART_FORMATS: ReadonlyMap<number, ImageFormat> = new Map(
  [
    F(0, 'original', 'original'), F(1, 'fullsize', 'scrub'), F(2, 'art_thumb', 'thumb', 350), F(3, 'art_thumbthumb', 'thumb', 100),
    F(4, 'art_embedded_metadata', 'thumb', 300), F(5, 'art_embedded_metadata_large', 'thumb', 700), F(6, 'art_embedded_player', 'thumb', 100),
    F(7, 'art_embedded_player_large', 'thumb', 150), F(8, 'art_tags', 'thumb', 124), F(9, 'art_tags_large', 'thumb', 210),
    F(10, 'screen', 'fit', 1200), F(11, 'art_tag_search', 'thumb', 172), F(12, 'art_artist_index', 'thumb', 138),
    F(13, 'art_solo_feature', 'thumb', 380), F(14, 'art_feature', 'thumb', 368), F(15, 'art_feed_new_release', 'thumb', 135),
    F(16, 'art_app_large', 'thumb', 700, 70), F(50, 'results_grid', 'thumb', 140), F(65, 'tralbum_page_cover_art', 'thumb', 700, 70),
    F(66, 'tralbum_page_cover_art_popup', 'fit', 1200), F(67, 'art_thumb_anim_ok', 'thumb', 350), F(68, 'art_tags_large_anim_ok', 'thumb', 210),
    F(69, 'art_embedded_metadata_large_anim_ok', 'thumb', 700),
  ].map((f) => [f.id, f]),
);

/** Dimensions a "bomb" image declares in its header, in pixels (60000 × 60000 = 3.6 gigapixels). */
export const BOMB_SIDE = 60000;

/** A served image. */
export interface ServedImage {
  bytes: Buffer;
  contentType: string;
  /** The content fault applied, or null. */
  fault: ImageFault | null;
}

/** A tiny LRU keyed by string with a byte budget. */
class ByteLru {
  private readonly map = new Map<string, Buffer>();
  private bytes = 0;
  constructor(private readonly budget: number) {}
  get(k: string): Buffer | undefined {
    const v = this.map.get(k);
    if (v) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: string, v: Buffer): void {
    if (v.length > this.budget) return;
    const old = this.map.get(k);
    if (old) {
      this.bytes -= old.length;
      this.map.delete(k);
    }
    this.map.set(k, v);
    this.bytes += v.length;
    for (const [key, val] of this.map) {
      if (this.bytes <= this.budget) break;
      this.map.delete(key);
      this.bytes -= val.length;
    }
  }
  get size(): number {
    return this.map.size;
  }
}

/** Sides of synthetic originals, in pixels. */
const ORIGINAL_SIDES = [700, 800, 1000, 1200, 1400, 1600];

/** Options of {@link ImageService}. */
export interface ImageServiceOptions {
  seed: number;
  /** Encoded-image cache budget in bytes (default 256 MiB). */
  cacheBytes?: number;
}

/** Produces the bytes of `/img/a<art_id>_<format>.jpg`. */
export class ImageService {
  private readonly cache: ByteLru;
  private readonly raw = new Map<number, Buffer>();
  private readonly inflight = new Map<string, Promise<ServedImage | null>>();
  private readonly seed: number;

  constructor(private readonly catalog: Catalog, o: ImageServiceOptions) {
    this.seed = o.seed;
    this.cache = new ByteLru(o.cacheBytes ?? 256 * 1024 * 1024);
  }

  /** Number of encoded images held in the cache. */
  get cachedImages(): number {
    return this.cache.size;
  }

  /**
   * Original dimensions (width, height in pixels) of a synthetic cover: one of {@link ORIGINAL_SIDES}, 10% of them
   * landscape (height 60–90% of the width). For DIR catalogues, read from the file.
   */
  async originalSize(artId: number): Promise<{ width: number; height: number }> {
    const album = this.catalog.byArtId.get(this.catalog.imageSourceOf(artId));
    if (this.catalog.kind === 'dir' && album?.imageFile) {
      const m = await sharp(album.imageFile).metadata();
      return { width: m.autoOrient?.width ?? m.width ?? 0, height: m.autoOrient?.height ?? m.height ?? 0 };
    }
    const r = rngFor('orig', this.seed, artId);
    const width = pick(r, ORIGINAL_SIDES);
    const height = r() < 0.1 ? Math.round(width * (0.6 + r() * 0.3)) : width;
    return { width, height };
  }

  /**
   * The image for (`art_id`, format), or null for 404 (unknown format; in a DIR catalogue an unknown `art_id`; an
   * album with the `404` fault). Synthetic catalogues serve a deterministic cover for ANY `art_id`.
   */
  get(artId: number, format: number): Promise<ServedImage | null> {
    const key = `${artId}_${format}`;
    const hit = this.cache.get(key);
    if (hit) return Promise.resolve({ bytes: hit, contentType: 'image/jpeg', fault: this.faultOf(artId) });
    let p = this.inflight.get(key);
    if (!p) {
      p = this.produce(artId, format).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private faultOf(artId: number): ImageFault | null {
    return this.catalog.faultsOf(artId)[0] ?? null;
  }

  private rawCover(artId: number): Buffer {
    let px = this.raw.get(artId);
    if (px) return px;
    const album = this.catalog.byArtId.get(artId);
    px = renderCover(artId, album?.genres[0] ?? null, this.seed, this.catalog.genres);
    if (this.raw.size >= 64) this.raw.delete(this.raw.keys().next().value!);
    this.raw.set(artId, px);
    return px;
  }

  private async produce(artId: number, format: number): Promise<ServedImage | null> {
    const fmt = ART_FORMATS.get(format);
    if (!fmt) return null;
    const album = this.catalog.byArtId.get(artId);
    if (album && this.catalog.albumFaultsOf(album.itemId).includes('404')) return null;
    if (this.catalog.kind === 'dir' && !album) return null;
    const fault = this.faultOf(artId);
    const source = this.catalog.imageSourceOf(artId); // dup-album / dup-genre: another album's cover
    if (fault === 'near-dup-album' || fault === 'near-dup-genre') {
      // Another album's cover as served, re-listed: cropped by 2% on each side, resized to 90%, re-encoded
      // at a JPEG quality of 65–75 (by art_id).
      const served = await this.get(source, format);
      if (!served) return null;
      const img = sharp(served.bytes);
      const m = await img.metadata();
      const w = m.width ?? 0;
      const h = m.height ?? 0;
      const dx = Math.floor(w * 0.02);
      const dy = Math.floor(h * 0.02);
      const bytes = await sharp(served.bytes)
        .extract({ left: dx, top: dy, width: w - 2 * dx, height: h - 2 * dy })
        .resize(Math.max(1, Math.round(w * 0.9)), Math.max(1, Math.round(h * 0.9)), { fit: 'fill' })
        .jpeg({ quality: 65 + (hash32(`near|${artId}`) % 11) }) // 65–75: two copies of one cover differ in bytes
        .toBuffer();
      this.cache.set(`${artId}_${format}`, bytes);
      return { bytes, contentType: 'image/jpeg', fault };
    }
    let bytes: Buffer;
    if (this.catalog.kind === 'dir') {
      const file = this.catalog.byArtId.get(source)!.imageFile!;
      if (fmt.algo === 'original' && !isReencodeFault(fault)) {
        const { readFile } = await import('node:fs/promises');
        bytes = await readFile(file);
      } else {
        let img = sharp(file).autoOrient();
        if (fmt.algo === 'thumb') img = img.resize(fmt.size!, fmt.size!, { fit: 'cover' });
        else if (fmt.algo === 'fit') img = img.resize(fmt.size!, fmt.size!, { fit: 'inside', withoutEnlargement: true });
        bytes = await encode(img, fmt, fault);
      }
    } else {
      const { width, height } = await this.originalSize(source);
      const raw = this.rawCover(source);
      let img = sharp(raw, { raw: { width: RENDER_SIZE, height: RENDER_SIZE, channels: 3 } });
      if (fmt.algo === 'thumb') {
        // the centre square of the (possibly landscape) original, in render coordinates
        const side = Math.min(width, height);
        const w = Math.round((RENDER_SIZE * side) / width);
        const h = Math.round((RENDER_SIZE * side) / height);
        if (w < RENDER_SIZE || h < RENDER_SIZE) img = img.extract({ left: (RENDER_SIZE - w) >> 1, top: (RENDER_SIZE - h) >> 1, width: w, height: h });
        img = img.resize(fmt.size!, fmt.size!, { fit: 'fill' });
      } else {
        const scale = fmt.algo === 'fit' ? Math.min(1, fmt.size! / width, fmt.size! / height) : 1;
        img = img.resize(Math.round(width * scale), Math.round(height * scale), { fit: 'fill' });
      }
      bytes = await encode(img, fmt, fault);
    }
    bytes = damage(bytes, fault, artId);
    this.cache.set(`${artId}_${format}`, bytes);
    return { bytes, contentType: 'image/jpeg', fault };
  }
}

function isReencodeFault(f: ImageFault | null): boolean {
  return f === 'cmyk' || f === 'grayscale' || f === 'progressive' || f === 'png-alpha' || f === 'bomb';
}

async function encode(img: Sharp, fmt: ImageFormat, fault: ImageFault | null): Promise<Buffer> {
  switch (fault) {
    case 'cmyk':
      return img.toColourspace('cmyk').jpeg({ quality: fmt.quality }).toBuffer();
    case 'grayscale':
      return img.toColourspace('b-w').jpeg({ quality: fmt.quality }).toBuffer();
    case 'progressive':
      return img.jpeg({ quality: fmt.quality, progressive: true }).toBuffer();
    case 'png-alpha':
      return img.ensureAlpha(0.8).png({ compressionLevel: 3 }).toBuffer();
    default:
      return img.jpeg({ quality: fmt.quality }).toBuffer();
  }
}

/** Byte-level faults: truncation, garbled header, bomb (header declaring {@link BOMB_SIDE}² pixels). */
function damage(bytes: Buffer, fault: ImageFault | null, artId: number): Buffer {
  switch (fault) {
    case 'truncated':
      return Buffer.from(bytes.subarray(0, Math.max(64, Math.floor(bytes.length * 0.55))));
    case 'corrupt': {
      const out = Buffer.from(bytes);
      const end = Math.min(out.length, 2 + 400);
      let h = hash32(`corrupt|${artId}`);
      for (let i = 2; i < end; i++) {
        h = (Math.imul(h, 1664525) + 1013904223) >>> 0;
        out[i] = h >>> 24;
      }
      return out;
    }
    case 'bomb': {
      const out = Buffer.from(bytes);
      // patch the frame header (SOF0..SOF2): FF Cx, length(2), precision(1), height(2), width(2)
      for (let i = 2; i + 9 < out.length; i++) {
        if (out[i] === 0xff && out[i + 1]! >= 0xc0 && out[i + 1]! <= 0xc2) {
          out.writeUInt16BE(BOMB_SIDE, i + 5);
          out.writeUInt16BE(BOMB_SIDE, i + 7);
          break;
        }
      }
      return out;
    }
    default:
      return bytes;
  }
}
