/**
 * A search space: the hyperparameters a search varies, each with its prior distribution and an optional condition,
 * written in our own config syntax (hyperopt's `hp.*` expressions, as the study's `hypersearch.py` used them, in a
 * form that fits one `--set search.space=…` value).
 *
 * Syntax: entries separated by `;`, each `KEY=DIST(ARGS)` or `KEY=DIST(ARGS) if KEY2=VALUE`, where KEY is a dotted
 * config key (`train.learningRate`) or a model parameter as `train.modelParams.<param>` (`train.modelParams.ld0_dropout`)
 * and DIST is one of
 * - `choice(a,b,…)`: one of the listed values (numbers, `true`/`false`, or words), hyperopt's `hp.choice`;
 * - `uniform(low,high)`: hyperopt's `hp.uniform`;
 * - `quniform(low,high,q)`: `round(uniform(low, high) / q) · q` (hyperopt's `hp.quniform`; integers when `q`, `low`
 *   and `high` are integers);
 * - `loguniform(low,high)`: `exp(uniform(ln low, ln high))`. Unlike hyperopt's `hp.loguniform`, whose bounds are the
 *   logarithms, the bounds here are the values themselves; `e^x` is accepted as a number, so the study's
 *   `hp.loguniform(−12, −5)` is `loguniform(e^-12,e^-5)`;
 * - `qloguniform(low,high,q)`: `round(loguniform(low, high) / q) · q` (hyperopt's `hp.qloguniform`, bounds as values).
 * A condition makes the entry active only in trials where KEY2 (a `choice` entry listed before it) takes VALUE, like
 * a parameter inside one branch of hyperopt's `hp.choice`: `train.momentum=uniform(0.5,1) if train.optimizer=nesterov`.
 */

/** A value a search parameter can take. */
export type SpaceValue = number | boolean | string;

/** A prior distribution (see the module comment); bounds in the parameter's own units. */
export type Distribution =
  | { kind: 'choice'; options: SpaceValue[] }
  | { kind: 'uniform'; low: number; high: number }
  | { kind: 'quniform'; low: number; high: number; q: number }
  | { kind: 'loguniform'; low: number; high: number }
  | { kind: 'qloguniform'; low: number; high: number; q: number };

/** One searched parameter. */
export interface SearchParam {
  /** Dotted config key, or `train.modelParams.<param>` for a model parameter. */
  key: string;
  dist: Distribution;
  /** Active only when this earlier `choice` parameter takes this value; null: always active. */
  when: { key: string; value: SpaceValue } | null;
}

/** A search space: its parameters in the order written (a condition's parameter comes before the ones it gates). */
export type SearchSpace = readonly SearchParam[];

/** One trial's configuration: the value of every parameter active in it, by key. */
export type Assignment = Record<string, SpaceValue>;

/** The prefix of search keys that set one model parameter inside `train.modelParams`. */
export const MODEL_PARAM_PREFIX = 'train.modelParams.';

/** A space that cannot be parsed; the message names the entry and the reason. */
export class SpaceError extends Error {
  override name = 'SpaceError';
}

/** Parses a number, accepting `e^x` (Euler's number to the power x) as the study wrote its learning-rate bounds. */
export function parseSpaceNumber(raw: string, where: string): number {
  const t = raw.trim();
  const pow = /^e\^\(?([-+]?[\d.]+(?:e[-+]?\d+)?)\)?$/i.exec(t);
  const n = pow ? Math.exp(Number(pow[1])) : t === '' ? NaN : Number(t);
  if (!Number.isFinite(n)) throw new SpaceError(`${where}: "${raw}" is not a number (e.g. 0.5, 1e-3 or e^-12)`);
  return n;
}

/** Parses one `choice` option: `true`/`false` → boolean, a number → number, anything else the word itself. */
function parseOption(raw: string): SpaceValue {
  const t = raw.trim();
  if (t === 'true') return true;
  if (t === 'false') return false;
  if (t !== '' && Number.isFinite(Number(t))) return Number(t);
  return t;
}

