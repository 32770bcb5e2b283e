/**
 * The filter stage's image operators, pHash grouping, the training-copy normalizer, the filter config
 * and the pipeline: on images generated here (always run) and on the real fixture images under
 * ../shared/fixtures/real/images (skipped, with a message, when that folder is absent).
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_FILTER_CONFIG,
  DEFAULT_IMAGE_OPERATORS,
  FILTER_OPERATORS,
  filterConfigSchema,
  type FilterConfigInput,
} from '../activities/filter/config';
import { decodeImage, decodableConfigSchema, isLosslessWebp, pixelStats } from '../activities/filter/image/decodable';
import { encodeTrainingCopy, normalizeImage, normalizeImageConfigSchema } from '../activities/filter/image/normalize';
import {
  compareImageQuality,
  groupNearDuplicateImages,
  hammingDistance,
  phashFromLuma32,
  phashOfImage,
  type PhashEntry,
} from '../activities/filter/image/phash';
import { OperatorRegistry, type DecodedImage } from '../activities/filter/operator';
import {
  FilterWiringError,
  countDedup,
  countVerdict,
  createCounters,
  dedupImages,
  filterImage,
  mergeCounters,
  phashEntry,
  rejectedByReason,
  resolveFilterPipeline,
  type ImageVerdict,
} from '../activities/filter/pipeline';
import { HAVE_REAL_FIXTURES, REAL_FIXTURES } from './support/fixtures';

const IMAGES = path.join(REAL_FIXTURES, 'images');
const HAS_FIXTURES = HAVE_REAL_FIXTURES; // tests/support/fixtures prints the skip message

const filesIn = (dir: string): string[] => fs.readdirSync(path.join(IMAGES, dir)).sort();
const read = (dir: string, file: string): Buffer => fs.readFileSync(path.join(IMAGES, dir, file));

const pipeline = resolveFilterPipeline(DEFAULT_FILTER_CONFIG, 'cs');
const withOptions = (options: Record<string, Record<string, unknown>>) =>
  resolveFilterPipeline(filterConfigSchema.parse({ image: { options } }), 'cs');

/**
 * A textured "photo": a sine pattern whose angle and frequency depend on `seed` (so different seeds are
 * different pictures to a perceptual hash), colour gradients and deterministic noise.
 */
async function photo(width: number, height: number, format: 'jpeg' | 'png' | 'webp' = 'jpeg', seed = 1): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  const angle = seed * 0.9;
  const freq = (0.015 + seed * 0.006) * (800 / Math.max(width, height));
  let s = seed;
  const clamp = (v: number): number => Math.max(0, Math.min(255, Math.round(v)));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const n = ((s >>> 24) % 30) - 15;
      const wave = 128 + 90 * Math.sin((x * Math.cos(angle) + y * Math.sin(angle)) * freq);
      const o = (y * width + x) * 3;
      raw[o] = clamp(wave + n);
      raw[o + 1] = clamp(0.5 * wave + (x * 127) / width + n);
      raw[o + 2] = clamp(0.5 * wave + (y * 127) / height + n);
    }
  }
  const img = sharp(raw, { raw: { width, height, channels: 3 } });
  return format === 'jpeg' ? img.jpeg({ quality: 90 }).toBuffer() : format === 'png' ? img.png().toBuffer() : img.webp().toBuffer();
}

const flat = (width: number, height: number, colour: string, alpha = 1): Promise<Buffer> =>
  sharp({ create: { width, height, channels: 4, background: { ...hex(colour), alpha } } }).png().toBuffer();

function hex(c: string): { r: number; g: number; b: number } {
  return { r: Number.parseInt(c.slice(1, 3), 16), g: Number.parseInt(c.slice(3, 5), 16), b: Number.parseInt(c.slice(5, 7), 16) };
}

function expectRejected(v: ImageVerdict, operator: string, reason: string): void {
  expect(v.kept, `expected ${operator}/${reason}, got kept`).toBe(false);
  expect({ operator: v.rejection?.operator, reason: v.rejection?.reason }).toEqual({ operator, reason });
  expect(v.rejection?.measured).toBeDefined();
  expect(v.rejection?.threshold).toBeDefined();
}

