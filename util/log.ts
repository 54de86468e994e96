/**
 * Logging for the CLI and stages. Messages go to stderr so that stdout stays free for machine-readable output
 * (`covers status --json`). `--quiet` keeps warnings and errors; `--verbose` adds debug lines.
 */

/** Verbosity levels, from least to most output. */
export type LogLevel = 'quiet' | 'normal' | 'verbose';

/** A logger; `prefix` (e.g. a stage name) is printed in brackets before each message. */
export interface Logger {
  readonly level: LogLevel;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  debug(message: string): void;
  /** A logger whose messages carry an extra prefix. */
  child(prefix: string): Logger;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: LogLevel;
  prefix?: string;
  /** Where lines go (default: process.stderr). */
  write?: (line: string) => void;
}

/** Creates a logger that writes one line per message. */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'normal';
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const pre = opts.prefix ? `[${opts.prefix}] ` : '';
  return {
    level,
    info: (m) => { if (level !== 'quiet') write(pre + m); },
    warn: (m) => write(`${pre}warning: ${m}`),
    error: (m) => write(`${pre}error: ${m}`),
    debug: (m) => { if (level === 'verbose') write(`${pre}${m}`); },
    child: (prefix) => createLogger({ level, write, prefix: opts.prefix ? `${opts.prefix}/${prefix}` : prefix }),
  };
}

/** A logger that records lines in memory, for tests. */
export function memoryLogger(level: LogLevel = 'verbose'): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger({ level, write: (l) => lines.push(l) }), { lines });
}
