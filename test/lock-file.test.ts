/**
 * The lock file's check (pipeline/lock.ts, on util/shape.ts rather than zod so that `covers status` starts without
 * loading zod): it accepts what the runner writes, drops unknown keys, and rejects a damaged lock with the message
 * zod gave when it checked the lock (each expected message below is zod 4's first issue for that input).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LOCK_FILE, LockFileSchema, readLock } from '../pipeline/lock.ts';
import { ShapeError } from '../util/shape.ts';

const entry = () => ({
  version: 1, params: { a: 1 }, paramsHash: 'h', deps: { x: 'y' }, extraInputs: {}, inputs: { 'a.txt': 'h', b: null },
  outputs: { 'o.txt': { hash: 'h', files: 1, bytes: 2 } }, outputsHash: 'oh', startedAt: 's', finishedAt: 'f', durationMs: 1.5,
});

/** [case, input, zod's message]. */
const DAMAGED: [string, unknown, string][] = [
  ["null", null, "Invalid input: expected object, received null"],
  ["array", [], "Invalid input: expected object, received array"],
  ["empty", {}, "Invalid input: expected 1"],
  ["version \"1\"", {"lockVersion": "1","stages": {}}, "Invalid input: expected 1"],
  ["bad version and stages", {"lockVersion": 3,"stages": 5}, "Invalid input: expected 1"],
  ["stages missing", {"lockVersion": 1}, "Invalid input: expected record, received undefined"],
  ["stages array", {"lockVersion": 1,"stages": []}, "Invalid input: expected record, received array"],
  ["entry null", {"lockVersion": 1,"stages": {"a": null}}, "Invalid input: expected object, received null"],
  ["version=\"str\"", {"lockVersion": 1,"stages": {"a": {"version": "str","params": {"a": 1},"paramsHash": "h","deps": {"x": "y"},"extraInputs": {},"inputs": {"a.txt": "h","b": null},"outputs": {"o.txt": {"hash": "h","files": 1,"bytes": 2}},"outputsHash": "oh","startedAt": "s","finishedAt": "f","durationMs": 1.5}}}, "Invalid input: expected number, received string"],
  ["version=1.5", {"lockVersion": 1,"stages": {"a": {"version": 1.5,"params": {"a": 1},"paramsHash": "h","deps": {"x": "y"},"extraInputs": {},"inputs": {"a.txt": "h","b": null},"outputs": {"o.txt": {"hash": "h","files": 1,"bytes": 2}},"outputsHash": "oh","startedAt": "s","finishedAt": "f","durationMs": 1.5}}}, "Invalid input: expected int, received number"],
  ["durationMs=undefined", {"lockVersion": 1,"stages": {"a": {"version": 1,"params": {"a": 1},"paramsHash": "h","deps": {"x": "y"},"extraInputs": {},"inputs": {"a.txt": "h","b": null},"outputs": {"o.txt": {"hash": "h","files": 1,"bytes": 2}},"outputsHash": "oh","startedAt": "s","finishedAt": "f"}}}, "Invalid input: expected number, received undefined"],
  ["durationMs=true", {"lockVersion": 1,"stages": {"a": {"version": 1,"params": {"a": 1},"paramsHash": "h","deps": {"x": "y"},"extraInputs": {},"inputs": {"a.txt": "h","b": null},"outputs": {"o.txt": {"hash": "h","files": 1,"bytes": 2}},"outputsHash": "oh","startedAt": "s","finishedAt": "f","durationMs": true}}}, "Invalid input: expected number, received boolean"],
  ["deps={\"d\":1}", {"lockVersion": 1,"stages": {"a": {"version": 1,"params": {"a": 1},"paramsHash": "h","deps": {"d": 1},"extraInputs": {},"inputs": {"a.txt": "h","b": null},"outputs": {"o.txt": {"hash": "h","files": 1,"bytes": 2}},"outputsHash": "oh","startedAt": "s","finishedAt": "f","durationMs": 1.5}}}, "Invalid input: expected string, received number"],
  ["extraInputs={\"e\":null}", {"lockVersion": 1,"stages": {"a": {"version": 1,"params": {"a": 1},"paramsHash": "h","deps": {"x": "y"},"extraInputs": {"e": null},"inputs": {"a.txt": "h","b": null},"outputs": {"o.txt": {"hash": "h","files": 1,"bytes": 2}},"outputsHash": "oh","startedAt": "s","finishedAt": "f","durationMs": 1.5}}}, "Invalid input: expected string, received null"],
  ["inputs=null", {"lockVersion": 1,"stages": {"a": {"version": 1,"params": {"a": 1},"paramsHash": "h","deps": {"x": "y"},"extraInputs": {},"inputs": null,"outputs": {"o.txt": {"hash": "h","files": 1,"bytes": 2}},"outputsHash": "oh","startedAt": "s","finishedAt": "f","durationMs": 1.5}}}, "Invalid input: expected record, received null"],
  ["inputs={\"i\":2}", {"lockVersion": 1,"stages": {"a": {"version": 1,"params": {"a": 1},"paramsHash": "h","deps": {"x": "y"},"extraInputs": {},"inputs": {"i": 2},"outputs": {"o.txt": {"hash": "h","files": 1,"bytes": 2}},"outputsHash": "oh","startedAt": "s","finishedAt": "f","durationMs": 1.5}}}, "Invalid input: expected string, received number"],
  ["outputs={\"o\":{\"hash\":\"h\",\"files\":1.5,\"bytes\":1}}", {"lockVersion": 1,"stages": {"a": {"version": 1,"params": {"a": 1},"paramsHash": "h","deps": {"x": "y"},"extraInputs": {},"inputs": {"a.txt": "h","b": null},"outputs": {"o": {"hash": "h","files": 1.5,"bytes": 1}},"outputsHash": "oh","startedAt": "s","finishedAt": "f","durationMs": 1.5}}}, "Invalid input: expected int, received number"],
  ["outputs={\"o\":{\"hash\":\"h\",\"files\":1}}", {"lockVersion": 1,"stages": {"a": {"version": 1,"params": {"a": 1},"paramsHash": "h","deps": {"x": "y"},"extraInputs": {},"inputs": {"a.txt": "h","b": null},"outputs": {"o": {"hash": "h","files": 1}},"outputsHash": "oh","startedAt": "s","finishedAt": "f","durationMs": 1.5}}}, "Invalid input: expected number, received undefined"],
  ["two bad entries", {"lockVersion": 1,"stages": {"a": {"version": "x","params": {"a": 1},"paramsHash": "h","deps": {"x": "y"},"extraInputs": {},"inputs": {"a.txt": "h","b": null},"outputs": {"o.txt": {"hash": "h","files": 1,"bytes": 2}},"outputsHash": "oh","startedAt": "s","finishedAt": "f","durationMs": 1.5},"b": null}}, "Invalid input: expected number, received string"],
];

