/**
 * Runs the `covers` CLI in this process and prints its exit code and peak RSS (`maxRssKB=…`, `peakRssKB()` in KiB)
 * on stdout: used by benchmarks to measure one stage's memory on its own.
 */
import { main } from '../cli/covers.ts';
import { peakRssKB } from './lib.ts';

const code = await main(process.argv.slice(2));
process.stdout.write(`exit=${code} maxRssKB=${peakRssKB()}\n`);
process.exit(code);
