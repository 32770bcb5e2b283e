/**
 * Reproducibility signatures in sacrebleu's format (`key:value|key:value|...|version:<v>`), with two
 * differences that make them honest about what produced a score:
 * - `version` is ours ({@link METRICS_VERSION}), never sacrebleu's: these numbers come from this code.
 * - every signature carries `seg:` (the word segmentation: `none`, or `icu<ICU version>[/locale]`).
 * Keys keep sacrebleu's order: `nrefs` first, the metric's own keys, `version` last.
 */

/** Version of this metrics library; bump when any score for the same input and options would change. */
export const METRICS_VERSION = 'mella-metrics-1.0.0';

/** sacrebleu's `nrefs`: the number of references per segment, or `var` when it varies. */
export function nrefsValue(counts: Iterable<number>): string {
  const distinct = new Set(counts);
  if (distinct.size === 1) return String([...distinct][0]);
  return distinct.size === 0 ? '0' : 'var';
}

/** Formats the pairs in order and appends `version:<METRICS_VERSION>`. */
export function formatSignature(pairs: ReadonlyArray<readonly [string, string | number]>): string {
  return [...pairs.map(([k, v]) => `${k}:${v}`), `version:${METRICS_VERSION}`].join('|');
}
