/**
 * Page facts, frontier links and image records from one HTML document (a WARC record or a saved
 * page), without a browser: cheerio with parse5 (the HTML standard's tree construction). Pure: a
 * string in, a plain JSON-serialisable `PageExtraction` out. The rules are listed in docs/crawl.md
 * ("Extraction"); the comments below say where each one is applied.
 *
 * `<noscript>` content is parsed as markup (scripting disabled), since lazy-loading sites often put the
 * real `<img>` there; such images carry `inNoscript: true` and usually collapse into the lazy copy
 * through URL deduplication.
 */
import { load } from 'cheerio';
import type { AnyNode, Element } from 'domhandler';
import { normalizeUrl } from './url-normalize';

// ---------------------------------------------------------------------------------------------------
// Types (all plain data)

export type LangSource = 'html-lang' | 'xml-lang' | 'meta-content-language' | 'http-content-language';

export interface PageRobots {
  /** Lower-cased directives of `<meta name="robots">` and of `<meta name="<our token>">`. */
  directives: string[];
  noindex: boolean;
  nofollow: boolean;
  noimageindex: boolean;
}

export interface PageFacts {
  /** The document URL as given (WHATWG-serialised, fragment dropped). */
  url: string;
  /** The URL relative references resolve against: the first valid http(s) `<base href>`, else `url`. */
  baseUrl: string;
  /** The raw `<base href>` when it was used. */
  baseHref: string | null;
  /** The declared language as written (`th`, `sr-Latn`, `bs-BA`), trimmed; null when none is declared. */
  lang: string | null;
  langSource: LangSource | null;
  /** `<title>` text, whitespace collapsed. */
  title: string | null;
  /** `<meta property="og:site_name">`. */
  siteName: string | null;
  /** `<link rel="canonical">`, resolved against the base URL. */
  canonical: string | null;
  robots: PageRobots;
}

export interface PageLink {
  /** Normalized (url-normalize.ts), http(s) only. */
  url: string;
  /** `rel` contains `nofollow` on every occurrence of this URL, or the page's meta robots says nofollow. */
  nofollow: boolean;
}

/** Which attribute the chosen image URL came from. */
export type ImageSource =
  | 'src'
  | 'srcset'
  | 'data-src'
  | 'data-lazy-src'
  | 'data-original'
  | 'data-srcset'
  | 'data-lazy-srcset'
  | 'picture-source';

export type ContextSource = 'figcaption' | 'caption-element' | 'enclosing-text' | 'next-sibling' | 'previous-sibling';

export interface ImageContext {
  /** Whitespace collapsed, at most `maxContextChars` (a longer text is cut at a word boundary and ends with `…`). */
  text: string;
  source: ContextSource;
}

export interface PageImage {
  /** Absolute URL (resolved against the base URL, fragment dropped; query kept as written). */
  url: string;
  /** Position among the page's image elements (`<img>`, `<input type=image>`) in document order, from 0. */
  index: number;
  element: 'img' | 'input';
  source: ImageSource;
  /** The srcset descriptor of the chosen candidate (`1200w`, `2x`); null for a plain `src`-style URL. */
  descriptor: string | null;
  /** The URL came from a lazy-loading attribute (`data-*`). */
  lazy: boolean;
  inPicture: boolean;
  inNoscript: boolean;
  /** The `alt` attribute as the author wrote it (entities decoded by the parser, not trimmed); null when absent, '' when empty. */
  alt: string | null;
  title: string | null;
  /** Declared `width`/`height` attributes in CSS pixels; null when absent or not a plain number (`100%`). */
  width: number | null;
  height: number | null;
  context: ImageContext | null;
  /** `href` of the enclosing `<a>`, resolved; null when the image is not a link. */
  linkUrl: string | null;
  /** Later elements on this page that resolved to the same URL (they are not listed). */
  duplicates: number;
}

export type ImageSkipReason = 'data_url' | 'no_src' | 'invalid_url' | 'unsupported_scheme';

export interface SkippedImage {
  index: number;
  element: 'img' | 'input';
  reason: ImageSkipReason;
  alt: string | null;
  /** The offending value, first 100 characters (null for `no_src`). */
  value: string | null;
}

