import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRun, waitRun } from '../cli/runs';
import { buildDemoSite, type DemoSite } from '../infra/sample-site/demo-site';
import { drawSceneImage } from '../infra/sample-site/images';
import { startSampleServer, type SampleServer } from '../infra/sample-site/server';
import { startWorkers, type RunningWorkers } from '../workers/run-workers';
import type { RunKind, RunSummary } from '../workflows/types';
import { HAVE_REAL_FIXTURES, REAL_FIXTURES } from './support/fixtures';
import { dbClient, spawnWorker, stopProcess, testConfig, uniqueRunId, waitFor, withCliClient, workerReady } from './support/pipeline';

let server: SampleServer;
let workers: RunningWorkers;
let site: DemoSite;
const pool = dbClient();
const LANGS = ['th', 'cs'];

beforeAll(async () => {
  server = await startSampleServer();
  site = await buildDemoSite(server, LANGS);
  workers = await startWorkers(['mella-cpu', 'mella-browser']);
});
afterAll(async () => {
  await workers?.stop();
  await server?.close();
  await pool.end();
});

const crawlConfig = (name: string, stages: string[], extra: Record<string, unknown> = {}) =>
  testConfig({
    name,
    languages: LANGS,
    stages,
    inputs: [],
    crawl: {
      sites: Object.fromEntries(LANGS.map((l) => [l, { seeds: [site.seeds[l]] }])),
      allowPrivateNetworks: ['127.0.0.1/32'],
      perDomainDelayMs: 0,
      maxDepth: 1,
      batchSize: 4,
      render: { settleMs: 500, scrollSteps: 4 },
      ...extra,
    },
  });

async function run(config: ReturnType<typeof crawlConfig>, kind: RunKind = 'manual', label = 'crawl'): Promise<RunSummary> {
  const runId = uniqueRunId(label);
  return withCliClient(async (c) => {
    await startRun(c, config, { runId, kind });
    return waitRun(c, runId);
  });
}

