/**
 * The `merge` section of the run config (validated with zod; unknown keys are errors):
 *
 *   merge:
 *     name: mella                   # LLaMA-Factory dataset names and WebDataset shard prefix
 *     formats: [llamafactory, ms-swift, webdataset]   # the manifest is always written
 *     split:
 *       salt: mella-split-v1        # changing it reshuffles every group
 *       fractions: { train: 0.9, validation: 0.05, test: 0.05 }
 *     mix: { know: 1, ling: 1, fused: 0.5 }           # optional; see mix.ts (absent: keep everything)
 *     mixSalt: mella-mix-v1
 *     shardSize: 1000               # WebDataset samples per tar
 *     imageMode: link               # or copy
 *     verifyImages: true
 *     card: { galleryPerLanguage: 6, thumbnailSide: 240, topDomains: 10 }
 */
import { z } from 'zod';
import { EXPORT_FORMATS } from './export';
import { DEFAULT_MIX_SALT, mixRatiosSchema } from './mix';
import { splitConfigSchema } from './split';
import { DEFAULT_SHARD_SIZE } from './webdataset';

export const mergeConfigSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/).default('mella'),
    formats: z.array(z.enum(EXPORT_FORMATS)).default([...EXPORT_FORMATS]),
    split: splitConfigSchema.default(splitConfigSchema.parse({})),
    mix: mixRatiosSchema.optional(),
    mixSalt: z.string().min(1).default(DEFAULT_MIX_SALT),
    shardSize: z.number().int().min(1).default(DEFAULT_SHARD_SIZE),
    imageMode: z.enum(['link', 'copy']).default('link'),
    verifyImages: z.boolean().default(true),
    card: z
      .object({
        galleryPerLanguage: z.number().int().min(0).max(100).default(6),
        thumbnailSide: z.number().int().min(32).max(1024).default(240),
        topDomains: z.number().int().min(1).max(100).default(10),
      })
      .strict()
      .default({ galleryPerLanguage: 6, thumbnailSide: 240, topDomains: 10 }),
  })
  .strict();
export type MergeConfig = z.infer<typeof mergeConfigSchema>;
