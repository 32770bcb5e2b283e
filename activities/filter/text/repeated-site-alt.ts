/**
 * `repeated-site-alt`: the same alt on many different images of one site is a template ("Nahled",
 * "Фото: РИА Новости", the site's slogan), not a description of any of them. The operator reads counts
 * computed beforehand over the site's records (`buildSiteAltIndex`): for each site and each alt (as
 * normalized by `normalize`, compared case-insensitively, punctuation ignored) the number of distinct
 * images carrying it. The same image repeated with the same alt on many pages counts once (that is the
 * image deduplication's business, not a sign of a template).
 *
 * Records without a site key are kept by this operator (nothing to compare with).
 */
import { z } from 'zod';
import { keep, reject, type ItemOperator, type SiteAltIndex, type TextItem } from '../operator';
import { normalizeAltText } from './normalize';
import { comparisonKey } from './segment';

/** The key two alts share when they count as the same alt on a site. */
export function siteAltKey(normalizedAlt: string): string {
  return comparisonKey(normalizedAlt);
}

export interface SiteAltRecord {
  /** The site key (e.g. registrable domain) the page belongs to. */
  readonly site: string;
  /** The alt text as extracted (it is normalized here exactly as the `normalize` operator does). */
  readonly alt: string;
  /** Identifies the image: its sha256, or its normalized URL before download. */
  readonly imageKey: string;
}

export interface BuiltSiteAltIndex extends SiteAltIndex {
  /** Number of (site, alt) pairs indexed. */
  readonly size: number;
  /** The (site, alt key, distinct image count) triples, largest count first; for reports. */
  entries(): Array<{ site: string; altKey: string; images: number }>;
}

/** Counts distinct images per (site, alt); memory is one entry per distinct (site, alt, image). */
export function buildSiteAltIndex(records: Iterable<SiteAltRecord>): BuiltSiteAltIndex {
  const images = new Map<string, Set<string>>();
  const SEP = '\u0000';
  for (const r of records) {
    const key = siteAltKey(normalizeAltText(r.alt));
    if (key === '') continue;
    const k = r.site + SEP + key;
    let set = images.get(k);
    if (set === undefined) images.set(k, (set = new Set()));
    set.add(r.imageKey);
  }
  return {
    size: images.size,
    count(site, normalizedAlt) {
      return images.get(site + SEP + siteAltKey(normalizedAlt))?.size ?? 0;
    },
    entries() {
      return [...images.entries()]
        .map(([k, set]) => {
          const i = k.indexOf(SEP);
          return { site: k.slice(0, i), altKey: k.slice(i + 1), images: set.size };
        })
        .sort((a, b) => b.images - a.images || (a.site + a.altKey < b.site + b.altKey ? -1 : 1));
    },
  };
}

export const repeatedSiteAltConfigSchema = z
  .object({
    /** Reject an alt carried by more than this many distinct images of one site. */
    maxImagesPerAlt: z.number().int().min(1).default(5),
  })
  .strict();
export type RepeatedSiteAltConfig = z.infer<typeof repeatedSiteAltConfigSchema>;

export const repeatedSiteAltOperator: ItemOperator<TextItem, RepeatedSiteAltConfig> = {
  name: 'repeated-site-alt',
  kind: 'text',
  scope: 'item',
  input: 'text',
  requires: ['siteAltIndex'],
  description: 'Rejects an alt that more than maxImagesPerAlt distinct images of the same site carry.',
  reasons: ['repeated_on_site'],
  configSchema: repeatedSiteAltConfigSchema,
  defaultSources: {
    maxImagesPerAlt:
      'project choice: a photo gallery repeats one caption on a handful of pictures (4 in the iDNES fixture); site templates repeat theirs on every page (9 "Nahled" on one iDNES page alone)',
  },
  apply(item, config, ctx) {
    if (item.site === undefined) return keep();
    const index = ctx.siteAltIndex;
    if (index === undefined) throw new Error('repeated-site-alt needs ctx.siteAltIndex (build it with buildSiteAltIndex)');
    const n = index.count(item.site, item.text);
    if (n > config.maxImagesPerAlt) return reject('repeated_on_site', n, config.maxImagesPerAlt, `distinct images of ${item.site} with this alt`);
    return keep();
  },
};
