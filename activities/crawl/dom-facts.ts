/**
 * What the live DOM knows about a rendered page and its images, read in one `page.evaluate` (the
 * scripts are strings: the project compiles without the DOM library), and the per-image facts keyed
 * by URL on the Node side, so that an `extractImages` record finds its element's live facts.
 */
import { parseSrcset } from './extract-images';

/** Live facts of one `<img>` element after scrolling and settling. */
export interface ImageDomFacts {
  /** The URL the browser chose (`img.currentSrc`): for a srcset, the candidate for this viewport and density. */
  currentSrc: string | null;
  /**
   * `img.naturalWidth/Height`: 0 when nothing loaded (yet), or the load failed or was blocked. For a
   * srcset candidate chosen by a `w` descriptor, the HTML standard divides the file's pixel size by
   * the candidate's density (`320w` at `sizes="300px"` reports about 300), so this is not always the
   * file's pixel size; the ingest stage measures the bytes it downloads.
   */
  naturalWidth: number;
  naturalHeight: number;
  /** Rendered size in CSS pixels (bounding box); 0 for a hidden image. */
  displayedWidth: number;
  displayedHeight: number;
  /** `img.complete`: loading finished (successfully or not). */
  complete: boolean;
}

/** What the in-page script returns. */
export interface RawPageFacts {
  url: string;
  baseURI: string;
  contentType: string;
  characterSet: string;
  /** `<!DOCTYPE name>` when the document has one, else ''. */
  doctype: string;
  /** Length of `document.documentElement.outerHTML` in UTF-16 code units. */
  htmlChars: number;
  /** The serialized DOM; null when it was longer than the limit. */
  html: string | null;
  images: RawImage[];
  /** `<img>` elements beyond the per-page cap, not read. */
  imagesOmitted: number;
}

export interface RawImage {
  src: string | null;
  srcset: string | null;
  /** `data-src`, `data-lazy-src`, `data-original` values. */
  lazySrc: Array<string | null>;
  /** `data-srcset`, `data-lazy-srcset` values. */
  lazySrcset: Array<string | null>;
  /** `srcset` and `data-srcset` of the `<source>` siblings in a `<picture>`. */
  sources: Array<string | null>;
  currentSrc: string;
  naturalWidth: number;
  naturalHeight: number;
  displayedWidth: number;
  displayedHeight: number;
  complete: boolean;
}

/** At most this many `<img>` elements are read per page. */
export const MAX_DOM_IMAGES = 5_000;

const FACTS_FUNCTION = `(args) => {
  const root = document.documentElement;
  const html = root ? root.outerHTML : '';
  const out = { url: location.href, baseURI: document.baseURI, contentType: document.contentType,
    characterSet: document.characterSet, doctype: document.doctype ? '<!DOCTYPE ' + document.doctype.name + '>' : '',
    htmlChars: html.length, html: null, images: [], imagesOmitted: 0 };
  if (html.length > args.maxChars) return out;
  out.html = html;
  const imgs = document.images;
  const n = Math.min(imgs.length, args.maxImages);
  out.imagesOmitted = imgs.length - n;
  for (let i = 0; i < n; i++) {
    const img = imgs[i];
    const r = img.getBoundingClientRect();
    const sources = [];
    const parent = img.parentElement;
    if (parent && parent.tagName === 'PICTURE') {
      for (const s of parent.children) {
        if (s.tagName === 'SOURCE') sources.push(s.getAttribute('srcset'), s.getAttribute('data-srcset'));
      }
    }
    out.images.push({
      src: img.getAttribute('src'),
      srcset: img.getAttribute('srcset'),
      lazySrc: [img.getAttribute('data-src'), img.getAttribute('data-lazy-src'), img.getAttribute('data-original')],
      lazySrcset: [img.getAttribute('data-srcset'), img.getAttribute('data-lazy-srcset')],
      sources,
      currentSrc: img.currentSrc || '',
      naturalWidth: img.naturalWidth,
      naturalHeight: img.naturalHeight,
      displayedWidth: Math.round(r.width),
      displayedHeight: Math.round(r.height),
      complete: img.complete,
    });
  }
  return out;
}`;

