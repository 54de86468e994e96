/**
 * `covers simulate`: runs the Bandcamp simulator in the foreground until SIGINT/SIGTERM. The first line of stdout is
 * `listening on http://127.0.0.1:PORT` (scripts wait for it); the second names the image origin.
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { FAULTS_HELP, formatFaultSpec, parseFaultSpec } from './faults.ts';
import { startSimulator, type SimulatorOptions } from './server.ts';

function int(name: string, min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`${name} must be an integer in [${min}, ${max}], got "${v}"`);
    return n;
  };
}

function share(name: string): (v: string) => number {
  return (v) => {
    const n = Number(v);
    if (!(n >= 0 && n <= 1)) throw new InvalidArgumentError(`${name} must be a share in [0, 1], got "${v}"`);
    return n;
  };
}

interface Opts {
  port: number;
  imagePort: number;
  host: string;
  catalog: string;
  genres?: string;
  perGenre: number;
  overlap: number;
  withoutArt: number;
  dirLimit?: number;
  faults?: string;
  seed: number;
  log?: string;
  retryAfter: number;
  slowMs: number;
}

/**
 * Runs `covers simulate [options]`.
 * @param argv the arguments after `simulate`.
 * @returns the exit code: 0 after a clean shutdown (or `--help`), 2 on bad arguments, 1 when the simulator fails to start.
 */
export async function runSimulateCommand(argv: string[]): Promise<number> {
  const program = new Command('covers simulate')
    .description('Run the offline Bandcamp simulator: discover_web, album pages, tralbum_details and the image CDN on 127.0.0.1.')
    .option('--port <n>', 'port of the site (bandcamp.com stand-in); 0 = any free port', int('--port', 0, 65535), 0)
    .option('--image-port <n>', 'port of the image CDN (f4.bcbits.com stand-in); images are also served on --port', int('--image-port', 0, 65535), 0)
    .option('--host <addr>', 'interface to listen on', '127.0.0.1')
    .option('--catalog <synthetic|DIR>', 'synthetic covers, or a folder with labels.tsv (path<TAB>genre, header)', 'synthetic')
    .option('--genres <a,b,...>', 'synthetic genres (tag norm names); default the 2015 study\'s ten')
    .option('--per-genre <n>', 'synthetic albums per genre', int('--per-genre', 1), 300)
    .option('--overlap <r>', 'share of synthetic albums also tagged with one or two other genres', share('--overlap'), 0.1)
    .option('--without-art <r>', 'share of synthetic albums without cover art', share('--without-art'), 0.02)
    .option('--dir-limit <n>', 'DIR catalogue: at most n albums per genre', int('--dir-limit', 1))
    .option('--faults <spec>', 'fault rates, e.g. 429=0.05,reset=0.01 (see below)')
    .option('--seed <n>', 'seed of the catalogue, covers and faults', int('--seed', 0), 0)
    .option('--log <file>', 'append every request as a JSON line {time,method,path,status,fault,host,attempt,ms}')
    .option('--retry-after <s>', 'Retry-After of injected 429 responses, seconds', int('--retry-after', 0), 1)
    .option('--slow-ms <ms>', 'delay of the "slow" fault, ms', int('--slow-ms', 0), 1500)
    .addHelpText('after', `\n${FAULTS_HELP}\n\nExample:\n  covers simulate --port 8080 --per-genre 100 --faults 429=0.05,reset=0.01,truncated=0.01 --log sim.jsonl`)
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });

  let o: Opts;
  try {
    program.parse(argv, { from: 'user' });
    o = program.opts<Opts>();
    if (o.faults) parseFaultSpec(o.faults); // validate early, with the spec's own message
  } catch (e) {
    if (e instanceof CommanderError) return e.code === 'commander.helpDisplayed' || e.code === 'commander.help' ? 0 : 2;
    process.stderr.write(`covers simulate: ${(e as Error).message}\n`);
    return 2;
  }

  const options: SimulatorOptions = {
    port: o.port,
    imagePort: o.imagePort,
    host: o.host,
    catalog: o.catalog,
    genres: o.genres ? o.genres.split(',').map((g) => g.trim()).filter(Boolean) : undefined,
    perGenre: o.perGenre,
    overlap: o.overlap,
    noArt: o.withoutArt,
    dirLimit: o.dirLimit,
    faults: o.faults,
    seed: o.seed,
    logFile: o.log,
    retryAfterSeconds: o.retryAfter,
    slowMs: o.slowMs,
    keepLog: false,
  };
  let sim;
  try {
    sim = await startSimulator(options);
  } catch (e) {
    process.stderr.write(`covers simulate: ${(e as Error).message}\n`);
    return 1;
  }
  process.stdout.write(`listening on ${sim.origin}\n`);
  process.stdout.write(`images on ${sim.imageOrigin}\n`);
  const albums = sim.catalog.albums.filter((a) => a.resultType === 'a').length;
  process.stderr.write(
    `catalogue: ${o.catalog} (${sim.catalog.genres.length} genres: ${sim.catalog.genres.join(', ')}; ${albums} albums); faults: ${formatFaultSpec(sim.faults) || 'none'}; seed ${o.seed}\n` +
      `set bandcamp.origin=${sim.origin} bandcamp.imageOrigin=${sim.imageOrigin}; Ctrl-C stops\n`,
  );
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  await sim.close();
  return 0;
}
