/**
 * `aspect-ratio`: longer side / shorter side must stay under a limit. Web banners and dividers are
 * long strips. DataComp's limit is 3; it was set for CLIP training, whose square centre crop throws
 * away most of a wide picture. MELLA's backbones do not crop (InternVL2 tiles the image on a grid of up
 * to 12 tiles, Qwen2-VL resizes to any ratio up to 200:1), so a large panorama is a good training
 * image. Hence a second, wider limit for images whose shorter side is large: the standard wide ad units
 * (IAB: 728x90, 970x90, 970x250, 468x60, 320x50) are all at most 250 px tall, so a 400 px minimum keeps
 * banners under the DataComp rule while a 4096x800 photographic panorama passes.
 * Set `panoramaMaxAspectRatio` equal to `maxAspectRatio` for the plain DataComp rule.
 */
import { z } from 'zod';
import { keep, reject, round, type ImageItem, type ItemOperator } from '../operator';

export const aspectRatioConfigSchema = z
  .object({
    /** Largest long/short side ratio for ordinary images. */
    maxAspectRatio: z.number().min(1).default(3),
    /** Images whose shorter side is at least this many pixels are judged by `panoramaMaxAspectRatio`. */
    panoramaMinSide: z.number().int().min(1).default(400),
    /** Largest ratio for such large images. */
    panoramaMaxAspectRatio: z.number().min(1).default(6),
  })
  .strict()
  .refine((c) => c.panoramaMaxAspectRatio >= c.maxAspectRatio, {
    message: 'panoramaMaxAspectRatio must be at least maxAspectRatio',
    path: ['panoramaMaxAspectRatio'],
  });
export type AspectRatioConfig = z.infer<typeof aspectRatioConfigSchema>;

export const aspectRatioOperator: ItemOperator<ImageItem, AspectRatioConfig> = {
  name: 'aspect-ratio',
  kind: 'image',
  scope: 'item',
  input: 'image',
  description: 'Long side / short side is at most maxAspectRatio (panoramaMaxAspectRatio for images whose short side is at least panoramaMinSide).',
  reasons: ['extreme_aspect_ratio'],
  configSchema: aspectRatioConfigSchema,
  defaultSources: {
    maxAspectRatio: 'DataComp basic filtering (mlfoundations/datacomp baselines/apply_filter.py: aspect_ratio <= 3.0)',
    panoramaMinSide: 'project choice: above the height of every IAB wide ad unit (largest: 970x250 billboard)',
    panoramaMaxAspectRatio:
      'project choice: InternVL2 dynamic tiling covers ratios up to 12:1 and Qwen2-VL up to 200:1; 6 keeps real panoramas (4096x800 = 5.12 in the fixtures) and stops page-wide strips',
  },
  apply(item, config) {
    const { width, height } = item.decoded;
    const shortest = Math.min(width, height);
    const ratio = Math.max(width, height) / shortest;
    const panorama = shortest >= config.panoramaMinSide;
    const limit = panorama ? config.panoramaMaxAspectRatio : config.maxAspectRatio;
    if (ratio > limit) {
      const rule = panorama ? `panorama limit (shorter side ${shortest} >= ${config.panoramaMinSide})` : 'limit';
      return reject('extreme_aspect_ratio', round(ratio, 3), limit, `${width}x${height} exceeds the ${rule}`);
    }
    return keep();
  },
};
