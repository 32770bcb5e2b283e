/**
 * Activity (mella-browser): one batch of a language's crawl. Claims up to `batchSize` frontier pages
 * (a retried attempt first takes back the pages it held), renders them in the worker's browser (one
 * process-wide renderer, a fresh context per page), with politeness per domain (one page at a time in a
 * batch; `perDomainDelayMs` or robots.txt's crawl-delay between page loads across every worker process,
 * domain-slots.ts; robots.txt rules for our user agent),
 * language control, and records each page with its images and links. Heartbeats every second.
 */
import { Context, CancelledFailure } from '@temporalio/activity';
import { createHash } from 'node:crypto';
import dns from 'node:dns/promises';
import pLimit from 'p-limit';
import { db } from '../shared/db';
import { AddressGuard } from '../shared/address-guard';
import { runConfig } from '../run/run-record';
import type { ShardResult } from '../../workflows/types';
import type { CrawlConfig } from './config';
import { holdDomain, politeWait } from './domain-slots';
import { claimPages, frontierExhausted, releasePage, type FrontierPage } from './frontier';
import { judgePageLanguage } from './page-language';
import { previousRun } from './previous-run';
import { recordPage } from './record-page';
import { fetchRobots, robotsFromFetch, robotsUrlFor, type RobotsPolicy } from './robots';
import { PageRenderer } from './browser';
import { hasValidators, revalidate } from './revalidate';

export interface CrawlBatchResult {
  result: ShardResult;
  /** No page left to visit within the language's budget. */
  exhausted: boolean;
  /** Pages the frontier holds so far. */
  frontier: number;
}

// One renderer per worker process and settings (a browser is expensive; pages get fresh contexts).
const renderers = new Map<string, Promise<PageRenderer>>();
function rendererFor(c: CrawlConfig): Promise<PageRenderer> {
  const opts = { recycleAfterPages: c.recycleAfterPages, userAgent: c.userAgent, allowPrivateNetworks: c.allowPrivateNetworks };
  const key = JSON.stringify(opts);
  let r = renderers.get(key);
  if (!r) {
    r = PageRenderer.launch(opts);
    r.catch(() => renderers.delete(key));
    renderers.set(key, r);
  }
  return r;
}

/** Closes the process's browsers (worker shutdown). */
export async function closeRenderers(): Promise<void> {
  const all = [...renderers.values()];
  renderers.clear();
  await Promise.all(all.map(async (r) => (await r.catch(() => undefined))?.close()));
}

// robots.txt policies by origin, per worker process (visit times are shared: domain-slots.ts).
const robotsByOrigin = new Map<string, Promise<RobotsPolicy>>();

async function robotsFor(url: string, c: CrawlConfig): Promise<RobotsPolicy> {
  const origin = new URL(url).origin;
  let p = robotsByOrigin.get(origin);
  if (!p) {
    p = (async () => {
      // robots.txt goes through the same SSRF guard as the pages (resolve, then refuse private addresses).
      const guard = new AddressGuard(c.allowPrivateNetworks);
      const host = new URL(url).hostname.replace(/^\[|\]$/g, '');
      const addresses = await dns.lookup(host, { all: true }).catch(() => []);
      const blocked = addresses.length === 0 ? 'unresolvable' : addresses.map((a) => guard.blockedRange(a.address)).find((r) => r !== null);
      // A blocked origin: no robots.txt fetched; its pages are refused by the renderer's guard anyway.
      if (blocked) return robotsFromFetch(robotsUrlFor(url), { error: `address blocked (${blocked})` }, c.userAgent);
      return fetchRobots(url, { userAgent: c.userAgent });
    })();
    robotsByOrigin.set(origin, p);
  }
  return p;
}

interface PreviousPage {
  content_sha256: string | null;
  etag: string | null;
  last_modified: string | null;
  final_url: string | null;
  declared_lang: string | null;
  detected_lang: string | null;
  title: string | null;
  site_name: string | null;
}

