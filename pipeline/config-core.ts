/**
 * The configuration without its schema: the defaults, and (from pipeline/config-base.ts) the error type and hashing and
 * picking of parameters — what the runner, the stage declarations and the CLI's fast paths need, without loading zod
 * (about a fifth of a second at every start). The schema, validation and `--set` parsing are in pipeline/config.ts,
 * from which this module takes only types (and, lazily, the validation): config.ts imports nothing from here.
 */
import { existsSync } from 'node:fs';
import type { Config, ConfigInput } from './config.ts';
import { CONFIG_DEFAULTS } from './config-defaults.ts';
import { DEFAULT_CONFIG_FILE, type LoadConfigOptions } from './config-base.ts';

export { canonicalJson, ConfigError, DEFAULT_CONFIG_FILE, getPath, hashJson, pickParams, type LoadConfigOptions } from './config-base.ts';

export type { Config, ConfigInput };

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

