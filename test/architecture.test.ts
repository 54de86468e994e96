/**
 * The layering of docs/ARCHITECTURE.md, checked on the source: which folder may import which, and that the CLI's
 * listing commands (`--help`, `status`) load no stage code and none of the heavy libraries.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { describe, it } from 'node:test';

const REPO = join(import.meta.dirname, '..');
/** Folders of source code (tests, fixtures and node_modules are not layered). */
const SOURCE = ['bin', 'cli', 'pipeline', 'stages', 'schemas', 'util', 'bandcamp', 'simulator', 'dataset', 'train', 'report', 'search', 'model-import', 'bench'];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(REPO, dir))) {
    const rel = join(dir, name);
    if (name === 'node_modules' || name === 'build') continue;
    if (statSync(join(REPO, rel)).isDirectory()) out.push(...sourceFiles(rel));
    else if (/\.(ts|js|mjs)$/.test(name)) out.push(rel);
  }
  return out;
}

/** One import of a project file by another: repository-relative paths; `lazy` for `import()`. */
interface Edge {
  from: string;
  to: string;
  lazy: boolean;
}

/** Relative imports of a file (static `import … from`, `export … from`, side-effect `import '…'`, and `import()`). */
export function importsOf(file: string, text: string): Edge[] {
  const edges: Edge[] = [];
  // Comments may quote imports; strip them (line and block) before matching.
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const add = (spec: string, lazy: boolean) => {
    if (!spec.startsWith('.')) return;
    edges.push({ from: file, to: normalize(join(dirname(file), spec)), lazy });
  };
  for (const m of code.matchAll(/(?:^|[;\n])\s*(?:import|export)\s+(?:type\s+)?(?:[\w*{}\s,$]+?\s+from\s+)?['"]([^'"]+)['"]/g)) add(m[1]!, false);
  for (const m of code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)) add(m[1]!, true);
  return edges;
}

const EDGES: Edge[] = SOURCE.flatMap((d) => sourceFiles(d)).flatMap((f) => importsOf(f, readFileSync(join(REPO, f), 'utf8')));
const top = (p: string) => p.split('/')[0]!;
const isStageModule = (p: string) => top(p) === 'stages' && p !== 'stages/index.ts' && p !== 'stages/declarations.ts';

/** Every edge breaking a rule, as `from → to`. */
function offending(rule: (e: Edge) => boolean): string[] {
  return EDGES.filter(rule).map((e) => `${e.from} → ${e.to}${e.lazy ? ' (import())' : ''}`);
}

describe('import directions', () => {
  it('the parser finds static, re-export, side-effect and lazy imports, not ones in comments', () => {
    const text = `import a from './a.ts';\nimport type { B } from "../b/b.ts";\nexport { c } from './c.ts';\nimport './d.ts';\n// import x from './x.ts';\n/* import y from './y.ts' */\nconst e = await import('./e.ts');\nimport z from 'zod';`;
    assert.deepEqual(importsOf('stages/s.ts', text).map((e) => `${e.to}${e.lazy ? '*' : ''}`), ['stages/a.ts', 'b/b.ts', 'stages/c.ts', 'stages/d.ts', 'stages/e.ts*']);
    assert.ok(EDGES.length > 100, `only ${EDGES.length} imports found`);
  });

  it('pipeline/ (the runner and the config schema) imports no stage, no CLI and no domain folder, train/ included', () => {
    assert.deepEqual(offending((e) => top(e.from) === 'pipeline' && ['stages', 'cli', 'bandcamp', 'simulator', 'dataset', 'report', 'train', 'search', 'model-import'].includes(top(e.to))), []);
  });

  it('a stage module imports no other stage module (only declarations.ts); the registry imports them only lazily', () => {
    assert.deepEqual(offending((e) => isStageModule(e.from) && isStageModule(e.to)), []);
    assert.deepEqual(offending((e) => ((e.from === 'stages/index.ts' && !e.lazy) || e.from === 'stages/declarations.ts') && isStageModule(e.to)), []);
  });

  it('only the CLI (and benchmarks) wire stages to the runner: nothing below imports stages/ or cli/', () => {
    const allowed = new Set(['cli', 'stages', 'bench', 'bin']);
    assert.deepEqual(offending((e) => (top(e.to) === 'stages' || top(e.to) === 'cli') && !allowed.has(top(e.from))), []);
  });

  it('report/ imports nothing from train/', () => {
    assert.deepEqual(offending((e) => top(e.from) === 'report' && top(e.to) === 'train'), []);
  });

  it('bench/ imports nothing from test/', () => {
    assert.deepEqual(offending((e) => top(e.from) === 'bench' && top(e.to) === 'test'), []);
  });

  it('util/ is the floor (imports only util/); schemas/ imports only schemas/ and util/', () => {
    assert.deepEqual(offending((e) => top(e.from) === 'util' && top(e.to) !== 'util'), []);
    assert.deepEqual(offending((e) => top(e.from) === 'schemas' && !['schemas', 'util'].includes(top(e.to))), []);
  });

  it('model-import/ (ONNX and tfjs model import) imports only model-import/, schemas/ and util/', () => {
    assert.deepEqual(offending((e) => top(e.from) === 'model-import' && !['model-import', 'schemas', 'util'].includes(top(e.to))), []);
  });

  it('the simulator shares no code with the crawler: simulator/ imports nothing from bandcamp/', () => {
    assert.deepEqual(offending((e) => top(e.from) === 'simulator' && top(e.to) === 'bandcamp'), []);
  });
});

