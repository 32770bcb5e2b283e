/**
 * The browser layer of the crawl stage: render one page in Debian's Chromium, scroll it so lazy
 * loaders fire, let the network settle, and return the rendered DOM's extraction (extract-images.ts)
 * with the live facts of its images. A page where nothing could respond to scrolling is not scrolled,
 * and one where nothing could change after its load event is read at once (the settle probe,
 * dom-facts.ts). No Temporal, no database: the `mella-browser` activity owns one `PageRenderer` per
 * worker process and feeds it URLs from the frontier. docs/crawl.md ("Browser rendering") describes
 * the behaviour; the comments here say where each rule is applied.
 *
 * - The pages are driven over the DevTools protocol directly (devtools-pipe.ts), one flat session per
 *   page, on a Chromium we start ourselves (chromium-launch.ts): no automation library's page driver
 *   sits in between. It was the largest cost of a page that was not the page's own (docs/crawl.md,
 *   "Figures"), and a crawl needs a small part of what it does: navigation, lifecycle, evaluation,
 *   dialogs, popups, crashes.
 * - One browser per renderer, relaunched every `recycleAfterPages` pages (memory stays bounded) and
 *   after it dies. A fresh browser context per page: no cookies, storage or cache shared between
 *   pages; downloads refused, service workers blocked, dialogs dismissed, popups closed.
 * - Every connection of the page goes through a per-page guarded proxy (guard-proxy.ts): the SSRF
 *   guard, redirects, WebSockets and prefetches included, and without a DNS check/use gap. No
 *   request pauses for Node: web fonts are off in Chromium, media URLs are refused by Chromium
 *   (`Network.setBlockedURLs`), and one DevTools session per page does the bookkeeping (bytes,
 *   requests in flight, navigations). Only the offline origin map that tests use pauses requests
 *   (`Fetch`).
 * - Contexts are prepared ahead (spares) while earlier pages wait, and closed after the result is
 *   returned; each context still serves exactly one page.
 * - Bounded everywhere: navigation, load, scroll, settle and extraction run inside one `maxTimeMs`
 *   budget; when it runs out the context is closed and the render answers `page_timeout`.
 * - `render` never throws for a bad page: every outcome is a `RenderResult`. It throws only when the
 *   browser cannot be launched at all (a configuration or host problem the activity should retry).
 */
import dns from 'node:dns';
import http, { type Agent } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { AddressGuard } from '../shared/address-guard';
import { chromiumArgs, launchChromium, type ChromiumProcess } from './chromium-launch';
import { isRunning, processTreeMemory, resolveChromiumExecutable, type ChromiumExecutable } from './chromium-process';
import type { Protocol } from 'devtools-protocol';
import { DevToolsClosedError, type DevToolsCommand, type DevToolsEvent, type DevToolsParams, type DevToolsResult } from './devtools-pipe';
import { factsExpression, keyDomFacts, scrollExpression, settleProbeExpression, SCROLL_LISTENERS_INIT_SCRIPT, type ImageDomFacts, type RawPageFacts, type SettleProbe } from './dom-facts';
import { extractImages, type ExtractOptions, type PageExtraction } from './extract-images';
import { GuardProxy, joinHostPort, originAgent, type ProxyEvent } from './guard-proxy';
import { DEFAULT_USER_AGENT } from './robots';
import { parseRetryAfter } from '../ingest/fetch-image';

export type { ImageDomFacts } from './dom-facts';

// ---------------------------------------------------------------------------------------------------
// Options and results

export interface BrowserPoolOptions {
  /** Default: env `MELLA_CHROMIUM_PATH`, else `/usr/bin/chromium` (Debian's launcher is looked through), else `which chromium`. */
  executablePath?: string;
  /** Relaunch the browser after this many pages to bound its memory (default 100). */
  recycleAfterPages: number;
  /** Sent as `User-Agent` (default: robots.ts's `DEFAULT_USER_AGENT`, whose product token robots.txt rules match). */
  userAgent: string;
  /** CIDRs or IPs exempt from the SSRF guard (tests: `['127.0.0.1/32']`); empty = only public addresses. */
  allowPrivateNetworks: string[];
  /** Viewport in CSS pixels (default 1280×800, device scale factor 1). */
  viewport?: { width: number; height: number };
  /** Browser launch limit (default 30,000 ms). */
  launchTimeoutMs?: number;
  /** Extra Chromium switches, appended after ours. */
  extraArgs?: string[];
  /**
   * Fresh contexts prepared ahead of the pages that will use them, at most one per page in flight
   * and at most this many (default 4; 0 = every page sets up its context when it starts). Each one
   * is used by exactly one page.
   */
  sparePages?: number;
}

export const DEFAULT_BROWSER_POOL_OPTIONS: Readonly<BrowserPoolOptions> = Object.freeze({
  recycleAfterPages: 100,
  userAgent: DEFAULT_USER_AGENT,
  allowPrivateNetworks: [],
});

export interface RenderOptions {
  /** Until DOMContentLoaded of the main document, redirects included (default 20,000 ms). */
  navigationTimeoutMs?: number;
  /** Bound of each wait for quiet: for the load event, and for network idle after scrolling (default 2,000 ms). */
  settleMs?: number;
  /** Network idle = no request in flight for this long (default 150 ms). */
  idleQuietMs?: number;
  /**
   * Scroll to the bottom with at most this many stops (default 6; 0 = no scrolling). Fewer when the
   * page is short: only as many as keep consecutive stops 1.25 viewports apart, none for a document
   * no taller than the viewport (dom-facts.ts `scrollExpression`).
   */
  scrollSteps?: number;
  /** Dwell at each scroll stop (default 120 ms), for loaders driven by throttled scroll handlers. */
  scrollStepMs?: number;
  /**
   * Scroll every page (default false: only a page where something could respond to scrolling, a
   * scroll listener or intersection observer, an `onscroll` handler, a native `loading=lazy` image
   * or any frame; checked after the load event and again after the quiet window that follows it).
   * Set it for sites whose lazy loaders poll positions on a timer.
   */
  alwaysScroll?: boolean;
  /**
   * Bytes per page, all responses together (default 10 MiB), counted twice: on the wire by the
   * proxy, which cuts every origin connection when it is passed, and decoded (DevTools events), which
   * also catches compression bombs. A main document over it, or still loading when it runs out:
   * `too_large`. Otherwise later requests are refused (`page_budget`), loading is stopped, and the
   * page is still extracted with `truncated: true`. The serialized DOM is limited to this many
   * characters as well.
   */
  maxPageBytes?: number;
  /** The whole page, from context creation to extraction (default 45,000 ms). */
  maxTimeMs?: number;
  /** `Accept-Language` and `navigator.language`, e.g. `th-TH` (default: Chromium's, en-US). */
  locale?: string;
  /** Passed to `extractImages` (`httpContentLanguage` comes from the response). */
  extract?: Omit<ExtractOptions, 'httpContentLanguage'>;
  /**
   * TEST AID, for machines that cannot reach the web: requests to these origins are fetched from a
   * local base URL instead and fulfilled to the page as if they came from the origin. Keys are
   * origins (`https://vnexpress.net`) or `*` (any origin not listed); values are base URLs. An
   * origin key maps `<origin><path>` to `<base><path>`; `*` maps it to `<base>/<host><path>`. The
   * local fetch goes through the same SSRF guard. Redirect hops are not remapped. Never set it in
   * production.
   */
  offlineOrigins?: Record<string, string>;
}

const RENDER_DEFAULTS = {
  navigationTimeoutMs: 20_000,
  settleMs: 2_000,
  idleQuietMs: 150,
  scrollSteps: 6,
  scrollStepMs: 120,
  maxPageBytes: 10 * 1024 * 1024,
  maxTimeMs: 45_000,
};

export type RenderFailureReason =
  | 'ssrf_blocked'
  | 'navigation_timeout'
  | 'page_timeout'
  | `http_${number}`
  | 'not_html'
  | 'too_large'
  | 'download'
  | 'browser_crashed'
  | 'aborted'
  | 'unsupported_scheme'
  | 'invalid_url'
  | 'dns_error'
  | 'network_error';

/** Why a request of the page was refused. */
export type BlockReason = 'private_address' | 'unsupported_scheme' | 'font' | 'media' | 'page_budget' | 'proxy_refused';

export interface BlockedRequest {
  /** The request URL; `host:port` for a refused tunnel no request could be matched to (a WebSocket). */
  url: string;
  reason: BlockReason;
  detail?: string;
}

export interface RenderTimings {
  /** Launching a browser for this page (0 when one was running). */
  launchMs: number;
  /** Proxy, context, page and DevTools session set up (or waiting for the one prepared ahead). */
  setupMs: number;
  navigationMs: number;
  loadMs: number;
  scrollMs: number;
  settleMs: number;
  extractMs: number;
  totalMs: number;
}

