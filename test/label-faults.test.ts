/**
 * Issue 25, section 5: under heavy faults each run does all it can, and a 429 holds its host for its Retry-After. A
 * listing of a few hundred albums served through 429 at 30 %, 503 at 20 %, connection resets at 20 %, slow answers and
 * challenge pages at 10 % each:
 * - `label`: an album whose request spends its retries waits for the next run (the stage ends "rerun later" naming
 *   how many) instead of stopping the stage, so `covers make label` finishes within 3 runs;
 * - `download`: covers that spend their retries keep their places, and after its reruns the manifest equals a
 *   fault-free run's;
 * - on both hosts (the simulator's `site` listener, bandcamp.com, for label; `img`, f4.bcbits.com, for download) the
 *   simulator's request log shows no request that reached the host inside the Retry-After of a 429 the host had
 *   answered, except requests that were already on the wire ({@link notOnTheWire}).
 * Small Retry-After and slow-answer times keep it short.
 */
import assert from 'node:assert/strict';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, test } from 'node:test';
import { resolveConfig, type Config } from '../pipeline/config.ts';
import { make } from '../pipeline/runner.ts';
import { isTransientError, RerunLaterError } from '../pipeline/stage.ts';
import { candidatesFormat } from '../schemas/candidates.ts';
import { labelsFormat } from '../schemas/labels.ts';
import { retryAfterViolations, type RetryAfterViolation } from '../simulator/retry-after.ts';
import { startSimulator, type RequestLogEntry, type Simulator } from '../simulator/server.ts';
import { discoverStage, downloadStage, labelStage, selectStage } from '../stages/index.ts';
import { memoryLogger } from '../util/log.ts';

