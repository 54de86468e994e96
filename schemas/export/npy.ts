/**
 * `mean.npy` beside every export format: the per-pixel training mean as a NumPy `.npy` file, so a trainer that reads
 * the export needs no Arrow reader to subtract it (`np.load("mean.npy")` → `[S, S, 3]` float32, uint8 units, HWC).
 *
 * Format: NumPy's NPY version 1.0 (numpy/lib/format.py, "NEP 1 — A simple file format for NumPy arrays"): the magic
 * `\x93NUMPY`, the version bytes 1, 0, a little-endian uint16 header length, then an ASCII Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (S, S, 3), }` padded with spaces and ended by `\n` so that the
 * data starts at a multiple of 64 bytes (numpy/lib/format.py `ARRAY_ALIGN`, as NumPy writes it), then the values, C order, little-endian.
 * Only float32 C-order arrays are written and read here: that is all the export needs.
 */

/** The NPY magic string (numpy/lib/format.py `MAGIC_PREFIX`). */
export const NPY_MAGIC = Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
/** Data alignment NumPy pads the header to (numpy/lib/format.py `ARRAY_ALIGN`). */
export const NPY_ALIGN = 64;

/**
 * Encodes a float32 array as an NPY 1.0 file.
 * @param data the values, C order (last axis fastest), e.g. `[S, S, 3]` HWC.
 * @param shape the array's shape; its product must equal `data.length`.
 * @returns the file's bytes (little-endian `<f4`).
 * @throws RangeError when the shape does not match the data, or the header would not fit NPY 1.0's uint16 length.
 */
export function encodeNpyFloat32(data: Float32Array, shape: readonly number[]): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length || shape.some((d) => !Number.isInteger(d) || d < 0)) throw new RangeError(`npy: shape (${shape.join(', ')}) does not hold ${data.length} values`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const preamble = NPY_MAGIC.length + 2 + 2;
  const headerLen = Math.ceil((preamble + dict.length + 1) / NPY_ALIGN) * NPY_ALIGN - preamble;
  if (headerLen > 0xffff) throw new RangeError(`npy: header of ${headerLen} bytes does not fit NPY 1.0`);
  const out = new Uint8Array(preamble + headerLen + data.length * 4);
  out.set(NPY_MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  const view = new DataView(out.buffer);
  view.setUint16(8, headerLen, true);
  const header = dict.padEnd(headerLen - 1, ' ') + '\n';
  for (let i = 0; i < header.length; i++) out[preamble + i] = header.charCodeAt(i);
  const base = preamble + headerLen;
  for (let i = 0; i < data.length; i++) view.setFloat32(base + i * 4, data[i]!, true);
  return out;
}

/** An array read back by {@link decodeNpyFloat32}. */
export interface NpyFloat32 {
  shape: number[];
  data: Float32Array;
}

/**
 * Decodes an NPY 1.0 file holding a little-endian float32 C-order array (what {@link encodeNpyFloat32} writes).
 * @throws Error naming what is wrong: not NPY, another version, dtype or order, or a length that does not match.
 */
export function decodeNpyFloat32(bytes: Uint8Array): NpyFloat32 {
  if (bytes.length < 10 || NPY_MAGIC.some((b, i) => bytes[i] !== b)) throw new Error('npy: not an NPY file (bad magic)');
  if (bytes[6] !== 1) throw new Error(`npy: version ${bytes[6]}.${bytes[7]} (only 1.0 is read here)`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = view.getUint16(8, true);
  const header = String.fromCharCode(...bytes.subarray(10, 10 + headerLen));
  if (!/'descr':\s*'<f4'/.test(header)) throw new Error(`npy: dtype is not '<f4' (${header.trim()})`);
  if (!/'fortran_order':\s*False/.test(header)) throw new Error('npy: Fortran order is not read here');
  const m = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!m) throw new Error(`npy: no shape in the header (${header.trim()})`);
  const shape = m[1]!.split(',').map((x) => x.trim()).filter((x) => x !== '').map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const base = 10 + headerLen;
  if (bytes.length !== base + count * 4) throw new Error(`npy: ${bytes.length - base} data bytes for shape (${shape.join(', ')})`);
  const data = new Float32Array(count);
  for (let i = 0; i < count; i++) data[i] = view.getFloat32(base + i * 4, true);
  return { shape, data };
}
