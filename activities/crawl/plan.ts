/**
 * Activity (mella-cpu): plans the crawl of one language: its seeds (depth 0) and sitemap entries
 * (depth 1) into the frontier, and, for a refresh run, the pages the previous run of the same crawl
 * harvested ("known" pages, revisited). Returns the WARC sources to read. Idempotent.
 */
import { db } from '../shared/db';
import { runConfig } from '../run/run-record';
import { addToFrontier, type NewPage } from './frontier';
import { previousRun } from './previous-run';

export interface CrawlPlan {
  frontier: number;
  warc: string[];
  browser: boolean;
}

/** <loc> entries of a sitemap (a sitemap index's entries are sitemaps themselves: not followed here). */
export function sitemapLocations(xml: string): string[] {
  return [...xml.matchAll(/<loc>\s*([^<\s]+)\s*<\/loc>/gi)].map((m) => m[1]!.replace(/&amp;/g, '&'));
}

export async function planCrawl(args: { runId: string; lang: string; kind?: string }): Promise<CrawlPlan> {
  const { runId, lang } = args;
  const config = await runConfig(runId);
  const site = config.crawl.sites[lang];
  const warc = site?.warc ?? [];
  const planned = await db().query<{ total_items: number }>(`select total_items from stage_plans where run_id = $1 and lang = $2 and stage = 'crawl'`, [runId, lang]);
  if (planned.rows[0]) return { frontier: planned.rows[0].total_items, warc, browser: planned.rows[0].total_items > 0 };

  const pages: NewPage[] = (site?.seeds ?? []).map((url) => ({ url, depth: 0, via: 'seed' as const }));
  for (const sitemap of site?.sitemaps ?? []) {
    try {
      const res = await fetch(sitemap, { signal: AbortSignal.timeout(20_000), headers: { 'user-agent': config.crawl.userAgent } });
      if (res.ok) for (const loc of sitemapLocations(await res.text())) pages.push({ url: loc, depth: 1, via: 'sitemap' });
    } catch {
      // An unreachable sitemap leaves the seeds; the summary shows how many pages were found.
    }
  }
  const prev = args.kind === 'refresh' || args.kind === 'schedule' ? await previousRun(runId, config.name) : undefined;
  if (prev) {
    const known = await db().query<{ url: string }>(
      `select p.url from crawl_pages p join crawl_frontier f on f.run_id = p.run_id and f.lang = p.lang and f.url_key = p.url_key
        where p.run_id = $1 and p.lang = $2 and p.via = 'browser' and p.outcome in ('harvested', 'unchanged')`,
      [prev, lang],
    );
    for (const r of known.rows) pages.push({ url: r.url, depth: 1, via: 'known' });
  }
  const added = await addToFrontier(db(), runId, lang, pages, config.crawl);
  await db().query(
    `insert into stage_plans (run_id, lang, stage, total_items, shard_count, shard_size) values ($1, $2, 'crawl', $3, $4, $5) on conflict do nothing`,
    [runId, lang, added, warc.length, config.crawl.batchSize],
  );
  return { frontier: added, warc, browser: added > 0 };
}
