/**
 * A stage sees only the settings it declares, and its declared `params` alone decide its staleness. Generated from
 * the configuration schema: every leaf key of ConfigSchema is changed in turn to another valid value, and exactly the
 * stages that declare it in `params` (and their dependants) must go stale — no other. The stages here are the real
 * declarations (stages/index.ts) with stand-in work that writes each declared output and reads its declared keys
 * through `ctx.config`; that a real stage module reads only what it declares is checked by its own tests, which run
 * it through the same context (pipeline/context.ts).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { z } from 'zod';
import { ConfigSchema, resolveConfig, type Config } from '../pipeline/config.ts';
import { canonicalJson, defaultConfig, getPath, pickParams } from '../pipeline/config-core.ts';
import { configView } from '../pipeline/config-view.ts';
import { declaredKeys } from '../pipeline/context.ts';
import { make, plan } from '../pipeline/runner.ts';
import { resolveList, type Stage, type StageContext } from '../pipeline/stage.ts';
import { memoryLogger } from '../util/log.ts';
import { STAGES } from '../stages/index.ts';

/** A leaf of the schema: its dotted key and the values of the types it accepts that a test can try. */
interface Leaf {
  key: string;
  /** Enum options and literals the leaf's schema names (other values are derived from the default). */
  named: unknown[];
}

type AnySchema = z.ZodType & { _zod: { def: { type: string; innerType?: AnySchema; in?: AnySchema; shape?: Record<string, AnySchema>; options?: AnySchema[]; entries?: Record<string, unknown>; values?: unknown[] } } };

/** Strips defaults, optional/nullable and transforms, down to the schema that decides the value's type. */
function unwrap(s: AnySchema): AnySchema {
  let t = s;
  for (;;) {
    const d = t._zod.def;
    if (d.innerType) t = d.innerType;
    else if (d.type === 'pipe' && d.in) t = d.in;
    else return t;
  }
}

/** The enum options and literal values a schema (or any member of a union) names. */
function namedValues(s: AnySchema): unknown[] {
  const t = unwrap(s);
  const d = t._zod.def;
  if (d.type === 'enum') return Object.values(d.entries ?? {});
  if (d.type === 'literal') return [...(d.values ?? [])];
  if (d.type === 'union') return (d.options ?? []).flatMap(namedValues);
  return [];
}

/** Every leaf key of an object schema (a key whose value is not itself an object), dotted, in schema order. */
function leaves(s: AnySchema, prefix = ''): Leaf[] {
  const t = unwrap(s);
  if (t._zod.def.type !== 'object') return [{ key: prefix, named: namedValues(s) }];
  return Object.entries(t._zod.def.shape ?? {}).flatMap(([k, v]) => leaves(v, prefix ? `${prefix}.${k}` : k));
}

/** Values to try for a leaf whose default is `d`: other named options, then values derived from the default. */
function candidates(leaf: Leaf, d: unknown): unknown[] {
  const out: unknown[] = leaf.named.filter((v) => v !== d);
  if (typeof d === 'boolean') out.push(!d);
  if (typeof d === 'number') out.push(d + 1, d * 2, d - 1, d / 2, 0.5);
  if (typeof d === 'string') out.push(`${d}x`, 'x');
  if (Array.isArray(d)) out.push(d.slice(0, -1));
  if (d === null) out.push(1, 'x');
  return out;
}

/**
 * Changes that must move two keys at once, for leaves that no valid configuration changes alone (the split ratios
 * add up to 1), and values the generic candidates cannot guess (a valid `train.modelParams` string).
 */
const SPECIAL: Record<string, Record<string, unknown>> = {
  'splits.train': { 'splits.train': 0.7, 'splits.test': 0.2 },
  'splits.validation': { 'splits.validation': 0.2, 'splits.test': 0 },
  'splits.test': { 'splits.test': 0.2, 'splits.train': 0.7 },
  'train.modelParams': { 'train.modelParams': 'num_conv_layers=2' },
  'pretrained.sha256': { 'pretrained.sha256': 'a'.repeat(64) },
  'pretrained.mean': { 'pretrained.mean': [1, 2, 3] },
  'pretrained.std': { 'pretrained.std': [1, 2, 3] },
};

/** A raw configuration that sets each dotted key of `changes`. */
function rawWith(changes: Record<string, unknown>): Record<string, unknown> {
  const raw: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(changes)) {
    const path = key.split('.');
    let cur = raw;
    for (const seg of path.slice(0, -1)) cur = (cur[seg] ??= {}) as Record<string, unknown>;
    cur[path[path.length - 1]!] = value;
  }
  return raw;
}

