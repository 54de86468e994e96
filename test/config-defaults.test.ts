/**
 * pipeline/config-defaults.ts is generated from the one config schema (pipeline/config.ts) so that the CLI's fast
 * paths (`covers --help`, `covers status` without a config file or --set) need not load zod: it must be exactly what
 * the schema gives now, and the lazy loader must give what loadConfig gives.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { configDefaultsSource, ConfigError, loadConfig, resolveConfig } from '../pipeline/config.ts';
import { defaultConfig, loadConfigLazily, onlyDefaults } from '../pipeline/config-core.ts';

describe('generated config defaults', () => {
  it('pipeline/config-defaults.ts is current (else run npm run config-defaults)', () => {
    const committed = readFileSync(join(import.meta.dirname, '..', 'pipeline', 'config-defaults.ts'), 'utf8');
    assert.equal(committed, configDefaultsSource(), 'pipeline/config-defaults.ts is stale: run `npm run config-defaults`');
  });

  it('defaultConfig() is what the schema resolves {} to, key order included, and a fresh copy each time', () => {
    const fromSchema = resolveConfig({}, 'defaults');
    assert.deepEqual(defaultConfig(), fromSchema);
    assert.equal(JSON.stringify(defaultConfig()), JSON.stringify(fromSchema));
    const a = defaultConfig();
    a.genres.push('x');
    a.train.plateau.factor = 0.5;
    assert.deepEqual(defaultConfig(), fromSchema);
  });

  it('loadConfigLazily gives what loadConfig gives: defaults, a config file, --set, and the same errors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'covers-config-'));
    try {
      assert.equal(onlyDefaults({ cwd: dir }), true);
      assert.deepEqual(await loadConfigLazily({ cwd: dir }), loadConfig({ cwd: dir }));
      assert.equal(onlyDefaults({ cwd: dir, sets: ['seed=3'] }), false);
      assert.deepEqual(await loadConfigLazily({ cwd: dir, sets: ['seed=3'] }), loadConfig({ cwd: dir, sets: ['seed=3'] }));
      assert.equal((await loadConfigLazily({ cwd: dir, sets: ['seed=3'] })).seed, 3);
      await assert.rejects(loadConfigLazily({ cwd: dir, sets: ['seed=-1'] }), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.throws(() => loadConfig({ cwd: dir, sets: ['seed=-1'] }), { message: e.message });
        return true;
      });
      writeFileSync(join(dir, 'covers.config.json'), JSON.stringify({ perGenre: 7 }));
      assert.equal(onlyDefaults({ cwd: dir }), false);
      assert.equal((await loadConfigLazily({ cwd: dir })).perGenre, 7);
      assert.equal(onlyDefaults({ cwd: dir, configPath: join(dir, 'covers.config.json') }), false);
      await assert.rejects(loadConfigLazily({ cwd: dir, configPath: join(dir, 'missing.json') }), /config file .*missing\.json: not found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
