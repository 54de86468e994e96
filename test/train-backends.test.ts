/** Backend selection (train/backends.ts) when the optional packages (tfjs-node, tfjs-node-gpu, webgpu) are absent. */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';
import { autoSkipReason, describeAdapter, gpuDeviceNodes, selectBackend, vulkanLoaderPresent, type BackendName } from '../train/backends.ts';

test('auto falls back past the missing optional backends to wasm and says why', async () => {
  const lines: string[] = [];
  const sel = await selectBackend('auto', (l) => lines.push(l));
  // Here tfjs-node(-gpu) and webgpu cannot load; on a machine where they do, auto picks them instead.
  assert.equal(sel.name, 'wasm');
  assert.equal(tf.getBackend(), 'wasm');
  assert.deepEqual(sel.skipped.map((s) => s.name), ['tensorflow-gpu', 'tensorflow', 'webgpu']);
  assert.match(sel.skipped[0]!.reason, /@tensorflow\/tfjs-node-gpu did not load/);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /backend wasm .*chosen by auto; skipped tensorflow-gpu \(.+\), tensorflow \(.+\), webgpu \(.+\)/);
});

test('an explicitly requested backend that cannot load is an error saying why; cpu always works', async () => {
  await assert.rejects(selectBackend('tensorflow'), /train\.backend=tensorflow: @tensorflow\/tfjs-node did not load/);
  const cpu = await selectBackend('cpu');
  assert.equal(cpu.name, 'cpu');
  assert.equal(tf.getBackend(), 'cpu');
});

test('auto does not probe webgpu on Linux without a Vulkan loader, and says so; explicit webgpu still tries', async () => {
  const tried: string[] = [];
  let vulkanChecks = 0;
  const activate = async (name: BackendName) => {
    tried.push(name);
    if (name === 'cpu' || name === 'webgpu') return { tfName: 'cpu', details: `fake ${name}` };
    throw new Error(`${name} missing`);
  };
  const noVulkan = () => {
    vulkanChecks++;
    return false;
  };
  const sel = await selectBackend('auto', () => {}, { platform: 'linux', hasVulkanLoader: noVulkan, activate });
  assert.deepEqual(tried, ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu']);
  assert.equal(sel.name, 'cpu');
  assert.deepEqual(sel.skipped.map((s) => s.name), ['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm']);
  assert.match(sel.skipped[2]!.reason, /no Vulkan loader \(libvulkan\.so\.1 not found/);
  assert.equal(vulkanChecks, 1);

  // A Vulkan loader and a GPU device node present, or another platform: auto tries webgpu.
  tried.length = 0;
  assert.equal((await selectBackend('auto', () => {}, { platform: 'linux', hasVulkanLoader: () => true, hasGpuDevice: () => true, activate })).name, 'webgpu');
  assert.equal((await selectBackend('auto', () => {}, { platform: 'darwin', hasVulkanLoader: noVulkan, activate })).name, 'webgpu');
  assert.deepEqual(tried, ['tensorflow-gpu', 'tensorflow', 'webgpu', 'tensorflow-gpu', 'tensorflow', 'webgpu']);

  // A loader but no GPU device node (Mesa's drivers installed on a machine without a GPU): not probed.
  tried.length = 0;
  const noGpu = await selectBackend('auto', () => {}, { platform: 'linux', hasVulkanLoader: () => true, hasGpuDevice: () => false, activate });
  assert.equal(noGpu.name, 'cpu');
  assert.ok(!tried.includes('webgpu'), `webgpu not tried: ${tried}`);
  assert.match(noGpu.skipped.find((s) => s.name === 'webgpu')!.reason, /no GPU device node \(\/dev\/dri\/renderD\*/);

  // Named explicitly, webgpu is tried even without a loader (its failure is then the error).
  tried.length = 0;
  assert.equal((await selectBackend('webgpu', () => {}, { platform: 'linux', hasVulkanLoader: noVulkan, activate })).name, 'webgpu');
  assert.deepEqual(tried, ['webgpu']);
  assert.equal(autoSkipReason('wasm', { platform: 'linux', hasVulkanLoader: noVulkan }), null);
  await selectBackend('cpu');
});

test('gpuDeviceNodes finds DRM render nodes, NVIDIA and WSL2 device nodes, and nothing else', () => {
  const dev = mkdtempSync(join(tmpdir(), 'fake-dev-'));
  try {
    assert.deepEqual(gpuDeviceNodes(dev), [], 'no /dev/dri at all');
    mkdirSync(join(dev, 'dri'));
    for (const f of ['dri/card0', 'dri/renderD128', 'nvidia0', 'nvidiactl', 'nvidia-uvm', 'dxg', 'null', 'tty0']) writeFileSync(join(dev, f), '');
    assert.deepEqual(gpuDeviceNodes(dev).sort(), [join(dev, 'dri', 'renderD128'), join(dev, 'dxg'), join(dev, 'nvidia0')]);
  } finally {
    rmSync(dev, { recursive: true, force: true });
  }
});

test('the Vulkan loader check is a boolean, cached', () => {
  const a = vulkanLoaderPresent();
  assert.equal(typeof a, 'boolean');
  assert.equal(vulkanLoaderPresent(), a);
});

test('describeAdapter: Dawn\'s fallback flag or a software driver\'s name marks a software adapter', () => {
  assert.deepEqual(describeAdapter({ info: { vendor: 'google', architecture: 'swiftshader', description: 'SwiftShader driver 5.0.0', isFallbackAdapter: true } }), {
    text: 'google / swiftshader / SwiftShader driver 5.0.0', software: true,
  });
  assert.equal(describeAdapter({ info: { vendor: 'mesa', description: 'llvmpipe (LLVM 19.1.7, 256 bits)' } }).software, true);
  assert.equal(describeAdapter({ info: { vendor: 'x', description: 'something' }, isFallbackAdapter: true }).software, true);
  const nv = describeAdapter({ info: { vendor: 'nvidia', architecture: 'hopper', device: '', description: 'NVIDIA H200', isFallbackAdapter: false } });
  assert.deepEqual(nv, { text: 'nvidia / hopper / NVIDIA H200', software: false });
  assert.equal(describeAdapter({}).text, 'unnamed adapter');
});
