/**
 * `nsfw` (optional, off by default): scores the image with nsfwjs's bundled classifier (five classes:
 * Drawing, Hentai, Neutral, Porn, Sexy) and rejects it when P(Porn) + P(Hentai) reaches `threshold`
 * (reason `nsfw`), or, when `sexyThreshold` is set, when P(Sexy) reaches it (reason `nsfw_sexy`).
 * A kept image carries its five probabilities in `stats`.
 *
 * Offline by construction: nothing is fetched.
 *  - The model comes from the nsfwjs package on disk: its three models ship as CommonJS bundles
 *    (`dist/cjs/models/<name>/model.min.js` = the model.json object, `group1-shardNofM.min.js` = one
 *    weight shard as base64). A small tf.io handler requires those files from node_modules and hands
 *    tfjs the topology, the weight specs and the decoded weights; `nsfwjs.load(name)` is not used (its
 *    ESM build does not resolve under Node and it logs on every load).
 *  - The wasm backend reads its `.wasm` binary with fs from `@tensorflow/tfjs-backend-wasm/dist/`
 *    (`setWasmPaths(<that folder>/)`; under Node emscripten reads a plain path with readFileSync).
 *  - tfjs, its wasm backend and nsfwjs are loaded on the first call, not when this module is imported:
 *    the filter stage imports every operator, and most runs do not enable this one.
 *
 * One backend per process (tfjs's backend is global), each model loaded at most once, behind a
 * promise; inferences run one at a time (tfjs's wasm backend is single-threaded under Node), while
 * the sharp decode of the next images proceeds in parallel.
 *
 * The image is decoded with sharp: first frame, EXIF orientation applied, alpha flattened on white,
 * sRGB, stretched to the model's square input (no crop: nsfwjs's own `infer` stretches too), 8-bit
 * RGB. nsfwjs divides by 255 and runs the model.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import sharp from 'sharp';
import { z } from 'zod';
import { keep, reject, round, type ImageItem, type ItemOperator, type OperatorResult } from '../operator';

type Tf = typeof import('@tensorflow/tfjs');
type TfWasm = typeof import('@tensorflow/tfjs-backend-wasm');
type Nsfwjs = typeof import('nsfwjs');
type NsfwModel = InstanceType<Nsfwjs['NSFWJS']>;
type IOHandler = import('@tensorflow/tfjs').io.IOHandler;
type ModelArtifacts = import('@tensorflow/tfjs').io.ModelArtifacts;
type WeightsManifestEntry = import('@tensorflow/tfjs').io.WeightsManifestEntry;

/** The models nsfwjs bundles, by their folder name under `nsfwjs/dist/cjs/models/` (`bundle`: nsfwjs's name). */
export const NSFW_MODELS = {
  /** nsfwjs's default (`load()` with no argument): a Keras layers model, 224 px. */
  mobilenet_v2: { bundle: 'MobileNetV2', size: 224, type: 'layers' },
  /** A TF graph model, 224 px. */
  mobilenet_v2_mid: { bundle: 'MobileNetV2Mid', size: 224, type: 'graph' },
  /** A Keras layers model, 299 px. */
  inception_v3: { bundle: 'InceptionV3', size: 299, type: 'layers' },
} as const;
export type NsfwModelName = keyof typeof NSFW_MODELS;

/** nsfwjs's classes (its README): which of them count toward the `nsfw` score. */
export const NSFW_CLASS_NAMES = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'] as const;
export type NsfwClassName = (typeof NSFW_CLASS_NAMES)[number];
export type NsfwScores = Readonly<Record<NsfwClassName, number>>;

const probability = z.number().min(0).max(1);

export const nsfwConfigSchema = z
  .object({
    /** Which bundled model scores the image. */
    model: z.enum(['mobilenet_v2', 'mobilenet_v2_mid', 'inception_v3']).default('mobilenet_v2'),
    /** Reject when P(Porn) + P(Hentai) is at least this. */
    threshold: probability.default(0.5),
    /** Also reject when P(Sexy) is at least this; null: the Sexy class is recorded, not judged. */
    sexyThreshold: probability.nullable().default(null),
    /** tfjs backend: wasm (fast), or cpu (pure JavaScript, the fallback where wasm cannot start). */
    backend: z.enum(['wasm', 'cpu']).default('wasm'),
    /** Threads for the wasm backend (XNNPACK). tfjs runs wasm single-threaded under Node. */
    numThreads: z.number().int().min(1).max(64).default(1),
  })
  .strict();
