// A decode worker stand-in for test/shards-untrusted.test.ts (dataset/decode-worker.ts protocol): a file starting with
// "CRASH" kills the worker with SIGSEGV, one starting with "HANG" blocks it forever (a busy loop); everything else is
// preprocessed normally.
import { openSync, readSync, closeSync } from 'node:fs';
import { serveDecodeRequests } from '../../dataset/decode-worker.ts';
import { preprocessImageVia } from '../../dataset/preprocess.ts';

function head(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(8);
    return b.subarray(0, readSync(fd, b, 0, 8, 0)).toString('latin1');
  } finally {
    closeSync(fd);
  }
}

serveDecodeRequests(async (path, opts, into) => {
  const h = head(path);
  if (h.startsWith('CRASH')) process.kill(process.pid, 'SIGSEGV');
  if (h.startsWith('HANG')) for (;;);
  return preprocessImageVia(path, opts, into);
});
