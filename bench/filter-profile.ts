/**
 * bench:filter helper: where `decodable` spends its time, one image at a time, each sharp call of
 * activities/filter/image/decodable.ts timed on its own (mean ms over R copies of each fixture photo),
 * next to the bare baseline and a sketch of a one-decode chain (not what the stage runs: its pHash,
 * statistics and training copy would differ slightly from today's).
 * Run: npx tsx bench/filter-profile.ts [R]
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { validateImage } from '../activities/ingest/validate-image';
import { pixelStats } from '../activities/filter/image/decodable';
import { phashFromRaw } from '../activities/filter/image/phash';
import { PROJECT_ROOT } from '../infra/paths';
import { variant } from './filter-images';

const R = Number(process.argv[2] ?? 20);
const dir = path.resolve(PROJECT_ROOT, '..', 'shared', 'fixtures', 'real', 'images', 'photo');
const steps = ['validate', 'metadata', 'thumbnail', 'pixelStats', 'phash', 'bare', 'one-decode'] as const;
console.log(`decodable, mean ms per image over ${R} copies: ${steps.join(' / ')}`);
for (const f of fs.readdirSync(dir).sort()) {
  const base = fs.readFileSync(path.join(dir, f));
  const t: Record<string, number> = Object.fromEntries(steps.map((s) => [s, 0]));
  for (let k = -2; k < R; k++) {
    const bytes = variant(base, 5_000_000 + k);
    let t0 = performance.now();
    const lap = (s: (typeof steps)[number]) => {
      const now = performance.now();
      if (k >= 0) t[s]! += now - t0;
      t0 = now;
    };
    await validateImage(bytes, { limitInputPixels: 1e8 });
    lap('validate');
    await sharp(bytes, { limitInputPixels: false }).metadata();
    lap('metadata');
    const { data, info } = await sharp(bytes, { failOn: 'error', limitInputPixels: 1e8, autoOrient: true })
      .resize(256, 256, { fit: 'inside', withoutEnlargement: true })
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    lap('thumbnail');
    pixelStats(new Uint8Array(data.buffer, data.byteOffset, data.length), info.width * info.height);
    lap('pixelStats');
    await phashFromRaw(data, info.width, info.height, 4);
    lap('phash');
    await sharp(bytes).resize(1024, 1024, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 95 }).toBuffer();
    lap('bare');
    // Sketch, not the chain: one decode to <= 1024 px, thumbnail, statistics, pHash and the JPEG copy from it.
    const big = await sharp(bytes, { failOn: 'error', limitInputPixels: 1e8, autoOrient: true })
      .resize(1024, 1024, { fit: 'inside', withoutEnlargement: true })
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const raw = { raw: { width: big.info.width, height: big.info.height, channels: 4 as const } };
    const thumb = await sharp(big.data, raw).resize(256, 256, { fit: 'inside', withoutEnlargement: true }).raw().toBuffer({ resolveWithObject: true });
    pixelStats(new Uint8Array(thumb.data.buffer, thumb.data.byteOffset, thumb.data.length), thumb.info.width * thumb.info.height);
    await phashFromRaw(thumb.data, thumb.info.width, thumb.info.height, 4);
    await sharp(big.data, raw).flatten({ background: '#ffffff' }).jpeg({ quality: 95 }).toBuffer();
    lap('one-decode');
  }
  console.log(`  ${f.padEnd(26)} ${steps.map((s) => (t[s]! / R).toFixed(2).padStart(8)).join(' ')}`);
}
