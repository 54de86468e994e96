/**
 * Tab-separated files with a header line (`manifest.tsv`, `rejected.tsv`): declared once, used by writers and
 * readers alike. Values must not contain tabs or newlines (they are replaced by spaces on write).
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/fsutil.ts';

/** Column kinds of a TSV format: `string` or `int` (a safe integer). Empty cells read as null. */
export type TsvKind = 'string' | 'int';
type JsOf<K extends TsvKind> = K extends 'int' ? number : string;
/** A row of a TSV format; every cell may be null (written as an empty cell). */
export type TsvRow<C extends Record<string, TsvKind>> = { [K in keyof C]: JsOf<C[K]> | null };

/** A declared TSV format. */
export interface TsvFormat<C extends Record<string, TsvKind>> {
  readonly name: string;
  readonly columns: C;
  /** The header line (no newline). */
  readonly header: string;
  /**
   * True when `line` is a header this format reads: {@link TsvFormat.header}, or an older one that lacks some of the
   * trailing columns declared optional (their cells read as null).
   */
  isHeader(line: string): boolean;
  /** Serialises rows, header first, one row per line, `\n` line ends. */
  format(rows: readonly TsvRow<C>[]): string;
  /** Writes rows atomically. */
  write(path: string, rows: readonly TsvRow<C>[]): void;
  /**
   * Parses text, as people save it too: a UTF-8 byte order mark (Excel, Notepad) is skipped and CRLF line ends are
   * accepted. @throws Error naming the source and line for a wrong header or a bad cell (an id beyond 2^53 − 1 is
   * named with its digits as written).
   */
  parse(text: string, source?: string): TsvRow<C>[];
  /** Reads and parses a file. */
  read(path: string): TsvRow<C>[];
}

const clean = (v: string) => v.replace(/[\t\r\n]+/g, ' ');

/** `text` without a leading UTF-8 byte order mark (U+FEFF). */
export function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/**
 * The lines of a text file as people save it: split at LF or CRLF, and a CR that ends the text without a LF (a
 * last line saved with CR but no newline) is a line end too, never part of the last value.
 */
export function splitLines(text: string): string[] {
  return text.split(/\r?\n|\r$/);
}

/** A header line for messages: tabs as `<TAB>`, other control and invisible characters as `\u{…}`. */
function visible(line: string): string {
  return line.slice(0, 200).replace(/\t/g, '<TAB>').replace(/[\u0000-\u001f\u007f\u00a0\u200b-\u200f\ufeff]/g, (ch) => `\\u{${ch.codePointAt(0)!.toString(16)}}`);
}

/**
 * Parses a decimal integer cell (an id, a size) exactly.
 * @param where `file: line N: column C`, for the message.
 * @throws Error for anything but optional `-` and digits, and for a value beyond ±(2^53 − 1), which a JavaScript
 * number cannot hold exactly (the message shows the digits as written, never a rounded value).
 */
export function parseIntCell(cell: string, where: string): number {
  if (!/^-?\d+$/.test(cell)) throw new Error(`${where}: expected an integer, found "${cell.slice(0, 60)}"`);
  const n = Number(cell);
  if (!Number.isSafeInteger(n)) {
    throw new Error(`${where}: ${cell.replace(/^-?0+(?=\d)/, '')} (${cell.replace(/^-/, '').replace(/^0+(?=\d)/, '').length} digits) is beyond 2^53 − 1 = 9007199254740991, the largest id this tool holds exactly; is the column right?`);
  }
  return n;
}

/**
 * Declares a TSV format from its columns (in file order).
 * @param optionalTrailing how many of the last columns were added later: files written before them (a header without
 * some of them, from the end) are still read, those cells as null. Writers always write every column.
 */
export function defineTsv<C extends Record<string, TsvKind>>(name: string, columns: C, optionalTrailing = 0): TsvFormat<C> {
  const cols = Object.entries(columns) as [keyof C & string, TsvKind][];
  const header = cols.map(([c]) => c).join('\t');
  /** Accepted headers and their column counts. */
  const headers = new Map<string, number>();
  for (let k = cols.length; k >= cols.length - optionalTrailing && k > 0; k--) headers.set(cols.slice(0, k).map(([c]) => c).join('\t'), k);
  const fmt: TsvFormat<C> = {
    name,
    columns,
    header,
    isHeader(line) {
      return headers.has(line);
    },
    format(rows) {
      const lines = [header];
      for (const r of rows) lines.push(cols.map(([c]) => (r[c] === null || r[c] === undefined ? '' : clean(String(r[c])))).join('\t'));
      return `${lines.join('\n')}\n`;
    },
    write(path, rows) {
      writeFileAtomic(path, fmt.format(rows));
    },
    parse(text, source = name) {
      const lines = splitLines(stripBom(text));
      const width = headers.get(lines[0] ?? '');
      if (width === undefined) {
        throw new Error(`${source}: line 1: expected the ${name} header "${header.replace(/\t/g, '<TAB>')}", found "${visible(lines[0] ?? '')}"`);
      }
      const rows: TsvRow<C>[] = [];
      for (let i = 1; i < lines.length; i++) {
        const line = lines[i]!;
        if (line === '') continue;
        const cells = line.split('\t');
        if (cells.length !== width) throw new Error(`${source}: line ${i + 1}: expected ${width} tab-separated cells, found ${cells.length}`);
        const row: Record<string, string | number | null> = {};
        cols.forEach(([c, kind], j) => {
          const cell = cells[j] ?? '';
          if (cell === '') row[c] = null;
          else if (kind === 'int') row[c] = parseIntCell(cell, `${source}: line ${i + 1}: column ${c}`);
          else row[c] = cell;
        });
        rows.push(row as TsvRow<C>);
      }
      return rows;
    },
    read(path) {
      return fmt.parse(readFileSync(path, 'utf8'), path);
    },
  };
  return fmt;
}