export interface RenderNetwork {
  /** Requests the page issued (redirect hops count once). */
  requests: number;
  /** Of those, failed or aborted. */
  failed: number;
  /** Response body bytes, decoded, as DevTools reported them. */
  bytes: number;
  /** Bytes the proxy received from origins (headers and TLS included); the budget's hard count. */
  wireBytes: number;
  /** Network idle was reached before `settleMs` ran out. */
  settled: boolean;
  /** Connections the proxy could not make, by reason (`dns_error`, `connect_timeout`, ...); refusals are in `blocked`. */
  proxyErrors: Partial<Record<string, number>>;
}

export interface RenderSuccess {
  ok: true;
  /** The document's URL when the DOM was read (after redirects, script navigations and history changes). */
  finalUrl: string;
  status: number;
  headers: { etag?: string; lastModified?: string; contentLanguage?: string; contentType?: string };
  /** `<!DOCTYPE html>` (when the document has one) + `document.documentElement.outerHTML`. */
  html: string;
  extraction: PageExtraction;
  /** Live facts per image, keyed by every URL an `<img>` offers (see dom-facts.ts `keyDomFacts`). */
  dom: Record<string, ImageDomFacts>;
  /** `<img>` elements in the live DOM. */
  domImages: number;
  blocked: BlockedRequest[];
  /** The byte budget ran out: later requests were aborted and loading was stopped. */
  truncated: boolean;
  dialogsDismissed: number;
  popupsClosed: number;
  /** Main-frame navigation URLs in order: the requested URL, redirect hops, script navigations. */
  navigations: string[];
  network: RenderNetwork;
  /** Scroll stops made; `skipped`: not scrolled, since nothing on the page could respond (`alwaysScroll` off). */
  scroll: { stops: number; skipped: boolean };
  /**
   * Nothing could respond to scrolling and nothing could change the page after its load event (no
   * script, inline handler, meta refresh or frame): it was read at once, with no quiet window.
   */
  staticPage: boolean;
  timings: RenderTimings;
}

export interface RenderFailure {
  ok: false;
  reason: RenderFailureReason;
  detail: string;
  finalUrl?: string;
  blocked?: BlockedRequest[];
  timings?: Partial<RenderTimings>;
  /** The main document's `Retry-After` (a 429 or 503), in ms from when it arrived. */
  retryAfterMs?: number;
}

export type RenderResult = RenderSuccess | RenderFailure;

export interface RendererStats {
  executablePath: string;
  browserVersion: string | null;
  /** `render` calls that reached the browser (invalid URLs are not counted). */
  pagesRendered: number;
  pagesOk: number;
  failures: Partial<Record<string, number>>;
  /** Browser launches, the first one included. */
  launches: number;
  /** `launches - 1`: after `recycleAfterPages` (`recycles`) or after the browser died (`crashes`). */
  relaunches: number;
  recycles: number;
  crashes: number;
  /** Requests refused, by reason, over all pages. */
  blocked: Partial<Record<BlockReason, number>>;
  /** Decoded response body bytes over all pages. */
  bytes: number;
  wireBytes: number;
  dialogsDismissed: number;
  popupsClosed: number;
  activePages: number;
  /** Pages started on the current browser. */
  pagesOnCurrentBrowser: number;
}

export class BrowserLaunchError extends Error {
  constructor(message: string, readonly executablePath: string) {
    super(message);
    this.name = 'BrowserLaunchError';
  }
}

// ---------------------------------------------------------------------------------------------------
// Launch

export { CHROMIUM_ARGS, chromiumArgs } from './chromium-launch';

interface BrowserSlot {
  /** The process, its pid and its DevTools pipe. */
  chromium: ChromiumProcess;
  pages: number;
  active: number;
  retired: boolean;
  dead: boolean;
  closing: boolean;
  /** Renders on this browser, told when it dies ('crash') or is closed under them ('closed'). */
  onDeath: Set<(why: 'crash' | 'closed') => void>;
  /** Pages by browser context id: the browser's target events (popups, crashes, a page closing itself) go to their page. */
  jobs: Map<string, RenderJob>;
}

/** At most this many spare pages are kept ready (two per page in flight). */
const MAX_SPARES = 4;

interface Spare {
  job: RenderJob;
  slot: BrowserSlot;
  locale: string | undefined;
}

function usable(slot: BrowserSlot): boolean {
  return !slot.retired && !slot.dead && !slot.closing && !slot.chromium.pipe.isClosed;
}

function hasOfflineOrigins(o: RenderOptions): boolean {
  return o.offlineOrigins !== undefined && Object.keys(o.offlineOrigins).length > 0;
}

/** Thrown inside a render when the browser was gone before the page started; the render relaunches once. */
class BrowserGoneError extends Error {}

// ---------------------------------------------------------------------------------------------------
// PageRenderer

export class PageRenderer {
  private readonly opts: BrowserPoolOptions & { viewport: { width: number; height: number }; launchTimeoutMs: number };
  private readonly executable: ChromiumExecutable;
  private readonly guard: AddressGuard;
  private current: BrowserSlot | null = null;
  private launching: Promise<BrowserSlot> | null = null;
  private readonly slots = new Set<BrowserSlot>();
  /** Contexts of finished pages still closing. */
  private readonly teardowns = new Set<Promise<void>>();
  /** Fresh contexts prepared ahead of the pages that will use them (`refillSpares`). */
  private readonly spares: Spare[] = [];
  private closed = false;
  private version: string | null = null;
  private readonly counters = {
    pagesRendered: 0,
    pagesOk: 0,
    failures: {} as Partial<Record<string, number>>,
    launches: 0,
    recycles: 0,
    crashes: 0,
    blocked: {} as Partial<Record<BlockReason, number>>,
    bytes: 0,
    wireBytes: 0,
    dialogsDismissed: 0,
    popupsClosed: 0,
    activePages: 0,
  };

  private constructor(options: Partial<BrowserPoolOptions>) {
    const recycle = options.recycleAfterPages ?? DEFAULT_BROWSER_POOL_OPTIONS.recycleAfterPages;
    if (!Number.isInteger(recycle) || recycle < 1) throw new RangeError(`recycleAfterPages must be an integer >= 1, got ${String(recycle)}`);
    this.opts = {
      ...DEFAULT_BROWSER_POOL_OPTIONS,
      ...options,
      recycleAfterPages: recycle,
      allowPrivateNetworks: [...(options.allowPrivateNetworks ?? [])],
      viewport: options.viewport ?? { width: 1280, height: 800 },
      launchTimeoutMs: options.launchTimeoutMs ?? 30_000,
    };
    this.executable = resolveChromiumExecutable(options.executablePath);
    this.guard = new AddressGuard(this.opts.allowPrivateNetworks); // throws TypeError for a bad CIDR
  }

  /**
   * Plain-HTTP connections to origins, kept alive across the pages of this renderer: each page has its
   * own proxy (its budget, its refusals), but a site's next page reuses the connections its last page
   * opened instead of opening as many new ones (guard-proxy.ts, `originAgent`).
   */
  private readonly origins = originAgent();

  /** Resolves the executable and launches the browser (so a broken setup fails here, not on the first page). */
  static async launch(options: Partial<BrowserPoolOptions> = {}): Promise<PageRenderer> {
    const renderer = new PageRenderer(options);
    renderer.current = await renderer.launchSlot();
    return renderer;
  }

  stats(): RendererStats {
    const c = this.counters;
    return {
      executablePath: this.executable.path,
      browserVersion: this.version,
      pagesRendered: c.pagesRendered,
      pagesOk: c.pagesOk,
      failures: { ...c.failures },
      launches: c.launches,
      relaunches: Math.max(0, c.launches - 1),
      recycles: c.recycles,
      crashes: c.crashes,
      blocked: { ...c.blocked },
      bytes: c.bytes,
      wireBytes: c.wireBytes,
      dialogsDismissed: c.dialogsDismissed,
      popupsClosed: c.popupsClosed,
      activePages: c.activePages,
      pagesOnCurrentBrowser: this.current?.pages ?? 0,
    };
  }

  /** The current browser's pid (Linux), for monitoring; null when none is running or it cannot be found. */
  browserPid(): number | null {
    const slot = this.current;
    return slot && !slot.dead ? slot.chromium.pid : null;
  }

  /**
   * Memory of the current browser and all its child processes (renderers, utility, zygote), Linux
   * only: `rssBytes` sums their RSS (shared pages once per process), `pssBytes` their PSS.
   */
  memory(): { pid: number | null; processes: number; rssBytes: number; pssBytes: number } {
    const pid = this.browserPid();
    if (pid === null) return { pid: null, processes: 0, rssBytes: 0, pssBytes: 0 };
    const m = processTreeMemory(pid);
    return { pid, processes: m.pids.length, rssBytes: m.rssBytes, pssBytes: m.pssBytes };
  }

  /** Closes every browser. Renders in flight end as `aborted`. */
  async close(): Promise<void> {
    this.closed = true;
    const pending = this.launching;
    if (pending) await pending.catch(() => undefined);
    this.discardSpares();
    await Promise.all([...this.teardowns]);
    this.current = null;
    await Promise.all([...this.slots].map((slot) => this.closeSlot(slot)));
    this.origins.destroy();
  }

