#!/usr/bin/env node
// Entry point of the `covers` CLI. An installed package runs the compiled JavaScript in dist/ (built from the
// TypeScript sources by `npm run build`, which `npm pack` and `npm publish` run first). A source checkout runs the
// TypeScript sources through tsx (a devDependency), so edits take effect without a build; COVERS_DIST=1 makes a
// checkout run its dist/ instead (the start-up benchmark does).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

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
} else if (existsSync(compiled)) {
  cli = await import(compiled.href);
} else {
  const why = existsSync(source) ? 'COVERS_DIST=1 runs the compiled JavaScript, ' : '';
  process.stderr.write(`covers: ${why}${fileURLToPath(compiled)} is missing; run \`npm run build\` first\n`);
  process.exit(1);
}
process.exitCode = await cli.main(process.argv.slice(2));
