/**
 * The `search` stage's files: `search/trials.tsv` (one row per finished trial) and `search/best.json` (the best
 * trial). Their paths are in schemas/paths.ts.
 *
 * `trials.tsv`: UTF-8, tab-separated, a header row, then one row per trial (in the order they finished in the work
 * directory's live copy, by trial number in the output; the same with `search.parallel` = 1). Columns: `trial` (0-based),
 * `status` (`complete`, `pruned` or `failed`), `epochs` (epochs trained), `validation_loss` (the lowest validation
 * cross-entropy over the trial's epochs, nats; empty when failed), `validation_accuracy` (at that epoch, 0–1),
 * `seconds`, then one column per searched key, in the space's order (the value, empty where the key was inactive:
 * e.g. `train.momentum` in an Adam trial), then `validation_losses` (each epoch's validation loss, comma-separated:
 * the successive-halving rungs are read from them on a rerun) and `message` (why it failed or was pruned).
 * Numbers are written in JavaScript's shortest round-trip form; `true`/`false` are booleans; other values are words.
 */
import { readFileSync } from 'node:fs';
import { writeFileAtomic } from '../util/fsutil.ts';
import { UserError } from '../util/errors.ts';
import { stripBom } from './tsv.ts';

export { SEARCH_BEST, SEARCH_TRIALS } from './paths.ts';

/** A searched value: a number, a boolean or a word. */
export type TrialValue = number | boolean | string;

/** How a trial ended. */
export type TrialStatus = 'complete' | 'pruned' | 'failed';

/** One row of `trials.tsv`. */
export interface TrialRecord {
  trial: number;
  status: TrialStatus;
  epochs: number;
  /** Lowest validation loss over the epochs (nats); null when failed before an epoch ended. */
  validationLoss: number | null;
  /** Validation accuracy at that epoch (0–1); null likewise. */
  validationAccuracy: number | null;
  seconds: number;
  /** The value of each searched key active in this trial. */
  values: Record<string, TrialValue>;
  /** Validation loss after each epoch (nats). */
  validationLosses: number[];
  /** Why it failed or was pruned; '' when complete. */
  message: string;
}

const HEAD = ['trial', 'status', 'epochs', 'validation_loss', 'validation_accuracy', 'seconds'] as const;
const TAIL = ['validation_losses', 'message'] as const;
const STATUSES: readonly TrialStatus[] = ['complete', 'pruned', 'failed'];

/** The header of a trials file searching `keys`. */
export function trialsHeader(keys: readonly string[]): string[] {
  return [...HEAD, ...keys, ...TAIL];
}

function cell(v: TrialValue | null | undefined): string {
  if (v === null || v === undefined) return '';
  return String(v).replace(/[\t\r\n]+/g, ' ');
}

/** The text of a trials file over `keys` holding `rows`. */
export function formatTrials(keys: readonly string[], rows: readonly TrialRecord[]): string {
  const lines = [trialsHeader(keys).join('\t')];
  for (const r of rows) {
    lines.push([
      r.trial, r.status, r.epochs, r.validationLoss, r.validationAccuracy, r.seconds,
      ...keys.map((k) => r.values[k]), r.validationLosses.join(','), r.message,
    ].map(cell).join('\t'));
  }
  return lines.join('\n') + '\n';
}

/** Writes a trials file atomically (a kill leaves the old file or the new one, never half of one). */
export function writeTrials(path: string, keys: readonly string[], rows: readonly TrialRecord[]): void {
  writeFileAtomic(path, formatTrials(keys, rows));
}

/** A cell back to its value: `true`/`false` → boolean, a number → number, anything else the word. */
function parseValue(cell: string): TrialValue {
  if (cell === 'true') return true;
  if (cell === 'false') return false;
  if (cell !== '' && Number.isFinite(Number(cell))) return Number(cell);
  return cell;
}

function parseNumber(cellText: string, where: string, nullable: boolean): number | null {
  if (cellText === '' && nullable) return null;
  const n = Number(cellText);
  if (cellText === '' || !Number.isFinite(n)) throw new UserError(`${where}: "${cellText}" is not a number`);
  return n;
}

/**
 * Parses a trials file searching `keys`.
 * @throws UserError naming the file (and line) when the header is not the one for `keys` (the space changed: clean
 *   the search or use another data directory) or a row is malformed.
 */
export function parseTrials(text: string, keys: readonly string[], file: string): TrialRecord[] {
  const lines = stripBom(text).split('\n').filter((l) => l !== '');
  const header = trialsHeader(keys).join('\t');
  if (lines[0] !== header) {
    throw new UserError(`${file}: its columns (${(lines[0] ?? '').split('\t').join(', ')}) are not those of this search.space (${trialsHeader(keys).join(', ')}); run \`covers clean search\` to start the search afresh`);
  }
  return lines.slice(1).map((line, i) => parseRow(line.split('\t'), keys, `${file} line ${i + 2}`));
}