describe('crawl stage with a real browser', () => {
  let first: RunSummary;

  it('harvests native alts from the target-language pages, skips robots-disallowed and other-language pages, and feeds ingest and filter', async () => {
    first = await run(crawlConfig(`crawl-${process.pid}`, ['crawl', 'ingest', 'filter']));
    expect(first.status).toBe('completed');
    for (const lang of LANGS) {
      expect(first.languages[lang]!.crawl).toEqual({
        in: site.harvestedPerLanguage + 2,
        kept: site.harvestedPerLanguage,
        rejected: { declared_other_language: 1, robots_disallowed: 1 },
      });
      // 6 scenes + 5 gallery cases + the logo on each of the 8 harvested pages.
      expect(first.crawl![lang]).toMatchObject({ images: 6 + 5 + 8, handedOff: 6 + 5 + 8 });
      // The logo is one download; its other 7 records are duplicates.
      expect(first.languages[lang]!.ingest).toMatchObject({ in: 19, kept: 12, rejected: { duplicate: 7 } });
      expect(first.languages[lang]!.filter!.kept).toBe(6);
    }
    // Lazy images (every second scene page) were resolved after scrolling: the real URL, with its alt and figcaption.
    const { rows } = await pool.query<{ image_url: string; alt: string; context: string; context_source: string; natural_width: number | null }>(
      `select i.image_url, i.alt, i.context, i.context_source, i.natural_width from crawl_images i
        where i.run_id = $1 and i.lang = 'th' and i.image_url like '%/img/th/%' and i.image_url not like '%/filter/%' order by i.image_url`,
      [first.runId],
    );
    expect(rows).toHaveLength(6);
    for (const r of rows) {
      expect(r.image_url).toMatch(/\/img\/th\/[a-z-]+\.jpg$/);
      expect(r.alt).toMatch(/\p{Script=Thai}/u);
      expect(r).toMatchObject({ context: r.alt, context_source: 'figcaption' });
    }
    // Page facts reach ingest records for the filter stage.
    const rec = await pool.query<{ extra: { page_title: string; site_name: string } }>(
      `select extra from ingest_records where run_id = $1 and lang = 'cs' and source = 'crawl:browser' limit 1`,
      [first.runId],
    );
    expect(rec.rows[0]!.extra.site_name).toBe('MELLA demo cs');
  });

  it('a refresh revisits known pages, skips the unchanged ones and sends only new images downstream', async () => {
    const name = `crawl-${process.pid}`;
    const again = await run(crawlConfig(name, ['crawl', 'ingest']), 'refresh', 'refresh');
    expect(again.status).toBe('completed');
    for (const lang of LANGS) {
      expect(again.crawl![lang]).toMatchObject({ handedOff: 0, refresh: { new: 0, changed: 0, unchanged: site.harvestedPerLanguage, gone: 0 } });
      expect(again.languages[lang]!.crawl!.rejected.unchanged).toBe(site.harvestedPerLanguage);
    }
    // The sample server sends ETags and answers If-None-Match: every unchanged page was settled by a
    // conditional GET (304), without rendering it, and kept its title from the previous crawl.
    const revalidated = await pool.query<{ outcome: string; http_status: number; detail: string; title: string | null; content_sha256: string | null }>(
      `select outcome, http_status, detail, title, content_sha256 from crawl_pages where run_id = $1 and outcome = 'unchanged'`,
      [again.runId],
    );
    expect(revalidated.rows).toHaveLength(site.harvestedPerLanguage * LANGS.length);
    for (const row of revalidated.rows) {
      expect(row).toMatchObject({ http_status: 304, detail: '304 Not Modified (If-None-Match)' });
      expect(row.title).toBeTruthy();
      expect(row.content_sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    // One page changes: a new picture on the Czech gallery.
    server.set('/img/cs/new-picture.jpg', { kind: 'bytes', body: await drawSceneImage('new-picture', 7), contentType: 'image/jpeg' });
    const gallery = await (await fetch(server.url('/site/cs/gallery.html'))).text();
    server.set('/site/cs/gallery.html', {
      kind: 'bytes',
      body: Buffer.from(gallery.replace('</main>', '<img src="/img/cs/new-picture.jpg" alt="Nový obrázek pražského mostu při západu slunce"></main>')),
      contentType: 'text/html; charset=utf-8',
    });
    const third = await run(crawlConfig(name, ['crawl', 'ingest']), 'refresh', 'refresh');
    expect(third.crawl!.cs).toMatchObject({ handedOff: 1, refresh: { changed: 1, unchanged: site.harvestedPerLanguage - 1 } });
    expect(third.crawl!.th).toMatchObject({ handedOff: 0 });
    expect(third.languages.cs!.ingest).toMatchObject({ in: 1, kept: 1 });
    // The changed page failed revalidation (new ETag, 200) and was rendered; the others got 304.
    const statuses = await pool.query<{ url: string; outcome: string; http_status: number }>(
      `select url, outcome, http_status from crawl_pages where run_id = $1 and lang = 'cs' and outcome in ('harvested', 'unchanged')`,
      [third.runId],
    );
    const galleryRows = statuses.rows.filter((r) => r.url.endsWith('/site/cs/gallery.html'));
    expect(galleryRows).toEqual([expect.objectContaining({ outcome: 'harvested', http_status: 200 })]);
    expect(statuses.rows.filter((r) => r.outcome === 'unchanged').every((r) => r.http_status === 304)).toBe(true);
  });

  it('with revalidation off, a refresh renders every known page and decides by content hash', async () => {
    const name = `crawl-norevalidate-${process.pid}`;
    await run(crawlConfig(name, ['crawl'], { revalidate: false }), 'manual', 'norv');
    const again = await run(crawlConfig(name, ['crawl'], { revalidate: false }), 'refresh', 'norv-refresh');
    expect(again.crawl!.th).toMatchObject({ refresh: { new: 0, changed: 0, unchanged: site.harvestedPerLanguage, gone: 0 } });
    const { rows } = await pool.query<{ http_status: number }>(`select http_status from crawl_pages where run_id = $1 and outcome = 'unchanged'`, [again.runId]);
    expect(rows.length).toBe(site.harvestedPerLanguage * LANGS.length);
    expect(rows.every((r) => r.http_status === 200)).toBe(true);
  });

  it('survives a SIGKILLed browser worker in the middle of the crawl: every page once, none lost, the same frontier and outputs as an uninterrupted crawl', async () => {
    await workers.stop();
    let browserWorker = spawnWorker(['browser']);
    const cpu = await startWorkers(['mella-cpu']);
    try {
      await workerReady(browserWorker);
      const runId = uniqueRunId('crawl-kill');
      const config = crawlConfig(`crawl-kill-${process.pid}`, ['crawl'], { batchSize: 2, render: { settleMs: 800, scrollSteps: 4 } });
      const pageHits = () => new Map([...server.hits].filter(([p]) => p.startsWith('/site/') && p.endsWith('.html')));
      const hitsBefore = pageHits();
      await withCliClient((c) => startRun(c, config, { runId, kind: 'manual' }));
      const pagesDone = async () => Number((await pool.query('select count(*) from crawl_pages where run_id = $1', [runId])).rows[0].count);
      await waitFor(async () => (await pagesDone()) >= 3, 120_000, 'three pages of the crawl');
      await stopProcess(browserWorker, 'SIGKILL');
      expect(await pagesDone()).toBeLessThan(2 * (site.harvestedPerLanguage + 2));
      browserWorker = spawnWorker(['browser']);
      await workerReady(browserWorker);
      const summary = await withCliClient((c) => waitRun(c, runId));
      expect(summary.status).toBe('completed');
      for (const lang of LANGS) expect(summary.languages[lang]!.crawl).toMatchObject({ in: site.harvestedPerLanguage + 2, kept: site.harvestedPerLanguage });
      const dup = await pool.query(`select count(*)::int as n from crawl_frontier where run_id = $1 and status <> 'done'`, [runId]);
      expect(dup.rows[0].n).toBe(0);
      // The frontier and the outputs equal the uninterrupted first crawl's (less the picture the
      // refresh test added to the Czech gallery since).
      const pagesOf = async (id: string) =>
        (await pool.query<{ k: string }>(`select lang || ' ' || url_key || ' ' || outcome || ' ' || coalesce(reason, '') as k from crawl_pages where run_id = $1 order by 1`, [id])).rows.map((r) => r.k);
      const imagesOf = async (id: string) =>
        (await pool.query<{ k: string }>(
          `select lang || ' ' || page_key || ' ' || image_url || ' ' || coalesce(alt, '') || ' ' || coalesce(context, '') as k from crawl_images
            where run_id = $1 and image_url not like '%/img/cs/new-picture.jpg' order by 1`,
          [id],
        )).rows.map((r) => r.k);
      const frontierOf = async (id: string) =>
        (await pool.query<{ k: string }>(`select lang || ' ' || url_key || ' ' || depth as k from crawl_frontier where run_id = $1 order by 1`, [id])).rows.map((r) => r.k);
      expect(await pagesOf(runId)).toEqual(await pagesOf(first.runId));
      expect(await imagesOf(runId)).toEqual(await imagesOf(first.runId));
      expect(await frontierOf(runId)).toEqual(await frontierOf(first.runId));
      // No page fetched twice beyond the batch in flight when the worker died (2 pages a batch, both
      // languages' batches may be in flight at once).
      const twice = [...pageHits()].filter(([p, n]) => n - (hitsBefore.get(p) ?? 0) > 1).map(([p]) => p);
      expect(twice.length).toBeLessThanOrEqual(4);
      expect([...pageHits()].filter(([p, n]) => n > (hitsBefore.get(p) ?? 0)).length).toBe(LANGS.length * (site.harvestedPerLanguage + 1)); // every page but the robots-disallowed one was fetched
    } finally {
      await stopProcess(browserWorker);
      await cpu.stop();
      workers = await startWorkers(['mella-cpu', 'mella-browser']);
    }
  });
});

describe('crawl bounds and politeness', () => {
  it('honours 429 and 503 with Retry-After: the page comes back later, and after maxPageAttempts it is recorded', async () => {
    const html = (title: string, body: string) => ({
      kind: 'bytes' as const,
      body: Buffer.from(`<!doctype html><html lang="th"><head><meta charset="utf-8"><title>${title}</title></head><body>${body}</body></html>`),
      contentType: 'text/html; charset=utf-8',
    });
    server.set('/retry/index.html', html('หน้าแรก', '<a href="/retry/busy.html">ยุ่ง</a> <a href="/retry/down.html">ปิด</a>'));
    server.set('/retry/busy.html', { kind: 'flaky', times: 1, status: 429, retryAfter: '2', then: html('ตลาดน้ำ', '<img src="/img/th/night-market.jpg" alt="ตลาดน้ำยามเช้า">') });
    server.set('/retry/down.html', { kind: 'status', status: 503, headers: { 'retry-after': '0' } });
    const config = testConfig({
      name: `crawl-retry-${process.pid}`, languages: ['th'], stages: ['crawl'], inputs: [],
      crawl: { sites: { th: { seeds: [server.url('/retry/index.html')] } }, allowPrivateNetworks: ['127.0.0.1/32'], perDomainDelayMs: 0, maxDepth: 1, batchSize: 2, render: { settleMs: 300, scrollSteps: 0 } },
    });
    const summary = await run(config, 'manual', 'retry');
    expect(summary.languages.th!.crawl).toEqual({ in: 3, kept: 2, rejected: { http_503: 1 } });
    const busy = server.hitTimes.get('/retry/busy.html')!;
    expect(busy).toHaveLength(2);
    expect(busy[1]! - busy[0]!).toBeGreaterThanOrEqual(2000); // Retry-After: 2 was honoured
    expect(server.hits.get('/retry/down.html')).toBe(3); // crawl.maxPageAttempts (3)
    const { rows } = await pool.query<{ url: string; attempts: number; outcome: string; detail: string | null }>(
      `select f.url, f.attempts, p.outcome, p.detail from crawl_frontier f join crawl_pages p using (run_id, lang, url_key) where f.run_id = $1 order by f.url`,
      [summary.runId],
    );
    expect(rows.map((r) => [r.url.replace(server.baseUrl, ''), r.attempts, r.outcome])).toEqual([
      ['/retry/busy.html', 2, 'harvested'],
      ['/retry/down.html', 3, 'rejected'],
      ['/retry/index.html', 1, 'harvested'],
    ]);
    expect(rows[1]!.detail).toMatch(/503.*\(after 3 attempts\)/);
  });

  it('stops an infinite link space (a calendar) at the page budget and keeps robots.txt crawl-delay between pages', async () => {
    const cal = await startSampleServer();
    try {
      cal.set('/robots.txt', { kind: 'bytes', body: Buffer.from('User-agent: *\nCrawl-delay: 1\n'), contentType: 'text/plain' });
      const text = 'Kalendář akcí v Praze: koncerty, výstavy a divadla na každý den v měsíci, s programem a vstupenkami. '.repeat(3);
      // Every day links to the next day and the next month: an unbounded space of pages.
      for (let day = 0; day < 200; day++) {
        cal.set(`/cal/${day}.html`, {
          kind: 'bytes',
          body: Buffer.from(`<!doctype html><html lang="cs"><head><title>Den ${day}</title></head><body><p>${text}</p><a href="${day + 1}.html">další den</a> <a href="${day + 30}.html">další měsíc</a></body></html>`),
          contentType: 'text/html; charset=utf-8',
        });
      }
      const config = testConfig({
        name: `cal-${process.pid}`,
        languages: ['cs'],
        stages: ['crawl'],
        inputs: [],
        crawl: {
          sites: { cs: { seeds: [cal.url('/cal/0.html')] } },
          allowPrivateNetworks: ['127.0.0.1/32'],
          perDomainDelayMs: 0,
          maxDepth: 20,
          maxPagesPerLanguage: 6,
          batchSize: 2,
          render: { settleMs: 200, scrollSteps: 0 },
        },
      });
      const summary = await run(config, 'manual', 'cal');
      expect(summary.status).toBe('completed');
      expect(summary.languages.cs!.crawl).toEqual({ in: 6, kept: 6, rejected: {} });
      const { rows } = await pool.query<{ t: Date }>('select crawled_at as t from crawl_pages where run_id = $1 order by crawled_at', [summary.runId]);
      // One domain, Crawl-delay: 1 -> visits start at least a second apart. Pages are recorded when their
      // render ends, so the span of the records is at least (n - 1) s less one render's variation.
      const span = rows[rows.length - 1]!.t.getTime() - rows[0]!.t.getTime();
      expect(span).toBeGreaterThanOrEqual((rows.length - 1) * 1000 - 1000);
      const pending = await pool.query(`select count(*)::int as n from crawl_frontier where run_id = $1 and status = 'pending'`, [summary.runId]);
      expect(pending.rows[0].n).toBeGreaterThan(0); // the space went on; the budget stopped the crawl
    } finally {
      await cal.close();
    }
  });
});

describe.skipIf(!HAVE_REAL_FIXTURES)('crawl stage from WARC archives', () => {
  it('reads pages and images from real WARC files, counts what it skipped, and hands the images to ingest', async () => {
    const warc = (f: string) => path.join(REAL_FIXTURES, 'warc', f);
    const config = testConfig({
      name: `warc-${process.pid}`,
      languages: ['zh'],
      stages: ['crawl'],
      inputs: [],
      crawl: { sites: { zh: { warc: [warc('CmonCrawl__mini.warc.gz'), warc('warcio__example-trunc.warc')] } }, languageControl: { enabled: false } },
    });
    const summary = await run(config, 'manual', 'warc');
    expect(summary.status).toBe('completed');
    expect(summary.languages.zh!.crawl).toMatchObject({ in: 1, kept: 1 });
    expect(summary.crawl!.zh).toMatchObject({ images: 9, handedOff: 9, warcSkipped: { not_response: 5, truncated_body: 1 } });
    const { rows } = await pool.query<{ text: string | null; page_url: string; source: string }>(
      `select text, page_url, source from ingest_records where run_id = $1 order by seq`,
      [summary.runId],
    );
    expect(rows).toHaveLength(9);
    expect(rows.every((r) => r.source.startsWith('crawl:warc:') && r.page_url.startsWith('http'))).toBe(true);
    expect(rows.some((r) => r.text && /\p{Script=Han}/u.test(r.text))).toBe(true);
  });
});
