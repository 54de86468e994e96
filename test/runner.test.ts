import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { loadConfig, resolveConfig } from '../pipeline/config.ts';
import { defaultConfig } from '../pipeline/config-core.ts';
import { memoryLogger } from '../util/log.ts';
import { readLock } from '../pipeline/lock.ts';
import { clean, make, plan } from '../pipeline/runner.ts';
import { TOY_STAGES, takeRuns, toyControl } from './helpers/toy-stages.ts';

let dir: string;
const log = memoryLogger();
const build = (targets: string[], sets: string[] = [], extra: { force?: boolean; dryRun?: boolean } = {}) =>
  make({ targets, config: loadConfig({ sets, cwd: dir }), dataDir: dir, stages: TOY_STAGES, log, ...extra });

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'covers-runner-'));
  toyControl.failIn = '';
  toyControl.hangIn = '';
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('runner', () => {
  it('runs dependencies first, in order, and records each stage in the lock', async () => {
    const outcomes = await build(['d']);
    assert.deepEqual(takeRuns(dir), ['a', 'b', 'c', 'd']);
    assert.deepEqual(outcomes.map((o) => o.action), ['ran', 'ran', 'ran', 'ran']);
    assert.match(readFileSync(join(dir, 'd.txt'), 'utf8'), /^d\(b\(a\(;seed=0\);perGenre=1000\)\|c\(/);
    const lock = readLock(dir);
    assert.deepEqual(Object.keys(lock.stages).sort(), ['a', 'b', 'c', 'd']);
    assert.equal(lock.stages.d!.deps.b, lock.stages.b!.outputsHash);
    assert.deepEqual(lock.stages.b!.params, { perGenre: 1000 });
  });

  it('builds only what a target needs, and reruns nothing when everything is fresh', async () => {
    await build(['b']);
    assert.deepEqual(takeRuns(dir), ['a', 'b']);
    const again = await build(['d']);
    assert.deepEqual(takeRuns(dir), ['c', 'd']);
    assert.deepEqual(again.map((o) => `${o.name}:${o.action}`), ['a:fresh', 'b:fresh', 'c:ran', 'd:ran']);
    await build(['d']);
    assert.deepEqual(takeRuns(dir), []);
  });

  it('a parameter change reruns exactly that stage and its dependents, nothing upstream', async () => {
    await build(['d']);
    takeRuns(dir);
    const steps = await plan({ targets: ['d'], config: loadConfig({ sets: ['perGenre=5'], cwd: dir }), dataDir: dir, stages: TOY_STAGES });
    const b = steps.find((s) => s.stage.name === 'b')!;
    assert.equal(b.state.kind, 'stale');
    assert.match(JSON.stringify(b.state), /perGenre: 1000 → 5/);
    await build(['d'], ['perGenre=5']);
    assert.deepEqual(takeRuns(dir), ['b', 'd']);
  });

  it('a dependency that reruns with identical output does not rerun its dependents', async () => {
    await build(['d']);
    takeRuns(dir);
    await build(['d'], [], { force: false });
    await make({ targets: ['a'], config: defaultConfig(), dataDir: dir, stages: TOY_STAGES, log, force: true });
    assert.deepEqual(takeRuns(dir), ['a']);
    await build(['d']);
    assert.deepEqual(takeRuns(dir), [], 'a rebuilt byte-identical output, so b, c and d stay fresh');
  });

  it('a stale reason names the settings that changed inside a section, not a cut-off section', async () => {
    await build(['d']);
    const before = defaultConfig().image;
    const steps = await plan({ targets: ['d'], config: loadConfig({ sets: ['image.format=5', 'image.fit=contain'], cwd: dir }), dataDir: dir, stages: TOY_STAGES });
    const d = steps.find((s) => s.stage.name === 'd')!;
    assert.deepEqual(d.state, { kind: 'stale', reasons: [`parameter image.fit: "${before.fit}" → "contain"`, `parameter image.format: ${before.format} → 5`] });
  });

  it('--force starts a target over: its work directory goes (as with clean), other stages keep theirs', async () => {
    await build(['b']);
    takeRuns(dir);
    for (const s of ['a', 'b']) {
      mkdirSync(join(dir, '.work', s), { recursive: true });
      writeFileSync(join(dir, '.work', s, 'snapshot.json'), '{}');
    }
    await build(['b'], [], { force: true });
    assert.deepEqual(takeRuns(dir), ['b']);
    assert.ok(!existsSync(join(dir, '.work', 'b', 'snapshot.json')), 'the forced stage resumed nothing');
    assert.ok(existsSync(join(dir, '.work', 'a', 'snapshot.json')), 'a fresh dependency keeps its work directory');
  });

  it('a modified or missing output makes the stage stale', async () => {
    await build(['d']);
    takeRuns(dir);
    writeFileSync(join(dir, 'c.txt'), 'tampered');
    const steps = await plan({ targets: ['d'], config: defaultConfig(), dataDir: dir, stages: TOY_STAGES });
    assert.deepEqual(steps.map((s) => s.state.kind), ['fresh', 'fresh', 'stale', 'stale']);
    assert.match(JSON.stringify(steps[2]!.state), /output c\.txt was modified/);
    await build(['d']);
    assert.deepEqual(takeRuns(dir), ['c']);
    rmSync(join(dir, 'a.txt'));
    await build(['d']);
    assert.deepEqual(takeRuns(dir), ['a'], 'a is rebuilt identically, so its dependents stay fresh');
  });

  it('a stage that throws leaves its previous output and lock entry untouched', async () => {
    await build(['d']);
    const before = readFileSync(join(dir, 'b.txt'), 'utf8');
    const entry = readLock(dir).stages.b;
    toyControl.failIn = 'b';
    await assert.rejects(build(['d'], ['perGenre=7']), /b failed on purpose/);
    assert.equal(readFileSync(join(dir, 'b.txt'), 'utf8'), before);
    assert.deepEqual(readLock(dir).stages.b, entry);
    assert.ok(!existsSync(join(dir, '.tmp', 'b')), 'temporary output removed');
  });

  it('a stage that fails on its first build leaves no output and no lock entry', async () => {
    toyControl.failIn = 'a';
    await assert.rejects(build(['a']), /a failed on purpose/);
    assert.ok(!existsSync(join(dir, 'a.txt')));
    assert.equal(readLock(dir).stages.a, undefined);
  });

  it('a killed stage leaves no output and no lock entry, and the next run completes', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'helpers', 'kill-runner.ts'), dir], { stdio: 'ignore' });
    const deadline = Date.now() + 30_000;
    while (!existsSync(join(dir, 'hanging'))) {
      if (Date.now() > deadline) throw new Error('child never reached stage d');
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill('SIGKILL');
    await new Promise((r) => child.on('exit', r));
    assert.ok(!existsSync(join(dir, 'd.txt')), 'no half-written d.txt');
    assert.equal(readLock(dir).stages.d, undefined);
    assert.ok(readLock(dir).stages.c, 'finished stages keep their entries');
    takeRuns(dir);
    await build(['d']);
    assert.deepEqual(takeRuns(dir), ['d']);
  });

  it('--dry-run prints the plan and changes nothing', async () => {
    const outcomes = await build(['d'], [], { dryRun: true });
    assert.deepEqual(outcomes.map((o) => o.action), ['not-run', 'not-run', 'not-run', 'not-run']);
    assert.deepEqual(takeRuns(dir), []);
    assert.ok(!existsSync(join(dir, 'pipeline.lock.json')));
    assert.ok(!existsSync(join(dir, 'a.txt')));
  });

  it('clean removes outputs and the lock entry', async () => {
    await build(['b']);
    const removed = clean(TOY_STAGES[1]!, defaultConfig(), dir);
    assert.ok(removed.some((p) => p.endsWith('b.txt')));
    assert.equal(readLock(dir).stages.b, undefined);
    assert.ok(readLock(dir).stages.a);
  });

  it('rejects unknown targets', async () => {
    await assert.rejects(build(['nope']), /unknown target "nope"; targets: a, b, c, d, all/);
  });
});

