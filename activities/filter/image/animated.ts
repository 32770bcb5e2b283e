/**
 * `animated`: what to do with animated GIF and WebP. The training set holds still images, so an
 * animation either contributes its first frame (the decoded view and `normalizeImage` already use only
 * the first frame) or is rejected. APNG is decoded as its default image and never counts as animated;
 * neither do the extra images of an AVIF/HEIF container.
 */
import { z } from 'zod';
import { keep, reject, type ImageItem, type ItemOperator } from '../operator';

export const animatedConfigSchema = z
  .object({
    /** `first-frame`: keep the animation as its first frame. `reject`: reject every animation. */
    mode: z.enum(['first-frame', 'reject']).default('first-frame'),
  })
  .strict();
export type AnimatedConfig = z.infer<typeof animatedConfigSchema>;

export const animatedOperator: ItemOperator<ImageItem, AnimatedConfig> = {
  name: 'animated',
  kind: 'image',
  scope: 'item',
  input: 'image',
  description: 'Animated images: keep the first frame, or reject them (by config).',
  reasons: ['animated'],
  configSchema: animatedConfigSchema,
  defaultSources: {
    mode: 'project choice: a first frame is a valid still picture, and the alt text describes the animation as a whole, which its first frame usually shows',
  },
  apply(item, config) {
    const frames = item.decoded.frames;
    if (frames > 1 && config.mode === 'reject') return reject('animated', frames, 1, 'frames in the image (mode: reject)');
    return keep();
  },
};