describe('instant CLI', () => {
  const HEAVY = /node_modules\/(@tensorflow\/|@crawlee\/|crawlee\/|sharp\/|cheerio\/|apache-arrow\/|impit)/;
  /** zod takes longer to load than the rest of `covers status`: only a config file or --set (something to validate) loads it. */
  const ZOD = /node_modules\/zod\//;

  /** Runs `bin/covers.js ARGS`, returning the module URLs it loaded (through test/helpers/import-log.mjs). */
  function modulesLoadedBy(args: string[]): { urls: string[]; status: number | null; stdout: string } {
    const tmp = mkdtempSync(join(tmpdir(), 'covers-imports-'));
    try {
      const logFile = join(tmp, 'imports.txt');
      const r = spawnSync(process.execPath, ['--import', './test/helpers/import-log.mjs', 'bin/covers.js', ...args], {
        cwd: REPO, encoding: 'utf8', env: { ...process.env, COVERS_IMPORT_LOG: logFile },
      });
      let urls: string[] = [];
      try {
        urls = readFileSync(logFile, 'utf8').split('\n').filter(Boolean);
      } catch {
        /* nothing loaded */
      }
      return { urls, status: r.status, stdout: r.stdout };
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }

  for (const args of [['--help'], ['make', '--help'], ['status']]) {
    it(`covers ${args.join(' ')} loads no stage implementation, TensorFlow.js, crawlee, sharp, cheerio, apache-arrow or zod`, () => {
      const dataDir = mkdtempSync(join(tmpdir(), 'covers-status-'));
      try {
        const run = modulesLoadedBy(args[0] === 'status' ? [...args, '--data-dir', dataDir] : args);
        assert.equal(run.status, 0, run.stdout);
        assert.ok(run.urls.some((u) => u.endsWith('/stages/index.ts')), 'the import log saw the registry (the check itself works)');
        const heavy = run.urls.filter((u) => HEAVY.test(u) || ZOD.test(u) || /\/stages\/(?!index\.ts|declarations\.ts)[^/]+\.ts$/.test(u));
        assert.deepEqual(heavy, []);
        if (args[0] === 'status') assert.match(run.stdout, /discover\s+never built/);
      } finally {
        rmSync(dataDir, { recursive: true, force: true });
      }
    });
  }

  it('covers status --set (a value to validate) does load the config schema and zod (the zod check can fail)', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'covers-status-'));
    try {
      const run = modulesLoadedBy(['status', '--data-dir', dataDir, '--set', 'seed=1']);
      assert.equal(run.status, 0, run.stdout);
      assert.ok(run.urls.some((u) => u.endsWith('/pipeline/config.ts')), 'the config schema was loaded');
      assert.ok(run.urls.some((u) => ZOD.test(u)), 'zod was loaded');
      assert.match(run.stdout, /discover\s+never built/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('the import log does see a stage implementation and its libraries when a stage runs (the check can fail)', () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'covers-run-'));
    try {
      // `select` fails at once on an empty manifest to rebuild from, after its module (the registry's lazy import) loaded.
      const manifest = join(dataDir, 'empty.tsv');
      writeFileSync(manifest, '');
      const run = modulesLoadedBy(['make', 'select', '--data-dir', dataDir, '--set', `select.fromManifest=${manifest}`, '-q']);
      assert.notEqual(run.status, 0);
      assert.ok(run.urls.some((u) => /\/stages\/select\.ts$/.test(u)), `stages/select.ts not among ${run.urls.length} modules`);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
