/**
 * The part of the configuration that depends on neither the schema nor the defaults: the error type, the config file's
 * name and loading options, reading a dotted key, and hashing and picking of parameters. pipeline/config.ts (the
 * schema, with zod) and pipeline/config-core.ts (the zod-free defaults) both build on it, and neither imports the
 * other's values: config-core.ts takes only the `Config` type from config.ts (and imports it lazily to validate).
 */
import { sha256 } from '../util/fsutil.ts';

/** A configuration that failed validation; `message` lists every problem, one per line. */
export class ConfigError extends Error {
  constructor(message: string, readonly problems: string[] = [message]) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Reads the value at a dotted path of a plain object, or `undefined`. */
export function getPath(obj: unknown, path: readonly (string | number)[]): unknown {
  let cur: unknown = obj;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string | number, unknown>)[key];
  }
  return cur;
}

/** Options of `loadConfig` (pipeline/config.ts) and `loadConfigLazily` (pipeline/config-core.ts). */
export interface LoadConfigOptions {
  /** Path of a JSON config file. When omitted, `covers.config.json` in `cwd` is read if it exists. */
  configPath?: string;
  /** `key=value` overrides, applied after the file. */
  sets?: readonly string[];
  /** Directory to look for `covers.config.json` in (default: `process.cwd()`). */
  cwd?: string;
}

/** The default config file name, looked up in the working directory. */
export const DEFAULT_CONFIG_FILE = 'covers.config.json';

/** JSON with object keys sorted at every level, so equal values always give equal text (and hashes). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

/** sha256 (hex) of the canonical JSON of a value. */
export function hashJson(value: unknown): string {
  return sha256(canonicalJson(value));
}

/**
 * The values of the given dotted keys, e.g. `pickParams(cfg, ['seed', 'image.size'])` → `{seed: 0, 'image.size': 256}`.
 * A key naming a section (`crawl`) takes the whole section.
 */
export function pickParams(config: object, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, getPath(config, k.split('.')) ?? null]));
}