/** The expression `page.evaluate` runs to read the page (outerHTML and every `<img>`). */
export function factsExpression(maxChars: number, maxImages = MAX_DOM_IMAGES): string {
  return `(${FACTS_FUNCTION})(${JSON.stringify({ maxChars, maxImages })})`;
}

/**
 * Installed in every document before its scripts run (`addInitScript`): counts what could load
 * content in response to scrolling, so that a page where nothing can is not scrolled. Counted:
 * `IntersectionObserver.prototype.observe` calls, and `addEventListener` registrations of
 * `scroll`, `scrollend`, `wheel`, `mousewheel` and `touchmove` on any target (only the first two
 * fire on a programmatic scroll, and only on the document and window; the rest is caution). The
 * wrappers are Proxies of the native functions, so the page sees native functions
 * (`Function.prototype.toString` of a Proxy reads `[native code]`). The count is read through a
 * non-writable, non-configurable function on `window`; a page that breaks it gets scrolled.
 */
export const SCROLL_LISTENERS_INIT_SCRIPT = `(() => {
  if (Object.prototype.hasOwnProperty.call(window, '__mellaScrollListeners')) return;
  let count = 0;
  const types = new Set(['scroll', 'scrollend', 'wheel', 'mousewheel', 'touchmove']);
  try {
    const add = EventTarget.prototype.addEventListener;
    EventTarget.prototype.addEventListener = new Proxy(add, { apply(target, self, args) {
      if (typeof args[0] === 'string' && types.has(args[0].toLowerCase()) && typeof args[1] !== 'undefined' && args[1] !== null) count++;
      return Reflect.apply(target, self, args);
    } });
    if (typeof IntersectionObserver === 'function') {
      const observe = IntersectionObserver.prototype.observe;
      IntersectionObserver.prototype.observe = new Proxy(observe, { apply(target, self, args) {
        count++;
        return Reflect.apply(target, self, args);
      } });
    }
  } catch (e) {
    count = -1; // not installed: read as "something may listen"
  }
  Object.defineProperty(window, '__mellaScrollListeners', { value: () => count, enumerable: false, writable: false, configurable: false });
})();`;

/**
 * Why a scroll could load something on this page, or null when nothing can (in-page, a function of
 * the document): a counted listener or observer (SCROLL_LISTENERS_INIT_SCRIPT), an `onscroll`
 * handler (property or attribute; `<body onscroll>` is the window's), a native `loading=lazy` image
 * or frame, any frame (its own loaders are not counted here), or a missing or broken counter.
 */
const SCROLL_REASON_FUNCTION = `() => {
  let n;
  try { n = window.__mellaScrollListeners(); } catch (e) { return 'no_counter'; }
  if (typeof n !== 'number' || n !== 0) return n > 0 ? 'listeners' : 'no_counter';
  if (window.onscroll || document.onscroll || document.onwheel || window.onwheel) return 'onscroll';
  if (document.querySelector('[onscroll], [onwheel]')) return 'onscroll';
  if (document.querySelector('img[loading="lazy" i], iframe[loading="lazy" i]')) return 'native_lazy';
  if (document.querySelector('iframe, frame')) return 'frames';
  return null;
}`;

/**
 * Whether anything on the page could still change it once loaded (in-page): a script element, an
 * inline event handler (`on...` attribute), a meta refresh, SVG animation elements, or a document
 * still loading. Without any of those nothing runs after the load event, so nothing is waited for.
 */
const CHANGEABLE_FUNCTION = `() => {
  if (document.readyState !== 'complete') return true;
  if (document.querySelector('script, meta[http-equiv="refresh" i], animate, set, animateMotion, animateTransform')) return true;
  for (const el of document.getElementsByTagName('*')) {
    for (const a of el.attributes) if (a.name.length > 2 && a.name.charCodeAt(0) === 111 && a.name.charCodeAt(1) === 110) return true; // on...
  }
  return false;
}`;

