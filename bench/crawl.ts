/**
 * bench:crawl: a generated 500-page site on 127.0.0.1 (bench/crawl-site.ts: 10 figures a page with alt
 * and figcaption, every image a URL of its own serving one of 8 small JPEGs, links between pages), in
 * one run:
 *   - ours: the crawl stage's browser path, `PageRenderer.render` (activities/crawl/browser.ts: a fresh
 *     context and guarded proxy per page, load, scroll, settle, then `extractImages` of the rendered
 *     DOM) with the options the stage uses (crawl config defaults, allow-listed 127.0.0.1), N pages in
 *     flight;
 *   - crawlee: `PlaywrightCrawler` (npm @crawlee/playwright) on the same Chromium binary with the same
 *     switches, min = max concurrency N, no retries, no session pool, no fingerprints, in-memory
 *     storage, the same URL list (no link enqueuing), and in its requestHandler `page.content()` run
 *     through our `extractImages`.
 * Each measurement is a fresh child process (after one untimed warm-up child), the order alternating
 * round by round. A child samples the RSS and PSS of its whole process tree (Node + every Chromium
 * process) every 200 ms and at 100/250/500 pages. Both sides must extract all pages x 10 images.
 * For context it also runs, on the first BENCH_EXTRA_PAGES pages: ours, ours without scrolling
 * (scrollSteps 0), crawlee, crawlee doing our page work (the same scroll expression, then 150 ms of
 * network quiet), and crawlee with a fresh context per page (`useIncognitoPages`); the RESULT uses the
 * two main runs.
 *   - WARC: `readWarcHtml` + `extractImages` over a WARC.gz of 5,000 synthetic HTML responses (gzip per
 *     record, warcio's serializer), in a child process: records/s and peak RSS.
 * Last line: RESULT crawl ratio=<our pages/s / crawlee's pages/s> goal=>=1.0
 *
 * Env: BENCH_PAGES (default 500), BENCH_CONCURRENCY (2), BENCH_ROUNDS (1), BENCH_WARC_RECORDS (5000),
 * BENCH_EXTRAS (0: leave out the two context runs), BENCH_EXTRA_PAGES (100: pages of each context run,
 * which also reruns ours and crawlee on that many pages so they compare), BENCH_KEEP (any value: keep the work folder).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { resolveChromiumExecutable } from '../activities/crawl/chromium-process';
import { machineJiffies } from './machine-cpu';
import { tsEntryArgs } from '../infra/node-process';
import { PROJECT_ROOT } from '../infra/paths';
import { startBenchSite, writeSyntheticWarc, IMAGES_PER_PAGE } from './crawl-site';

const PAGES = Number(process.env.BENCH_PAGES ?? 500);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 2);
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 1));
const WARC_RECORDS = Number(process.env.BENCH_WARC_RECORDS ?? 5000);
const EXTRAS = process.env.BENCH_EXTRAS !== '0';
const EXTRA_PAGES = Math.min(PAGES, Number(process.env.BENCH_EXTRA_PAGES ?? 100));
const MARKS = [100, 250, 500].filter((m) => m < PAGES).concat(PAGES);

export type Mode = 'ours' | 'ours-noscroll' | 'crawlee' | 'crawlee-scroll' | 'crawlee-incognito' | 'warc';

export interface ChildSpec {
  mode: Mode;
  urls: string[];
  concurrency: number;
  marks: number[];
  warcFile?: string;
  storageDir: string;
  resultFile: string;
}

export interface Mark {
  pages: number;
  rss: number;
  pss: number;
  /** Peaks over the pages since the previous mark. */
  peakRss: number;
  peakPss: number;
}

export interface ChildResult {
  mode: Mode;
  seconds: number;
  pages: number;
  ok: number;
  failed: Record<string, number>;
  images: number;
  withAlt: number;
  withFigcaption: number;
  links: number;
  peakRss: number;
  peakPss: number;
  /** This Node process alone (VmHWM). */
  nodePeakRss: number;
  marks: Mark[];
  /**
   * CPU seconds of the child and the descendants it reaped (user + system). Chromium's renderers are
   * forked by its zygote and never reach these counters: `machineCpuSeconds` is the whole cost.
   */
  cpuSeconds: number;
  /** Busy CPU seconds of the whole machine while the child ran (set by the parent; the bench site included). */
  machineCpuSeconds?: number;
  /** Their share of all cores' time. */
  machineBusy?: number;
  /** CPU seconds of the child's Node process alone (all its threads), its main thread's event-loop utilization, and event-loop delay. */
  nodeCpuSeconds: number;
  eventLoopUtilization: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  /** Chromium launches (first + recycles) where known. */
  launches: number | null;
  /** Per-page render phases (ours), mean ms. */
  phases?: Record<string, number>;
  records?: number;
  bytes?: number;
}