describe('config', () => {
  it('defaults reproduce the 2015 study', () => {
    const c = defaultConfig();
    assert.deepEqual(c.genres, ['ambient', 'dubstep', 'folk', 'hip-hop-rap', 'jazz', 'metal', 'pop', 'punk', 'rock', 'soul']);
    assert.equal(c.perGenre, 1000);
    assert.equal(c.seed, 0);
    assert.deepEqual(c.splits, { train: 0.8, validation: 0.1, test: 0.1 });
    assert.equal(c.image.size, 256);
    assert.equal(c.train.crop, 224);
  });

  it('--set parses numbers, booleans and comma lists into dotted keys', () => {
    const c = loadConfig({ sets: ['genres=metal,jazz', 'perGenre=12', 'select.allowShort=true', 'image.fit=contain'], cwd: dir });
    assert.deepEqual(c.genres, ['metal', 'jazz']);
    assert.equal(c.perGenre, 12);
    assert.equal(c.select.allowShort, true);
    assert.equal(c.image.fit, 'contain');
  });

  it('--set parses by the type of the key: strings keep commas and digits, lists split, numbers parse', () => {
    const c = loadConfig({
      cwd: dir,
      sets: ['bandcamp.userAgent=MyBot/1.0 (me@x.org, research)', 'train.run=2', 'baseline.maxFeatures=0.1', 'select.fromManifest=a,b.tsv', 'genres=jazz', 'genres=jazz,metal'],
    });
    assert.equal(c.bandcamp.userAgent, 'MyBot/1.0 (me@x.org, research)');
    assert.equal(c.train.run, '2');
    assert.equal(c.baseline.maxFeatures, 0.1);
    assert.equal(c.select.fromManifest, 'a,b.tsv');
    assert.deepEqual(c.genres, ['jazz', 'metal']);
    assert.deepEqual(loadConfig({ cwd: dir, sets: ['select.fromManifest=null'] }).select.fromManifest, null);
  });

  it('reports each bad value with its key path, the value and what was expected', () => {
    assert.throws(
      () => resolveConfig({ perGenre: -3, image: { fit: 'zoom' }, train: { crop: 300 }, nonsense: 1 }),
      (e: Error) => {
        assert.match(e.message, /perGenre = -3: expected/);
        assert.match(e.message, /image\.fit = "zoom": expected one of "cover"\|"fill"\|"contain"/);
        assert.match(e.message, /nonsense: unknown key; known: genres, perGenre, /);
        return true;
      },
    );
    // In a section, the section's keys (as --set lists them).
    assert.throws(() => resolveConfig({ train: { epcohs: 3 } }), /train\.epcohs: unknown key; known: .*\bepochs\b/);
    assert.throws(() => resolveConfig({ splits: { train: 0.5, validation: 0.1, test: 0.1 } }), /splits = .*add up to 1 \(train 0\.5 \+ validation 0\.1 \+ test 0\.1 = 0\.7\)/);
    assert.throws(() => resolveConfig({ bandcamp: { origin: 'notaurl' } }), (e: Error) => {
      assert.equal((e as Error & { problems: string[] }).problems.length, 1, 'one problem, one line');
      assert.match(e.message, /bandcamp\.origin = "notaurl": expected an http\(s\) origin/);
      return true;
    });
    assert.throws(() => resolveConfig({ image: { size: 0 } }), (e: Error) => {
      assert.doesNotMatch(e.message, /train\.crop/, 'no follow-on error about the crop');
      return true;
    });
    assert.throws(() => resolveConfig({ train: { crop: 300 } }), /train\.crop = 300: expected a crop no larger than image\.size \(256\)/);
    // Fine-tuning crops at the pretrained network's input size (checked by the train stage): train.crop is not used.
    assert.equal(resolveConfig({ image: { size: 72 }, train: { init: 'pretrained' } }).train.crop, 224);
  });

  it('reads covers.config.json from the working directory, and a bad file is a clear error', () => {
    writeFileSync(join(dir, 'covers.config.json'), JSON.stringify({ perGenre: 50, image: { size: 128 } }));
    const c = loadConfig({ cwd: dir, sets: ['train.crop=112'] });
    assert.equal(c.perGenre, 50);
    assert.equal(c.image.size, 128);
    writeFileSync(join(dir, 'bad.json'), '{ nope');
    assert.throws(() => loadConfig({ configPath: join(dir, 'bad.json') }), /bad\.json: not valid JSON/);
  });
});

