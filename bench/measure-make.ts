/**
 * Runs the `covers` CLI in this process and prints its exit code and peak RSS (`maxRssKB=…`, from
 * `process.resourceUsage().maxRSS`, in KiB) on stdout: used by benchmarks to measure one stage's memory on its own.
 */
import { main } from '../pipeline/cli.ts';

const code = await main(process.argv.slice(2));
process.stdout.write(`exit=${code} maxRssKB=${process.resourceUsage().maxRSS}\n`);
process.exit(code);
