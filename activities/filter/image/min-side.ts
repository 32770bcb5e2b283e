/**
 * `min-side`: the shortest displayed side (EXIF orientation applied) must reach a minimum. Web icons,
 * spacers, avatars and buttons are small; a fine-tuning image needs enough pixels to show what its
 * text says.
 */
import { z } from 'zod';
import { keep, reject, type ImageItem, type ItemOperator } from '../operator';

export const minSideConfigSchema = z
  .object({
    /** Pixels; the image's shorter side must be at least this. */
    minSide: z.number().int().min(1).default(200),
  })
  .strict();
export type MinSideConfig = z.infer<typeof minSideConfigSchema>;

export const minSideOperator: ItemOperator<ImageItem, MinSideConfig> = {
  name: 'min-side',
  kind: 'image',
  scope: 'item',
  input: 'image',
  description: 'The shorter side of the image, EXIF orientation applied, is at least minSide pixels.',
  reasons: ['too_small'],
  configSchema: minSideConfigSchema,
  defaultSources: {
    minSide:
      'DataComp basic filtering (Gadre et al. 2023; mlfoundations/datacomp baselines/apply_filter.py: min(original_width, original_height) >= 200)',
  },
  apply(item, config) {
    const shortest = Math.min(item.decoded.width, item.decoded.height);
    if (shortest < config.minSide) {
      return reject('too_small', shortest, config.minSide, `shorter side of ${item.decoded.width}x${item.decoded.height}`);
    }
    return keep();
  },
};
