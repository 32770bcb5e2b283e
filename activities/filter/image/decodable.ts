/**
 * `decodable`: the gate every image passes first. It decodes the image once and measures what the
 * other image operators judge, so that none of them decodes again.
 *
 *  1. The ingest stage's checks on the bytes and the header (`inspectImage`, activities/ingest/
 *     validate-image.ts): the real type sniffed from the bytes, then the decompression-bomb guard on
 *     the header (width x height x frames). Same reasons as ingest: not_an_image, unsupported_format,
 *     too_many_pixels. The header also gives EXIF orientation, frames, alpha and palette.
 *  2. The ingest validator's forced full decode (`decodeFully`: every frame of an animation), unless
 *     the item says `validatedBy: 'ingest'`: the filter stage judges only bytes the ingest stage stored,
 *     which it stores only after `validateImage` accepted them (crawled images reach the filter through
 *     ingest too), so the stage does not repeat it. Standalone use on raw bytes (tests, other callers)
 *     runs it. Reason: decode_error (or too_many_pixels from the decoder's own guard).
 *  3. One decode of the first frame (`decodeRaster`, image/raster.ts): EXIF orientation applied, shrunk
 *     to at most `decodeSide` px a side (the training copy's `maxSide`, never enlarged), sRGB, raw pixels,
 *     `failOn: 'error'` (truncated or corrupt data: decode_error). From those pixels, a thumbnail of at
 *     most `thumbnailSide` px a side: pixel statistics (uniform-content) and the perceptual hash
 *     (phash-dedup). With `keepRaster` the pixels are returned (`DecodedImage.raster`) so that the
 *     training copy of a kept image is encoded from them (image/normalize.ts `encodeTrainingCopy`).
 *
 * Decoded formats: JPEG, PNG, APNG (first frame), GIF and WebP (first frame; frames counted), AVIF (the
 * primary image of the container), TIFF (first page). Not decoded, with `unsupported_format`: BMP, ICO,
 * JPEG XL, JPEG 2000, HEIC (HEVC), PSD and SVG (vector: no native pixel size).
 */
import { z } from 'zod';
import { DEFAULT_VALIDATE_POLICY, DECODABLE_MIME_TYPES, decodeFully, inspectImage } from '../../ingest/validate-image';
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
import { DEFAULT_MAX_SIDE } from './normalize';
import { phashFromRaw } from './phash';
import { decodeRaster, thumbnailOf, type Raster } from './raster';

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
 * Statistics of raw 8-bit RGBA (or RGB) pixels: share of transparent pixels, and the largest standard
 * deviation of R, G and B after compositing over mid-grey (so a transparent area counts as one flat colour).
 */
