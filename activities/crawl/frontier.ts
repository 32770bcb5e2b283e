/**
 * The crawl frontier in PostgreSQL, per run and language: normalized URLs, deduplicated by key, with
 * their depth and domain. A browser batch claims pages under its own name, so a retried batch (same
 * activity, after a killed worker) resumes exactly the pages it held, and two batches never share one.
 */
import type pg from 'pg';
import { db } from '../shared/db';
import type { CrawlConfig } from './config';
import { hostMatchesDomain, normalizeDomain, normalizeUrl } from './url-normalize';

export interface FrontierPage {
  url_key: string;
  url: string;
  depth: number;
  domain: string;
  via: string;
  /** Claims of this page so far, this one included. */
  attempts: number;
  /** Not to be fetched before this time (the server's Retry-After), or null. */
  not_before: Date | null;
}

export interface NewPage {
  url: string;
  depth: number;
  via: 'seed' | 'sitemap' | 'link' | 'known';
}

/** The domains a language's links may reach: the configured ones, else the seeds' hosts. */
export function allowedDomains(config: CrawlConfig, lang: string): string[] {
  const site = config.sites[lang];
  if (!site) return [];
  const given = site.allowedDomains ?? site.seeds.map((s) => new URL(s).hostname);
  return [...new Set(given.map((d) => normalizeDomain(d)).filter((d): d is string => d !== null))];
}

/**
 * Adds pages (normalized, deduplicated, within the allowed domains, depth and per-domain limits).
 * Returns how many were new.
 */
export async function addToFrontier(
  client: pg.Pool | pg.PoolClient,
  runId: string,
  lang: string,
  pages: readonly NewPage[],
  config: CrawlConfig,
): Promise<number> {
  const domains = allowedDomains(config, lang);
  const rows = new Map<string, { url: string; depth: number; domain: string; via: string }>();
  for (const p of pages) {
    if (p.depth > config.maxDepth) continue;
    const n = normalizeUrl(p.url);
    if (!n.ok) continue;
    if (!domains.some((d) => hostMatchesDomain(n.host, d))) continue;
    if (!rows.has(n.url)) rows.set(n.url, { url: n.url, depth: p.depth, domain: n.host, via: p.via });
  }
  if (rows.size === 0) return 0;
  const list = [...rows.entries()];
  // Per-domain cap: counts what the frontier already holds for each domain.
  const { rowCount } = await client.query(
    `insert into crawl_frontier (run_id, lang, url_key, url, depth, domain, via)
     select $1, $2, k, u, d, dom, v
       from unnest($3::text[], $4::text[], $5::int[], $6::text[], $7::text[]) as t(k, u, d, dom, v)
      where (select count(*) from crawl_frontier f where f.run_id = $1 and f.lang = $2 and f.domain = t.dom) < $8
     on conflict do nothing`,
    [runId, lang, list.map(([k]) => k), list.map(([, r]) => r.url), list.map(([, r]) => r.depth), list.map(([, r]) => r.domain), list.map(([, r]) => r.via), config.maxPagesPerDomain],
  );
  return rowCount ?? 0;
}

/**
 * Claims up to `limit` pages for `batch`: first those it already holds (a retried attempt), then
 * pending ones, shallowest first, never more than the language's page budget allows.
 */
export async function claimPages(runId: string, lang: string, batch: string, limit: number, maxPages: number): Promise<FrontierPage[]> {
  const client = await db().connect();
  try {
    await client.query('begin');
    // One claimer at a time per language: the budget check and the claim must not interleave.
    await client.query('select pg_advisory_xact_lock(hashtext($1))', [`crawl-claim:${runId}:${lang}`]);
    const held = await client.query<FrontierPage>(
      `select url_key, url, depth, domain, via, attempts, not_before from crawl_frontier where run_id = $1 and lang = $2 and status = 'claimed' and claimed_by = $3 order by depth, url_key`,
      [runId, lang, batch],
    );
    const used = await client.query<{ n: string }>(`select count(*) as n from crawl_frontier where run_id = $1 and lang = $2 and status <> 'pending'`, [runId, lang]);
    const room = Math.max(0, Math.min(limit - held.rows.length, maxPages - Number(used.rows[0]!.n)));
    let fresh: FrontierPage[] = [];
    if (room > 0) {
      fresh = (
        await client.query<FrontierPage>(
          `update crawl_frontier f set status = 'claimed', claimed_by = $3, attempts = attempts + 1
            where (f.run_id, f.lang, f.url_key) in (
              select run_id, lang, url_key from crawl_frontier where run_id = $1 and lang = $2 and status = 'pending'
               order by depth, url_key limit $4)
            returning url_key, url, depth, domain, via, attempts, not_before`,
          [runId, lang, batch, room],
        )
      ).rows;
    }
    await client.query('commit');
    return [...held.rows, ...fresh];
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Gives a claimed page back to the frontier (a 429/503 the server asked us to come back after): it is
 * pending again and the next batch claims it, as its next attempt.
 */
export async function releasePage(runId: string, lang: string, urlKey: string, notBefore: Date): Promise<void> {
  await db().query(
    `update crawl_frontier set status = 'pending', claimed_by = null, not_before = $4 where run_id = $1 and lang = $2 and url_key = $3 and status = 'claimed'`,
    [runId, lang, urlKey, notBefore],
  );
}

/** Whether the language has pages left to visit within its budget. */
export async function frontierExhausted(runId: string, lang: string, maxPages: number): Promise<boolean> {
  const { rows } = await db().query<{ pending: string; used: string }>(
    `select count(*) filter (where status = 'pending') as pending, count(*) filter (where status <> 'pending') as used
       from crawl_frontier where run_id = $1 and lang = $2`,
    [runId, lang],
  );
  return Number(rows[0]!.pending) === 0 || Number(rows[0]!.used) >= maxPages;
}