export interface ExtractionCounts {
  /** `<img>` and `<input type=image>` elements seen. */
  imageElements: number;
  /** Distinct image URLs kept (= `images.length`). */
  images: number;
  /** Elements dropped as repeats of an earlier URL. */
  duplicates: number;
  skipped: Partial<Record<ImageSkipReason, number>>;
  /** Of the kept images: alt attribute absent / present but empty (or only whitespace) / with text. */
  altMissing: number;
  altEmpty: number;
  altText: number;
  withContext: number;
  links: number;
  linksSkipped: Partial<Record<'invalid_url' | 'unsupported_scheme' | 'empty_url' | 'self' | 'limit', number>>;
}

export interface PageExtraction {
  page: PageFacts;
  images: PageImage[];
  skipped: SkippedImage[];
  links: PageLink[];
  counts: ExtractionCounts;
}

export interface ExtractOptions {
  /** Context text limit in characters (default 300). */
  maxContextChars?: number;
  /** `<meta name=...>` robots names honoured besides `robots` (default `['mellabot']`; compared lower-cased). */
  robotsNames?: readonly string[];
  /** The HTTP `Content-Language` header, used when the document declares no language. */
  httpContentLanguage?: string | null;
  /** Include `<input type=image>` (default true). */
  includeInputImages?: boolean;
  /** At most this many links (default 10,000; the rest are counted as `limit`). */
  maxLinks?: number;
}

/** `<source type>` values whose images the ingest stage can decode; other typed sources are not chosen. */
export const SUPPORTED_SOURCE_TYPES: readonly string[] = [
  'image/jpeg', 'image/jpg', 'image/pjpeg', 'image/png', 'image/apng', 'image/gif', 'image/webp', 'image/avif', 'image/tiff',
];

/** Lazy-loading URL attributes, in the order they are tried; any of them beats `src` (which is then a placeholder). */
export const LAZY_SRC_ATTRIBUTES = ['data-src', 'data-lazy-src', 'data-original'] as const;
/** Lazy srcset attributes; any of them beats `srcset`. */
export const LAZY_SRCSET_ATTRIBUTES = ['data-srcset', 'data-lazy-srcset'] as const;

// ---------------------------------------------------------------------------------------------------
// srcset

export interface SrcsetCandidate {
  url: string;
  /** Width descriptor (`800w`). */
  w?: number;
  /** Pixel density descriptor (`2x`); a candidate without descriptor is 1x. */
  x?: number;
  /** The descriptor as written, or null. */
  descriptor: string | null;
}

/**
 * Parse a `srcset` value the way the HTML standard's algorithm does: URLs may contain commas
 * (`.../w_300,h_200/a.jpg 300w`), a URL followed directly by commas ends its candidate, descriptors run
 * to the next comma outside parentheses; a candidate with an invalid or conflicting descriptor is dropped.
 */
