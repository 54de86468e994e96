/**
 * A minimal structural validator for the one file every command reads at start-up, the lock file
 * (pipeline/lock.ts): loading zod costs about a fifth of a second, more than the rest of `covers status`. It knows
 * only what that format uses (objects, records, strings, numbers, integers, a literal, null and absence), strips
 * unknown object keys, and reports the first problem in zod's words (`Invalid input: expected string, received
 * number`), so the lock's error messages read as they did when zod checked it. Everything else uses zod.
 */

/** A check: returns the value (unknown object keys stripped) or throws {@link ShapeError}. */
export interface Check<T> {
  (value: unknown): T;
}
/** A check that also accepts absence (an object key may be missing). */
export interface OptionalCheck<T> extends Check<T | undefined> {
  readonly optional: true;
}
/** The type a check returns. */
export type Infer<C> = C extends Check<infer T> ? T : never;

/** A value that does not fit; `message` in zod's words, without the path. */
export class ShapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShapeError';
  }
}

/** zod's name for what a value is: `array`, `null`, `NaN`, else `typeof`. */
function received(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number' && Number.isNaN(v)) return 'NaN';
  return typeof v;
}

function fail(expected: string, v: unknown): never {
  throw new ShapeError(`Invalid input: expected ${expected}, received ${received(v)}`);
}

/** True for a non-null object that is not an array (what JSON calls an object). */
export const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A string. */
export const string: Check<string> = (v) => (typeof v === 'string' ? v : fail('string', v));
/** A finite number (zod's `z.number()`, which refuses NaN and ±Infinity). */
export const number: Check<number> = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : fail('number', v));
/** An integer (zod's `z.number().int()`: a safe integer). */
export const int: Check<number> = (v) => {
  const n = number(v);
  if (!Number.isInteger(n)) return fail('int', v);
  if (n > Number.MAX_SAFE_INTEGER) throw new ShapeError(`Too big: expected int to be <=${Number.MAX_SAFE_INTEGER}`);
  if (n < Number.MIN_SAFE_INTEGER) throw new ShapeError(`Too small: expected int to be >=${Number.MIN_SAFE_INTEGER}`);
  return n;
};
/** Anything, unchecked. */
export const unknown: Check<unknown> = (v) => v;

/** Exactly `value` (zod's `z.literal`). */
export function literal<const L extends string | number | boolean>(value: L): Check<L> {
  return (v) => {
    if (v !== value) throw new ShapeError(`Invalid input: expected ${JSON.stringify(value)}`);
    return value;
  };
}

/** `null`, or a value that passes `check` (zod's `.nullable()`). */
export function nullable<T>(check: Check<T>): Check<T | null> {
  return (v) => (v === null ? null : check(v));
}

/** Absent (`undefined`), or a value that passes `check` (zod's `.optional()`); marks an object key as optional. */
export function optional<T>(check: Check<T>): OptionalCheck<T> {
  return Object.assign((v: unknown) => (v === undefined ? undefined : check(v)), { optional: true as const });
}

/** A string-keyed record whose values all pass `check` (zod's `z.record(z.string(), check)`). */
export function record<T>(check: Check<T>): Check<Record<string, T>> {
  return (v) => {
    if (!isPlainObject(v)) return fail('record', v);
    const out: Record<string, T> = {};
    for (const key of Object.keys(v)) out[key] = check(v[key]);
    return out;
  };
}

type Shape = Record<string, Check<unknown>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends OptionalCheck<unknown> ? K : never }[keyof S];
type ObjectOf<S extends Shape> = { [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Exclude<Infer<S[K]>, undefined> };

/** An object with these keys, checked in order (the first problem wins); other keys are dropped (zod's `z.object`). */
export function object<S extends Shape>(shape: S): Check<{ [K in keyof ObjectOf<S>]: ObjectOf<S>[K] }> {
  return (v) => {
    if (!isPlainObject(v)) return fail('object', v);
    const out: Record<string, unknown> = {};
    for (const [key, check] of Object.entries(shape)) {
      const value = check(v[key]);
      if (value !== undefined || Object.hasOwn(v, key)) out[key] = value;
    }
    return out as { [K in keyof ObjectOf<S>]: ObjectOf<S>[K] };
  };
}
