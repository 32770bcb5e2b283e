/**
 * robots.txt for the crawler: a thin wrapper on `robots-parser` (RFC 9309 matching: longest match
 * wins, `*` and `$` wildcards, Allow beats Disallow on a tie) that answers for our user agent, and the
 * mapping of fetch outcomes to RFC 9309's semantics (docs/crawl.md):
 *
 * | outcome of GET /robots.txt | policy |
 * | --- | --- |
 * | 2xx | the file's rules (first 500 KiB, RFC 9309 section 2.5) |
 * | 3xx followed up to 5 hops, then still a redirect | `unavailable`: allow all (section 2.3.1.2) |
 * | 4xx except 429 (incl. 401, 403) | `unavailable`: allow all (section 2.3.1.3) |
 * | 429, 5xx, network error, timeout | `unreachable`: disallow all for now (section 2.3.1.4); the caller retries later |
 *
 * A policy answers only for URLs of its own origin (scheme, host, port); asking about another origin
 * throws, since that is a caller bug (each origin has its own robots.txt).
 */
import robotsParser from 'robots-parser';

export const DEFAULT_USER_AGENT = 'MellaBot/0.1 (+https://github.com/mella-data-engine)';

/** RFC 9309 section 2.5: crawlers must parse at least 500 kibibytes. */
export const ROBOTS_MAX_BYTES = 500 * 1024;

export type RobotsSource = 'file' | 'unavailable' | 'unreachable';

export interface RobotsPolicy {
  /** The robots.txt URL this policy came from. */
  readonly robotsUrl: string;
  /** `file`: rules parsed; `unavailable` (4xx): allow all; `unreachable` (5xx, network): disallow all. */
  readonly source: RobotsSource;
  /** HTTP status when there was a response. */
  readonly status?: number;
  /** Why, for `unavailable`/`unreachable` (`http_404`, `http_503`, `network_error: ...`). */
  readonly detail?: string;
  /** The product token matched against `User-agent:` lines (`MellaBot`). */
  readonly agent: string;
  /** May our agent fetch `url`? Throws for a URL of another origin. */
  isAllowed(url: string): boolean;
  /** Crawl-delay for our agent (or `*`) in seconds, as written; undefined when none. */
  crawlDelay(): number | undefined;
  /** `Sitemap:` lines. */
  sitemaps(): string[];
}

export class RobotsOriginError extends Error {
  constructor(url: string, robotsUrl: string) {
    super(`${url} is not covered by ${robotsUrl} (robots.txt is per origin)`);
    this.name = 'RobotsOriginError';
  }
}

/** The product token of a user agent string: `MellaBot/0.1 (+https://...)` -> `MellaBot`. */
export function productToken(userAgent: string): string {
  const m = /^\s*([A-Za-z0-9_-]+)/.exec(userAgent);
  if (!m?.[1]) throw new Error(`user agent ${JSON.stringify(userAgent)} has no product token`);
  return m[1];
}

/** `https://Example.com:8443/a/b?c` -> `https://example.com:8443/robots.txt`. */
export function robotsUrlFor(url: string | URL): string {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`robots.txt applies to http(s) only: ${u.href}`);
  return `${u.protocol}//${u.host}/robots.txt`;
}

function sameOrigin(a: URL, b: URL): boolean {
  return a.protocol === b.protocol && a.hostname === b.hostname && a.port === b.port;
}

/** A policy from robots.txt text (a 2xx body). */
export function robotsFromText(robotsUrl: string, text: string, userAgent: string = DEFAULT_USER_AGENT, status = 200): RobotsPolicy {
  const agent = productToken(userAgent);
  const origin = new URL(robotsUrl);
  const body = truncateUtf8(text, ROBOTS_MAX_BYTES);
  const robots = robotsParser(robotsUrl, body);
  return {
    robotsUrl,
    source: 'file',
    status,
    agent,
    isAllowed(url: string): boolean {
      const u = new URL(url);
      if (!sameOrigin(u, origin)) throw new RobotsOriginError(url, robotsUrl);
      // robots-parser returns undefined only for another origin, excluded above.
      return robots.isAllowed(u.href, agent) !== false;
    },
    crawlDelay: () => robots.getCrawlDelay(agent),
    sitemaps: () => robots.getSitemaps(),
  };
}

