/** `train.modelParams` is checked at config time (pipeline/config.ts → schemas/model-params.ts), before any stage runs. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, resolveConfig } from '../pipeline/config.ts';
import { fmtLearningRate } from '../util/format.ts';
import { modelParamsProblem } from '../schemas/model-params.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

test('a bad train.modelParams is a config issue at train.modelParams that lists the valid keys', () => {
  assert.throws(
    () => resolveConfig({ train: { modelParams: 'foo=bar' } }),
    (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.equal(e.problems.length, 1);
      assert.match(e.problems[0]!, /^train\.modelParams = "foo=bar": expected keys valid for AlexNet with 5 conv and 2 dense layers, not foo \(valid keys: num_conv_layers, .*lcI_num_filters \(I = 0\.\.4\).*\)$/);
      return true;
    },
  );
  // Through --set, as the CLI does (the value keeps its "=").
  assert.throws(() => loadConfig({ sets: ['train.modelParams=foo=bar'], cwd: ROOT + '/nonexistent' }), /train\.modelParams = "foo=bar": expected .*valid keys/);
  // Malformed strings and bad values, judged against the architecture in the same config.
  assert.throws(() => resolveConfig({ train: { modelParams: 'a=1:oops' } }), /train\.modelParams = "a=1:oops": expected key=value pairs joined by ":".*not "oops" \(valid keys: /);
  assert.throws(() => resolveConfig({ train: { modelParams: 'lc0_mp=yes' } }), /expected lc0_mp to be True or False, not "yes" \(valid keys: /);
  assert.throws(() => resolveConfig({ train: { architecture: 'SingleLayerMlp', modelParams: 'lc0_num_filters=3' } }), /expected keys valid for SingleLayerMlp, not lc0_num_filters \(valid keys: num_units\)/);
  assert.throws(() => resolveConfig({ train: { architecture: 'ConvNet', modelParams: 'num_conv_layers=2:lc0_num_filters=4:ld0_num_units=8' } }), /expected lc1_num_filters \(conv layer 1 of 2 has no default\) \(valid keys: .*I = 0\.\.1/);
  // Good strings pass.
  assert.equal(resolveConfig({ train: { architecture: 'ConvNet', modelParams: 'lc0_num_filters=4:ld0_num_units=8' } }).train.modelParams, 'lc0_num_filters=4:ld0_num_units=8');
  assert.equal(modelParamsProblem('VggNet', 'reduction_factor=8'), null);
});

test('config validation pulls in no TensorFlow.js: the import graph of pipeline/config.ts', () => {
  const seen = new Set<string>();
  const packages = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    for (const m of readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)) {
      const spec = (m[1] ?? m[2])!;
      if (spec.startsWith('.')) visit(join(dirname(file), spec));
      else packages.add(spec);
    }
  };
  visit(join(ROOT, 'pipeline', 'config.ts'));
  assert.ok(seen.has(join(ROOT, 'schemas', 'model-params.ts')));
  assert.deepEqual([...packages].filter((p) => p.startsWith('@tensorflow')), []);
});

test('learning rates are shown with at most 3 significant digits', () => {
  assert.equal(fmtLearningRate(1.0000000000000002e-8), '1e-8');
  assert.equal(fmtLearningRate(0.01), '0.01');
  assert.equal(fmtLearningRate(0.001 / 10), '0.0001');
  assert.equal(fmtLearningRate(0.0012345), '0.00123');
  assert.equal(fmtLearningRate(0.1 + 0.2), '0.3');
});