export type NsfwConfig = z.infer<typeof nsfwConfigSchema>;
export type NsfwConfigInput = z.input<typeof nsfwConfigSchema>;

// ---------------------------------------------------------------------------------------------
// Runtime: tfjs + backend (once per process), models (each once), a serial inference queue
// ---------------------------------------------------------------------------------------------

const requireHere = createRequire(import.meta.url);

interface Runtime {
  readonly tf: Tf;
  readonly nsfwjs: Nsfwjs;
  readonly backend: NsfwConfig['backend'];
  readonly numThreads: number;
  /** Threads the wasm backend actually uses (tfjs reports it after init); 1 for cpu. */
  readonly threads: number;
  /** Folder the wasm binaries are read from (wasm backend only). */
  readonly wasmDir: string | undefined;
}

/** What was loaded, from where, and how long it took (for tests, logs and docs). */
export interface NsfwModelInfo {
  readonly model: NsfwModelName;
  readonly size: number;
  readonly backend: NsfwConfig['backend'];
  readonly threads: number;
  /** The package folder the model was read from (under node_modules/nsfwjs). */
  readonly modelDir: string;
  /** Every file read for the model, in order. */
  readonly files: readonly string[];
  readonly weightBytes: number;
  /** Folder of the .wasm binaries (wasm backend), else undefined. */
  readonly wasmDir: string | undefined;
  /** Milliseconds to read, build and warm the model (the backend's start included on the first load). */
  readonly loadMs: number;
}

interface LoadedModel {
  readonly info: NsfwModelInfo;
  readonly net: NsfwModel;
  readonly runtime: Runtime;
}

let runtimePromise: Promise<Runtime> | undefined;
let runtimeKey: string | undefined;
const models = new Map<NsfwModelName, Promise<LoadedModel>>();
let queue: Promise<unknown> = Promise.resolve();

/** Runs `task` after every task queued before it (one inference at a time in this process). */
function serially<T>(task: () => Promise<T>): Promise<T> {
  const run = queue.then(task, task);
  queue = run.then(
    () => undefined,
    () => undefined,
  );
  return run;
}

/** The folder holding nsfwjs's bundled models (CommonJS build), resolved from node_modules. */
export function nsfwModelsDir(): string {
  return path.join(path.dirname(requireHere.resolve('nsfwjs')), 'models');
}

/** The folder holding tfjs-backend-wasm's .wasm binaries, resolved from node_modules. */
export function tfjsWasmDir(): string {
  return path.dirname(requireHere.resolve('@tensorflow/tfjs-backend-wasm'));
}

async function startRuntime(backend: NsfwConfig['backend'], numThreads: number): Promise<Runtime> {
  // CommonJS builds throughout, so nsfwjs, the wasm backend and this module share one tfjs instance.
  const tf = requireHere('@tensorflow/tfjs') as Tf;
  const nsfwjs = requireHere('nsfwjs') as Nsfwjs;
  let wasmDir: string | undefined;
  let threads = 1;
  if (backend === 'wasm') {
    const wasm = requireHere('@tensorflow/tfjs-backend-wasm') as TfWasm;
    wasmDir = tfjsWasmDir();
    wasm.setWasmPaths(wasmDir + path.sep);
    wasm.setThreadsCount(numThreads);
    // Emscripten's Node glue adds process-wide uncaughtException/unhandledRejection listeners that
    // rethrow; they would override the worker's own handling, so they are removed again.
    const beforeException = new Set(process.listeners('uncaughtException'));
    const beforeRejection = new Set(process.listeners('unhandledRejection'));
    let ok: boolean;
    try {
      ok = await tf.setBackend('wasm');
    } finally {
      for (const l of process.listeners('uncaughtException')) if (!beforeException.has(l)) process.removeListener('uncaughtException', l);
      for (const l of process.listeners('unhandledRejection')) if (!beforeRejection.has(l)) process.removeListener('unhandledRejection', l);
    }
    if (!ok || tf.getBackend() !== 'wasm') {
      throw new Error(`nsfw: the tfjs wasm backend did not start (binaries in ${wasmDir}); set filter.image.options.nsfw.backend to "cpu"`);
    }
    threads = wasm.getThreadsCount();
  } else {
    if (!(await tf.setBackend('cpu')) || tf.getBackend() !== 'cpu') throw new Error('nsfw: the tfjs cpu backend did not start');
  }
  await tf.ready();
  return { tf, nsfwjs, backend, numThreads, threads, wasmDir };
}

