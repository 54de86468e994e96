/**
 * Pipeline configuration: one zod schema for every key, its defaults (which reproduce the 2015 study
 * "Learning about deep learning through album cover classification"), loading from `covers.config.json`,
 * `--set key=value` overrides, and error messages that name the key path, the value and what was expected.
 *
 * Each stage declares the dotted keys it reads (`Stage.params`); only those keys decide whether it is stale.
 *
 * zod takes a fifth of a second to load, so what needs no validation lives in pipeline/config-core.ts (re-exported
 * here): `covers --help` and `covers status` without a config file or `--set` never load this module.
 */
import { existsSync, readFileSync } from 'node:fs';
import { z } from 'zod';
import { isPlainObject } from '../util/shape.ts';
import { ConfigError, DEFAULT_CONFIG_FILE, getPath, type LoadConfigOptions } from './config-base.ts';
// What needs neither schema nor defaults (errors, hashing and picking of params). The defaults without zod
// (defaultConfig) are in pipeline/config-core.ts, which takes only the types from here: no import circle.
export { canonicalJson, ConfigError, DEFAULT_CONFIG_FILE, getPath, hashJson, pickParams, type LoadConfigOptions } from './config-base.ts';
// Configuration vocabulary below pipeline/ (schemas/): the architectures and train.modelParams grammar, the backend
// names, the schedules and their defaults.
import { ARCHITECTURES, modelParamsProblem } from '../schemas/model-params.ts';
import { BACKEND_CHOICES } from '../schemas/backend-names.ts';
import { EXPORT_FORMATS } from '../schemas/export/layout.ts';
import { DEFAULT_COSINE, DEFAULT_PLATEAU, SCHEDULES } from '../schemas/schedule-names.ts';
import { FEATURE_ENGINE_NAMES, INPUT_PRESET_NAMES } from '../schemas/pretrained-names.ts';

/** The ten Bandcamp genre tags (norm names) of the 2015 study, in its order. */
const STUDY_GENRES = [
  'ambient', 'dubstep', 'folk', 'hip-hop-rap', 'jazz', 'metal', 'pop', 'punk', 'rock', 'soul',
] as const;

/**
 * Bandcamp image format ids with a fixed meaning, from `client_template_globals.image_formats` on an album page
 * (`test/fixtures/bandcamp/DERIVED_image_formats__client_template_globals__2026-05-25.json`,
 * docs/BANDCAMP.md#image-formats): 0 original, 1 fullsize, 2 350×350, 3 100×100, 4 300×300, 5 700×700, 7 150×150,
 * 9 210×210, 10 fit within 1200, 13 380, 14 368, 16 700×700.
 */
const BANDCAMP_IMAGE_FORMATS = [0, 1, 2, 3, 4, 5, 7, 9, 10, 13, 14, 16] as const;

/** 1 MiB in bytes. */
const MiB = 1024 * 1024;
/** Default of `dedupe.maxDistance`, bits: chosen by looking at the real covers' groups (docs/RESULTS.md, near-duplicates). */
const DEDUPE_MAX_DISTANCE = 10;

/** A Bandcamp tag norm name: lowercase slug, e.g. `hip-hop-rap` (docs/BANDCAMP.md#tag-norm-names). */
const normName = z
  .string()
  .regex(/^[\p{Ll}\p{Lo}\p{N}]+(?:-[\p{Ll}\p{Lo}\p{N}]+)*$/u, 'a Bandcamp tag norm name such as "hip-hop-rap" (lowercase, dashes)');

const ratio = z.number().min(0).max(1);

