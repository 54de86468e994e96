/**
 * The polite HTTP layer (`bandcamp/client.ts`) against a scripted transport: 429 pauses every request and honours
 * Retry-After as a floor, 404 is not retried, 5xx and empty 403 are retried then reported, block pages stop with a
 * resumable message, request starts are spaced by the rate limit. Quick (< 2 s).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlockedError, HostBudget, parseRetryAfter, PoliteClient, RequestFailedError, type HttpResult, type Transport, type TransportRequest } from '../bandcamp/client.ts';
import { jsonBlockCheck } from '../bandcamp/block-checks.ts';

type Script = (req: TransportRequest, n: number) => Partial<HttpResult> | Error;

function scripted(script: Script): { transport: Transport; calls: { url: string; at: number }[] } {
  const calls: { url: string; at: number }[] = [];
  const transport: Transport = async (req) => {
    // On the wire at once, as the real transports report (so the budget spaces starts from this very moment).
    req.onSent?.();
    calls.push({ url: req.url, at: Date.now() });
    const r = script(req, calls.filter((c) => c.url === req.url).length);
    if (r instanceof Error) throw r;
    return { status: 200, headers: {}, body: Buffer.from('{}'), url: req.url, ...r };
  };
  return { transport, calls };
}

function client(transport: Transport, over: Partial<ConstructorParameters<typeof PoliteClient>[0]> = {}): PoliteClient {
  return new PoliteClient({
    transport,
    budget: new HostBudget({ maxRequestsPerMinute: Infinity, maxConcurrency: 2 }),
    userAgent: 'test',
    timeoutMs: 1000,
    maxRetries: 3,
    maxBlockedRetries: 2,
    backoff: { initialMs: 10, maxMs: 50, factor: 2 },
    random: () => 0.5,
    ...over,
  });
}

test('429: Retry-After is a floor and pauses every request of the host group', async () => {
  const { transport, calls } = scripted((req, n) => (req.url.endsWith('/a') && n === 1 ? { status: 429, headers: { 'retry-after': '0.3' } } : {}));
  const c = client(transport);
  const t0 = Date.now();
  const a = c.request({ url: 'http://x/a' });
  await new Promise((r) => setTimeout(r, 20));
  const b = c.request({ url: 'http://x/b' }); // starts during the pause: must wait it out too
  await Promise.all([a, b]);
  const aCalls = calls.filter((x) => x.url.endsWith('/a'));
  assert.equal(aCalls.length, 2);
  assert.ok(aCalls[1]!.at - aCalls[0]!.at >= 295, `retry after ${aCalls[1]!.at - aCalls[0]!.at} ms`);
  const bCall = calls.find((x) => x.url.endsWith('/b'))!;
  assert.ok(bCall.at - t0 >= 295, `other request started ${bCall.at - t0} ms in, inside the pause`);
  assert.equal(c.stats.status429, 1);
});

test('a 429 holds every request of the host, queued or new, until its Retry-After has passed (those already sent excepted)', async () => {
  // 40 requests over 4 slots, answers taking 0–15 ms, 429 (Retry-After 0.08 s) on a fifth of first attempts. Each
  // transport call is a request going out; none may go out after the client read a 429 and before its time passed.
  let seed = 7;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const received: number[] = [];
  const sent: { url: string; at: number }[] = [];
  const transport: Transport = async (req): Promise<HttpResult> => {
    sent.push({ url: req.url, at: performance.now() });
    const first = sent.filter((c) => c.url === req.url).length === 1;
    await new Promise((r) => setTimeout(r, Math.floor(rand() * 15)));
    if (first && rand() < 0.2) {
      received.push(performance.now());
      return { status: 429, headers: { 'retry-after': '0.08' }, body: Buffer.alloc(0), url: req.url };
    }
    return { status: 200, headers: {}, body: Buffer.from('{}'), url: req.url };
  };
  const c = client(transport, { budget: new HostBudget({ maxRequestsPerMinute: Infinity, maxConcurrency: 4 }), maxRetries: 5 });
  const all = Array.from({ length: 40 }, (_, i) => c.request({ url: `http://x/${i}` }));
  await new Promise((r) => setTimeout(r, 30));
  all.push(...Array.from({ length: 10 }, (_, i) => c.request({ url: `http://x/new-${i}` }))); // new ones, mid-crawl
  await Promise.all(all);
  assert.ok(received.length >= 4, `429s: ${received.length}`);
  const inside = sent.filter((s) => received.some((r) => s.at > r + 1 && s.at < r + 80));
  assert.deepEqual(inside.map((s) => `${s.url} ${received.filter((r) => s.at > r + 1 && s.at < r + 80).map((r) => (s.at - r).toFixed(1)).join(',')} ms after a 429`), [], 'requests sent inside a Retry-After');
});

test('a request that has its slot but is not on the wire yet when a 429 arrives is taken back unsent and goes out after the Retry-After', async () => {
  // `/b` goes on the wire only after `/a` was answered 429 and one more turn of the event loop (a connection still
  // opening, as fetch queues a request meanwhile): without the hold it would leave inside the 100 ms pause.
  const wired: { url: string; at: number }[] = [];
  let got429 = 0;
  let answered429!: () => void;
  const aAnswered = new Promise<void>((r) => (answered429 = r));
  const transport: Transport = async (req): Promise<HttpResult> => {
    if (req.url.endsWith('/b')) {
      await aAnswered;
      await new Promise((r) => setTimeout(r, 0));
      if (req.signal?.aborted) throw req.signal.reason;
    }
    req.onSent?.();
    wired.push({ url: req.url, at: performance.now() });
    if (req.url.endsWith('/a') && got429 === 0) {
      got429 = performance.now();
      answered429();
      return { status: 429, headers: { 'retry-after': '0.1' }, body: Buffer.alloc(0), url: req.url };
    }
    return { status: 200, headers: {}, body: Buffer.from('{}'), url: req.url };
  };
  const c = client(transport);
  await Promise.all([c.request({ url: 'http://x/a' }), c.request({ url: 'http://x/b' })]);
  const b = wired.filter((w) => w.url.endsWith('/b'));
  assert.equal(b.length, 1, 'sent once');
  assert.ok(b[0]!.at >= got429 + 100, `/b went out ${(b[0]!.at - got429).toFixed(1)} ms after the 429 (Retry-After 100 ms)`);
  assert.equal(c.stats.heldBack, 1);
  assert.equal(c.stats.retries, 1, 'the held-back try is not a retry');
});

test('404 is permanent: returned, never retried', async () => {
  const { transport, calls } = scripted(() => ({ status: 404 }));
  const res = await client(transport).request({ url: 'http://x/missing' });
  assert.equal(res.status, 404);
  assert.equal(calls.length, 1);
});

test('5xx and resets are retried maxRetries times, then fail naming the reason', async () => {
  const { transport, calls } = scripted((_r, n) => (n % 2 ? { status: 503 } : Object.assign(new Error('socket hang up'), { cause: { code: 'ECONNRESET' } })));
  await assert.rejects(client(transport).request({ url: 'http://x/down' }), (e: unknown) => e instanceof RequestFailedError && e.attempts === 4);
  assert.equal(calls.length, 4);
  const ok = scripted((_r, n) => (n < 3 ? { status: 502 } : {}));
  assert.equal((await client(ok.transport).request({ url: 'http://x/flaky' })).status, 200);
});

test('an empty 403 is retried with backoff and reported as "HTTP 403"', async () => {
  const { transport, calls } = scripted(() => ({ status: 403, body: Buffer.alloc(0) }));
  await assert.rejects(client(transport).request({ url: 'http://x/forbidden' }), (e: unknown) => e instanceof RequestFailedError && e.reason === 'HTTP 403');
  assert.equal(calls.length, 4);
});

test('challenge pages with HTTP 200 stop the crawl after maxBlockedRetries with a resumable message', async () => {
  const page = '<html><head><title>Client Challenge</title><script src="/_fs-ch-1T1wmsGaOgGaSxcX/script.js"></script></head></html>';
  const { transport, calls } = scripted(() => ({ body: Buffer.from(page), headers: { 'content-type': 'text/html' } }));
  await assert.rejects(client(transport).request({ url: 'http://x/api', blockCheck: jsonBlockCheck }), (e: unknown) => {
    assert.ok(e instanceof BlockedError);
    assert.match(e.message, /3 challenge responses in a row/);
    assert.match(e.message, /rerun the same `covers make` command later/);
    return true;
  });
  assert.equal(calls.length, 3);
  // A block page followed by a good answer is fine.
  const recover = scripted((_r, n) => (n === 1 ? { body: Buffer.from(page) } : {}));
  assert.equal((await client(recover.transport).request({ url: 'http://x/api', blockCheck: jsonBlockCheck })).status, 200);
});

test('request starts are spaced by the rate limit across hosts of the group', async () => {
  const { transport, calls } = scripted(() => ({}));
  const c = client(transport, { budget: new HostBudget({ maxRequestsPerMinute: 1200, maxConcurrency: 2 }) }); // 50 ms
  await Promise.all(['a', 'b', 'c', 'd', 'e'].map((p, i) => c.request({ url: `http://h${i % 2}.example/${p}` })));
  const at = calls.map((x) => x.at).sort((a, b) => a - b);
  for (let i = 1; i < at.length; i++) assert.ok(at[i]! - at[i - 1]! >= 48, `gap ${at[i]! - at[i - 1]!} ms`);
});

test('parseRetryAfter reads seconds and HTTP dates', () => {
  assert.equal(parseRetryAfter('2'), 2000);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6_000);
  assert.equal(parseRetryAfter(undefined), null);
});
