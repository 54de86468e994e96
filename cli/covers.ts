/**
/**
 * The `covers` command line: `make`, `status`, `clean`, `simulate`, `demo`; the only place that hands the stages
 * (the registry, stages/index.ts) to the runner. Exit codes: 0 success, 1 a stage failed (bad input, a full disk, …),
 * 2 a usage error (unknown target, option or config value), 75 rerun later (the site or the network failed for now:
 * retries spent, block pages, covers not fetched yet; or another covers run holds the data directory; progress is
 * kept), 130 interrupted.
 *
 * One error path: every failure prints one message naming the stage, the item or file, the cause in plain words and
 * what to do; a stack trace only with `--verbose` (or for an internal error, which is a bug).
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Command, CommanderError } from 'commander';
// loadConfigLazily loads the config schema (and zod) only for a config file or --set: --help and a plain status never do.
import { loadConfigLazily, type Config } from '../pipeline/config-core.ts';
import { createLogger, type Logger, type LogLevel } from '../util/log.ts';
import { describeFailure } from '../pipeline/errors.ts';
import { UserError } from '../util/errors.ts';
import { clean, closure, describeState, plan, TARGET_ALIASES } from '../pipeline/runner.ts';
import type { Stage } from '../pipeline/stage.ts';
import { STAGES } from '../stages/index.ts';

export { describeFailure } from '../pipeline/errors.ts';
import { makeWithSignals } from '../pipeline/summary.ts';

/** Options every pipeline command shares. */
interface CommonOptions {
  config?: string;
  dataDir: string;
  set: string[];
  quiet?: boolean;
  verbose?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

function addCommon(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'JSON config file (default: ./covers.config.json if present)')
    .option('--data-dir <dir>', 'data directory', 'data')
    .option('--set <key=value>', 'override a config key (dotted; repeatable), e.g. --set perGenre=100 --set genres=metal,jazz', collect, [])
    .option('-q, --quiet', 'only warnings and errors')
    .option('-v, --verbose', 'debug output');
}

function levelOf(o: CommonOptions): LogLevel {
  return o.quiet ? 'quiet' : o.verbose ? 'verbose' : 'normal';
}

function targetList(stages: readonly Stage[]): string {
  return [...stages.map((s) => `  ${s.name.padEnd(10)} ${s.description}`), ...Object.entries(TARGET_ALIASES).map(([a, t]) => `  ${a.padEnd(10)} = ${t}`)].join('\n');
}

/**
 * The `version` of this package's package.json: the first one named bandcamp-covers above this module (cli/ in a
 * checkout, dist/cli/ when installed).
 */
function packageVersion(): string {
  for (let dir = new URL('.', import.meta.url); ; dir = new URL('..', dir)) {
    try {
      const pkg = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'bandcamp-covers' && pkg.version) return pkg.version;
    } catch {
      // no package.json here: look further up
    }
    if (dir.pathname === '/') return 'unknown';
  }
}

/**
 * Runs the CLI.
 * @param argv arguments after the program name.
 * @returns the process exit code.
 */