describe('registry and config', () => {
  it('registers every built-in operator with defaults that validate and a source for each default', () => {
    // Every registered image operator is a default one, except the optional ones (off by default).
    expect(FILTER_OPERATORS.names('image').filter((n) => n !== 'nsfw')).toEqual([...DEFAULT_IMAGE_OPERATORS]);
    for (const op of FILTER_OPERATORS.list()) {
      const defaults = op.configSchema.parse({}) as Record<string, unknown>;
      for (const key of Object.keys(defaults)) expect(op.defaultSources[key], `${op.name}.${key} has no documented source`).toBeTruthy();
      expect(op.reasons.length).toBeGreaterThan(0);
    }
  });

  it('keeps reasons unique across operators (stage counts are by reason)', () => {
    const all = FILTER_OPERATORS.list().flatMap((op) => op.reasons);
    expect(new Set(all).size).toBe(all.length);
  });

  it('refuses duplicate and malformed operator names', () => {
    const registry = new OperatorRegistry(FILTER_OPERATORS.list());
    expect(() => registry.register(FILTER_OPERATORS.require('min-side'))).toThrow(/already registered/);
    expect(() => registry.register({ ...FILTER_OPERATORS.require('min-side'), name: 'Min_Side' })).toThrow(/kebab-case/);
    expect(() => registry.require('nope')).toThrow(/unknown filter operator "nope"/);
  });

  it('lists every problem in a bad config, with its path', () => {
    const bad: FilterConfigInput = {
      image: {
        operators: ['min-side', 'decodable', 'phash-dedup', 'aspect-ratio', 'length', 'no-such-op'],
        options: { 'min-side': { minSide: -3 }, 'aspect-ratio': { maxAspectRatio: 3, panoramaMaxAspectRatio: 2 }, 'bogus-op': {} },
      },
      languages: { th: { image: { options: { 'min-side': { unknownKey: 1 } } } } },
    };
    const r = filterConfigSchema.safeParse(bad);
    expect(r.success).toBe(false);
    const messages = r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n');
    expect(messages).toMatch(/image\.operators\.1: "decodable" decodes the image and must be the first/);
    expect(messages).toMatch(/image\.operators: the image operators must start with "decodable"/);
    expect(messages).toMatch(/image\.operators\.3: item operator "aspect-ratio" must come before the set/);
    expect(messages).toMatch(/image\.operators\.4: "length" is a text operator/);
    expect(messages).toMatch(/image\.operators\.5: unknown image operator "no-such-op"/);
    expect(messages).toMatch(/image\.options\.min-side\.minSide/);
    expect(messages).toMatch(/image\.options\.aspect-ratio\.panoramaMaxAspectRatio/);
    expect(messages).toMatch(/image\.options\.bogus-op: options for unknown image operator/);
    expect(messages).toMatch(/languages\.th\.image\.options\.min-side/);
  });

  it('merges per-language overrides over the base options and the defaults', () => {
    const config = filterConfigSchema.parse({
      image: { options: { 'min-side': { minSide: 300 }, animated: { mode: 'reject' } } },
      languages: { th: { image: { options: { 'min-side': { minSide: 150 } } } }, ko: { image: { operators: ['decodable', 'min-side'] } } },
    });
    const cs = resolveFilterPipeline(config, 'cs');
    const th = resolveFilterPipeline(config, 'th');
    const ko = resolveFilterPipeline(config, 'ko');
    const cfg = (p: typeof cs, name: string): unknown => p.image.find((s) => s.op.name === name)?.config;
    expect(cfg(cs, 'min-side')).toEqual({ minSide: 300 });
    expect(cfg(th, 'min-side')).toEqual({ minSide: 150 });
    expect(cfg(th, 'animated')).toEqual({ mode: 'reject' });
    expect(ko.image.map((s) => s.op.name)).toEqual(['min-side']);
    expect(ko.decode?.op.name).toBe('decodable');
    expect(cs.imageSet.map((s) => s.op.name)).toEqual(['phash-dedup']);
  });
});

