/**
 * A stage's view of the configuration: only the keys it declares (`params` and `tuning` in its declaration,
 * pipeline/stage.ts) can be read; reading any other key of the configuration throws, as `ctx.path()` does for an
 * undeclared file. So a key a stage reads is a key it declares, and a key that decides its output (`params`) is one
 * the lock records: an out-of-date output cannot pass for fresh because its stage read a setting the lock never saw.
 */
import type { Config } from './config-core.ts';

/** Joins a section prefix and a key into a dotted key (`train` + `epochs` → `train.epochs`). */
function dotted(prefix: string, key: string): string {
  return prefix ? `${prefix}.${key}` : key;
}

/** Whether `value` is a section of the configuration (a plain object, not a list or null). */
function isSection(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A deep copy of `value` with every object and array in it frozen. */
function frozenCopy<T>(value: T): T {
  const copy = structuredClone(value);
  const freeze = (v: unknown): void => {
    if (typeof v !== 'object' || v === null) return;
    for (const x of Object.values(v)) freeze(x);
    Object.freeze(v);
  };
  freeze(copy);
  return copy;
}

/**
 * The view of one section: `declared` are the dotted keys allowed under `prefix` (relative to the whole config).
 * A key declared whole (`eval`, `train.epochs`) is a frozen copy; a section with only some keys declared (`train`
 * when `train.epochs` is) is itself a view.
 */
function sectionView(section: Record<string, unknown>, prefix: string, declared: readonly string[], refuse: (key: string, what?: 'read' | 'write') => never): Record<string, unknown> {
  const target: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(section)) {
    const path = dotted(prefix, key);
    if (declared.includes(path)) target[key] = frozenCopy(value);
    else if (isSection(value) && declared.some((d) => d.startsWith(`${path}.`))) target[key] = sectionView(value, path, declared, refuse);
  }
  return new Proxy(target, {
    get(t, key, receiver) {
      if (typeof key === 'string' && !Object.hasOwn(t, key) && Object.hasOwn(section, key)) refuse(dotted(prefix, key));
      return Reflect.get(t, key, receiver) as unknown;
    },
    has(t, key) {
      if (typeof key === 'string' && !Object.hasOwn(t, key) && Object.hasOwn(section, key)) refuse(dotted(prefix, key));
      return Reflect.has(t, key);
    },
    set: (_t, key) => refuse(dotted(prefix, String(key)), 'write'),
    defineProperty: (_t, key) => refuse(dotted(prefix, String(key)), 'write'),
    deleteProperty: (_t, key) => refuse(dotted(prefix, String(key)), 'write'),
  });
}

/**
 * The configuration as the stage `stage` may read it: the values of the dotted `keys` it declares (`seed`,
 * `train.epochs`, or a whole section such as `eval`, which allows all its keys), read-only. Reading (or testing with
 * `in`) a key of the configuration that is not declared, or inside a declared section's undeclared sibling
 * (`train.crop` when only `train.epochs` is declared), throws; so does any write. Keys that are not keys of the
 * configuration at all read as `undefined`, as on a plain object. `JSON.stringify`, `Object.keys` and spreading see
 * the declared keys only.
 * @param config the resolved configuration (not changed; the view holds copies).
 * @param keys dotted keys, as in a declaration's `params` and `tuning`; a key the configuration lacks is ignored.
 * @param stage the stage's name, for the error message.
 * @throws Error (on reading) naming the stage, the key and the keys it declares.
 */
export function configView(config: Config, keys: readonly string[], stage: string): Config {
  const declared = [...new Set(keys)];
  const refuse = (key: string, what: 'read' | 'write' = 'read'): never => {
    if (what === 'write') throw new Error(`stage ${stage}: the configuration is read-only (it tried to change "${key}")`);
    throw new Error(`stage ${stage}: reads config key "${key}", which it does not declare (declared: ${declared.join(', ') || 'none'}); add it to the stage's params in stages/declarations.ts (or to tuning when it cannot change the stage's outputs)`);
  };
  return sectionView(config as unknown as Record<string, unknown>, '', declared, refuse) as unknown as Config;
}
