/**
 * `bytes-per-pixel`: file size / stored pixels of one frame. A flat graphic (a flag, a coloured box, a
 * blank canvas) compresses to almost nothing: the fixtures' 900x600 Dutch flag PNG is 794 bytes
 * (0.0015 B/px) and a fully transparent 300x300 PNG 148 bytes (0.0016 B/px). Photographs cost far more:
 * on the fixtures, JPEG 0.04-1.06 B/px, and the most compressed, an AVIF panorama (4096x800 in 66,801
 * bytes, with four more images in the same file), 0.020 B/px. The default sits between the two groups
 * with a margin of about 2.5x either side.
 * Only one frame's pixels count: an animation's extra frames only add bytes, never hide a flat frame.
 */
import { z } from 'zod';
import { keep, reject, round, type ImageItem, type ItemOperator } from '../operator';

export const bytesPerPixelConfigSchema = z
  .object({
    /** Smallest file size per stored pixel (bytes / (width x height)) of a real picture. */
    minBytesPerPixel: z.number().min(0).default(0.004),
  })
  .strict();
export type BytesPerPixelConfig = z.infer<typeof bytesPerPixelConfigSchema>;

export const bytesPerPixelOperator: ItemOperator<ImageItem, BytesPerPixelConfig> = {
  name: 'bytes-per-pixel',
  kind: 'image',
  scope: 'item',
  input: 'image',
  description: 'File bytes per stored pixel is at least minBytesPerPixel (flat graphics compress to almost nothing).',
  reasons: ['low_bytes_per_pixel'],
  configSchema: bytesPerPixelConfigSchema,
  defaultSources: {
    minBytesPerPixel:
      'measured on ../shared/fixtures/real/images: flat graphics 0.0015-0.0016 B/px, photographs 0.020 B/px and up (no published standard; LAION-400M used a 5 KB minimum file size for the same purpose)',
  },
  apply(item, config) {
    const { bytes, storedWidth, storedHeight } = item.decoded;
    const bpp = bytes / (storedWidth * storedHeight);
    if (bpp < config.minBytesPerPixel) {
      return reject('low_bytes_per_pixel', round(bpp, 6), config.minBytesPerPixel, `${bytes} bytes for ${storedWidth}x${storedHeight} pixels`);
    }
    return keep();
  },
};