function getRuntime(config: NsfwConfig): Promise<Runtime> {
  const key = `${config.backend}/${config.numThreads}`;
  if (runtimePromise !== undefined) {
    if (runtimeKey !== key) {
      // tfjs's backend is process-wide: a second backend would move every model's weights.
      throw new Error(
        `nsfw: this process runs the ${runtimeKey} backend/threads, a config asks for ${key}; set nsfw.backend and nsfw.numThreads once in filter.image.options, not per language`,
      );
    }
    return runtimePromise;
  }
  runtimeKey = key;
  runtimePromise = startRuntime(config.backend, config.numThreads);
  runtimePromise.catch(() => {
    // A failed start is not cached: the next call tries again (or another backend).
    runtimePromise = undefined;
    runtimeKey = undefined;
  });
  return runtimePromise;
}

const SHARD_NAME = /^[A-Za-z0-9_.-]+$/;

interface BundledModelJson {
  modelTopology: object;
  weightsManifest: Array<{ paths: string[]; weights: unknown[] }>;
  format?: string;
  generatedBy?: string;
  convertedBy?: string;
  userDefinedMetadata?: Record<string, {}>;
}

/** Requires a bundle file and drops it from the require cache (its base64 text is large). */
function requireOnce(file: string): unknown {
  const resolved = requireHere.resolve(file);
  try {
    return requireHere(resolved);
  } finally {
    delete requireHere.cache[resolved];
  }
}

/**
 * A tf.io handler for one of nsfwjs's bundled models: reads `model.min.js` and its weight shards from
 * the package folder (no URL, no fetch). `files` receives each path read.
 */
export function bundledModelHandler(modelDir: string, files: string[] = []): IOHandler {
  return {
    load: async () => {
      const jsonFile = path.join(modelDir, 'model.min.js');
      files.push(jsonFile);
      const json = requireOnce(jsonFile) as BundledModelJson;
      if (json?.modelTopology === undefined || !Array.isArray(json.weightsManifest)) throw new Error(`nsfw: ${jsonFile} is not a model bundle`);
      const weightSpecs: WeightsManifestEntry[] = [];
      const shards: Buffer[] = [];
      for (const group of json.weightsManifest) {
        for (const shard of group.paths) {
          if (!SHARD_NAME.test(shard)) throw new Error(`nsfw: unexpected weight shard name "${shard}" in ${jsonFile}`);
          const shardFile = path.join(modelDir, `${shard}.min.js`);
          files.push(shardFile);
          const base64 = requireOnce(shardFile);
          if (typeof base64 !== 'string') throw new Error(`nsfw: ${shardFile} is not a base64 weight shard`);
          shards.push(Buffer.from(base64, 'base64'));
        }
        weightSpecs.push(...(group.weights as WeightsManifestEntry[]));
      }
      const weights = Buffer.concat(shards);
      const artifacts: ModelArtifacts = {
        modelTopology: json.modelTopology,
        weightSpecs,
        weightData: weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.byteLength),
      };
      if (json.format !== undefined) artifacts.format = json.format;
      if (json.generatedBy !== undefined) artifacts.generatedBy = json.generatedBy;
      if (json.convertedBy !== undefined) artifacts.convertedBy = json.convertedBy;
      if (json.userDefinedMetadata !== undefined) artifacts.userDefinedMetadata = json.userDefinedMetadata;
      return artifacts;
    },
  };
}

