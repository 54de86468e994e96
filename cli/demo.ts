/**
 * `covers demo` (`npm run demo`): the offline demo. Starts the built-in Bandcamp simulator with its synthetic
 * catalogue on a loopback port, then runs `covers make report` against it with a small configuration into
 * `demo-data/`, and prints the summary and the report's path. No network access.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { applyOverrides, resolveConfig, type ConfigInput } from '../pipeline/config.ts';
import { describeFailure } from '../pipeline/errors.ts';
import { createLogger, type LogLevel } from '../util/log.ts';
import { InterruptedError } from '../util/errors.ts';
import { makeWithSignals } from '../pipeline/summary.ts';
import { STAGES } from '../stages/index.ts';

/** Loopback ports of the demo's simulator (site, images). */
export const DEMO_PORTS = [47311, 47312] as const;

/** Genres of the demo (five of the study's ten). */
export const DEMO_GENRES = ['ambient', 'folk', 'hip-hop-rap', 'jazz', 'metal'];

/**
 * The demo's configuration, given the simulator's site and image origins: 5 genres × 100 covers, 72-pixel images with 64-pixel
 * crops, a small convnet; politeness limits raised because the simulator is on loopback.
 */
export function demoConfig(origin: string, imageOrigin: string): ConfigInput {
  return {
    genres: DEMO_GENRES,
    perGenre: 100,
    seed: 0,
    image: { size: 72, format: 2 },
    bandcamp: { origin, imageOrigin },
    crawl: { maxRequestsPerMinute: 60_000, maxConcurrency: 4, impersonate: false, oversample: 2.5, backoff: { initialMs: 200, maxMs: 2000 } },
    download: { concurrency: 8 },
    train: {
      architecture: 'ConvNet',
      modelParams: 'num_conv_layers=3:num_dense_layers=1:lc0_num_filters=16:lc0_filter_size=5:lc0_stride=1:lc0_mp=True:lc1_num_filters=32:lc1_filter_size=3:lc1_mp=True:lc2_num_filters=64:lc2_filter_size=3:lc2_mp=True:ld0_num_units=64',
      crop: 64,
      optimizer: 'adam',
      learningRate: 0.001,
      batchSize: 32,
      epochs: 20,
      patience: 4,
      snapshotEvery: 5,
    },
    eval: { crops: 10 },
    baseline: { trees: 100, pixels: 32 },
    report: { contactSheet: 24 },
  };
}

/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Output directory (default `demo-data`). */
  dataDir: string;
  /**
   * `--set key=value` overrides of the demo's configuration (as `covers make --set`), e.g. `perGenre=120` to grow
   * the demo: the demo starts its simulator again each run, so its config never points at a stopped one.
   */
  sets?: readonly string[];
  level?: LogLevel;
}

/**
 * Runs the demo.
 * @returns the process exit code (0 on success).
 */
export async function runDemo(opts: DemoOptions): Promise<number> {
  const log = createLogger({ level: opts.level ?? 'normal' });
  const { startSimulator } = await import('../simulator/server.ts');
  const simOptions = { catalog: 'synthetic', genres: DEMO_GENRES, perGenre: 300, overlap: 0.2, seed: 0 };
  // Fixed ports keep `bandcamp.origin` the same from one demo run to the next, so a rerun finds the crawl fresh;
  // when they are taken, any free port works (the crawl stages then rerun against the new origin).
  const sim = await startSimulator({ ...simOptions, port: DEMO_PORTS[0], imagePort: DEMO_PORTS[1] }).catch(() => startSimulator(simOptions));
  log.info(`simulator: listening on ${sim.url} (synthetic catalogue, ${DEMO_GENRES.length} genres × 300 albums)`);
  try {
    const sets = opts.sets ?? [];
    const input = applyOverrides(demoConfig(sim.origin, sim.imageOrigin) as Record<string, unknown>, sets);
    const config = resolveConfig(input, sets.length ? 'demo + --set' : 'demo');
    mkdirSync(opts.dataDir, { recursive: true });
    writeFileSync(join(opts.dataDir, 'demo.config.json'), `${JSON.stringify(input, null, 2)}\n`);
    await makeWithSignals({ targets: ['report'], config, dataDir: opts.dataDir, stages: STAGES, log });
    process.stdout.write(`\nreport: ${join(opts.dataDir, 'report', 'index.html')}\n`);
    process.stdout.write(`inspect it with: npx covers status --data-dir ${opts.dataDir} --config ${join(opts.dataDir, 'demo.config.json')}\n`);
    return 0;
  } catch (e) {
    if (e instanceof InterruptedError) {
      process.stderr.write('covers demo: interrupted; finished work is kept, and `npm run demo` resumes where it stopped\n');
      return 130;
    }
    const { code, message } = describeFailure(e, opts.level === 'verbose');
    process.stderr.write(`covers demo: ${message}\n`);
    return code;
  } finally {
    await sim.close();
  }
}
