/**
 * Test-only stages for the runner: a small diamond a → b, a → c, (b, c) → d. Each writes a text file derived from
 * its inputs and one config key, and counts its runs in `DATA_DIR/runs.log`.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Stage, StageContext } from '../../pipeline/stage.ts';

/** Behaviour switches for tests. */
export const toyControl = { failIn: '' as string, hangIn: '' as string };

function toy(name: string, deps: string[], param: string): Stage {
  return {
    name,
    description: `toy stage ${name}`,
    deps,
    inputs: deps.map((d) => `${d}.txt`),
    params: [param],
    outputs: [`${name}.txt`],
    version: 1,
    async run(ctx: StageContext) {
      // Test instrumentation, outside the stage contract (a real stage has no way to the data directory's root):
      // the root is two levels above the stage's work directory, DATA_DIR/.work/<stage>.
      const root = join(ctx.workDir, '..', '..');
      appendFileSync(join(root, 'runs.log'), `${name}\n`);
      const inputs = deps.map((d) => readFileSync(ctx.path(`${d}.txt`), 'utf8')).join('|');
      const value = JSON.stringify((ctx.config as unknown as Record<string, unknown>)[param.split('.')[0]!]);
      writeFileSync(ctx.out(`${name}.txt`), `${name}(${inputs};${param}=${value})`);
      if (toyControl.failIn === name) throw new Error(`${name} failed on purpose`);
      if (toyControl.hangIn === name) {
        writeFileSync(join(root, 'hanging'), 'yes');
        await new Promise(() => setInterval(() => {}, 1000));
      }
    },
  };
}

/** The diamond: a(seed) → b(perGenre), a → c(splits), (b, c) → d(image). */
export const TOY_STAGES: readonly Stage[] = [
  toy('a', [], 'seed'),
  toy('b', ['a'], 'perGenre'),
  toy('c', ['a'], 'splits'),
  toy('d', ['b', 'c'], 'image'),
];

/** Stage names in `runs.log`, in run order, then clears it. */
export function takeRuns(dataDir: string): string[] {
  let text = '';
  try {
    text = readFileSync(join(dataDir, 'runs.log'), 'utf8');
  } catch {
    return [];
  }
  writeFileSync(join(dataDir, 'runs.log'), '');
  return text.split('\n').filter(Boolean);
}
