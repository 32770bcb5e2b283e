/**
 * The optional `nsfw` image operator (activities/filter/image/nsfw.ts): the model and the wasm backend
 * load from node_modules with no network access; the fixture photographs (../shared/fixtures/real,
 * skipped with a message when absent) and generated images are kept with their scores recorded; the
 * scores are deterministic; the config is validated and the operator is placed where it is listed.
 *
 * There are no NSFW images among the fixtures and none are added: the reject path is exercised with a
 * threshold of 0 (every image is rejected with reason `nsfw`, measured and threshold recorded).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_FILTER_CONFIG, DEFAULT_IMAGE_OPERATORS, FILTER_OPERATORS, filterConfigSchema } from '../activities/filter/config';
import { decodeImage, decodableConfigSchema } from '../activities/filter/image/decodable';
import {
  NSFW_CLASS_NAMES,
  judgeNsfw,
  loadNsfwModel,
  nsfwConfigSchema,
  nsfwInputPixels,
  nsfwModelsDir,
  nsfwOperator,
  scoreNsfwImage,
  tfjsWasmDir,
  type NsfwConfigInput,
  type NsfwModelInfo,
  type NsfwScores,
} from '../activities/filter/image/nsfw';
import type { DecodedImage, Keep, OperatorResult, Reject } from '../activities/filter/operator';
import { filterImage, resolveFilterPipeline } from '../activities/filter/pipeline';
import { PROJECT_ROOT } from '../infra/paths';
import { HAVE_REAL_FIXTURES, NO_FIXTURES_MESSAGE, fixtureFiles } from './support/fixtures';

const requireHere = createRequire(import.meta.url);
const NODE_MODULES = path.join(PROJECT_ROOT, 'node_modules');

/** The image operators with `nsfw` where docs/filter.md says to put it. */
const WITH_NSFW = ['decodable', 'animated', 'min-side', 'aspect-ratio', 'uniform-content', 'bytes-per-pixel', 'nsfw', 'phash-dedup'];
const pipelineWith = (nsfw: NsfwConfigInput = {}) =>
  resolveFilterPipeline(filterConfigSchema.parse({ image: { operators: WITH_NSFW, options: { nsfw } } }), 'th');

const config = (input: NsfwConfigInput = {}) => nsfwConfigSchema.parse(input);

async function decoded(bytes: Buffer): Promise<DecodedImage> {
  const r = await decodeImage(bytes, decodableConfigSchema.parse({}));
  if (!r.keep || r.value === undefined) throw new Error('test image did not decode');
  return r.value;
}

function expectKept(r: OperatorResult): Keep<never> {
  expect(r.keep, r.keep ? '' : `rejected: ${(r as Reject).reason} ${String((r as Reject).measured)} ${(r as Reject).detail ?? ''}`).toBe(true);
  return r as Keep<never>;
}

/**
 * A generated landscape (sky gradient, sun, hills, a house, trees), varied by `seed`. The model reads
 * these as Neutral/Drawing with P(Porn)+P(Hentai) <= 0.003. (Skin-toned noise textures are not used:
 * mobilenet_v2 gives them P(Porn) up to 0.5; see docs/filter.md.)
 */
