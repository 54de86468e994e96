#!/usr/bin/env node
// Entry point of the `covers` CLI. An installed package runs the compiled JavaScript in dist/ (built from the
// TypeScript sources by `npm run build`, which `npm pack` and `npm publish` run first). A source checkout runs the
// TypeScript sources through tsx (a devDependency), so edits take effect without a build; COVERS_DIST=1 makes a
// checkout run its dist/ instead (the start-up benchmark does).
import { existsSync } from 'node:fs';

// A reader that goes away (`covers status | head -1`) makes further writes to stdout fail with EPIPE; that only
// means nobody reads the rest, so stop there quietly instead of dying on an unhandled 'error' event with a stack.
process.stdout.on('error', (e) => {
  if (e.code !== 'EPIPE') throw e;
});

const source = new URL('../cli/covers.ts', import.meta.url);
const compiled = new URL('../dist/cli/covers.js', import.meta.url);
let cli;
if (existsSync(source) && process.env.COVERS_DIST !== '1') {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(source.href);
} else {
  cli = await import(compiled.href);
}
process.exitCode = await cli.main(process.argv.slice(2));