describe('CLI', () => {
  const cli = (...args: string[]) =>
    spawnSync(process.execPath, [join(import.meta.dirname, '..', 'bin', 'covers.js'), ...args], { cwd: dir, encoding: 'utf8' });

  it('unknown targets, options and config values exit with code 2 and a clear message', () => {
    const t = cli('make', 'nonsense', '--data-dir', dir);
    assert.equal(t.status, 2);
    assert.match(t.stderr, /unknown target "nonsense"/);
    const o = cli('make', 'report', '--frobnicate');
    assert.equal(o.status, 2);
    assert.match(o.stderr, /unknown option '--frobnicate'/);
    const c = cli('status', '--data-dir', dir, '--set', 'train.crop=999');
    assert.equal(c.status, 2);
    assert.match(c.stderr, /train\.crop = 999: expected a crop no larger than image\.size/);
  });

  it('--help works on every command', () => {
    for (const cmd of [[], ['make'], ['status'], ['clean'], ['demo']]) {
      const r = cli(...cmd, '--help');
      assert.equal(r.status, 0, `covers ${cmd.join(' ')} --help`);
      assert.match(r.stdout, /Usage: covers/);
    }
  });
});

describe('formatting', () => {
  it('durations never show 60 seconds or minutes', async () => {
    const { fmtDuration: fmtMs } = await import('../util/format.ts');
    const { fmtSeconds } = await import('../util/progress.ts');
    assert.equal(fmtMs(119_700), '2 min 00 s');
    assert.equal(fmtMs(59_970), '1 min 00 s');
    assert.equal(fmtMs(12_345), '12.3 s');
    assert.equal(fmtSeconds(119.7), '2m00s');
    assert.equal(fmtSeconds(7199.9), '2h00m');
    assert.equal(fmtSeconds(Infinity), '?');
  });
});
