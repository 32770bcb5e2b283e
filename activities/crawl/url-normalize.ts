/**
 * URL normalization for the crawl frontier: one string per resource, so that the frontier's unique key
 * (the normalized URL) deduplicates what a browser would treat as the same page. Pure; no I/O.
 *
 * Rules, in order (docs/crawl.md repeats them):
 * 1. Parse with the WHATWG URL parser (what browsers do), relative to `base` when given. Leading and
 *    trailing spaces/control characters are trimmed, tabs and newlines inside are removed, scheme and
 *    host are lower-cased, IDN hosts become punycode, IPv4 shorthand becomes dotted-quad, default
 *    ports are dropped, `.` and `..` path segments are resolved, an empty path becomes `/`.
 * 2. Only `http:` and `https:` are accepted; anything else is a typed rejection (`unsupported_scheme`),
 *    an unparsable string is `invalid_url`, a blank one `empty_url`.
 * 3. The fragment is dropped (it never reaches the server). Credentials (`user:pass@`) are dropped
 *    (they must never be stored in the frontier). A trailing dot on the host (`example.com.`) is dropped.
 * 4. Percent-escapes in path and query get upper-case hex (`%c3%a9` -> `%C3%A9`), and escapes of
 *    RFC 3986 unreserved characters are decoded (`%7E` -> `~`, `%41` -> `A`); both are equivalences
 *    RFC 3986 section 6.2.2 allows.
 * 5. Tracking parameters (`TRACKING_PARAMS`, `TRACKING_PARAM_PREFIXES`; names compared
 *    case-insensitively after percent-decoding) are removed.
 * 6. The remaining query parameters are sorted by name (UTF-16 code units of the decoded name), stably:
 *    repeated names keep their relative order, values are kept byte for byte (no re-encoding: `+`,
 *    `%20` and bare `/` stay as the author wrote them). Empty `&&` segments are dropped; an empty
 *    query loses its `?`.
 */

/** Exact parameter names removed as tracking (compared lower-cased). */
export const TRACKING_PARAMS: readonly string[] = [
  // Google Ads / Analytics / DoubleClick
  'gclid', 'gclsrc', 'dclid', 'gbraid', 'wbraid', '_ga', '_gl',
  // Meta (Facebook, Instagram)
  'fbclid', 'igshid',
  // Microsoft Ads, Yandex, TikTok, Twitter/X, LinkedIn
  'msclkid', 'yclid', 'ttclid', 'twclid', 'li_fat_id', 'ref_src', 'ref_url',
  // Mailchimp, HubSpot, Marketo, Vero, Oracle Eloqua, Olytics, Klaviyo
  'mc_cid', 'mc_eid', '_hsenc', '_hsmi', '__hssc', '__hstc', '__hsfp', 'hsctatracking', 'mkt_tok',
  'vero_id', 'vero_conv', 'elqtrackid', 'elqtrack', 'oly_anon_id', 'oly_enc_id', '_kx',
  // Adobe, Piwik/Matomo-style campaign ids, Wicked Reports, Sendgrid-style, Yahoo
  's_cid', 'wickedid', 'pk_campaign', 'pk_kwd', 'pk_source', 'pk_medium', 'pk_content',
  'mtm_campaign', 'mtm_kwd', 'mtm_source', 'mtm_medium', 'mtm_content', 'mtm_cid', 'mtm_group', 'mtm_placement',
  'guccounter', 'guce_referrer', 'guce_referrer_sig',
];

/** Name prefixes removed as tracking (compared lower-cased): Google's UTM family (utm_source, utm_medium...). */
export const TRACKING_PARAM_PREFIXES: readonly string[] = ['utm_'];

const TRACKING_SET = new Set(TRACKING_PARAMS);

export type UrlRejectionReason = 'empty_url' | 'invalid_url' | 'unsupported_scheme';

export interface UrlRejection {
  ok: false;
  reason: UrlRejectionReason;
  /** The input as given. */
  input: string;
  /** For `unsupported_scheme`: the scheme without its colon (`mailto`, `javascript`, `data`, `ftp`...). */
  scheme?: string;
}

export interface NormalizedUrl {
  ok: true;
  /** The normalized absolute URL. */
  url: string;
  /** Lower-case host without a trailing dot (punycode for IDN). */
  host: string;
  /** How many tracking parameters were removed. */
  removedParams: number;
}

export type NormalizeResult = NormalizedUrl | UrlRejection;

export interface NormalizeOptions {
  /** Remove tracking parameters (default true). */
  stripTracking?: boolean;
  /** Sort query parameters by name (default true). */
  sortQuery?: boolean;
  /** Extra parameter names to remove (case-insensitive), e.g. a site's session id `sid`. */
  extraParams?: readonly string[];
}

/** Thrown by `normalizeUrlOrThrow`; carries the typed rejection. */
export class UrlRejectedError extends Error {
  constructor(readonly rejection: UrlRejection) {
    super(`${rejection.reason}: ${JSON.stringify(rejection.input.slice(0, 200))}`);
    this.name = 'UrlRejectedError';
  }
}

