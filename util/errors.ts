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
