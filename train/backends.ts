/**
 * TensorFlow.js backend selection (`train.backend`: auto | tensorflow-gpu | tensorflow | webgpu | wasm | cpu).
 *
 * We use `@tensorflow/tfjs-core` + `@tensorflow/tfjs-layers` and load each backend package on its own:
 * - `tensorflow-gpu`: `@tensorflow/tfjs-node-gpu` (libtensorflow with CUDA; optional dependency),
 * - `tensorflow`: `@tensorflow/tfjs-node` (libtensorflow on the CPU; optional dependency),
 * - `webgpu`: `@tensorflow/tfjs-backend-webgpu` over the `webgpu` npm package (Dawn; optional dependency), which
 *   provides `navigator.gpu` in Node,
 * - `wasm`: `@tensorflow/tfjs-backend-wasm` (XNNPACK; SIMD and threads where the runtime has them), plus our
 *   `Conv2DBackpropFilter` kernel (train/wasm-kernels.ts),
 * - `cpu`: `@tensorflow/tfjs-backend-cpu` (plain JavaScript; always available, slow).
 *
 * `auto` tries them in that order (fastest first) and reports which one it chose and why the faster ones failed.
 * It never picks a software WebGPU adapter (SwiftShader, llvmpipe: Dawn reports them as CPU/fallback adapters),
 * which is slower than wasm; `train.backend=webgpu` uses one when it is all there is (CI exercises the webgpu path
 * that way).
 * The optional packages are imported dynamically, so their absence is no error. On Linux, `auto` does not probe
 * webgpu when no Vulkan loader (`libvulkan.so.1`) is installed ({@link vulkanLoaderPresent}) or no GPU device node
 * exists ({@link gpuDeviceNodes}): Dawn would find no adapter or only a software one, after printing native
 * warnings (Mesa's lavapipe: "error: XDG_RUNTIME_DIR is invalid or not set").
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's Node bundle registers no gradients; tfjs-layers' bundle registers them all (as @tensorflow/tfjs does).
import '@tensorflow/tfjs-layers';
import { registerWasmGradientKernels } from './wasm-kernels.ts';

import { BACKEND_ORDER, type BackendChoice, type BackendName } from '../schemas/backend-names.ts';

export { BACKEND_ORDER, type BackendChoice, type BackendName };

/** The outcome of {@link selectBackend}. */
export interface BackendSelection {
  /** The backend in use. */
  name: BackendName;
  /** The tfjs backend name registered with the engine (`tensorflow`, `webgpu`, `wasm`, `cpu`). */
  tfName: string;
  /** Why faster backends were not used: one entry per backend tried before, with the reason. */
  skipped: { name: BackendName; reason: string }[];
  /** Details of the chosen backend (e.g. wasm SIMD/threads). */
  details: string;
}

const require = createRequire(import.meta.url);

/** Dynamically imports a module by name, hidden from bundlers/type checking (optional dependencies). */
async function importOptional(name: string): Promise<unknown> {
  return import(/* @vite-ignore */ name);
}

/**
 * Why an installed tfjs-node(-gpu) package cannot work, or null: its install script downloads libtensorflow and
 * builds `lib/napi-v<N>/tfjs_binding.node` (package.json `binary.module_path`); offline, or with install scripts
 * blocked, the package is there without it.
 */
function missingNativeBinding(pkg: string): string | null {
  let dir: string;
  try {
    dir = dirname(createRequire(import.meta.url).resolve(`${pkg}/package.json`));
  } catch {
    return null; // not installed: the import reports it
  }
  const lib = join(dir, 'lib');
  const found = existsSync(lib) && readdirSync(lib).some((d) => d.startsWith('napi-v') && existsSync(join(lib, d, 'tfjs_binding.node')));
  return found ? null : `installed without its native binding (${join(dir, 'lib', 'napi-v*', 'tfjs_binding.node')}); its install script downloads libtensorflow, which failed or was skipped`;
}

function errText(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split('\n')[0]!.slice(0, 300);
}

/**
 * Tries to activate one backend.
 * @returns details on success.
 * @throws Error saying why it could not load (package missing, native library or driver missing, …).
 */
