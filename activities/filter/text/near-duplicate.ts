/**
 * `near-duplicate` (set operator): alt texts that say the same thing with trivial differences
 * ("Hà Nội mùa thu" / "Hà Nội mùa thu." / "HÀ NỘI MÙA THU") are one training target. Within each bucket
 * the first entry of a group is kept and the others are rejected with their similarity to it.
 *
 * Similarity: Jaccard similarity of character 5-gram sets of the comparison key (NFKC, lower case,
 * punctuation and symbols dropped, whitespace collapsed). Characters rather than words because alts are
 * a few words long (word 5-grams, Data-Juicer's default tokenization, would leave most alts with no
 * shingle at all) and because Thai has no spaces. Candidates come from MinHash LSH (the construction of
 * Data-Juicer's document_minhash_deduplicator: 256 permutations, bands and rows chosen to minimize the
 * false positive and false negative areas at the threshold), and every candidate pair is then verified
 * with the exact Jaccard similarity, so LSH only saves time and never decides alone. An exact-match
 * hash alone would miss the punctuation and case variants; exact Jaccard on all pairs would be O(n^2).
 *
 * Grouping: leader clustering in input order, like phash-dedup: every member is within the threshold of
 * its group's keeper. Pass entries in the order of preference (e.g. oldest record first).
 *
 * Buckets: entries are only compared within the same `bucket`. The wiring passes the image's pHash group
 * (its keeper's sha256) so that near-identical alts of one picture collapse while the same caption on
 * different pictures stays (that case is `repeated-site-alt`'s); leave `bucket` unset to deduplicate alts
 * across the whole input, as Data-Juicer does for documents.
 */
import { z } from 'zod';
import { keep, reject, round, type DuplicateGroup, type OperatorResult, type SetEntry, type SetOperator } from '../operator';
import { comparisonKey } from './segment';

export interface TextDedupEntry extends SetEntry {
  /** The normalized alt text. */
  readonly text: string;
  /** Only entries with the same bucket are compared (undefined: one common bucket). */
  readonly bucket?: string | undefined;
}

export const nearDuplicateConfigSchema = z
  .object({
    /** Jaccard similarity at or above which two alts are duplicates. */
    threshold: z.number().gt(0).max(1).default(0.7),
    /** Characters per shingle. */
    shingleSize: z.number().int().min(1).max(32).default(5),
    numPermutations: z.number().int().min(16).max(1024).default(256),
    /** Seed of the MinHash permutations (any fixed value: it only decides which rare borderline pairs LSH misses). */
    seed: z.number().int().min(0).max(0xffffffff).default(1),
  })
  .strict();
export type NearDuplicateConfig = z.infer<typeof nearDuplicateConfigSchema>;