const ARITY: Record<Exclude<Distribution['kind'], 'choice'>, number> = { uniform: 2, quniform: 3, loguniform: 2, qloguniform: 3 };

/** Parses `DIST(ARGS)` of the entry `where`. @throws SpaceError naming the entry. */
export function parseDistribution(text: string, where: string): Distribution {
  const m = /^\s*([a-z]+)\s*\((.*)\)\s*$/i.exec(text);
  if (!m) throw new SpaceError(`${where}: "${text}" is not DIST(ARGS), e.g. uniform(0,0.75) or choice(adam,nesterov)`);
  const kind = m[1]!;
  const args = m[2]!.split(',');
  if (kind === 'choice') {
    const options = args.map(parseOption);
    if (options.some((o) => o === '')) throw new SpaceError(`${where}: choice() has an empty option`);
    if (new Set(options).size !== options.length) throw new SpaceError(`${where}: choice() lists an option twice`);
    return { kind, options };
  }
  if (!(kind in ARITY)) throw new SpaceError(`${where}: unknown distribution "${kind}" (choice, uniform, quniform, loguniform, qloguniform)`);
  const k = kind as keyof typeof ARITY;
  if (args.length !== ARITY[k]) throw new SpaceError(`${where}: ${k}() takes ${ARITY[k]} numbers, not ${args.length}`);
  const [low, high, q] = args.map((a) => parseSpaceNumber(a, where)) as [number, number, number?];
  if (!(low < high)) throw new SpaceError(`${where}: ${k}(${low}, ${high}) needs low < high`);
  if ((k === 'loguniform' || k === 'qloguniform') && low <= 0) throw new SpaceError(`${where}: ${k}() needs low > 0 (the bounds are values, not logarithms)`);
  if (q !== undefined && !(q > 0)) throw new SpaceError(`${where}: ${k}() needs q > 0`);
  return k === 'quniform' || k === 'qloguniform' ? { kind: k, low, high, q: q! } : { kind: k, low, high };
}

/** Parses one entry `KEY=DIST(ARGS)[ if KEY2=VALUE]`, checking its condition against the entries before it. */
function parseEntry(entry: string, before: readonly SearchParam[]): SearchParam {
  const where = `search.space entry "${entry}"`;
  const [main, cond, extra] = entry.split(/\s+if\s+/);
  if (extra !== undefined) throw new SpaceError(`${where}: one condition at most`);
  const eq = main!.indexOf('=');
  if (eq <= 0) throw new SpaceError(`${where}: expected KEY=DIST(ARGS), e.g. train.learningRate=loguniform(e^-12,e^-5)`);
  const key = main!.slice(0, eq).trim();
  if (!/^[\w.]+$/.test(key)) throw new SpaceError(`${where}: "${key}" is not a dotted config key`);
  if (before.some((p) => p.key === key)) throw new SpaceError(`${where}: ${key} is searched twice`);
  const dist = parseDistribution(main!.slice(eq + 1), where);
  return { key, dist, when: cond === undefined ? null : parseCondition(cond, where, before) };
}

function parseCondition(cond: string, where: string, before: readonly SearchParam[]): { key: string; value: SpaceValue } {
  const eq = cond.indexOf('=');
  const key = cond.slice(0, eq).trim();
  const gate = before.find((p) => p.key === key);
  if (eq <= 0 || !gate || gate.dist.kind !== 'choice') throw new SpaceError(`${where}: the condition "${cond}" must name a choice() entry listed before it, as KEY=VALUE`);
  const value = parseOption(cond.slice(eq + 1));
  if (!gate.dist.options.includes(value)) throw new SpaceError(`${where}: ${key} never takes ${JSON.stringify(value)} (its options: ${gate.dist.options.join(', ')})`);
  return { key, value };
}

