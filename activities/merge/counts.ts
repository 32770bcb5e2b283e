/** Sample counts of an export: per split, per source, and per language x split x source. */
import { SPLITS, type SampleSource, type SplitName } from './sample';

export interface ExportCounts {
  total: number;
  bySplit: Record<SplitName, number>;
  bySource: Partial<Record<SampleSource, number>>;
  /** language -> split -> source -> samples */
  byLang: Record<string, Record<SplitName, Partial<Record<SampleSource, number>>>>;
}

export function emptyCounts(): ExportCounts {
  return { total: 0, bySplit: { train: 0, validation: 0, test: 0 }, bySource: {}, byLang: {} };
}

export function countSample(c: ExportCounts, lang: string, split: SplitName, source: SampleSource): void {
  c.total++;
  c.bySplit[split]++;
  c.bySource[source] = (c.bySource[source] ?? 0) + 1;
  const l = (c.byLang[lang] ??= { train: {}, validation: {}, test: {} });
  l[split][source] = (l[split][source] ?? 0) + 1;
}

/** Samples of one language (and source, when given) over all splits. */
export function langTotal(c: ExportCounts, lang: string, source?: SampleSource): number {
  const l = c.byLang[lang];
  if (!l) return 0;
  let n = 0;
  for (const split of SPLITS) {
    for (const [s, v] of Object.entries(l[split])) if (source === undefined || s === source) n += v ?? 0;
  }
  return n;
}