describe('image operators on generated images', () => {
  it('refuses image operators without the decoder', () => {
    const unchecked = { ...DEFAULT_FILTER_CONFIG, image: { operators: ['min-side'], options: {} } };
    expect(() => resolveFilterPipeline(unchecked, 'cs')).toThrow(FilterWiringError);
    expect(pipeline.decode?.op.name).toBe('decodable');
  });

  it('keeps a plain photo and reports its decoded view', async () => {
    const v = await filterImage(await photo(640, 480), pipeline);
    expect(v.kept).toBe(true);
    expect(v.passed).toEqual(['decodable', 'animated', 'min-side', 'aspect-ratio', 'uniform-content', 'bytes-per-pixel']);
    expect(v.image).toMatchObject({ format: 'jpeg', width: 640, height: 480, frames: 1, orientation: 1, fidelity: 'lossy', hasAlpha: false });
    expect(v.image!.phash).toMatch(/^[0-9a-f]{16}$/);
    expect(v.image!.pixels.maxChannelStdev).toBeGreaterThan(20);
  });

  it('rejects what is not a decodable image, with the ingest reasons', async () => {
    expectRejected(await filterImage(Buffer.from('<!doctype html><html><body>404</body></html>'), pipeline), 'decodable', 'not_an_image');
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="400" height="400"><rect width="400" height="400"/></svg>');
    expectRejected(await filterImage(svg, pipeline), 'decodable', 'unsupported_format');
    const jpeg = await photo(400, 300);
    expectRejected(await filterImage(jpeg.subarray(0, jpeg.length / 2), pipeline), 'decodable', 'decode_error');
    const small = resolveFilterPipeline(filterConfigSchema.parse({ image: { options: { decodable: { limitInputPixels: 1000 } } } }), 'cs');
    const v = await filterImage(jpeg, small);
    expectRejected(v, 'decodable', 'too_many_pixels');
    expect(v.rejection!.threshold).toBe(1000);
  });

  it('judges the shortest side after EXIF orientation', async () => {
    const raw = await photo(600, 150, 'png');
    const rotated = await sharp(raw).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    const d = await decodeImage(rotated, decodableConfigSchema.parse({}));
    expect(d.keep && d.value).toMatchObject({ storedWidth: 600, storedHeight: 150, width: 150, height: 600, orientation: 6 });
    const v = await filterImage(rotated, pipeline);
    expectRejected(v, 'min-side', 'too_small');
    expect(v.rejection).toMatchObject({ measured: 150, threshold: 200 });
  });

  it('rejects banner-shaped images but keeps large panoramas', async () => {
    const banner = await filterImage(await photo(970, 250), pipeline); // IAB billboard
    expectRejected(banner, 'aspect-ratio', 'extreme_aspect_ratio');
    expect(banner.rejection).toMatchObject({ measured: 3.88, threshold: 3 });
    expect((await filterImage(await photo(2400, 480), pipeline)).kept).toBe(true); // 5:1, short side 480
    const strip = await filterImage(await photo(3000, 400), pipeline);
    expectRejected(strip, 'aspect-ratio', 'extreme_aspect_ratio');
    expect(strip.rejection).toMatchObject({ measured: 7.5, threshold: 6 });
    const datacomp = withOptions({ 'aspect-ratio': { panoramaMaxAspectRatio: 3 } });
    expectRejected(await filterImage(await photo(2400, 480), datacomp), 'aspect-ratio', 'extreme_aspect_ratio');
  });

  it('rejects flat and transparent content with the specific reason', async () => {
    const grey = await filterImage(await flat(400, 400, '#808080'), pipeline);
    expectRejected(grey, 'uniform-content', 'near_uniform');
    expect(grey.rejection).toMatchObject({ measured: 0, threshold: 4 });
    const clear = await filterImage(await flat(400, 400, '#ff0000', 0), pipeline);
    expectRejected(clear, 'uniform-content', 'transparent');
    expect(clear.rejection).toMatchObject({ measured: 1, threshold: 0.95 });
  });

  it('rejects a flat graphic by bytes per pixel', async () => {
    // Three flat stripes: not uniform, but a few hundred bytes for 540,000 pixels.
    const stripes = await sharp({ create: { width: 900, height: 600, channels: 3, background: '#21468b' } })
      .composite([
        { input: { create: { width: 900, height: 200, channels: 3, background: '#ae1c28' } }, top: 0, left: 0 },
        { input: { create: { width: 900, height: 200, channels: 3, background: '#ffffff' } }, top: 200, left: 0 },
      ])
      .png({ palette: true })
      .toBuffer();
    const v = await filterImage(stripes, pipeline);
    expectRejected(v, 'bytes-per-pixel', 'low_bytes_per_pixel');
    expect(v.rejection!.measured as number).toBeLessThan(0.004);
  });

  it('keeps the first frame of an animation or rejects it, by config', async () => {
    const frames = await Promise.all([1, 2, 3].map((s) => photo(320, 240, 'png', s)));
    const animated = await sharp(frames, { join: { animated: true } }).webp({ loop: 0, delay: [100, 100, 100] }).toBuffer();
    const first = await filterImage(animated, pipeline);
    expect(first.kept).toBe(true);
    expect(first.image).toMatchObject({ frames: 3, width: 320, height: 240 });
    const rejecting = await filterImage(animated, withOptions({ animated: { mode: 'reject' } }));
    expectRejected(rejecting, 'animated', 'animated');
    expect(rejecting.rejection).toMatchObject({ measured: 3, threshold: 1 });
  });

  it('judges bytes validated at ingest the same way, from one decode, and keeps its pixels for the training copy', async () => {
    const rotated = await sharp(await photo(2000, 1000, 'png')).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    const frames = await Promise.all([1, 2, 3].map((s) => photo(320, 240, 'png', s)));
    const cases = [
      await photo(640, 480),
      rotated,
      await sharp(await photo(900, 700, 'png', 4)).ensureAlpha(0.5).png().toBuffer(),
      await flat(400, 400, '#ff0000', 0),
      await sharp(frames, { join: { animated: true } }).webp({ loop: 0, delay: [100, 100, 100] }).toBuffer(),
    ];
    for (const bytes of cases) {
      const raw = await filterImage(bytes, pipeline);
      const staged = await filterImage(bytes, pipeline, {}, { validatedBy: 'ingest' });
      expect(staged).toEqual(raw);
      expect(raw.image?.raster).toBeUndefined();
    }
    // Truncated data is still caught by the one decode (failOn: 'error').
    const jpeg = await photo(400, 300);
    expectRejected(await filterImage(jpeg.subarray(0, jpeg.length / 2), pipeline, {}, { validatedBy: 'ingest' }), 'decodable', 'decode_error');

    // keepRaster: the oriented, sRGB pixels at the training copy's side; the copy made from them is
    // byte for byte the one normalizeImage makes from the file.
    const config = normalizeImageConfigSchema.parse({});
    const v = await filterImage(rotated, pipeline, {}, { validatedBy: 'ingest', keepRaster: true });
    expect(v.image?.raster).toMatchObject({ width: 512, height: 1024, channels: 3 });
    const fromRaster = await encodeTrainingCopy(v.image!.raster!, config);
    const fromFile = await normalizeImage(rotated, config);
    expect(fromRaster.ok && fromFile.ok && fromRaster.image.sha256 === fromFile.image.sha256).toBe(true);
    // A smaller maxSide than the decode: the copy is shrunk from the raster, never enlarged.
    const small = await encodeTrainingCopy(v.image!.raster!, { ...config, maxSide: 300 });
    expect(small.ok && [small.image.width, small.image.height]).toEqual([150, 300]);
  });

  it('measures pixel statistics over mid-grey', () => {
    const opaqueBlackWhite = new Uint8Array([0, 0, 0, 255, 255, 255, 255, 255]);
    expect(pixelStats(opaqueBlackWhite, 2)).toMatchObject({ transparentFraction: 0, maxChannelStdev: 127.5 });
    const clear = new Uint8Array([255, 0, 0, 0, 0, 255, 0, 0]);
    expect(pixelStats(clear, 2)).toMatchObject({ transparentFraction: 1, maxChannelStdev: 0 });
  });

  it('tells lossless WebP from lossy', async () => {
    const p = await photo(64, 64, 'png');
    expect(isLosslessWebp(await sharp(p).webp({ lossless: true }).toBuffer())).toBe(true);
    expect(isLosslessWebp(await sharp(p).webp({ quality: 80 }).toBuffer())).toBe(false);
    expect(isLosslessWebp(Buffer.from('not a webp at all, just text'))).toBe(false);
  });
});

