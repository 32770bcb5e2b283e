/**
 * The `crawl` section of the run config: per language, the seeds (and sitemaps) a real browser visits
 * and the WARC archives read without one; the crawl's limits and politeness.
 *
 *   crawl:
 *     sites:
 *       th: { seeds: ["https://www.example.co.th/"], allowedDomains: [example.co.th], warc: [crawl/th.warc.gz] }
 *     maxDepth: 2
 *     maxPagesPerDomain: 200
 *     maxPagesPerLanguage: 1000
 *     perDomainDelayMs: 1000        # robots.txt crawl-delay wins when longer
 */
import { z } from 'zod';
import { DEFAULT_USER_AGENT } from './robots';

const httpUrl = z.url({ protocol: /^https?$/ });

export const crawlSiteSchema = z
  .object({
    /** Pages to start from (depth 0). */
    seeds: z.array(httpUrl).default([]),
    /** sitemap.xml URLs whose <loc> entries join the frontier at depth 1. */
    sitemaps: z.array(httpUrl).default([]),
    /** Domains links may lead to (a domain allows its subdomains); default: the seeds' hosts. */
    allowedDomains: z.array(z.string().min(1)).optional(),
    /** WARC / WARC.gz files (paths relative to the config file, or http(s) URLs) read without a browser. */
    warc: z.array(z.string().min(1)).default([]),
    /** Charset for undeclared, non-UTF-8 WARC bodies (e.g. windows-1251). */
    warcFallbackCharset: z.string().optional(),
  })
  .strict();

export const crawlConfigSchema = z
  .object({
    sites: z.record(z.string(), crawlSiteSchema).default({}),
    maxDepth: z.number().int().min(0).max(20).default(2),
    maxPagesPerDomain: z.number().int().min(1).default(200),
    maxPagesPerLanguage: z.number().int().min(1).default(1000),
    /** Pages per browser activity (one heartbeating, resumable batch). */
    batchSize: z.number().int().min(1).max(500).default(10),
    /** Pages of different domains rendered at once within a batch (one per domain). */
    pagesInParallel: z.number().int().min(1).max(16).default(2),
    /** Least time between two pages of one domain, per worker process. */
    perDomainDelayMs: z.number().int().min(0).default(1000),
    respectRobots: z.boolean().default(true),
    /**
     * A page answering 429 or 503 goes back to the frontier until its `Retry-After` (else an exponential
     * backoff from the domain delay) and is tried up to this many times before it is recorded as such.
     */
    maxPageAttempts: z.number().int().min(1).max(10).default(3),
    /** A `Retry-After` longer than this is not waited for: the page is recorded with its status. */
    maxRetryAfterMs: z.number().int().min(0).default(10 * 60_000),
    /**
     * Refresh runs: a known page whose previous crawl stored an ETag or Last-Modified is first asked
     * with a conditional GET; a 304 records it unchanged without starting the browser (revalidate.ts).
     */
    revalidate: z.boolean().default(true),
    userAgent: z.string().min(1).default(DEFAULT_USER_AGENT),
    /** Hosts or CIDRs exempt from the SSRF guard (e.g. "127.0.0.1/32" for a local site). */
    allowPrivateNetworks: z.array(z.string()).default([]),
    /**
     * Language control: a page is harvested only when its declared language (<html lang>, xml:lang,
     * Content-Language) is the target or absent, and language ID of its text (when it has at least
     * `minTextChars` letters) does not say otherwise. Links of a page in another language are not followed.
     */
    languageControl: z.object({ enabled: z.boolean().default(true), minTextChars: z.number().int().min(0).default(200) }).strict().default({ enabled: true, minTextChars: 200 }),
    render: z
      .object({
        navigationTimeoutMs: z.number().int().min(1000).default(20_000),
        settleMs: z.number().int().min(0).default(2000),
        scrollSteps: z.number().int().min(0).max(50).default(6),
        /** Scroll every page, not only those where something could respond to scrolling (lazy loaders that poll on a timer). */
        alwaysScroll: z.boolean().default(false),
        maxPageBytes: z.number().int().min(1024).default(10 * 1024 * 1024),
        maxTimeMs: z.number().int().min(1000).default(45_000),
      })
      .strict()
      .default({ navigationTimeoutMs: 20_000, settleMs: 2000, scrollSteps: 6, alwaysScroll: false, maxPageBytes: 10 * 1024 * 1024, maxTimeMs: 45_000 }),
    /** Relaunch the worker's browser every N pages (bounds its memory). */
    recycleAfterPages: z.number().int().min(1).default(100),
    heartbeatTimeoutSeconds: z.number().int().min(5).max(3600).default(120),
  })
  .strict();
export type CrawlConfig = z.infer<typeof crawlConfigSchema>;
export type CrawlSite = z.infer<typeof crawlSiteSchema>;
