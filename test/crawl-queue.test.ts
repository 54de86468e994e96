/**
 * `runQueue` (bandcamp/crawl.ts) stopping: an aborted or failed crawl rejects only after crawlee has stopped and
 * flushed, so no file under crawlee's storage directory changes afterwards and no handler is still running; an abort
 * rejects with a short "interrupted" {@link AbortedError}; Ctrl-C does not print crawlee's own "Pausing... npm start"
 * hint. No network; about 3 s.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { AbortedError, sleep } from '../bandcamp/client.ts';
import { ProgressLog, runQueue, type QueueItem } from '../bandcamp/crawl.ts';
import { memoryLogger } from '../util/log.ts';

const tmp = mkdtempSync(join(tmpdir(), 'crawl-queue-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

type Data = { n: number };

/** Every file and directory under `dir` with its size and mtime, for comparing before and after a pause. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const p = join(e.parentPath, e.name);
    try {
      const s = statSync(p);
      out[p] = e.isDirectory() ? 'dir' : `${s.size}@${s.mtimeMs}`;
    } catch {
      out[p] = 'vanished';
    }
  }
  return out;
}

/**
 * A crawl of `count` items: even items take 20–60 ms and end early on the stop signal; odd items take 150–250 ms
 * and ignore it (a handler busy with something that cannot be cancelled), so stopping has to wait for them. `onHandled(done)` runs after each item.
 */
function crawl(name: string, opts: { count: number; signal?: AbortSignal; onHandled?: (done: number) => void; fail?: (n: number) => Error | null }) {
  const storageDir = join(tmp, name);
  const progress = new ProgressLog<Data>(join(storageDir, '..', `${name}.jsonl`));
  const done = new Set<number>(progress.read().map((r) => r.n));
  const doneBefore = done.size;
  const state = { settled: false, running: 0, lateWork: [] as string[] };
  const items = (): QueueItem<Data>[] =>
    Array.from({ length: opts.count }, (_, n) => n).filter((n) => !done.has(n)).map((n) => ({ uniqueKey: `item|${n}`, url: `http://127.0.0.1:9/item/${n}`, data: { n } }));
  const promise = runQueue<Data>({
    name,
    storageDir,
    pending: items,
    maxConcurrency: 4,
    log: memoryLogger(),
    signal: opts.signal,
    async handle({ n }, _enqueue, signal) {
      if (state.settled) state.lateWork.push(`item ${n} started after runQueue settled`);
      state.running++;
      try {
        await (n % 2 === 0 ? sleep(20 + ((n * 7) % 40), signal) : sleep(150 + ((n * 13) % 100)));
        const err = opts.fail?.(n);
        if (err) throw err;
        progress.append({ n });
        done.add(n);
        opts.onHandled?.(done.size);
      } finally {
        state.running--;
        if (state.settled) state.lateWork.push(`item ${n} finished after runQueue settled`);
      }
    },
  });
  const settled = promise.then(
    () => {
      state.settled = true;
    },
    (e: unknown) => {
      state.settled = true;
      throw e;
    },
  );
  return { storageDir, promise: settled, state, done, doneBefore };
}

/** Asserts nothing changes under `dir` for 500 ms and no handler runs after the crawl settled. */
async function assertQuiet(c: { storageDir: string; state: { running: number; lateWork: string[] } }): Promise<void> {
  assert.equal(c.state.running, 0, 'handlers still running after runQueue settled');
  const before = snapshot(c.storageDir);
  assert.ok(Object.keys(before).some((p) => p.includes('request_queues')), 'crawlee wrote its request queue');
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual(snapshot(c.storageDir), before, 'crawlee storage changed after runQueue settled');
  assert.deepEqual(c.state.lateWork, []);
}

test('an aborted crawl rejects with "interrupted" after crawlee stopped writing; a rerun finishes the rest', async () => {
  const ac = new AbortController();
  const c = crawl('aborted', { count: 40, signal: ac.signal, onHandled: (d) => d === 8 && ac.abort() });
  const err = await c.promise.then(() => null, (e: unknown) => e);
  await assertQuiet(c);
  assert.ok(err instanceof AbortedError, `got ${String(err)}`);
  assert.equal(err.message, 'interrupted');
  assert.ok(c.done.size >= 8 && c.done.size < 40, `done ${c.done.size}`);

  const again = crawl('aborted', { count: 40 });
  await again.promise;
  assert.equal(again.doneBefore, c.done.size);
  assert.equal(again.done.size, 40, 'the rerun finishes the items the aborted run left');
});

test('a failing handler stops the crawl; runQueue rejects with its error after in-flight handlers and crawlee finished', async () => {
  const c = crawl('failed', { count: 40, fail: (n) => (n === 9 ? new Error('item 9 is broken') : null) });
  await assert.rejects(c.promise, /item 9 is broken/);
  await assertQuiet(c);
});

test("Ctrl-C during a crawl does not print crawlee's own pause/resume hint", async () => {
  const ac = new AbortController();
  const written: string[] = [];
  const origOut = process.stdout.write.bind(process.stdout);
  const origErr = process.stderr.write.bind(process.stderr);
  const capture = (orig: typeof process.stderr.write) =>
    ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      written.push(String(chunk));
      return (orig as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
  // The CLI's own handler: SIGINT aborts the run (a listener also keeps the emit below from ending the process).
  const onSigint = () => ac.abort();
  process.on('SIGINT', onSigint);
  process.stdout.write = capture(origOut);
  process.stderr.write = capture(origErr);
  try {
    const c = crawl('sigint', { count: 40, signal: ac.signal, onHandled: (d) => d === 4 && process.emit('SIGINT', 'SIGINT') });
    const err = await c.promise.then(() => null, (e: unknown) => e);
    await assertQuiet(c);
    assert.ok(err instanceof AbortedError && err.message === 'interrupted', `got ${String(err)}`);
  } finally {
    process.stdout.write = origOut;
    process.stderr.write = origErr;
    process.off('SIGINT', onSigint);
  }
  const text = written.join('');
  assert.doesNotMatch(text, /Pausing|CRAWLEE_PURGE_ON_START|npm start/, text);
});
