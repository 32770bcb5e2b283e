/**
 * What the dataset card shows, gathered during the export's one pass in memory that does not grow with
 * the data: answer lengths per language and source (a histogram over fixed grapheme bins, graphemes by
 * `Intl.Segmenter` in the sample's language), the page domains per language (Misra-Gries heavy hitters:
 * exact while a language has at most `maxDomains` distinct domains, lower bounds beyond), stand-in
 * counts, and a gallery: per language the `galleryPerLanguage` images with the smallest sha256 (a
 * deterministic, unbiased pick), with every text the export has for each (native alt from
 * D_know, the English caption from a D_ling sample's `lineage.caption`, the translation from D_ling, the
 * fused answer). The stage counts (in, kept, rejected by reason) come from the pipeline, not from here.
 */
import { siteKey } from '../filter/stage/site';
import { segmenter } from '../shared/segmenter';
import { SAMPLE_SOURCES, type Sample, type SampleSource, type SplitName } from './sample';

/** Bin i holds lengths in [LENGTH_EDGES[i], LENGTH_EDGES[i+1]); the last bin everything from 1280 up. */
export const LENGTH_EDGES: readonly number[] = [0, 10, 20, 40, 80, 160, 320, 640, 1280];

export interface LengthHistogram {
  edges: number[];
  counts: number[];
  n: number;
  min: number;
  max: number;
  /** Rounded to one decimal. */
  mean: number;
}

export interface StageCounts {
  in: number;
  kept: number;
  rejected: Record<string, number>;
}

/** Input of the card (the stage part comes from the pipeline's summary; the rest from the collector). */
export interface CardStats {
  /** Stage name -> counts, in pipeline order (crawl, ingest, filter, caption, translate, merge...). */
  stages: Record<string, StageCounts>;
  /** Language -> stage -> counts, when the pipeline has them. */
  perLanguage?: Record<string, Record<string, StageCounts>>;
  /** Language -> source -> answer lengths in graphemes. */
  textLengths: Record<string, Partial<Record<SampleSource, LengthHistogram>>>;
  /** Language -> top page domains. */
  domains: Record<string, { domain: string; count: number }[]>;
  /** True when a language had more distinct domains than were tracked (counts are lower bounds). */
  domainsApproximate?: boolean;
}

export interface GalleryItem {
  lang: string;
  imageSha256: string;
  /** Absolute path of the image (for thumbnails). */
  imagePath: string;
  /** Path inside the export (for the Markdown card). */
  imageRel: string;
  split: SplitName;
  /** Native alt text (D_know answer). */
  alt?: string;
  /** English caption a D_ling answer was translated from (`lineage.caption`). */
  caption?: string;
  /** Translated caption (D_ling answer). */
  translation?: string;
  /** Fused answer. */
  fused?: string;
  pageUrl?: string;
  standin: boolean;
}

export interface CollectedCardStats {
  textLengths: CardStats['textLengths'];
  domains: CardStats['domains'];
  domainsApproximate: boolean;
  gallery: GalleryItem[];
  standinSamples: number;
  standinBySource: Partial<Record<SampleSource, number>>;
}

const MAX_TEXT = 600;
const clip = (s: string) => {
  if (s.length <= MAX_TEXT) return s;
  const cps = Array.from(s);
  return cps.length <= MAX_TEXT ? s : `${cps.slice(0, MAX_TEXT).join('')}…`;
};

function binOf(n: number) {
  let i = LENGTH_EDGES.length - 1;
  while (i > 0 && n < LENGTH_EDGES[i]!) i--;
  return i;
}

export function graphemeCount(text: string, lang: string): number {
  let n = 0;
  for (const _ of segmenter(lang, 'grapheme').segment(text)) n++;
  return n;
}

interface Hist {
  counts: number[];
  n: number;
  min: number;
  max: number;
  sum: number;
}

export class CardStatsCollector {
  private readonly lengths = new Map<string, Map<SampleSource, Hist>>();
  private readonly domainCounts = new Map<string, Map<string, number>>();
  private approximate = false;
  private readonly gallery = new Map<string, (GalleryItem & { key: string })[]>();
  private standin = 0;
  private readonly standinBySource: Partial<Record<SampleSource, number>> = {};

  constructor(readonly options: { galleryPerLanguage?: number; maxDomains?: number; domainOf?: (s: Sample) => string | undefined } = {}) {}

