/**
 * WebDataset shards: `DATA_DIR/export/webdataset/<split>/<split>-NNNNNN.tar`, POSIX (ustar) tar files written with
 * `tar-stream`, three members per sample, in shard order:
 *
 * ```
 * <key>.png   (or <key>.jpg)  the cover, [S, S, 3] RGB, encoded
 * <key>.cls   the label, decimal ASCII (webdataset's `cls` decoder gives an int)
 * <key>.json  {"label", "genre", "item_id", "art_id", "sha256"} (UTF-8, keys in this order)
 * ```
 *
 * The conventions are the `webdataset` library's (https://github.com/webdataset/webdataset, README "The WebDataset
 * Format" and `webdataset/tariterators.py` `base_plus_ext`): the files of one sample are consecutive, and a member's
 * key is its path up to the first dot of its file name, the extension is the rest; `__key__` is that key. Keys here
 * are the album's `item_id` in decimal (no dots, stable across rebuilds).
 *
 * Byte-stable: every header has mtime 0 (1970-01-01), uid/gid 0, empty user and group names and mode 0644, so the
 * same samples give the same bytes on every run and machine.
 */
import { Buffer } from 'node:buffer';
import tar from 'tar-stream';
import { imageExtension, type ExportImageFormat, type ExportSample } from './layout.ts';

/** The member extensions of a sample with their meaning: the image's (`png` or `jpg`), `cls`, `json`. */
export function webDatasetKeys(imageFormat: ExportImageFormat): Record<string, string> {
  return {
    [imageExtension(imageFormat)]: `the cover, [S, S, 3] RGB, ${imageFormat === 'png' ? 'PNG (lossless)' : 'JPEG'}`,
    cls: 'the label: index of the genre in labelNames, decimal',
    json: '{"label": int, "genre": str, "item_id": int, "art_id": int, "sha256": str}',
  };
}

/** Fixed header fields of every member (byte-stable tars). */
const FIXED = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '', mode: 0o644, type: 'file' as const };

/** The `<key>.json` member of a sample. */
export function sampleJson(s: ExportSample): string {
  return JSON.stringify({ label: s.label, genre: s.genre, item_id: s.itemId, art_id: s.artId, sha256: s.sha256 });
}

/** The members of one sample, in the order they are written. */
export function sampleMembers(s: ExportSample): { name: string; data: Uint8Array }[] {
  if (!/^[^./]+$/.test(s.key)) throw new RangeError(`webdataset: key "${s.key}" holds a dot or a slash`);
  return [
    { name: `${s.key}.${imageExtension(s.imageFormat)}`, data: s.image },
    { name: `${s.key}.cls`, data: Buffer.from(String(s.label), 'utf8') },
    { name: `${s.key}.json`, data: Buffer.from(sampleJson(s), 'utf8') },
  ];
}

/**
 * A WebDataset tar shard's bytes for `samples`, in order.
 * @throws RangeError when a key holds a dot or a slash.
 */
export async function encodeWebDatasetShard(samples: readonly ExportSample[]): Promise<Uint8Array> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => void chunks.push(c as Buffer));
    pack.on('end', resolve);
    pack.on('error', reject);
  });
  for (const s of samples) {
    for (const m of sampleMembers(s)) pack.entry({ ...FIXED, name: m.name, size: m.data.length }, Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** One sample read back by {@link readWebDatasetShard}: `__key__` and each member's bytes by extension. */
export interface WebDatasetSample {
  __key__: string;
  files: Record<string, Uint8Array>;
}

/**
 * Reads a WebDataset tar the way the `webdataset` library groups it: consecutive members with the same key form a
 * sample.
 * @throws Error from the tar parser when the bytes are not a tar.
 */
export async function readWebDatasetShard(bytes: Uint8Array): Promise<WebDatasetSample[]> {
  const extract = tar.extract();
  const samples: WebDatasetSample[] = [];
  const done = new Promise<void>((resolve, reject) => {
    extract.on('entry', (header, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (c: unknown) => void parts.push(c as Buffer));
      stream.on('end', () => {
        const slash = header.name.lastIndexOf('/');
        const dot = header.name.indexOf('.', slash + 1);
        const key = dot < 0 ? header.name : header.name.slice(0, dot);
        const ext = dot < 0 ? '' : header.name.slice(dot + 1);
        const last = samples[samples.length - 1];
        const sample = last && last.__key__ === key ? last : { __key__: key, files: {} };
        if (sample !== last) samples.push(sample);
        sample.files[ext] = Buffer.concat(parts);
        next();
      });
      stream.resume();
    });
    extract.on('finish', resolve);
    extract.on('error', reject);
  });
  extract.end(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  await done;
  return samples;
}
