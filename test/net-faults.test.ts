/**
 * Issue 16 (and issue 12's "transient damage" and "N per genre"), end to end against the simulator with its
 * misbehaving-site faults: cursors that cycle or never end (and a genre they leave short ends "rerun later"), 2 GiB
 * and endless cover bodies (peak RSS measured in a child process), `file:`/`javascript:` item URLs, Ctrl-C within a
 * second and the process gone within 1.5 s (measured in a `covers make` child), heavy transient faults that never
 * change the manifest, truncated covers retried on later runs, and "N per genre" built in rounds. Each stage ends or
 * goes on within the time (and memory) bound asserted, and a rerun after the fault is gone gives what a clean run
 * gives. About 60–90 s on 2 cores.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { resolveConfig, type Config, type ConfigInput } from '../pipeline/config.ts';
import { memoryLogger } from '../util/log.ts';
import { make } from '../pipeline/runner.ts';
import { readLock } from '../pipeline/lock.ts';
import { isTransientError, RerunLaterError } from '../pipeline/stage.ts';
import { candidatesFormat } from '../schemas/candidates.ts';
import { labelsFormat } from '../schemas/labels.ts';
import { rejectedFormat } from '../schemas/manifest.ts';
import { startSimulator, type Simulator, type SimulatorOptions } from '../simulator/server.ts';
import { readInputs } from '../report/inputs.ts';
import { discoverStage } from '../stages/index.ts';
import { downloadStage } from '../stages/index.ts';
import { labelStage } from '../stages/index.ts';
import { selectStage } from '../stages/index.ts';

const STAGES = [discoverStage, labelStage, selectStage, downloadStage];
const GENRES = ['ambient', 'jazz', 'metal'];
const REPO = resolve(import.meta.dirname, '..');
const tmp = mkdtempSync(join(tmpdir(), 'net-faults-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function configFor(sim: Simulator, over: ConfigInput = {}): Config {
  const base: ConfigInput = {
    genres: GENRES,
    perGenre: 10,
    seed: 5,
    bandcamp: { origin: sim.origin, imageOrigin: sim.imageOrigin },
    crawl: { maxRequestsPerMinute: 60_000, maxConcurrency: 2, pageSize: 5, oversample: 2, maxRetries: 4, backoff: { initialMs: 5, maxMs: 50, factor: 2 } },
    download: { concurrency: 4, retries: 2 },
  };
  return resolveConfig({ ...base, ...over, crawl: { ...base.crawl, ...over.crawl }, download: { ...base.download, ...over.download }, bandcamp: base.bandcamp }, 'test');
}

/** A simulator on the given ports (so URLs, and so manifests, are byte-comparable across simulators). */
async function simOn(opts: SimulatorOptions, ports?: { port: number; imagePort: number }): Promise<Simulator> {
  return startSimulator({ genres: GENRES, perGenre: 40, overlap: 0.2, seed: 4, retryAfterSeconds: 0.05, ...opts, ...ports });
}
const portsOf = (s: Simulator) => ({ port: Number(new URL(s.origin).port), imagePort: Number(new URL(s.imageOrigin).port) });
const readManifest = (dir: string) => readFileSync(join(dir, 'manifest.tsv'), 'utf8');