/** FNV-1a, 32 bits, over UTF-16 code units. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** MurmurHash3's finalizer: a bijective 32-bit mix. */
function fmix32(x: number): number {
  let h = x >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The character shingles of an alt's comparison key; a key shorter than `size` is its own shingle. */
export function textShingles(text: string, size: number): Set<string> {
  const chars = Array.from(comparisonKey(text));
  const out = new Set<string>();
  if (chars.length === 0) return out;
  if (chars.length <= size) {
    out.add(chars.join(''));
    return out;
  }
  for (let i = 0; i + size <= chars.length; i++) out.add(chars.slice(i, i + size).join(''));
  return out;
}

export function jaccard(a: ReadonlySet<string>, b: ReadonlySet<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  const [small, large] = a.size <= b.size ? [a, b] : [b, a];
  let inter = 0;
  for (const x of small) if (large.has(x)) inter++;
  return inter / (a.size + b.size - inter);
}

function permutationSeeds(n: number, seed: number): Uint32Array {
  // splitmix32: a fixed, well-spread sequence of seeds
  const out = new Uint32Array(n);
  let state = seed >>> 0;
  for (let i = 0; i < n; i++) {
    state = (state + 0x9e3779b9) >>> 0;
    out[i] = fmix32(state);
  }
  return out;
}

export function minhashSignature(shingles: ReadonlySet<string>, seeds: Uint32Array): Uint32Array {
  const sig = new Uint32Array(seeds.length).fill(0xffffffff);
  for (const s of shingles) {
    const h = fnv1a(s);
    for (let k = 0; k < seeds.length; k++) {
      const v = fmix32(h ^ seeds[k]!);
      if (v < sig[k]!) sig[k] = v;
    }
  }
  return sig;
}

function integrate(f: (x: number) => number, a: number, b: number, steps = 100): number {
  const h = (b - a) / steps;
  let area = (f(a) + f(b)) / 2;
  for (let i = 1; i < steps; i++) area += f(a + i * h);
  return area * h;
}

const lshCache = new Map<string, { bands: number; rows: number }>();

/**
 * LSH bands x rows (<= numPermutations) minimizing the false positive area below the threshold plus
 * the false negative area above it, equally weighted (the datasketch / Data-Juicer optimal_param).
 */
export function lshParameters(threshold: number, numPermutations: number): { bands: number; rows: number } {
  const key = `${threshold}:${numPermutations}`;
  const cached = lshCache.get(key);
  if (cached !== undefined) return cached;
  let best = { bands: 1, rows: numPermutations };
  let bestError = Number.POSITIVE_INFINITY;
  for (let bands = 1; bands <= numPermutations; bands++) {
    const maxRows = Math.floor(numPermutations / bands);
    for (let rows = 1; rows <= maxRows; rows++) {
      const p = (s: number): number => 1 - (1 - s ** rows) ** bands;
      const fp = integrate(p, 0, threshold);
      const fn = integrate((s) => 1 - p(s), threshold, 1);
      const error = 0.5 * fp + 0.5 * fn;
      if (error < bestError) {
        bestError = error;
        best = { bands, rows };
      }
    }
  }
  lshCache.set(key, best);
  return best;
}

export interface TextGrouping {
  readonly groups: DuplicateGroup[];
  readonly duplicateOf: ReadonlyMap<string, { keeper: string; similarity: number }>;
}

/**
 * Groups near-duplicate alts within buckets.
 * @throws RangeError on a duplicate id.
 */
export function groupNearDuplicateTexts(entries: readonly TextDedupEntry[], config: NearDuplicateConfig): TextGrouping {
  const ids = new Set<string>();
  for (const e of entries) {
    if (ids.has(e.id)) throw new RangeError(`duplicate id "${e.id}" in text deduplication input`);
    ids.add(e.id);
  }
  const seeds = permutationSeeds(config.numPermutations, config.seed);
  const { bands, rows } = lshParameters(config.threshold, config.numPermutations);
  const shingles = entries.map((e) => textShingles(e.text, config.shingleSize));
  // Band buckets: (entry bucket, band index, band values) -> entry indexes, in input order.
  const bandBuckets = new Map<string, number[]>();
  const bandKeys: string[][] = entries.map((e, i) => {
    const sig = minhashSignature(shingles[i]!, seeds);
    const keys: string[] = [];
    for (let b = 0; b < bands; b++) {
      const key = `${e.bucket ?? ''}\u0000${b}\u0000${Array.from(sig.subarray(b * rows, (b + 1) * rows)).join(',')}`;
      keys.push(key);
      let list = bandBuckets.get(key);
      if (list === undefined) bandBuckets.set(key, (list = []));
      list.push(i);
    }
    return keys;
  });

  const assigned = new Uint8Array(entries.length);
  const groups: DuplicateGroup[] = [];
  const duplicateOf = new Map<string, { keeper: string; similarity: number }>();
  for (let i = 0; i < entries.length; i++) {
    if (assigned[i]) continue;
    assigned[i] = 1;
    if (shingles[i]!.size === 0) continue; // nothing to compare (an empty key is never a duplicate)
    const candidates = new Set<number>();
    for (const key of bandKeys[i]!) for (const j of bandBuckets.get(key)!) if (j > i && !assigned[j]) candidates.add(j);
    const members: Array<{ id: string; measured: number }> = [];
    for (const j of [...candidates].sort((a, b) => a - b)) {
      const similarity = jaccard(shingles[i]!, shingles[j]!);
      if (similarity >= config.threshold) {
        assigned[j] = 1;
        members.push({ id: entries[j]!.id, measured: round(similarity, 4) });
        duplicateOf.set(entries[j]!.id, { keeper: entries[i]!.id, similarity });
      }
    }
    if (members.length > 0) groups.push({ keeper: entries[i]!.id, members });
  }
  return { groups, duplicateOf };
}

export const nearDuplicateOperator: SetOperator<TextDedupEntry, NearDuplicateConfig> = {
  name: 'near-duplicate',
  kind: 'text',
  scope: 'set',
  description: 'Near-duplicate alts (Jaccard of character 5-grams, MinHash LSH candidates, exact verification) within a bucket: keeps the first.',
  reasons: ['near_duplicate_text'],
  configSchema: nearDuplicateConfigSchema,
  defaultSources: {
    threshold: "Data-Juicer document_minhash_deduplicator's default jaccard_threshold (0.7)",
    shingleSize: "Data-Juicer's default window_size (5), applied to characters instead of space-separated words",
    numPermutations: "Data-Juicer's default num_permutations (256)",
    seed: 'any fixed value: candidates are verified exactly, so the seed cannot create a false match',
  },
  apply(entries, config) {
    const { groups, duplicateOf } = groupNearDuplicateTexts(entries, config);
    const verdicts = entries.map((e): { id: string; result: OperatorResult } => {
      const dup = duplicateOf.get(e.id);
      return {
        id: e.id,
        result:
          dup === undefined ? keep() : reject('near_duplicate_text', round(dup.similarity, 4), config.threshold, `near-duplicate of ${dup.keeper}`),
      };
    });
    return { verdicts, groups };
  },
};