/** The previous crawl's record of a page it harvested (or found unchanged); undefined for a page new to this refresh. */
async function previousPage(prev: string, lang: string, urlKey: string): Promise<PreviousPage | undefined> {
  const { rows } = await db().query<PreviousPage>(
    `select content_sha256, etag, last_modified, final_url, declared_lang, detected_lang, title, site_name
       from crawl_pages where run_id = $1 and lang = $2 and url_key = $3 and outcome in ('harvested', 'unchanged')`,
    [prev, lang, urlKey],
  );
  return rows[0];
}

/** The validators belong to the response the page ended at: ask that URL when it is on the same host. */
function revalidationUrl(url: string, finalUrl: string | null): string {
  if (!finalUrl) return url;
  try {
    return new URL(finalUrl).host === new URL(url).host ? finalUrl : url;
  } catch {
    return url;
  }
}

export async function crawlBatch(args: { runId: string; lang: string; batchNo: number }): Promise<CrawlBatchResult> {
  const { runId, lang, batchNo } = args;
  const ctx = Context.current();
  const config = await runConfig(runId);
  const c = config.crawl;
  const pages = await claimPages(runId, lang, `batch-${batchNo}`, c.batchSize, c.maxPagesPerLanguage);
  const renderer = pages.length ? await rendererFor(c) : undefined;
  const prev = pages.length ? await previousRun(runId, config.name) : undefined;
  let done = 0;
  let deferred = 0;
  const beat = setInterval(() => ctx.heartbeat({ done, deferred }), 1000);

  const visit = async (page: FrontierPage) => {
    const signal = ctx.cancellationSignal;
    if (signal.aborted) return;
    const base = { urlKey: page.url_key, url: page.url, depth: page.depth, via: 'browser' as const };
    let delay = c.perDomainDelayMs;
    if (c.respectRobots) {
      const robots = await robotsFor(page.url, c);
      const crawlDelay = robots.crawlDelay();
      if (crawlDelay !== undefined) delay = Math.max(delay, Math.min(crawlDelay, 60) * 1000);
      if (!robots.isAllowed(page.url)) {
        await recordPage(runId, lang, { ...base, outcome: 'rejected', reason: 'robots_disallowed', detail: robots.robotsUrl, followLinks: false }, c, true);
        return;
      }
    }
    await politeWait(page.domain, delay, signal, page.not_before);
    // A refresh: what the previous crawl of this page stored, and first a conditional GET with its
    // validators. A 304 is an unchanged page without starting the browser. Its links are not
    // followed: the refresh's plan already holds every page the previous crawl knew.
    const before = prev ? await previousPage(prev, lang, page.url_key) : undefined;
    if (before && c.revalidate && hasValidators({ etag: before.etag, lastModified: before.last_modified })) {
      const rv = await revalidate(revalidationUrl(page.url, before.final_url), { etag: before.etag, lastModified: before.last_modified }, {
        userAgent: c.userAgent, allowPrivateNetworks: c.allowPrivateNetworks, signal,
      });
      if (signal.aborted) return;
      if (rv.notModified) {
        await recordPage(runId, lang, {
          ...base, outcome: 'unchanged', httpStatus: 304, detail: `304 Not Modified (${rv.header})`, finalUrl: before.final_url,
          contentSha256: before.content_sha256, etag: rv.etag ?? before.etag, lastModified: rv.lastModified ?? before.last_modified,
          declaredLang: before.declared_lang, detectedLang: before.detected_lang, title: before.title, siteName: before.site_name, followLinks: false,
        }, c, true);
        return;
      }
      // The page changed or could not be revalidated: the render is a second request to the domain.
      await politeWait(page.domain, delay, signal);
    }
    const r = await renderer!.render(page.url, c.render, signal);
    if (signal.aborted) return;
    if (!r.ok) {
      let detail = r.detail ?? null;
      if (r.reason === 'http_429' || r.reason === 'http_503') {
        // The server asked us to slow down: the page goes back to the frontier until Retry-After (or a
        // backoff), and the domain waits as long in every process.
        const asked = r.retryAfterMs;
        if (page.attempts < c.maxPageAttempts && (asked === undefined || asked <= c.maxRetryAfterMs)) {
          const waitMs = asked ?? Math.min(c.maxRetryAfterMs, Math.max(delay, 1000) * 2 ** (page.attempts - 1));
          await holdDomain(page.domain, waitMs);
          await releasePage(runId, lang, page.url_key, new Date(Date.now() + waitMs));
          deferred++;
          return;
        }
        detail = asked !== undefined && asked > c.maxRetryAfterMs
          ? `${detail ?? ''}; Retry-After ${Math.ceil(asked / 1000)} s exceeds crawl.maxRetryAfterMs`
          : `${detail ?? ''} (after ${page.attempts} attempts)`;
      }
      await recordPage(runId, lang, { ...base, outcome: 'rejected', reason: r.reason, detail, finalUrl: r.finalUrl ?? null, followLinks: false }, c, true);
      return;
    }
    const sha = createHash('sha256').update(r.html).digest('hex');
    const common = {
      ...base, finalUrl: r.finalUrl, httpStatus: r.status, contentSha256: sha, etag: r.headers.etag ?? null, lastModified: r.headers.lastModified ?? null,
      extraction: r.extraction,
    };
    // A refresh: a harvested page whose content did not change since the previous crawl sends nothing
    // new (its links are still followed). A page rejected before is judged again.
    if (before) {
      if (before.content_sha256 === sha) {
        await recordPage(runId, lang, { ...common, outcome: 'unchanged', followLinks: true }, c, true);
        return;
      }
    }
    const robots = r.extraction.page.robots;
    const language = c.languageControl.enabled
      ? await judgePageLanguage(r.html, r.extraction.page.lang, lang, c.languageControl.minTextChars)
      : { harvest: true, declared: r.extraction.page.lang, detected: null };
    const natural = Object.fromEntries(Object.entries(r.dom ?? {}).map(([u, d]) => [u, d && { naturalWidth: d.naturalWidth, naturalHeight: d.naturalHeight }]));
    if (!language.harvest) {
      await recordPage(runId, lang, { ...common, outcome: 'rejected', reason: language.reason!, detail: language.detail ?? null, declaredLang: language.declared, detectedLang: language.detected, followLinks: false }, c, true);
    } else if (robots.noimageindex || robots.noindex) {
      await recordPage(runId, lang, { ...common, outcome: 'rejected', reason: robots.noimageindex ? 'noimageindex' : 'noindex', detail: robots.directives.join(','), followLinks: !robots.nofollow }, c, true);
    } else {
      await recordPage(runId, lang, { ...common, outcome: 'harvested', declaredLang: language.declared, detectedLang: language.detected, natural, followLinks: !robots.nofollow }, c, true);
    }
  };

  try {
    // Domains in parallel (up to pagesInParallel), the pages of one domain one after another.
    const byDomain = new Map<string, FrontierPage[]>();
    for (const p of pages) (byDomain.get(p.domain) ?? byDomain.set(p.domain, []).get(p.domain)!).push(p);
    const limit = pLimit(c.pagesInParallel);
    await Promise.all(
      [...byDomain.values()].map((list) =>
        limit(async () => {
          for (const page of list) {
            await visit(page);
            done++;
          }
        }),
      ),
    );
  } finally {
    clearInterval(beat);
  }
  if (ctx.cancellationSignal.aborted) throw new CancelledFailure('crawl batch cancelled; its recorded pages are kept');

  const result: ShardResult = { shardIndex: batchNo, in: 0, kept: 0, rejected: {}, skipped: false };
  if (pages.length) {
    const { rows } = await db().query<{ outcome: string; reason: string | null; n: string }>(
      `select outcome, reason, count(*) as n from crawl_pages where run_id = $1 and lang = $2 and url_key = any($3) group by 1, 2`,
      [runId, lang, pages.map((p) => p.url_key)],
    );
    for (const row of rows) {
      const n = Number(row.n);
      result.in += n;
      if (row.outcome === 'harvested') result.kept += n;
      else {
        const reason = row.outcome === 'unchanged' ? 'unchanged' : (row.reason ?? 'unknown');
        result.rejected[reason] = (result.rejected[reason] ?? 0) + n;
      }
    }
  }
  const frontier = Number((await db().query<{ n: string }>('select count(*) as n from crawl_frontier where run_id = $1 and lang = $2', [runId, lang])).rows[0]!.n);
  return { result, exhausted: pages.length === 0 || (await frontierExhausted(runId, lang, c.maxPagesPerLanguage)), frontier };
}