/** True when `name` (raw, possibly percent-encoded) is a tracking parameter. */
export function isTrackingParam(name: string, extra?: ReadonlySet<string>): boolean {
  const n = safeDecode(name).toLowerCase();
  if (TRACKING_SET.has(n) || extra?.has(n)) return true;
  return TRACKING_PARAM_PREFIXES.some((p) => n.startsWith(p));
}

/** Normalize `input` (absolute, or relative to `base`) for the frontier; see the rules at the top. */
export function normalizeUrl(input: string, base?: string | URL, options: NormalizeOptions = {}): NormalizeResult {
  const trimmed = input.trim();
  if (trimmed === '') return { ok: false, reason: 'empty_url', input };
  let u: URL;
  try {
    u = base === undefined ? new URL(trimmed) : new URL(trimmed, base);
  } catch {
    return { ok: false, reason: 'invalid_url', input };
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    return { ok: false, reason: 'unsupported_scheme', input, scheme: u.protocol.slice(0, -1) };
  }
  u.hash = '';
  u.username = '';
  u.password = '';
  let host = u.hostname;
  if (host.endsWith('.') && host.length > 1) {
    host = host.replace(/\.+$/, '');
    if (host === '') return { ok: false, reason: 'invalid_url', input };
    u.hostname = host;
  }
  if (u.hostname === '') return { ok: false, reason: 'invalid_url', input };

  const path = normalizeEscapes(u.pathname);
  const { query, removed } = normalizeQuery(u.search, options);
  // Re-assemble by hand: assigning `u.search` would re-encode what the author wrote.
  const origin = `${u.protocol}//${u.host}`;
  const url = origin + path + (query === '' ? '' : `?${query}`);
  return { ok: true, url, host: u.hostname, removedParams: removed };
}

/** `normalizeUrl` that throws `UrlRejectedError` instead of returning a rejection. */
export function normalizeUrlOrThrow(input: string, base?: string | URL, options?: NormalizeOptions): string {
  const r = normalizeUrl(input, base, options);
  if (!r.ok) throw new UrlRejectedError(r);
  return r.url;
}

function normalizeQuery(search: string, options: NormalizeOptions): { query: string; removed: number } {
  if (search === '' || search === '?') return { query: '', removed: 0 };
  const strip = options.stripTracking ?? true;
  const extra = options.extraParams?.length ? new Set(options.extraParams.map((p) => p.toLowerCase())) : undefined;
  let removed = 0;
  const parts: { name: string; raw: string }[] = [];
  for (const seg of search.slice(1).split('&')) {
    if (seg === '') continue;
    const eq = seg.indexOf('=');
    const rawName = eq < 0 ? seg : seg.slice(0, eq);
    if (strip && isTrackingParam(rawName, extra)) {
      removed++;
      continue;
    }
    if (!strip && extra && extra.has(safeDecode(rawName).toLowerCase())) {
      removed++;
      continue;
    }
    parts.push({ name: safeDecode(rawName.replace(/\+/g, ' ')), raw: normalizeEscapes(seg) });
  }
  if (options.sortQuery ?? true) {
    // Array.prototype.sort is stable (ES2019): equal names keep their order.
    parts.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
  return { query: parts.map((p) => p.raw).join('&'), removed };
}

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/** Upper-case percent-escape hex digits and decode escapes of unreserved characters. */
function normalizeEscapes(s: string): string {
  if (!s.includes('%')) return s;
  return s.replace(/%([0-9a-fA-F]{2})/g, (_m, hex: string) => {
    const ch = String.fromCharCode(parseInt(hex, 16));
    return UNRESERVED.test(ch) ? ch : `%${hex.toUpperCase()}`;
  });
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

// ---------------------------------------------------------------------------------------------------
// Allowed-domain matching

/**
 * Normalize a configured domain: accepts `Example.COM`, `example.com.`, `*.example.com`, `.example.com`,
 * a URL (`https://example.com/path`) or an IDN (`пример.рф`), returns the lower-case punycode host
 * (`xn--e1afmkfd.xn--p1ai`). Returns null when it is not a host.
 */
export function normalizeDomain(domain: string): string | null {
  let d = domain.trim();
  if (d === '') return null;
  d = d.replace(/^\*\./, '').replace(/^\.+/, '');
  try {
    const u = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(d) ? d : `http://${d}`);
    const h = u.hostname.replace(/\.+$/, '');
    return h === '' ? null : h;
  } catch {
    return null;
  }
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;

/**
 * True when `host` equals `domain` or is a subdomain of it (`news.example.com` under `example.com`;
 * `badexample.com` is not). IP addresses match only exactly. Both sides are normalized first.
 */
export function hostMatchesDomain(host: string, domain: string): boolean {
  const h = normalizeDomain(host);
  const d = normalizeDomain(domain);
  if (h === null || d === null) return false;
  if (h === d) return true;
  if (IPV4.test(h) || h.startsWith('[') || IPV4.test(d) || d.startsWith('[')) return false;
  return h.endsWith(`.${d}`);
}

/** True when the URL's host matches one of `allowedDomains` (`hostMatchesDomain`). Non-http(s) URLs: false. */
export function isUrlAllowed(url: string, allowedDomains: readonly string[]): boolean {
  const r = normalizeUrl(url);
  return r.ok && allowedDomains.some((d) => hostMatchesDomain(r.host, d));
}