/** The first valid change of `leaf` (a configuration that differs from the defaults there), with the keys it changes. */
function changeOf(leaf: Leaf, defaults: Config): { config: Config; changed: string[] } {
  const tries = SPECIAL[leaf.key] ? [SPECIAL[leaf.key]!] : candidates(leaf, getPath(defaults, leaf.key.split('.'))).map((v) => ({ [leaf.key]: v }));
  for (const changes of tries) {
    let config: Config;
    try {
      config = resolveConfig(rawWith(changes));
    } catch {
      continue;
    }
    const changed = Object.keys(changes).filter((k) => canonicalJson(getPath(config, k.split('.'))) !== canonicalJson(getPath(defaults, k.split('.'))));
    if (changed.includes(leaf.key)) return { config, changed };
  }
  throw new Error(`no valid change of config key ${leaf.key} found: add one to SPECIAL`);
}

/** Whether `stage` declares `key` in `kind` for `config`: the key itself, or a section holding it (`eval` holds `eval.crops`). */
function declares(stage: Stage, key: string, config: Config, kind: 'params' | 'tuning'): boolean {
  const list = kind === 'params' ? resolveList(stage.params, config) : (stage.tuning ?? []);
  return list.some((d) => key === d || key.startsWith(`${d}.`));
}

/** The stages that declare one of `keys` as a parameter (under either configuration), and every stage depending on them. */
function expectedStale(keys: readonly string[], before: Config, afterChange: Config): Set<string> {
  const out = new Set(STAGES.filter((s) => keys.some((k) => declares(s, k, before, 'params') || declares(s, k, afterChange, 'params'))).map((s) => s.name));
  for (const s of STAGES) if (s.deps.some((d) => out.has(d))) out.add(s.name);
  return out;
}

/** Stand-in work for a declared stage: reads its declared keys through `ctx.config`, writes each output from them. */
async function standIn(stage: Stage, ctx: StageContext): Promise<void> {
  const params = resolveList(stage.params, ctx.config);
  const text = `${stage.name} ${canonicalJson(pickParams(ctx.config, params))} ${canonicalJson(pickParams(ctx.config, stage.tuning ?? []))}\n`;
  const write = (path: string) => {
    if (basename(path).includes('.')) writeFileSync(path, text);
    else {
      mkdirSync(path, { recursive: true });
      writeFileSync(join(path, 'content.txt'), text);
    }
  };
  for (const rel of resolveList(stage.outputs, ctx.config)) write(ctx.out(rel));
  for (const rel of resolveList(stage.inPlaceOutputs, ctx.config)) write(ctx.path(rel));
}

/**
 * Calls each config-dependent list of a declaration (inputs, outputs, in-place outputs, extra inputs) with the stage's
 * view of `config`: one that reads an undeclared key throws. (`skipWhen` is left out: it is the runner's question
 * whether the stage is needed at all, e.g. `discover` when `select.fromManifest` is set.)
 */
function readsOnlyDeclared(stage: Stage, config: Config): void {
  const view = configView(config, declaredKeys(stage, config), stage.name);
  for (const list of [stage.inputs, stage.outputs, stage.inPlaceOutputs, stage.extraInputs]) resolveList(list, view);
}

/** Every stage as a target: `all` (the report) leaves out targets no other stage depends on, such as `search`. */
const EVERY_TARGET = STAGES.map((s) => s.name);

const standInStages: Stage[] = STAGES.map((s) => ({ ...s, run: (ctx: StageContext) => standIn(s, ctx) }));

