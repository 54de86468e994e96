/**
 * `dataset.json` and `README.md` of each exported format (layout.ts): which shards hold each split, the columns or
 * keys with their types, the label names, the image encoding, the mean, and a Python loader.
 */
import { PARQUET_COLUMNS } from './parquet.ts';
import { TFRECORD_FEATURES } from './tfrecord.ts';
import { webDatasetKeys } from './webdataset.ts';
import { imageExtension, type ExportDescription, type ExportFormat, type ExportImageFormat } from './layout.ts';

/** What {@link describeExport} is told. */
export interface DescribeInput {
  format: ExportFormat;
  size: number;
  labelNames: readonly string[];
  imageFormat: ExportImageFormat;
  /** Per split, in order: shard file names (relative to the format's folder) and rows per shard. */
  splits: Record<string, { files: string[]; rows: number[] }>;
}

/** WebDataset's brace notation for a split's shards: `train/train-{000000..000007}.tar`. */
function shardRange(files: readonly string[]): string {
  if (files.length < 2) return files[0] ?? 'train/train-000000.tar';
  const last = /-(\d{6})\.tar$/.exec(files[files.length - 1]!)?.[1] ?? '000000';
  return files[0]!.replace(/-(\d{6})\.tar$/, `-{$1..${last}}.tar`);
}

/** The Python loader of each format, run from the format's folder (`DATA_DIR/export/<format>`). */
function loader(format: ExportFormat, trainFiles: readonly string[], imageFormat: ExportImageFormat): string {
  switch (format) {
    case 'parquet':
      return [
        'from datasets import load_dataset        # or: pyarrow.parquet.read_table, polars.read_parquet, duckdb',
        'dd = load_dataset("parquet", data_dir=".")  # splits from the folder names; image → PIL, label → ClassLabel',
        'names = dd["train"].features["label"].names',
      ].join('\n');
    case 'webdataset':
      return [
        'import webdataset as wds                # pip install webdataset; or tarfile: a sample = consecutive members sharing a key',
        `ds = wds.WebDataset("${shardRange(trainFiles)}").decode("rgb8").to_tuple("${imageExtension(imageFormat)}", "cls")`,
        'loader = torch.utils.data.DataLoader(ds, batch_size=64)   # images [B, S, S, 3] uint8, labels int',
      ].join('\n');
    case 'tfrecord':
      return [
        'import tensorflow as tf',
        'spec = {"image/encoded": tf.io.FixedLenFeature([], tf.string), "image/class/label": tf.io.FixedLenFeature([], tf.int64)}',
        `ds = tf.data.TFRecordDataset(tf.io.gfile.glob("train/*.tfrecord")).map(lambda r: tf.io.parse_single_example(r, spec)).map(lambda e: (tf.io.decode_image(e["image/encoded"], channels=3, expand_animations=False), e["image/class/label"]))`,
      ].join('\n');
  }
}

/** The `dataset.json` of one format. */
export function describeExport(input: DescribeInput): ExportDescription {
  const fields: Record<string, string> =
    input.format === 'parquet' ? { ...PARQUET_COLUMNS } : input.format === 'webdataset' ? webDatasetKeys(input.imageFormat) : { ...TFRECORD_FEATURES };
  const splits = Object.fromEntries(Object.entries(input.splits).map(([s, v]) => [s, { ...v, total: v.rows.reduce((a, b) => a + b, 0) }]));
  return {
    format: input.format,
    source: 'bandcamp-covers shards',
    image: { encoding: input.imageFormat, height: input.size, width: input.size, channels: 3, colorSpace: 'RGB' },
    labelNames: [...input.labelNames],
    splits,
    mean: { file: 'mean.npy', shape: [input.size, input.size, 3], dtype: 'float32' },
    fields,
    load: loader(input.format, input.splits.train?.files ?? [], input.imageFormat),
  };
}

const TITLES: Record<ExportFormat, string> = {
  parquet: 'Parquet (Hugging Face datasets, pyarrow, polars, DuckDB, Spark)',
  webdataset: 'WebDataset tar shards (PyTorch)',
  tfrecord: 'TFRecord of tf.train.Example (TensorFlow, Keras, JAX)',
};

/** The `README.md` of one format, from its description. */
export function exportReadme(d: ExportDescription): string {
  const rows = Object.entries(d.splits).map(([s, v]) => `| ${s} | ${v.total} | ${v.files.length} |`);
  const fields = Object.entries(d.fields).map(([k, v]) => `| \`${k}\` | ${v} |`);
  return [
    `# Bandcamp covers: ${TITLES[d.format]}`,
    '',
    `Album covers as ${d.image.width}×${d.image.height} RGB ${d.image.encoding.toUpperCase()} images, labelled with one of ${d.labelNames.length} genres,`,
    'exported by `covers make export` from the Arrow shards of bandcamp-covers: the same rows in the same order.',
    '`dataset.json` lists every shard file and its row count.',
    '',
    '| split | rows | shards |',
    '| --- | --- | --- |',
    ...rows,
    '',
    `Labels (\`label\` indexes this list): ${d.labelNames.map((n) => `\`${n}\``).join(', ')}.`,
    '',
    '| field | meaning |',
    '| --- | --- |',
    ...fields,
    '',
    '`mean.npy`: the per-pixel mean of the training split, `[S, S, 3]` float32 in uint8 units (HWC, RGB): `np.load("mean.npy")`.',
    '',
    'Load it (Python, from this folder):',
    '',
    '```python',
    d.load,
    '```',
    '',
  ].join('\n');
}