function sceneSvg(width: number, height: number, seed: number): Buffer {
  const sky = ['#3d85c6', '#6fa8dc', '#0b5394', '#9fc5e8'][seed % 4];
  const ground = ['#38761d', '#6aa84f', '#274e13', '#93c47d'][(seed >> 1) % 4];
  const trees = Array.from({ length: 3 + (seed % 4) }, (_, i) => {
    const x = ((i * 97 + seed * 53) % (width - 40)) + 20;
    const y = height * 0.62 + ((i * 31 + seed * 7) % 30);
    return `<rect x="${x - 4}" y="${y}" width="8" height="30" fill="#5b3a1e"/><circle cx="${x}" cy="${y - 8}" r="${16 + (i % 3) * 4}" fill="#1e5e20"/>`;
  }).join('');
  return Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
<defs><linearGradient id="s" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="${sky}"/><stop offset="1" stop-color="#ffffff"/></linearGradient></defs>
<rect width="${width}" height="${height}" fill="url(#s)"/>
<circle cx="${width * (0.15 + (seed % 5) * 0.15)}" cy="${height * 0.2}" r="${height * 0.08}" fill="#ffd966"/>
<path d="M0 ${height * 0.6} Q ${width * 0.3} ${height * (0.45 + (seed % 3) * 0.05)} ${width * 0.6} ${height * 0.6} T ${width} ${height * 0.58} V ${height} H 0 Z" fill="${ground}"/>
<rect x="${width * 0.55}" y="${height * 0.5}" width="${width * 0.18}" height="${height * 0.18}" fill="#cccccc"/>
<path d="M${width * 0.53} ${height * 0.5} L ${width * 0.64} ${height * 0.4} L ${width * 0.75} ${height * 0.5} Z" fill="#990000"/>
${trees}</svg>`);
}

async function generatedPhoto(width: number, height: number, seed: number, format: 'jpeg' | 'png' | 'webp' = 'jpeg'): Promise<Buffer> {
  const img = sharp(sceneSvg(width, height, seed));
  return format === 'jpeg' ? img.jpeg({ quality: 90 }).toBuffer() : format === 'png' ? img.png().toBuffer() : img.webp().toBuffer();
}

let info: NsfwModelInfo;
let tfjsLoadedAtImport: boolean;
const networkCalls: string[] = [];

beforeAll(async () => {
  // Importing the filter config (which registers `nsfw`) must not load tfjs.
  tfjsLoadedAtImport = Object.keys(requireHere.cache).some((k) => k.includes(`${path.sep}@tensorflow${path.sep}`) || k.includes(`${path.sep}nsfwjs${path.sep}`));
  // Any fetch (global or tfjs's platform fetch, which uses the global one under Node) or TCP connect
  // during the load is recorded; fetch fails.
  const fetchBefore = globalThis.fetch;
  const connectBefore = net.Socket.prototype.connect;
  globalThis.fetch = ((input: unknown) => {
    networkCalls.push(`fetch ${String(input)}`);
    return Promise.reject(new Error('no network in this test'));
  }) as typeof fetch;
  net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    networkCalls.push(`connect ${JSON.stringify(args[0])}`);
    return (connectBefore as (...a: unknown[]) => net.Socket).apply(this, args);
  } as typeof net.Socket.prototype.connect;
  try {
    info = await loadNsfwModel();
    // One classification inside the guard too.
    await scoreNsfwImage(await generatedPhoto(320, 240, 3), config());
  } finally {
    globalThis.fetch = fetchBefore;
    net.Socket.prototype.connect = connectBefore;
  }
});

describe('nsfw: loading', () => {
  it('loads the bundled model and the wasm binaries from node_modules, with no network access', () => {
    expect(tfjsLoadedAtImport).toBe(false);
    expect(networkCalls).toEqual([]);
    expect(info.model).toBe('mobilenet_v2');
    expect(info.size).toBe(224);
    expect(info.backend).toBe('wasm');
    expect(info.modelDir).toBe(path.join(NODE_MODULES, 'nsfwjs', 'dist', 'cjs', 'models', 'mobilenet_v2'));
    expect(info.modelDir.startsWith(nsfwModelsDir())).toBe(true);
    expect(info.files.map((f) => path.basename(f))).toEqual(['model.min.js', 'group1-shard1of1.min.js']);
    for (const f of info.files) expect(fs.statSync(f).isFile()).toBe(true);
    expect(info.weightBytes).toBeGreaterThan(2_000_000);
    expect(info.wasmDir).toBe(path.join(NODE_MODULES, '@tensorflow', 'tfjs-backend-wasm', 'dist'));
    expect(info.wasmDir).toBe(tfjsWasmDir());
    expect(fs.existsSync(path.join(info.wasmDir!, 'tfjs-backend-wasm-simd.wasm'))).toBe(true);
    // Under Node tfjs runs wasm single-threaded.
    expect(info.threads).toBe(1);
    console.log(`nsfw: mobilenet_v2 on wasm loaded in ${Math.round(info.loadMs)} ms from ${path.relative(NODE_MODULES, info.modelDir)}`);
  });

  it('loads each model once per process (the same promise, the same info)', async () => {
    expect(await loadNsfwModel()).toBe(info);
    expect(await loadNsfwModel({ threshold: 0.2 })).toBe(info);
  });

  it('refuses a second backend in the same process (a wiring error, thrown)', async () => {
    await expect(loadNsfwModel({ backend: 'cpu' })).rejects.toThrow(/backend.*not per language/);
    await expect(loadNsfwModel({ numThreads: 2 })).rejects.toThrow(/wasm\/1/);
    expect(await loadNsfwModel()).toBe(info);
  });

  it('removes the process-wide exception handlers the wasm runtime installs', () => {
    // Emscripten's rethrowing listeners would otherwise turn the worker's own handling off.
    const listeners = [...process.listeners('uncaughtException'), ...process.listeners('unhandledRejection')];
    for (const l of listeners) expect(String(l)).not.toMatch(/ExitStatus|throw reason/);
  });
});

describe('nsfw: generated images (no fixtures needed)', () => {
  it('keeps a generated photo through the pipeline and records the five probabilities', async () => {
    const bytes = await generatedPhoto(480, 360, 1);
    const verdict = await filterImage(bytes, pipelineWith());
    expect(verdict.kept).toBe(true);
    expect(verdict.passed).toEqual(WITH_NSFW.slice(0, -1));
    const kept = expectKept(await nsfwOperator.apply({ bytes, decoded: await decoded(bytes) }, config(), {}));
    const stats = kept.stats!;
    expect(stats.model).toBe('mobilenet_v2');
    for (const key of ['drawing', 'hentai', 'neutral', 'porn', 'sexy', 'score']) {
      expect(typeof stats[key]).toBe('number');
      expect(stats[key]).toBeGreaterThanOrEqual(0);
      expect(stats[key]).toBeLessThanOrEqual(1);
    }
    expect(stats.score).toBeCloseTo((stats.porn as number) + (stats.hentai as number), 3);
    expect(stats.score).toBeLessThan(0.5);
  });

  it('scores greyscale, transparent and WebP images (decoded to RGB at 224 px)', async () => {
    const grey = await sharp(await generatedPhoto(300, 300, 2, 'png')).greyscale().png().toBuffer();
    const rgba = await sharp(await generatedPhoto(300, 300, 4, 'png')).removeAlpha().ensureAlpha(0.5).png().toBuffer();
    const webp = await generatedPhoto(400, 250, 5, 'webp');
    for (const bytes of [grey, rgba, webp]) {
      expect((await nsfwInputPixels(bytes, 224)).length).toBe(224 * 224 * 3);
      expectKept(await nsfwOperator.apply({ bytes, decoded: await decoded(bytes) }, config(), {}));
    }
    // Alpha is flattened on white: a half-transparent image reads lighter than the same image opaque.
    const opaque = await nsfwInputPixels(await generatedPhoto(300, 300, 4, 'png'), 224);
    const light = await nsfwInputPixels(rgba, 224);
    const mean = (b: Buffer) => b.reduce((a, v) => a + v, 0) / b.length;
    expect(mean(light)).toBeGreaterThan(mean(opaque) + 20);
  });

  it('is deterministic: the same image gives the same scores, alone or with others in flight', async () => {
    const images = await Promise.all([1, 2, 3, 4].map((seed) => generatedPhoto(320, 240, seed)));
    const once = [];
    for (const b of images) once.push(await scoreNsfwImage(b, config()));
    const again = await Promise.all(images.map((b) => scoreNsfwImage(b, config())));
    expect(again).toEqual(once);
    const scores = once.map((r) => ('scores' in r ? r.scores : undefined));
    expect(scores.every((s) => s !== undefined)).toBe(true);
    // Different pictures, different scores (the model reads the pixels).
    expect(new Set(scores.map((s) => s!.Neutral)).size).toBe(images.length);
  });

  it('rejects every image with reason nsfw when the threshold is 0 (measured and threshold recorded)', async () => {
    for (const seed of [1, 2, 3]) {
      const bytes = await generatedPhoto(320, 240, seed);
      const verdict = await filterImage(bytes, pipelineWith({ threshold: 0 }));
      expect(verdict.kept).toBe(false);
      expect(verdict.passed).toEqual(WITH_NSFW.slice(0, 6));
      expect(verdict.rejection).toMatchObject({ kind: 'image', operator: 'nsfw', reason: 'nsfw', threshold: 0 });
      const measured = verdict.rejection!.measured as number;
      expect(typeof measured).toBe('number');
      expect(measured).toBeGreaterThanOrEqual(0);
      expect(measured).toBeLessThan(0.5);
      expect(verdict.rejection!.detail).toMatch(/^P\(Porn\)\+P\(Hentai\); mobilenet_v2: Drawing [\d.e-]+, Hentai/);
      // The same measured value as the kept verdict's score.
      const kept = expectKept(await nsfwOperator.apply({ bytes, decoded: verdict.image! }, config(), {}));
      expect(measured).toBe(kept.stats!.score);
    }
  });

  it('rejects with reason nsfw_sexy when the Sexy threshold is set and reached', async () => {
    const bytes = await generatedPhoto(320, 240, 6);
    const verdict = await filterImage(bytes, pipelineWith({ threshold: 1, sexyThreshold: 0 }));
    expect(verdict.rejection).toMatchObject({ operator: 'nsfw', reason: 'nsfw_sexy', threshold: 0 });
    expect(verdict.rejection!.detail).toMatch(/^P\(Sexy\)/);
  });

  it('rejects bytes sharp cannot decode with nsfw_decode_error, never throws', async () => {
    const good = await generatedPhoto(320, 240, 7);
    const view = await decoded(good);
    const truncated = good.subarray(0, 600);
    for (const bytes of [truncated, Buffer.from('not an image at all'), Buffer.alloc(0)]) {
      const r = await nsfwOperator.apply({ bytes, decoded: view }, config(), {});
      expect(r.keep).toBe(false);
      expect(r).toMatchObject({ reason: 'nsfw_decode_error', threshold: 'decodable jpeg image' });
      expect(typeof (r as Reject).measured).toBe('string');
    }
  });
});

describe.skipIf(!HAVE_REAL_FIXTURES)('nsfw: the fixture photographs (../shared/fixtures/real/images/photo)', () => {
  it('keeps every fixture photograph with its scores recorded (adding nsfw changes no verdict)', async () => {
    const files = fixtureFiles(path.join('images', 'photo'));
    expect(files.length).toBeGreaterThan(0);
    const base = resolveFilterPipeline(DEFAULT_FILTER_CONFIG, 'th');
    const pipeline = pipelineWith();
    for (const file of files) {
      const name = path.basename(file);
      const bytes = fs.readFileSync(file);
      const without = await filterImage(bytes, base);
      const verdict = await filterImage(bytes, pipeline);
      // sharp__big-height.webp (13x169) is rejected by min-side before nsfw runs; the rest pass it.
      expect(verdict.kept, `${name}: ${JSON.stringify(verdict.rejection)}`).toBe(without.kept);
      if (verdict.kept) expect(verdict.passed).toContain('nsfw');
      else expect(verdict.rejection!.operator).not.toBe('nsfw');
      // Scored on its own, every photograph is kept, its five probabilities recorded.
      const kept = expectKept(await nsfwOperator.apply({ bytes, decoded: verdict.image! }, config(), {}));
      expect(kept.stats!.score, name).toBeLessThan(0.05);
      expect(kept.stats!.sexy, name).toBeLessThan(0.05);
      // The same file scored twice: the same numbers.
      const again = expectKept(await nsfwOperator.apply({ bytes, decoded: verdict.image! }, config(), {}));
      expect(again.stats).toEqual(kept.stats);
    }
  });
});

if (!HAVE_REAL_FIXTURES) it.skip(`nsfw on fixture photographs: ${NO_FIXTURES_MESSAGE}`, () => {});

describe('nsfw: the rule', () => {
  const scores = (s: Partial<NsfwScores>): NsfwScores => ({ Drawing: 0, Hentai: 0, Neutral: 0, Porn: 0, Sexy: 0, ...s });

  it('rejects at P(Porn)+P(Hentai) >= threshold, and judges Sexy only when asked', () => {
    expect(judgeNsfw(scores({ Porn: 0.3, Hentai: 0.2, Neutral: 0.5 }), config())).toMatchObject({ keep: false, reason: 'nsfw', measured: 0.5, threshold: 0.5 });
    expect(judgeNsfw(scores({ Porn: 0.3, Hentai: 0.19, Neutral: 0.51 }), config()).keep).toBe(true);
    expect(judgeNsfw(scores({ Sexy: 0.99, Neutral: 0.01 }), config()).keep).toBe(true);
    expect(judgeNsfw(scores({ Sexy: 0.7, Neutral: 0.3 }), config({ sexyThreshold: 0.6 }))).toMatchObject({ reason: 'nsfw_sexy', measured: 0.7, threshold: 0.6 });
    // The explicit rule first.
    expect(judgeNsfw(scores({ Porn: 0.6, Sexy: 0.4 }), config({ sexyThreshold: 0.3 }))).toMatchObject({ reason: 'nsfw' });
  });

  it('keeps the class names nsfwjs returns', () => {
    expect([...NSFW_CLASS_NAMES].sort()).toEqual(['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy']);
  });
});

describe('nsfw: configuration', () => {
  it('has documented defaults and unique reasons', () => {
    const defaults = nsfwConfigSchema.parse({});
    expect(defaults).toEqual({ model: 'mobilenet_v2', threshold: 0.5, sexyThreshold: null, backend: 'wasm', numThreads: 1 });
    for (const key of Object.keys(defaults)) expect(nsfwOperator.defaultSources[key], key).toBeTruthy();
    const others = FILTER_OPERATORS.list().filter((op) => op.name !== 'nsfw').flatMap((op) => op.reasons);
    for (const reason of nsfwOperator.reasons) expect(others).not.toContain(reason);
  });

  it('refuses bad options, naming the field', () => {
    expect(nsfwConfigSchema.safeParse({ threshold: 1.5 }).success).toBe(false);
    expect(nsfwConfigSchema.safeParse({ threshold: -0.1 }).success).toBe(false);
    expect(nsfwConfigSchema.safeParse({ sexyThreshold: 2 }).success).toBe(false);
    expect(nsfwConfigSchema.safeParse({ model: 'resnet50' }).success).toBe(false);
    expect(nsfwConfigSchema.safeParse({ backend: 'webgl' }).success).toBe(false);
    expect(nsfwConfigSchema.safeParse({ numThreads: 0 }).success).toBe(false);
    expect(nsfwConfigSchema.safeParse({ treshold: 0.4 }).success).toBe(false);
    const bad = filterConfigSchema.safeParse({ image: { operators: WITH_NSFW, options: { nsfw: { threshold: 3 } } } });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join('.'))).toEqual(['image.options.nsfw.threshold']);
    const perLanguage = filterConfigSchema.safeParse({ languages: { th: { image: { options: { nsfw: { model: 'vgg' } } } } } });
    expect(perLanguage.error!.issues.map((i) => i.path.join('.'))).toContain('languages.th.image.options.nsfw.model');
  });

  it('is registered but off by default, and is placed where it is listed', () => {
    expect(FILTER_OPERATORS.has('nsfw')).toBe(true);
    expect(DEFAULT_IMAGE_OPERATORS).not.toContain('nsfw');
    expect(DEFAULT_FILTER_CONFIG.image.operators).not.toContain('nsfw');
    expect(resolveFilterPipeline(DEFAULT_FILTER_CONFIG, 'th').image.map((s) => s.op.name)).not.toContain('nsfw');

    const parsed = filterConfigSchema.parse({
      image: { operators: WITH_NSFW, options: { nsfw: { threshold: 0.3, model: 'inception_v3' } } },
      languages: { ko: { image: { options: { nsfw: { sexyThreshold: 0.8 } } } } },
    });
    const th = resolveFilterPipeline(parsed, 'th');
    expect(th.decode?.op.name).toBe('decodable');
    expect(th.image.map((s) => s.op.name)).toEqual(WITH_NSFW.slice(1, -1));
    expect(th.imageSet.map((s) => s.op.name)).toEqual(['phash-dedup']);
    expect(th.image.find((s) => s.op.name === 'nsfw')!.config).toEqual({ model: 'inception_v3', threshold: 0.3, sexyThreshold: null, backend: 'wasm', numThreads: 1 });
    const ko = resolveFilterPipeline(parsed, 'ko');
    expect(ko.image.find((s) => s.op.name === 'nsfw')!.config).toMatchObject({ model: 'inception_v3', threshold: 0.3, sexyThreshold: 0.8 });

    // After the set operators it is refused.
    const late = filterConfigSchema.safeParse({ image: { operators: [...DEFAULT_IMAGE_OPERATORS, 'nsfw'] } });
    expect(late.success).toBe(false);
    expect(late.error!.issues[0]!.message).toMatch(/item operator "nsfw" must come before the set/);
  });
});