function parseRow(cells: string[], keys: readonly string[], where: string): TrialRecord {
  if (cells.length !== HEAD.length + keys.length + TAIL.length) throw new UserError(`${where}: ${cells.length} cells, expected ${HEAD.length + keys.length + TAIL.length}`);
  const status = cells[1] as TrialStatus;
  if (!STATUSES.includes(status)) throw new UserError(`${where}: status "${cells[1]}" is not one of ${STATUSES.join(', ')}`);
  const values: Record<string, TrialValue> = {};
  keys.forEach((k, j) => {
    const c = cells[HEAD.length + j]!;
    if (c !== '') values[k] = parseValue(c);
  });
  const losses = cells[HEAD.length + keys.length]!;
  return {
    trial: parseNumber(cells[0]!, `${where} trial`, false)!,
    status,
    epochs: parseNumber(cells[2]!, `${where} epochs`, false)!,
    validationLoss: parseNumber(cells[3]!, `${where} validation_loss`, true),
    validationAccuracy: parseNumber(cells[4]!, `${where} validation_accuracy`, true),
    seconds: parseNumber(cells[5]!, `${where} seconds`, false)!,
    values,
    validationLosses: losses === '' ? [] : losses.split(',').map((x) => parseNumber(x, `${where} validation_losses`, false)!),
    message: cells[HEAD.length + keys.length + 1] ?? '',
  };
}

/**
 * Reads a trials file whose searched keys are taken from its own header (for readers that do not know the space,
 * such as the report). @throws UserError naming the file when the header is not a trials header or a row is malformed.
 */
export function readTrialsFile(path: string): { keys: string[]; rows: TrialRecord[] } {
  const text = readFileSync(path, 'utf8');
  const header = stripBom(text).split('\n', 1)[0]!.split('\t');
  const ok = HEAD.every((h, i) => header[i] === h) && TAIL.every((t, i) => header[header.length - TAIL.length + i] === t);
  if (!ok) throw new UserError(`${path}: not a search trials file (expected columns ${HEAD.join(', ')}, …, ${TAIL.join(', ')})`);
  const keys = header.slice(HEAD.length, header.length - TAIL.length);
  return { keys, rows: parseTrials(text, keys, path) };
}

/** Reads a trials file (see {@link parseTrials}). @throws UserError as parseTrials; Error ENOENT when absent. */
export function readTrials(path: string, keys: readonly string[]): TrialRecord[] {
  return parseTrials(readFileSync(path, 'utf8'), keys, path);
}

/** `best.json`: the best trial ({@link bestTrial}) and its configuration. */
export interface SearchBest {
  trial: number;
  status: TrialStatus;
  validationLoss: number;
  validationAccuracy: number;
  epochs: number;
  /** The searched values, by key (`train.learningRate`, `train.modelParams.ld0_dropout`, …). */
  values: Record<string, TrialValue>;
  /** Trials recorded when it was written. */
  trials: number;
}

/** Writes `best.json` (2-space JSON, atomic). */
export function writeSearchBest(path: string, best: SearchBest): void {
  writeFileAtomic(path, JSON.stringify(best, null, 2) + '\n');
}

/** Reads `best.json`. @throws UserError naming the file when it is not a best-trial record. */
export function readSearchBest(path: string): SearchBest {
  let b: unknown;
  try {
    b = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`${path}: ${(e as Error).message}`);
  }
  const o = b as Partial<SearchBest>;
  const okValues = typeof o.values === 'object' && o.values !== null && Object.values(o.values).every((v) => ['number', 'boolean', 'string'].includes(typeof v));
  if (typeof o.trial !== 'number' || typeof o.validationLoss !== 'number' || typeof o.validationAccuracy !== 'number' || !okValues) {
    throw new UserError(`${path}: not a search result (expected trial, validationLoss, validationAccuracy and values); rerun \`covers make search\``);
  }
  return o as SearchBest;
}

/**
 * The best of `rows`: the lowest validation loss among complete trials (earliest on ties); among pruned ones only
 * when none completed (a pruned trial trained fewer epochs, so its loss is not comparable); null when all failed.
 */
export function bestTrial(rows: readonly TrialRecord[]): TrialRecord | null {
  const pick = (status: TrialStatus) => {
    let best: TrialRecord | null = null;
    for (const r of rows) if (r.status === status && r.validationLoss !== null && (best === null || r.validationLoss < best.validationLoss!)) best = r;
    return best;
  };
  return pick('complete') ?? pick('pruned');
}