describe('pHash', () => {
  it('hashes 32x32 luminance deterministically and measures Hamming distance', () => {
    const gradient = Uint8Array.from({ length: 1024 }, (_, i) => (i % 32) * 8);
    const inverted = gradient.map((v) => 255 - v);
    const h = phashFromLuma32(gradient);
    expect(h).toMatch(/^[0-9a-f]{16}$/);
    expect(phashFromLuma32(gradient)).toBe(h);
    expect(hammingDistance(h, h)).toBe(0);
    expect(hammingDistance(h, phashFromLuma32(inverted))).toBeGreaterThan(24);
    expect(hammingDistance('0000000000000000', 'ffffffffffffffff')).toBe(64);
    expect(hammingDistance('8000000000000001', '0000000000000000')).toBe(2);
    expect(() => phashFromLuma32(new Uint8Array(10))).toThrow(RangeError);
    expect(() => hammingDistance('xyz', h)).toThrow(RangeError);
  });

  it('finds re-encoded and resized copies and tells different pictures apart', async () => {
    const original = await photo(800, 600, 'png', 1);
    const h = await phashOfImage(original);
    const copies = [
      await sharp(original).jpeg({ quality: 40 }).toBuffer(),
      await sharp(original).resize(400).webp().toBuffer(),
      await sharp(original).resize(240).png().toBuffer(),
    ];
    for (const c of copies) expect(hammingDistance(h, await phashOfImage(c))).toBeLessThanOrEqual(6);
    const other = await phashOfImage(await sharp(original).flop().toBuffer());
    expect(hammingDistance(h, other)).toBeGreaterThan(10);
  });

  const entry = (id: string, phash: string, width: number, height: number, bytes: number, fidelity: PhashEntry['fidelity'] = 'lossy'): PhashEntry => ({
    id,
    phash,
    width,
    height,
    bytes,
    fidelity,
  });

  it('ranks quality by pixels, stillness, fidelity, bytes per pixel, then id', () => {
    const big = entry('b', '0', 800, 600, 10_000);
    const small = entry('a', '0', 400, 300, 90_000);
    expect(compareImageQuality(big, small)).toBeLessThan(0);
    expect(compareImageQuality({ ...big, frames: 10 }, { ...big, id: 'c' })).toBeGreaterThan(0);
    expect(compareImageQuality(entry('x', '0', 10, 10, 10, 'palette'), entry('y', '0', 10, 10, 5, 'lossless'))).toBeGreaterThan(0);
    expect(compareImageQuality(entry('x', '0', 10, 10, 50), entry('y', '0', 10, 10, 60))).toBeGreaterThan(0);
    expect(compareImageQuality(entry('x', '0', 10, 10, 50), entry('y', '0', 10, 10, 50))).toBeLessThan(0);
  });

  it('groups around the best member without chaining, whatever the input order', () => {
    const a = entry('a', '0000000000000000', 1000, 800, 200_000); // best
    const b = entry('b', '000000000000000f', 500, 400, 50_000); // 4 bits from a
    const c = entry('c', '00000000000000ff', 250, 200, 10_000); // 8 from a, 4 from b
    const d = entry('d', '0000000000000fff', 250, 200, 9_000); // 12 from a, 4 from c: not a member
    const e = entry('e', 'ffffffffffffffff', 2000, 1000, 1_000); // unrelated
    for (const order of [[a, b, c, d, e], [e, d, c, b, a], [c, e, a, d, b]]) {
      const { groups, duplicateOf } = groupNearDuplicateImages(order, 10);
      expect(groups).toEqual([{ keeper: 'a', members: [{ id: 'b', measured: 4 }, { id: 'c', measured: 8 }] }]);
      expect(duplicateOf.get('d')).toBeUndefined();
    }
    expect(() => groupNearDuplicateImages([a, a], 10)).toThrow(/duplicate id/);
    expect(() => groupNearDuplicateImages([a], 65)).toThrow(RangeError);
  });

  it('runs as the phash-dedup set operator and is counted', async () => {
    const original = await photo(800, 600, 'png', 3);
    const images: Array<{ id: string; bytes: Buffer }> = [
      { id: 'small-copy', bytes: await sharp(original).resize(400).jpeg().toBuffer() },
      { id: 'original', bytes: await sharp(original).jpeg({ quality: 95 }).toBuffer() },
      { id: 'other', bytes: await photo(800, 600, 'jpeg', 7) },
    ];
    const counters = createCounters(pipeline);
    const entries: PhashEntry[] = [];
    for (const img of images) {
      const v = await filterImage(img.bytes, pipeline);
      countVerdict(counters, v);
      if (v.kept) entries.push(phashEntry(img.id, v.image!));
    }
    const result = dedupImages(entries, pipeline);
    countDedup(counters, result);
    expect(result.groups['phash-dedup']).toEqual([{ keeper: 'original', members: [{ id: 'small-copy', measured: expect.any(Number) }] }]);
    expect(result.verdicts.get('original')).toBeNull();
    expect(result.verdicts.get('other')).toBeNull();
    expect(result.verdicts.get('small-copy')).toMatchObject({ kind: 'image', operator: 'phash-dedup', reason: 'near_duplicate_image', threshold: 10 });
    expect(counters['phash-dedup']).toEqual({ in: 3, kept: 2, rejected: 1, byReason: { near_duplicate_image: 1 } });
    expect(counters['min-side']).toMatchObject({ in: 3, kept: 3, rejected: 0 });
    expect(rejectedByReason(mergeCounters(counters, counters))).toEqual({ near_duplicate_image: 2 });
  });
});

