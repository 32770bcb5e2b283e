/**
 * Safe HTTP(S) image downloader for the ingest stage (the "downloader" of img2dataset).
 *
 * Built on Node's own `http`/`https` modules rather than `fetch` so that we own name resolution:
 * every connection goes through a custom `lookup` that refuses non-public addresses (SSRF guard),
 * and the socket connects to exactly the addresses that were checked (no DNS-rebinding gap).
 *
 * `ImageFetcher.fetch()` never throws for bad input or network trouble: every outcome is a
 * `FetchResult`, failures carry a stable snake_case `reason` (stored in PostgreSQL, shown to users)
 * and a short human `detail`.
 *
 * Decisions worth knowing (each is repeated where it is implemented):
 * - One "attempt" is a whole redirect chain starting from the original URL; a retry starts over.
 * - Retried: http 408/429/500/502/503/504, connection resets, connect and read timeouts, and
 *   temporary DNS failures (EAI_AGAIN). Not retried: connection refused (nothing listens on that
 *   port; it rarely changes within seconds), the total timeout (a server too slow to deliver the
 *   body in time would just be as slow again, and retrying multiplies the worst case per URL), and
 *   everything else (4xx, blocked addresses, too_large, ...).
 * - Timeouts apply to each HTTP request (each redirect hop): connect (DNS + TCP + TLS), read
 *   (idle gap between bytes, headers included) and total (from request start to the last byte).
 *   Time spent queued behind the per-host limiter is not counted: it is our own throttling.
 * - Per-host limits are shared process-wide by every ImageFetcher with the same limits, so politeness
 *   holds even when activities each build their own fetcher.
 * - Redirects are followed manually; every hop is re-parsed, scheme-checked and re-resolved through
 *   the guard. Userinfo in URLs (`user:pass@`) is never sent.
 * - No connection reuse (`agent: false`): every request owns its socket and the socket is destroyed
 *   when the request settles, whatever the outcome. TLS certificates are verified.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { AddressGuard, BlockedAddressError } from '../shared/address-guard';

export interface FetchPolicy {
  /** DNS resolution + TCP connect + TLS handshake, per request. */
  connectTimeoutMs: number;
  /** Longest idle gap allowed between bytes once connected (waiting for headers included). */
  readTimeoutMs: number;
  /** Whole request incl. body, per request (catches servers that trickle bytes). */
  totalTimeoutMs: number;
  /** Body limit: checked against Content-Length up front AND counted while streaming. */
  maxBytes: number;
  /** 3xx responses are followed manually up to this many hops; each hop is re-validated. */
  maxRedirects: number;
  /** CIDRs or single IPs (e.g. "127.0.0.1/32", "::1") exempt from the SSRF guard; empty = guard everything. */
  allowPrivateNetworks: string[];
  userAgent: string;
  /** Extra attempts for retryable failures (see the module comment for which ones). */
  retries: number;
  /** Exponential backoff with jitter between attempts; Retry-After is honoured up to backoffMaxMs. */
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** Max simultaneous requests per host name (process-wide, see module comment). */
  perHostConcurrency: number;
  /** Min spacing between request starts to the same host name. */
  perHostMinIntervalMs: number;
  /**
   * `X-Robots-Tag` directives that mean "do not use this image" (img2dataset's default set): a
   * response carrying one is rejected as `opted_out` before its body is read. Directives scoped to
   * another crawler (`otherbot: noai`) are ignored. Empty = ignore the header.
   */
  disallowedRobotsDirectives: string[];
}

export type FetchResult =
  | {
      ok: true;
      bytes: Buffer;
      finalUrl: string;
      status: number;
      contentType: string | null;
      redirects: number;
      attempts: number;
    }
  | { ok: false; reason: string; detail: string; finalUrl?: string; attempts: number };

/**
 * Every `reason` a failed fetch can carry, besides `http_<status>` (e.g. `http_404`).
 * `tls_error` and `network_error` cover failures outside the other codes (bad certificates,
 * unreachable networks, malformed HTTP responses); the underlying error code is in `detail`.
 */