async function activate(name: BackendName, auto = false): Promise<{ tfName: string; details: string }> {
  switch (name) {
    case 'tensorflow-gpu':
    case 'tensorflow': {
      const pkg = name === 'tensorflow-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
      // Importing the package without its native binding registers ~300 kernels before it fails (and prints
      // "kernel … already registered" for each when both packages are tried), so check for the binding first.
      const missing = missingNativeBinding(pkg);
      if (missing) throw new Error(`${pkg} did not load: ${missing}`);
      try {
        await importOptional(pkg);
      } catch (e) {
        throw new Error(`${pkg} did not load: ${errText(e)}`);
      }
      if (!(await tf.setBackend('tensorflow'))) throw new Error(`${pkg} loaded but the "tensorflow" backend did not initialise`);
      return { tfName: 'tensorflow', details: pkg };
    }
    case 'webgpu': {
      const g = globalThis as { navigator?: { gpu?: unknown } };
      if (!g.navigator?.gpu) {
        let mod: { create?: (opts: string[]) => unknown; globals?: Record<string, unknown> };
        try {
          mod = (await importOptional('webgpu')) as typeof mod;
        } catch (e) {
          throw new Error(`the "webgpu" package (Dawn) did not load: ${errText(e)}`);
        }
        if (!mod.create) throw new Error('the "webgpu" package has no create()');
        if (mod.globals) Object.assign(globalThis, mod.globals);
        const gpu = mod.create([]);
        Object.defineProperty(globalThis, 'navigator', { value: { ...(g.navigator ?? {}), gpu }, configurable: true, writable: true });
      }
      const gpu = (globalThis as { navigator?: { gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> } } }).navigator?.gpu;
      let adapter: GpuAdapterLike | null | undefined = null;
      try {
        adapter = await gpu?.requestAdapter();
      } catch (e) {
        throw new Error(`WebGPU requestAdapter failed: ${errText(e)}`);
      }
      if (!adapter) throw new Error('no WebGPU adapter (Dawn found no usable GPU: Vulkan, Metal or D3D12 driver missing?)');
      const info = describeAdapter(adapter);
      if (info.software && auto) {
        throw new Error(`only a software adapter (${info.text}), which Dawn reports as a CPU/fallback adapter: slower than wasm, so auto does not use it`);
      }
      try {
        await importOptional('@tensorflow/tfjs-backend-webgpu');
      } catch (e) {
        throw new Error(`@tensorflow/tfjs-backend-webgpu did not load: ${errText(e)}`);
      }
      let ok = false;
      try {
        ok = await tf.setBackend('webgpu');
      } catch (e) {
        throw new Error(`webgpu backend did not initialise: ${errText(e)}`);
      }
      if (!ok) throw new Error('webgpu backend did not initialise (no WebGPU adapter)');
      return { tfName: 'webgpu', details: `Dawn via the webgpu package, adapter ${info.text}${info.software ? ' (software, on the CPU)' : ''}` };
    }
    case 'wasm': {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      const dist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + '/';
      wasm.setWasmPaths(dist);
      registerWasmGradientKernels();
      if (!(await tf.setBackend('wasm'))) throw new Error('wasm backend did not initialise');
      const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
      const threads = await tf.env().getAsync('WASM_HAS_MULTITHREAD_SUPPORT');
      return { tfName: 'wasm', details: `SIMD ${simd ? 'on' : 'off'}, threads ${threads ? wasm.getThreadsCount() : 'off (1)'}` };
    }
    case 'cpu': {
      if (!(await tf.setBackend('cpu'))) throw new Error('cpu backend did not initialise');
      return { tfName: 'cpu', details: 'plain JavaScript' };
    }
  }
}

/** What we read of a WebGPU adapter (the `webgpu` package's GPUAdapter). */
export interface GpuAdapterLike {
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
  isFallbackAdapter?: boolean;
}

/** Drivers that run on the CPU (Dawn reports SwiftShader as a fallback adapter; the names catch the others). */
const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|softpipe|microsoft basic render|\bwarp\b/i;

/**
 * Names an adapter and says whether it is a software (CPU) one: Dawn's `isFallbackAdapter` (its adapter type
 * CPU) or a known software driver's name (SwiftShader, llvmpipe/lavapipe, WARP).
 */
export function describeAdapter(adapter: GpuAdapterLike): { text: string; software: boolean } {
  const i = adapter.info ?? {};
  const parts = [i.vendor, i.architecture, i.device, i.description].filter((x): x is string => !!x);
  const text = [...new Set(parts)].join(' / ') || 'unnamed adapter';
  const software = i.isFallbackAdapter === true || adapter.isFallbackAdapter === true || SOFTWARE_ADAPTER.test(text);
  return { text, software };
}

/** The Vulkan loader's soname: what Dawn's Vulkan backend dlopens on Linux (BackendVk.cpp). */
const VULKAN_LOADER = 'libvulkan.so.1';

/** Directories where distributions install `libvulkan.so.1` (Debian/Ubuntu multiarch, Fedora/Arch, /usr/local). */
const VULKAN_DIRS = [
  '/usr/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu', '/lib/x86_64-linux-gnu', '/lib/aarch64-linux-gnu',
  '/usr/lib64', '/lib64', '/usr/lib', '/lib', '/usr/local/lib', '/usr/local/lib64',
];

let vulkanCache: boolean | undefined;

/**
 * Whether a Vulkan loader (`libvulkan.so.1`) can be found on this Linux machine: in `LD_LIBRARY_PATH`, the usual
 * library directories, or the dynamic linker cache (`ldconfig -p`). Checked once per process. Always true off Linux
 * (Dawn uses Metal or D3D12 there).
 */
