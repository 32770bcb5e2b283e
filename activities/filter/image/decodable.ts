/**
 * `decodable`: the gate every image passes first. It decodes the image once and measures what the
 * other image operators judge, so that none of them decodes again.
 *
 *  1. The ingest stage's `validateImage` (activities/ingest/validate-image.ts): the real type sniffed
 *     from the bytes, the decompression-bomb guard on the header, then a forced full decode. Same
 *     reasons as ingest: not_an_image, unsupported_format, too_many_pixels, decode_error. Images from
 *     the crawl stage never went through ingest, and the rules must not differ between the two paths.
 *  2. The header (sharp metadata): EXIF orientation, displayed size, frames, alpha, palette.
 *  3. A thumbnail of the first frame, EXIF orientation applied, at most `thumbnailSide` px a side, sRGB
 *     with alpha: pixel statistics (uniform-content) and the perceptual hash (phash-dedup) come from it.
 *
 * Decoded formats: JPEG, PNG, APNG (first frame), GIF and WebP (first frame; frames counted), AVIF (the
 * primary image of the container), TIFF (first page). Not decoded, with `unsupported_format`: BMP, ICO,
 * JPEG XL, JPEG 2000, HEIC (HEVC), PSD and SVG (vector: no native pixel size).
 */
import sharp from 'sharp';
import { z } from 'zod';
import { DEFAULT_VALIDATE_POLICY, DECODABLE_MIME_TYPES, validateImage } from '../../ingest/validate-image';
import {
  keep,
  reject,
  type DecodedImage,
  type Fidelity,
  type ImageBytesItem,
  type ItemOperator,
  type OperatorResult,
  type PixelStats,
} from '../operator';
import { phashFromRaw } from './phash';

export const decodableConfigSchema = z
  .object({
    /** Largest image accepted, in pixels (width x height x frames); checked on the header before decoding. */
    limitInputPixels: z.number().int().positive().default(DEFAULT_VALIDATE_POLICY.limitInputPixels),
    /** Longest side of the thumbnail that pixel statistics and the pHash are computed on. */
    thumbnailSide: z.number().int().min(32).max(1024).default(256),
  })
  .strict();
export type DecodableConfig = z.infer<typeof decodableConfigSchema>;

/** Alpha below this (of 255) counts as transparent. */
const TRANSPARENT_ALPHA = 8;
/** Visible pixels are composited over this grey before their spread is measured. */
const MID_GREY = 128;

/**
 * Statistics of raw 8-bit RGBA pixels: share of transparent pixels, and the largest standard deviation
 * of R, G and B after compositing over mid-grey (so a transparent area counts as one flat colour).
 */
export function pixelStats(rgba: Uint8Array, pixelCount: number): PixelStats {
  if (rgba.length !== pixelCount * 4) throw new RangeError(`expected ${pixelCount * 4} RGBA bytes, got ${rgba.length}`);
  let transparent = 0;
  const sum = [0, 0, 0];
  const sumSq = [0, 0, 0];
  for (let p = 0; p < pixelCount; p++) {
    const o = p * 4;
    const a = rgba[o + 3]!;
    if (a < TRANSPARENT_ALPHA) transparent++;
    const w = a / 255;
    for (let c = 0; c < 3; c++) {
      const v = rgba[o + c]! * w + MID_GREY * (1 - w);
      sum[c]! += v;
      sumSq[c]! += v * v;
    }
  }
  let maxStdev = 0;
  for (let c = 0; c < 3; c++) {
    const mean = sum[c]! / pixelCount;
    const variance = Math.max(0, sumSq[c]! / pixelCount - mean * mean);
    maxStdev = Math.max(maxStdev, Math.sqrt(variance));
  }
  return { transparentFraction: pixelCount === 0 ? 0 : transparent / pixelCount, maxChannelStdev: maxStdev, sampled: pixelCount };
}