export const FETCH_FAILURE_REASONS = [
  'invalid_url',
  'unsupported_scheme',
  'dns_error',
  'blocked_address',
  'connection_refused',
  'connection_reset',
  'timeout',
  'too_many_redirects',
  'redirect_loop',
  'too_large',
  'empty_body',
  'aborted',
  'opted_out',
  'tls_error',
  'network_error',
] as const;
export type FetchFailureReason = (typeof FETCH_FAILURE_REASONS)[number] | `http_${number}`;

/**
 * Production defaults: generous enough for large photos on slow hosts, strict enough that one bad
 * host cannot hold a shard for long. Worst case per URL is roughly
 * (retries + 1) * (maxRedirects + 1) * totalTimeoutMs plus backoff, but a hop that times out on
 * connect or read fails far sooner than totalTimeoutMs.
 */
export const DEFAULT_FETCH_POLICY: FetchPolicy = Object.freeze({
  connectTimeoutMs: 10_000, // DNS + TCP + TLS; a healthy CDN needs well under a second
  readTimeoutMs: 20_000, // idle gap; covers slow origin servers rendering a thumbnail on demand
  totalTimeoutMs: 60_000, // 20 MiB at ~350 KB/s; slower than that is treated as a trickling server
  maxBytes: 20 * 1024 * 1024, // web images are rarely above a few MiB; full-size camera JPEGs fit
  maxRedirects: 5, // CDN and URL-shortener chains are 1-3 hops in practice
  allowPrivateNetworks: [], // the crawler only ever needs the public internet
  userAgent: 'mella-data-engine/0.1 (multimodal dataset builder; img2dataset-style image downloader)',
  retries: 2, // 3 attempts in all
  backoffBaseMs: 1_000, // ~1 s, ~2 s, ... with jitter
  backoffMaxMs: 30_000, // a Retry-After beyond 30 s gives up instead of holding the shard
  perHostConcurrency: 4, // polite to a single origin, still parallel across hosts
  perHostMinIntervalMs: 100, // at most ~10 request starts per second per host
  disallowedRobotsDirectives: ['noai', 'noimageai', 'noindex', 'noimageindex'], // as img2dataset
});

const ACCEPT = 'image/*,*/*;q=0.5';
const MAX_TIMER_MS = 2 ** 31 - 1;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Statuses worth another attempt: overload, throttling and gateway trouble. */
const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

// ---------------------------------------------------------------------------------------------
// Per-host limiter
// ---------------------------------------------------------------------------------------------

type Release = () => void;

interface Waiter {
  grant: () => void;
}

/** FIFO gate for one host: at most `concurrency` holders, starts spaced by `minIntervalMs`. */
class HostGate {
  private active = 0;
  private nextStartAt = 0;
  private readonly queue: Waiter[] = [];

  constructor(
    private readonly concurrency: number,
    private readonly minIntervalMs: number,
  ) {}

  isIdle(now: number): boolean {
    return this.active === 0 && this.queue.length === 0 && now >= this.nextStartAt;
  }