  /** Renders one page; see the file comment and docs/crawl.md. */
  async render(url: string, options: RenderOptions = {}, signal?: AbortSignal): Promise<RenderResult> {
    const started = Date.now();
    const o = resolveRenderOptions(options);
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      return { ok: false, reason: 'invalid_url', detail: `not an absolute URL: ${truncate(String(url))}` };
    }
    if (target.protocol !== 'http:' && target.protocol !== 'https:') {
      return { ok: false, reason: 'unsupported_scheme', detail: `scheme ${target.protocol.replace(/:$/, '')} is not http or https` };
    }
    if (!target.hostname) return { ok: false, reason: 'invalid_url', detail: `no host in ${truncate(target.href)}` };
    // credentials in a URL are never sent (nor stored); the fragment stays (scripts may read it)
    target.username = '';
    target.password = '';
    if (this.closed) return { ok: false, reason: 'aborted', detail: 'the renderer is closed' };
    if (signal?.aborted) return { ok: false, reason: 'aborted', detail: 'aborted before the page started' };

    this.counters.pagesRendered++;
    this.counters.activePages++;
    try {
      let result: RenderResult | null = null;
      for (let attempt = 1; result === null; attempt++) {
        const launchStart = Date.now();
        const slot = await this.acquire();
        const launchMs = Date.now() - launchStart;
        // a fresh context prepared ahead of time, or one set up now; then prepare the next one(s)
        const job = this.takeSpare(slot, o) ?? new RenderJob(this, slot);
        // The next page's context is prepared while this one waits for its quiet window after the
        // scroll, not while it navigates or scrolls (that slowed both down on a busy machine).
        const refill = hasOfflineOrigins(o) ? undefined : () => this.refillSpares(slot, o.locale);
        try {
          result = await job.run(target.href, o, signal, started, launchMs, refill);
        } catch (err) {
          // The browser was gone before the page started (killed between renders, noticed late):
          // relaunch once and start over.
          if (!(err instanceof BrowserGoneError) || attempt >= 2) {
            result = { ok: false, reason: 'browser_crashed', detail: `the browser died: ${firstLine(err)}` };
          }
          if (slot.dead || slot.chromium.pipe.isClosed || !isRunning(slot.chromium.pid)) this.markDead(slot);
        } finally {
          // the slot stays busy until the page's context is closed, off this page's clock
          const closing = job.closed.finally(() => this.release(slot));
          this.teardowns.add(closing);
          void closing.finally(() => this.teardowns.delete(closing));
        }
      }
      if (result.ok) this.counters.pagesOk++;
      else this.counters.failures[result.reason] = (this.counters.failures[result.reason] ?? 0) + 1;
      return result;
    } finally {
      this.counters.activePages--;
    }
  }

  // -- used by RenderJob -------------------------------------------------------------------------

  /** @internal */
  get contextOptions() {
    return { userAgent: this.opts.userAgent, viewport: this.opts.viewport };
  }

  /** @internal */
  get addressGuard(): AddressGuard {
    return this.guard;
  }

  /** @internal */
  get originPool(): Agent {
    return this.origins;
  }

  /** @internal */
  account(page: { blocked: BlockedRequest[]; bytes: number; wireBytes: number; dialogs: number; popups: number }): void {
    const c = this.counters;
    for (const b of page.blocked) c.blocked[b.reason] = (c.blocked[b.reason] ?? 0) + 1;
    c.bytes += page.bytes;
    c.wireBytes += page.wireBytes;
    c.dialogsDismissed += page.dialogs;
    c.popupsClosed += page.popups;
  }

  // -- spare pages -------------------------------------------------------------------------------

  /**
   * A spare prepared on this browser for this locale, or null. Its hold on the browser passes to
   * the render (which `acquire` counted already).
   */
  private takeSpare(slot: BrowserSlot, o: ResolvedRenderOptions): RenderJob | null {
    if (hasOfflineOrigins(o)) return null;
    const i = this.spares.findIndex((x) => x.slot === slot && x.locale === o.locale);
    if (i < 0) return null;
    const [spare] = this.spares.splice(i, 1);
    slot.active--;
    return spare!.job;
  }

  /**
   * Keeps twice as many spares ready on the current browser as pages are being rendered (at most
   * MAX_SPARES), never more than the pages the browser has left before it is recycled. Spares of
   * another browser or locale are closed.
   */
  private refillSpares(slot: BrowserSlot, locale: string | undefined): void {
    for (const x of [...this.spares]) if (x.slot !== slot || x.locale !== locale || !usable(x.slot)) this.discardSpare(x);
    if (this.closed || !usable(slot) || slot !== this.current) return;
    const wanted = Math.min(this.opts.sparePages ?? MAX_SPARES, 2 * this.counters.activePages);
    let have = this.spares.length;
    while (have < wanted && slot.pages + have < this.opts.recycleAfterPages) {
      const job = new RenderJob(this, slot);
      slot.active++;
      job.prepare(locale);
      this.spares.push({ job, slot, locale });
      have++;
    }
  }

  private discardSpare(spare: Spare): void {
    const i = this.spares.indexOf(spare);
    if (i < 0) return;
    this.spares.splice(i, 1);
    const closing = spare.job.discard().finally(() => this.release(spare.slot));
    this.teardowns.add(closing);
    void closing.finally(() => this.teardowns.delete(closing));
  }

  private discardSpares(slot?: BrowserSlot): void {
    for (const x of [...this.spares]) if (slot === undefined || x.slot === slot) this.discardSpare(x);
  }

  // -- browser slots -----------------------------------------------------------------------------

  private async acquire(): Promise<BrowserSlot> {
    for (;;) {
      if (this.closed) throw new BrowserLaunchError('the renderer is closed', this.executable.path);
      const cur = this.current;
      // the pid check notices a browser killed between renders before its exit event arrives
      if (cur && !cur.dead && !cur.retired && !cur.chromium.pipe.isClosed && isRunning(cur.chromium.pid)) {
        if (cur.pages >= this.opts.recycleAfterPages) {
          this.counters.recycles++;
          this.retire(cur);
          continue;
        }
        cur.pages++;
        cur.active++;
        return cur;
      }
      if (cur && !cur.retired) {
        // died without our noticing through 'disconnected' yet
        this.markDead(cur);
      }
      if (!this.launching) {
        this.launching = this.launchSlot().finally(() => {
          this.launching = null;
        });
      }
      const slot = await this.launching;
      if (this.current === null || this.current.retired || this.current.dead) this.current = slot;
    }
  }

  private release(slot: BrowserSlot): void {
    slot.active--;
    if (slot.retired && slot.active <= 0) void this.closeSlot(slot);
  }

  private retire(slot: BrowserSlot): void {
    slot.retired = true;
    this.discardSpares(slot);
    if (this.current === slot) this.current = null;
    if (slot.active <= 0) void this.closeSlot(slot);
  }

  private markDead(slot: BrowserSlot): void {
    if (!slot.dead && !slot.closing) {
      slot.dead = true;
      this.counters.crashes++;
      for (const fn of slot.onDeath) fn('crash');
    }
    this.retire(slot);
  }

  private async launchSlot(): Promise<BrowserSlot> {
    let chromium: ChromiumProcess;
    try {
      chromium = await launchChromium(this.executable, [...chromiumArgs(this.executable, this.opts.userAgent), ...(this.opts.extraArgs ?? [])], this.opts.launchTimeoutMs);
    } catch (err) {
      throw new BrowserLaunchError(`cannot launch ${this.executable.path}: ${firstLine(err)}`, this.executable.path);
    }
    this.counters.launches++;
    this.version = chromium.version.replace(/^[^/]*\//, '');
    const slot: BrowserSlot = {
      chromium,
      pages: 0,
      active: 0,
      retired: false,
      dead: false,
      closing: false,
      onDeath: new Set(),
      jobs: new Map(),
    };
    this.slots.add(slot);
    void chromium.exited.then(() => {
      if (!slot.closing) this.markDead(slot);
      this.slots.delete(slot);
    });
    // The browser's own events: pages created (a popup is one in a page's context), crashed or gone.
    // One subscription per browser; each event goes to the page it names.
    slot.chromium.pipe.on('', (event) => {
      if (event.method === 'Target.targetCreated') {
        const info = event.params.targetInfo;
        if (info.type === 'page' && info.browserContextId !== undefined) slot.jobs.get(info.browserContextId)?.onTargetCreated(info.targetId);
      } else if (event.method === 'Target.targetCrashed' || event.method === 'Target.targetDestroyed') {
        for (const job of slot.jobs.values()) job.onTargetGone(event.params.targetId, event.method === 'Target.targetCrashed');
      }
    });
    try {
      await slot.chromium.pipe.send('Target.setDiscoverTargets', { discover: true, filter: [{ type: 'page' }] });
    } catch (err) {
      await chromium.close(1_000);
      throw new BrowserLaunchError(`${this.executable.path} does not report its pages: ${firstLine(err)}`, this.executable.path);
    }
    if (this.closed) await this.closeSlot(slot);
    return slot;
  }

  private async closeSlot(slot: BrowserSlot): Promise<void> {
    if (slot.closing) return;
    slot.closing = true;
    for (const fn of slot.onDeath) fn('closed');
    await slot.chromium.close(5_000);
    this.slots.delete(slot);
  }
}

