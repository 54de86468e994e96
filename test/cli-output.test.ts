/**
 * What the CLI writes: `--version`, and output to a pipe whose reader goes away (`covers status | head -1`), which
 * stops quietly, with no stack trace.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

const REPO = join(import.meta.dirname, '..');

test('covers status | head -1: exit 0 and no EPIPE stack when the reader leaves early', () => {
  const dir = mkdtempSync(join(tmpdir(), 'covers-pipe-'));
  try {
    // status prints one line per stage; head takes the first and closes the pipe while covers still writes.
    const r = spawnSync('bash', ['-c', `node bin/covers.js status --data-dir "${dir}" | head -1; echo "covers exit \${PIPESTATUS[0]}" >&2`], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.stdout.split('\n').filter(Boolean).length, 1, r.stdout);
    assert.doesNotMatch(r.stderr, /EPIPE|Unhandled 'error' event|\n\s+at /, r.stderr);
    assert.match(r.stderr, /covers exit 0\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('covers --version and -V print the package version (exit 0)', () => {
  const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
  for (const flag of ['--version', '-V']) {
    const r = spawnSync(process.execPath, ['bin/covers.js', flag], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${version}\n`);
  }
});
