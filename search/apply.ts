/**
 * From a trial's searched values to the configuration it trains with: each key set in a copy of the configuration
 * (`train.modelParams.<param>` merged into the `train.modelParams` string), then validated by the config schema.
 */
import { defaultConfig } from '../pipeline/config-core.ts';
import { getPath, resolveConfig, type Config } from '../pipeline/config.ts';
import { parseModelParams } from '../schemas/model-params.ts';
import { MODEL_PARAM_PREFIX, SpaceError, type Assignment, type SearchSpace, type SpaceValue } from './space.ts';

/**
 * `train.*` keys a search may not vary: they say how or where a run trains, not what (its epochs are
 * `search.epochs`).
 */
export const UNSEARCHABLE = [
  'train.backend', 'train.threads', 'train.balance', 'train.epochs', 'train.repeats', 'train.run', 'train.resumeFrom',
  'train.fromSearch', 'train.snapshotEvery', 'train.seed',
] as const;

/**
 * Checks that every key of `space` is a `train.*` setting a search may vary, or `train.modelParams.<param>`.
 * @throws SpaceError naming the key (and, for an unknown one, the `train` keys there are).
 */
export function checkSpaceKeys(space: SearchSpace): void {
  const defaults = defaultConfig();
  for (const p of space) {
    if (p.key.startsWith(MODEL_PARAM_PREFIX)) {
      if (!/^\w+$/.test(p.key.slice(MODEL_PARAM_PREFIX.length))) throw new SpaceError(`search.space: ${p.key} is not train.modelParams.<param>`);
      continue;
    }
    if ((UNSEARCHABLE as readonly string[]).includes(p.key)) throw new SpaceError(`search.space: ${p.key} cannot be searched (it says how a run trains, not what; trials train search.epochs epochs)`);
    const path = p.key.split('.');
    // Checked against the defaults, which hold every key: the stage's configuration may hold only its declared ones.
    const value = getPath(defaults, path);
    if (path[0] !== 'train' || value === undefined || (typeof value === 'object' && value !== null)) {
      const searchable = Object.keys(defaults.train).map((k) => `train.${k}`).filter((k) => !(UNSEARCHABLE as readonly string[]).includes(k) && k !== 'train.adam');
      throw new SpaceError(`search.space: ${p.key} is not a train setting (searchable: ${searchable.join(', ')}, train.adam.beta1, train.adam.beta2, train.adam.epsilon, train.modelParams.<param>)`);
    }
  }
}

/** A model parameter value as the `train.modelParams` grammar writes it (`True`/`False` for booleans). */
function modelParamText(v: SpaceValue): string {
  return typeof v === 'boolean' ? (v ? 'True' : 'False') : String(v);
}

/** `train.modelParams` with `params` set (added after, or replacing, the ones already there). */
export function mergeModelParams(text: string, params: Record<string, SpaceValue>): string {
  const current: Record<string, string> = {};
  for (const [k, v] of Object.entries(parseModelParams(text))) current[k] = Array.isArray(v) ? v.join(',') : modelParamText(v);
  for (const [k, v] of Object.entries(params)) current[k] = modelParamText(v);
  return Object.entries(current).map(([k, v]) => `${k}=${v}`).join(':');
}

/** A nested configuration object holding only `keys` (dotted) of `config`, read one by one. */
function pickNested(config: Config, keys: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) {
    const path = key.split('.');
    let cur = out;
    for (const seg of path.slice(0, -1)) cur = (cur[seg] ??= {}) as Record<string, unknown>;
    cur[path[path.length - 1]!] = structuredClone(getPath(config, path));
  }
  return out;
}

/**
 * The configuration a trial trains with: `config` with each value of `a` set. With `keys`, only those keys of
 * `config` are read (a stage's declared parameters) and every other key takes its default.
 * @throws ConfigError when the result is not a valid configuration (e.g. a model parameter the architecture refuses);
 *   the message names the key and the value.
 */
export function applyAssignment(config: Config, a: Assignment, keys?: readonly string[]): Config {
  const raw = keys ? pickNested(config, keys) : (structuredClone(config) as unknown as Record<string, unknown>);
  const modelParams: Record<string, SpaceValue> = {};
  for (const [key, value] of Object.entries(a)) {
    if (key.startsWith(MODEL_PARAM_PREFIX)) {
      modelParams[key.slice(MODEL_PARAM_PREFIX.length)] = value;
      continue;
    }
    const path = key.split('.');
    let cur = raw;
    for (const seg of path.slice(0, -1)) cur = (cur[seg] ??= {}) as Record<string, unknown>;
    cur[path[path.length - 1]!] = value;
  }
  if (Object.keys(modelParams).length) {
    const train = (raw.train ??= {}) as Record<string, unknown>;
    train.modelParams = mergeModelParams(config.train.modelParams, modelParams);
  }
  return resolveConfig(raw, 'search trial');
}