describe('lock file check', () => {
  it('accepts a lock as the runner writes it, with or without per-input hashes, and drops unknown keys (as zod did)', () => {
    const { inputs: _inputs, ...old } = entry();
    const lock = { lockVersion: 1, stages: { a: entry(), b: old } };
    assert.deepEqual(LockFileSchema(lock), lock);
    assert.equal('inputs' in LockFileSchema(lock).stages.b!, false);
    const extra = { lockVersion: 1, note: 'x', stages: { a: { ...entry(), extra: 2, outputs: { o: { hash: 'h', files: 1, bytes: 1, x: 1 } } } } };
    assert.deepEqual(LockFileSchema(extra), { lockVersion: 1, stages: { a: { ...entry(), outputs: { o: { hash: 'h', files: 1, bytes: 1 } } } } });
  });

  for (const [name, input, message] of DAMAGED) {
    it(`rejects ${name}: "${message}"`, () => {
      assert.throws(() => LockFileSchema(input), (e: unknown) => e instanceof ShapeError && e.message === message);
    });
  }

  it("integers outside the safe range get zod's bounds message", () => {
    const lock = (files: number) => ({ lockVersion: 1, stages: { a: { ...entry(), outputs: { o: { hash: 'h', files, bytes: 1 } } } } });
    assert.throws(() => LockFileSchema(lock(1e20)), { message: 'Too big: expected int to be <=9007199254740991' });
    assert.throws(() => LockFileSchema(lock(-1e20)), { message: 'Too small: expected int to be >=-9007199254740991' });
  });

  it('readLock names the file and what to do', () => {
    const dir = mkdtempSync(join(tmpdir(), 'covers-lock-'));
    try {
      writeFileSync(join(dir, LOCK_FILE), JSON.stringify({ lockVersion: 1, stages: { a: { ...entry(), version: 'x' } } }));
      assert.throws(() => readLock(dir), { name: 'UserError', message: `${join(dir, LOCK_FILE)}: not a pipeline lock file (Invalid input: expected number, received string); delete it to rebuild every stage` });
      // The command line says so as a user's problem (exit 1, the message, no stack, not "a bug in covers").
      const r = spawnSync(process.execPath, [fileURLToPath(new URL('../bin/covers.js', import.meta.url)), 'status', '--data-dir', dir], { encoding: 'utf8' });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /not a pipeline lock file \(Invalid input: expected number, received string\); delete it to rebuild every stage/);
      assert.doesNotMatch(r.stderr, /bug|    at /);
      writeFileSync(join(dir, LOCK_FILE), '{"lockVersion": 1, "stages": {');
      assert.throws(() => readLock(dir), { name: 'UserError', message: /pipeline\.lock\.json: not valid JSON .*; delete it to rebuild every stage/ });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