async function loadModel(name: NsfwModelName, config: NsfwConfig): Promise<LoadedModel> {
  const started = performance.now();
  const runtime = await getRuntime(config);
  const spec = NSFW_MODELS[name];
  const modelDir = path.join(nsfwModelsDir(), name);
  const files: string[] = [];
  const handler = bundledModelHandler(modelDir, files);
  let weightBytes = 0;
  const counting: IOHandler = {
    load: async () => {
      const artifacts = await handler.load!();
      weightBytes = artifacts.weightData instanceof ArrayBuffer ? artifacts.weightData.byteLength : 0;
      const input = (artifacts.modelTopology as { model_config?: { config?: { layers?: Array<{ config?: { batch_input_shape?: unknown[] } }> } } })
        .model_config?.config?.layers?.[0]?.config?.batch_input_shape;
      if (Array.isArray(input) && (input[1] !== spec.size || input[2] !== spec.size)) {
        throw new Error(`nsfw: ${name} expects ${String(input[1])}x${String(input[2])} input, not ${spec.size}`);
      }
      return artifacts;
    },
  };
  // `load` reads through the handler, builds the model and runs one warm-up prediction on zeros.
  const net = new runtime.nsfwjs.NSFWJS(counting, { size: spec.size, ...(spec.type === 'graph' ? { type: 'graph' } : {}) });
  await net.load();
  const info: NsfwModelInfo = {
    model: name,
    size: spec.size,
    backend: runtime.backend,
    threads: runtime.threads,
    modelDir,
    files,
    weightBytes,
    wasmDir: runtime.wasmDir,
    loadMs: performance.now() - started,
  };
  return { info, net, runtime };
}

function getModel(config: NsfwConfig): Promise<LoadedModel> {
  const cached = models.get(config.model);
  if (cached !== undefined) {
    // The runtime check still applies: a model loaded on one backend is not served to a config for another.
    void getRuntime(config);
    return cached;
  }
  const loading = loadModel(config.model, config);
  models.set(config.model, loading);
  loading.catch(() => models.delete(config.model));
  return loading;
}

/**
 * Loads (once) the configured model and its backend, and says what was loaded from where.
 * @throws Error when the backend or the model cannot start (a wiring or installation error).
 */
export async function loadNsfwModel(config: NsfwConfigInput = {}): Promise<NsfwModelInfo> {
  return (await getModel(nsfwConfigSchema.parse(config))).info;
}

// ---------------------------------------------------------------------------------------------
// Scoring
// ---------------------------------------------------------------------------------------------

/** The image as the model reads it: first frame, oriented, on white, sRGB, size x size, 8-bit RGB. */
export async function nsfwInputPixels(bytes: Buffer, size: number): Promise<Buffer> {
  const { data, info } = await sharp(bytes, { failOn: 'error', autoOrient: true })
    .flatten({ background: '#ffffff' })
    .toColourspace('srgb')
    .resize(size, size, { fit: 'fill' })
    .removeAlpha()
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.width !== size || info.height !== size || info.channels !== 3) {
    throw new Error(`decoded to ${info.width}x${info.height}x${info.channels}, expected ${size}x${size}x3`);
  }
  return data;
}

/**
 * The five class probabilities of an already decoded size x size RGB buffer.
 * @throws Error when the model cannot be loaded (wiring), never for the pixel values.
 */
export async function scoreNsfwPixels(rgb: Buffer, config: NsfwConfig): Promise<NsfwScores> {
  const { net, runtime, info } = await getModel(config);
  if (rgb.length !== info.size * info.size * 3) throw new Error(`nsfw: ${rgb.length} bytes is not a ${info.size}x${info.size} RGB image`);
  return serially(async () => {
    const { tf } = runtime;
    const input = tf.tensor3d(new Int32Array(rgb), [info.size, info.size, 3], 'int32');
    try {
      const predictions = await net.classify(input, NSFW_CLASS_NAMES.length);
      const scores: Record<string, number> = {};
      for (const p of predictions) scores[p.className] = p.probability;
      for (const c of NSFW_CLASS_NAMES) if (typeof scores[c] !== 'number') throw new Error(`nsfw: the model returned no ${c} probability`);
      return scores as NsfwScores;
    } finally {
      input.dispose();
    }
  });
}