/**
 * Parses a search space (syntax in the module comment).
 * @throws SpaceError naming the entry and the reason (bad syntax, bounds, a key searched twice, a bad condition).
 */
export function parseSpace(text: string): SearchParam[] {
  const out: SearchParam[] = [];
  for (const raw of text.split(';')) {
    if (raw.trim() === '') continue;
    out.push(parseEntry(raw.trim(), out));
  }
  if (out.length === 0) throw new SpaceError('search.space: no parameter to search');
  return out;
}

/** Writes a parameter back in the syntax {@link parseSpace} reads. */
export function formatParam(p: SearchParam): string {
  const d = p.dist;
  const args = d.kind === 'choice' ? d.options.join(',') : d.kind === 'quniform' || d.kind === 'qloguniform' ? `${d.low},${d.high},${d.q}` : `${d.low},${d.high}`;
  return `${p.key}=${d.kind}(${args})${p.when ? ` if ${p.when.key}=${p.when.value}` : ''}`;
}

/** Whether `p` is active in the (partial) assignment `a`, whose earlier parameters are already set. */
export function isActive(p: SearchParam, a: Assignment): boolean {
  return p.when === null || a[p.when.key] === p.when.value;
}

/** Rounds `x` to a multiple of `q` (hyperopt: `np.round(x / q) * q`), without binary noise for integer `q`. */
export function quantize(x: number, q: number): number {
  const r = Math.round(x / q) * q;
  return Number.isInteger(q) ? Math.round(r) : Number(r.toPrecision(12));
}

/**
 * The study's search space (`hypersearch.py`) in our keys: Nesterov momentum with `train.momentum` ~ U(0.5, 1) or
 * Adam with `train.adam.beta1` ~ U(0, 0.9) and `train.adam.beta2` ~ U(0.99, 1); `train.learningRate` ~
 * loguniform(e^−12, e^−5); `train.mirror` ∈ {false, true}; and for the architecture's layers (`layers`, from
 * schemas/model-params.ts defaults): each dense layer's dropout ~ U(0, 0.75) (the study's example
 * `ld0_dropout__uniform=0,0.75`) and hidden units, and each conv layer's filters, as quantised log-uniforms from a
 * quarter to twice the architecture's default (our choice: the study names these parameters, not their ranges).
 * The study's `num_crops` ∈ {1, 5} has no counterpart: our trainer draws a fresh random crop per image and epoch.
 * @param layers the architecture's default model parameters (`lcI_num_filters`, `ldI_num_units`, `ldI_dropout`).
 */
export function studySpace(layers: Record<string, unknown>): string {
  const entries = [
    'train.optimizer=choice(nesterov,adam)',
    'train.momentum=uniform(0.5,1) if train.optimizer=nesterov',
    'train.adam.beta1=uniform(0,0.9) if train.optimizer=adam',
    'train.adam.beta2=uniform(0.99,1) if train.optimizer=adam',
    'train.learningRate=loguniform(e^-12,e^-5)',
    'train.mirror=choice(false,true)',
  ];
  for (const [k, v] of Object.entries(layers)) {
    if (typeof v !== 'number') continue;
    if (/^ld\d+_num_units$/.test(k)) {
      entries.push(`${MODEL_PARAM_PREFIX}${k.replace('_num_units', '_dropout')}=uniform(0,0.75)`);
      entries.push(`${MODEL_PARAM_PREFIX}${k}=${logRange(v, 16)}`);
    } else if (/^lc\d+_num_filters$/.test(k)) entries.push(`${MODEL_PARAM_PREFIX}${k}=${logRange(v, 8)}`);
  }
  return entries.join('; ');
}

/** `qloguniform` from a quarter to twice `v`, in steps of `q` (at least `q`). */
function logRange(v: number, q: number): string {
  const low = Math.max(q, Math.round(v / 4 / q) * q);
  return `qloguniform(${low},${Math.max(low * 2, v * 2)},${q})`;
}
