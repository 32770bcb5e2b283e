/**
 * `uniform-content`: pixel statistics of the first frame (computed once by `decodable` on a thumbnail):
 *  - transparent: the share of pixels with alpha < 8/255 is at least `maxTransparentFraction` (a fully
 *    or almost fully transparent spacer or overlay);
 *  - near_uniform: the largest standard deviation of R, G and B (visible pixels composited on mid-grey)
 *    is below `minChannelStdev` (a blank, single-colour or almost single-colour image).
 * Transparency is judged first: it is the more specific reason.
 */
import { z } from 'zod';
import { keep, reject, round, type ImageItem, type ItemOperator } from '../operator';

export const uniformContentConfigSchema = z
  .object({
    /** Reject when at least this share of pixels is transparent. */
    maxTransparentFraction: z.number().gt(0).max(1).default(0.95),
    /** Reject when the largest R/G/B standard deviation (0-255 scale) is below this. */
    minChannelStdev: z.number().min(0).default(4),
  })
  .strict();
export type UniformContentConfig = z.infer<typeof uniformContentConfigSchema>;

export const uniformContentOperator: ItemOperator<ImageItem, UniformContentConfig> = {
  name: 'uniform-content',
  kind: 'image',
  scope: 'item',
  input: 'image',
  description: 'Rejects images that are (almost) fully transparent or (almost) a single flat colour.',
  reasons: ['transparent', 'near_uniform'],
  configSchema: uniformContentConfigSchema,
  defaultSources: {
    maxTransparentFraction:
      'project choice: a cut-out product photo on a transparent background keeps well over 5% of its pixels visible',
    minChannelStdev:
      'measured on 256 px thumbnails: flat fills give 0 (also as JPEG), a white canvas with one faint patch 1.1; the fixture photographs measure 27-79, logos 62-123',
  },
  apply(item, config) {
    const { transparentFraction, maxChannelStdev } = item.decoded.pixels;
    if (transparentFraction >= config.maxTransparentFraction) {
      return reject('transparent', round(transparentFraction, 4), config.maxTransparentFraction, 'share of pixels with alpha < 8/255');
    }
    if (maxChannelStdev < config.minChannelStdev) {
      return reject('near_uniform', round(maxChannelStdev, 3), config.minChannelStdev, 'largest R/G/B standard deviation (0-255)');
    }
    return keep();
  },
};
