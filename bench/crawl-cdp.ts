/**
 * A context run of bench:crawl, not the crawl stage: our page work driven through one DevTools session
 * per page of our own, with no Playwright page on it. It measures how much of a page's cost is
 * Playwright's page driver (the DevTools session Playwright opens on every page, with its Network,
 * Runtime and Page domains, its utility world and bindings, and the Node side that dispatches it all).
 *
 * The same work as `PageRenderer.render` on the bench's pages: a fresh browser context per page behind
 * its own guard proxy (guard-proxy.ts, one origin pool), downloads refused, the scroll-listener init
 * script and the service-worker block, viewport and user agent, the DevTools byte accounting
 * (`Network.enable`, `dataReceived`) and media refusal (`Network.setBlockedURLs`), navigation to
 * DOMContentLoaded, the settle probe (dom-facts.ts, which waits for the load event in the page and reads
 * the facts of a static page in the same call), `extractImages` and `keyDomFacts`; contexts prepared
 * ahead (two spares), disposed after the page; a new browser every 100 pages. Chromium is started with
 * exactly the command line playwright-core gives PageRenderer's browser (read from /proc), over
 * `--remote-debugging-pipe`.
 *
 * Left out, so its figure is an upper bound for a driver of our own: dialogs, downloads, crashes,
 * popups, timeouts, failed navigations, HTTP errors and script navigations are not handled, and there is
 * no quiet window: a bench page that the probe does not read at once fails the run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { PageRenderer, MEDIA_URL_PATTERNS } from '../activities/crawl/browser';
import { keyDomFacts, settleProbeExpression, SCROLL_LISTENERS_INIT_SCRIPT, type SettleProbe } from '../activities/crawl/dom-facts';
import { extractImages, type PageExtraction } from '../activities/crawl/extract-images';
import { GuardProxy, originAgent } from '../activities/crawl/guard-proxy';
import { AddressGuard } from '../activities/shared/address-guard';

type Handler = (method: string, params: Record<string, unknown>) => void;
/** A response (`id`) or an event (`method`, for `sessionId`). */
type Message = { id?: number; result?: unknown; error?: { message: string }; method?: string; params?: Record<string, unknown>; sessionId?: string };

/** The DevTools protocol over Chromium's pipe (fd 3 in, fd 4 out; messages end with NUL). */
class DevToolsPipe {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private chunks: Buffer[] = [];
  /** Event handlers by session id. */
  readonly sessions = new Map<string, Handler>();
  private gone: Error | null = null;

  constructor(
    private readonly out: Writable,
    input: Readable,
  ) {
    input.on('data', (d: Buffer) => {
      let start = 0;
      for (let i = d.indexOf(0); i >= 0; i = d.indexOf(0, start)) {
        this.chunks.push(d.subarray(start, i));
        const text = Buffer.concat(this.chunks).toString('utf8');
        this.chunks = [];
        start = i + 1;
        this.dispatch(JSON.parse(text) as Message);
      }
      if (start < d.length) this.chunks.push(d.subarray(start));
    });
    input.on('close', () => this.fail(new Error('the browser closed its DevTools pipe')));
    out.on('error', (err: Error) => this.fail(err));
  }

  private dispatch(m: Message) {
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error) p?.reject(new Error(m.error.message));
      else p?.resolve(m.result);
      return;
    }
    if (m.method) this.sessions.get(m.sessionId ?? '')?.(m.method, m.params ?? {});
  }

  private fail(err: Error) {
    this.gone ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  send<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<T> {
    if (this.gone) return Promise.reject(this.gone);
    const id = ++this.nextId;
    this.out.write(`${JSON.stringify(sessionId ? { id, method, params, sessionId } : { id, method, params })}\0`);
    return new Promise<T>((resolve, reject) => this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject }));
  }
}