  /** Resolves with a release function once the caller may start, or null if the signal fired first. */
  acquire(signal?: AbortSignal): Promise<Release | null> {
    return new Promise((resolve) => {
      if (signal?.aborted) {
        resolve(null);
        return;
      }
      let delayTimer: NodeJS.Timeout | undefined;
      let holding = false;
      const release: Release = () => {
        if (!holding) return;
        holding = false;
        this.active--;
        this.pump();
      };
      const onAbort = (): void => {
        const queued = this.queue.indexOf(waiter);
        if (queued >= 0) this.queue.splice(queued, 1);
        clearTimeout(delayTimer);
        release(); // gives the slot back if it was already granted but the start was still delayed
        resolve(null);
      };
      const waiter: Waiter = {
        grant: () => {
          this.active++;
          holding = true;
          const now = Date.now();
          const startAt = Math.max(now, this.nextStartAt);
          this.nextStartAt = startAt + this.minIntervalMs;
          const start = (): void => {
            signal?.removeEventListener('abort', onAbort);
            resolve(release);
          };
          if (startAt > now) delayTimer = setTimeout(start, startAt - now);
          else start();
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
      this.pump();
    });
  }

  private pump(): void {
    while (this.active < this.concurrency && this.queue.length > 0) {
      this.queue.shift()!.grant();
    }
  }
}

/** Process-wide gates, keyed by host name and limits (see module comment). */
const hostGates = new Map<string, HostGate>();
let sweepAtSize = 1024;

function gateFor(host: string, concurrency: number, minIntervalMs: number): HostGate {
  const key = `${concurrency}|${minIntervalMs}|${host}`;
  let gate = hostGates.get(key);
  if (gate) return gate;
  // Crawls touch millions of hosts: drop idle gates now and then so the map stays bounded.
  if (hostGates.size >= sweepAtSize) {
    const now = Date.now();
    for (const [k, g] of hostGates) if (g.isIdle(now)) hostGates.delete(k);
    sweepAtSize = Math.max(1024, hostGates.size * 2);
  }
  gate = new HostGate(concurrency, minIntervalMs);
  hostGates.set(key, gate);
  return gate;
}

// ---------------------------------------------------------------------------------------------
// One HTTP request (one redirect hop)
// ---------------------------------------------------------------------------------------------

interface Failure {
  reason: string;
  detail: string;
  retryable: boolean;
  /** Parsed Retry-After, in ms from now, when the server sent one. */
  retryAfterMs?: number;
}

type HopOutcome =
  | { kind: 'body'; status: number; contentType: string | null; bytes: Buffer }
  | { kind: 'redirect'; status: number; location: string }
  | ({ kind: 'fail' } & Failure);

function fail(reason: string, detail: string, retryable = false, retryAfterMs?: number): HopOutcome {
  return retryAfterMs === undefined
    ? { kind: 'fail', reason, detail, retryable }
    : { kind: 'fail', reason, detail, retryable, retryAfterMs };
}

const DNS_ERROR_CODES = new Set(['ENOTFOUND', 'ENODATA', 'EAI_FAIL', 'EAI_NONAME', 'EAI_NODATA', 'ESERVFAIL']);
const RESET_CODES = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ERR_STREAM_PREMATURE_CLOSE']);
const UNREACHABLE_CODES = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EADDRNOTAVAIL']);

/** Maps a socket/DNS/TLS/parser error to a reason code. */
function classifyError(err: unknown): HopOutcome {
  if (err instanceof BlockedAddressError) return fail('blocked_address', err.message);
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === 'string' ? e.code : '';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (code === 'EAI_AGAIN') return fail('dns_error', `temporary DNS failure (${code})`, true);
  if (DNS_ERROR_CODES.has(code) || e?.syscall === 'getaddrinfo') return fail('dns_error', `${message} (${code || 'lookup'})`);
  if (code === 'ECONNREFUSED') return fail('connection_refused', message);
  if (RESET_CODES.has(code)) return fail('connection_reset', `${message} (${code})`, true);
  if (code === 'ETIMEDOUT') return fail('timeout', `connect: the operating system timed out (${code})`, true);
  if (UNREACHABLE_CODES.has(code)) return fail('network_error', `${message} (${code})`);
  if (
    code === 'EPROTO' ||
    code.startsWith('ERR_TLS_') ||
    code.startsWith('ERR_SSL_') ||
    code.startsWith('CERT_') ||
    code.startsWith('UNABLE_TO_') ||
    code.includes('SELF_SIGNED')
  ) {
    return fail('tls_error', `${message} (${code})`);
  }
  if (code.startsWith('HPE_')) return fail('network_error', `malformed HTTP response (${code})`);
  return fail('network_error', code ? `${message} (${code})` : message);
}

/** Retry-After is either delta-seconds or an HTTP date; returns ms from now, or undefined. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** The host as http.request wants it: IPv6 literals lose their brackets. */
function bareHostname(url: URL): string {
  const h = url.hostname;
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

// ---------------------------------------------------------------------------------------------
// ImageFetcher
// ---------------------------------------------------------------------------------------------

export class ImageFetcher {
  private readonly policy: FetchPolicy;
  private readonly guard: AddressGuard;
  private readonly lookup: net.LookupFunction;

  /** @throws RangeError/TypeError for an invalid policy (a configuration error, not bad input). */
  constructor(policy: FetchPolicy) {
    const nonNegative: Array<keyof FetchPolicy> = [
      'connectTimeoutMs', 'readTimeoutMs', 'totalTimeoutMs', 'maxRedirects', 'retries',
      'backoffBaseMs', 'backoffMaxMs', 'perHostMinIntervalMs',
    ];
    for (const key of nonNegative) {
      const v = policy[key];
      // Upper bound: setTimeout fires at once for delays beyond 2^31-1 ms.
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_TIMER_MS) {
        throw new RangeError(`FetchPolicy.${key} must be a number in [0, ${MAX_TIMER_MS}], got ${String(v)}`);
      }
    }
    for (const key of ['maxBytes', 'perHostConcurrency'] as const) {
      if (!Number.isInteger(policy[key]) || policy[key] < 1) {
        throw new RangeError(`FetchPolicy.${key} must be an integer >= 1, got ${String(policy[key])}`);
      }
    }
    this.policy = { ...policy, allowPrivateNetworks: [...policy.allowPrivateNetworks] };
    this.guard = new AddressGuard(policy.allowPrivateNetworks);
    this.lookup = this.guard.lookup();
  }

  /** Downloads one image URL. Never throws; see FetchResult and the reason codes above. */
  async fetch(url: string, signal?: AbortSignal): Promise<FetchResult> {
    let start: URL;
    try {
      start = new URL(url);
    } catch {
      return { ok: false, reason: 'invalid_url', detail: `not a valid absolute URL: ${truncate(String(url))}`, attempts: 0 };
    }
    start.hash = ''; // fragments are never sent; finalUrl and loop detection ignore them
    const schemeProblem = checkScheme(start);
    if (schemeProblem) return { ok: false, ...schemeProblem, finalUrl: start.href, attempts: 0 };
    if (signal?.aborted) return { ok: false, reason: 'aborted', detail: 'aborted before the first request', attempts: 0 };

    const maxAttempts = Math.floor(this.policy.retries) + 1;
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.followChain(start, signal);
      if (outcome.ok) return { ...outcome.result, attempts: attempt };
      const { failure, finalUrl } = outcome;
      const result = (detail = failure.detail): FetchResult => ({
        ok: false,
        reason: failure.reason,
        detail: attempt > 1 ? `${detail} (after ${attempt} attempts)` : detail,
        finalUrl,
        attempts: attempt,
      });
      if (!failure.retryable || attempt >= maxAttempts) return result();

      let delay = this.backoff(attempt);
      if (failure.retryAfterMs !== undefined) {
        // The server said when to come back. Honour it, but never wait longer than backoffMaxMs:
        // a server asking for more is treated as a refusal, and we give up with its status.
        if (failure.retryAfterMs > this.policy.backoffMaxMs) {
          return result(
            `${failure.detail}; Retry-After ${Math.ceil(failure.retryAfterMs / 1000)} s exceeds the ${this.policy.backoffMaxMs} ms backoff cap`,
          );
        }
        delay = failure.retryAfterMs; // replaces the computed backoff, in both directions
      }
      if (!(await sleep(delay, signal))) {
        return { ok: false, reason: 'aborted', detail: 'aborted while waiting to retry', finalUrl, attempts: attempt };
      }
    }
  }

  /** Exponential backoff with "equal jitter": half the exponential step fixed, half random. */
  private backoff(attempt: number): number {
    const { backoffBaseMs, backoffMaxMs } = this.policy;
    const step = Math.min(backoffMaxMs, backoffBaseMs * 2 ** (attempt - 1));
    return step / 2 + Math.random() * (step / 2);
  }

  /** One attempt: requests `start` and follows redirects, validating every hop. */
  private async followChain(
    start: URL,
    signal: AbortSignal | undefined,
  ): Promise<
    | { ok: true; result: Omit<Extract<FetchResult, { ok: true }>, 'attempts'> }
    | { ok: false; failure: Failure; finalUrl: string }
  > {
    const visited = new Set<string>([start.href]);
    let current = start;
    for (let redirects = 0; ; redirects++) {
      const host = bareHostname(current);
      const gate = gateFor(host.toLowerCase(), this.policy.perHostConcurrency, this.policy.perHostMinIntervalMs);
      const release = await gate.acquire(signal);
      if (!release) {
        return { ok: false, failure: { reason: 'aborted', detail: 'aborted while queued for the host', retryable: false }, finalUrl: current.href };
      }
      let hop: HopOutcome;
      try {
        hop = await this.request(current, signal);
      } finally {
        release();
      }

      if (hop.kind === 'body') {
        return {
          ok: true,
          result: { ok: true, bytes: hop.bytes, finalUrl: current.href, status: hop.status, contentType: hop.contentType, redirects },
        };
      }
      if (hop.kind === 'fail') {
        const { kind: _kind, ...failure } = hop;
        return { ok: false, failure, finalUrl: current.href };
      }

      // A redirect: resolve it against the current URL and re-validate before following.
      let next: URL;
      try {
        next = new URL(hop.location, current);
      } catch {
        return {
          ok: false,
          failure: { reason: 'invalid_url', detail: `http ${hop.status} redirect to an invalid URL: ${truncate(hop.location)}`, retryable: false },
          finalUrl: current.href,
        };
      }
      next.hash = '';
      const schemeProblem = checkScheme(next);
      if (schemeProblem) {
        return { ok: false, failure: { ...schemeProblem, detail: `redirect: ${schemeProblem.detail}`, retryable: false }, finalUrl: next.href };
      }
      if (visited.has(next.href)) {
        return {
          ok: false,
          failure: { reason: 'redirect_loop', detail: `redirect ${redirects + 1} returns to ${truncate(next.href)}`, retryable: false },
          finalUrl: next.href,
        };
      }
      if (redirects >= this.policy.maxRedirects) {
        return {
          ok: false,
          failure: { reason: 'too_many_redirects', detail: `more than ${this.policy.maxRedirects} redirects`, retryable: false },
          finalUrl: current.href,
        };
      }
      visited.add(next.href);
      current = next;
    }
  }

  /** Performs one GET. Resolves (never rejects) once the outcome is known; the socket is destroyed then. */
  private request(url: URL, signal: AbortSignal | undefined): Promise<HopOutcome> {
    const { connectTimeoutMs, readTimeoutMs, totalTimeoutMs, maxBytes, userAgent } = this.policy;
    const isHttps = url.protocol === 'https:';
    const hostname = bareHostname(url);

    // A literal IP never reaches `lookup` (net.connect skips DNS for it), so check it here.
    if (net.isIP(hostname)) {
      const range = this.guard.blockedRange(hostname);
      if (range !== null) return Promise.resolve(fail('blocked_address', `${hostname} is not a public address (${range})`));
    }

    return new Promise<HopOutcome>((resolve) => {
      let settled = false;
      let req: http.ClientRequest | undefined;
      let res: http.IncomingMessage | undefined;
      let connectTimer: NodeJS.Timeout | undefined;
      let idleTimer: NodeJS.Timeout | undefined;
      let totalTimer: NodeJS.Timeout | undefined;

      const finish = (outcome: HopOutcome): void => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        clearTimeout(idleTimer);
        clearTimeout(totalTimer);
        signal?.removeEventListener('abort', onAbort);
        // Always tear the connection down: on failure to stop the transfer, on success because
        // the body is complete and the socket is never reused (agent: false).
        res?.destroy();
        req?.destroy();
        resolve(outcome);
      };
      const onAbort = (): void => finish(fail('aborted', 'aborted by caller'));
      const armIdle = (): void => {
        clearTimeout(idleTimer);
        idleTimer = setTimeout(() => finish(fail('timeout', `read: no data for ${readTimeoutMs} ms`, true)), readTimeoutMs);
      };

      if (signal?.aborted) {
        finish(fail('aborted', 'aborted by caller'));
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });

      const options: https.RequestOptions = {
        protocol: url.protocol,
        hostname,
        port: url.port === '' ? undefined : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: { 'user-agent': userAgent, accept: ACCEPT, 'accept-encoding': 'identity' },
        agent: false,
        lookup: this.lookup,
      };

      connectTimer = setTimeout(() => finish(fail('timeout', `connect: no connection within ${connectTimeoutMs} ms`, true)), connectTimeoutMs);
      // Total timeout is final: not retried (see module comment).
      totalTimer = setTimeout(() => finish(fail('timeout', `total: request not complete within ${totalTimeoutMs} ms`)), totalTimeoutMs);

      try {
        req = (isHttps ? https : http).request(options);
      } catch (err) {
        // Only reachable for options Node refuses synchronously (e.g. odd characters in the path).
        finish(fail('invalid_url', `request rejected: ${(err as Error).message}`));
        return;
      }

      req.on('error', (err) => finish(classifyError(err)));
      req.on('socket', (socket) => {
        socket.once(isHttps ? 'secureConnect' : 'connect', () => {
          clearTimeout(connectTimer);
          armIdle(); // from here on, waiting for the response headers counts as read idle time
        });
      });
      req.on('response', (response) => {
        res = response;
        armIdle();
        const chunks: Buffer[] = [];
        let size = 0;
        // Error/close listeners go on first so that nothing the response emits after we settle
        // (we destroy it) can be an unhandled 'error'.
        response.on('error', (err) => finish(classifyError(err)));
        response.on('close', () => {
          // Only reached before 'end' when the server closed the connection mid-body.
          if (!response.complete) finish(fail('connection_reset', `connection closed after ${size} body bytes`, true));
        });
        const status = response.statusCode ?? 0;
        const location = response.headers.location;
        if (REDIRECT_STATUSES.has(status) && location) {
          finish({ kind: 'redirect', status, location });
          return;
        }
        if (status < 200 || status > 299) {
          const retryAfter = parseRetryAfter(response.headers['retry-after']);
          const message = response.statusMessage ? ` ${response.statusMessage}` : '';
          finish(fail(`http_${status}`, `server answered ${status}${message}`, RETRYABLE_STATUSES.has(status), retryAfter));
          return;
        }

        const optOut = robotsOptOut(response.headers['x-robots-tag'], this.policy.disallowedRobotsDirectives, userAgent);
        if (optOut) {
          finish(fail('opted_out', `X-Robots-Tag: ${optOut}`));
          return;
        }
        const declared = response.headers['content-length'];
        if (declared !== undefined && Number(declared) > maxBytes) {
          finish(fail('too_large', `Content-Length ${declared} exceeds the ${maxBytes}-byte limit`));
          return;
        }
        const rawType = response.headers['content-type'];
        const contentType = rawType === undefined ? null : rawType;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            finish(fail('too_large', `body exceeds the ${maxBytes}-byte limit`));
            return;
          }
          chunks.push(chunk);
          armIdle();
        });
        response.on('end', () => {
          if (size === 0) finish(fail('empty_body', `server answered ${status} with an empty body`));
          else finish({ kind: 'body', status, contentType, bytes: Buffer.concat(chunks, size) });
        });
      });
      req.end();
    });
  }
}

