/**
 * Starting a worker thread on a TypeScript module. On Node 20, tsx's loader hooks do not reach worker threads through
 * `execArgv`, so the worker registers tsx itself (`tsx/esm/api` `register()`) before importing the module — the
 * bootstrap train/loader.ts uses for its batch worker, as a reusable helper. In the compiled package (dist/, no
 * TypeScript sources) the module's `.js` sibling runs directly.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread running the TypeScript module at `moduleUrl` with `workerData`.
 * @throws Error when the worker cannot be created (e.g. tsx is not installed); module load errors arrive later as
 *   the worker's `error` event.
 */
export function startTsWorker(moduleUrl: URL, workerData: unknown): Worker {
  if (moduleUrl.pathname.endsWith('.ts') && !existsSync(fileURLToPath(moduleUrl))) {
    return new Worker(new URL(moduleUrl.href.replace(/\.ts$/, '.js')), { workerData });
  }
  const api = import.meta.resolve('tsx/esm/api');
  const src = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(moduleUrl.href)}); })`;
  return new Worker(src, { eval: true, workerData });
}