describe('normalizeImage (training copy)', () => {
  const config = normalizeImageConfigSchema.parse({});

  it('applies EXIF orientation, caps the longer side, flattens alpha and writes sRGB JPEG', async () => {
    const rotated = await sharp(await photo(2000, 1000, 'png')).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    const r = await normalizeImage(rotated, config);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.image).toMatchObject({ format: 'jpeg', mime: 'image/jpeg', width: 512, height: 1024 });
    const meta = await sharp(r.image.bytes).metadata();
    expect(meta).toMatchObject({ format: 'jpeg', width: 512, height: 1024, channels: 3, space: 'srgb' });
    expect(meta.orientation).toBeUndefined();

    const transparent = await normalizeImage(await flat(300, 300, '#000000', 0), { ...config, format: 'png' });
    expect(transparent.ok && (await sharp(transparent.image.bytes).stats()).channels.slice(0, 3).map((c) => c.mean)).toEqual([255, 255, 255]);
  });

  it('never enlarges, encodes each format, and reports bad input as a reason', async () => {
    const small = await photo(300, 200);
    for (const format of ['jpeg', 'webp', 'png', 'avif'] as const) {
      const r = await normalizeImage(small, { ...config, format });
      expect(r.ok && { format: (await sharp(r.image.bytes).metadata()).format, w: r.image.width, h: r.image.height }).toEqual({
        format: format === 'avif' ? 'heif' : format,
        w: 300,
        h: 200,
      });
    }
    const bad = await normalizeImage(Buffer.from('nope'), config);
    expect(bad).toMatchObject({ ok: false, reason: 'normalize_error' });
  });

  it('keeps only the first frame of an animation', async () => {
    const frames = await Promise.all([1, 2].map((s) => photo(200, 200, 'png', s)));
    const animated = await sharp(frames, { join: { animated: true } }).gif().toBuffer();
    const r = await normalizeImage(animated, { ...config, format: 'png' });
    expect(r.ok && r.image.height).toBe(200);
  });
});

