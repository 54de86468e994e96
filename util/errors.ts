/**
 * The two error classes every layer may throw; the CLI (cli/covers.ts) maps them to exit codes.
 */

/** An error the user caused or can fix (bad input, blocked by the site, not enough albums): printed without a stack trace. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** A run stopped by SIGINT/SIGTERM (its abort signal): finished work is kept and a rerun resumes. */
export class InterruptedError extends UserError {
  constructor() {
    super('interrupted');
    this.name = 'InterruptedError';
  }
}

/**
 * True for an error that says "nothing is wrong with your input; the network (or the site) failed for now": requests
 * that spent their retries, block pages, covers not fetched yet. Such errors carry `transient: true`; progress is kept
 * and the same command, rerun later, continues. The CLI exits with {@link EXIT_RERUN_LATER} for them.
 */
export function isTransientError(e: unknown): boolean {
  return e instanceof Error && (e as Error & { transient?: unknown }).transient === true;
}

/** Exit code for "rerun later to continue" (BSD sysexits' EX_TEMPFAIL): distinct from a failure (1). */
export const EXIT_RERUN_LATER = 75;

/**
 * A stage stopped for a transient reason with its progress kept (e.g. "3 covers could not be fetched yet"):
 * rerunning the same command later continues. `transient` is always true ({@link isTransientError}).
 */
export class RerunLaterError extends UserError {
  readonly transient = true;
  constructor(message: string) {
    super(message);
    this.name = 'RerunLaterError';
  }
}