function runChild(spec: ChildSpec): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const specFile = `${spec.resultFile}.spec.json`;
    fs.writeFileSync(specFile, JSON.stringify(spec));
    const cpu0 = machineJiffies();
    const p = spawn(process.execPath, tsEntryArgs('bench/crawl-child.ts', [specFile]), { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let tail = '';
    const keep = (d: Buffer) => (tail = (tail + d).slice(-4000));
    p.stdout!.on('data', keep);
    p.stderr!.on('data', keep);
    p.once('exit', (code) => {
      if (code !== 0 || !fs.existsSync(spec.resultFile)) return reject(new Error(`crawl child (${spec.mode}) exited ${code}: ${tail}`));
      const cpu1 = machineJiffies();
      const r = JSON.parse(fs.readFileSync(spec.resultFile, 'utf8')) as ChildResult;
      // the child's whole run, start-up included (its result's seconds time the crawl alone)
      r.machineCpuSeconds = (cpu1.busy - cpu0.busy) / 100;
      r.machineBusy = cpu1.total > cpu0.total ? (cpu1.busy - cpu0.busy) / (cpu1.total - cpu0.total) : 0;
      resolve(r);
    });
  });
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
const log = (m: string) => console.log(m);

function median(xs: ChildResult[]): ChildResult {
  return [...xs].sort((a, b) => a.seconds - b.seconds)[Math.floor(xs.length / 2)]!;
}

