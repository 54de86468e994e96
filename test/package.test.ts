/**
 * The npm package: `npm pack` ships the compiled JavaScript with declaration files, the CLI entry and the native
 * addon's sources, and nothing a user does not need (no TypeScript sources, tests, benchmarks or docs); test-only
 * tools are devDependencies; the compiled CLI and its worker threads run without tsx.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';

const REPO = join(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string>; optionalDependencies?: Record<string, string> };

describe('npm package', () => {
  let files: string[] = [];
  before(() => {
    // `npm pack` runs `prepack` (npm run build: tsc -p tsconfig.build.json), so this also builds dist/.
    const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--no-audit', '--no-fund'], { cwd: REPO, encoding: 'utf8', timeout: 300_000 });
    assert.equal(r.status, 0, r.stderr);
    const json = r.stdout.slice(r.stdout.indexOf('['));
    files = (JSON.parse(json) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path).sort();
  });

  it('contains the compiled CLI with declarations, the entry point and the addon sources, and nothing else', () => {
    const outsideDist = files.filter((f) => !f.startsWith('dist/'));
    assert.deepEqual(outsideDist, [
      'README.md', 'bin/covers.js', 'dataset/native/binding.gyp', 'dataset/native/fastjpeg.c', 'dataset/native/fastjpeg_core.c',
      'dataset/native/fastjpeg_core.h', 'package.json',
    ]);
    // The install script builds the addon from binding.gyp: every source it names, and every local header those
    // sources include, must be in the package (else an installed package silently falls back to sharp).
    const gyp = readFileSync(join(REPO, 'dataset/native/binding.gyp'), 'utf8');
    const sources = [...gyp.matchAll(/"([\w.-]+\.c)"/g)].map((m) => m[1]!);
    assert.ok(sources.length >= 2, gyp);
    for (const c of sources) {
      assert.ok(files.includes(`dataset/native/${c}`), `binding.gyp source ${c} missing from the package`);
      for (const m of readFileSync(join(REPO, 'dataset/native', c), 'utf8').matchAll(/#include "([\w.-]+)"/g)) {
        assert.ok(files.includes(`dataset/native/${m[1]}`), `header ${m[1]} (included by ${c}) missing from the package`);
      }
    }
    const dist = files.filter((f) => f.startsWith('dist/'));
    for (const f of dist) assert.match(f, /\.(js|d\.ts)$/, `unexpected file in the package: ${f}`);
    for (const f of dist.filter((x) => x.endsWith('.js'))) assert.ok(files.includes(f.replace(/\.js$/, '.d.ts')), `${f} has no declaration file`);
    for (const f of ['dist/cli/covers.js', 'dist/stages/index.js', 'dist/stages/train.js', 'dist/schemas/shards/read.js', 'dist/train/forest-worker.js', 'dist/train/batch-worker.js', 'dist/train/replica-worker.js', 'dist/stages/search.js', 'dist/search/trial-worker.js']) {
      assert.ok(files.includes(f), `${f} missing`);
    }
    assert.deepEqual(files.filter((f) => /(^|\/)(test|bench)\//.test(f) || /synthetic-shards|shared-data/.test(f)), []);
  });

  it('test and build tools are devDependencies, not dependencies', () => {
    for (const name of ['tsx', 'typescript', 'playwright-core', 'nodejs-polars', 'ml-random-forest']) {
      assert.ok(!(name in pkg.dependencies), `${name} is a runtime dependency`);
      assert.ok(name in pkg.devDependencies, `${name} is not a devDependency`);
    }
    assert.deepEqual(Object.keys(pkg.dependencies).filter((n) => n.startsWith('@types/')), []);
  });

  it('every package the shipped code imports is a declared dependency (not one that only arrives with another)', () => {
    const declared = new Set([...Object.keys(pkg.dependencies), ...Object.keys(pkg.optionalDependencies ?? {})]);
    const undeclared = new Set<string>();
    // dist/ only: bin/covers.js imports tsx solely in a source checkout (the development path).
    const specifiers = /^\s*(?:import|export)\s[^;]*?\sfrom\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]|\bimport\(\s*['"]([^'"]+)['"]\s*\)/gm;
    for (const f of files.filter((x) => x.startsWith('dist/') && x.endsWith('.js'))) {
      const code = readFileSync(join(REPO, f), 'utf8');
      for (const m of code.matchAll(specifiers)) {
        const spec = (m[1] ?? m[2] ?? m[3])!;
        if (spec.startsWith('.') || spec.startsWith('/')) continue;
        if (spec.startsWith('node:')) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : spec.split('/')[0]!;
        if (!declared.has(name)) undeclared.add(`${name} (${f})`);
      }
    }
    assert.deepEqual([...undeclared], []);
  });

  it('the compiled CLI runs without tsx, and its worker threads start from the compiled modules', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'covers-dist-'));
    try {
      const log = join(dataDir, 'imports.txt');
      const env = { ...process.env, COVERS_DIST: '1', COVERS_IMPORT_LOG: log };
      const r = spawnSync(process.execPath, ['--import', './test/helpers/import-log.mjs', 'bin/covers.js', 'status', '--data-dir', dataDir], { cwd: REPO, encoding: 'utf8', env });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /report\s+never built/);
      const urls = readFileSync(log, 'utf8').split('\n').filter(Boolean);
      assert.ok(urls.some((u) => u.endsWith('/dist/cli/covers.js')));
      assert.deepEqual(urls.filter((u) => /node_modules\/tsx\/|\.ts$/.test(u)), []);
      // Two worker threads build the forest from dist/train/forest-worker.js.
      // (A script file, not \`-e\`: worker threads inherit the process's execArgv, and --input-type breaks them.)
      const script = join(dataDir, 'forest.mjs');
      writeFileSync(script, `
        const { fitForest, predict } = await import(${JSON.stringify(join(REPO, 'dist', 'train', 'random-forest.js'))});
        const n = 40, d = 4, x = new Uint8Array(n * d), y = new Int32Array(n);
        for (let i = 0; i < n; i++) { y[i] = i % 2; for (let j = 0; j < d; j++) x[i * d + j] = y[i] * 200 + j; }
        const f = await fitForest({ x, n, d, y, classes: 2 }, { trees: 4, seed: 1 }, { threads: 2 });
        const p = predict(f, x);
        console.log(JSON.stringify({ threads: f.threads, fallback: f.fallback ?? null, correct: p.filter((v, i) => v === y[i]).length }));
      `);
      const forest = spawnSync(process.execPath, [script], { cwd: REPO, encoding: 'utf8' });
      assert.equal(forest.status, 0, forest.stderr);
      assert.deepEqual(JSON.parse(forest.stdout), { threads: 2, fallback: null, correct: 40 });
      // Data-parallel replicas (train.threads) start from dist/train/replica-worker.js: two threads load a saved model
      // and predict a batch as the calling thread does.
      const replicas = join(dataDir, 'replicas.mjs');
      const dist = (rel: string) => JSON.stringify(join(REPO, 'dist', 'train', rel));
      writeFileSync(replicas, `
        const { selectBackend } = await import(${dist('backends.js')});
        const { startInferencePool } = await import(${dist('data-parallel.js')});
        const { fileSaver } = await import(${dist('model-io.js')});
        const { resolveModelSpec } = await import(${JSON.stringify(join(REPO, 'dist', 'schemas', 'model-params.js'))});
        const { buildModel } = await import(${dist('models.js')});
        await selectBackend('wasm');
        const spec = resolveModelSpec('ConvNet', 'num_conv_layers=1:lc0_num_filters=4:lc0_filter_size=3:ld0_num_units=8');
        const { model } = buildModel(spec, 8, 3, 1);
        await model.save(fileSaver(${JSON.stringify(join(dataDir, 'model'))}));
        const logs = [];
        const pool = await startInferencePool(${JSON.stringify(join(dataDir, 'model'))}, 8, 3, 4, 2, (l) => logs.push(l));
        if (pool) await pool.close();
        console.log(JSON.stringify({ pool: pool !== null, logs }));
      `);
      const dp = spawnSync(process.execPath, [replicas], { cwd: REPO, encoding: 'utf8' });
      assert.equal(dp.status, 0, dp.stderr);
      const started = JSON.parse(dp.stdout.trim().split('\n').pop() ?? '{}') as { pool: boolean; logs: string[] };
      assert.ok(started.pool, started.logs.join('\n'));
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