// ---------------------------------------------------------------------------------------------------
// One page

type ResolvedRenderOptions = typeof RENDER_DEFAULTS & Pick<RenderOptions, 'locale' | 'extract' | 'offlineOrigins' | 'alwaysScroll'>;

function resolveRenderOptions(o: RenderOptions): ResolvedRenderOptions {
  const r = { ...RENDER_DEFAULTS, ...stripUndefined(o) } as ResolvedRenderOptions;
  for (const key of Object.keys(RENDER_DEFAULTS) as Array<keyof typeof RENDER_DEFAULTS>) {
    const v = r[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 2 ** 31 - 1) {
      throw new RangeError(`RenderOptions.${key} must be a number in [0, 2^31-1], got ${String(v)}`);
    }
  }
  if (r.maxPageBytes < 1) throw new RangeError('RenderOptions.maxPageBytes must be >= 1');
  if (r.alwaysScroll !== undefined && typeof r.alwaysScroll !== 'boolean') throw new RangeError(`RenderOptions.alwaysScroll must be a boolean, got ${String(r.alwaysScroll)}`);
  if (r.locale !== undefined) {
    // a BCP 47 tag (Chromium would refuse it per page, after the context was made)
    try {
      if (typeof r.locale !== 'string' || Intl.getCanonicalLocales(r.locale).length !== 1) throw new RangeError();
    } catch {
      throw new RangeError(`RenderOptions.locale must be one BCP 47 language tag such as th-TH, got ${JSON.stringify(r.locale)}`);
    }
  }
  r.scrollSteps = Math.floor(r.scrollSteps);
  return r;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A failure that ends the page early (first one wins). */
interface Stop {
  reason: RenderFailureReason;
  detail: string;
  retryAfterMs?: number;
}

const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml']);
const MAX_BLOCKED = 500;
const MAX_FAILED_TRACKED = 2_000;

/** One sleeper at a time, woken early by `wake` (an event it waits for may have come). */
class Waker {
  private waiter: (() => void) | null = null;

  /** Resolves after `ms`, or at the next `wake`, whichever is first. */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        resolve();
      }, ms);
      this.waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}

/** The main frame's lifecycle, from DevTools `Page.lifecycleEvent`: the current document's loader and the events it reached. */
interface Lifecycle {
  loaderId: string;
  reached: Set<string>;
}

class RenderJob {
  /** The page's browser context, target and flat DevTools session (set by `setup`). */
  private contextId: string | null = null;
  private targetId: string | null = null;
  private sessionId: string | null = null;
  private proxy: GuardProxy | null = null;
  private stopWith: (s: Stop) => void = () => undefined;
  private stopped: Stop | null = null;
  /** `Page.navigate` was sent: from here on a browser death is this page's failure. */
  private navigationStarted = false;
  /** The page's target is gone (closed itself, crashed, or its browser died). */
  private targetGone = false;
  /** `run` has ended: target events from here on are the teardown's. */
  private finished = false;
  /**
   * Loaders of the main frame's navigations (ours, its redirects, script navigations), from their
   * document requests: only their lifecycle events count, not the late ones of the blank document
   * the page was created with.
   */
  private readonly navigationLoaders = new Set<string>();
  private lifecycle: Lifecycle | null = null;
  /** Woken on every main-frame lifecycle event (`waitForLifecycle`). */
  private readonly lifecycleChanged = new Waker();

  private readonly blocked: BlockedRequest[] = [];
  private blockedOverflow = 0;
  private readonly navigations: string[] = [];
  private readonly failedRequests: Array<{ url: string; error: string }> = [];
  /** The main frame's last response (DevTools `responseReceived`; redirects are not responses there). */
  private lastMainResponse: MainResponse | null = null;
  private downloadStarted = false;
  private dialogs = 0;
  private popups = 0;

  // network accounting (CDP Network events of the page target)
  private mainFrameId: string | null = null;
  /** requestId → URL of requests in flight. */
  private readonly inflight = new Map<string, string>();
  private lastNetworkChange = Date.now();
  /** Woken on any network event (`waitForNetworkIdle`). */
  private readonly networkChanged = new Waker();
  private readonly mainDocBytes = new Map<string, number>();
  /** requestId → resource type, for requests Chromium refused (`blockedReason`). */
  private readonly requestTypes = new Map<string, string>();
  private bytes = 0;
  private requests = 0;
  private failed = 0;
  private overBudget = false;

  private timings: RenderTimings = { launchMs: 0, setupMs: 0, navigationMs: 0, loadMs: 0, scrollMs: 0, settleMs: 0, extractMs: 0, totalMs: 0 };
  // set by `run`
  private url = '';
  private o: ResolvedRenderOptions = { ...RENDER_DEFAULTS };
  private signal: AbortSignal | undefined;
  private started = 0;
  /** Called once, when the page starts its quiet wait after scrolling (or ends before it). */
  private onLoaded: (() => void) | undefined;
  /** Proxy, context, page and DevTools session: started by `prepare` (ahead of time for a spare) or by `run`. */
  private prepared: Promise<void> | null = null;

  constructor(
    private readonly owner: PageRenderer,
    private readonly slot: BrowserSlot,
  ) {}

  /**
   * Sets up the page's proxy, fresh context, page and DevTools session, without loading anything.
   * The renderer calls it ahead of time for a spare page; `run` calls it when that did not happen.
   */
  prepare(locale: string | undefined, offlineOrigins?: Record<string, string>): void {
    if (this.prepared) return;
    this.prepared = this.setup(locale, offlineOrigins);
    this.prepared.catch(() => undefined); // observed by work() or teardown()
  }

  private loaded(): void {
    const fn = this.onLoaded;
    this.onLoaded = undefined;
    try {
      fn?.();
    } catch {
      // preparing spares is not this page's business
    }
  }

  /** A spare that is not going to be used: close it. */
  async discard(): Promise<void> {
    this.closed = this.teardown();
    await this.closed;
  }

  async run(url: string, o: ResolvedRenderOptions, signal: AbortSignal | undefined, started: number, launchMs: number, onLoaded?: () => void): Promise<RenderResult> {
    this.onLoaded = onLoaded;
    this.url = url;
    this.o = o;
    this.signal = signal;
    this.started = started;
    this.timings.launchMs = launchMs;
    const stop = new Promise<Stop>((resolve) => {
      this.stopWith = (s) => {
        if (this.stopped) return;
        this.stopped = s;
        resolve(s);
      };
    });
    const budget = Math.max(1, this.o.maxTimeMs - (Date.now() - this.started));
    const timer = setTimeout(
      () => this.stopWith({ reason: 'page_timeout', detail: `the page did not finish within maxTimeMs (${this.o.maxTimeMs} ms)` }),
      budget,
    );
    const onAbort = () => this.stopWith({ reason: 'aborted', detail: 'aborted by the caller' });
    this.signal?.addEventListener('abort', onAbort, { once: true });
    const onDeath = (why: 'crash' | 'closed') =>
      this.stopWith(
        why === 'crash'
          ? { reason: 'browser_crashed', detail: 'the browser process exited during the page' }
          : { reason: 'aborted', detail: 'the renderer was closed during the page' },
      );
    this.slot.onDeath.add(onDeath);
    if (this.slot.dead) onDeath('crash');
    else if (this.slot.closing) onDeath('closed');

    const work = this.work().then(
      (r): RenderResult | Stop => r,
      (err): RenderResult | Stop => {
        if (err instanceof BrowserGoneError) throw err;
        if (this.slot.dead || this.slot.chromium.pipe.isClosed || err instanceof DevToolsClosedError) return { reason: 'browser_crashed', detail: `the browser died: ${firstLine(err)}` };
        return { reason: 'network_error', detail: `render error: ${firstLine(err)}` };
      },
    );
    let outcome: RenderResult | Stop;
    try {
      outcome = await Promise.race([work, stop]);
    } finally {
      clearTimeout(timer);
      this.signal?.removeEventListener('abort', onAbort);
      this.slot.onDeath.delete(onDeath);
      this.finished = true;
      work.catch(() => undefined);
      this.loaded();
      // The context and proxy close in the background: the result does not wait for them. The
      // renderer keeps the browser slot busy until they are closed (`closed`).
      this.closed = this.teardown();
    }
    this.timings.totalMs = Date.now() - this.started;
    // The browser died before this page's navigation began (killed between renders): not the
    // page's fault; render() relaunches and starts over once.
    // A page taken from the spares navigates at once, so "before the navigation began"
    // means before its first request left the browser.
    if (!('ok' in outcome) && outcome.reason === 'browser_crashed' && (!this.navigationStarted || this.navigations.length === 0)) {
      throw new BrowserGoneError(outcome.detail);
    }
    const result: RenderResult = 'ok' in outcome ? outcome : this.failure(outcome.reason, outcome.detail, outcome.retryAfterMs);
    result.timings = { ...this.timings };
    this.owner.account({
      blocked: result.ok ? result.blocked : (result.blocked ?? []),
      bytes: this.bytes,
      wireBytes: this.proxy?.stats().bytesFromOrigins ?? 0,
      dialogs: this.dialogs,
      popups: this.popups,
    });
    return result;
  }