describe.skipIf(!HAS_FIXTURES)('real fixture images (../shared/fixtures/real/images)', () => {
  const run = async (dir: string, file: string, p = pipeline): Promise<ImageVerdict> => filterImage(read(dir, file), p);

  it('keeps every photograph in photo/ (big-height.webp is a blank 13 px strip, not a photograph)', async () => {
    const kept: string[] = [];
    for (const file of filesIn('photo')) {
      const v = await run('photo', file);
      if (file === 'sharp__big-height.webp') {
        // 97 frames of 13x169 pure white (sharp's "big height" animation test): no photograph at all.
        expectRejected(v, 'min-side', 'too_small');
        expect(v.image).toMatchObject({ width: 13, height: 169, frames: 97 });
        expect(v.image!.pixels.maxChannelStdev).toBe(0);
        continue;
      }
      expect(v.rejection, file).toBeUndefined();
      kept.push(file);
    }
    expect(kept).toEqual(['sharp__320x240.jpg', 'sharp__Landscape_6.jpg', 'sharp__concert.jpg', 'sharp__flowers.jpeg', 'sharp__pitm.avif']);
  });

  it('keeps the 4096x800 panorama only under the panorama rule', async () => {
    const v = await run('photo', 'sharp__pitm.avif');
    expect(v.image).toMatchObject({ width: 4096, height: 800, format: 'avif' });
    const datacomp = withOptions({ 'aspect-ratio': { panoramaMaxAspectRatio: 3 } });
    const strict = await run('photo', 'sharp__pitm.avif', datacomp);
    expectRejected(strict, 'aspect-ratio', 'extreme_aspect_ratio');
    expect(strict.rejection).toMatchObject({ measured: 5.12, threshold: 3 });
  });

  it('rejects every tiny/ image with the right reason', async () => {
    const expected: Record<string, [string, string]> = {
      'file-type__fixture.ico': ['decodable', 'unsupported_format'],
      'image-size__1x2-flipped-little-endian.jpg': ['min-side', 'too_small'],
      'probe-image-size__google1.ico': ['decodable', 'unsupported_format'],
      'probe-image-size__webp-vp8.webp': ['min-side', 'too_small'],
      'sharp__2x2_fdcce6.png': ['min-side', 'too_small'],
      'sharp__Flag_of_the_Netherlands.png': ['bytes-per-pixel', 'low_bytes_per_pixel'],
      'sharp__bgbn4a08.png': ['min-side', 'too_small'],
      'sharp__full-transparent.png': ['uniform-content', 'transparent'],
      'sharp__grey-plus-alpha.gif': ['min-side', 'too_small'],
    };
    expect(filesIn('tiny')).toEqual(Object.keys(expected).sort());
    for (const file of filesIn('tiny')) {
      const [operator, reason] = expected[file]!;
      expectRejected(await run('tiny', file), operator, reason);
    }
    const flag = await run('tiny', 'sharp__Flag_of_the_Netherlands.png');
    expect(flag.rejection).toMatchObject({ measured: 0.00147, threshold: 0.004 });
    const flipped = await run('tiny', 'image-size__1x2-flipped-little-endian.jpg');
    expect(flipped.image).toMatchObject({ storedWidth: 1, storedHeight: 2, width: 2, height: 1, orientation: 8 });
  });

  it('rejects every broken/ file at decodable with a reason, never crashing', async () => {
    const expected: Record<string, string> = {
      'file-type__fixture-json.webp': 'not_an_image',
      'image-size__sample-garbled.avif': 'decode_error',
      'image-size__sample.png': 'not_an_image',
      'sharp__corrupt-header.jpg': 'decode_error',
      'sharp__truncated.jpg': 'decode_error',
      'sharp__truncated.png': 'decode_error',
    };
    expect(filesIn('broken')).toEqual(Object.keys(expected).sort());
    for (const file of filesIn('broken')) {
      const v = await run('broken', file);
      expectRejected(v, 'decodable', expected[file]!);
      expect(String(v.rejection!.measured).length, file).toBeGreaterThan(0);
      // The ingest validator would have refused these; without its full decode the one decode still does.
      expectRejected(await filterImage(read('broken', file), pipeline, {}, { validatedBy: 'ingest' }), 'decodable', expected[file]!);
    }
  });

  it('decodes every formats/ file or gives it unsupported_format', async () => {
    const unsupported = ['file-type__fixture.jxl', 'image-size__viewbox.svg', 'probe-image-size__iojs_logo.bmp'];
    const decodable = decodableConfigSchema.parse({});
    for (const file of filesIn('formats')) {
      const d = await decodeImage(read('formats', file), decodable);
      if (unsupported.includes(file)) {
        expect(d.keep ? 'decoded' : d.reason, file).toBe('unsupported_format');
      } else {
        expect(d.keep, `${file}: ${d.keep ? '' : `${d.reason} ${d.measured}`}`).toBe(true);
      }
    }
    const apng = await decodeImage(read('formats', 'file-type__fixture.apng'), decodable);
    expect(apng.keep && apng.value).toMatchObject({ format: 'apng', frames: 1, fidelity: 'lossless' });
    const gif = await decodeImage(read('formats', 'probe-image-size__iojs_logo.gif'), decodable);
    expect(gif.keep && gif.value?.fidelity).toBe('palette');
    const vp8l = await decodeImage(read('formats', 'probe-image-size__webp-vp8l.webp'), decodable);
    expect(vp8l.keep && vp8l.value?.fidelity).toBe('lossless');
  });

  it('handles animations by config', async () => {
    // Frames are counted from the header, also when the validator's all-frames decode is skipped.
    for (const [file, frames] of [['sharp__animated-loop-3.webp', 10], ['sharp__rotating-squares.gif', 30]] as const) {
      const d = await decodeImage(read('animated', file), decodableConfigSchema.parse({}), { validatedBy: 'ingest' });
      expect(d.keep && d.value?.frames).toBe(frames);
    }
    const webp = await run('animated', 'sharp__animated-loop-3.webp');
    expect(webp.kept).toBe(true);
    expect(webp.image).toMatchObject({ frames: 10, width: 370, height: 285 });
    expectRejected(await run('animated', 'sharp__rotating-squares.gif'), 'min-side', 'too_small');
    const reject = withOptions({ animated: { mode: 'reject' } });
    for (const [file, frames] of [['sharp__animated-loop-3.webp', 10], ['sharp__rotating-squares.gif', 30]] as const) {
      const v = await run('animated', file, reject);
      expectRejected(v, 'animated', 'animated');
      expect(v.rejection!.measured).toBe(frames);
    }
  });

  it('groups the same picture across formats and keeps the best copy', async () => {
    const decodable = decodableConfigSchema.parse({});
    const entries: PhashEntry[] = [];
    const decoded: Record<string, DecodedImage> = {};
    for (const dir of ['formats', 'photo']) {
      for (const file of filesIn(dir)) {
        const d = await decodeImage(read(dir, file), decodable);
        if (!d.keep || d.value === undefined) continue;
        decoded[file] = d.value;
        entries.push(phashEntry(file, d.value));
      }
    }
    const { groups } = groupNearDuplicateImages(entries, 10);
    const byKeeper = Object.fromEntries(groups.map((g) => [g.keeper, g.members.map((m) => m.id).sort()]));
    // One 123x456 picture in five encodings: the lossless WebP is the best copy.
    expect(byKeeper['image-size__extended.webp']).toEqual([
      'image-size__lossy.webp',
      'image-size__progressive.jpg',
      'image-size__sample.avif',
      'image-size__sample.gif',
    ]);
    // The transparent io.js logo: PNG and lossless WebP tie on fidelity; the PNG spends more bytes.
    expect(byKeeper['probe-image-size__iojs_logo.png']).toEqual([
      'probe-image-size__iojs_logo.gif',
      'probe-image-size__webp-vp8l.webp',
      'probe-image-size__webp-vp8x.webp',
    ]);
    // EXIF orientation 5 applied to both copies before hashing: the same picture.
    expect(hammingDistance(decoded['probe-image-size__Exif5-1.5x.jpg']!.phash, decoded['probe-image-size__Exif5-1.5x.webp']!.phash)).toBe(0);
    // No two photographs are the same picture.
    const photos = new Set(filesIn('photo'));
    for (const g of groups) expect(photos.has(g.keeper) && g.members.some((m) => photos.has(m.id))).toBe(false);
  });

  it('writes oriented training copies of the photographs', async () => {
    const config = normalizeImageConfigSchema.parse({});
    const sizes: Record<string, [number, number]> = {};
    for (const file of filesIn('photo')) {
      const r = await normalizeImage(read('photo', file), config);
      expect(r.ok, file).toBe(true);
      if (r.ok) sizes[file] = [r.image.width, r.image.height];
    }
    expect(sizes).toEqual({
      'sharp__320x240.jpg': [320, 240],
      'sharp__Landscape_6.jpg': [600, 450], // stored 450x600 with orientation 6
      'sharp__big-height.webp': [13, 169], // first frame only
      'sharp__concert.jpg': [400, 267],
      'sharp__flowers.jpeg': [1024, 576],
      'sharp__pitm.avif': [1024, 200],
    });
    // The normalized copy is what the pHash saw: same picture as the original.
    const landscape = read('photo', 'sharp__Landscape_6.jpg');
    const copy = await normalizeImage(landscape, config);
    expect(copy.ok && hammingDistance(await phashOfImage(landscape), await phashOfImage(copy.image.bytes))).toBeLessThanOrEqual(4);
  });

  it('counts a whole folder run per operator and reason', async () => {
    const counters = createCounters(pipeline);
    for (const dir of ['photo', 'tiny', 'broken']) for (const file of filesIn(dir)) countVerdict(counters, await run(dir, file));
    expect(counters.decodable).toEqual({
      in: 21,
      kept: 13,
      rejected: 8,
      byReason: { unsupported_format: 2, not_an_image: 2, decode_error: 4 },
    });
    expect(rejectedByReason(counters)).toEqual({
      unsupported_format: 2,
      not_an_image: 2,
      decode_error: 4,
      too_small: 6,
      transparent: 1,
      low_bytes_per_pixel: 1,
    });
  });
});
