/**
 * Stores what one page gave, in one transaction: the page row (harvested, rejected with its reason, or
 * unchanged since the previous crawl), its images with their native alt text and context, the links it
 * adds to the frontier, and the frontier row marked done. A page recorded once is never recorded again.
 */
import type pg from 'pg';
import { inTransaction } from '../shared/db';
import type { CrawlConfig } from './config';
import type { PageExtraction } from './extract-images';
import { addToFrontier } from './frontier';

export interface PageOutcome {
  urlKey: string;
  url: string;
  depth: number;
  via: 'browser' | 'warc';
  /** The WARC source (via warc). */
  source?: string;
  outcome: 'harvested' | 'rejected' | 'unchanged';
  reason?: string | null;
  detail?: string | null;
  finalUrl?: string | null;
  httpStatus?: number | null;
  declaredLang?: string | null;
  detectedLang?: string | null;
  contentSha256?: string | null;
  etag?: string | null;
  lastModified?: string | null;
  /** Title and site name when there is no extraction (a page revalidated with 304 keeps its previous ones). */
  title?: string | null;
  siteName?: string | null;
  /** Harvested pages: what was extracted. */
  extraction?: PageExtraction;
  /** Live image sizes from the browser, by image URL. */
  natural?: Record<string, { naturalWidth: number; naturalHeight: number } | undefined>;
  /** Follow the page's links (harvested pages of the target language). */
  followLinks: boolean;
}

export async function recordPage(runId: string, lang: string, p: PageOutcome, config: CrawlConfig, frontier: boolean): Promise<void> {
  await inTransaction(async (client) => {
    const page = p.extraction?.page;
    const images = p.outcome === 'harvested' ? (p.extraction?.images ?? []) : [];
    const links = p.followLinks ? (p.extraction?.links ?? []).filter((l) => !l.nofollow) : [];
    const inserted = await client.query(
      `insert into crawl_pages (run_id, lang, url_key, url, final_url, via, source, outcome, reason, detail, http_status, declared_lang, detected_lang,
         title, site_name, content_sha256, etag, last_modified, images, links)
       values ($1,$2,$3,$4,$5,$6,$20,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19) on conflict do nothing`,
      [
        runId, lang, p.urlKey, p.url, p.finalUrl ?? null, p.via, p.outcome, p.reason ?? null, p.detail?.slice(0, 500) ?? null, p.httpStatus ?? null,
        p.declaredLang ?? page?.lang ?? null, p.detectedLang ?? null, page?.title ?? p.title ?? null, page?.siteName ?? p.siteName ?? null, p.contentSha256 ?? null,
        p.etag ?? null, p.lastModified ?? null, images.length, links.length, p.source ?? null,
      ],
    );
    if (inserted.rowCount) {
      await insertImages(client, runId, lang, p, images);
      if (frontier && links.length) await addToFrontier(client, runId, lang, links.map((l) => ({ url: l.url, depth: p.depth + 1, via: 'link' as const })), config);
    }
    if (frontier) await client.query(`update crawl_frontier set status = 'done' where run_id = $1 and lang = $2 and url_key = $3`, [runId, lang, p.urlKey]);
  });
}

async function insertImages(client: pg.PoolClient, runId: string, lang: string, p: PageOutcome, images: NonNullable<PageOutcome['extraction']>['images']) {
  for (let i = 0; i < images.length; i += 200) {
    const batch = images.slice(i, i + 200);
    const values: unknown[] = [];
    const tuples = batch.map((im) => {
      const live = p.natural?.[im.url];
      const row = [
        runId, lang, p.urlKey, im.url, im.url, im.index, im.alt, im.title, im.context?.text ?? null, im.context?.source ?? null,
        im.width, im.height, live?.naturalWidth ?? null, live?.naturalHeight ?? null,
      ];
      const at = values.length;
      values.push(...row);
      return `(${row.map((_, c) => `$${at + c + 1}`).join(',')})`;
    });
    await client.query(
      `insert into crawl_images (run_id, lang, page_key, image_key, image_url, position, alt, title, context, context_source,
         declared_width, declared_height, natural_width, natural_height) values ${tuples.join(',')} on conflict do nothing`,
      values,
    );
  }
}