/**
 * The look at a loaded page that decides what the renderer still does (in-page). It first waits for
 * the load event, at most `args.loadWaitMs` (0: not at all), in the page itself: one DevTools round
 * trip less than waiting for it in Node and then asking. Then: `listened` when
 * something could respond to scrolling; else `changeable` when the page could still change and
 * `args.final` is not set; else the page facts (FACTS_FUNCTION), in the same call.
 */
const SETTLE_PROBE_FUNCTION = `async (args) => {
  const waitStart = performance.now();
  if (args.loadWaitMs > 0 && document.readyState !== 'complete') {
    await new Promise((resolve) => {
      const timer = setTimeout(resolve, args.loadWaitMs);
      window.addEventListener('load', () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }
  const loadWaitedMs = Math.round(performance.now() - waitStart);
  if ((${SCROLL_REASON_FUNCTION})() !== null) return { kind: 'listened', loadWaitedMs };
  if (!args.final && (${CHANGEABLE_FUNCTION})()) return { kind: 'changeable', loadWaitedMs };
  return { kind: 'facts', facts: (${FACTS_FUNCTION})(args), loadWaitedMs };
}`;

/** What the settle probe returns; `loadWaitedMs`: how long it waited for the load event. */
export type SettleProbe = ({ kind: 'listened' } | { kind: 'changeable' } | { kind: 'facts'; facts: RawPageFacts }) & { loadWaitedMs: number };

/**
 * The settle probe (SETTLE_PROBE_FUNCTION) for a page prepared with SCROLL_LISTENERS_INIT_SCRIPT:
 * `final` reads the facts of a page nothing listens on even when it could still change (after its
 * quiet window); `loadWaitMs` bounds its wait for the load event (0: none).
 */
export function settleProbeExpression(maxChars: number, final: boolean, loadWaitMs = 0, maxImages = MAX_DOM_IMAGES): string {
  return `(${SETTLE_PROBE_FUNCTION})(${JSON.stringify({ maxChars, maxImages, final, loadWaitMs })})`;
}

const SCROLL_FUNCTION = `async (args) => {
  const height = () => Math.max(document.documentElement ? document.documentElement.scrollHeight : 0,
    document.body ? document.body.scrollHeight : 0);
  // until the next rendering frame is done (its intersection observers updated): a rAF callback
  // runs before that frame's observer step, a task queued from it runs after. 250 ms at most, for
  // a page that produces no frames (a busy machine can take well over 50 ms for a frame; moving on
  // before it is drawn would skip the region for intersection observers).
  const frame = () => new Promise((resolve) => {
    let done = false;
    const finish = () => { if (!done) { done = true; resolve(); } };
    requestAnimationFrame(() => setTimeout(finish, 0));
    setTimeout(finish, 250);
  });
  const view = Math.max(100, window.innerHeight);
  let y = Math.round(window.scrollY);
  let frames = 0;
  let stops = 0;
  // The height is re-measured at every stop, so a page that grows as it loads is followed. A
  // document no taller than the viewport is not scrolled at all: every element was on screen.
  while (stops < args.steps && frames < args.maxFrames) {
    const bottom = Math.max(0, height() - view);
    if (y >= bottom) break;
    // the stops left: as few as keep consecutive stops at most 1.25 viewports apart. The strip
    // between two stops' views (a quarter viewport at most) is within the look-ahead of
    // scroll-driven lazy loaders (lazysizes 370-500 px, native loading=lazy 1,250 px or more), and
    // intersection observers see it in the frames on the way
    const left = Math.min(args.steps - stops, Math.ceil((bottom - y) / Math.round(view * 1.25)));
    const target = Math.min(bottom, y + Math.ceil((bottom - y) / left));
    // never jump more than a viewport at once, so that every region of the page is on screen in
    // some frame and intersection observers (lazy loaders) see it
    const from = y;
    while (y < target && frames < args.maxFrames) {
      const want = Math.min(target, y + view);
      window.scrollTo(0, want);
      await frame();
      frames++;
      const now = Math.round(window.scrollY);
      // the page shrank as images loaded (the height is re-measured at the next stop), or it does
      // not scroll at all
      if (now <= y) break;
      y = now;
    }
    stops++;
    if (y <= from) break; // no progress: scrolling is locked
    // the last stop: at the bottom, or out of stops (the caller's quiet window may be its dwell)
    const last = stops >= args.steps || y >= Math.max(0, height() - view);
    // a dwell at the stop, for loaders driven by throttled scroll handlers and timers
    if (!last || args.dwellAtLastStop) await new Promise((resolve) => setTimeout(resolve, args.stepMs));
  }
  return { height: height(), y: Math.round(window.scrollY), frames, stops };
}`;

