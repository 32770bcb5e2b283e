/**
 * The one decode the filter stage makes of an image, and what is derived from its pixels.
 *
 * `decodeRaster`: first frame (first page, primary image), EXIF orientation applied, shrunk so that the
 * longer side is at most `maxSide` (never enlarged), colour converted to sRGB (embedded ICC profiles
 * honoured), 8 bits, to raw pixels: RGB, or RGBA when the image has an alpha channel (straight alpha).
 * `failOn: 'error'`, so truncated or corrupt data throws. `decodable` measures the image on a thumbnail
 * of this raster (`thumbnailOf`), and the training copy of a kept image is
 * encoded from the same raster (image/normalize.ts `encodeTrainingCopy`), so a kept still image is
 * decoded once.
 *
 * Memory: a raster is width x height x 3 or 4 bytes (4 MiB at 1024x1024 RGBA); the stage keeps one per
 * image in flight and drops it when the image's verdict is stored.
 */
import sharp from 'sharp';

/** Raw 8-bit sRGB pixels, row-major, `channels` bytes a pixel (4: RGBA with straight alpha). */
export interface Raster {
  readonly data: Buffer;
  readonly width: number;
  readonly height: number;
  readonly channels: 3 | 4;
}

/**
 * Decodes the first frame of `bytes`, oriented, at most `maxSide` px a side, to sRGB raw pixels.
 * @throws on data the decoder refuses (truncated, corrupt, over `limitInputPixels`).
 */
export async function decodeRaster(bytes: Buffer, options: { maxSide: number; limitInputPixels: number }): Promise<Raster> {
  const { data, info } = await sharp(bytes, { failOn: 'error', limitInputPixels: options.limitInputPixels, autoOrient: true })
    .resize(options.maxSide, options.maxSide, { fit: 'inside', withoutEnlargement: true })
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 && info.channels !== 4) throw new Error(`decoded ${info.channels} channels, expected sRGB or sRGB + alpha`);
  return { data, width: info.width, height: info.height, channels: info.channels };
}

/**
 * The raster shrunk to at most `side` px a side (sharp on the raw pixels: Lanczos 3, alpha premultiplied
 * while resampling); the raster itself when it is no larger. (A plain JavaScript area average was
 * measured too: 2-3x the CPU time of this call on a 1024 px raster.)
 */
export async function thumbnailOf(raster: Raster, side: number): Promise<Raster> {
  if (raster.width <= side && raster.height <= side) return raster;
  const { data, info } = await sharp(raster.data, { raw: { width: raster.width, height: raster.height, channels: raster.channels } })
    .resize(side, side, { fit: 'inside' })
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== raster.channels) throw new Error(`thumbnail has ${info.channels} channels, expected ${raster.channels}`);
  return { data, width: info.width, height: info.height, channels: raster.channels };
}
