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
 */
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { z } from 'zod';
import { DEFAULT_VALIDATE_POLICY } from '../../ingest/validate-image';

export const NORMALIZED_FORMATS = ['jpeg', 'webp', 'png', 'avif'] as const;
export type NormalizedFormat = (typeof NORMALIZED_FORMATS)[number];

export const normalizeImageConfigSchema = z
  .object({
    format: z.enum(NORMALIZED_FORMATS).default('jpeg'),
    /** Longest side of the training copy, in pixels. */
    maxSide: z.number().int().min(16).max(16_384).default(1024),
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

/** Never throws for bad bytes: a failure is `{ ok: false, reason: 'normalize_error' }`. */
export async function normalizeImage(bytes: Buffer, config: NormalizeImageConfig): Promise<NormalizeResult> {
  try {
    let pipeline = sharp(bytes, { failOn: 'error', limitInputPixels: config.limitInputPixels, autoOrient: true })
      .resize(config.maxSide, config.maxSide, { fit: 'inside', withoutEnlargement: true })
      .flatten({ background: config.background })
      .toColourspace('srgb');
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
    const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
    return { ok: false, reason: 'normalize_error', detail: message };
  }
}
