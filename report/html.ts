/**
 * Safe HTML building for the report: every interpolated value is escaped unless it is already {@link SafeHtml}
 * (the output of {@link html} or {@link raw}). Nothing else in `report/` concatenates markup with data, so text from
 * the data directory (genre names, rejection reasons, file paths, config strings) can never inject markup.
 */

/** A fragment of markup that is safe to insert as is. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

/** What {@link html} accepts as an interpolation: text (escaped), numbers, safe markup, lists of these; null/undefined/false render nothing. */
export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Escapes text for an HTML (or SVG) text node or a quoted attribute value. */
export function esc(text: string | number): string {
  return String(text).replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return '';
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return (value as readonly HtmlValue[]).map(render).join('');
  if (typeof value === 'number') return Number.isFinite(value) ? esc(value) : '';
  return esc(String(value));
}

/**
 * Tagged template that escapes its interpolations: ``html`<td>${genre}</td>` ``.
 * @returns safe markup.
 */
export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** Marks trusted markup (produced by our own code, never from data) as safe. */
export function raw(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

/** Joins fragments into one. */
export function join(parts: readonly HtmlValue[], sep: HtmlValue = ''): SafeHtml {
  return new SafeHtml(parts.map(render).join(render(sep)));
}

/** Formats an integer with thousands separators (en-GB: `1,050`). */
export function fmtInt(n: number): string {
  return Math.round(n).toLocaleString('en-GB');
}

/** Formats a proportion in [0, 1] as a percentage with `digits` decimals: `0.226` → `22.6%`. */
export function fmtPct(p: number, digits = 1): string {
  return `${(p * 100).toFixed(digits)}%`;
}

/** Formats a byte count: `512 B`, `3.4 KiB`, `12.0 MiB`. */
export function fmtBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
