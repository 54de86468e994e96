// Child process for test/run-lock.test.ts: waits until the wall-clock instant argv[3] (ms), then tries to take the
// run lock of the data directory argv[2]; prints one JSON line {ok, pid, error?, lateMs}; a winner holds the lock for
// argv[4] ms, then releases it.
import { acquireRunLock } from '../../pipeline/run-lock.ts';

const [dir, startAt, holdMs] = [process.argv[2]!, Number(process.argv[3]), Number(process.argv[4] ?? 3000)];
// Sleep until just before the instant, then spin the last few milliseconds so that every racer starts together.
const nap = startAt - Date.now() - 30;
if (nap > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, nap);
while (Date.now() < startAt) {
  /* spin */
}
const lateMs = Date.now() - startAt;
try {
  const release = acquireRunLock(dir);
  process.stdout.write(`${JSON.stringify({ ok: true, pid: process.pid, lateMs })}\n`);
  await new Promise((r) => setTimeout(r, holdMs));
  release();
} catch (e) {
  process.stdout.write(`${JSON.stringify({ ok: false, pid: process.pid, error: (e as Error).message, lateMs })}\n`);
}