export function pixelStats(pixels: Uint8Array, pixelCount: number, channels: 3 | 4 = 4): PixelStats {
  if (pixels.length !== pixelCount * channels) throw new RangeError(`expected ${pixelCount * channels} bytes (${channels} a pixel), got ${pixels.length}`);
  let transparent = 0;
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let q0 = 0;
  let q1 = 0;
  let q2 = 0;
  for (let o = 0, end = pixels.length; o < end; o += channels) {
    let r = pixels[o]!;
    let g = pixels[o + 1]!;
    let b = pixels[o + 2]!;
    if (channels === 4) {
      const a = pixels[o + 3]!;
      if (a < TRANSPARENT_ALPHA) transparent++;
      if (a !== 255) {
        const w = a / 255;
        const grey = MID_GREY * (1 - w);
        r = r * w + grey;
        g = g * w + grey;
        b = b * w + grey;
      }
    }
    s0 += r;
    s1 += g;
    s2 += b;
    q0 += r * r;
    q1 += g * g;
    q2 += b * b;
  }
  let maxStdev = 0;
  if (pixelCount > 0) {
    for (const [sum, sumSq] of [[s0, q0], [s1, q1], [s2, q2]] as const) {
      const mean = sum / pixelCount;
      const variance = Math.max(0, sumSq / pixelCount - mean * mean);
      maxStdev = Math.max(maxStdev, Math.sqrt(variance));
    }
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

/** How `decodeImage` is called; the filter stage's wiring sets these (see `filterImage`). */
export interface DecodeOptions {
  /**
   * 'ingest': the bytes were stored by the ingest stage, which stores an image only after
   * `validateImage` accepted it, so its forced full decode (all frames) is not repeated. Absent: it runs.
   */
  readonly validatedBy?: 'ingest' | undefined;
  /** Longest side of the one decode (default 1024, the training copy's default `maxSide`); at least `thumbnailSide`. */
  readonly decodeSide?: number | undefined;
  /** Return the decoded pixels as `DecodedImage.raster` (for the training copy). */
  readonly keepRaster?: boolean | undefined;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0]!.trim().slice(0, 300);
}

/** Decodes and measures; the function behind the operator, usable on its own. Never throws for bad bytes. */
export async function decodeImage(bytes: Buffer, config: DecodableConfig, options: DecodeOptions = {}): Promise<OperatorResult<DecodedImage>> {
  const policy = { limitInputPixels: config.limitInputPixels };
  const refuse = (reason: string, detail: string) =>
    reason === 'too_many_pixels' ? reject(reason, detail, config.limitInputPixels) : reject(reason, detail, `decodable raster image (${DECODABLE_LIST})`);
  const inspected = await inspectImage(bytes, policy);
  if (!inspected.ok) return refuse(inspected.reason, inspected.detail);
  if (options.validatedBy !== 'ingest') {
    const failed = await decodeFully(bytes, inspected, policy);
    if (failed) return refuse(failed.reason, failed.detail);
  }
  const { meta } = inspected;
  const orientation = meta.orientation !== undefined && meta.orientation >= 1 && meta.orientation <= 8 ? meta.orientation : 1;
  const swap = orientation >= 5;
  let raster: Raster;
  let thumb: Raster;
  try {
    raster = await decodeRaster(bytes, {
      maxSide: Math.max(options.decodeSide ?? DEFAULT_MAX_SIDE, config.thumbnailSide),
      limitInputPixels: config.limitInputPixels,
    });
    thumb = await thumbnailOf(raster, config.thumbnailSide);
  } catch (err) {
    const message = firstLine(err);
    if (/pixel limit/i.test(message)) return refuse('too_many_pixels', message);
    return refuse('decode_error', `${inspected.format}: ${message}`);
  }
  const decoded: DecodedImage = {
    sha256: inspected.sha256,
    mime: inspected.mime,
    format: inspected.format,
    bytes: inspected.bytes,
    storedWidth: inspected.width,
    storedHeight: inspected.height,
    width: swap ? inspected.height : inspected.width,
    height: swap ? inspected.width : inspected.height,
    orientation,
    frames: inspected.frames,
    hasAlpha: meta.hasAlpha === true,
    fidelity: fidelityOf(inspected.format, bytes, meta.isPalette === true),
    pixels: pixelStats(thumb.data, thumb.width * thumb.height, thumb.channels),
    phash: phashFromRaw(thumb.data, thumb.width, thumb.height, thumb.channels),
    ...(options.keepRaster ? { raster } : {}),
  };
  return keep(decoded);
}

export const decodableOperator: ItemOperator<ImageBytesItem, DecodableConfig, DecodedImage> = {
  name: 'decodable',
  kind: 'image',
  scope: 'item',
  input: 'bytes',
  description:
    "The bytes are a raster image this build decodes (completely, unless the ingest stage's validator already did); decodes its first frame once and measures it for the operators after it.",
  reasons: ['not_an_image', 'unsupported_format', 'too_many_pixels', 'decode_error'],
  configSchema: decodableConfigSchema,
  defaultSources: {
    limitInputPixels: "the ingest stage's decompression-bomb guard (DEFAULT_VALIDATE_POLICY, 100 megapixels)",
    thumbnailSide: 'project choice: 256 px keeps statistics stable on 200 px images and costs <0.3 MB per image',
  },
  apply(item, config) {
    return decodeImage(item.bytes, config, { validatedBy: item.validatedBy, decodeSide: item.decodeSide, keepRaster: item.keepRaster });
  },
};