export async function main(argv: string[]): Promise<number> {
  const stages = STAGES;
  let exitCode = 0;
  const out = (s: string) => process.stdout.write(`${s}\n`);
  const program = new Command('covers')
    .description('Build a genre-labelled dataset of Bandcamp album covers and train convnets on it, stage by stage, like make.')
    .version(packageVersion(), '-V, --version', 'print the version of covers')
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(s) })
    .showHelpAfterError('(run with --help for usage)');

  const withConfig = async (o: CommonOptions): Promise<{ config: Config; log: Logger; dataDir: string }> => {
    const log = createLogger({ level: levelOf(o) });
    const config = await loadConfigLazily({ configPath: o.config, sets: o.set });
    return { config, log, dataDir: resolve(o.dataDir) };
  };

  addCommon(
    program
      .command('make')
      .description('build targets and every stale stage they depend on, in dependency order')
      .argument('<target...>', 'targets (see below)')
      .option('-n, --dry-run', 'print the plan and change nothing')
      .option('-f, --force', 'rerun the named targets from scratch, even if they are fresh (their work directories go, as with clean)')
      .addHelpText('after', `\nTargets:\n${targetList(stages)}`),
  ).action(async (targets: string[], o: CommonOptions & { dryRun?: boolean; force?: boolean }) => {
    const { config, log, dataDir } = await withConfig(o);
    if (o.dryRun) {
      const steps = await plan({ targets, config, dataDir, stages, force: o.force });
      const missing = existsSync(dataDir) ? '' : ' (it does not exist: make would create it and build everything; check --data-dir)';
      out(`plan for ${targets.join(' ')} in ${dataDir}${missing}:`);
      for (const s of steps) out(`  ${s.willRun ? 'run ' : 'skip'}  ${s.stage.name.padEnd(9)} ${describeState(s.state)}`);
      return;
    }
    await makeWithSignals({ targets, config, dataDir, stages, log, force: o.force, quiet: levelOf(o) === 'quiet' });
  });

  addCommon(
    program
      .command('status')
      .description('list every stage as fresh, stale (with the reason) or never built')
      .option('--json', 'machine-readable output'),
  ).action(async (o: CommonOptions & { json?: boolean }) => {
    const { config, dataDir } = await withConfig(o);
    if (!existsSync(dataDir)) throw new UserError(`no data directory ${dataDir}: nothing was built there (check --data-dir; covers make creates it)`);
    const steps = await plan({ targets: stages.map((s) => s.name), config, dataDir, stages });
    if (o.json) {
      out(JSON.stringify(steps.map((s) => ({ stage: s.stage.name, ...s.state })), null, 2));
      return;
    }
    out(`stages in ${dataDir}:`);
    for (const s of steps) out(`  ${s.stage.name.padEnd(9)} ${describeState(s.state)}`);
  });

  addCommon(
    program.command('clean').description("remove a stage's outputs, work directory and lock entry").argument('<target...>', 'stages to clean'),
  ).action(async (targets: string[], o: CommonOptions) => {
    const { config, log, dataDir } = await withConfig(o);
    for (const t of targets) {
      const name = TARGET_ALIASES[t] ?? t;
      closure(stages, [name], config); // validates the name
      const stage = stages.find((s) => s.name === name)!;
      const removed = clean(stage, config, dataDir);
      log.info(`${name}: removed ${removed.length ? removed.join(', ') : 'nothing (not built)'}`);
    }
  });

  program
    .command('simulate')
    .description('run the offline Bandcamp simulator (see `covers simulate --help`)')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[args...]')
    .action(async (args: string[]) => {
      const { runSimulateCommand } = await import('../simulator/cli.ts');
      exitCode = await runSimulateCommand(args);
    });

  program
    .command('demo')
    .description('offline demo: start the simulator and build the report for a small synthetic dataset in demo-data/')
    .option('--data-dir <dir>', 'data directory', 'demo-data')
    .option('--set <key=value>', "override a key of the demo's config (dotted; repeatable), e.g. --set perGenre=120", collect, [])
    .option('-q, --quiet', 'only warnings and errors')
    .option('-v, --verbose', 'debug output')
    .action(async (o: { dataDir: string; set: string[]; quiet?: boolean; verbose?: boolean }) => {
      const { runDemo } = await import('./demo.ts');
      exitCode = await runDemo({ dataDir: resolve(o.dataDir), sets: o.set, level: o.quiet ? 'quiet' : o.verbose ? 'verbose' : 'normal' });
    });

  try {
    await program.parseAsync(argv, { from: 'user' });
    return exitCode;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0;
      return 2;
    }
    const { code, message } = describeFailure(e, argv.includes('-v') || argv.includes('--verbose'));
    process.stderr.write(`covers: ${message}\n`);
    return code;
  }
}