function describe(label: string, r: ChildResult) {
  const rate = r.pages / r.seconds;
  log(
    `  ${label.padEnd(40)} ${r.seconds.toFixed(1).padStart(6)} s  ${rate.toFixed(2).padStart(6)} pages/s  ok ${r.ok}/${r.pages}  images ${r.images} (alt ${r.withAlt}, figcaption ${r.withFigcaption})  ` +
      `peak RSS ${mib(r.peakRss)} (PSS ${mib(r.peakPss)}; Node alone ${mib(r.nodePeakRss)})${r.launches !== null ? `  launches ${r.launches}` : ''}`,
  );
  log(`    at pages ${r.marks.map((m) => `${m.pages}: RSS ${mib(m.rss)} / PSS ${mib(m.pss)} (window peak ${mib(m.peakRss)} / ${mib(m.peakPss)})`).join('; ')}`);
  if (r.phases) log(`    mean per page (ms): ${Object.entries(r.phases).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ')}`);
  if (r.machineCpuSeconds !== undefined) {
    log(`    machine CPU while the child ran (start-up and the bench site included): ${r.machineCpuSeconds.toFixed(1)} s = ${(r.machineCpuSeconds / r.pages).toFixed(2)} s a page, ${(100 * (r.machineBusy ?? 0)).toFixed(0)}% of ${os.cpus().length} cores`);
  }
  log(`    CPU seconds reaped (Node + the Chromium processes it reaped, renderers not counted): ${r.cpuSeconds.toFixed(1)}; Node alone ${r.nodeCpuSeconds.toFixed(1)} = ${(r.nodeCpuSeconds / r.pages * 1000).toFixed(0)} ms a page, its event loop busy ${(r.eventLoopUtilization * 100).toFixed(0)}%, loop delay p50 ${r.eventLoopDelayMs.p50.toFixed(0)} / p99 ${r.eventLoopDelayMs.p99.toFixed(0)} / max ${r.eventLoopDelayMs.max.toFixed(0)} ms`);
  if (Object.keys(r.failed).length) log(`    failures: ${JSON.stringify(r.failed)}`);
}

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-bench-crawl-'));
  const site = await startBenchSite(PAGES);
  try {
    log(`bench:crawl on ${os.cpus().length} cores; ${PAGES} pages x ${IMAGES_PER_PAGE} images on ${site.origin}; ${CONCURRENCY} pages in flight; ${ROUNDS} round(s); Chromium ${resolveChromiumExecutable().path}`);
    let n = 0;
    const spec = (mode: Mode, urls = site.urls): ChildSpec => {
      n++;
      return { mode, urls, concurrency: CONCURRENCY, marks: MARKS.filter((m) => m <= urls.length), storageDir: path.join(work, `storage-${n}`), resultFile: path.join(work, `result-${n}.json`) };
    };
    const check = (r: ChildResult) => {
      if (r.ok !== r.pages || r.images !== r.pages * IMAGES_PER_PAGE) {
        throw new Error(`${r.mode}: ${r.ok} of ${r.pages} pages ok, ${r.images} images (want ${r.pages * IMAGES_PER_PAGE}): ${JSON.stringify(r.failed)}`);
      }
      return r;
    };
    // Warm-up (page cache for the Chromium binary, tsx's compile cache), not timed.
    await runChild(spec('ours', site.urls.slice(0, 10)));
    await runChild(spec('crawlee', site.urls.slice(0, 10)));

    const ours: ChildResult[] = [];
    const crawlee: ChildResult[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order: Mode[] = round % 2 === 0 ? ['ours', 'crawlee'] : ['crawlee', 'ours'];
      for (const mode of order) {
        const r = check(await runChild(spec(mode)));
        (mode === 'ours' ? ours : crawlee).push(r);
        log(`round ${round + 1}/${ROUNDS} ${mode}: ${r.seconds.toFixed(1)} s = ${(r.pages / r.seconds).toFixed(2)} pages/s, peak RSS ${mib(r.peakRss)}`);
      }
    }
    const extras: Array<[string, ChildResult]> = [];
    if (EXTRAS) {
      const few = site.urls.slice(0, EXTRA_PAGES);
      extras.push([`ours, ${EXTRA_PAGES} pages`, check(await runChild(spec('ours', few)))]);
      extras.push([`ours, scrollSteps 0, ${EXTRA_PAGES} pages`, check(await runChild(spec('ours-noscroll', few)))]);
      extras.push([`crawlee, ${EXTRA_PAGES} pages`, check(await runChild(spec('crawlee', few)))]);
      extras.push([`crawlee + our scroll + quiet, ${EXTRA_PAGES} p.`, check(await runChild(spec('crawlee-scroll', few)))]);
      extras.push([`crawlee, incognito pages, ${EXTRA_PAGES} p.`, check(await runChild(spec('crawlee-incognito', few)))]);
    }

    const o = median(ours);
    const c = median(crawlee);
    log(`\nbrowser crawl, ${PAGES} pages, ${CONCURRENCY} in flight (median of ${ROUNDS}; RSS sums the process tree, PSS splits shared pages):`);
    describe('ours (PageRenderer, stage options)', o);
    describe('crawlee PlaywrightCrawler', c);
    if (extras.length) log(`context runs, ${EXTRA_PAGES} pages each (launch included, so slower per page than the ${PAGES}-page runs):`);
    for (const [label, r] of extras) describe(label, r);
    log(`  pages served: ${site.hits.pages}, images served: ${site.hits.images}, other: ${site.hits.other}`);

    const flat = (r: ChildResult) => {
      const first = r.marks[0]!;
      const last = r.marks[r.marks.length - 1]!;
      return `${mib(first.peakPss)} -> ${mib(last.peakPss)} window-peak PSS (x${(last.peakPss / first.peakPss).toFixed(2)})`;
    };
    log(`memory with pages (first window vs last): ours ${flat(o)}; crawlee ${flat(c)}`);

    // WARC
    const warcFile = path.join(work, 'bench.warc.gz');
    const t0 = performance.now();
    const bytes = await writeSyntheticWarc(warcFile, WARC_RECORDS);
    log(`\nWARC: ${WARC_RECORDS} HTML responses + warcinfo, gzip per record, ${mib(bytes)} (written in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    const w = await runChild({ ...spec('warc', []), warcFile });
    if (w.ok !== WARC_RECORDS || w.images !== WARC_RECORDS * IMAGES_PER_PAGE) throw new Error(`warc: ${w.ok} pages, ${w.images} images`);
    log(`  readWarcHtml + extractImages: ${w.records} records (${w.ok} pages, ${w.images} images) in ${w.seconds.toFixed(2)} s = ${(w.records! / w.seconds).toFixed(0)} records/s, ${(w.ok / w.seconds).toFixed(0)} pages/s; peak RSS ${mib(w.nodePeakRss)}`);

    const ratio = o.pages / o.seconds / (c.pages / c.seconds);
    log(`\nour pages/s / crawlee's pages/s = ${ratio.toFixed(3)} (goal >= 1.0)`);
    if (ratio < 1) {
      const ph = o.phases ?? {};
      log(
        `ours is slower: the machine's CPU was ${(100 * (o.machineBusy ?? 0)).toFixed(0)}% busy during ours at ${((o.machineCpuSeconds ?? 0) / o.pages).toFixed(2)} CPU s a page, ${(100 * (c.machineBusy ?? 0)).toFixed(0)}% during crawlee at ${((c.machineCpuSeconds ?? 0) / c.pages).toFixed(2)}. ` +
          `Each of our pages takes ${((ph.total ?? 0) / 1000).toFixed(2)} s: setup ${(ph.setup ?? 0).toFixed(0)} ms (a spare context prepared ahead), navigation ${(ph.navigation ?? 0).toFixed(0)}, load ${(ph.load ?? 0).toFixed(0)}, ` +
          `scroll ${(ph.scroll ?? 0).toFixed(0)} and settle ${(ph.settle ?? 0).toFixed(0)} (a page is scrolled only when something on it could respond, and waits for a quiet window only when it could still change), extract ${(ph.extract ?? 0).toFixed(0)} (the settle probe's look, the load event awaited in the page); ` +
          'in a fresh context behind its own guarded proxy, where crawlee returns at the load event in one shared context. ' +
          (extras.length ? 'The context runs above show each part of that.' : 'BENCH_EXTRAS (default on) runs the context runs that show each part of that.'),
      );
    }
    if (process.env.BENCH_KEEP) log(`work folder kept: ${work}`);
    console.log(`RESULT crawl ratio=${ratio.toFixed(3)} goal=>=1.0`);
  } finally {
    await site.close();
    if (!process.env.BENCH_KEEP) fs.rmSync(work, { recursive: true, force: true });
  }
}

await main();