  /** Resolves when the page's context and proxy are closed (set once `run` ends). */
  closed: Promise<void> = Promise.resolve();

  private async teardown(): Promise<void> {
    // a setup still in progress (a page stopped early, a spare discarded) would leave its context open
    if (this.prepared) await withTimeout(this.prepared.then(() => true, () => false), 10_000, false);
    this.finished = true;
    // a dead browser took its contexts with it
    if (this.contextId && !this.slot.dead && !this.slot.chromium.pipe.isClosed) {
      const ok = await withTimeout(this.slot.chromium.pipe.send('Target.disposeBrowserContext', { browserContextId: this.contextId }).then(() => true, () => false), 5_000, false);
      // A context that will not close means a wedged browser: retire it (it is killed once idle).
      if (!ok && !this.slot.dead) this.slot.retired = true;
    }
    if (this.sessionId) this.slot.chromium.pipe.off(this.sessionId);
    if (this.contextId) this.slot.jobs.delete(this.contextId);
    if (this.proxy) await this.proxy.close();
  }

  private failure(reason: RenderFailureReason, detail: string, retryAfterMs?: number): RenderFailure {
    const f: RenderFailure = { ok: false, reason, detail };
    if (retryAfterMs !== undefined) f.retryAfterMs = retryAfterMs;
    const finalUrl = this.navigations[this.navigations.length - 1];
    if (finalUrl) f.finalUrl = finalUrl;
    const blocked = this.collectBlocked();
    if (blocked.length > 0) f.blocked = blocked;
    return f;
  }

  /** A command to the page's DevTools session. */
  private send<M extends DevToolsCommand>(method: M, params?: DevToolsParams<M>): Promise<DevToolsResult<M>> {
    return this.slot.chromium.pipe.send(method, params, this.sessionId ?? undefined);
  }

  /**
   * The page's own browser context behind its own proxy, one page target in it, and a flat DevTools
   * session on that target with everything the page needs set before it loads anything: the network
   * bookkeeping (`Network.enable`), media refusal, the init scripts, viewport, locale, dialogs.
   */
  private async setup(locale: string | undefined, offlineOrigins: Record<string, string> | undefined): Promise<void> {
    const pipe = this.slot.chromium.pipe;
    if (this.slot.dead || pipe.isClosed) throw new BrowserGoneError('browser gone');
    // The byte budget on the wire: the hard backstop behind the decoded count below (DevTools
    // events arrive late, and Page.stopLoading does not cancel every transfer in flight). `run`
    // sets the page's budget before navigating.
    this.proxy = await GuardProxy.start(this.owner.addressGuard, {
      agent: this.owner.originPool,
      onBudgetExceeded: () => this.budgetSpent(),
    });
    const { viewport } = this.owner.contextOptions;
    try {
      // `<-loopback>`: loopback addresses go through the proxy too (Chromium bypasses them by default)
      const { browserContextId } = await pipe.send('Target.createBrowserContext', {
        disposeOnDetach: true,
        proxyServer: this.proxy.url,
        proxyBypassList: '<-loopback>',
      });
      this.contextId = browserContextId;
      this.slot.jobs.set(browserContextId, this);
      const [{ targetId }] = await Promise.all([
        pipe.send('Target.createTarget', { url: 'about:blank', browserContextId }),
        // refused (Page.navigate says `isDownload` of a navigation that became one)
        pipe.send('Browser.setDownloadBehavior', { behavior: 'deny', browserContextId }),
      ]);
      this.targetId = targetId;
      const { sessionId } = await pipe.send('Target.attachToTarget', { targetId, flatten: true });
      this.sessionId = sessionId;
    } catch (err) {
      if (err instanceof DevToolsClosedError || this.slot.dead) throw new BrowserGoneError(firstLine(err));
      throw err;
    }
    pipe.on(this.sessionId!, (event) => this.onEvent(event));
    // Only the offline test aid pauses requests for Node (`Fetch`); otherwise media URLs are refused
    // inside Chromium (`Network.setBlockedURLs`), web fonts are never requested
    // (`--disable-remote-fonts`), and the proxy guards every connection.
    const offline = hasOfflineOrigins({ offlineOrigins });
    // one round trip for all of them
    const [tree] = await Promise.all([
      this.send('Page.getFrameTree'),
      this.send('Page.enable'),
      this.send('Page.setLifecycleEventsEnabled', { enabled: true }),
      this.send('Network.enable'),
      offline ? this.send('Fetch.enable', { patterns: [{ urlPattern: '*' }] }) : this.send('Network.setBlockedURLs', { urls: MEDIA_URL_PATTERNS }),
      // counts what could respond to scrolling, before any script of the page runs (dom-facts.ts)
      this.send('Page.addScriptToEvaluateOnNewDocument', { source: SCROLL_LISTENERS_INIT_SCRIPT }),
      this.send('Page.addScriptToEvaluateOnNewDocument', { source: SERVICE_WORKER_BLOCK_SCRIPT }),
      this.send('Emulation.setDeviceMetricsOverride', { width: viewport.width, height: viewport.height, deviceScaleFactor: 1, mobile: false }),
      locale === undefined ? undefined : this.send('Emulation.setLocaleOverride', { locale }),
      // the user agent is the browser's own (--user-agent); this adds the page's Accept-Language and navigator.language(s)
      locale === undefined ? undefined : this.send('Emulation.setUserAgentOverride', { userAgent: this.owner.contextOptions.userAgent, acceptLanguage: locale }),
    ]);
    this.mainFrameId = tree.frameTree.frame.id;
  }

  /** The browser created a page in this page's context: a popup. It is closed at once. */
  onTargetCreated(targetId: string): void {
    if (this.targetId === null || targetId === this.targetId || this.finished) return;
    this.popups++;
    this.slot.chromium.pipe.send('Target.closeTarget', { targetId }).catch(() => undefined);
  }

  /** A page target crashed or was destroyed; this page's own ends the render. */
  onTargetGone(targetId: string, crashed: boolean): void {
    if (targetId !== this.targetId || this.finished) return;
    this.targetGone = true;
    if (crashed) {
      this.stopWith({ reason: 'browser_crashed', detail: 'the page\'s renderer process crashed' });
      return;
    }
    // a dying browser destroys its pages too: let its exit name it first
    setTimeout(() => {
      if (this.slot.dead || this.slot.chromium.pipe.isClosed) this.stopWith({ reason: 'browser_crashed', detail: 'the browser process exited during the page' });
      else this.stopWith({ reason: 'network_error', detail: 'the page closed itself (window.close)' });
    }, 100);
  }

