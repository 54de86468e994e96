/**
 * Benchmarks that time a command on a built data directory (bench/cli.bench.ts, bench/stage-train.bench.ts) build
 * it cheaply: a small placeholder file at each declared output a stage has not written, and the lock entry the runner
 * would record for it, so the runner judges those stages fresh without running them.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { hashJson, pickParams, type Config } from '../pipeline/config-core.ts';
import { combineOutputHashes, Hasher, writeLock, type LockFile, type OutputHash } from '../pipeline/lock.ts';
import { allOutputs, hashInputs, plan } from '../pipeline/runner.ts';
import { resolveList, type Stage } from '../pipeline/stage.ts';
import { STAGES } from '../stages/index.ts';

/** The declared outputs that are folders (a placeholder goes inside them as `part-0`); by default, names without an extension. */
export type IsFolderOutput = (rel: string) => boolean;

const noExtension: IsFolderOutput = (rel) => !/\.[a-z]+$/.test(rel);

/**
 * Records `stages` (in order: each one's deps before it) as fresh in `dir`'s lock under `config`, writing a placeholder
 * (its own relative path as text) at each declared output that does not exist yet; outputs already there (e.g. real
 * shards) are hashed as they are.
 * @throws Error when the runner, planning `targets`, then sees any stage other than those in `rebuilt` not fresh.
 */
export async function recordFresh(
  dir: string, config: Config, stages: readonly Stage[], targets: string[], rebuilt: readonly string[] = [], isFolder: IsFolderOutput = noExtension,
): Promise<void> {
  const hasher = new Hasher(dir);
  const lock: LockFile = { lockVersion: 1, stages: {} };
  for (const stage of stages) {
    for (const rel of allOutputs(stage, config)) {
      if (existsSync(join(dir, rel))) continue;
      const file = isFolder(rel) ? join(dir, rel, 'part-0') : join(dir, rel);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, `${rel}\n`);
    }
    const outputs: Record<string, OutputHash> = {};
    for (const rel of allOutputs(stage, config)) outputs[rel] = (await hasher.output(rel))!;
    const params = pickParams(config, resolveList(stage.params, config));
    lock.stages[stage.name] = {
      version: stage.version, params, paramsHash: hashJson(params),
      deps: Object.fromEntries(resolveList(stage.deps, config).map((d) => [d, lock.stages[d]!.outputsHash])),
      extraInputs: {}, inputs: await hashInputs(stage, config, lock, hasher),
      outputs, outputsHash: combineOutputHashes(outputs),
      startedAt: new Date().toISOString(), finishedAt: new Date().toISOString(), durationMs: 1,
    };
    writeLock(dir, lock);
  }
  hasher.save();
  const steps = await plan({ targets, config, dataDir: dir, stages: STAGES });
  const stale = steps.filter((s) => !rebuilt.includes(s.stage.name) && s.state.kind !== 'fresh');
  if (stale.length) throw new Error(`synthetic data directory not fresh: ${stale.map((s) => `${s.stage.name} ${JSON.stringify(s.state)}`).join('; ')}`);
}
