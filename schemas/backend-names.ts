/**
 * The TensorFlow.js backend names, apart from train/backends.ts (which loads TensorFlow.js) so that the config schema
 * (pipeline/config.ts) can declare `train.backend` from the same list without loading it; in schemas/ (below pipeline/)
 * because the config schema needs it and each run records its backend in `models/<run>/config.json`.
 */

/** Fastest first: the order `auto` tries. */
export const BACKEND_ORDER = ['tensorflow-gpu', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
/** A concrete backend choice (not `auto`). */
export type BackendName = (typeof BACKEND_ORDER)[number];
/** What `train.backend` accepts: `auto` or a backend name. */
export const BACKEND_CHOICES = ['auto', ...BACKEND_ORDER] as const;
/** What `train.backend` accepts. */
export type BackendChoice = (typeof BACKEND_CHOICES)[number];