test('discover_web cursors that cycle or never end: the listing ends with a warning, bounded, and discover stays incomplete; after the fault, a plain make continues it to a clean run\'s outputs, nothing fetched twice', async () => {
  const clean = await simOn({});
  const ports = portsOf(clean);
  const cleanDir = join(tmp, 'cursor-clean');
  // 40 per genre (+ overlap) at 5 per page, wanting 100: the clean listing ends on its own.
  const want = { perGenre: 50 } as const;
  const isPost = (e: { path: string; status: number }) => e.path.startsWith('/api/discover') && e.status === 200;
  /** Requests for albums (label's tralbum_details / album pages): everything on the site but the listing. */
  const isAlbum = (e: { host: string; path: string; status: number }) => e.host === 'site' && !e.path.startsWith('/api/discover') && e.status === 200;
  await make({ targets: ['label'], config: configFor(clean, want), dataDir: cleanDir, stages: STAGES, log: memoryLogger() });
  const cleanPosts = clean.log.filter(isPost).length;
  const cleanAlbums = clean.log.filter(isAlbum).length;
  await clean.close();
  const cleanCands = candidatesFormat.read(join(cleanDir, 'candidates.arrow'));
  const bytes = (dir: string, f: string) => readFileSync(join(dir, f));

  for (const fault of ['cursor-cycle', 'cursor-endless'] as const) {
    const sim = await simOn({ faults: `${fault}=1` }, ports);
    const dir = join(tmp, fault);
    const log = memoryLogger();
    const t0 = Date.now();
    const first = await make({ targets: ['label'], config: configFor(sim, want), dataDir: dir, stages: STAGES, log });
    assert.ok(Date.now() - t0 < 20_000, `${fault}: discover and label took ${Date.now() - t0} ms`);
    const posts = sim.log.filter((e) => e.path.startsWith('/api/discover'));
    const pagesClean = Math.max(...GENRES.map((g) => cleanCands.filter((c) => c.genre === g).length)) / 5 + 1;
    assert.ok(posts.length <= GENRES.length * (pagesClean + 4), `${fault}: ${posts.length} requests`);
    if (fault === 'cursor-cycle') {
      assert.ok(log.lines.some((l) => /discover_web sent a cursor it had sent before/.test(l)), log.lines.join('\n'));
      for (const g of GENRES) assert.equal(candidatesFormat.read(join(dir, 'candidates.arrow')).filter((c) => c.genre === g).length, 15, 'three pages, then the cycle');
    } else {
      assert.ok(log.lines.some((l) => /3 discover_web page\(s\) in a row brought no new album/.test(l)), log.lines.join('\n'));
    }
    // The warning says what happened and that a rerun retries; the pipeline went on with what was listed, and
    // discover is recorded as incomplete, so a plain make reruns it.
    assert.ok(log.lines.some((l) => /the listing ends there for now.*the next `covers make` asks again from that page/.test(l)), log.lines.join('\n'));
    assert.ok(log.lines.some((l) => /discover: finished incomplete \(discover_web misbehaved: genre "ambient" ended on .*the next `covers make` reruns discover to continue/.test(l)), log.lines.join('\n'));
    assert.deepEqual(first.map((o) => `${o.name}:${o.action}`), ['discover:ran', 'label:ran']);
    assert.match(first[0]!.incomplete ?? '', new RegExp(`ended on ${fault === 'cursor-cycle' ? 'cursor-cycle' : 'no-new-items'}`));
    assert.match(readLock(dir).stages.discover!.incomplete ?? '', /discover_web misbehaved/);

    // A plain rerun while the fault lasts: discover runs again (incomplete), starts at once (no hang on the recorded
    // cycle), ends the same way with the same warning; its outputs are the same, so label is not rerun.
    const t1 = Date.now();
    const log2 = memoryLogger();
    const second = await make({ targets: ['label'], config: configFor(sim, want), dataDir: dir, stages: STAGES, log: log2 });
    assert.ok(Date.now() - t1 < 10_000, `${fault}: rerun took ${Date.now() - t1} ms`);
    assert.deepEqual(second.map((o) => `${o.name}:${o.action}`), ['discover:ran', 'label:fresh']);
    assert.match(second[0]!.reason, /incomplete last time: discover_web misbehaved/);
    assert.ok(log2.lines.some((l) => /the listing ends there for now/.test(l)), log2.lines.join('\n'));
    await sim.close();
    const faultPosts = sim.log.filter(isPost);
    const faultGood = faultPosts.filter((e) => !e.fault);
    assert.equal(faultGood.filter((e) => e.attempt > 0).length, 0, `${fault}: a good listing page asked twice while the fault lasted`);
    assert.ok(faultPosts.length - faultGood.length <= 2 * GENRES.length * 4, `${fault}: misbehaving pages asked ${faultPosts.length - faultGood.length} times`);

    // The fault is gone: a plain make (no --force) continues the listing from the page that misbehaved; the outputs
    // are byte-identical to the clean run's, and no page or album already fetched is fetched again.
    const fixed = await simOn({}, ports);
    const third = await make({ targets: ['label'], config: configFor(fixed, want), dataDir: dir, stages: STAGES, log: memoryLogger() });
    await fixed.close();
    assert.deepEqual(third.map((o) => `${o.name}:${o.action}`), ['discover:ran', 'label:ran']);
    assert.equal(third[0]!.incomplete, undefined);
    assert.equal(readLock(dir).stages.discover!.incomplete, undefined);
    assert.ok(bytes(dir, 'candidates.arrow').equals(bytes(cleanDir, 'candidates.arrow')), `${fault}: candidates.arrow after the fault`);
    assert.ok(bytes(dir, 'labels.arrow').equals(bytes(cleanDir, 'labels.arrow')), `${fault}: labels.arrow after the fault`);
    const fixedPosts = fixed.log.filter(isPost);
    assert.equal(fixedPosts.length + faultGood.length, cleanPosts, `${fault}: pages asked after the fault (${fixedPosts.length}) + good pages before (${faultGood.length}) = the clean listing's`);
    assert.equal(fixed.log.filter(isAlbum).length + sim.log.filter(isAlbum).length, cleanAlbums, `${fault}: albums labelled twice`);
    // And then everything is fresh.
    const fourth = await make({ targets: ['label'], config: configFor(clean, want), dataDir: dir, stages: STAGES, log: memoryLogger() });
    assert.deepEqual(fourth.map((o) => `${o.name}:${o.action}`), ['discover:fresh', 'label:fresh']);
  }
});

test('a genre left short because a guard cut its listing: `covers make download` exits 75 "rerun later", not "not enough images" (1); after the fault, the same command finishes (0)', async (t) => {
  // cursor-cycle: three pages of 5 per genre, then the cycle. 20 wanted per genre from 15 listed albums (fewer
  // exclusive ones): every genre is short, and no round can list further, since the guard ended the listing.
  const faulty = await simOn({ faults: 'cursor-cycle=1' });
  const ports = portsOf(faulty);
  const dir = join(tmp, 'guard-short');
  const configPath = join(tmp, 'guard-short.json');
  writeFileSync(configPath, JSON.stringify(configFor(faulty, { perGenre: 20 })));
  const covers = async () => {
    const t0 = Date.now();
    const proc = spawn(process.execPath, ['bin/covers.js', 'make', 'download', '--data-dir', dir, '--config', configPath, '-q'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    proc.stderr.on('data', (c) => (stderr += c));
    const code = await new Promise<number | null>((r) => proc.on('exit', r));
    return { code, stderr, ms: Date.now() - t0 };
  };
  /** `covers()` against `sim`, which is closed afterwards. */
  const coversWith = async (sim: { close(): Promise<void> }) => {
    try {
      return await covers();
    } finally {
      await sim.close();
    }
  };
  const first = await coversWith(faulty);
  assert.equal(first.code, 75, first.stderr);
  assert.match(first.stderr, /covers: stage download: not enough images\.\n {2}genre "ambient": \d+ of 20 images \(.*listing ended \(cursor-cycle\) after 3 page\(s\)/);
  assert.match(first.stderr, /discover_web misbehaved and ended the listing of "ambient" \(cursor-cycle\), "jazz" \(cursor-cycle\), "metal" \(cursor-cycle\) early; the next `covers make` asks it again from where it stopped\. Downloaded images are kept: rerun the same command later to continue/);
  assert.doesNotMatch(first.stderr, /lower perGenre|\n\s+at /, 'neither the "listing ended" hint nor a stack trace');
  assert.match(readLock(dir).stages.discover!.incomplete ?? '', /discover_web misbehaved/);
  assert.match(first.stderr, /\n {2}download +paused in [\d.]+ ?m?s /, 'the summary says paused (rerun later), not failed');
  assert.doesNotMatch(first.stderr, /download +failed/);

  // The site behaves again (same ports, so discover's parameters are unchanged): the same command continues the
  // listing and finishes.
  const second = await coversWith(await simOn({}, ports));
  assert.equal(second.code, 0, second.stderr);
  assert.equal(readLock(dir).stages.discover!.incomplete, undefined);
  for (const g of GENRES) assert.equal(readManifest(dir).split('\n').filter((l) => l.split('\t')[1] === g).length, 20, g);
  t.diagnostic(`exit 75 after ${first.ms} ms; exit 0 after ${second.ms} ms`);
  // No run waits out long retries: about 10–20 s in all on a quiet machine, up to 35 s seen under load 20 on 2 cores.
  assert.ok(first.ms + second.ms < 90_000, `the two runs took ${first.ms} + ${second.ms} ms`);
});

test('file: and javascript: item URLs are per-item rejections (unsupported-url), never fetched; the stage goes on', async () => {
  const sim = await simOn({ faults: 'bad-scheme=0.2' });
  try {
    const dir = join(tmp, 'bad-scheme');
    await make({ targets: ['label'], config: configFor(sim), dataDir: dir, stages: STAGES, log: memoryLogger() });
    const labels = labelsFormat.read(join(dir, 'labels.arrow'));
    const bad = labels.filter((l) => l.reason === 'unsupported-url');
    assert.ok(bad.length > 0, 'some albums have a bad scheme');
    const cands = candidatesFormat.read(join(dir, 'candidates.arrow'));
    for (const l of bad) assert.match(cands.find((c) => c.item_id === l.item_id)!.item_url!, /^(file|javascript):/);
    assert.ok(labels.some((l) => l.exclusive), 'the other albums are labelled');
  } finally {
    await sim.close();
  }
});

test('2 GiB and endless cover bodies: rejected as too-large within bounds (peak RSS < 500 MB in a child process)', async (t) => {
  const sim = await simOn({ faults: 'huge-body=0.15,endless-body=0.15' });
  try {
    const dir = join(tmp, 'bodies');
    const config = configFor(sim, { download: { maxBytes: 8 * 1024 * 1024 } });
    const child = join(tmp, 'bodies-child.mts');
    writeFileSync(child, `
import { readFileSync } from 'node:fs';
import { make } from ${JSON.stringify(join(REPO, 'pipeline/runner.ts'))};
import { memoryLogger } from ${JSON.stringify(join(REPO, 'util/log.ts'))};
import { STAGES } from ${JSON.stringify(join(REPO, 'stages/index.ts'))};
await make({ targets: ['download'], config: JSON.parse(process.argv[2]), dataDir: process.argv[3], stages: STAGES, log: memoryLogger() });
process.stdout.write(/^VmHWM:\\s+(\\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!);
`);
    const t0 = Date.now();
    const proc = spawn(process.execPath, ['--import', 'tsx', child, JSON.stringify(config), dir], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    proc.stdout.on('data', (c) => (out += c));
    proc.stderr.on('data', (c) => (err += c));
    const code = await new Promise<number | null>((r) => proc.on('exit', r));
    const ms = Date.now() - t0;
    assert.equal(code, 0, err);
    const peakMB = Number(out) / 1024;
    assert.ok(peakMB < 500, `peak RSS ${peakMB.toFixed(0)} MB`);
    t.diagnostic(`download with 2 GiB / endless bodies on offer: peak RSS ${peakMB.toFixed(0)} MB, ${ms} ms`);
    assert.ok(ms < 300_000, `download took ${ms} ms`); // ~15 s idle; 130 s seen at load 34 on 2 cores
    const rejected = rejectedFormat.read(join(dir, 'rejected.tsv'));
    const faulted = new Set(sim.log.filter((e) => e.fault === 'huge-body' || e.fault === 'endless-body').map((e) => e.path));
    assert.ok(faulted.size > 0);
    const tooLarge = rejected.filter((r) => r.reason === 'too-large');
    assert.equal(tooLarge.length, faulted.size, 'each misbehaving cover is rejected once as too-large');
    assert.ok(tooLarge.some((r) => /Content-Length 2147483648 over download\.maxBytes/.test(r.detail!)));
    assert.ok(tooLarge.some((r) => /body over download\.maxBytes/.test(r.detail!)));
  } finally {
    await sim.close();
  }
});

test('Ctrl-C within a second: SIGINT to `covers make` ends a stage waiting on a slow site, its work in flight stopped, within 1 s, and the process exits within 1.5 s', async (t) => {
  const sim = await simOn({ faults: 'slow=1', slowMs: 20_000 });
  // Loaded into the `covers` child: times, in the child, its "SIGINT: stopping" warning (written by the signal
  // handler) and its last line of output (main's "covers: interrupted"), and reports both against the process's
  // 'exit' event, which comes once nothing keeps the event loop alive. Measured in the child, so the parent's own
  // scheduling under load (another test file on the other core) does not count.
  const exitTimer = join(tmp, 'exit-timer.mjs');
  writeFileSync(exitTimer, `
const write = process.stderr.write.bind(process.stderr);
let signalAt = null, lastAt = null;
process.stderr.write = (chunk, ...rest) => {
  const now = performance.now();
  if (signalAt === null && /SIGINT: stopping/.test(String(chunk))) signalAt = now;
  lastAt = now;
  return write(chunk, ...rest);
};
process.on('exit', () => {
  const now = performance.now();
  if (signalAt !== null) write('exit-timer: ' + Math.round(now - signalAt) + ' ms after the interrupt, ' + Math.round(now - lastAt) + ' ms after the last output\\n');
});
`);
  try {
    for (const target of ['discover', 'label', 'download'] as const) {
      const dir = join(tmp, `abort-${target}`);
      let config = configFor(sim, { crawl: { timeoutMs: 60_000 }, download: { timeoutMs: 60_000 } });
      /** The slow site of this target. */
      let site = sim;
      if (target !== 'discover') {
        // The stages before the target run against a prompt simulator; only the target's requests go to a slow one.
        const quick = await simOn({});
        try {
          const q = configFor(quick, { crawl: { timeoutMs: 60_000 }, download: { timeoutMs: 60_000 } });
          await make({ targets: [target === 'label' ? 'discover' : 'select'], config: q, dataDir: dir, stages: STAGES, log: memoryLogger() });
          config = target === 'label' ? q : resolveConfig({ ...q, bandcamp: { ...q.bandcamp, imageOrigin: sim.imageOrigin } }, 'test');
        } finally {
          await quick.close();
        }
        // bandcamp.origin is a parameter of discover: label's slow site takes the prompt one's ports, so discover stays fresh.
        if (target === 'label') site = await simOn({ faults: 'slow=1', slowMs: 20_000 }, portsOf(quick));
      }
      try {
      const configPath = join(tmp, `abort-${target}.json`);
      writeFileSync(configPath, JSON.stringify(config));
      const child = spawn(process.execPath, ['--import', exitTimer, 'bin/covers.js', 'make', target, '--data-dir', dir, '--config', configPath, '--verbose'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c) => (stderr += c));
      const exited = new Promise<number | null>((r) => child.on('exit', r));
      // Every answer takes 20 s (and is logged only when it ends): wait for the stage to start sending, then give it
      // time to have its first requests in flight.
      const started = { discover: /listing \d+ genre\(s\) via/, label: /fetching tags of \d+ album\(s\) via/, download: /downloading \d+ image\(s\)/ }[target];
      const t0 = Date.now();
      while (!started.test(stderr)) {
        assert.ok(Date.now() - t0 < 120_000, `${target}: the stage never started sending:\n${stderr}`);
        assert.equal(child.exitCode, null, `${target}: the child exited before the stage started sending:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      await new Promise((r) => setTimeout(r, 1000));
      const killed = Date.now();
      child.kill('SIGINT');
      // A watchdog, so that a child that ignores the interrupt fails the test instead of hanging it.
      const watchdog = setTimeout(() => child.kill('SIGKILL'), 60_000);
      const code = await exited;
      clearTimeout(watchdog);
      const wall = Date.now() - killed;
      assert.equal(code, 130, stderr);
      // What covers controls, measured in the child from the signal to the stage having given up (runQueue and
      // download return only after every request in flight ended): at most a second.
      const m = new RegExp(`${target}: stopped (\\d+) ms after the interrupt`).exec(stderr);
      assert.ok(m, `${target}: no "stopped … after the interrupt" line:\n${stderr}`);
      const stoppedMs = Number(m[1]);
      const e = /exit-timer: (\d+) ms after the interrupt, (\d+) ms after the last output/.exec(stderr);
      assert.ok(e, `${target}: no exit-timer line:\n${stderr}`);
      const [exitMs, idleMs] = [Number(e[1]), Number(e[2])];
      t.diagnostic(`${target}: stopped ${stoppedMs} ms after SIGINT; exited ${exitMs} ms after it (${idleMs} ms after its last output), ${wall} ms as seen by the test`);
      assert.ok(stoppedMs <= 1000, `${target}: the stage stopped ${stoppedMs} ms after SIGINT`);
      // The process, not just the stage: a user sees Ctrl-C work when the prompt comes back. Once main has printed
      // its last line nothing may keep the event loop alive (crawlee's run() used to leave a one-second timer behind,
      // bandcamp/crawl.ts crawlerConfiguration): the exit follows at once, and within 1.5 s of the signal in all.
      assert.ok(idleMs <= 400, `${target}: the process exited ${idleMs} ms after its last output (something kept the event loop alive)`);
      assert.ok(exitMs <= 1500, `${target}: the process exited ${exitMs} ms after SIGINT`);
      // As seen from here (signal delivery, the child's start-up of its exit, this process's scheduling on a loaded
      // machine): a generous bound.
      assert.ok(wall < 15_000, `${target}: the process exited ${wall} ms after SIGINT`);
      await new Promise((r) => setTimeout(r, 200));
      const where = { discover: '/api/discover', label: '/api/mobile', download: '/img/' }[target];
      assert.ok(site.log.some((e) => e.path.startsWith(where)), `${target}: the abort ended a request in flight to ${where}`);
      } finally {
        if (site !== sim) await site.close();
      }
    }
  } finally {
    await sim.close();
  }
});

test('transient never substitutes: under heavy 429/503/reset faults every run ends "rerun later" or finishes, and the manifest is the clean one', async () => {
  const clean = await simOn({ faults: 'corrupt=0.05,404=0.05' });
  const ports = portsOf(clean);
  const cleanDir = join(tmp, 'transient-clean');
  await make({ targets: ['download'], config: configFor(clean), dataDir: cleanDir, stages: STAGES, log: memoryLogger() });
  await clean.close();

  const sim = await simOn({ faults: '429=0.2,503=0.2,reset=0.15,corrupt=0.05,404=0.05' }, ports);
  try {
    const dir = join(tmp, 'transient');
    const config = configFor(sim, { crawl: { maxRetries: 1 }, download: { retries: 0 } });
    let rerunLater = 0;
    let coversHeld = 0;
    for (let run = 0; ; run++) {
      assert.ok(run < 60, 'did not finish within 60 runs');
      try {
        await make({ targets: ['download'], config, dataDir: dir, stages: STAGES, log: memoryLogger() });
        break;
      } catch (e) {
        assert.ok(isTransientError(e), `run ${run} failed with a non-transient error: ${String(e)}`);
        rerunLater++;
        if (e instanceof RerunLaterError && /covers? could not be fetched yet/.test(e.message)) coversHeld++;
      }
    }
    assert.ok(rerunLater > 0 && coversHeld > 0, `runs ending "rerun later": ${rerunLater}, of them with covers held: ${coversHeld}`);
    assert.equal(readManifest(dir), readManifest(cleanDir), 'the manifest does not depend on what the network did');
    assert.equal(readFileSync(join(dir, 'rejected.tsv'), 'utf8'), readFileSync(join(cleanDir, 'rejected.tsv'), 'utf8'));
  } finally {
    await sim.close();
  }
});

test('truncated covers are retried on later runs (bounded, with backoff) then rejected; a CDN that recovers gives the clean manifest', async () => {
  // (Corrupt covers are rejected at once: the N-per-genre test below finishes in one make with corrupt=0.06.)
  const clean = await simOn({});
  const ports = portsOf(clean);
  const cleanDir = join(tmp, 'trunc-clean');
  await make({ targets: ['download'], config: configFor(clean), dataDir: cleanDir, stages: STAGES, log: memoryLogger() });
  await clean.close();

  const sim = await simOn({ faults: 'truncated=0.1' }, ports);
  const dir = join(tmp, 'trunc');
  const recovered = join(tmp, 'trunc-recovered');
  try {
    const config = configFor(sim, { download: { truncatedRuns: 3 }, crawl: { backoff: { initialMs: 1, maxMs: 5, factor: 2 } } });
    // Each run ends "rerun later" while a truncated cover has tries left; a cover truncated for good lets the next
    // album in, which may be truncated too: so at least three runs, and a bounded number.
    let runs = 0;
    for (;;) {
      runs++;
      assert.ok(runs <= 10, 'did not finish within 10 runs');
      try {
        await make({ targets: ['download'], config, dataDir: dir, stages: STAGES, log: memoryLogger() });
        break;
      } catch (e) {
        assert.ok(e instanceof RerunLaterError, String(e));
        assert.match(e.message, /could not be fetched yet .*truncated/);
      }
      if (runs === 1) {
        // Keep a copy of the state after one truncated run, to rerun it against a recovered CDN below.
        (await import('node:fs')).cpSync(dir, recovered, { recursive: true });
      }
    }
    assert.ok(runs >= 3, `${runs} runs`);
    const rejected = rejectedFormat.read(join(dir, 'rejected.tsv'));
    const truncated = rejected.filter((r) => r.reason === 'truncated');
    assert.ok(truncated.length > 0);
    for (const r of truncated) {
      const path = new URL(r.url!).pathname;
      assert.equal(sim.log.filter((e) => e.host === 'img' && e.path === path && e.status === 200).length, 3, `${path}: fetched in each of the 3 runs`);
    }
  } finally {
    await sim.close();
  }
  // The CDN recovers after the first run: the truncated covers are fetched again and kept.
  const fixed = await simOn({}, ports);
  try {
    await make({ targets: ['download'], config: configFor(fixed, { download: { truncatedRuns: 3 }, crawl: { backoff: { initialMs: 1, maxMs: 5, factor: 2 } } }), dataDir: recovered, stages: STAGES, log: memoryLogger() });
    assert.equal(readManifest(recovered), readManifest(cleanDir));
  } finally {
    await fixed.close();
  }
});

test('N per genre without guessing: short genres list further in rounds; one round or several give the same manifest.tsv', async () => {
  // About 48 exclusive albums per genre (60, overlap 0.2), 6% corrupt covers; 25 wanted per genre.
  const sim = await startSimulator({ genres: GENRES, perGenre: 60, overlap: 0.2, seed: 8, faults: 'corrupt=0.06' });
  try {
    const over = { perGenre: 25, crawl: { pageSize: 10, oversample: 1.5 } } as const;
    const rounds = join(tmp, 'rounds');
    const log = memoryLogger();
    const outcomes = await make({ targets: ['download'], config: configFor(sim, over), dataDir: rounds, stages: STAGES, log });
    const extra = outcomes.filter((o) => o.action === 'round');
    assert.ok(extra.length >= 1, `rounds: ${outcomes.map((o) => `${o.name}:${o.action}`).join(' ')}`);
    assert.ok(log.lines.some((l) => /extra round\(s\); \d+ extra discover_web page\(s\), \d+ extra album\(s\) to label/.test(l)), 'rounds reported per genre');
    // The report's funnel reads the same figures (candidates.arrow's listing metadata).
    const inputs = await readInputs(rounds, configFor(sim, over));
    assert.ok(GENRES.some((g) => inputs.listing![g]!.extraRounds > 0 && inputs.listing![g]!.pages > inputs.listing![g]!.firstRoundPages));
    const manifest = readManifest(rounds);
    for (const g of GENRES) assert.equal(manifest.split('\n').filter((l) => l.split('\t')[1] === g).length, 25, g);
    // Nothing requested twice across rounds: one POST per page, one tralbum_details per album.
    const posts = sim.log.filter((e) => e.path.startsWith('/api/discover') && e.status === 200).map((e) => e.path + e.attempt);
    assert.equal(sim.log.filter((e) => e.path.startsWith('/api/discover') && e.attempt > 0).length, 0, `${posts.length} pages, some asked twice`);
    assert.equal(sim.log.filter((e) => e.path.startsWith('/api/mobile') && e.attempt > 0).length, 0, 'an album labelled twice');

    const oneRound = join(tmp, 'one-round');
    const one = await make({ targets: ['download'], config: configFor(sim, { ...over, crawl: { ...over.crawl, oversample: 5 } }), dataDir: oneRound, stages: STAGES, log: memoryLogger() });
    assert.equal(one.filter((o) => o.action === 'round').length, 0);
    assert.equal(readManifest(oneRound), manifest, 'byte-identical manifest.tsv, one round or several');
  } finally {
    await sim.close();
  }
});

test('a request that spends its retries ends like the challenge case: exit 75, "rerun later", no stack trace; progress kept; a refused loopback origin says what is wrong instead', async () => {
  const sim = await simOn({ faults: '503=1' });
  try {
    const dir = join(tmp, 'exhausted');
    await assert.rejects(make({ targets: ['discover'], config: configFor(sim, { crawl: { maxRetries: 1 } }), dataDir: dir, stages: STAGES, log: memoryLogger() }), (e: unknown) => {
      assert.ok(isTransientError(e), String(e));
      assert.match((e as Error).message, /HTTP 503 \(after 2 attempts\)\. .*progress is kept: rerun the same command later to continue/);
      return true;
    });
  } finally {
    await sim.close();
  }
  // Through the CLI: an origin that refuses connections.
  const { createServer } = await import('node:net');
  const port = await new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => r(p));
    });
  });
  const cli = spawn(process.execPath, ['bin/covers.js', 'make', 'discover', '--data-dir', join(tmp, 'refused'), '--set', 'genres=metal,jazz', '--set', `bandcamp.origin=http://127.0.0.1:${port}`, '--set', 'crawl.maxRetries=0', '-q'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  cli.stderr.on('data', (c) => (stderr += c));
  const code = await new Promise<number | null>((r) => cli.on('exit', r));
  // A loopback origin nobody serves (a stopped simulator) is not "rerun later": it is said what is wrong.
  assert.notEqual(code, 75, stderr);
  assert.notEqual(code, 0, stderr);
  assert.match(stderr, /covers: stage discover: http:\/\/127\.0\.0\.1:\d+\/api\/discover\/1\/discover_web: connection refused: nothing is listening on http:\/\/127\.0\.0\.1:\d+ \(a loopback address\)\. If it was a Bandcamp simulator, it has stopped/);
  assert.doesNotMatch(stderr, /rerun the same command later/);
  assert.doesNotMatch(stderr, /\n\s+at /, 'no stack trace');
});
