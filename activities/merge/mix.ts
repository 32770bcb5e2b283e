/**
 * Mixing ratios between the sources, per language. `{ know: 1, ling: 1, fused: 0.5 }` asks for know,
 * ling and fused samples in the proportion 1 : 1 : 0.5 within every language, using as much data as that
 * proportion allows:
 *
 *   for a language with n_s samples available from source s (weight w_s > 0):
 *     scale  = min over the sources with n_s > 0 of n_s / w_s      (the scarcest source, for its weight)
 *     keep_s = min(n_s, floor(scale * w_s))
 *
 * so the scarcest source (relative to its weight) is kept whole and the others are cut down to the
 * ratio. A source with weight 0, or absent from the ratios, is left out of the export; a source that has
 * no samples in a language is ignored there (it cannot hold the others at zero). No ratios (`undefined`)
 * means no mixing: everything is kept.
 *
 * Which samples are kept is deterministic and stable: within (language, source), the keep_s samples with
 * the smallest sha256(salt + "\0" + id) (ties, which need equal 64-bit prefixes, by id). The plan is made
 * in two streaming passes over light keys (id, language, source), in memory that does not grow with the
 * data: counts and a histogram of hash prefixes, then the exact cut inside the one histogram bucket it
 * falls in. The plan is plain JSON (it can cross an activity boundary); `mixKeeps` applies it.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { SAMPLE_SOURCES, type SampleSource } from './sample';

export const DEFAULT_MIX_SALT = 'mella-mix-v1';

export const mixRatiosSchema = z
  .object({ know: z.number().min(0), ling: z.number().min(0), fused: z.number().min(0) })
  .partial()
  .strict()
  .refine((r) => Object.values(r).some((w) => w > 0), { message: 'at least one mixing weight must be above 0' });
export type MixRatios = z.infer<typeof mixRatiosSchema>;

export interface MixKey {
  id: string;
  lang: string;
  source: SampleSource;
}

export interface MixQuota {
  available: number;
  keep: number;
  /** The largest selection key kept; null when all (or none, keep 0) are kept. */
  threshold: string | null;
}

export interface MixPlan {
  salt: string;
  ratios: MixRatios;
  /** language -> source -> quota (only sources seen in that language). */
  quotas: Record<string, Partial<Record<SampleSource, MixQuota>>>;
}

/** keep_s for one language, from the counts available (see the module comment). */
export function mixQuotas(available: Partial<Record<SampleSource, number>>, ratios: MixRatios): Record<SampleSource, number> {
  const out = { know: 0, ling: 0, fused: 0 } as Record<SampleSource, number>;
  let scale = Infinity;
  for (const s of SAMPLE_SOURCES) {
    const w = ratios[s] ?? 0;
    const n = available[s] ?? 0;
    if (w > 0 && n > 0) scale = Math.min(scale, n / w);
  }
  if (scale === Infinity) return out;
  for (const s of SAMPLE_SOURCES) {
    const w = ratios[s] ?? 0;
    const n = available[s] ?? 0;
    // 1e-9: the limiting source's scale * w is n up to rounding
    if (w > 0 && n > 0) out[s] = Math.min(n, Math.floor(scale * w + 1e-9));
  }
  return out;
}

/** The selection key: 16 hex digits of sha256(salt + "\0" + id), then the id (string order = hash order). */
export function mixSelectionKey(salt: string, id: string): string {
  return `${createHash('sha256').update(salt).update('\0').update(id).digest('hex').slice(0, 16)}\0${id}`;
}

const BUCKET_BITS = 14; // 16,384 buckets (64 KiB) per language and source
const bucketOf = (key: string) => parseInt(key.slice(0, 4), 16) >> (16 - BUCKET_BITS);

type KeySource = () => AsyncIterable<MixKey> | Iterable<MixKey>;

/** Plans the mix: two passes over `keys()` (which must yield the same keys each time). */
export async function planMix(keys: KeySource, ratios: MixRatios, options: { salt?: string } = {}): Promise<MixPlan> {
  const salt = options.salt ?? DEFAULT_MIX_SALT;
  const parsed = mixRatiosSchema.parse(ratios);
  const hist = new Map<string, Uint32Array>(); // `${lang}\0${source}`
  const counts = new Map<string, Partial<Record<SampleSource, number>>>();
  for await (const k of keys()) {
    let c = counts.get(k.lang);
    if (c === undefined) counts.set(k.lang, (c = {}));
    c[k.source] = (c[k.source] ?? 0) + 1;
    if ((parsed[k.source] ?? 0) <= 0) continue;
    const hk = `${k.lang}\0${k.source}`;
    let h = hist.get(hk);
    if (h === undefined) hist.set(hk, (h = new Uint32Array(1 << BUCKET_BITS)));
    h[bucketOf(mixSelectionKey(salt, k.id))]!++;
  }

  const quotas: MixPlan['quotas'] = {};
  // (lang, source) whose cut falls inside a bucket: which bucket, and how many to take from it
  const cuts = new Map<string, { bucket: number; take: number; keys: string[] }>();
  for (const lang of [...counts.keys()].sort()) {
    const available = counts.get(lang)!;
    const keep = mixQuotas(available, parsed);
    const q: Partial<Record<SampleSource, MixQuota>> = {};
    for (const s of SAMPLE_SOURCES) {
      const n = available[s];
      if (n === undefined) continue;
      q[s] = { available: n, keep: keep[s], threshold: null };
      if (keep[s] > 0 && keep[s] < n) {
        const h = hist.get(`${lang}\0${s}`)!;
        let below = 0;
        let b = 0;
        while (below + h[b]! < keep[s]) below += h[b++]!;
        cuts.set(`${lang}\0${s}`, { bucket: b, take: keep[s] - below, keys: [] });
      }
    }
    quotas[lang] = q;
  }
  hist.clear();

  if (cuts.size > 0) {
    for await (const k of keys()) {
      const cut = cuts.get(`${k.lang}\0${k.source}`);
      if (cut === undefined) continue;
      const key = mixSelectionKey(salt, k.id);
      if (bucketOf(key) === cut.bucket) cut.keys.push(key);
    }
    for (const [hk, cut] of cuts) {
      const [lang, source] = hk.split('\0') as [string, SampleSource];
      cut.keys.sort();
      const threshold = cut.keys[cut.take - 1];
      if (threshold === undefined) throw new Error(`mix plan: the keys changed between passes (${lang}/${source})`);
      quotas[lang]![source]!.threshold = threshold;
    }
  }
  return { salt, ratios: parsed, quotas };
}

/** Whether the plan keeps this sample. A language or source the plan never saw is not kept. */
export function mixKeeps(plan: MixPlan, key: MixKey): boolean {
  const q = plan.quotas[key.lang]?.[key.source];
  if (q === undefined || q.keep === 0) return false;
  if (q.threshold === null) return true;
  return mixSelectionKey(plan.salt, key.id) <= q.threshold;
}
