/**
 * The configuration without its schema: the error type, the defaults, and hashing and picking of parameters — what
 * the runner, the stage declarations and the CLI's fast paths need, without loading zod (about a fifth of a second
 * at every start). The schema, validation and `--set` parsing are in pipeline/config.ts, which re-exports all of this.
 */
import { existsSync } from 'node:fs';
import { sha256 } from '../util/fsutil.ts';
import type { Config, ConfigInput } from './config.ts';
import { CONFIG_DEFAULTS } from './config-defaults.ts';

export type { Config, ConfigInput };

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

/** Options of {@link loadConfig}. */
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

/**
 * The resolved default configuration: a fresh copy of pipeline/config-defaults.ts, which is generated from the schema
 * (test/config-defaults.test.ts checks it equals what the schema resolves `{}` to).
 */
export function defaultConfig(): Config {
  return structuredClone(CONFIG_DEFAULTS);
}

/** Whether {@link loadConfig} would read nothing but the defaults: no config file (given, or in `cwd`) and no `--set`. */
export function onlyDefaults(opts: LoadConfigOptions = {}): boolean {
  return !opts.configPath && !opts.sets?.length && !existsSync(`${opts.cwd ?? process.cwd()}/${DEFAULT_CONFIG_FILE}`);
}

/**
 * {@link loadConfig} (pipeline/config.ts), loading the schema (and zod) only when there is something to validate:
 * without a config file and `--set` overrides the configuration is the defaults.
 * @throws ConfigError as loadConfig does.
 */
export async function loadConfigLazily(opts: LoadConfigOptions = {}): Promise<Config> {
  if (onlyDefaults(opts)) return defaultConfig();
  return (await import('./config.ts')).loadConfig(opts);
}

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
export function pickParams(config: Config, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.map((k) => [k, getPath(config, k.split('.')) ?? null]));
}

