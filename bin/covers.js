#!/usr/bin/env node
// Entry point of the `covers` CLI. The project is written in TypeScript and run through tsx's loader, so
// `npx covers …` works right after `npm ci` with no build step. Worker threads started by the pipeline
// pass `--import tsx` themselves.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../cli/covers.ts');
process.exitCode = await main(process.argv.slice(2));