export function parseSrcset(input: string): SrcsetCandidate[] {
  const out: SrcsetCandidate[] = [];
  const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\n' || c === '\r' || c === '\f';
  let pos = 0;
  const n = input.length;
  while (pos < n) {
    while (pos < n && (isSpace(input[pos]) || input[pos] === ',')) pos++;
    if (pos >= n) break;
    const start = pos;
    while (pos < n && !isSpace(input[pos])) pos++;
    let url = input.slice(start, pos);
    const descriptors: string[] = [];
    if (url.endsWith(',')) {
      url = url.replace(/,+$/, '');
    } else {
      // Descriptor tokenizer: split on whitespace, stop at a comma outside parentheses.
      let token = '';
      let inParens = false;
      for (; pos < n; pos++) {
        const c = input[pos]!;
        if (inParens) {
          token += c;
          if (c === ')') inParens = false;
          continue;
        }
        if (c === ',') {
          pos++;
          break;
        }
        if (isSpace(c)) {
          if (token !== '') descriptors.push(token);
          token = '';
          continue;
        }
        if (c === '(') inParens = true;
        token += c;
      }
      if (token !== '') descriptors.push(token);
    }
    if (url === '') continue;
    const cand: SrcsetCandidate = { url, descriptor: descriptors.length ? descriptors.join(' ') : null };
    let bad = false;
    for (const d of descriptors) {
      const last = d.slice(-1).toLowerCase();
      const num = d.slice(0, -1);
      if (last === 'w' && /^\d+$/.test(num) && cand.w === undefined && cand.x === undefined) {
        cand.w = Number(num);
        if (cand.w <= 0) bad = true;
      } else if (last === 'x' && /^\d*\.?\d+(e[+-]?\d+)?$/i.test(num) && cand.x === undefined && cand.w === undefined) {
        cand.x = Number(num);
        if (!(cand.x > 0)) bad = true;
      } else if (last === 'h' && /^\d+$/.test(num)) {
        // future-compat height descriptor: ignored
      } else {
        bad = true;
      }
    }
    if (!bad) out.push(cand);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// DOM helpers (domhandler nodes)

const SKIP_TEXT = new Set(['script', 'style', 'noscript', 'template', 'svg', 'math', 'iframe', 'object', 'select', 'button']);

function isElement(node: AnyNode | null | undefined): node is Element {
  return !!node && (node.type === 'tag' || node.type === 'script' || node.type === 'style');
}

/** Collapsed text of a node, collecting at most about `budget` characters (then stops). */
function textOf(node: AnyNode, budget = Infinity): string {
  const parts: string[] = [];
  let size = 0;
  const walk = (n: AnyNode): boolean => {
    if (n.type === 'text') {
      const t = (n as unknown as { data: string }).data;
      parts.push(t);
      size += t.length;
      return size <= budget * 2 + 64;
    }
    if (isElement(n)) {
      if (SKIP_TEXT.has(n.name)) return true;
      // Block-ish elements separate words (<p>a</p><p>b</p> is "a b", not "ab").
      parts.push(' ');
      for (const c of n.children) if (!walk(c)) return false;
      parts.push(' ');
    }
    return true;
  };
  walk(node);
  return collapse(parts.join(''));
}

function hasText(node: AnyNode): boolean {
  if (node.type === 'text') return /\S/.test((node as unknown as { data: string }).data);
  if (isElement(node)) {
    if (SKIP_TEXT.has(node.name)) return false;
    return node.children.some(hasText);
  }
  return false;
}

function collapse(s: string): string {
  return s.replace(/[\s\u00a0\u200b]+/g, ' ').trim();
}

/** Cut to at most `max` characters (code points), at a word boundary when one is near, with `…`. */
export function limitText(text: string, max: number): string {
  const cps = Array.from(text);
  if (cps.length <= max) return text;
  let cut = cps.slice(0, max - 1).join('');
  const sp = cut.lastIndexOf(' ');
  if (sp >= max * 0.6) cut = cut.slice(0, sp);
  return `${cut.trimEnd()}…`;
}

function attr(el: Element, name: string): string | undefined {
  return el.attribs[name];
}

function ancestors(el: AnyNode): Element[] {
  const out: Element[] = [];
  for (let p = el.parent; p; p = p.parent) if (isElement(p)) out.push(p);
  return out;
}

const CAPTION_LIKE = /caption/i;
function isCaptionLike(el: Element): boolean {
  return CAPTION_LIKE.test(el.attribs.class ?? '') || CAPTION_LIKE.test(el.attribs.id ?? '') || CAPTION_LIKE.test(el.attribs.itemprop ?? '');
}

function contains(ancestor: AnyNode, node: AnyNode): boolean {
  for (let p: AnyNode | null = node; p; p = p.parent) if (p === ancestor) return true;
  return false;
}

function findFirst(root: Element, pred: (el: Element) => boolean, exclude: AnyNode, depth = Infinity): Element | null {
  if (depth <= 0) return null;
  for (const c of root.children) {
    if (!isElement(c) || c === exclude || SKIP_TEXT.has(c.name)) continue;
    if (pred(c) && !contains(c, exclude)) return c;
    const inner = findFirst(c, pred, exclude, depth - 1);
    if (inner) return inner;
  }
  return null;
}

const STOP_CLIMB = new Set(['body', 'html', 'main', 'article', 'section', 'ul', 'ol', 'table', 'tbody', 'figure']);

/**
 * The context rule (docs/crawl.md, "Context"):
 * 1. `figcaption`: the `<figcaption>` of the nearest enclosing `<figure>`.
 * 2. The *image block* is the image (its `<picture>` when inside one) grown through ancestors that hold
 *    no text of their own (`<a><img></a>`, `<div class="photo"><a><img></a></div>`), at most 6 levels,
 *    never into body/html/main/article/section/lists/tables/figure. Its parent is the *container*.
 * 3. `caption-element`: the container itself when its class, id or itemprop contains "caption";
 *    else the nearest such element among the block's sibling elements (3 hops each way, next first) or
 *    their descendants (2 levels down).
 * 4. `enclosing-text`: the container's text, when it is short (<= the limit) and the container is not
 *    one of the stop elements above.
 * 5. `next-sibling`, then `previous-sibling`: the nearest sibling node of the block (element or bare
 *    text, up to 3 hops each way) that holds text, cut to the limit.
 * 6. `enclosing-text` again, cut to the limit, for a container that is not a stop element.
 */
function imageContext(img: Element, max: number): ImageContext | null {
  const anc = ancestors(img);
  const figure = anc.find((a) => a.name === 'figure');
  if (figure) {
    const cap = findFirst(figure, (e) => e.name === 'figcaption', img);
    if (cap) {
      const t = textOf(cap, max);
      if (t) return { text: limitText(t, max), source: 'figcaption' };
    }
  }
  let block: Element = img.parent && isElement(img.parent) && img.parent.name === 'picture' ? img.parent : img;
  for (let i = 0; i < 6; i++) {
    const p = block.parent;
    if (!isElement(p) || STOP_CLIMB.has(p.name) || hasText(p)) break;
    block = p;
  }
  const container = block.parent;
  if (!isElement(container)) return null;
  const stop = STOP_CLIMB.has(container.name);
  if (!stop && isCaptionLike(container)) {
    const t = textOf(container, max);
    if (t) return { text: limitText(t, max), source: 'caption-element' };
  }
  for (const dir of ['next', 'prev'] as const) {
    let s: AnyNode | null = block[dir];
    for (let hop = 0; s && hop < 3; hop++, s = s[dir]) {
      if (!isElement(s) || SKIP_TEXT.has(s.name)) continue;
      const capEl = isCaptionLike(s) ? s : findFirst(s, isCaptionLike, block, 2);
      const t = capEl ? textOf(capEl, max) : '';
      if (t) return { text: limitText(t, max), source: 'caption-element' };
    }
  }
  let enclosing: string | null = null;
  if (!stop) {
    enclosing = textOf(container, max);
    if (enclosing && Array.from(enclosing).length <= max) return { text: enclosing, source: 'enclosing-text' };
  }
  for (const [dir, source] of [['next', 'next-sibling'], ['prev', 'previous-sibling']] as const) {
    let s: AnyNode | null = block[dir];
    for (let hop = 0; s && hop < 3; hop++, s = s[dir]) {
      if (s.type !== 'text' && !isElement(s)) continue;
      if (isElement(s) && (SKIP_TEXT.has(s.name) || s.name === 'img' || s.name === 'picture')) continue;
      const t = textOf(s, max);
      if (t) return { text: limitText(t, max), source };
    }
  }
  if (enclosing) return { text: limitText(enclosing, max), source: 'enclosing-text' };
  return null;
}

// ---------------------------------------------------------------------------------------------------
// URLs

type Resolved = { ok: true; url: string } | { ok: false; reason: ImageSkipReason; value: string };

function resolveImageUrl(raw: string, base: string): Resolved {
  const v = raw.trim();
  if (/^data:/i.test(v)) return { ok: false, reason: 'data_url', value: v.slice(0, 100) };
  let u: URL;
  try {
    u = new URL(v, base);
  } catch {
    return { ok: false, reason: 'invalid_url', value: v.slice(0, 100) };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { ok: false, reason: 'unsupported_scheme', value: v.slice(0, 100) };
  u.hash = '';
  return { ok: true, url: u.href };
}

/** Parse an HTML dimension attribute: `300`, `300px`, ` 300 ` -> 300; `100%`, `auto`, `` -> null. */
export function parseDimension(v: string | undefined): number | null {
  if (v === undefined) return null;
  const m = /^\s*(\d+)(?:\.\d*)?\s*(px)?\s*$/i.exec(v);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isFinite(n) && n > 0 ? n : null;
}

interface Candidate {
  raw: string;
  source: ImageSource;
  descriptor: string | null;
  w?: number;
  x?: number;
}

function isSupportedType(type: string | undefined): boolean {
  if (type === undefined || type.trim() === '') return true;
  return SUPPORTED_SOURCE_TYPES.includes(type.trim().toLowerCase().split(';')[0]!.trim());
}

/**
 * The image URL rule (docs/crawl.md, "Image elements and URL choice"):
 * - srcset of the `<img>`: the first non-empty of `data-srcset`, `data-lazy-srcset`, then `srcset`.
 * - single URL: the first non-empty, non-`data:` value of `data-src`, `data-lazy-src`, `data-original`,
 *   then `src`. A lazy attribute beats `src` (a placeholder then); `data:` values never win.
 * - `<picture>`: every `<source>` before the `<img>` whose `type` is absent or decodable
 *   (SUPPORTED_SOURCE_TYPES) adds its `data-srcset`/`srcset` candidates.
 * - The largest candidate wins: by width (`w`, or `x` times the declared width); when no candidate has a
 *   width, by density (a plain URL is 1x). Ties keep the first in order: the `<img>`'s srcset, its
 *   single URL, then `<picture>` sources (sources differing only by media query or type tie with the
 *   `<img>`, whose own URL is the author's default).
 */
function chooseImage(el: Element, inPicture: boolean, declaredWidth: number | null): { cand: Candidate } | { skip: ImageSkipReason; value: string | null } {
  const cands: Candidate[] = [];
  let sawData: string | null = null;
  const addSrcset = (value: string, source: ImageSource) => {
    for (const c of parseSrcset(value)) {
      if (/^data:/i.test(c.url)) {
        sawData ??= c.url.slice(0, 100);
        continue;
      }
      cands.push({ raw: c.url, source, descriptor: c.descriptor, ...(c.w === undefined ? {} : { w: c.w }), ...(c.x === undefined ? {} : { x: c.x }) });
    }
  };
  for (const name of [...LAZY_SRCSET_ATTRIBUTES, 'srcset'] as const) {
    const v = attr(el, name)?.trim();
    if (v) {
      const before = cands.length;
      addSrcset(v, name);
      if (cands.length > before) break;
    }
  }
  for (const name of [...LAZY_SRC_ATTRIBUTES, 'src'] as const) {
    const v = attr(el, name)?.trim();
    if (!v) continue;
    if (/^data:/i.test(v)) {
      sawData ??= v.slice(0, 100);
      continue;
    }
    cands.push({ raw: v, source: name, descriptor: null });
    break;
  }
  // <picture> sources come last so that, when nothing tells sizes apart (media queries, types),
  // the <img>'s own URL (the author's default) wins the tie.
  if (inPicture && el.parent) {
    for (const s of el.parent.children) {
      if (s === el) break;
      if (!isElement(s) || s.name !== 'source' || !isSupportedType(attr(s, 'type'))) continue;
      const v = attr(s, 'data-srcset')?.trim() || attr(s, 'srcset')?.trim();
      if (v) addSrcset(v, 'picture-source');
    }
  }
  if (cands.length === 0) return sawData !== null ? { skip: 'data_url', value: sawData } : { skip: 'no_src', value: null };
  const widthOf = (c: Candidate): number | null => (c.w !== undefined ? c.w : declaredWidth !== null ? (c.x ?? 1) * declaredWidth : null);
  const withWidth = cands.filter((c) => c.w !== undefined);
  let best: Candidate;
  if (withWidth.length > 0) {
    const scored = cands.filter((c) => widthOf(c) !== null);
    best = scored.reduce((a, b) => (widthOf(b)! > widthOf(a)! ? b : a));
  } else {
    best = cands.reduce((a, b) => ((b.x ?? 1) > (a.x ?? 1) ? b : a));
  }
  return { cand: best };
}

// ---------------------------------------------------------------------------------------------------
// The extraction

function firstNonEmpty(...values: (string | undefined | null)[]): string | null {
  for (const v of values) if (v !== undefined && v !== null && v.trim() !== '') return v.trim();
  return null;
}

/** Extract page facts, links and images from `html` fetched from `pageUrl` (see the file comment). */
export function extractImages(html: string, pageUrl: string, options: ExtractOptions = {}): PageExtraction {
  const max = options.maxContextChars ?? 300;
  const maxLinks = options.maxLinks ?? 10_000;
  const robotNames = new Set(['robots', ...(options.robotsNames ?? ['mellabot']).map((n) => n.toLowerCase())]);
  const docUrl = new URL(pageUrl);
  docUrl.hash = '';
  const $ = load(html, { scriptingEnabled: false });
  const root = $.root()[0]!;

  // One pass over the tree, in document order.
  const metas: Element[] = [];
  const bases: Element[] = [];
  const linkEls: Element[] = [];
  const anchors: Element[] = [];
  const imageEls: { el: Element; inNoscript: boolean }[] = [];
  let htmlEl: Element | null = null;
  let titleEl: Element | null = null;
  const includeInputs = options.includeInputImages ?? true;
  const walk = (n: AnyNode, inNoscript: boolean, inSvg: boolean) => {
    if (!isElement(n)) {
      if ('children' in n && Array.isArray((n as { children?: AnyNode[] }).children)) {
        for (const c of (n as { children: AnyNode[] }).children) walk(c, inNoscript, inSvg);
      }
      return;
    }
    switch (n.name) {
      case 'html':
        htmlEl ??= n;
        break;
      case 'meta':
        metas.push(n);
        break;
      case 'base':
        bases.push(n);
        break;
      case 'link':
        linkEls.push(n);
        break;
      case 'title':
        if (!inSvg) titleEl ??= n;
        break;
      case 'a':
      case 'area':
        if (!inSvg) anchors.push(n);
        break;
      case 'img':
        imageEls.push({ el: n, inNoscript });
        break;
      case 'input':
        if (includeInputs && (n.attribs.type ?? '').trim().toLowerCase() === 'image') imageEls.push({ el: n, inNoscript });
        break;
    }
    const childNoscript = inNoscript || n.name === 'noscript';
    const childSvg = inSvg || n.name === 'svg';
    for (const c of n.children) walk(c, childNoscript, childSvg);
  };
  walk(root, false, false);

  // Base URL: the first <base> with an href (the HTML standard uses the first one); only http(s).
  let baseUrl = docUrl.href;
  let baseHref: string | null = null;
  const baseEl = bases.find((b) => b.attribs.href !== undefined);
  if (baseEl) {
    try {
      const b = new URL(baseEl.attribs.href!.trim(), docUrl);
      if (b.protocol === 'http:' || b.protocol === 'https:') {
        baseUrl = b.href;
        baseHref = baseEl.attribs.href!;
      }
    } catch {
      // invalid base: ignored, as browsers do
    }
  }

  // Language.
  const metaByHttpEquiv = (name: string) => metas.find((m) => (m.attribs['http-equiv'] ?? '').trim().toLowerCase() === name);
  const he = htmlEl as Element | null;
  let lang: string | null = null;
  let langSource: LangSource | null = null;
  const langCandidates: [string | null, LangSource][] = [
    [firstNonEmpty(he?.attribs.lang), 'html-lang'],
    [firstNonEmpty(he?.attribs['xml:lang']), 'xml-lang'],
    [firstNonEmpty(metaByHttpEquiv('content-language')?.attribs.content?.split(',')[0]), 'meta-content-language'],
    [firstNonEmpty(options.httpContentLanguage?.split(',')[0]), 'http-content-language'],
  ];
  for (const [v, s] of langCandidates) {
    if (v !== null) {
      lang = v;
      langSource = s;
      break;
    }
  }

  const te = titleEl as Element | null;
  const title = te ? collapse(textOf(te)) || null : null;
  const ogSite = metas.find((m) => (m.attribs.property ?? m.attribs.name ?? '').trim().toLowerCase() === 'og:site_name');
  const siteName = firstNonEmpty(ogSite?.attribs.content);
  let canonical: string | null = null;
  const canonEl = linkEls.find((l) => (l.attribs.rel ?? '').toLowerCase().split(/\s+/).includes('canonical') && l.attribs.href);
  if (canonEl) {
    try {
      const c = new URL(canonEl.attribs.href!.trim(), baseUrl);
      if (c.protocol === 'http:' || c.protocol === 'https:') {
        c.hash = '';
        canonical = c.href;
      }
    } catch {
      // ignored
    }
  }

  const directives: string[] = [];
  for (const m of metas) {
    if (!robotNames.has((m.attribs.name ?? '').trim().toLowerCase())) continue;
    for (const d of (m.attribs.content ?? '').toLowerCase().split(/[,\s]+/)) if (d && !directives.includes(d)) directives.push(d);
  }
  const robots: PageRobots = {
    directives,
    noindex: directives.includes('noindex') || directives.includes('none'),
    nofollow: directives.includes('nofollow') || directives.includes('none'),
    noimageindex: directives.includes('noimageindex'),
  };

  const page: PageFacts = { url: docUrl.href, baseUrl, baseHref, lang, langSource, title, siteName, canonical, robots };

  // Links.
  const linkSkips: ExtractionCounts['linksSkipped'] = {};
  const bump = <K extends string>(rec: Partial<Record<K, number>>, k: K) => {
    rec[k] = (rec[k] ?? 0) + 1;
  };
  const selfKey = normalizeUrl(docUrl.href);
  const linkMap = new Map<string, PageLink>();
  for (const a of anchors) {
    const href = a.attribs.href;
    if (href === undefined) continue;
    if (href.trim() === '') {
      bump(linkSkips, 'self'); // an empty href is the document itself
      continue;
    }
    const r = normalizeUrl(href, baseUrl);
    if (!r.ok) {
      bump(linkSkips, r.reason);
      continue;
    }
    if (selfKey.ok && r.url === selfKey.url) {
      bump(linkSkips, 'self');
      continue;
    }
    const nofollow = robots.nofollow || (a.attribs.rel ?? '').toLowerCase().split(/\s+/).includes('nofollow');
    const prev = linkMap.get(r.url);
    if (prev) {
      prev.nofollow &&= nofollow;
      continue;
    }
    if (linkMap.size >= maxLinks) {
      bump(linkSkips, 'limit');
      continue;
    }
    linkMap.set(r.url, { url: r.url, nofollow });
  }

  // Images.
  const images: PageImage[] = [];
  const skipped: SkippedImage[] = [];
  const skipCounts: ExtractionCounts['skipped'] = {};
  const byUrl = new Map<string, PageImage>();
  let duplicates = 0;
  imageEls.forEach(({ el, inNoscript }, index) => {
    const element = el.name === 'input' ? 'input' : 'img';
    const alt = el.attribs.alt ?? null;
    const inPicture = element === 'img' && isElement(el.parent) && el.parent.name === 'picture';
    const width = parseDimension(el.attribs.width);
    const height = parseDimension(el.attribs.height);
    const choice = chooseImage(el, inPicture, width);
    if ('skip' in choice) {
      skipped.push({ index, element, reason: choice.skip, alt, value: choice.value });
      bump(skipCounts, choice.skip);
      return;
    }
    const res = resolveImageUrl(choice.cand.raw, baseUrl);
    if (!res.ok) {
      skipped.push({ index, element, reason: res.reason, alt, value: res.value });
      bump(skipCounts, res.reason);
      return;
    }
    const prev = byUrl.get(res.url);
    if (prev) {
      prev.duplicates++;
      duplicates++;
      return;
    }
    const a = ancestors(el).find((x) => x.name === 'a' && x.attribs.href !== undefined);
    let linkUrl: string | null = null;
    if (a) {
      const lr = resolveImageUrl(a.attribs.href!, baseUrl);
      if (lr.ok) linkUrl = lr.url;
    }
    const c = choice.cand;
    const img: PageImage = {
      url: res.url,
      index,
      element,
      source: c.source,
      descriptor: c.descriptor,
      lazy: c.source.startsWith('data-') || (c.source === 'picture-source' && !!inPictureLazy(el)),
      inPicture,
      inNoscript,
      alt,
      title: el.attribs.title ?? null,
      width,
      height,
      context: imageContext(el, max),
      linkUrl,
      duplicates: 0,
    };
    byUrl.set(res.url, img);
    images.push(img);
  });

  const counts: ExtractionCounts = {
    imageElements: imageEls.length,
    images: images.length,
    duplicates,
    skipped: skipCounts,
    altMissing: images.filter((i) => i.alt === null).length,
    altEmpty: images.filter((i) => i.alt !== null && i.alt.trim() === '').length,
    altText: images.filter((i) => i.alt !== null && i.alt.trim() !== '').length,
    withContext: images.filter((i) => i.context !== null).length,
    links: linkMap.size,
    linksSkipped: linkSkips,
  };
  return { page, images, skipped, links: [...linkMap.values()], counts };
}

/** True when the `<picture>` around `el` uses lazy `data-srcset` sources. */
function inPictureLazy(el: Element): boolean {
  const p = el.parent;
  if (!isElement(p)) return false;
  return p.children.some((s) => isElement(s) && s.name === 'source' && !!s.attribs['data-srcset']?.trim());
}