export function vulkanLoaderPresent(): boolean {
  if (vulkanCache !== undefined) return vulkanCache;
  if (process.platform !== 'linux') return (vulkanCache = true);
  const dirs = [...(process.env.LD_LIBRARY_PATH ?? '').split(delimiter).filter(Boolean), ...VULKAN_DIRS];
  if (dirs.some((d) => existsSync(join(d, VULKAN_LOADER)))) return (vulkanCache = true);
  for (const ldconfig of ['ldconfig', '/sbin/ldconfig', '/usr/sbin/ldconfig']) {
    try {
      const out = execFileSync(ldconfig, ['-p'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
      return (vulkanCache = out.includes(VULKAN_LOADER));
    } catch {
      // Not on PATH or not runnable: try the next location.
    }
  }
  return (vulkanCache = false);
}

/**
 * The GPU device nodes of this Linux machine, through which every hardware Vulkan driver reaches its GPU: DRM render
 * nodes (`/dev/dri/renderD*`: Mesa's radv, anv, nvk, and AMD's own), NVIDIA's (`/dev/nvidia0`, … from its proprietary
 * driver, also what containers with GPUs get) and WSL2's (`/dev/dxg`, Mesa's dozen over D3D12). Empty: only a software
 * Vulkan driver (lavapipe, SwiftShader) could answer.
 */
export function gpuDeviceNodes(dev = '/dev'): string[] {
  const found: string[] = [];
  const list = (dir: string) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  for (const n of list(join(dev, 'dri'))) if (/^renderD\d+$/.test(n)) found.push(join(dev, 'dri', n));
  for (const n of list(dev)) if (/^nvidia\d+$/.test(n) || n === 'dxg') found.push(join(dev, n));
  return found;
}

/** Options of {@link selectBackend}. */
export interface SelectBackendOptions {
  /** Whether a Vulkan loader is installed (default {@link vulkanLoaderPresent}); injectable for tests. */
  hasVulkanLoader?: () => boolean;
  /** Whether a GPU device node exists (default: {@link gpuDeviceNodes} finds one); injectable for tests. */
  hasGpuDevice?: () => boolean;
  /** Platform (default `process.platform`); injectable for tests. */
  platform?: NodeJS.Platform;
  /** Activates one backend (default: the real loader); injectable for tests. */
  activate?: (name: BackendName, auto: boolean) => Promise<{ tfName: string; details: string }>;
}

/**
 * Why `auto` should not even try a backend on this machine, or null to try it. Only webgpu on Linux is skipped this
 * way: without a Vulkan loader Dawn prints a native warning (with a stack line from its CI machine) and finds no
 * adapter; without a GPU device node it could find only a software adapter, which auto does not use, after Mesa's
 * lavapipe printed "error: XDG_RUNTIME_DIR is invalid or not set" on a headless machine.
 */
export function autoSkipReason(name: BackendName, opts: SelectBackendOptions = {}): string | null {
  const platform = opts.platform ?? process.platform;
  if (name !== 'webgpu' || platform !== 'linux') return null;
  if (!(opts.hasVulkanLoader ?? vulkanLoaderPresent)()) {
    return `no Vulkan loader (${VULKAN_LOADER} not found in the library directories or ldconfig -p), which Dawn needs on Linux; not probed`;
  }
  if (!(opts.hasGpuDevice ?? (() => gpuDeviceNodes().length > 0))()) {
    return 'no GPU device node (/dev/dri/renderD*, /dev/nvidia*, /dev/dxg): only a software Vulkan driver could answer, which auto does not use; not probed';
  }
  return null;
}

/**
 * Activates the requested backend, or for `auto` the fastest one that loads.
 * @param log receives one line naming the chosen backend and why faster ones were skipped.
 * @param opts injectable checks (tests); by default the real ones.
 * @throws Error when an explicitly requested backend cannot load (the message says why), or none loads.
 */
export async function selectBackend(choice: BackendChoice, log: (line: string) => void = () => {}, opts: SelectBackendOptions = {}): Promise<BackendSelection> {
  const candidates = choice === 'auto' ? BACKEND_ORDER : [choice];
  const skipped: BackendSelection['skipped'] = [];
  const tryActivate = opts.activate ?? activate;
  for (const name of candidates) {
    const skip = choice === 'auto' ? autoSkipReason(name, opts) : null;
    if (skip) {
      skipped.push({ name, reason: skip });
      continue;
    }
    try {
      const { tfName, details } = await tryActivate(name, choice === 'auto');
      await tf.ready();
      const why = skipped.length ? `; skipped ${skipped.map((s) => `${s.name} (${s.reason})`).join(', ')}` : '';
      log(`backend ${name} (${details})${choice === 'auto' ? ' chosen by auto' : ''}${why}`);
      return { name, tfName, skipped, details };
    } catch (e) {
      if (choice !== 'auto') throw new Error(`train.backend=${name}: ${errText(e)}`);
      skipped.push({ name, reason: errText(e) });
    }
  }
  throw new Error(`no TensorFlow.js backend could load: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}