  private async work(): Promise<RenderResult | Stop> {
    const setupStart = Date.now();
    this.prepare(this.o.locale, this.o.offlineOrigins);
    await this.prepared;
    // a spare whose page or browser went away while it waited: not this page's fault, start over
    if (this.targetGone || this.slot.dead || this.slot.chromium.pipe.isClosed) throw new BrowserGoneError('the prepared page is gone');
    this.proxy!.setMaxBytesFromOrigins(this.o.maxPageBytes);
    this.lastNetworkChange = Date.now();
    this.timings.setupMs = Date.now() - setupStart;

    // -- navigation
    let t = Date.now();
    this.navigationStarted = true;
    const navigation = await this.navigate(Math.max(1, Math.min(this.o.navigationTimeoutMs, this.remaining())));
    this.timings.navigationMs = Date.now() - t;
    if (this.stopped) return this.stopped;
    if (navigation) return navigation;
    const early = this.checkMainResponse(this.lastMainResponse);
    if (early) return early;

    // -- load event, scroll, settle (each bounded; a failure here is not fatal)
    // Unless `alwaysScroll`, a page is scrolled only when something on it could respond (a scroll
    // listener or intersection observer, an onscroll handler, a native lazy image, a frame: counted
    // by SCROLL_LISTENERS_INIT_SCRIPT). The settle probe waits for the load event in the page and
    // looks: a page where nothing could respond and nothing could change any more (no script,
    // inline handler or meta refresh) is read at once, in the same call; one that could still
    // change waits for its quiet window and is asked again (a script that arrived meanwhile may
    // listen). dom-facts.ts has the rules. Without the probe (or when it fails) the load event is
    // awaited here, and the page scrolled.
    const probing = this.o.scrollSteps > 0 && !this.o.alwaysScroll;
    let probe: SettleProbe | null = null;
    t = Date.now();
    const loadBound = Math.max(1, Math.min(this.o.settleMs, this.remaining()));
    if (probing) {
      probe = await this.evaluate<SettleProbe>(settleProbeExpression(this.o.maxPageBytes, false, loadBound)).catch(() => null);
      // the next page's context is prepared from here on (not during the probe: it slowed it down)
      this.loaded();
      if (this.stopped) return this.stopped;
    }
    if (probe === null) {
      await this.waitForLifecycle('load', loadBound);
      this.timings.loadMs = Date.now() - t;
    } else {
      const took = Date.now() - t;
      this.timings.loadMs = Math.min(took, probe.loadWaitedMs);
      this.timings[probe.kind === 'facts' ? 'extractMs' : 'scrollMs'] += took - this.timings.loadMs;
    }
    const settleEnd = Date.now() + Math.min(this.o.settleMs, this.remaining());
    let settled = false;
    let scrollStops = 0;
    let raw: RawPageFacts | null = null;
    let staticPage = false;
    if (probe?.kind === 'facts') {
      staticPage = true;
      settled = this.inflight.size === 0;
    } else if (probe?.kind === 'changeable') {
      t = Date.now();
      settled = await this.waitForNetworkIdle(settleEnd - Date.now());
      this.timings.settleMs += Date.now() - t;
      if (this.stopped) return this.stopped;
      t = Date.now();
      probe = await this.evaluate<SettleProbe>(settleProbeExpression(this.o.maxPageBytes, true)).catch(() => null);
      if (this.stopped) return this.stopped;
      this.timings[probe?.kind === 'facts' ? 'extractMs' : 'scrollMs'] += Date.now() - t;
    }
    if (probe?.kind === 'facts') raw = probe.facts;
    // read by the probe: not scrolled, for want of anything that could respond
    const scrollSkipped = raw !== null;
    // Scroll to the bottom (the last stop has no dwell of its own: the quiet window after it is
    // one), then wait until nothing has loaded for the quiet window since the later of the last
    // network event and the end of the scroll. A document that grew meanwhile is scrolled again,
    // within the same number of stops and the same settle bound.
    let stopsLeft = this.o.scrollSteps;
    for (let round = 0; raw === null; round++) {
      let scrolledStops = 0;
      if (stopsLeft > 0) {
        t = Date.now();
        const r = await this.evaluate<{ stops: number }>(scrollExpression(stopsLeft, this.o.scrollStepMs, { dwellAtLastStop: false })).catch(() => null);
        scrolledStops = r?.stops ?? 0;
        stopsLeft -= scrolledStops;
        scrollStops += scrolledStops;
        this.timings.scrollMs += Date.now() - t;
      }
      if (this.stopped) return this.stopped;
      // the page now only waits: a good moment to prepare the next page's context
      this.loaded();
      if (round > 0 && scrolledStops === 0 && settled) break; // settled, and nothing more to scroll
      t = Date.now();
      const quiet = scrolledStops > 0 ? Math.max(this.o.idleQuietMs, this.o.scrollStepMs) : this.o.idleQuietMs;
      settled = await this.waitForNetworkIdle(settleEnd - Date.now(), scrolledStops > 0 ? Date.now() : 0, quiet);
      this.timings.settleMs += Date.now() - t;
      if (this.stopped) return this.stopped;
      if (!settled || scrolledStops === 0 || stopsLeft <= 0) break;
    }

    // -- a script navigation after DOMContentLoaded may have replaced the document
    const last = this.lastMainResponse;
    const lateNav = this.lateNavigationFailure();
    if (lateNav) return lateNav;
    const late = this.checkMainResponse(last);
    if (late) return late;

    // -- read the DOM (unless the settle probe did)
    t = Date.now();
    if (raw === null) raw = await this.evaluate<RawPageFacts>(factsExpression(this.o.maxPageBytes));
    const headers = last?.headers ?? {};
    if (raw.html === null) return { reason: 'too_large', detail: `the rendered DOM has ${raw.htmlChars} characters, over maxPageBytes (${this.o.maxPageBytes})` };
    if (!HTML_TYPES.has(raw.contentType.toLowerCase())) return { reason: 'not_html', detail: `document type ${raw.contentType}` };
    const html = `${raw.doctype}${raw.html}`;
    // the document's URL when it was read: after redirects, script navigations and history changes
    const finalUrl = raw.url;
    const extraction = extractImages(html, finalUrl, { ...this.o.extract, httpContentLanguage: headers['content-language'] ?? null });
    const dom = keyDomFacts(raw);
    this.timings.extractMs += Date.now() - t;

    const proxyStats = this.proxy?.stats();
    const proxyErrors: Partial<Record<string, number>> = {};
    for (const [k, v] of Object.entries(proxyStats?.refused ?? {})) if (k !== 'private_address' && k !== 'bad_request' && k !== 'budget' && v) proxyErrors[k] = v;
    return {
      ok: true,
      finalUrl,
      status: last?.status ?? 0,
      headers: pickHeaders(headers),
      html,
      extraction,
      dom,
      domImages: raw.images.length + raw.imagesOmitted,
      blocked: this.collectBlocked(),
      truncated: this.overBudget,
      dialogsDismissed: this.dialogs,
      popupsClosed: this.popups,
      navigations: [...this.navigations],
      network: {
        requests: this.requests,
        failed: this.failed,
        bytes: this.bytes,
        wireBytes: proxyStats?.bytesFromOrigins ?? 0,
        settled,
        proxyErrors,
      },
      scroll: { stops: scrollStops, skipped: scrollSkipped },
      staticPage,
      timings: this.timings,
    };
  }

  /**
   * Navigates the page's main frame to `this.url` and waits for DOMContentLoaded of the document it
   * loads, or of a later one (a script in the head may navigate again before it), at most
   * `timeoutMs`. Null when it arrived; otherwise the failure: a navigation Chromium refused
   * (`errorText`: a refused tunnel, a download, DNS), the byte budget, or the timeout.
   */
  private async navigate(timeoutMs: number): Promise<Stop | null> {
    const deadline = Date.now() + timeoutMs;
    // a closed pipe (the browser died) rejects out of here: `run` names it `browser_crashed`
    const nav = this.send('Page.navigate', { url: this.url }).catch((err: unknown): { errorText?: string; loaderId?: string; isDownload?: boolean } => {
      if (err instanceof DevToolsClosedError) throw err;
      return { errorText: firstLine(err) };
    });
    let timer: NodeJS.Timeout | undefined;
    const answered = await Promise.race([nav, new Promise<null>((resolve) => (timer = setTimeout(() => resolve(null), timeoutMs)))]).finally(() => clearTimeout(timer));
    if (this.stopped) return this.stopped;
    if (answered === null) return this.navigationTimeout();
    if (answered.loaderId) this.navigationLoaders.add(answered.loaderId);
    if (answered.isDownload) this.downloadStarted = true;
    if (answered.errorText) return this.navigationFailure(answered.errorText);
    const reached = await this.waitForLifecycle('DOMContentLoaded', deadline - Date.now());
    if (this.stopped) return this.stopped;
    if (!reached) {
      // nothing more will load: a navigation that ended without a document (a download, a refused hop)
      return this.downloadStarted || this.overBudget ? this.navigationFailure('') : this.navigationTimeout();
    }
    return null;
  }

  /**
   * Waits until the main frame's current document (not the blank one the page started with) has
   * reached lifecycle event `name` (`DOMContentLoaded`, `load`), at most `bound` ms; false when it did not.
   */
  private async waitForLifecycle(name: string, bound: number): Promise<boolean> {
    const end = Date.now() + Math.max(0, bound);
    for (;;) {
      if (this.stopped) return false;
      const l = this.lifecycle;
      if (l && l.reached.has(name)) return true;
      const left = end - Date.now();
      if (left <= 0) return false;
      await this.lifecycleChanged.sleep(left);
    }
  }

