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

const SCROLL_FUNCTION = `async (args) => {
  const height = () => Math.max(document.documentElement ? document.documentElement.scrollHeight : 0,
    document.body ? document.body.scrollHeight : 0);
  // until the next rendering frame is done (its intersection observers updated): a rAF callback
  // runs before that frame's observer step, a task queued from it runs after. 50 ms at most, for
  // a page that produces no frames.
  const frame = () => new Promise((resolve) => {
    let done = false;
    const finish = () => { if (!done) { done = true; resolve(); } };
    requestAnimationFrame(() => setTimeout(finish, 0));
    setTimeout(finish, 50);
  });
  let y = Math.round(window.scrollY);
  let frames = 0;
  for (let i = 1; i <= args.steps; i++) {
    const target = Math.ceil((height() * i) / args.steps);
    // never jump more than a viewport at once, so that every region of the page is on screen in
    // some frame and intersection observers (lazy loaders) see it
    while (y < target && frames < args.maxFrames) {
      y = Math.min(target, y + Math.max(100, window.innerHeight));
      window.scrollTo(0, y);
      await frame();
      frames++;
    }
    await new Promise((resolve) => setTimeout(resolve, args.stepMs));
  }
  return { height: height(), y: Math.round(window.scrollY), frames };
}`;

/**
 * Scrolls to the bottom in `steps` steps (the height is re-measured at each, so a page that grows
 * as it loads is followed), moving at most one viewport per rendering frame within a step, and
 * waiting `stepMs` after each step. At most `maxFrames` viewport moves in all (an endless page).
 */
export function scrollExpression(steps: number, stepMs: number, maxFrames = 400): string {
  return `(${SCROLL_FUNCTION})(${JSON.stringify({ steps, stepMs, maxFrames })})`;
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