function checkScheme(url: URL): { reason: string; detail: string } | null {
  if (url.protocol === 'http:' || url.protocol === 'https:') {
    if (url.hostname === '') return { reason: 'invalid_url', detail: `no host in ${truncate(url.href)}` };
    return null;
  }
  return { reason: 'unsupported_scheme', detail: `scheme ${url.protocol.replace(/:$/, '')} is not http or https` };
}

/**
 * The first disallowed directive in X-Robots-Tag header values that applies to us, or null. A value is
 * a comma-separated list; an entry `agent: directive` applies only when `agent` names our user agent.
 */
export function robotsOptOut(header: string | string[] | undefined, disallowed: string[], userAgent: string): string | null {
  if (!header || disallowed.length === 0) return null;
  const ours = userAgent.toLowerCase().split(/[\s/]/)[0] ?? '';
  const deny = new Set(disallowed.map((d) => d.toLowerCase()));
  for (const value of Array.isArray(header) ? header : [header]) {
    // In one header value, an agent prefix scopes the directives that follow it.
    let scopedToOther = false;
    for (const raw of value.split(',')) {
      let entry = raw.trim().toLowerCase();
      const scoped = /^([a-z0-9_.-]+)\s*:\s*(.*)$/.exec(entry);
      // `unavailable_after: <date>` is a directive with an argument, not an agent scope.
      if (scoped && scoped[1] !== 'unavailable_after') {
        scopedToOther = scoped[1] !== ours;
        entry = scoped[2]!;
      }
      if (!scopedToOther && deny.has(entry)) return raw.trim();
    }
  }
  return null;
}

/** Resolves true after `ms`, or false as soon as the signal fires. */
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve(false);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Keeps user-supplied strings in `detail` short. */
function truncate(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
