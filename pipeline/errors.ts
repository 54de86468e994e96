/**
 * The one error path of the command line (`covers make`, `covers demo`): every error that ends a command becomes one
 * message (stage, item or file, plain cause, what to do) and an exit code (README "The `covers` command").
 */
import { ConfigError } from './config-core.ts';
import { stageOfError, UnknownTargetError } from './runner.ts';
import { EXIT_RERUN_LATER, InterruptedError, isTransientError, UserError } from './stage.ts';

/** Plain words and what to do for file-system error codes (Node's `err.code`). */
const SYSTEM_ERRORS: Record<string, { cause: string; todo: string }> = {
  ENOSPC: { cause: 'the disk is full', todo: 'free some space (or use another --data-dir) and rerun the same command; finished work is kept' },
  EDQUOT: { cause: 'the disk quota is used up', todo: 'free some space (or use another --data-dir) and rerun the same command; finished work is kept' },
  EACCES: { cause: 'permission denied', todo: 'check the permissions of the file and its folder (or use another --data-dir), then rerun' },
  EPERM: { cause: 'operation not permitted', todo: 'check the permissions of the file and its folder (or use another --data-dir), then rerun' },
  EROFS: { cause: 'the file system is read-only', todo: 'use a writable --data-dir, then rerun' },
  EMFILE: { cause: 'too many open files', todo: 'raise the limit (ulimit -n) or lower download.concurrency, then rerun' },
  ENFILE: { cause: 'too many open files on the system', todo: 'close other programs or lower download.concurrency, then rerun' },
  ENOENT: { cause: 'no such file or folder', todo: 'check the path, then rerun' },
  ENOTDIR: { cause: 'a part of the path is not a folder', todo: 'check the path, then rerun' },
  EISDIR: { cause: 'a folder is in the way of a file', todo: 'move it away, then rerun' },
  EIO: { cause: 'an input/output error (failing disk or network file system)', todo: 'check the disk, then rerun' },
};

/**
 * The exit code and the one message for an error that ended a command (`verbose`: with the stack trace). Exit codes:
 * 2 usage, 130 interrupted, 75 rerun later ({@link isTransientError}), 1 everything else.
 */
export function describeFailure(e: unknown, verbose = false): { code: number; message: string } {
  if (e instanceof ConfigError || e instanceof UnknownTargetError) return { code: 2, message: e.message };
  if (e instanceof InterruptedError) return { code: 130, message: 'interrupted; finished work is kept, and the same command resumes where it stopped' };
  const stage = stageOfError(e);
  const where = stage ? `stage ${stage}: ` : '';
  // Messages that already name their stage ("download: …", "stage select: …") are not prefixed twice.
  const named = (m: string) => (stage ? where + m.replace(new RegExp(`^(?:stage )?${stage.replace(/\W/g, '\\$&')}: `), '') : m);
  const stack = verbose && e instanceof Error && e.stack ? `\n${e.stack}` : '';
  if (isTransientError(e)) return { code: EXIT_RERUN_LATER, message: `${named((e as Error).message)}${stack}` };
  if (e instanceof UserError) return { code: 1, message: `${named(e.message)}${stack}` };
  const sys = e as NodeJS.ErrnoException & { dest?: string };
  if (e instanceof Error && typeof sys.code === 'string' && SYSTEM_ERRORS[sys.code]) {
    const { cause, todo } = SYSTEM_ERRORS[sys.code]!;
    const file = sys.path ? `${sys.path}${sys.dest ? ` → ${sys.dest}` : ''}` : `(${sys.syscall ?? 'a file operation'})`;
    return { code: 1, message: `${where}cannot ${sys.syscall ?? 'access'} ${file}: ${cause} (${sys.code}). What to do: ${todo}.${stack}` };
  }
  // Not one of ours: a bug. Say so, and show the stack only when asked.
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return {
    code: 1,
    message: `${where}internal error: ${msg}${stack || '\n(this is a bug in covers; rerun with --verbose for the stack trace and report it)'}`,
  };
}

