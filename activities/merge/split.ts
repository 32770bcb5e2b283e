/**
 * Train / validation / test by group: a sample's split is a pure function of its `groupKey` (the
 * near-duplicate group of its image, or the image's sha256), so every image of a group, and every
 * sample of an image, lands on one side, and the assignment is stable across re-runs and refreshes: a
 * group keeps its split as the dataset grows.
 *
 *   u = first 8 bytes of sha256(salt + "\0" + groupKey), as a number in [0, 1)
 *   train if u < train, validation if u < train + validation, test otherwise
 *
 * Defaults 0.9 / 0.05 / 0.05 (the proportions of LLaVA-style instruction sets: a small held-out part for
 * model selection and another for the final numbers). Changing the salt reshuffles every group;
 * changing the fractions moves only the groups whose u lies between the old and new boundaries.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { SPLITS, type SplitName } from './sample';

export const DEFAULT_SPLIT_SALT = 'mella-split-v1';

export const splitConfigSchema = z
  .object({
    salt: z.string().min(1).default(DEFAULT_SPLIT_SALT),
    fractions: z
      .object({ train: z.number().min(0).max(1), validation: z.number().min(0).max(1), test: z.number().min(0).max(1) })
      .strict()
      .refine((f) => Math.abs(f.train + f.validation + f.test - 1) < 1e-9, { message: 'split fractions must add up to 1' })
      .default({ train: 0.9, validation: 0.05, test: 0.05 }),
  })
  .strict();
export type SplitConfig = z.infer<typeof splitConfigSchema>;
export const DEFAULT_SPLIT_CONFIG: SplitConfig = splitConfigSchema.parse({});

/** A uniform number in [0, 1) from sha256(salt + "\0" + key): 53 bits of the first 8 bytes. */
export function hashUnit(salt: string, key: string): number {
  const digest = createHash('sha256').update(salt).update('\0').update(key).digest();
  return Number(digest.readBigUInt64BE(0) >> 11n) / 2 ** 53;
}

export function splitOf(groupKey: string, config: SplitConfig = DEFAULT_SPLIT_CONFIG): SplitName {
  const u = hashUnit(config.salt, groupKey);
  const { train, validation } = config.fractions;
  if (u < train) return 'train';
  if (u < train + validation) return 'validation';
  return 'test';
}

export interface SplitEntry {
  id: string;
  groupKey: string;
  imageSha256: string;
  split: SplitName;
}

export interface SplitLeak {
  kind: 'group' | 'image';
  /** The groupKey or the image sha256 found on more than one side. */
  key: string;
  splits: SplitName[];
  /** The first sample seen on each side. */
  sampleIds: string[];
}

/**
 * Every group and every image that occurs in more than one split (exact). Memory grows with the number
 * of distinct groups and images: a check for tests, audits and manifests of moderate size. The export
 * itself guards against image leaks in fixed memory (`leak-guard.ts`).
 */
export async function findSplitLeaks(entries: AsyncIterable<SplitEntry> | Iterable<SplitEntry>): Promise<SplitLeak[]> {
  const seen = { group: new Map<string, Map<SplitName, string>>(), image: new Map<string, Map<SplitName, string>>() };
  const note = (kind: 'group' | 'image', key: string, split: SplitName, id: string) => {
    let sides = seen[kind].get(key);
    if (sides === undefined) seen[kind].set(key, (sides = new Map()));
    if (!sides.has(split)) sides.set(split, id);
  };
  for await (const e of entries) {
    note('group', e.groupKey, e.split, e.id);
    note('image', e.imageSha256, e.split, e.id);
  }
  const leaks: SplitLeak[] = [];
  for (const kind of ['group', 'image'] as const) {
    for (const [key, sides] of seen[kind]) {
      if (sides.size < 2) continue;
      const splits = SPLITS.filter((s) => sides.has(s));
      leaks.push({ kind, key, splits, sampleIds: splits.map((s) => sides.get(s)!) });
    }
  }
  return leaks.sort((a, b) => (a.kind === b.kind ? (a.key < b.key ? -1 : a.key > b.key ? 1 : 0) : a.kind < b.kind ? -1 : 1));
}
