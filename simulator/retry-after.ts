/**
 * Reading the simulator's request log for `Retry-After`: which requests reached a host while a 429 it had sent still
 * asked the client to wait (docs/BANDCAMP.md#blocking: Bandcamp answers 429 with `Retry-After` in seconds).
 */
import type { RequestLogEntry } from './server.ts';

/** A request that reached a host inside the `Retry-After` of a 429 that host had already answered. */
export interface RetryAfterViolation {
  /** The listener both requests reached (`site` or `img`). */
  host: RequestLogEntry['host'];
  /** The offending request. */
  request: RequestLogEntry;
  /** The 429 it came too soon after. */
  after429: RequestLogEntry;
  /** Its arrival after the 429's answer was complete, ms (below `after429.retryAfterMs`). */
  msAfter: number;
}

/**
 * Every request that arrived at a host after a 429 from that host was answered and before that 429's `Retry-After`
 * had passed: arrival in the open interval (`answeredAt`, `answeredAt + retryAfterMs`) of the 429, both times read
 * from the simulator's one clock (`performance.now()` in its process, sub-millisecond: no tolerance is added).
 *
 * A request that arrived before the 429 was answered was on the wire when the 429 was sent, so it is never counted.
 * One that arrived after may still have left its client before the client received the 429 (the two crossed): the
 * log alone cannot tell, so a caller that knows when its client sent each request and received each 429 excuses
 * those (test/label-faults.test.ts). A 429 that was never answered (the client left) holds nothing. Output in arrival
 * order, one entry per (request, 429) pair; an empty list means the log shows no request inside a Retry-After.
 */
export function retryAfterViolations(log: readonly RequestLogEntry[]): RetryAfterViolation[] {
  const out: RetryAfterViolation[] = [];
  for (const host of ['site', 'img'] as const) {
    const entries = log.filter((e) => e.host === host).sort((a, b) => a.arrivedAt - b.arrivedAt);
    for (const e429 of entries) {
      if (e429.status !== 429 || e429.answeredAt === null || e429.retryAfterMs === null) continue;
      const from = e429.answeredAt;
      const until = from + e429.retryAfterMs;
      for (let i = firstArrivalAfter(entries, from); i < entries.length && entries[i]!.arrivedAt < until; i++) {
        const r = entries[i]!;
        out.push({ host, request: r, after429: e429, msAfter: r.arrivedAt - from });
      }
    }
  }
  return out.sort((a, b) => a.request.arrivedAt - b.request.arrivedAt);
}

/** The index of the first entry (sorted by `arrivedAt`) that arrived strictly after `t`; `entries.length` when none. */
function firstArrivalAfter(entries: readonly RequestLogEntry[], t: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (entries[mid]!.arrivedAt <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