const STAGES = [discoverStage, labelStage, selectStage, downloadStage];
const GENRES = ['ambient', 'jazz', 'metal'];
const RETRY_AFTER_S = 0.05;
const FAULTS = '429=0.3,503=0.2,reset=0.2,slow=0.1,challenge=0.1';
const tmp = mkdtempSync(join(tmpdir(), 'label-faults-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** A simulator of the test's catalogue; `ports` pins its listeners (so two runs' manifests name the same URLs). */
function simulator(faults: string, ports?: { port: number; imagePort: number }): Promise<Simulator> {
  return startSimulator({ genres: GENRES, perGenre: 100, overlap: 0.2, seed: 7, retryAfterSeconds: RETRY_AFTER_S, slowMs: 30, faults, ...ports });
}

function configFor(sim: Simulator): Config {
  return resolveConfig({
    genres: GENRES, perGenre: 40, seed: 1,
    bandcamp: { origin: sim.origin, imageOrigin: sim.imageOrigin },
    crawl: { maxRequestsPerMinute: 60_000, maxConcurrency: 4, pageSize: 30, oversample: 2, maxRetries: 8, maxBlockedRetries: 6, backoff: { initialMs: 5, maxMs: 40, factor: 2 } },
    download: { concurrency: 8, retries: 8 },
  }, 'test');
}

/** One event of the client's HTTP stack, on the test process's `performance.now()` clock (the simulator's clock too). */
interface ClientEvent {
  host: 'site' | 'img';
  method: string;
  /** Path and query, as the simulator logs it. */
  path: string;
  at: number;
}

/**
 * What the client's HTTP stack (undici, under Node's `fetch`) did, from its diagnostics channels: when each request's
 * headers were written to its socket (`undici:client:sendHeaders`, published right after the write) and when each
 * 429's response headers were received (`undici:request:headers`: the first moment the client can know of the 429).
 */
function recordClient(sim: Simulator): { wired: ClientEvent[]; got429: ClientEvent[]; stop: () => void } {
  const wired: ClientEvent[] = [];
  const got429: ClientEvent[] = [];
  const hostOf = (origin: string): 'site' | 'img' | null => (origin === sim.imageOrigin ? 'img' : origin === sim.origin ? 'site' : null);
  type Msg = { request: { origin: string; method: string; path: string }; response?: { statusCode: number } };
  const onSend = (m: unknown) => {
    const { request: r } = m as Msg;
    const host = hostOf(r.origin);
    if (host) wired.push({ host, method: r.method, path: r.path, at: performance.now() });
  };
  const onHeaders = (m: unknown) => {
    const { request: r, response } = m as Msg;
    const host = hostOf(r.origin);
    if (host && response?.statusCode === 429) got429.push({ host, method: r.method, path: r.path, at: performance.now() });
  };
  subscribe('undici:client:sendHeaders', onSend);
  subscribe('undici:request:headers', onHeaders);
  return { wired, got429, stop: () => { unsubscribe('undici:client:sendHeaders', onSend); unsubscribe('undici:request:headers', onHeaders); } };
}

/**
 * The simulator-log violations ({@link retryAfterViolations}: a request that arrived after a 429 from its host was
 * answered and within its Retry-After) that were NOT on the wire when the client received that 429. "On the wire":
 * the request's headers were written to its socket (`wired`) before the client received the 429's response headers
 * (`got429`). Such a request left the client before it could know of the 429; the simulator, whose event loop is the
 * client's here, may read it a few ms after it answered the 429 (up to 44 ms measured under load: two requests
 * crossing). Every other arrival inside the Retry-After is a violation.
 *
 * Matching is by host, method and path: the tries of one request follow one another (the next after the previous one
 * was answered), so a request's own write is the last write of its path before its arrival, and a 429's receipt the
 * first 429 received for its path after its arrival. One clock throughout (`performance.now()` of this process, sub-
 * microsecond), strict comparisons, no margin. A violation whose write or receipt cannot be found is kept.
 */
function notOnTheWire(found: readonly RetryAfterViolation[], wired: readonly ClientEvent[], got429: readonly ClientEvent[]): string[] {
  const same = (e: ClientEvent, x: RequestLogEntry, host: string) => e.host === host && e.method === x.method && e.path === x.path;
  const out: string[] = [];
  for (const v of found) {
    const wrote = wired.filter((e) => same(e, v.request, v.host) && e.at <= v.request.arrivedAt).at(-1);
    const received = got429.find((e) => same(e, v.after429, v.host) && e.at >= v.after429.arrivedAt);
    if (wrote && received && wrote.at < received.at) continue;
    out.push(
      `${v.host} ${v.request.method} ${v.request.path} arrived ${v.msAfter.toFixed(2)} ms after the 429 to ${v.after429.path} was answered ` +
        `(Retry-After ${v.after429.retryAfterMs} ms); written ${wrote ? `${(wrote.at - (received?.at ?? NaN)).toFixed(2)} ms after the 429 was received` : 'at an unknown time'}`,
    );
  }
  return out;
}

/** Runs `target` until it finishes, each failure transient; returns the errors of the runs that did not finish. */
async function runUntilDone(target: string, config: Config, dir: string, maxRuns: number): Promise<Error[]> {
  const failed: Error[] = [];
  for (let run = 1; run <= maxRuns; run++) {
    try {
      await make({ targets: [target], config, dataDir: dir, stages: STAGES, log: memoryLogger() });
      return failed;
    } catch (e) {
      assert.ok(isTransientError(e), `${target}, run ${run}: ${String(e)}`);
      failed.push(e as Error);
    }
  }
  assert.fail(`${target} unfinished after ${maxRuns} runs: ${failed.map((e) => e.message.slice(0, 120)).join(' | ')}`);
}

test('heavy fault mix: label finishes within 3 runs, download reaches the fault-free manifest, and neither host gets a request inside the Retry-After of its 429', async (t) => {
  // The fault-free run, on ports the faulty simulator then takes over.
  const clean = await simulator('');
  const ports = { port: Number(new URL(clean.origin).port), imagePort: Number(new URL(clean.imageOrigin).port) };
  const cleanDir = join(tmp, 'clean');
  try {
    await make({ targets: ['download'], config: configFor(clean), dataDir: cleanDir, stages: STAGES, log: memoryLogger() });
  } finally {
    await clean.close();
  }

  const sim = await simulator(FAULTS, ports);
  const client = recordClient(sim);
  try {
    const config = configFor(sim);
    const dir = join(tmp, 'faulty');
    // The listing first (under the same faults; it may take a few runs, which is not what this test measures).
    await runUntilDone('discover', config, dir, 20);
    const albums = new Set(candidatesFormat.read(join(dir, 'candidates.arrow')).map((c) => c.item_id)).size;
    assert.ok(albums >= 200, `a listing of a few hundred albums: ${albums}`);

    /** The simulator's log of each run of `target`, run by run (a rerun's client cannot know the last run's pause). */
    const runs: { target: string; log: RequestLogEntry[] }[] = [];
    const runLogged = async (target: string): Promise<unknown> => {
      const from = sim.log.length;
      try {
        await make({ targets: [target], config, dataDir: dir, stages: STAGES, log: memoryLogger() });
        return null;
      } catch (e) {
        return e;
      } finally {
        runs.push({ target, log: sim.log.slice(from) });
      }
    };

    const left: number[] = [];
    let labelRuns = 0;
    for (let run = 1; run <= 3; run++) {
      const e = await runLogged('label');
      if (e === null) {
        labelRuns = run;
        break;
      }
      assert.ok(e instanceof RerunLaterError, `label run ${run}: ${String(e)}`);
      const m = /label: (\d+) albums? could not be asked yet .*the tags of the other (\d+) are recorded: rerun the same command later/.exec(e.message);
      assert.ok(m, e.message);
      left.push(Number(m[1]));
    }
    assert.ok(labelRuns > 0, `label unfinished after 3 runs (albums left after each: ${left.join(', ')})`);
    assert.ok(left.length > 0, 'the fault mix made at least one label run end "rerun later" (else this test shows nothing)');
    assert.equal(labelsFormat.read(join(dir, 'labels.arrow')).length, candidatesFormat.read(join(dir, 'candidates.arrow')).length);

    await runUntilDone('select', config, dir, 1);
    let downloadRuns = 0;
    for (let run = 1; run <= 10 && !downloadRuns; run++) {
      const e = await runLogged('download');
      if (e === null) downloadRuns = run;
      else assert.ok(e instanceof RerunLaterError && /covers? could not be fetched yet/.test(e.message), `download run ${run}: ${String(e)}`);
    }
    assert.ok(downloadRuns > 0, 'download unfinished after 10 runs');
    assert.equal(readFileSync(join(dir, 'manifest.tsv'), 'utf8'), readFileSync(join(cleanDir, 'manifest.tsv'), 'utf8'), 'the manifest does not depend on what the network did');
    assert.equal(readFileSync(join(dir, 'rejected.tsv'), 'utf8'), readFileSync(join(cleanDir, 'rejected.tsv'), 'utf8'));

    const served429 = (target: string, host: 'site' | 'img') =>
      runs.filter((r) => r.target === target).flatMap((r) => r.log).filter((e) => e.host === host && e.status === 429);
    const site429 = served429('label', 'site');
    const img429 = served429('download', 'img');
    assert.ok(site429.length >= 20 && img429.length >= 20, `429s answered: ${site429.length} by the site to label, ${img429.length} by the image host to download`);
    // The one clock holds: every 429 answered was received by the client after the simulator answered it.
    for (const e of [...site429, ...img429]) {
      const got = client.got429.find((c) => c.host === e.host && c.method === e.method && c.path === e.path && c.at >= e.arrivedAt);
      assert.ok(got && e.answeredAt !== null && got.at > e.answeredAt, `${e.host} ${e.path}: 429 answered at ${e.answeredAt}, received at ${got?.at}`);
    }

    const found = runs.flatMap((r) => retryAfterViolations(r.log));
    const violations = notOnTheWire(found, client.wired, client.got429);
    t.diagnostic(
      `label finished in run ${labelRuns} (albums left: ${left.join(', ')}), download in run ${downloadRuns}; 429s: ${site429.length} site, ${img429.length} img; ` +
        `arrivals inside a Retry-After: ${found.length}, all on the wire before their 429 was received but ${violations.length}`,
    );
    assert.deepEqual(violations, []);
  } finally {
    client.stop();
    await sim.close();
  }
});