/** The command line playwright-core starts PageRenderer's Chromium with (binary first), without its profile folder and marker. */
export async function pageRendererCommandLine(): Promise<string[]> {
  const renderer = await PageRenderer.launch();
  try {
    const pid = renderer.browserPid();
    if (pid === null) throw new Error('cannot find the browser process of PageRenderer');
    return fs
      .readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .filter((a) => a !== '' && !a.startsWith('--user-data-dir=') && !a.startsWith('--mella-renderer='));
  } finally {
    await renderer.close();
  }
}

interface Browser {
  process: ChildProcess;
  pipe: DevToolsPipe;
  profile: string;
  /** Pages of this browser not finished yet. */
  open: number;
  spares: Array<Promise<PreparedPage>>;
  /** Set by the first `closeBrowser`. */
  closed?: Promise<void>;
}

interface PreparedPage {
  proxy: GuardProxy;
  contextId: string;
  sessionId: string;
  listeners: Set<Handler>;
}

const SERVICE_WORKER_BLOCK = 'if (self.ServiceWorkerContainer) ServiceWorkerContainer.prototype.register = async () => {};';

async function launch(commandLine: string[]): Promise<Browser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-bench-cdp-'));
  const [binary, ...args] = commandLine;
  const child = spawn(binary!, [...args, `--user-data-dir=${profile}`], { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'] });
  const pipe = new DevToolsPipe(child.stdio[3] as Writable, child.stdio[4] as Readable);
  await pipe.send('Browser.getVersion');
  return { process: child, pipe, profile, open: 0, spares: [] };
}

function closeBrowser(b: Browser): Promise<void> {
  b.closed ??= closeOnce(b);
  return b.closed;
}

async function closeOnce(b: Browser): Promise<void> {
  // spares nobody took: their contexts go with the browser, their proxies are closed here
  for (const spare of b.spares.splice(0)) await spare.then((page) => page.proxy.close(), () => undefined);
  await Promise.race([b.pipe.send('Browser.close').catch(() => undefined), new Promise((r) => setTimeout(r, 5_000))]);
  b.process.kill('SIGKILL');
  fs.rmSync(b.profile, { recursive: true, force: true });
}

/**
 * Renders `urls`, `concurrency` at a time, in browsers started with `commandLine`
 * (`pageRendererCommandLine()`), and calls `onPage` with each page's extraction. Throws when a page
 * fails (the bench's pages never should).
 */
export async function crawlWithOwnDriver(
  commandLine: string[],
  urls: string[],
  concurrency: number,
  options: { userAgent: string; allowPrivateNetworks: string[]; maxPageBytes: number; loadWaitMs: number; pagesPerBrowser: number },
  onPage: (x: PageExtraction) => void,
): Promise<{ launches: number }> {
  const guard = new AddressGuard(options.allowPrivateNetworks);
  const origins = originAgent();
  let launches = 0;
  const browsers = new Map<number, Promise<Browser>>();
  const browserFor = (k: number) => {
    let b = browsers.get(k);
    if (!b) {
      b = launch(commandLine);
      launches++;
      browsers.set(k, b);
    }
    return b;
  };

  const prepare = async (b: Browser): Promise<PreparedPage> => {
    const proxy = await GuardProxy.start(guard, { agent: origins });
    const { browserContextId: contextId } = await b.pipe.send<{ browserContextId: string }>('Target.createBrowserContext', { disposeOnDetach: true, proxyServer: proxy.url, proxyBypassList: '<-loopback>' });
    const [{ targetId }] = await Promise.all([
      b.pipe.send<{ targetId: string }>('Target.createTarget', { url: 'about:blank', browserContextId: contextId }),
      b.pipe.send('Browser.setDownloadBehavior', { behavior: 'deny', browserContextId: contextId }),
    ]);
    const { sessionId } = await b.pipe.send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true });
    const listeners = new Set<Handler>();
    b.pipe.sessions.set(sessionId, (method, params) => {
      for (const fn of listeners) fn(method, params);
    });
    await Promise.all([
      b.pipe.send('Page.enable', {}, sessionId),
      b.pipe.send('Network.enable', {}, sessionId),
      b.pipe.send('Network.setBlockedURLs', { urls: MEDIA_URL_PATTERNS }, sessionId),
      b.pipe.send('Page.addScriptToEvaluateOnNewDocument', { source: SCROLL_LISTENERS_INIT_SCRIPT }, sessionId),
      b.pipe.send('Page.addScriptToEvaluateOnNewDocument', { source: SERVICE_WORKER_BLOCK }, sessionId),
      b.pipe.send('Emulation.setDeviceMetricsOverride', { width: 1280, height: 800, deviceScaleFactor: 1, mobile: false }, sessionId),
      b.pipe.send('Emulation.setUserAgentOverride', { userAgent: options.userAgent }, sessionId),
    ]);
    return { proxy, contextId, sessionId, listeners };
  };

  const render = async (b: Browser, page: PreparedPage, url: string): Promise<PageExtraction> => {
    page.proxy.setMaxBytesFromOrigins(options.maxPageBytes);
    let bytes = 0;
    let domContentLoaded!: () => void;
    const loaded = new Promise<void>((resolve) => (domContentLoaded = resolve));
    page.listeners.add((method, p) => {
      if (method === 'Page.domContentEventFired') domContentLoaded();
      else if (method === 'Network.dataReceived') {
        bytes += p.dataLength as number;
        if (bytes > options.maxPageBytes) page.proxy.spendBudget();
      }
    });
    const nav = await b.pipe.send<{ errorText?: string }>('Page.navigate', { url }, page.sessionId);
    if (nav.errorText) throw new Error(`${url}: ${nav.errorText}`);
    // bounded as ours's navigation is (20 s), so that a page that never loads fails the run instead of hanging it
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([loaded, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${url}: no DOMContentLoaded within 20 s`)), 20_000)))]).finally(() => clearTimeout(timer));
    const r = await b.pipe.send<{ result: { value: SettleProbe }; exceptionDetails?: unknown }>(
      'Runtime.evaluate',
      { expression: settleProbeExpression(options.maxPageBytes, false, options.loadWaitMs), awaitPromise: true, returnByValue: true },
      page.sessionId,
    );
    const probe = r.result.value;
    if (r.exceptionDetails || probe.kind !== 'facts' || probe.facts.html === null) throw new Error(`${url}: the probe did not read the page at once (${probe?.kind})`);
    const extraction = extractImages(`${probe.facts.doctype}${probe.facts.html}`, probe.facts.url);
    keyDomFacts(probe.facts);
    return extraction;
  };

  const teardown = async (b: Browser, page: PreparedPage) => {
    b.pipe.sessions.delete(page.sessionId);
    await b.pipe.send('Target.disposeBrowserContext', { browserContextId: page.contextId }).catch(() => undefined);
    await page.proxy.close();
  };

  let next = 0;
  const closing: Array<Promise<void>> = [];
  const lane = async () => {
    while (next < urls.length) {
      const i = next++;
      const k = Math.floor(i / options.pagesPerBrowser);
      const b = await browserFor(k);
      b.open++;
      const end = Math.min(options.pagesPerBrowser * (k + 1), urls.length); // this browser's pages: up to index end - 1
      const left = end - (i + 1);
      const page = await (b.spares.shift() ?? prepare(b));
      try {
        const rendering = render(b, page, urls[i]!);
        // a spare for a later page of this browser, prepared while this page renders
        if (b.spares.length < Math.min(2, left)) b.spares.push(prepare(b));
        onPage(await rendering);
      } finally {
        const done = teardown(b, page).then(async () => {
          b.open--;
          if (next >= end && b.open === 0) await closeBrowser(b);
        });
        closing.push(done);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, lane));
  } finally {
    await Promise.allSettled(closing);
    for (const b of browsers.values()) await b.then(closeBrowser, () => undefined);
    origins.destroy();
  }
  return { launches };
}
