/**
 * One measurement of bench:crawl (bench/crawl.ts), in a fresh process: `tsx bench/crawl-child.ts <spec.json>`.
 * Writes a ChildResult to `spec.resultFile`. Modes:
 *   - ours / ours-noscroll: `PageRenderer.render` with the crawl stage's options (scrollSteps 0 for the second);
 *   - crawlee / crawlee-scroll: PlaywrightCrawler, `page.content()` through `extractImages` (the second
 *     first runs our scroll expression and waits for 150 ms of network quiet, as ours does);
 *   - crawlee-incognito: crawlee with `useIncognitoPages` (a fresh context per page, as ours);
 *   - warc: `readWarcHtml` + `extractImages` over `spec.warcFile`.
 */
import fs from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { PageRenderer, chromiumArgs, type RenderResult } from '../activities/crawl/browser';
import { resolveChromiumExecutable } from '../activities/crawl/chromium-process';
import { crawlConfigSchema } from '../activities/crawl/config';
import { scrollExpression } from '../activities/crawl/dom-facts';
import { extractImages, type PageExtraction } from '../activities/crawl/extract-images';
import { readWarcHtml } from '../activities/crawl/warc';
import type { ChildResult, ChildSpec, Mark } from './crawl';

const spec = JSON.parse(fs.readFileSync(process.argv[2]!, 'utf8')) as ChildSpec;

function nodePeakRss(): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]) * 1024;
}

/**
 * RSS and PSS of this process and all its descendants (Node + every Chromium process), sampled every
 * 200 ms on a worker thread (bench/crawl-memory.ts), so that the /proc reads never block the event loop
 * the measured crawler runs on.
 */
class TreeMemory {
  // A worker does not take tsx's loader from `--import` on Node 20: it loads the TypeScript file through tsx's API.
  private readonly worker = new Worker(
    new URL(`data:text/javascript,${encodeURIComponent(`import { tsImport } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; await tsImport(${JSON.stringify(new URL('./crawl-memory.ts', import.meta.url).href)}, import.meta.url);`)}`),
    { workerData: { pid: process.pid } },
  );
  mark(pages: number) {
    this.worker.postMessage({ mark: pages });
  }
  sample() {
    this.worker.postMessage({ sample: true });
  }
  stop(): Promise<{ peakRss: number; peakPss: number; marks: Mark[] }> {
    return new Promise((resolve, reject) => {
      this.worker.once('message', resolve);
      this.worker.once('error', reject);
      this.worker.postMessage({ stop: true });
    });
  }
}

const totals = { pages: 0, ok: 0, images: 0, withAlt: 0, withFigcaption: 0, links: 0, failed: {} as Record<string, number> };
function count(x: PageExtraction) {
  totals.ok++;
  totals.images += x.images.length;
  for (const im of x.images) {
    if (im.alt && im.alt.trim()) totals.withAlt++;
    if (im.context?.source === 'figcaption') totals.withFigcaption++;
  }
  totals.links += x.links.length;
}
function fail(reason: string) {
  totals.failed[reason] = (totals.failed[reason] ?? 0) + 1;
}

async function ours(mem: TreeMemory, done: () => void): Promise<Pick<ChildResult, 'launches' | 'phases'>> {
  // The options the crawl stage uses (crawl config defaults), with the local site allow-listed.
  const c = crawlConfigSchema.parse({ allowPrivateNetworks: ['127.0.0.1/32'] });
  const render = spec.mode === 'ours-noscroll' ? { ...c.render, scrollSteps: 0 } : c.render;
  const renderer = await PageRenderer.launch({ recycleAfterPages: c.recycleAfterPages, userAgent: c.userAgent, allowPrivateNetworks: c.allowPrivateNetworks });
  const phases: Record<string, number> = { setup: 0, navigation: 0, load: 0, scroll: 0, settle: 0, extract: 0, total: 0 };
  let next = 0;
  const worker = async () => {
    while (next < spec.urls.length) {
      const url = spec.urls[next++]!;
      const r: RenderResult = await renderer.render(url, render);
      if (r.ok) {
        count(r.extraction);
        const t = r.timings;
        phases.setup! += t.setupMs;
        phases.navigation! += t.navigationMs;
        phases.load! += t.loadMs;
        phases.scroll! += t.scrollMs;
        phases.settle! += t.settleMs;
        phases.extract! += t.extractMs;
        phases.total! += t.totalMs;
      } else fail(r.reason);
      done();
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, worker));
  mem.sample();
  const launches = renderer.stats().launches;
  await renderer.close();
  for (const k of Object.keys(phases)) phases[k]! /= Math.max(1, totals.ok);
  return { launches, phases };
}

// Crawlee is loaded before the clock starts, and only in its own runs (ours's Node process never holds it).
process.env.CRAWLEE_STORAGE_DIR = spec.storageDir;
const crawleeModules = spec.mode.startsWith('crawlee') ? { ...(await import('@crawlee/playwright')), chromium: (await import('playwright')).chromium } : null;