  /**
   * Evaluates `expression` in the main frame's page world and returns its value (a promise is
   * awaited). Rejects when it throws, or when its document goes away (a navigation) first.
   */
  private async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
    if (r.exceptionDetails) throw new Error(`evaluation failed: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value as T;
  }

  private remaining(): number {
    return this.o.maxTimeMs - (Date.now() - this.started);
  }

  // -- requests --------------------------------------------------------------------------------

  private block(url: string, reason: BlockReason, detail?: string): void {
    if (this.blocked.length >= MAX_BLOCKED) {
      this.blockedOverflow++;
      return;
    }
    this.blocked.push(detail === undefined ? { url: truncate(url), reason } : { url: truncate(url), reason, detail });
  }

  /**
   * Everything the page's DevTools session reports. The Network events are the page's bookkeeping:
   * the byte budget, the requests in flight (settle), the main frame's navigations and response,
   * failed requests (matched to the proxy's refusals). Page events: the main frame's lifecycle
   * (DOMContentLoaded, load) and dialogs, which are dismissed. Fetch pauses come only from the
   * offline test aid.
   */
  private onEvent(event: DevToolsEvent): void {
    switch (event.method) {
      case 'Network.requestWillBeSent': {
        const e = event.params;
        this.touch();
        const main = e.type === 'Document' && e.frameId === this.mainFrameId;
        // the requested URL, then each redirect hop (same requestId), then script navigations
        if (main && this.navigations.length < 50) this.navigations.push(e.request.url);
        if (main) this.navigationLoaders.add(e.loaderId);
        this.inflight.set(e.requestId, e.request.url);
        if (e.redirectResponse) return; // same requestId, already counted
        this.requests++;
        if (e.type !== undefined) this.requestTypes.set(e.requestId, e.type);
        if (main) this.mainDocBytes.set(e.requestId, 0);
        return;
      }
      case 'Network.responseReceived': {
        const e = event.params;
        this.touch();
        if (e.type === 'Document' && e.frameId === this.mainFrameId) {
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(e.response.headers)) headers[k.toLowerCase()] = String(v);
          this.lastMainResponse = { url: e.response.url, status: e.response.status, statusText: e.response.statusText ?? '', headers };
        }
        if (!this.mainDocBytes.has(e.requestId)) return;
        const declared = Number(headerValue(e.response.headers, 'content-length'));
        const max = this.o.maxPageBytes;
        if (Number.isFinite(declared) && declared > max) {
          this.stopWith({ reason: 'too_large', detail: `the document declares ${declared} bytes, over maxPageBytes (${max})` });
        }
        return;
      }
      case 'Network.dataReceived': {
        const e = event.params;
        this.touch();
        const max = this.o.maxPageBytes;
        this.bytes += e.dataLength;
        const doc = this.mainDocBytes.get(e.requestId);
        if (doc !== undefined) {
          const n = doc + e.dataLength;
          this.mainDocBytes.set(e.requestId, n);
          if (n > max) this.stopWith({ reason: 'too_large', detail: `the document is over maxPageBytes (${max} bytes)` });
        }
        if (this.bytes > max) this.budgetSpent();
        return;
      }
      case 'Network.loadingFinished':
        this.touch();
        this.inflight.delete(event.params.requestId);
        this.requestTypes.delete(event.params.requestId);
        return;
      case 'Network.loadingFailed': {
        const e = event.params;
        this.touch();
        const url = this.inflight.get(e.requestId);
        const type = this.requestTypes.get(e.requestId);
        this.requestTypes.delete(e.requestId);
        if (!this.inflight.delete(e.requestId)) return;
        this.failed++;
        // the main document cut off by the byte budget: nothing complete to extract
        if (this.overBudget && this.mainDocBytes.has(e.requestId)) this.documentCut();
        if (e.blockedReason === 'inspector') this.block(url!, type === 'Font' ? 'font' : 'media');
        else if (this.failedRequests.length < MAX_FAILED_TRACKED) this.failedRequests.push({ url: url!, error: e.errorText });
        return;
      }
      case 'Page.lifecycleEvent': {
        const e = event.params;
        if (e.frameId !== this.mainFrameId || !this.navigationLoaders.has(e.loaderId)) return;
        // a new document starts with 'init'; later events belong to it
        let l = this.lifecycle;
        if (l === null || e.name === 'init' || l.loaderId !== e.loaderId) {
          l = { loaderId: e.loaderId, reached: new Set() };
          this.lifecycle = l;
        }
        l.reached.add(e.name);
        this.lifecycleChanged.wake();
        return;
      }
      case 'Page.javascriptDialogOpening':
        this.dialogs++;
        this.send('Page.handleJavaScriptDialog', { accept: false }).catch(() => undefined);
        return;
      case 'Fetch.requestPaused':
        void this.onRequestPaused(event.params);
        return;
    }
  }

  /** A network event: requests in flight changed, or bytes arrived (`waitForNetworkIdle`). */
  private touch(): void {
    this.lastNetworkChange = Date.now();
    this.networkChanged.wake();
  }

  /** TEST AID (`offlineOrigins`): the policy for each request paused by `Fetch` (the proxy still guards what continues). */
  private async onRequestPaused(e: Protocol.Fetch.RequestPausedEvent): Promise<void> {
    const url = e.request.url;
    const id = { requestId: e.requestId };
    const abort = (reason: BlockReason, detail?: string) => {
      this.block(url, reason, detail);
      return this.send('Fetch.failRequest', { ...id, errorReason: 'BlockedByClient' }).catch(() => undefined);
    };
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      await abort('unsupported_scheme', 'unparsable URL');
      return;
    }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') {
      await abort('unsupported_scheme');
      return;
    }
    if (e.resourceType === 'Font' || e.resourceType === 'Media') {
      await abort(e.resourceType === 'Font' ? 'font' : 'media');
      return;
    }
    if (this.overBudget && !(e.resourceType === 'Document' && e.frameId === this.mainFrameId)) {
      await abort('page_budget', `over maxPageBytes (${this.o.maxPageBytes})`);
      return;
    }
    const mapped = this.o.offlineOrigins ? mapOfflineOrigin(u, this.o.offlineOrigins) : null;
    if (!mapped) {
      await this.send('Fetch.continueRequest', id).catch(() => undefined);
      return;
    }
    // fetched here from the local base, and answered to the page as if the origin had
    try {
      const host = new URL(mapped).hostname.replace(/^\[|\]$/g, '');
      const refused = await checkHost(this.owner.addressGuard, host);
      if (refused) {
        await abort('private_address', `offline origin ${mapped}: ${refused}`);
        return;
      }
      const r = await fetchOffline(mapped, e.request, Math.max(1, Math.min(15_000, this.remaining())), this.o.maxPageBytes);
      await this.send('Fetch.fulfillRequest', { ...id, responseCode: r.status, responseHeaders: r.headers, body: r.body.toString('base64') });
    } catch {
      await this.send('Fetch.failRequest', { ...id, errorReason: 'Failed' }).catch(() => undefined);
    }
  }

  private documentCut(): void {
    this.stopWith({ reason: 'too_large', detail: `the byte budget (maxPageBytes ${this.o.maxPageBytes}) ran out while the document was loading` });
  }

  /** The page's byte budget is spent: later requests are refused, loading stops. */
  private budgetSpent(): void {
    if (this.overBudget) return;
    this.overBudget = true;
    // Whether the main document was cut off too is told by its own end (loadingFailed: too_large;
    // loadingFinished: complete, the page is extracted as truncated). Deciding from the requests in
    // flight here raced with DevTools events still on their way for a document already complete.
    // The proxy cuts every origin connection and refuses new ones (it may have called us).
    this.proxy?.spendBudget();
    if (this.sessionId) this.send('Page.stopLoading').catch(() => undefined);
  }

  /**
   * Resolves when no request has been in flight for `quietMs` (default `idleQuietMs`), counted from
   * the later of the last network event and `since`, or after `bound` ms (false).
   * Event-driven: it sleeps until the quiet window would end, or until the next network event.
   */
  private async waitForNetworkIdle(bound: number, since = 0, quietMs = this.o.idleQuietMs): Promise<boolean> {
    const end = Date.now() + Math.max(0, bound);
    for (;;) {
      if (this.stopped) return false;
      const now = Date.now();
      const quietAt = Math.max(this.lastNetworkChange, since) + quietMs;
      if (this.inflight.size === 0 && now >= quietAt) return true;
      if (now >= end) return false;
      const until = this.inflight.size === 0 ? Math.min(quietAt, end) : end;
      await this.networkChanged.sleep(Math.max(1, until - now));
    }
  }

  // -- outcomes --------------------------------------------------------------------------------

  /** Failures visible on the main document's response: proxy refusals, HTTP errors, other content types. */
  private checkMainResponse(response: MainResponse | null): Stop | null {
    if (!response) return { reason: 'network_error', detail: 'the navigation produced no response' };
    const headers = response.headers;
    const blockedRange = headers['x-mella-blocked'];
    if (blockedRange) return { reason: 'ssrf_blocked', detail: `${truncate(response.url)} is not a public address (${blockedRange})` };
    const proxyError = headers['x-mella-proxy-error'];
    if (proxyError) {
      return { reason: proxyError === 'dns_error' ? 'dns_error' : 'network_error', detail: `${truncate(response.url)}: ${proxyError}` };
    }
    const status = response.status;
    if (status >= 400) {
      const stop: Stop = { reason: `http_${status}`, detail: `the server answered ${status} ${response.statusText}`.trim() };
      const retryAfterMs = status === 429 || status === 503 ? parseRetryAfter(headers['retry-after']) : undefined;
      if (retryAfterMs !== undefined) stop.retryAfterMs = retryAfterMs;
      return stop;
    }
    const type = (headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== '' && !HTML_TYPES.has(type)) return { reason: 'not_html', detail: `Content-Type ${type}` };
    return null;
  }

  /** No DOMContentLoaded in time: names what was still loading. */
  private navigationTimeout(): Stop {
    if (this.stopped) return this.stopped;
    const pending = [...this.inflight.values()].slice(0, 3).map((u) => truncate(u, 120));
    const waiting = pending.length > 0 ? `; still loading: ${pending.join(', ')}${this.inflight.size > 3 ? ` (+${this.inflight.size - 3})` : ''}` : '';
    return { reason: 'navigation_timeout', detail: `no DOMContentLoaded within ${Math.min(this.o.navigationTimeoutMs, this.o.maxTimeMs)} ms${waiting}` };
  }

  /** A navigation Chromium ended without a document (`errorText`, e.g. `net::ERR_ABORTED`): download, budget, a refused or failed hop. */
  private navigationFailure(errorText: string): Stop {
    if (this.stopped) return this.stopped;
    if (this.overBudget) return { reason: 'too_large', detail: `the byte budget (maxPageBytes ${this.o.maxPageBytes}) ran out while the document was loading` };
    if (this.downloadStarted) return { reason: 'download', detail: 'the navigation started a download (downloads are refused)' };
    const refusal = this.proxyRefusalFor(this.navigations);
    if (refusal) return refusal;
    const routeBlock = this.blocked.find((b) => this.navigations.includes(b.url));
    if (routeBlock) {
      return { reason: routeBlock.reason === 'unsupported_scheme' ? 'unsupported_scheme' : 'network_error', detail: `navigation refused: ${routeBlock.reason}` };
    }
    return { reason: 'network_error', detail: `${errorText || 'the navigation ended without a document'} at ${truncate(this.navigations[this.navigations.length - 1] ?? this.url)}` };
  }

  /** The main frame's last navigation failed after the first document loaded (a script navigation). */
  private lateNavigationFailure(): Stop | null {
    const last = this.navigations[this.navigations.length - 1];
    if (!last) return null;
    if (this.lastMainResponse && this.lastMainResponse.url === last) return null;
    const failed = this.failedRequests.find((f) => f.url === last);
    if (!failed) return null;
    return this.proxyRefusalFor([last]) ?? { reason: 'network_error', detail: `a script navigation to ${truncate(last)} failed: ${failed.error}` };
  }

  /** The proxy's refusal of one of these URLs' host:port, as a render failure. */
  private proxyRefusalFor(urls: string[]): Stop | null {
    const events = this.proxy?.events ?? [];
    for (let i = urls.length - 1; i >= 0; i--) {
      const hp = hostPortOf(urls[i]!);
      if (!hp) continue;
      const ev = events.find((e) => e.hostPort === hp);
      if (!ev) continue;
      if (ev.reason === 'private_address') return { reason: 'ssrf_blocked', detail: `${truncate(urls[i]!)}: ${ev.detail}` };
      if (ev.reason === 'dns_error') return { reason: 'dns_error', detail: ev.detail };
      return { reason: 'network_error', detail: `${ev.reason}: ${ev.detail}` };
    }
    return null;
  }

  /** Refusals of the offline aid and of Chromium (media), plus the proxy's, matched to the requests they failed where possible. */
  private collectBlocked(): BlockedRequest[] {
    const out = [...this.blocked];
    const events: ProxyEvent[] = (this.proxy?.events ?? []).filter((e) => e.reason === 'private_address' || e.reason === 'bad_request' || e.reason === 'budget');
    for (const ev of events) {
      const reason: BlockReason = ev.reason === 'private_address' ? 'private_address' : ev.reason === 'budget' ? 'page_budget' : 'proxy_refused';
      if (ev.kind === 'http') {
        out.push({ url: ev.target, reason, detail: ev.detail });
        continue;
      }
      const matched = this.failedRequests.filter((f) => hostPortOf(f.url) === ev.hostPort && /TUNNEL|PROXY/i.test(f.error));
      if (matched.length === 0) out.push({ url: ev.target, reason, detail: `${ev.detail} (CONNECT tunnel)` });
      for (const f of matched) if (!out.some((b) => b.url === f.url)) out.push({ url: truncate(f.url), reason, detail: ev.detail });
    }
    if (this.blockedOverflow > 0) out.push({ url: '', reason: 'page_budget', detail: `${this.blockedOverflow} more refusals not listed` });
    return out.slice(0, MAX_BLOCKED + 1);
  }
}

// ---------------------------------------------------------------------------------------------------
// helpers

/** The main document's response, as the checks need it (header names lower-cased). */
interface MainResponse {
  url: string;
  status: number;
  statusText: string;
  headers: Record<string, string>;
}

/** Playwright's `serviceWorkers: 'block'`, as an init script: a registration resolves and does nothing. */
const SERVICE_WORKER_BLOCK_SCRIPT = 'if (self.navigator && navigator.serviceWorker) navigator.serviceWorker.register = async () => {};';

/** Request headers that describe one hop, not the request; not forwarded by `fetchOffline`. */
const HOP_HEADERS = new Set(['host', 'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer']);

/**
 * TEST AID: the page's request, sent to `url` instead (one hop, no redirect followed), with its body
 * read whole (at most `maxBytes`) and its headers as they came (the body is not decoded: Chromium
 * decodes it by its Content-Encoding).
 */
function fetchOffline(url: string, request: Protocol.Network.Request, timeoutMs: number, maxBytes: number): Promise<{ status: number; headers: Array<{ name: string; value: string }>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(request.headers)) if (!HOP_HEADERS.has(k.toLowerCase())) headers[k] = v;
    const get = url.startsWith('https:') ? https.request : http.request;
    const req = get(url, { method: request.method, headers, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (d: Buffer) => {
        n += d.length;
        if (n > maxBytes) req.destroy(new Error(`over ${maxBytes} bytes`));
        else chunks.push(d);
      });
      res.on('end', () => {
        const out: Array<{ name: string; value: string }> = [];
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) {
          const name = res.rawHeaders[i]!;
          if (!HOP_HEADERS.has(name.toLowerCase())) out.push({ name, value: res.rawHeaders[i + 1]! });
        }
        resolve({ status: res.statusCode ?? 502, headers: out, body: Buffer.concat(chunks) });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(request.postData);
  });
}

/**
 * Media by URL (`Network.setBlockedURLs`): what `<video>`, `<audio>` and `<source>` load. Chromium
 * checks these patterns itself; a request refused this way is listed in `blocked` as `media`.
 */
export const MEDIA_URL_PATTERNS: string[] = ['mp4', 'm4v', 'webm', 'ogv', 'ogg', 'oga', 'opus', 'mp3', 'm4a', 'aac', 'wav', 'flac', 'mov', 'mkv', '3gp'].flatMap(
  (ext) => [`*.${ext}`, `*.${ext}?*`, `*.${ext.toUpperCase()}`, `*.${ext.toUpperCase()}?*`],
);

/** TEST AID: the local URL for `u` under `offlineOrigins`, or null. */
export function mapOfflineOrigin(u: URL, map: Record<string, string>): string | null {
  const exact = map[u.origin];
  if (exact !== undefined) return `${exact.replace(/\/+$/, '')}${u.pathname}${u.search}`;
  const any = map['*'];
  if (any === undefined) return null;
  // never remap the local bases themselves
  for (const base of Object.values(map)) {
    try {
      if (new URL(base).origin === u.origin) return null;
    } catch {
      // ignore a bad base here; fetching it fails later
    }
  }
  return `${any.replace(/\/+$/, '')}/${u.host}${u.pathname}${u.search}`;
}

/** Null when the host (name or IP) may be connected to, else why not. */
async function checkHost(guard: AddressGuard, host: string): Promise<string | null> {
  if (net.isIP(host)) {
    const range = guard.blockedRange(host);
    return range === null ? null : `${host} is not a public address (${range})`;
  }
  try {
    const addresses = await dns.promises.lookup(host, { all: true });
    for (const a of addresses) {
      const range = guard.blockedRange(a.address);
      if (range !== null) return `${host} resolves to ${a.address} (${range})`;
    }
    return null;
  } catch (err) {
    return `${host}: ${(err as NodeJS.ErrnoException).code ?? 'lookup failed'}`;
  }
}

function hostPortOf(url: string): string | null {
  try {
    const u = new URL(url);
    const port = u.port !== '' ? Number(u.port) : u.protocol === 'https:' || u.protocol === 'wss:' ? 443 : 80;
    return joinHostPort(u.hostname.replace(/^\[|\]$/g, ''), port);
  } catch {
    return null;
  }
}

function headerValue(headers: Record<string, unknown>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return String(v);
  return undefined;
}

function pickHeaders(h: Record<string, string>): RenderSuccess['headers'] {
  const out: RenderSuccess['headers'] = {};
  if (h['etag']) out.etag = h['etag'];
  if (h['last-modified']) out.lastModified = h['last-modified'];
  if (h['content-language']) out.contentLanguage = h['content-language'];
  if (h['content-type']) out.contentType = h['content-type'];
  return out;
}

function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise<T>((resolve) => {
    const timer = setTimeout(() => resolve(fallback), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      () => {
        clearTimeout(timer);
        resolve(fallback);
      },
    );
  });
}

function firstLine(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  return truncate(text.split('\n')[0] ?? '');
}

function truncate(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