const httpOrigin = z
  .string()
  .refine((u) => /^https?:\/\/[^/\s?#]+\/?$/.test(u) && URL.canParse(u), 'an http(s) origin such as "https://bandcamp.com" (scheme and host, no path)')
  .transform((u) => u.replace(/\/$/, ''));

/** Exponential backoff with jitter; delays in ms. */
const backoff = z
  .object({
    initialMs: z.number().int().positive().default(3000),
    maxMs: z.number().int().positive().default(3_600_000),
    factor: z.number().min(1).default(2),
  })
  .strict()
  .prefault({});

/** The configuration schema. `ConfigInput` is what a user writes; `Config` is the resolved, defaulted result. */
export const ConfigSchema = z
  .object({
    /** Genre tags (Bandcamp norm names); an album is kept only if it matches exactly one of them. */
    genres: z.array(normName).min(2).default([...STUDY_GENRES]),
    /** Images per genre in the final dataset (the study: 1,000). */
    perGenre: z.number().int().positive().default(1000),
    /** Seed of every random choice (selection order, split, shuffles, training). */
    seed: z.number().int().nonnegative().default(0),
    /** Split ratios; must add up to 1. */
    splits: z
      .object({ train: ratio.default(0.8), validation: ratio.default(0.1), test: ratio.default(0.1) })
      .strict()
      .prefault({})
      .superRefine((s, ctx) => {
        const sum = s.train + s.validation + s.test;
        if (Math.abs(sum - 1) > 1e-9) {
          ctx.addIssue({ code: 'custom', message: `ratios that add up to 1 (train ${s.train} + validation ${s.validation} + test ${s.test} = ${Number(sum.toPrecision(12))})` });
        }
      }),
    image: z
      .object({
        /** Side S of the stored S×S RGB images, in pixels (the study: 256). */
        size: z.number().int().min(8).max(1024).default(256),
        /** Bandcamp image format id to download (2 = 350×350, as in the study). */
        format: z
          .number()
          .int()
          .refine((f) => (BANDCAMP_IMAGE_FORMATS as readonly number[]).includes(f), `one of Bandcamp's image format ids ${BANDCAMP_IMAGE_FORMATS.join(', ')}`)
          .default(2),
        /** How a non-square image becomes S×S: centre-crop (`cover`), stretch (`fill`) or pad with black (`contain`). */
        fit: z.enum(['cover', 'fill', 'contain']).default('cover'),
        /** Largest decoded image accepted, in pixels (width × height); guards against decompression bombs. */
        maxPixels: z.number().int().positive().default(50_000_000),
      })
      .strict()
      .prefault({}),
    bandcamp: z
      .object({
        /** Origin of the site and its JSON APIs (`discover_web`, `mobile/22/tralbum_details`). */
        origin: httpOrigin.default('https://bandcamp.com'),
        /** Origin of the image CDN (`/img/a<art_id>_<format>.jpg`). */
        imageOrigin: httpOrigin.default('https://f4.bcbits.com'),
        /** User-Agent sent with every request; say who you are. */
        userAgent: z.string().min(1).default('bandcamp-covers/0.1 (research dataset builder; +https://www.npmjs.com/package/bandcamp-covers)'),
      })
      .strict()
      .prefault({}),
    crawl: z
      .object({
        /** Request rate limit towards Bandcamp hosts, requests per minute (30 = one per 2 s, docs/BANDCAMP.md#blocking). */
        maxRequestsPerMinute: z.number().positive().default(30),
        /** Requests in flight at once towards Bandcamp hosts (1–2 advised). */
        maxConcurrency: z.number().int().min(1).max(64).default(1),
        /** `discover_web` slice: `top` (best-selling), `new`, `rand`. */
        slice: z.enum(['top', 'new', 'rand']).default('top'),
        /** `discover_web` page size (results per request). */
        pageSize: z.number().int().min(1).max(500).default(60),
        /** Candidates to list per genre, as a multiple of `perGenre`. */
        oversample: z.number().min(1).default(1.5),
        /** Retries of a transient failure (5xx, reset, timeout, 429) before the item fails. */
        maxRetries: z.number().int().nonnegative().default(8),
        /** Challenge or stripped pages in a row before the crawl stops with an explanation. */
        maxBlockedRetries: z.number().int().nonnegative().default(5),
        backoff,
        /** Timeout of one request, in ms. */
        timeoutMs: z.number().int().positive().default(30_000),
        /** Use a browser-TLS-impersonating client (crawlee's ImpitHttpClient, Firefox) for the real site. */
        impersonate: z.boolean().default(true),
        /** Largest `discover_web` answer read, in bytes (a page of 60 results is about 60 KB). */
        maxListingBytes: z.number().int().min(1024).default(8 * MiB),
        /** Largest album page or `tralbum_details` answer read, in bytes (a real album page is 100–400 KB). */
        maxPageBytes: z.number().int().min(1024).default(8 * MiB),
        /** `discover_web` pages in a row that bring no new album before a genre's listing counts as ended. */
        maxEmptyPages: z.number().int().min(1).default(3),
        /** Most `discover_web` pages requested per genre, all rounds together. */
        maxPagesPerGenre: z.number().int().min(1).default(500),
        /**
         * Rounds of "list further, label, download" before `download` gives up on a genre that is short of
         * `perGenre` kept images while its listing goes on (round 1 lists `perGenre × oversample` albums).
         */
        maxRounds: z.number().int().min(1).max(100).default(8),
      })
      .strict()
      .prefault({}),
    label: z
      .object({
        /** `tags`: exact, from each album's tags; `listing`: drop albums listed under two or more chosen genres. */
        mode: z.enum(['tags', 'listing']).default('tags'),
      })
      .strict()
      .prefault({}),
    select: z
      .object({
        /** Allow a genre to end with fewer than `perGenre` images instead of failing. */
        allowShort: z.boolean().default(false),
        /** Build exactly the images listed in this file (our `manifest.tsv` or the study's `dataset-links.tsv`). */
        fromManifest: z.string().min(1).nullable().default(null),
      })
      .strict()
      .prefault({}),
    download: z
      .object({
        /** Image downloads in flight at once. */
        concurrency: z.number().int().min(1).max(256).default(8),
        /** Timeout of one download, in ms. */
        timeoutMs: z.number().int().positive().default(30_000),
        /** Retries of one download after a transient failure. */
        retries: z.number().int().nonnegative().default(3),
        /** Largest cover read, in bytes (checked against Content-Length, then while streaming); larger: `too-large`. */
        maxBytes: z.number().int().min(1024).default(32 * MiB),
        /**
         * Runs in which a truncated cover (the body ends before the image does) is fetched again before it counts as
         * permanently `truncated`; the next attempt waits `crawl.backoff` × the attempts so far.
         */
        truncatedRuns: z.number().int().min(1).default(3),
      })
      .strict()
      .prefault({}),
    dedupe: z
      .object({
        /**
         * Covers whose perceptual hashes (dataset/phash.ts) are this close or closer, in bits of Hamming distance (of
         * 64), are near-duplicates: `download` rejects one of another genre, `split` keeps a group in one split.
         */
        maxDistance: z.number().int().min(0).max(32).default(DEDUPE_MAX_DISTANCE),
        /**
         * Near-duplicates within a genre: `group` (kept, always in one split), `drop` (keep the first, reject the
         * others as `near-duplicate-of:<item_id>`), `off` (no perceptual hashing at all: exact duplicates only).
         */
        near: z.enum(['group', 'drop', 'off']).default('group'),
      })
      .strict()
      .prefault({}),
    split: z
      .object({
        /**
         * `artist`: covers of one artist (Bandcamp `band_id`) and each near-duplicate group go to one split; `none`:
         * stratified by genre only (the 2015 study's protocol).
         */
        groupBy: z.enum(['artist', 'none']).default('artist'),
      })
      .strict()
      .prefault({}),
    shards: z
      .object({
        /** Target size of one shard file, in bytes (Arrow JS cannot read files over 2 GiB: docs/PITFALLS.md #6). */
        maxShardBytes: z.number().int().min(MiB).max(1536 * MiB).default(256 * MiB),
        /** Rows per Arrow record batch (a record batch must stay well below 1 GiB: docs/PITFALLS.md #6). */
        recordBatchRows: z.number().int().min(1).max(4096).default(64),
        /**
         * Images in flight at once (decode tasks queued on libuv's thread pool, whose size is UV_THREADPOOL_SIZE,
         * 4 by default; 8 keeps every pool thread busy while the main thread writes shards).
         */
        concurrency: z.number().int().min(1).max(64).default(8),
        /**
         * `auto`: `fast` when the native addon loaded, else `sharp` (the stage logs which and why). `sharp`: every image
         * through sharp (libvips). `fast`: plain JPEGs through libjpeg-turbo's DCT-scaled decode and a Pillow-like
         * cubic resample (dataset/native/fastjpeg.c; pixels within a few levels of sharp's, ~0.2 of Pillow's),
         * everything else through sharp (dataset/preprocess.ts).
         */
        decoder: z.enum(['auto', 'sharp', 'fast']).default('auto'),
        /**
         * Decoding runs in worker processes (dataset/decode-pool.ts): an image still decoding after this many ms is
         * rejected as `decoder-timeout` and its worker restarted (a 256×256 cover takes about 1-5 ms).
         */
        decodeTimeoutMs: z.number().int().min(100).max(3_600_000).default(30_000),
      })
      .strict()
      .prefault({}),
    train: z
      .object({
        /** TensorFlow.js backend; `auto` picks the fastest that loads. */
        backend: z.enum(BACKEND_CHOICES).default('auto'),
        /**
         * Threads for data-parallel training, validation and evaluation on the CPU backends (wasm, cpu); null: all
         * the machine offers (`os.availableParallelism()`). Results differ only by float summation order.
         */
        threads: z.number().int().min(1).max(256).nullable().default(null),
        /**
         * How a batch is split across the threads: `rows`, equal slices (a resumed run equals an uninterrupted one bit
         * for bit); `speed`, slices in proportion to each thread's measured rows per second (faster where cores differ
         * in speed or are shared, but the float summation order then depends on timing, so reruns and resumes agree
         * only to rounding).
         */
        balance: z.enum(['rows', 'speed']).default('rows'),
        /** Model family of the study's experiment runner. */
        architecture: z.enum(ARCHITECTURES).default('AlexNet'),
        /** The study's model parameter string, e.g. `num_conv_layers=2:lc0_num_filters=32`; overrides the architecture's defaults. */
        modelParams: z.string().default(''),
        /** Side of the random training crop, in pixels (the study: 224 from 256). */
        crop: z.number().int().min(8).default(224),
        /** Random horizontal mirroring of training images. */
        mirror: z.boolean().default(true),
        /** Subtract the per-pixel training mean (`shards/mean.arrow`). */
        subtractMean: z.boolean().default(true),
        optimizer: z.enum(['nesterov', 'adam']).default('nesterov'),
        learningRate: z.number().positive().default(0.01),
        /** Nesterov momentum. */
        momentum: z.number().min(0).max(1).default(0.9),
        /** Adam's beta1, beta2 and epsilon. */
        adam: z
          .object({ beta1: z.number().default(0.9), beta2: z.number().default(0.999), epsilon: z.number().default(1e-8) })
          .strict()
          .prefault({}),
        batchSize: z.number().int().min(1).default(128),
        epochs: z.number().int().min(1).default(30),
        /**
         * Learning-rate schedule (train/schedule.ts): `plateau` (multiply by `plateau.factor` when the validation loss
         * stalls; never rolls weights back), `cosine` (linear warm-up, then a half cosine), `study` (the 2015 study:
         * ÷10 and best weights restored after `patience` epochs without a better validation accuracy), `constant`.
         */
        schedule: z.enum(SCHEDULES).default('plateau'),
        /** `study` schedule: epochs without a better validation accuracy before the learning rate is divided by 10 (the study: 3). */
        patience: z.number().int().min(1).default(3),
        /** `plateau` schedule (Keras' ReduceLROnPlateau on the validation loss). */
        plateau: z
          .object({
            /** Multiplier of the learning rate at each drop. */
            factor: z.number().gt(0).lt(1).default(DEFAULT_PLATEAU.factor),
            /** Epochs in a row without an improvement of the validation loss before a drop. */
            patience: z.number().int().min(1).default(DEFAULT_PLATEAU.patience),
            /** Smallest decrease of the validation loss that counts as an improvement, in nats. */
            minDelta: z.number().min(0).default(DEFAULT_PLATEAU.minDelta),
            /** Epochs after a drop that do not count towards `patience`. */
            cooldown: z.number().int().min(0).default(DEFAULT_PLATEAU.cooldown),
            /** Lowest learning rate. */
            minLearningRate: z.number().min(0).default(DEFAULT_PLATEAU.minLearningRate),
          })
          .strict()
          .prefault({}),
        /** `cosine` schedule. */
        cosine: z
          .object({
            /** Epochs of linear warm-up from learningRate / warmupEpochs to learningRate. */
            warmupEpochs: z.number().int().min(0).default(DEFAULT_COSINE.warmupEpochs),
            /** Learning rate at the end of the cosine. */
            minLearningRate: z.number().min(0).default(DEFAULT_COSINE.minLearningRate),
          })
          .strict()
          .prefault({}),
        /** L2 weight decay λ on conv and dense kernels (penalty λ/2·Σ‖W‖²; the study: 0). */
        weightDecay: z.number().min(0).default(0),
        /**
         * Seed of training (initial weights, shuffles, crops, mirrors, dropout masks); null = `seed`. Lets runs on one
         * split (`seed`) use other training seeds, e.g. one process per seed.
         */
        seed: z.number().int().nonnegative().nullable().default(null),
        /** Models trained, with training seeds s … s + repeats − 1 on the same split (`evaluate` and `baseline` report each and mean ± std). */
        repeats: z.number().int().min(1).max(100).default(1),
        /** Write a snapshot every k epochs (and always at the end). */
        snapshotEvery: z.number().int().min(1).default(5),
        /**
         * Initial weights: `scratch` (train.architecture, seeded) or `pretrained` (the `pretrained.model` network with
         * its last fully connected layer replaced by a new one for our genres; its `pretrained.input` preprocessing
         * replaces the mean subtraction and its input size replaces train.crop; train/fine-tune.ts).
         */
        init: z.enum(['scratch', 'pretrained']).default('scratch'),
        /**
         * With `init: pretrained`: which imported layers keep their weights: `none`, `body` (all but the new last
         * layer), or the name of the last frozen tfjs layer (it and every imported layer before it). Frozen batch
         * norm layers use their moving statistics in training too.
         */
        freeze: z.string().min(1).default('none'),
        /**
         * With `init: pretrained`: the imported layers' learning rate relative to `train.learningRate` (the new layer
         * learns at 1×). Caffe's fine-tuning recipe: 0.1 (base rate 0.001, the new layer 10×). Scales the imported
         * layers' gradients, which with Nesterov momentum is the same as scaling their learning rate.
         */
        pretrainedLearningRateScale: z.number().nonnegative().default(1),
        /** Continue from this snapshot directory instead of starting fresh. */
        resumeFrom: z.string().min(1).nullable().default(null),
        /** Name of the run: outputs go to `models/<run>/`. */
        run: z.string().regex(/^[\w.-]+$/, 'a run name of letters, digits, ".", "_" or "-"').default('default'),
        /** Train the best configuration of `search` (`search/best.json`) instead of these settings' searched keys. */
        fromSearch: z.boolean().default(false),
      })
      .strict()
      .prefault({}),
    search: z
      .object({
        /** Trials to run in all; a rerun with more continues from the recorded ones (README "Hyperparameter search"). */
        trials: z.number().int().min(1).max(100_000).default(50),
        /** Epochs per trial (the study: 10). */
        epochs: z.number().int().min(1).default(10),
        /** `tpe` (hyperopt's Tree-structured Parzen Estimator, search/samplers.ts) or `random`. */
        algorithm: z.enum(['tpe', 'random']).default('tpe'),
        /** Seed of the sampler; null = `seed`. */
        seed: z.number().int().nonnegative().nullable().default(null),
        /**
         * The searched parameters in search/space.ts syntax (`KEY=DIST(ARGS) [if KEY2=VALUE]; …`); empty: the study's
         * space for `train.architecture` (search/space.ts `studySpace`).
         */
        space: z.string().default(''),
        /**
         * TPE's settings (search/samplers.ts). Defaults: ours, chosen on the synthetic objectives of
         * bench/search.bench.ts (bench/RESULTS.md "Search samplers"); hyperopt's are 20, 0.25, `sqrt`, false.
         */
        tpe: z
          .object({
            /** Random trials before TPE starts (hyperopt `n_startup_jobs` 20, Optuna `n_startup_trials` 10; ours 10). */
            startupTrials: z.number().int().min(1).default(10),
            /** γ: the share of trials TPE counts as good (hyperopt 0.25 with `sqrt`, Optuna 0.1 with `linear`; ours 0.15). */
            gamma: z.number().gt(0).max(1).default(0.15),
            /** Good trials: `linear` ⌈γ·N⌉ (Optuna's `default_gamma`) or `sqrt` ⌈γ·√N⌉ (hyperopt's); at most 25 either way. */
            split: z.enum(['linear', 'sqrt']).default('linear'),
            /**
             * Model the unconditional parameters jointly (search/joint.ts: one kernel per trial over all of them, as
             * Optuna 5's TPESampler) instead of one by one (hyperopt's TPE); conditional ones stay one by one. Ours: true.
             */
            multivariate: z.boolean().default(true),
          })
          .strict()
          .prefault({}),
        /** Early stopping of bad trials: `asha` (asynchronous successive halving on the validation loss per epoch) or `none`. */
        pruner: z.enum(['asha', 'none']).default('asha'),
        asha: z
          .object({
            /** Reduction factor η: a trial goes on past a rung only if it is in the best 1/η there. */
            eta: z.number().int().min(2).default(3),
            /** Epochs of the first rung; the next rungs are at minEpochs·η, minEpochs·η², … below `search.epochs`. */
            minEpochs: z.number().int().min(1).default(2),
          })
          .strict()
          .prefault({}),
        /** Trials trained at once, each in its own worker thread; null: cores ÷ threads per trial (at least 1). */
        parallel: z.number().int().min(1).max(256).nullable().default(1),
      })
      .strict()
      .prefault({}),
    eval: z
      .object({
        /** Crops per test image: 1 (centre) or 10 (centre and four corners, each mirrored; softmax averaged). */
        crops: z.union([z.literal(1), z.literal(10)]).default(10),
      })
      .strict()
      .prefault({}),
    inspect: z
      .object({
        /** Test covers per genre shown as most confidently right, and as many most confidently wrong (stage `inspect`). */
        examples: z.number().int().min(0).max(50).default(6),
        /** Covers shown per confusion-matrix cell (true genre predicted as another), the most confident first. */
        confusions: z.number().int().min(0).max(20).default(3),
        /** Test covers per genre with a saliency map (Grad-CAM, or input gradients without a conv layer). */
        saliency: z.number().int().min(0).max(20).default(4),
        /**
         * Class activation map on the last conv layer: `hires-cam` (each position's gradient × activation; faithful
         * for our flatten → dense heads) or `grad-cam` (channel weights = the gradient averaged over positions).
         */
        saliencyMethod: z.enum(['hires-cam', 'grad-cam']).default('hires-cam'),
        /** Most test covers in the 2-D embeddings (UMAP; a seeded sample of the test split when it is larger). */
        embedding: z.number().int().min(0).max(5000).default(2000),
      })
      .strict()
      .prefault({}),
    baseline: z
      .object({
        /**
         * Which baseline(s): `forest` (the study's random forest → eval/baseline.json), `linear-svm` (the study's
         * linear SVM on pixels scaled to [0, 1] → eval/baseline-linear-svm.json), or `both`.
         */
        model: z.enum(['forest', 'linear-svm', 'both']).default('forest'),
        /**
         * What the baselines learn from: `pixels` (the study's downsampled pixels → eval/baseline.json,
         * eval/baseline-linear-svm.json), `pretrained` (the `features` target's vectors, e.g. fc7 →
         * eval/baseline-pretrained.json, eval/baseline-linear-svm-pretrained.json; `make baseline` then makes `features` first),
         * or `both`.
         */
        features: z.enum(['pixels', 'pretrained', 'both']).default('pixels'),
        /** Linear SVM: inverse regularisation strength C (scikit-learn's LinearSVC default 1). */
        svmC: z.number().positive().default(1),
        /** Linear SVM: most passes of the dual coordinate descent per class (LinearSVC's max_iter, 1,000). */
        svmMaxIter: z.number().int().min(1).default(1000),
        /** Trees of the random forest (the study: 100). */
        trees: z.number().int().min(1).default(100),
        /** Side of the downsampled image fed to the forest, in pixels (the study: 50). */
        pixels: z.number().int().min(1).max(256).default(50),
        /** Use grayscale pixels (the study) instead of RGB. */
        grayscale: z.boolean().default(true),
        /**
         * Features tried at each split (train/random-forest.ts): `sqrt` (⌊√d⌋ = 50 of 2,500 pixels, scikit-learn's
         * default, the study), `log2`, `all`, or a share in (0, 1].
         */
        maxFeatures: z.union([z.enum(['sqrt', 'log2', 'all']), z.number().gt(0).max(1)]).default('sqrt'),
        /** Bootstrap sample size per tree, in images; null = as many as the training split (scikit-learn, the study). */
        maxSamples: z.number().int().min(1).nullable().default(null),
        /** Smallest node (distinct images) that is split; 2 grows trees until their leaves are pure (the study). */
        minSamplesSplit: z.number().int().min(2).default(2),
        /** Worker threads growing trees; null = the machine's available parallelism. Does not change the forest. */
        threads: z.number().int().min(1).nullable().default(null),
      })
      .strict()
      .prefault({}),
    export: z
      .object({
        /**
         * Formats `covers make export` writes to `DATA_DIR/export/<format>/` (schemas/export/): `parquet`,
         * `webdataset`, `tfrecord`. `export` is no dependency of `report`, so `covers make all` never runs it.
         */
        formats: z.array(z.enum(EXPORT_FORMATS)).min(1).default([...EXPORT_FORMATS]),
        /** A shard ends at `rows` samples or before its encoded images pass `bytes` (a shard holds at least one sample). */
        shardSize: z
          .object({
            /** Samples per shard at most. */
            rows: z.number().int().min(1).default(1000),
            /**
             * Encoded image bytes per shard at most. At most 512 MiB: a Parquet shard is built in parquet-wasm's 32-bit
             * WebAssembly memory (4 GiB), which holds it about three times over while writing.
             */
            bytes: z.number().int().min(1).max(512 * MiB).default(256 * MiB),
          })
          .strict()
          .prefault({}),
        image: z
          .object({
            /** `png`: lossless, every pixel as in the shards (the default: an export must not change the data); `jpeg`: about 4× smaller, lossy. */
            format: z.enum(['png', 'jpeg']).default('png'),
            /** zlib level of PNG (0–9): 3 gives nearly the size of 6 in about 60% of the time (bench/RESULTS.md). */
            pngCompression: z.number().int().min(0).max(9).default(3),
            /** JPEG quality (1–100), `format` = `jpeg` only; chroma is not subsampled (4:4:4). */
            jpegQuality: z.number().int().min(1).max(100).default(95),
          })
          .strict()
          .prefault({}),
      })
      .strict()
      .prefault({}),
    pretrained: z
      .object({
        /**
         * A pretrained network: the path or http(s) URL of an ONNX file (torch.onnx.export, the ONNX model zoo) or a
         * path to a TensorFlow.js layers `model.json`; '' = none. A URL is downloaded once into the cache
         * (`$COVERS_CACHE_DIR/models`, else `~/.cache/bandcamp-covers/models`), resumably.
         */
        model: z.string().default(''),
        /** sha256 (hex) the file must have; '' = not checked. */
        sha256: z.union([z.literal(''), z.string().regex(/^[0-9a-fA-F]{64}$/, '64 hex digits')]).default(''),
        /** Input preprocessing preset: `imagenet` (RGB, [0, 1], torchvision's mean/std) or `caffe` (BGR, 0–255, mean 104/117/123). */
        input: z.enum(INPUT_PRESET_NAMES).default('imagenet'),
        /** Overrides of the preset (null = the preset's): channel order the network takes. */
        channelOrder: z.enum(['rgb', 'bgr']).nullable().default(null),
        /** Override: factor applied to the 0–255 pixels before the mean is subtracted. */
        scale: z.number().positive().nullable().default(null),
        /** Override: per-channel mean, in the network's channel order, after scaling. */
        mean: z.tuple([z.number(), z.number(), z.number()]).nullable().default(null),
        /** Override: per-channel standard deviation, in the network's channel order, after scaling. */
        std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]).nullable().default(null),
        /**
         * The feature layer: an ONNX tensor name or a tfjs layer name; '' = the input of the last fully connected
         * layer (fc7 for AlexNet/CaffeNet, the pooled features for ResNet/MobileNet).
         */
        layer: z.string().default(''),
        /** Crops per image for `features`: 1 (centre) or 10 (centre and four corners, each mirrored; features averaged). */
        crops: z.union([z.literal(1), z.literal(10)]).default(1),
        /** Images per forward pass. */
        batchSize: z.number().int().min(1).default(32),
        /**
         * What runs the network for `features`: `onnxruntime` (onnxruntime-node's CPU build, an optional dependency;
         * ONNX files), `tfjs` (our TensorFlow.js import, as fine-tuning uses) or `auto` (onnxruntime where it loads
         * and runs the file, else tfjs, the reason logged).
         */
        engine: z.enum(FEATURE_ENGINE_NAMES).default('auto'),
        /** onnxruntime's intra-op threads for `features`; null = its default (one per physical core). */
        threads: z.number().int().min(1).max(256).nullable().default(null),
      })
      .strict()
      .prefault({}),
    report: z
      .object({
        /** Covers per genre on the contact sheet. */
        contactSheet: z.number().int().min(0).max(200).default(24),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    // Fine-tuning crops at the pretrained network's input size, not train.crop: the train stage checks that against
    // the shards (naming both) once it has read the file.
    if (c.train.init === 'scratch' && Number.isInteger(c.image.size) && c.image.size >= 8 && c.train.crop > c.image.size) {
      ctx.addIssue({ code: 'custom', path: ['train', 'crop'], message: `a crop no larger than image.size (${c.image.size})` });
    }
    const dupFormat = c.export.formats.find((f, i) => c.export.formats.indexOf(f) !== i);
    if (dupFormat) ctx.addIssue({ code: 'custom', path: ['export', 'formats'], message: `formats without repeats ("${dupFormat}" is listed twice)` });
    const dup = c.genres.find((g, i) => c.genres.indexOf(g) !== i);
    if (dup) ctx.addIssue({ code: 'custom', path: ['genres'], message: `genres without repeats ("${dup}" is listed twice)` });
    const modelProblem = modelParamsProblem(c.train.architecture, c.train.modelParams);
    if (modelProblem) ctx.addIssue({ code: 'custom', path: ['train', 'modelParams'], message: modelProblem });
  });

/** The configuration as a user writes it (every key optional). */
export type ConfigInput = z.input<typeof ConfigSchema>;
/** The resolved configuration: every key present, defaults applied. */
export type Config = z.output<typeof ConfigSchema>;

let defaults: Config | null = null;

/** What the schema resolves `{}` to (computed once; never handed out, so never changed). */
function schemaDefaults(): Config {
  return (defaults ??= ConfigSchema.parse({}));
}

function setPath(obj: Record<string, unknown>, path: readonly string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = Object.hasOwn(cur, key) ? cur[key] : undefined;
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

/**
 * Parses the value of a `--set key=value` override when nothing is known about the key: `true`/`false` → boolean,
 * `null` → null, a number → number, `a,b,c` → list (each item parsed the same way); anything else stays a string.
 */
function parseSetValue(raw: string): unknown {
  if (raw.includes(',')) return raw.split(',').map((s) => parseScalar(s.trim())).filter((v) => v !== '');
  return parseScalar(raw);
}

function parseScalar(raw: string): unknown {
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  if (raw === 'null') return null;
  if (isNumeric(raw)) return Number(raw);
  return raw;
}

const isNumeric = (raw: string) => raw !== '' && /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(raw);

/**
 * Parses a `--set` value by the type of the key's default: a list key splits on commas (`genres=metal,jazz`, or one
 * item), a string key keeps the text as written (commas and digits included: `bandcamp.userAgent=MyBot (me, lab)`,
 * `train.run=2`), a number or boolean key parses it, a key whose default is null (`select.fromManifest`) takes `null`
 * or the text. A string key that also accepts numbers (`baseline.maxFeatures=0.1`) takes a number when valid there.
 */
function typedSetValue(path: readonly string[], raw: string): unknown {
  const def = getPath(schemaDefaults(), path);
  if (Array.isArray(def)) {
    const items = raw.split(',').map((x) => x.trim()).filter((x) => x !== '');
    return typeof def[0] === 'number' ? items.map((x) => (isNumeric(x) ? Number(x) : x)) : items;
  }
  if (typeof def === 'string') {
    if (isNumeric(raw)) {
      const probe: Record<string, unknown> = {};
      setPath(probe, path, Number(raw));
      const ok = ConfigSchema.safeParse(probe);
      const key = path.join('.');
      if (ok.success || !ok.error.issues.some((i) => i.path.join('.') === key)) return Number(raw);
    }
    return raw;
  }
  if (def === null) {
    if (raw === 'null') return null;
    // A number where the key takes one (`train.seed=1`), else the text (`select.fromManifest=2` is a file name).
    if (isNumeric(raw)) {
      const probe: Record<string, unknown> = {};
      setPath(probe, path, Number(raw));
      const ok = ConfigSchema.safeParse(probe);
      if (ok.success || !ok.error.issues.some((i) => i.path.join('.') === path.join('.'))) return Number(raw);
    }
    return raw;
  }
  if (typeof def === 'number' || typeof def === 'boolean') return parseScalar(raw);
  return parseSetValue(raw);
}


/**
 * Checks a dotted `--set` key against the configuration schema's own keys (the resolved defaults hold every key, each
 * section an object): every segment must be an own key of its section, never a prototype key (`__proto__`,
 * `constructor`, `toString`), and the last must name a setting, not a whole section.
 * @throws ConfigError naming the key and listing the keys that exist where it went wrong.
 */
function checkSetKey(path: readonly string[]): void {
  let cur: unknown = schemaDefaults();
  const key = path.join('.');
  for (let i = 0; i < path.length; i++) {
    const seg = path[i]!;
    const here = path.slice(0, i).join('.');
    if (!isPlainObject(cur) || !Object.hasOwn(cur, seg) || seg === '__proto__') {
      const known = isPlainObject(cur) ? Object.keys(cur).join(', ') : '';
      throw new ConfigError(
        isPlainObject(cur)
          ? `--set ${key}: unknown key "${seg}"${here ? ` in section ${here}` : ''}; known: ${known} (see README "Configuration")`
          : `--set ${key}: ${here} is a setting, not a section`,
      );
    }
    cur = cur[seg];
  }
  if (isPlainObject(cur)) throw new ConfigError(`--set ${key}: ${key} is a section; set one of its keys: ${Object.keys(cur).map((k) => `${key}.${k}`).join(', ')}`);
}

/**
 * Applies `--set key=value` overrides (dotted keys) to a raw configuration object and returns a new object. Values
 * are parsed by the type of the key's default (see {@link typedSetValue}).
 * @throws ConfigError when an override is not of the form `key=value`, or its key is not a setting of the schema
 * ({@link checkSetKey}).
 */
export function applyOverrides(raw: Record<string, unknown>, sets: readonly string[]): Record<string, unknown> {
  const out = structuredClone(raw);
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--set ${JSON.stringify(s)}: expected key=value, e.g. --set perGenre=100`);
    const path = s.slice(0, eq).trim().split('.');
    checkSetKey(path);
    setPath(out, path, typedSetValue(path, s.slice(eq + 1)));
  }
  return out;
}

function describe(value: unknown): string {
  if (value === undefined) return '(missing)';
  const s = JSON.stringify(value);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/**
 * Validates a raw configuration object and applies the defaults.
 * @param source where the object came from, for messages (a file path, or "defaults").
 * @throws ConfigError listing each bad key as `key.path = value: expected …`.
 */
export function resolveConfig(raw: unknown, source = 'config'): Config {
  const result = ConfigSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const path = issue.path.map(String).join('.') || '(top level)';
    if (issue.code === 'unrecognized_keys') {
      const where = issue.path.length ? `${path}.` : '';
      // The keys that exist there, as for --set (checkSetKey).
      const section = getPath(schemaDefaults(), issue.path as (string | number)[]);
      const known = isPlainObject(section) ? `; known: ${Object.keys(section).join(', ')}` : '';
      return `${issue.keys.map((k) => where + k).join(', ')}: unknown key${issue.keys.length > 1 ? 's' : ''}${known} (see README "Configuration")`;
    }
    const value = getPath(raw, issue.path as (string | number)[]);
    const expected = issue.message.replace(/^(Invalid input|Invalid option|Too small|Too big): /, '').replace(/^expected /, '');
    return `${path} = ${describe(value)}: expected ${expected}`;
  });
  throw new ConfigError(`invalid configuration (${source}):
  ${problems.join('\n  ')}`, problems);
}

/**
 * Loads, overrides and validates the configuration.
 * @throws ConfigError when the file is missing (given explicitly), is not JSON, or a value is invalid.
 */
export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const cwd = opts.cwd ?? process.cwd();
  let path = opts.configPath;
  if (!path && existsSync(`${cwd}/${DEFAULT_CONFIG_FILE}`)) path = `${cwd}/${DEFAULT_CONFIG_FILE}`;
  let raw: Record<string, unknown> = {};
  if (path) {
    if (!existsSync(path)) throw new ConfigError(`config file ${path}: not found`);
    try {
      raw = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`config file ${path}: not valid JSON (${(e as Error).message})`);
    }
    if (!isPlainObject(raw)) throw new ConfigError(`config file ${path}: expected a JSON object`);
  }
  const sets = opts.sets ?? [];
  const source = [path, sets.length ? '--set' : ''].filter(Boolean).join(' + ') || 'defaults';
  return resolveConfig(applyOverrides(raw, sets), source);
}

/**
 * The source of pipeline/config-defaults.ts: the schema's defaults ({@link resolveConfig} of `{}`) as a module that
 * loads without zod. `npm run config-defaults` writes it; test/config-defaults.test.ts fails when it is not current.
 */
export function configDefaultsSource(): string {
  return `// Generated by \`npm run config-defaults\` from ConfigSchema (pipeline/config.ts): do not edit.
// test/config-defaults.test.ts fails when this is not what the schema resolves \`{}\` to.
import type { Config } from './config.ts';

/** The resolved default configuration, as ConfigSchema resolves \`{}\` (pipeline/config-core.ts hands out copies). */
export const CONFIG_DEFAULTS: Config = ${JSON.stringify(resolveConfig({}, 'defaults'), null, 2)};
`;
}