/** Whether a WebP file is VP8L (lossless): walks the RIFF chunks for the first image chunk. */
export function isLosslessWebp(bytes: Buffer): boolean {
  if (bytes.length < 20 || bytes.toString('latin1', 0, 4) !== 'RIFF' || bytes.toString('latin1', 8, 12) !== 'WEBP') return false;
  let offset = 12;
  while (offset + 8 <= bytes.length) {
    const fourcc = bytes.toString('latin1', offset, offset + 4);
    const size = bytes.readUInt32LE(offset + 4);
    if (fourcc === 'VP8L') return true;
    if (fourcc === 'VP8 ') return false;
    if (fourcc === 'ANMF') {
      // An animation frame: its own sub-chunks start after a 16-byte frame header.
      offset += 8 + 16;
      continue;
    }
    offset += 8 + size + (size % 2);
  }
  return false;
}

function fidelityOf(format: string, bytes: Buffer, isPalette: boolean): Fidelity {
  switch (format) {
    case 'gif':
      return 'palette';
    case 'png':
    case 'apng':
      return isPalette ? 'palette' : 'lossless';
    case 'tiff':
      return 'lossless';
    case 'webp':
      return isLosslessWebp(bytes) ? 'lossless' : 'lossy';
    default:
      return 'lossy'; // jpeg, avif
  }
}

const DECODABLE_LIST = DECODABLE_MIME_TYPES.map((m) => m.replace('image/', '')).join(',');

/** Decodes and measures; the function behind the operator, usable on its own. Never throws for bad bytes. */
export async function decodeImage(bytes: Buffer, config: DecodableConfig): Promise<OperatorResult<DecodedImage>> {
  const verdict = await validateImage(bytes, { limitInputPixels: config.limitInputPixels });
  if (!verdict.ok) {
    if (verdict.reason === 'too_many_pixels') return reject(verdict.reason, verdict.detail, config.limitInputPixels);
    return reject(verdict.reason, verdict.detail, `decodable raster image (${DECODABLE_LIST})`);
  }
  try {
    const meta = await sharp(bytes, { limitInputPixels: false }).metadata();
    const orientation = meta.orientation !== undefined && meta.orientation >= 1 && meta.orientation <= 8 ? meta.orientation : 1;
    const swap = orientation >= 5;
    const { data, info } = await sharp(bytes, {
      failOn: 'error',
      limitInputPixels: config.limitInputPixels,
      autoOrient: true,
    })
      .resize(config.thumbnailSide, config.thumbnailSide, { fit: 'inside', withoutEnlargement: true })
      .toColourspace('srgb')
      .ensureAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 4) throw new Error(`thumbnail has ${info.channels} channels, expected RGBA`);
    const rgba = new Uint8Array(data.buffer, data.byteOffset, data.length);
    const decoded: DecodedImage = {
      sha256: verdict.sha256,
      mime: verdict.mime,
      format: verdict.format,
      bytes: verdict.bytes,
      storedWidth: verdict.width,
      storedHeight: verdict.height,
      width: swap ? verdict.height : verdict.width,
      height: swap ? verdict.width : verdict.height,
      orientation,
      frames: verdict.frames,
      hasAlpha: meta.hasAlpha === true,
      fidelity: fidelityOf(verdict.format, bytes, meta.isPalette === true),
      pixels: pixelStats(rgba, info.width * info.height),
      phash: await phashFromRaw(data, info.width, info.height, 4),
    };
    return keep(decoded);
  } catch (err) {
    // validateImage decoded it already, so this is rare (a decoder disagreeing with itself); still a
    // reason, never a crash.
    const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    return reject('decode_error', `${verdict.format}: ${message}`, `decodable raster image (${DECODABLE_LIST})`);
  }
}

export const decodableOperator: ItemOperator<ImageBytesItem, DecodableConfig, DecodedImage> = {
  name: 'decodable',
  kind: 'image',
  scope: 'item',
  input: 'bytes',
  description: 'The bytes are a raster image this build decodes completely; measures it for the operators after it.',
  reasons: ['not_an_image', 'unsupported_format', 'too_many_pixels', 'decode_error'],
  configSchema: decodableConfigSchema,
  defaultSources: {
    limitInputPixels: "the ingest stage's decompression-bomb guard (DEFAULT_VALIDATE_POLICY, 100 megapixels)",
    thumbnailSide: 'project choice: 256 px keeps statistics stable on 200 px images and costs <0.3 MB per image',
  },
  apply(item, config) {
    return decodeImage(item.bytes, config);
  },
};
