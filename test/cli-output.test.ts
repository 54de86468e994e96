/**
 * What the CLI writes: `--version`, and output to a pipe whose reader goes away (`covers status | head -1`), which
 * stops quietly, with no stack trace; and a checkout or package without its compiled JavaScript.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

test('without a build, COVERS_DIST=1 (or a package missing dist/) says to run npm run build, with no stack (exit 1)', () => {
  // A copy of bin/covers.js with neither ../cli/covers.ts nor ../dist next to it, and one with the sources only.
  const dir = mkdtempSync(join(tmpdir(), 'covers-nodist-'));
  try {
    mkdirSync(join(dir, 'bin'));
    copyFileSync(join(REPO, 'bin', 'covers.js'), join(dir, 'bin', 'covers.js'));
    const bare = spawnSync(process.execPath, ['bin/covers.js', '--help'], { cwd: dir, encoding: 'utf8' });
    assert.equal(bare.status, 1, bare.stderr);
    assert.equal(bare.stderr, `covers: ${join(dir, 'dist', 'cli', 'covers.js')} is missing; run \`npm run build\` first\n`);
    mkdirSync(join(dir, 'cli'));
    writeFileSync(join(dir, 'cli', 'covers.ts'), 'export async function main() { return 0; }\n');
    const dist = spawnSync(process.execPath, ['bin/covers.js', '--help'], { cwd: dir, encoding: 'utf8', env: { ...process.env, COVERS_DIST: '1' } });
    assert.equal(dist.status, 1, dist.stderr);
    assert.match(dist.stderr, /^covers: COVERS_DIST=1 runs the compiled JavaScript, .*dist\/cli\/covers\.js is missing; run `npm run build` first\n$/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('covers status on a data directory that does not exist says so and fails; make --dry-run says so in its plan', () => {
  const missing = join(tmpdir(), `covers-no-such-dir-${process.pid}`);
  const status = spawnSync(process.execPath, ['bin/covers.js', 'status', '--data-dir', missing], { cwd: REPO, encoding: 'utf8' });
  assert.notEqual(status.status, 0, status.stdout);
  assert.match(status.stderr, new RegExp(`no data directory ${missing.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: nothing was built there \\(check --data-dir`));
  const dry = spawnSync(process.execPath, ['bin/covers.js', 'make', 'split', '--dry-run', '--data-dir', missing], { cwd: REPO, encoding: 'utf8' });
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(dry.stdout, /^plan for split in .*covers-no-such-dir-\d+ \(it does not exist: make would create it and build everything; check --data-dir\):/);
  assert.ok(!existsSync(missing), 'neither command created the directory');
});

test('covers demo takes --set like make: an unknown key is a usage error naming it, before anything is built', () => {
  const dir = mkdtempSync(join(tmpdir(), 'covers-demo-set-'));
  try {
    const r = spawnSync(process.execPath, ['bin/covers.js', 'demo', '--data-dir', dir, '--set', 'perGenre=120', '--set', 'nope=1', '-q'], { cwd: REPO, encoding: 'utf8' });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /covers demo: .*--set nope: unknown key "nope"/);
    assert.ok(!existsSync(join(dir, 'demo.config.json')), 'nothing written');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
