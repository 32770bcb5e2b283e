/**
 * The training-set copy of a kept image: bytes in, bytes out, nothing written anywhere (the caller
 * stores the result next to the untouched original, both content-addressed).
 *
 *  - first frame only (animations), the primary image of an AVIF/HEIF container, first page of a TIFF;
 *  - EXIF orientation applied to the pixels (and the tag dropped with the rest of the metadata, so no
 *    reader can rotate it twice);
 *  - colour converted to sRGB (embedded ICC profiles honoured), 8 bits, alpha flattened onto
 *    `background` (training images are RGB);
 *  - shrunk so that the longer side is at most `maxSide` (never enlarged);
 *  - encoded as `format` at `quality`.
 * Made from one decode to raw pixels (image/raster.ts): in the filter stage, the very decode `decodable`
 * measured the image on, so a kept still image is decoded once.
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { z } from 'zod';
import { DEFAULT_VALIDATE_POLICY } from '../../ingest/validate-image';
import { decodeRaster, type Raster } from './raster';

/** Default longest side of the training copy; also the side `decodable` decodes to by default. */
export const DEFAULT_MAX_SIDE = 1024;

export const NORMALIZED_FORMATS = ['jpeg', 'webp', 'png', 'avif'] as const;
export type NormalizedFormat = (typeof NORMALIZED_FORMATS)[number];

export const normalizeImageConfigSchema = z
  .object({
    format: z.enum(NORMALIZED_FORMATS).default('jpeg'),
    /** Longest side of the training copy, in pixels. */
    maxSide: z.number().int().min(16).max(16_384).default(DEFAULT_MAX_SIDE),
    /** Encoder quality 1-100 (ignored for PNG, which is lossless). */
    quality: z.number().int().min(1).max(100).default(95),
    /** Colour under transparent pixels, #rrggbb. */
    background: z
      .string()
      .regex(/^#[0-9a-fA-F]{6}$/, 'a colour as #rrggbb')
      .default('#ffffff'),
    /** Decompression-bomb guard, as in `decodable`. */
    limitInputPixels: z.number().int().positive().default(DEFAULT_VALIDATE_POLICY.limitInputPixels),
  })
  .strict();
export type NormalizeImageConfig = z.infer<typeof normalizeImageConfigSchema>;

/** Where each default of `normalizeImageConfigSchema` comes from (docs/filter.md tabulates these). */
export const NORMALIZE_IMAGE_DEFAULT_SOURCES: Readonly<Record<keyof NormalizeImageConfig, string>> = {
  format: "img2dataset's default encode_format (jpg): every loader and trainer reads it",
  maxSide:
    "LLaMA-Factory's default image_max_pixels is 768x768 = 589,824 px, which a 16:9 image reaches at 1024x576; larger copies would be shrunk again by the trainer",
  quality: "img2dataset's default encode_quality (95)",
  background: 'project choice: white, the usual page background behind a transparent web image',
  limitInputPixels: "the ingest stage's decompression-bomb guard (100 megapixels)",
};

const MIME: Record<NormalizedFormat, string> = {
  jpeg: 'image/jpeg',
  webp: 'image/webp',
  png: 'image/png',
  avif: 'image/avif',
};

export interface NormalizedImage {
  readonly bytes: Buffer;
  readonly sha256: string;
  readonly format: NormalizedFormat;
  readonly mime: string;
  readonly width: number;
  readonly height: number;
}

export type NormalizeResult =
  | { readonly ok: true; readonly image: NormalizedImage }
  | { readonly ok: false; readonly reason: 'normalize_error'; readonly detail: string };

/**
 * The training copy of a decoded raster (`decodeRaster`: first frame, oriented, sRGB, at most some
 * side): shrunk to `maxSide` if the raster is larger (never enlarged), alpha flattened onto `background`,
 * encoded as `format` at `quality`. The filter stage encodes a kept image's copy from the raster
 * `decodable` decoded, so the image is not decoded again. Never throws: a failure is `normalize_error`.
 */
export async function encodeTrainingCopy(raster: Raster, config: NormalizeImageConfig): Promise<NormalizeResult> {
  try {
    let pipeline = sharp(raster.data, { raw: { width: raster.width, height: raster.height, channels: raster.channels } });
    if (raster.width > config.maxSide || raster.height > config.maxSide) pipeline = pipeline.resize(config.maxSide, config.maxSide, { fit: 'inside' });
    if (raster.channels === 4) pipeline = pipeline.flatten({ background: config.background });
    switch (config.format) {
      case 'jpeg':
        pipeline = pipeline.jpeg({ quality: config.quality });
        break;
      case 'webp':
        pipeline = pipeline.webp({ quality: config.quality });
        break;
      case 'avif':
        pipeline = pipeline.avif({ quality: config.quality });
        break;
      case 'png':
        pipeline = pipeline.png({ compressionLevel: 9 });
        break;
    }
    const { data, info } = await pipeline.toBuffer({ resolveWithObject: true });
    return {
      ok: true,
      image: {
        bytes: data,
        sha256: createHash('sha256').update(data).digest('hex'),
        format: config.format,
        mime: MIME[config.format],
        width: info.width,
        height: info.height,
      },
    };
  } catch (err) {
    return { ok: false, reason: 'normalize_error', detail: firstLine(err) };
  }
}

/**
 * The training copy of encoded bytes: one decode (`decodeRaster` at `maxSide`), then
 * `encodeTrainingCopy`. Never throws for bad bytes: a failure is `{ ok: false, reason: 'normalize_error' }`.
 */
export async function normalizeImage(bytes: Buffer, config: NormalizeImageConfig): Promise<NormalizeResult> {
  let raster: Raster;
  try {
    raster = await decodeRaster(bytes, { maxSide: config.maxSide, limitInputPixels: config.limitInputPixels });
  } catch (err) {
    return { ok: false, reason: 'normalize_error', detail: firstLine(err) };
  }
  return encodeTrainingCopy(raster, config);
}

function firstLine(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0]! : String(err);
}
