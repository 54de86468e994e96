/**
 * Small typed Arrow tables (candidates, labels, selection, splits): one declaration per on-disk format, used by
 * writers and readers alike. Files are Arrow IPC **stream** files (read them with `pyarrow.ipc.open_stream`, or
 * `apache-arrow`'s `tableFromIPC`), written atomically.
 *
 * Int64 columns hold ids. JavaScript numbers carry them exactly only up to 2^53 − 1, so writers convert with a
 * safe-integer check and readers convert back (docs/PITFALLS.md #5, apache/arrow #40051): rows never hold BigInt.
 */
import { readFileSync } from 'node:fs';
import * as arrow from 'apache-arrow';
import { writeFileAtomic } from '../util/fsutil.ts';

/** Column kinds: `utf8` string, `int64` safe integer (stored Int64), `int32`, `float64`, `bool`, `utf8list` string[]. */
export type ColumnKind = 'utf8' | 'int64' | 'int32' | 'float64' | 'bool' | 'utf8list';

type JsOf<K extends ColumnKind> = K extends 'utf8'
  ? string
  : K extends 'int64' | 'int32' | 'float64'
    ? number
    : K extends 'bool'
      ? boolean
      : string[];

/** The row type of a column declaration; every field may be null. */
export type RowOf<C extends Record<string, ColumnKind>> = { [K in keyof C]: JsOf<C[K]> | null };

function arrowType(kind: ColumnKind): arrow.DataType {
  switch (kind) {
    case 'utf8': return new arrow.Utf8();
    case 'int64': return new arrow.Int64();
    case 'int32': return new arrow.Int32();
    case 'float64': return new arrow.Float64();
    case 'bool': return new arrow.Bool();
    case 'utf8list': return new arrow.List(new arrow.Field('item', new arrow.Utf8(), true));
  }
}

/**
 * Converts a JS number to BigInt for an Int64 column.
 * @throws RangeError when the value is not a safe integer (it could not be read back exactly).
 */
export function toInt64(value: number, what = 'value'): bigint {
  if (!Number.isSafeInteger(value)) throw new RangeError(`${what} ${value} is not a safe integer (|x| < 2^53)`);
  return BigInt(value);
}

/**
 * Converts an Int64 value read from Arrow back to a number.
 * @throws RangeError when it is outside the safe-integer range.
 */
export function fromInt64(value: bigint | number, what = 'value'): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`${what} ${value} does not fit a JavaScript number exactly`);
  return n;
}

/** A declared Arrow table format. */
export interface TableFormat<C extends Record<string, ColumnKind>> {
  /** The format's name (for messages), e.g. `candidates`. */
  readonly name: string;
  readonly columns: C;
  /** The Arrow schema (all fields nullable). */
  readonly schema: arrow.Schema;
  /** Builds an Arrow table from rows. @throws RangeError on unsafe ids, TypeError on a wrong value type. */
  toTable(rows: readonly RowOf<C>[], metadata?: Record<string, string>): arrow.Table;
  /** Writes rows as an Arrow IPC stream file, atomically. */
  write(path: string, rows: readonly RowOf<C>[], metadata?: Record<string, string>): void;
  /** Reads rows back (ids as numbers, lists as arrays). @throws Error naming the file when a column is missing. */
  read(path: string): RowOf<C>[];
  /** Reads the file's schema metadata (key → value). @throws the fs or Arrow error for an unreadable file. */
  readMetadata(path: string): Map<string, string>;
  /** Converts an Arrow table (e.g. from `tableFromIPC`) to rows. */
  fromTable(table: arrow.Table, source?: string): RowOf<C>[];
  /** The schema metadata (key → value) of a file written with {@link TableFormat.write}. */
  readMetadata(path: string): Map<string, string>;
}

/**
 * Declares a table format from its columns.
 * @param optional columns added later: a file written before them is still read, those cells as null.
 */
export function defineTable<C extends Record<string, ColumnKind>>(name: string, columns: C, optional: readonly (keyof C & string)[] = []): TableFormat<C> {
  const entries = Object.entries(columns) as [keyof C & string, ColumnKind][];
  const schema = new arrow.Schema(entries.map(([col, kind]) => new arrow.Field(col, arrowType(kind), true)));
  const format: TableFormat<C> = {
    name,
    columns,
    schema,
    toTable(rows, metadata) {
      const data: Record<string, arrow.Vector> = {};
      for (const [col, kind] of entries) {
        const values = rows.map((r, i) => {
          const v = r[col];
          if (v === null || v === undefined) return null;
          if (kind === 'int64') return toInt64(v as number, `${name}: row ${i} column ${col}`);
          return v;
        });
        data[col] = arrow.vectorFromArray(values, arrowType(kind));
      }
      // Our declared (all-nullable) schema with the metadata, over the batches apache-arrow built from the vectors.
      const withMeta = new arrow.Schema(schema.fields, new Map(Object.entries(metadata ?? {})));
      return new arrow.Table(withMeta, new arrow.Table(data).batches.map((b) => new arrow.RecordBatch(withMeta, b.data)));
    },
    write(path, rows, metadata) {
      writeFileAtomic(path, arrow.tableToIPC(format.toTable(rows, metadata), 'stream'));
    },
    read(path) {
      return format.fromTable(arrow.tableFromIPC(readFileSync(path)), path);
    },
    readMetadata(path) {
      return new Map(arrow.tableFromIPC(readFileSync(path)).schema.metadata);
    },
    fromTable(table, source = name) {
      for (const [col] of entries) {
        if (!optional.includes(col) && !table.schema.fields.some((f) => f.name === col)) throw new Error(`${source}: column "${col}" missing (not a ${name} table)`);
      }
      const cols = entries.map(([col, kind]) => [col, kind, table.getChild(col)] as const);
      const rows: RowOf<C>[] = new Array(table.numRows);
      for (let i = 0; i < table.numRows; i++) {
        const row: Record<string, unknown> = {};
        for (const [col, kind, vec] of cols) {
          const v: unknown = vec ? vec.get(i) : null;
          if (v === null || v === undefined) row[col] = null;
          else if (kind === 'int64') row[col] = fromInt64(v as bigint, `${source}: row ${i} column ${col}`);
          else if (kind === 'utf8list') row[col] = Array.from((v as arrow.Vector).toArray() as ArrayLike<string>);
          else row[col] = v;
        }
        rows[i] = row as RowOf<C>;
      }
      return rows;
    },
  };
  return format;
}
