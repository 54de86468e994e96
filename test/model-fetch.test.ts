/**
 * `pretrained.model` as a URL (model-import/fetch.ts), served by a local HTTP server: downloaded once into the cache,
 * resumed with a Range request after the connection is cut, verified against `pretrained.sha256`; offline, the error
 * names the URL and where to put the file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cachedModelPath, resolveModelFile } from '../model-import/fetch.ts';
import { RerunLaterError, UserError, isTransientError } from '../util/errors.ts';
import { createLogger } from '../util/log.ts';

const log = createLogger({ level: 'quiet' });
const BODY = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 31 + (i >> 8)) & 255));
const SHA = createHash('sha256').update(BODY).digest('hex');

describe('pretrained.model from a URL', () => {
  let server: Server;
  let base = '';
  let dir = '';
  const requests: { path: string; range: string | undefined }[] = [];
  let cutNext = false;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'model-fetch-'));
    server = createServer((req, res) => {
      requests.push({ path: req.url ?? '', range: req.headers.range });
      if (req.url === '/missing.onnx') {
        res.writeHead(404).end();
        return;
      }
      const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
      const from = m ? Number(m[1]) : 0;
      const body = BODY.subarray(from);
      res.writeHead(m ? 206 : 200, { 'content-length': body.length, ...(m ? { 'content-range': `bytes ${from}-${BODY.length - 1}/${BODY.length}` } : {}) });
      if (cutNext) {
        cutNext = false;
        // Half the body, then the connection drops.
        res.write(body.subarray(0, 100_000), () => setTimeout(() => res.socket?.destroy(), 300)); // time for the client to take in what was sent, on a loaded machine too
        return;
      }
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('a cut download is kept and resumed with a Range request; the result is verified and cached', async () => {
    const cache = join(dir, 'cache1');
    const url = `${base}/nets/alexnet.onnx`;
    cutNext = true;
    await assert.rejects(resolveModelFile(url, { cacheDir: cache, sha256: SHA, log }), (e: Error) => {
      assert.ok(e instanceof RerunLaterError && isTransientError(e));
      assert.match(e.message, /cannot download http:\/\/127\.0\.0\.1:\d+\/nets\/alexnet\.onnx .*the next run resumes/);
      return true;
    });
    const part = `${cachedModelPath(url, cache)}.part`;
    assert.ok(statSync(part).size > 0 && statSync(part).size < BODY.length, `the partial download is kept (${statSync(part).size} bytes)`);
    const have = statSync(part).size;
    requests.length = 0;
    const path = await resolveModelFile(url, { cacheDir: cache, sha256: SHA, log });
    assert.equal(path, cachedModelPath(url, cache));
    assert.deepEqual(requests, [{ path: '/nets/alexnet.onnx', range: `bytes=${have}-` }]);
    assert.ok(readFileSync(path).equals(BODY));
    assert.ok(!existsSync(part));
    requests.length = 0;
    assert.equal(await resolveModelFile(url, { cacheDir: cache, sha256: SHA, log }), path);
    assert.equal(requests.length, 0, 'downloaded once');
  });

  it('a checksum mismatch is an error naming both digests, and nothing is cached', async () => {
    const cache = join(dir, 'cache2');
    const url = `${base}/other.onnx`;
    const wrong = '0'.repeat(64);
    await assert.rejects(resolveModelFile(url, { cacheDir: cache, sha256: wrong, log }), (e: Error) => {
      assert.ok(e instanceof UserError && !isTransientError(e));
      assert.match(e.message, new RegExp(`pretrained.sha256: the download of ${url} has sha256 ${SHA}, expected ${wrong}`));
      return true;
    });
    assert.ok(!existsSync(cachedModelPath(url, cache)) && !existsSync(`${cachedModelPath(url, cache)}.part`));
    const local = join(dir, 'local.onnx');
    writeFileSync(local, BODY);
    await assert.rejects(resolveModelFile(local, { cacheDir: cache, sha256: wrong, log }), /local\.onnx has sha256/);
    assert.equal(await resolveModelFile(local, { cacheDir: cache, sha256: SHA, log }), local);
    await assert.rejects(resolveModelFile(join(dir, 'absent.onnx'), { cacheDir: cache, log }), /absent\.onnx does not exist/);
  });

  it('offline: the error names the URL and where to put the file; an HTTP error status names it', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const url = `http://127.0.0.1:${port}/resnet18.onnx`;
    const cache = join(dir, 'cache3');
    await assert.rejects(resolveModelFile(url, { cacheDir: cache, log }), (e: Error) => {
      assert.ok(isTransientError(e));
      assert.ok(e.message.includes(url) && e.message.includes(`put it at ${cachedModelPath(url, cache)}`), e.message);
      return true;
    });
    await assert.rejects(resolveModelFile(`${base}/missing.onnx`, { cacheDir: cache, log }), /answered HTTP 404/);
  });
});