/**
 * Scrolls to the bottom with at most `steps` stops, and no more than keep consecutive stops 1.25
 * viewports apart (a document no taller than the viewport is not scrolled). Between stops it moves at most one
 * viewport per rendering frame; at each stop it waits `stepMs`. The height is re-measured at each
 * stop, so a page that grows as it loads is followed. At most `maxFrames` viewport moves in all
 * (an endless page). `dwellAtLastStop: false` leaves the last stop's dwell to the caller (the
 * renderer waits for a quiet window after the scroll instead).
 */
export function scrollExpression(steps: number, stepMs: number, options: { maxFrames?: number; dwellAtLastStop?: boolean } = {}): string {
  const { maxFrames = 400, dwellAtLastStop = true } = options;
  return `(${SCROLL_FUNCTION})(${JSON.stringify({ steps, stepMs, maxFrames, dwellAtLastStop })})`;
}

/**
 * Keys every image's live facts by each URL its element offers (`currentSrc`, `src`, every srcset
 * candidate, the lazy attributes, the `<picture>` sources), resolved against the document's base URL
 * without fragment, http(s) only. `extractImages` picks one of these URLs for the element (the
 * largest candidate), so `dom[image.url]` finds the element's facts whichever candidate the browser
 * chose. When two elements offer the same URL, the first element in document order wins, as in
 * extraction's deduplication.
 */
export function keyDomFacts(raw: RawPageFacts): Record<string, ImageDomFacts> {
  const out: Record<string, ImageDomFacts> = {};
  const resolve = (value: string | null | undefined): string | null => {
    if (!value) return null;
    const v = value.trim();
    if (v === '' || /^(data|blob|javascript):/i.test(v)) return null;
    try {
      const u = new URL(v, raw.baseURI);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return null;
      u.hash = '';
      return u.href;
    } catch {
      return null;
    }
  };
  for (const img of raw.images) {
    const urls: string[] = [];
    const add = (v: string | null | undefined) => {
      const u = resolve(v);
      if (u !== null && !urls.includes(u)) urls.push(u);
    };
    const addSet = (v: string | null) => {
      if (v) for (const c of parseSrcset(v)) add(c.url);
    };
    add(img.currentSrc);
    add(img.src);
    addSet(img.srcset);
    for (const v of img.lazySrc) add(v);
    for (const v of img.lazySrcset) addSet(v);
    for (const v of img.sources) addSet(v);
    const facts: ImageDomFacts = {
      currentSrc: img.currentSrc === '' ? null : img.currentSrc,
      naturalWidth: img.naturalWidth,
      naturalHeight: img.naturalHeight,
      displayedWidth: img.displayedWidth,
      displayedHeight: img.displayedHeight,
      complete: img.complete,
    };
    for (const u of urls) if (!Object.prototype.hasOwnProperty.call(out, u)) out[u] = facts;
  }
  return out;
}