/** Decodes and scores an image's bytes; `error` (the decoder's message) when sharp cannot decode them. */
export async function scoreNsfwImage(bytes: Buffer, config: NsfwConfig): Promise<{ scores: NsfwScores } | { error: string }> {
  // Load first so a wiring error is thrown before any decode (and decodes do not pile up meanwhile).
  const { info } = await getModel(config);
  let rgb: Buffer;
  try {
    rgb = await nsfwInputPixels(bytes, info.size);
  } catch (err) {
    return { error: err instanceof Error ? err.message.split('\n')[0]! : String(err) };
  }
  return { scores: await scoreNsfwPixels(rgb, config) };
}

function describeScores(scores: NsfwScores, model: NsfwModelName): string {
  return `${model}: ${NSFW_CLASS_NAMES.map((c) => `${c} ${round(scores[c], 4)}`).join(', ')}`;
}

/** The verdict for scores already computed (the rule on its own, without the model). */
export function judgeNsfw(scores: NsfwScores, config: NsfwConfig): OperatorResult {
  const explicit = scores.Porn + scores.Hentai;
  if (explicit >= config.threshold) return reject('nsfw', round(explicit, 4), config.threshold, `P(Porn)+P(Hentai); ${describeScores(scores, config.model)}`);
  if (config.sexyThreshold !== null && scores.Sexy >= config.sexyThreshold) {
    return reject('nsfw_sexy', round(scores.Sexy, 4), config.sexyThreshold, `P(Sexy); ${describeScores(scores, config.model)}`);
  }
  return keep(undefined, {
    model: config.model,
    score: round(explicit, 4),
    drawing: round(scores.Drawing, 4),
    hentai: round(scores.Hentai, 4),
    neutral: round(scores.Neutral, 4),
    porn: round(scores.Porn, 4),
    sexy: round(scores.Sexy, 4),
  });
}

export const nsfwOperator: ItemOperator<ImageItem, NsfwConfig> = {
  name: 'nsfw',
  kind: 'image',
  scope: 'item',
  input: 'image',
  description:
    'Optional (not in the default list): rejects images nsfwjs scores as pornographic (P(Porn)+P(Hentai)), optionally also as suggestive (P(Sexy)).',
  reasons: ['nsfw', 'nsfw_sexy', 'nsfw_decode_error'],
  configSchema: nsfwConfigSchema,
  defaultSources: {
    model:
      "nsfwjs's default model (load() without a name), the smallest bundled one (2.6 MB of weights, 224 px); nsfwjs README: ~90% accurate (~93% for the midsized model)",
    threshold:
      'project choice: the explicit classes together more likely than not; the same 0.5 as the default score_threshold of NeMo Curator\'s NSFW filter (LAION\'s CLIP-based NSFW detector). Measured: the fixture photographs score 0.00003-0.040 (mobilenet_v2)',
    sexyThreshold:
      'project choice: off. nsfwjs README: Sexy is "sexually explicit images, not pornography" (swimwear and underwear adverts on news and shop pages); LAION-SAFETY counts Sexy as NSFW: set e.g. 0.5 to follow it',
    backend:
      'the issue (wasm backend); measured on a 2-core machine, mobilenet_v2: 56 ms per inference on wasm, 1,008 ms on the pure-JavaScript cpu backend (docs/filter.md)',
    numThreads:
      'tfjs runs wasm single-threaded under Node (WASM_HAS_MULTITHREAD_SUPPORT is false when IS_NODE, tfjs issue #3830); one thread also leaves the other cores to sharp',
  },
  async apply(item, config) {
    const scored = await scoreNsfwImage(item.bytes, config);
    if ('error' in scored) return reject('nsfw_decode_error', scored.error, `decodable ${item.decoded.format} image`);
    return judgeNsfw(scored.scores, config);
  },
};
