/**
 * HTTP revalidation for refresh runs: before a known page is rendered again, one conditional GET with
 * the validators its previous crawl stored (`If-None-Match: <ETag>`, `If-Modified-Since:
 * <Last-Modified>`, RFC 9110 section 13). A `304 Not Modified` means the page is unchanged and the
 * browser is not started for it; any other answer (200, a redirect, an error) means "render it" and
 * the content hash decides as before.
 *
 * The request goes through the same SSRF guard as the browser's proxy and the image downloader
 * (`AddressGuard.lookup()`: every address of the name checked, the socket connects only to checked
 * addresses; a literal IP checked directly), sends the crawl's user agent, reads no body, follows no
 * redirect, and is bounded in time. It never throws.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { AddressGuard } from '../shared/address-guard';

export interface Validators {
  etag?: string | null;
  lastModified?: string | null;
}

export type Revalidation =
  | { notModified: true; status: 304; etag: string | null; lastModified: string | null; header: 'If-None-Match' | 'If-Modified-Since' }
  | { notModified: false; status: number | null; detail: string };

export interface RevalidateOptions {
  userAgent: string;
  allowPrivateNetworks: readonly string[];
  /** Whole request, connect to headers (default 10 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** True when the stored validators allow a conditional request at all. */
export function hasValidators(v: Validators): boolean {
  return Boolean(v.etag?.trim() || v.lastModified?.trim());
}

export async function revalidate(url: string, validators: Validators, options: RevalidateOptions): Promise<Revalidation> {
  if (!hasValidators(validators)) return { notModified: false, status: null, detail: 'no validators stored' };
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return { notModified: false, status: null, detail: 'invalid URL' };
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') return { notModified: false, status: null, detail: `scheme ${target.protocol}` };
  const guard = new AddressGuard(options.allowPrivateNetworks);
  const host = target.hostname.replace(/^\[|\]$/g, '');
  if (net.isIP(host)) {
    const blocked = guard.blockedRange(host);
    if (blocked) return { notModified: false, status: null, detail: `address blocked (${blocked})` };
  }
  const headers: Record<string, string> = { 'user-agent': options.userAgent, accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.5' };
  // An ETag is the stronger validator: when both are present, If-None-Match decides (RFC 9110 13.1.3).
  const header = validators.etag?.trim() ? 'If-None-Match' : 'If-Modified-Since';
  if (validators.etag?.trim()) headers['if-none-match'] = validators.etag.trim();
  if (validators.lastModified?.trim()) headers['if-modified-since'] = validators.lastModified.trim();
  const timeoutMs = options.timeoutMs ?? 10_000;

  return new Promise<Revalidation>((resolve) => {
    let settled = false;
    const finish = (r: Revalidation) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
      req.destroy();
      resolve(r);
    };
    const client = target.protocol === 'https:' ? https : http;
    const req = client.request(target, { method: 'GET', headers, lookup: guard.lookup(), agent: false }, (res) => {
      const status = res.statusCode ?? 0;
      res.resume();
      if (status === 304) {
        const etag = typeof res.headers.etag === 'string' ? res.headers.etag : null;
        const lastModified = typeof res.headers['last-modified'] === 'string' ? res.headers['last-modified'] : null;
        finish({ notModified: true, status: 304, etag, lastModified, header });
      } else {
        finish({ notModified: false, status, detail: `HTTP ${status}` });
      }
    });
    const timer = setTimeout(() => finish({ notModified: false, status: null, detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
    const onAbort = () => finish({ notModified: false, status: null, detail: 'aborted' });
    options.signal?.addEventListener('abort', onAbort, { once: true });
    req.on('error', (err) => finish({ notModified: false, status: null, detail: err.message.split('\n')[0]! }));
    req.end();
  });
}