describe('a stage sees only the settings it declares', () => {
  it('reading a declared key gives its value; a declared section allows its keys, a declared leaf only itself', () => {
    const config = defaultConfig();
    const view = configView(config, ['seed', 'eval', 'train.epochs', 'crawl.backoff'], 'demo');
    assert.equal(view.seed, 0);
    assert.equal(view.eval.crops, config.eval.crops);
    assert.equal(view.train.epochs, config.train.epochs);
    assert.deepEqual(view.crawl.backoff, config.crawl.backoff);
    assert.throws(() => view.train.crop, /stage demo: reads config key "train\.crop", which it does not declare \(declared: seed, eval, train\.epochs, crawl\.backoff\)/);
    assert.throws(() => view.perGenre, /stage demo: reads config key "perGenre"/);
    assert.throws(() => view.crawl.maxRetries, /"crawl\.maxRetries"/);
    assert.throws(() => 'crop' in view.train, /"train\.crop"/);
    // What serialising or spreading the view sees: the declared keys, nothing else.
    assert.deepEqual(JSON.parse(JSON.stringify(view)), { seed: 0, eval: config.eval, train: { epochs: config.train.epochs }, crawl: { backoff: config.crawl.backoff } });
    assert.deepEqual(Object.keys({ ...view.train }), ['epochs']);
  });

  it('the view is read-only and holds copies: the configuration it was made from cannot change through it', () => {
    const config = defaultConfig();
    const view = configView(config, ['train', 'genres'], 'demo');
    assert.throws(() => {
      (view.train as { epochs: number }).epochs = 1;
    }, TypeError);
    assert.throws(() => {
      (view as { seed: number }).seed = 1;
    }, /read-only \(it tried to change "seed"\)/);
    assert.throws(() => (view.genres as string[]).push('x'), TypeError);
    assert.equal(config.train.epochs, defaultConfig().train.epochs);
  });

  it('the whole configuration, declared as its top-level keys (the report), reads as the configuration', () => {
    const config = defaultConfig();
    assert.deepEqual(JSON.parse(JSON.stringify(configView(config, Object.keys(config), 'report'))), config);
  });

  it('a declaration whose paths depend on a key it does not declare fails the check the schema-wide test runs', () => {
    const evaluate = STAGES.find((s) => s.name === 'evaluate')!;
    assert.doesNotThrow(() => readsOnlyDeclared(evaluate, defaultConfig()));
    assert.throws(() => readsOnlyDeclared({ ...evaluate, params: ['eval'] }, defaultConfig()), /stage evaluate: reads config key "train\.run"/);
  });

  it('in use too: a stage whose declared outputs depend on a key it does not declare fails when it runs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'covers-undeclared-'));
    try {
      // `split` writing to a path named after perGenre, which it does not declare.
      const sneaky = standInStages.map((s) => (s.name === 'split' ? { ...s, outputs: (c: Config) => [`splits-${c.perGenre}.arrow`] } : s));
      await assert.rejects(
        make({ targets: ['split'], config: defaultConfig(), dataDir: dir, stages: sneaky, log: memoryLogger() }),
        /stage split: reads config key "perGenre", which it does not declare/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a stage that reads a key it does not declare fails, in `make`, naming the stage and the key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'covers-undeclared-'));
    try {
      // `split` declares genres, seed and splits; this stand-in also reads perGenre.
      const sneaky = standInStages.map((s) => (s.name === 'split' ? { ...s, run: async (ctx: StageContext) => void ctx.config.perGenre } : s));
      await assert.rejects(
        make({ targets: ['split'], config: defaultConfig(), dataDir: dir, stages: sneaky, log: memoryLogger() }),
        /stage split: reads config key "perGenre", which it does not declare \(declared: genres, seed, splits[,)]/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('staleness follows the declared params, for every key of the configuration schema', () => {
  let dir: string;
  const defaults = defaultConfig();
  const all = leaves(ConfigSchema as unknown as AnySchema);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'covers-params-'));
    await make({ targets: EVERY_TARGET, config: defaults, dataDir: dir, stages: standInStages, log: memoryLogger() });
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('the schema walk finds the leaves (sections are walked into, not taken whole)', () => {
    const keys = all.map((l) => l.key);
    for (const k of ['genres', 'seed', 'splits.train', 'crawl.backoff.initialMs', 'train.adam.beta1', 'train.plateau.factor', 'eval.crops', 'report.contactSheet']) assert.ok(keys.includes(k), k);
    assert.ok(!keys.includes('train') && !keys.includes('crawl.backoff'));
    assert.equal(new Set(keys).size, keys.length);
  });

  it('every key is read by some stage besides the report (declared in params or tuning), so none is dead', () => {
    const unread = all.map((l) => l.key).filter((k) => !k.startsWith('report.') && !STAGES.some((s) => s.name !== 'report' && (declares(s, k, defaults, 'params') || declares(s, k, defaults, 'tuning'))));
    assert.deepEqual(unread, []);
  });

  it('with the defaults everything built is fresh', async () => {
    const steps = await plan({ targets: EVERY_TARGET, config: defaults, dataDir: dir, stages: standInStages });
    assert.deepEqual(steps.filter((s) => s.willRun).map((s) => s.stage.name), []);
  });

  for (const leaf of all) {
    it(`changing ${leaf.key} makes exactly the stages declaring it, and their dependants, stale`, async () => {
      const { config, changed } = changeOf(leaf, defaults);
      let manifest: string | null = null;
      if (config.select.fromManifest !== null) {
        // select reads the manifest file (an extra input): give it one.
        manifest = join(dir, '..', `${basename(dir)}-manifest.tsv`);
        writeFileSync(manifest, 'item_id\tgenre\n');
        config.select.fromManifest = manifest;
      }
      try {
        const steps = await plan({ targets: EVERY_TARGET, config, dataDir: dir, stages: standInStages });
        const stale = steps.filter((s) => s.willRun).map((s) => s.stage.name);
        const expected = [...expectedStale(changed, defaults, config)].filter((n) => !steps.find((s) => s.stage.name === n)?.stage.skipWhen?.(config));
        assert.deepEqual(stale, STAGES.map((s) => s.name).filter((n) => expected.includes(n)), `${changed.join(' + ')} → ${canonicalJson(changed.map((k) => getPath(config, k.split('.'))))}`);
        // A stage that does not rerun is fresh (or skipped for this configuration), never stale for another reason.
        for (const s of steps.filter((x) => !x.willRun)) assert.ok(s.state.kind === 'fresh' || s.state.kind === 'skipped', `${s.stage.name}: ${canonicalJson(s.state)}`);
        // What a declaration derives from the configuration (paths read and written) comes from keys it declares.
        for (const s of STAGES) readsOnlyDeclared(s, config);
      } finally {
        if (manifest) rmSync(manifest, { force: true });
      }
    });
  }
});