function blanket(robotsUrl: string, source: 'unavailable' | 'unreachable', userAgent: string, detail: string, status?: number): RobotsPolicy {
  const agent = productToken(userAgent);
  const origin = new URL(robotsUrl);
  const allowed = source === 'unavailable';
  return {
    robotsUrl,
    source,
    ...(status === undefined ? {} : { status }),
    detail,
    agent,
    isAllowed(url: string): boolean {
      if (!sameOrigin(new URL(url), origin)) throw new RobotsOriginError(url, robotsUrl);
      return allowed;
    },
    crawlDelay: () => undefined,
    sitemaps: () => [],
  };
}

export type RobotsFetchOutcome =
  | { status: number; body?: string; redirected?: boolean }
  | { error: string };

/** The policy for a fetch outcome (the table at the top of this file). */
export function robotsFromFetch(robotsUrl: string, outcome: RobotsFetchOutcome, userAgent: string = DEFAULT_USER_AGENT): RobotsPolicy {
  if ('error' in outcome) return blanket(robotsUrl, 'unreachable', userAgent, `network_error: ${outcome.error}`);
  const { status } = outcome;
  if (status >= 200 && status < 300) return robotsFromText(robotsUrl, outcome.body ?? '', userAgent, status);
  if (status >= 300 && status < 400) return blanket(robotsUrl, 'unavailable', userAgent, outcome.redirected ? `too_many_redirects (http_${status})` : `http_${status} without a followed location`, status);
  if (status === 429) return blanket(robotsUrl, 'unreachable', userAgent, 'http_429', status);
  if (status >= 400 && status < 500) return blanket(robotsUrl, 'unavailable', userAgent, `http_${status}`, status);
  return blanket(robotsUrl, 'unreachable', userAgent, `http_${status}`, status);
}

export interface FetchRobotsOptions {
  userAgent?: string;
  /** Whole-request limit (default 10 s). */
  timeoutMs?: number;
  /** Injected fetch (tests, or a fetch that goes through the SSRF guard). Default: global fetch. */
  fetch?: typeof fetch;
}

/**
 * GET `<origin>/robots.txt` for the origin of `url` and return its policy; never throws for network
 * or HTTP failures (they become `unreachable`/`unavailable`). Redirects are followed up to 5 hops.
 */
export async function fetchRobots(url: string | URL, options: FetchRobotsOptions = {}): Promise<RobotsPolicy> {
  const robotsUrl = robotsUrlFor(url);
  const userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
  const doFetch = options.fetch ?? fetch;
  const signal = AbortSignal.timeout(options.timeoutMs ?? 10_000);
  let target = robotsUrl;
  let lastStatus = 0;
  try {
    for (let hop = 0; hop <= 5; hop++) {
      const res = await doFetch(target, { redirect: 'manual', signal, headers: { 'user-agent': userAgent, accept: 'text/plain,*/*;q=0.5' } });
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        await res.body?.cancel();
        lastStatus = res.status;
        target = new URL(location, target).href;
        continue;
      }
      if (res.status >= 200 && res.status < 300) {
        const body = await readCapped(res, ROBOTS_MAX_BYTES);
        return robotsFromFetch(robotsUrl, { status: res.status, body }, userAgent);
      }
      await res.body?.cancel();
      return robotsFromFetch(robotsUrl, { status: res.status }, userAgent);
    }
    // More than 5 redirects: RFC 9309 section 2.3.1.2 lets the crawler treat robots.txt as unavailable.
    return robotsFromFetch(robotsUrl, { status: lastStatus, redirected: true }, userAgent);
  } catch (e) {
    const err = e as Error & { cause?: { code?: string } };
    return robotsFromFetch(robotsUrl, { error: err.cause?.code ?? err.name ?? String(e) }, userAgent);
  }
}

async function readCapped(res: Response, max: number): Promise<string> {
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size >= max) {
      await reader.cancel();
      break;
    }
  }
  return new TextDecoder('utf-8').decode(Buffer.concat(chunks).subarray(0, max));
}

function truncateUtf8(text: string, maxBytes: number): string {
  const buf = Buffer.from(text, 'utf8');
  if (buf.byteLength <= maxBytes) return text;
  // Cut at the last line break inside the limit, so a half rule is never parsed.
  const cut = buf.subarray(0, maxBytes);
  const nl = cut.lastIndexOf(0x0a);
  return cut.subarray(0, nl < 0 ? maxBytes : nl).toString('utf8');
}
