/**
 * bench:filter helper: where the filter stage's image chain (`judgeImage` with `validatedBy: 'ingest'`)
 * spends its time, one image at a time, each step of activities/filter/image/decodable.ts and the
 * training copy timed on its own (mean ms over R copies of each fixture photo), next to the bare
 * baseline and the ingest validator's full decode (which the stage no longer repeats).
 * Run: npx tsx bench/filter-profile.ts [R]
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { decodeFully, inspectImage } from '../activities/ingest/validate-image';
import { pixelStats } from '../activities/filter/image/decodable';
import { encodeTrainingCopy, normalizeImageConfigSchema } from '../activities/filter/image/normalize';
import { phashFromRaw } from '../activities/filter/image/phash';
import { decodeRaster, thumbnailOf } from '../activities/filter/image/raster';
import { PROJECT_ROOT } from '../infra/paths';
import { variant } from './filter-images';

const R = Number(process.argv[2] ?? 20);
const dir = path.resolve(PROJECT_ROOT, '..', 'shared', 'fixtures', 'real', 'images', 'photo');
const policy = { limitInputPixels: 1e8 };
const normalize = normalizeImageConfigSchema.parse({});
const steps = ['inspect', 'decode', 'thumbnail', 'pixelStats', 'phash', 'copy', 'copy sha', 'chain', 'bare', '(validator)'] as const;
console.log(`filter chain, mean ms per image over ${R} copies (chain = the steps before it; validator = the full decode ingest made):`);
console.log(`  ${'image'.padEnd(26)} ${steps.map((s) => s.padStart(11)).join('')}`);
for (const f of fs.readdirSync(dir).sort()) {
  const base = fs.readFileSync(path.join(dir, f));
  const t: Record<string, number> = Object.fromEntries(steps.map((s) => [s, 0]));
  for (let k = -2; k < R; k++) {
    const bytes = variant(base, 5_000_000 + k);
    let t0 = performance.now();
    const start = t0;
    const lap = (s: (typeof steps)[number]) => {
      const now = performance.now();
      if (k >= 0) t[s]! += now - t0;
      t0 = now;
    };
    const inspected = await inspectImage(bytes, policy);
    lap('inspect');
    if (!inspected.ok) throw new Error(`${f}: ${inspected.reason}`);
    const raster = await decodeRaster(bytes, { maxSide: 1024, limitInputPixels: policy.limitInputPixels });
    lap('decode');
    const thumb = await thumbnailOf(raster, 256);
    lap('thumbnail');
    pixelStats(thumb.data, thumb.width * thumb.height, thumb.channels);
    lap('pixelStats');
    phashFromRaw(thumb.data, thumb.width, thumb.height, thumb.channels);
    lap('phash');
    const copy = await encodeTrainingCopy(raster, normalize);
    lap('copy');
    if (copy.ok) createHash('sha256').update(copy.image.bytes).digest('hex');
    lap('copy sha');
    if (k >= 0) t.chain! += performance.now() - start;
    t0 = performance.now();
    await sharp(bytes).resize(1024, 1024, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 95 }).toBuffer();
    lap('bare');
    await decodeFully(bytes, inspected, policy);
    lap('(validator)');
  }
  console.log(`  ${f.padEnd(26)} ${steps.map((s) => (t[s]! / R).toFixed(2).padStart(11)).join('')}`);
}