  add(s: Sample, split: SplitName, imageRel: string): void {
    // answer length
    let bySource = this.lengths.get(s.lang);
    if (!bySource) this.lengths.set(s.lang, (bySource = new Map()));
    let h = bySource.get(s.source);
    if (!h) bySource.set(s.source, (h = { counts: LENGTH_EDGES.map(() => 0), n: 0, min: Infinity, max: 0, sum: 0 }));
    const len = graphemeCount(s.answer, s.lang);
    h.counts[binOf(len)]!++;
    h.n++;
    h.sum += len;
    h.min = Math.min(h.min, len);
    h.max = Math.max(h.max, len);

    // domains
    const domain = this.options.domainOf ? this.options.domainOf(s) : typeof s.lineage.pageUrl === 'string' ? siteKey(s.lineage.pageUrl) : undefined;
    if (domain) this.countDomain(s.lang, domain);

    if (s.standin) {
      this.standin++;
      this.standinBySource[s.source] = (this.standinBySource[s.source] ?? 0) + 1;
    }
    this.addToGallery(s, split, imageRel);
  }

  private countDomain(lang: string, domain: string) {
    const max = this.options.maxDomains ?? 2000;
    let m = this.domainCounts.get(lang);
    if (!m) this.domainCounts.set(lang, (m = new Map()));
    const c = m.get(domain);
    if (c !== undefined) m.set(domain, c + 1);
    else if (m.size < max) m.set(domain, 1);
    else {
      // Misra-Gries: every tracked count pays for the untracked one
      this.approximate = true;
      for (const [d, n] of m) {
        if (n <= 1) m.delete(d);
        else m.set(d, n - 1);
      }
    }
  }

  private addToGallery(s: Sample, split: SplitName, imageRel: string) {
    const size = this.options.galleryPerLanguage ?? 6;
    if (size <= 0) return;
    let items = this.gallery.get(s.lang);
    if (!items) this.gallery.set(s.lang, (items = []));
    let item = items.find((i) => i.imageSha256 === s.imageSha256);
    if (!item) {
      const key = s.imageSha256; // already a uniform hash of the image: the smallest ones are an unbiased pick
      if (items.length >= size && key >= items[items.length - 1]!.key) return;
      item = { key, lang: s.lang, imageSha256: s.imageSha256, imagePath: s.imagePath, imageRel, split, standin: false };
      const at = items.findIndex((i) => key < i.key);
      items.splice(at < 0 ? items.length : at, 0, item);
      if (items.length > size) items.pop();
    }
    if (s.standin) item.standin = true;
    if (item.pageUrl === undefined && typeof s.lineage.pageUrl === 'string') item.pageUrl = clip(s.lineage.pageUrl);
    if (s.source === 'know') item.alt ??= clip(s.answer);
    if (s.source === 'ling') {
      item.translation ??= clip(s.answer);
      const caption = s.lineage.caption ?? s.lineage.sourceCaption;
      if (typeof caption === 'string') item.caption ??= clip(caption);
    }
    if (s.source === 'fused') item.fused ??= clip(s.answer);
  }

  result(options: { topDomains?: number } = {}): CollectedCardStats {
    const top = options.topDomains ?? 10;
    const textLengths: CardStats['textLengths'] = {};
    for (const lang of [...this.lengths.keys()].sort()) {
      const out: Partial<Record<SampleSource, LengthHistogram>> = {};
      for (const source of SAMPLE_SOURCES) {
        const h = this.lengths.get(lang)!.get(source);
        if (!h) continue;
        out[source] = { edges: [...LENGTH_EDGES], counts: [...h.counts], n: h.n, min: h.min, max: h.max, mean: Math.round((h.sum / h.n) * 10) / 10 };
      }
      textLengths[lang] = out;
    }
    const domains: CardStats['domains'] = {};
    for (const lang of [...this.domainCounts.keys()].sort()) {
      domains[lang] = [...this.domainCounts.get(lang)!.entries()]
        .map(([domain, count]) => ({ domain, count }))
        .sort((a, b) => b.count - a.count || (a.domain < b.domain ? -1 : 1))
        .slice(0, top);
    }
    const gallery: GalleryItem[] = [];
    for (const lang of [...this.gallery.keys()].sort()) {
      for (const { key: _key, ...item } of this.gallery.get(lang)!) gallery.push(item);
    }
    return { textLengths, domains, domainsApproximate: this.approximate, gallery, standinSamples: this.standin, standinBySource: { ...this.standinBySource } };
  }
}