async function crawlee(done: () => void): Promise<Pick<ChildResult, 'launches'>> {
  const { PlaywrightCrawler, Configuration, log, chromium } = crawleeModules!;
  log.setLevel(log.LEVELS.WARNING);
  const config = new Configuration({ persistStorage: false, purgeOnStart: true, storageClientOptions: { localDataDirectory: spec.storageDir, persistStorage: false } });
  const scroll = spec.mode === 'crawlee-scroll';
  const c = crawlConfigSchema.parse({});
  const executable = resolveChromiumExecutable();
  let launches = 0;
  const crawler = new PlaywrightCrawler(
    {
      launchContext: {
        launcher: chromium,
        useIncognitoPages: spec.mode === 'crawlee-incognito',
        // the same binary and switches as ours (resolveChromiumExecutable looks through Debian's launcher script)
        launchOptions: { executablePath: executable.path, headless: true, args: chromiumArgs(executable) },
      },
      minConcurrency: spec.concurrency,
      maxConcurrency: spec.concurrency,
      maxRequestRetries: 0,
      useSessionPool: false,
      persistCookiesPerSession: false,
      browserPoolOptions: { useFingerprints: false, postLaunchHooks: [() => void launches++] },
      preNavigationHooks: scroll
        ? [
            ({ page }) => {
              // network accounting for the quiet wait below, as ours does with DevTools events
              const state = { inflight: 0, last: Date.now() };
              (page as unknown as { __bench: typeof state }).__bench = state;
              page.on('request', () => ((state.inflight++), (state.last = Date.now())));
              page.on('requestfinished', () => ((state.inflight--), (state.last = Date.now())));
              page.on('requestfailed', () => ((state.inflight--), (state.last = Date.now())));
            },
          ]
        : [],
      requestHandler: async ({ page }) => {
        if (scroll) {
          // as ours: scroll (no dwell at the last stop), then 150 ms with nothing loading since the
          // later of the last network event and the end of the scroll
          await page.evaluate(scrollExpression(c.render.scrollSteps, 120, { dwellAtLastStop: false })).catch(() => undefined);
          const scrolled = Date.now();
          const state = (page as unknown as { __bench: { inflight: number; last: number } }).__bench;
          const end = Date.now() + c.render.settleMs;
          while (Date.now() < end && !(state.inflight <= 0 && Date.now() - Math.max(state.last, scrolled) >= 150)) await new Promise((r) => setTimeout(r, 10));
        }
        const html = await page.content();
        count(extractImages(html, page.url()));
        done();
      },
      failedRequestHandler: (_ctx, err) => {
        fail(`crawlee: ${err.message.split('\n')[0]!.slice(0, 80)}`);
        done();
      },
    },
    config,
  );
  await crawler.run(spec.urls);
  await crawler.teardown();
  return { launches };
}

async function warc(): Promise<Pick<ChildResult, 'records' | 'launches'>> {
  const stream = readWarcHtml(spec.warcFile!);
  for await (const page of stream) {
    totals.pages++;
    count(extractImages(page.html, page.targetUri, { httpContentLanguage: page.contentLanguage }));
  }
  return { records: stream.stats.records, launches: null };
}

const started = performance.now();
const cpu0 = process.cpuUsage();
const elu0 = performance.eventLoopUtilization();
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
loopDelay.enable();
const mem = new TreeMemory();
let extra: Partial<ChildResult>;
const marks = new Set(spec.marks);
const done = () => {
  totals.pages++;
  if (marks.has(totals.pages)) mem.mark(totals.pages);
};
if (spec.mode === 'warc') extra = await warc();
else if (spec.mode === 'ours' || spec.mode === 'ours-noscroll') extra = await ours(mem, done);
else extra = await crawlee(done);
const seconds = (performance.now() - started) / 1000;
const memory = await mem.stop();
loopDelay.disable();
const nodeCpu = process.cpuUsage(cpu0);
// own + reaped children's CPU (Chromium's processes are all closed and reaped by now)
const stat = fs.readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
const cpuSeconds = (Number(stat[11]) + Number(stat[12]) + Number(stat[13]) + Number(stat[14])) / 100;
const result: ChildResult = {
  mode: spec.mode,
  seconds,
  pages: totals.pages,
  ok: totals.ok,
  failed: totals.failed,
  images: totals.images,
  withAlt: totals.withAlt,
  withFigcaption: totals.withFigcaption,
  links: totals.links,
  peakRss: memory.peakRss,
  peakPss: memory.peakPss,
  nodePeakRss: nodePeakRss(),
  cpuSeconds,
  marks: memory.marks,
  nodeCpuSeconds: (nodeCpu.user + nodeCpu.system) / 1e6,
  eventLoopUtilization: performance.eventLoopUtilization(elu0).utilization,
  eventLoopDelayMs: { p50: loopDelay.percentile(50) / 1e6, p99: loopDelay.percentile(99) / 1e6, max: loopDelay.max / 1e6 },
  launches: extra.launches ?? null,
  ...(extra.phases ? { phases: extra.phases } : {}),
  ...(extra.records !== undefined ? { records: extra.records } : {}),
};
fs.writeFileSync(spec.resultFile, JSON.stringify(result));
process.exit(0);
