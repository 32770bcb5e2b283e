/**
 * ImageFetcher against real HTTP servers on 127.0.0.1 (node:http / node:net, no mocks).
 * Timing is asserted only as lower bounds (a wait happened), never as upper bounds.
 */
import http from 'node:http';
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { DEFAULT_FETCH_POLICY, ImageFetcher, parseRetryAfter, type FetchPolicy } from '../activities/ingest/fetch-image';

// ---------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------

interface Seen {
  path: string;
  headers: http.IncomingHttpHeaders;
  at: number;
}

interface TestServer {
  origin: string;
  port: number;
  seen: Seen[];
  /** Connections the server still has open. */
  openSockets(): number;
  close(): Promise<void>;
}

const servers: TestServer[] = [];

/** An HTTP server on 127.0.0.1 whose handler gets the request number (1-based) too. */
async function httpServer(
  handler: (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void,
): Promise<TestServer> {
  const seen: Seen[] = [];
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    seen.push({ path: req.url ?? '', headers: req.headers, at: Date.now() });
    handler(req, res, seen.length);
  });
  return listen(server, sockets, seen);
}

/** A TCP server that accepts connections and never says anything. */
async function silentServer(): Promise<TestServer> {
  const sockets = new Set<net.Socket>();
  // resume(): read (and ignore) the request, so the client's close is noticed.
  return listen(net.createServer((socket) => socket.resume()), sockets, []);
}

async function listen(server: net.Server, sockets: Set<net.Socket>, seen: Seen[]): Promise<TestServer> {
  server.on('connection', (socket: net.Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const handle: TestServer = {
    origin: `http://127.0.0.1:${port}`,
    port,
    seen,
    openSockets: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  servers.push(handle);
  return handle;
}

/** Waits (briefly) until the server has seen every client connection closed. */
async function expectAllSocketsClosed(server: TestServer): Promise<void> {
  for (let i = 0; i < 100 && server.openSockets() > 0; i++) await new Promise((r) => setTimeout(r, 10));
  expect(server.openSockets()).toBe(0);
}

/** A port nothing listens on: bind, read the port, close. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const BASE: FetchPolicy = {
  connectTimeoutMs: 2_000,
  readTimeoutMs: 2_000,
  totalTimeoutMs: 5_000,
  maxBytes: 1_000_000,
  maxRedirects: 5,
  allowPrivateNetworks: ['127.0.0.1/32'],
  userAgent: 'mella-test/1.0',
  retries: 0,
  backoffBaseMs: 10,
  backoffMaxMs: 200,
  perHostConcurrency: 16,
  perHostMinIntervalMs: 0,
  disallowedRobotsDirectives: ['noai', 'noimageai', 'noindex', 'noimageindex'],
};
const fetcher = (overrides: Partial<FetchPolicy> = {}): ImageFetcher => new ImageFetcher({ ...BASE, ...overrides });

let png: Buffer;

beforeAll(async () => {
  png = await sharp({ create: { width: 8, height: 6, channels: 3, background: '#3a7' } }).png().toBuffer();
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

function serveImage(res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
  res.end(png);
}

// ---------------------------------------------------------------------------------------------
// tests
// ---------------------------------------------------------------------------------------------

describe('ImageFetcher: success and HTTP statuses', () => {
  it('downloads a 200 image with the agreed request headers', async () => {
    const s = await httpServer((_req, res) => serveImage(res));
    const r = await fetcher().fetch(`${s.origin}/cat.png?x=1#frag`);
    expect(r).toMatchObject({ ok: true, status: 200, contentType: 'image/png', redirects: 0, attempts: 1 });
    if (!r.ok) throw new Error('unreachable');
    expect(r.bytes.equals(png)).toBe(true);
    expect(r.finalUrl).toBe(`${s.origin}/cat.png?x=1`);
    expect(s.seen[0]!.path).toBe('/cat.png?x=1');
    expect(s.seen[0]!.headers['accept-encoding']).toBe('identity');
    expect(s.seen[0]!.headers.accept).toBe('image/*,*/*;q=0.5');
    expect(s.seen[0]!.headers['user-agent']).toBe('mella-test/1.0');
    await expectAllSocketsClosed(s);
  });

  it('X-Robots-Tag noai is opted_out (body not read); other crawlers\' directives and an empty deny list are ignored', async () => {
    const s = await httpServer((req, res) => {
      const tag = req.url === '/ai.png' ? 'noai' : req.url === '/other.png' ? 'otherbot: noimageai, nofollow' : 'mella-test: noimageai';
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length, 'x-robots-tag': tag });
      res.end(png);
    });
    expect(await fetcher().fetch(`${s.origin}/ai.png`)).toMatchObject({ ok: false, reason: 'opted_out', detail: 'X-Robots-Tag: noai' });
    expect(await fetcher().fetch(`${s.origin}/other.png`)).toMatchObject({ ok: true });
    expect(await fetcher().fetch(`${s.origin}/ours.png`)).toMatchObject({ ok: false, reason: 'opted_out' });
    expect(await fetcher({ disallowedRobotsDirectives: [] }).fetch(`${s.origin}/ai.png`)).toMatchObject({ ok: true });
    await expectAllSocketsClosed(s);
  });

  it('404 is final, not retried', async () => {
    const s = await httpServer((_req, res) => {
      res.writeHead(404);
      res.end('nope');
    });
    const r = await fetcher({ retries: 3 }).fetch(`${s.origin}/missing.jpg`);
    expect(r).toMatchObject({ ok: false, reason: 'http_404', attempts: 1, finalUrl: `${s.origin}/missing.jpg` });
    expect(s.seen).toHaveLength(1);
  });

  it('500 then success after a retry', async () => {
    const s = await httpServer((_req, res, n) => {
      if (n === 1) {
        res.writeHead(500);
        res.end();
      } else serveImage(res);
    });
    const r = await fetcher({ retries: 2 }).fetch(`${s.origin}/flaky.png`);
    expect(r).toMatchObject({ ok: true, status: 200, attempts: 2 });
  });

  it('500 with no retries left reports http_500', async () => {
    const s = await httpServer((_req, res) => {
      res.writeHead(500);
      res.end();
    });
    const r = await fetcher({ retries: 1 }).fetch(`${s.origin}/down.png`);
    expect(r).toMatchObject({ ok: false, reason: 'http_500', attempts: 2 });
  });

  it('429 with Retry-After: 1 waits and then succeeds', async () => {
    const s = await httpServer((_req, res, n) => {
      if (n === 1) {
        res.writeHead(429, { 'retry-after': '1' });
        res.end();
      } else serveImage(res);
    });
    // backoffBaseMs is 10 ms: only honouring Retry-After explains a gap of about a second.
    const r = await fetcher({ retries: 2, backoffMaxMs: 5_000 }).fetch(`${s.origin}/busy.png`);
    expect(r).toMatchObject({ ok: true, attempts: 2 });
    expect(s.seen).toHaveLength(2);
    expect(s.seen[1]!.at - s.seen[0]!.at).toBeGreaterThanOrEqual(900);
  });

  it('429 forever gives up with http_429 after all retries', async () => {
    const s = await httpServer((_req, res) => {
      res.writeHead(429, { 'retry-after': '0' });
      res.end();
    });
    const r = await fetcher({ retries: 2 }).fetch(`${s.origin}/busy.png`);
    expect(r).toMatchObject({ ok: false, reason: 'http_429', attempts: 3 });
    expect(s.seen).toHaveLength(3);
  });

  it('429 asking to wait longer than the backoff cap gives up at once', async () => {
    const s = await httpServer((_req, res) => {
      res.writeHead(429, { 'retry-after': '3600' });
      res.end();
    });
    const r = await fetcher({ retries: 5, backoffMaxMs: 1_000 }).fetch(`${s.origin}/busy.png`);
    expect(r).toMatchObject({ ok: false, reason: 'http_429', attempts: 1 });
    if (r.ok) throw new Error('unreachable');
    expect(r.detail).toMatch(/Retry-After/);
  });

  it('parses Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('5', now)).toBe(5_000);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 00:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('empty 200 body is empty_body', async () => {
    const s = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': 0 });
      res.end();
    });
    expect(await fetcher().fetch(`${s.origin}/empty.jpg`)).toMatchObject({ ok: false, reason: 'empty_body', attempts: 1 });
  });
});

describe('ImageFetcher: network failures and timeouts', () => {
  it('closed port is connection_refused and is not retried', async () => {
    const port = await closedPort();
    const r = await fetcher({ retries: 2 }).fetch(`http://127.0.0.1:${port}/x.png`);
    expect(r).toMatchObject({ ok: false, reason: 'connection_refused', attempts: 1 });
  });

  it('a server that never answers hits the read timeout (retried)', async () => {
    const s = await silentServer();
    const r = await fetcher({ readTimeoutMs: 150, retries: 1 }).fetch(`${s.origin}/x.png`);
    expect(r).toMatchObject({ ok: false, reason: 'timeout', attempts: 2 });
    if (r.ok) throw new Error('unreachable');
    expect(r.detail).toMatch(/^read/);
    await expectAllSocketsClosed(s);
  });

  it('a TLS handshake that never completes hits the connect timeout (retried)', async () => {
    const s = await silentServer(); // accepts TCP, never answers the ClientHello
    const r = await fetcher({ connectTimeoutMs: 150, readTimeoutMs: 5_000, retries: 1 }).fetch(`https://127.0.0.1:${s.port}/x.png`);
    expect(r).toMatchObject({ ok: false, reason: 'timeout', attempts: 2 });
    if (r.ok) throw new Error('unreachable');
    expect(r.detail).toMatch(/^connect/);
    await expectAllSocketsClosed(s);
  });

  it('https to a plain-HTTP server is tls_error', async () => {
    const s = await httpServer((_req, res) => serveImage(res));
    const r = await fetcher({ retries: 2 }).fetch(`https://127.0.0.1:${s.port}/x.png`);
    expect(r).toMatchObject({ ok: false, reason: 'tls_error', attempts: 1 });
  });

  it('a trickling server hits the total timeout (not retried)', async () => {
    const s = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': 1000 });
      const timer = setInterval(() => res.write(Buffer.from([0x42])), 200);
      res.on('close', () => clearInterval(timer));
    });
    const r = await fetcher({ totalTimeoutMs: 700, readTimeoutMs: 2_000, retries: 2 }).fetch(`${s.origin}/slow.png`);
    expect(r).toMatchObject({ ok: false, reason: 'timeout', attempts: 1 });
    if (r.ok) throw new Error('unreachable');
    expect(r.detail).toMatch(/^total/);
    await expectAllSocketsClosed(s);
  });

  it('a connection dropped mid-body is connection_reset', async () => {
    const s = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': 1000 });
      res.write(Buffer.alloc(100, 1), () => res.socket?.destroy());
    });
    const r = await fetcher().fetch(`${s.origin}/cut.png`);
    expect(r).toMatchObject({ ok: false, reason: 'connection_reset', attempts: 1 });
  });

  it('an unresolvable host name is dns_error', async () => {
    const r = await fetcher().fetch('http://no-such-host.invalid/x.png');
    expect(r).toMatchObject({ ok: false, reason: 'dns_error' });
  });
});

describe('ImageFetcher: redirects', () => {
  it('follows redirects and reports how many', async () => {
    const s = await httpServer((req, res) => {
      if (req.url === '/a') {
        res.writeHead(301, { location: '/b' });
        res.end();
      } else if (req.url === '/b') {
        res.writeHead(302, { location: `http://127.0.0.1:${s.port}/img.png` });
        res.end();
      } else serveImage(res);
    });
    const r = await fetcher().fetch(`${s.origin}/a`);
    expect(r).toMatchObject({ ok: true, redirects: 2, finalUrl: `${s.origin}/img.png`, attempts: 1 });
  });

  it('a redirect loop is redirect_loop', async () => {
    const s = await httpServer((req, res) => {
      res.writeHead(302, { location: req.url === '/a' ? '/b' : '/a' });
      res.end();
    });
    const r = await fetcher({ maxRedirects: 10 }).fetch(`${s.origin}/a`);
    expect(r).toMatchObject({ ok: false, reason: 'redirect_loop', finalUrl: `${s.origin}/a` });
    expect(s.seen).toHaveLength(2);
  });

  it('an endless chain is too_many_redirects; exactly maxRedirects is fine', async () => {
    const s = await httpServer((req, res) => {
      res.writeHead(307, { location: `/r/${Number(req.url?.split('/')[2] ?? 0) + 1}` });
      res.end();
    });
    const r = await fetcher({ maxRedirects: 3 }).fetch(`${s.origin}/r/0`);
    expect(r).toMatchObject({ ok: false, reason: 'too_many_redirects' });
    expect(s.seen).toHaveLength(4); // the first request and three redirects followed

    const t = await httpServer((req, res) => {
      if (req.url === '/r/3') serveImage(res);
      else {
        res.writeHead(308, { location: `/r/${Number(req.url?.split('/')[2] ?? 0) + 1}` });
        res.end();
      }
    });
    expect(await fetcher({ maxRedirects: 3 }).fetch(`${t.origin}/r/0`)).toMatchObject({ ok: true, redirects: 3 });
  });

  it.each([
    ['http://10.0.0.1/secret.png'],
    ['http://169.254.169.254/latest/meta-data/'],
    ['http://[::ffff:10.0.0.1]/x.png'],
    ['http://192.168.0.1:8080/admin'],
  ])('a public-looking redirect to %s is blocked_address', async (target) => {
    const s = await httpServer((_req, res) => {
      res.writeHead(302, { location: target });
      res.end();
    });
    const r = await fetcher({ retries: 2 }).fetch(`${s.origin}/innocent.png`);
    expect(r).toMatchObject({ ok: false, reason: 'blocked_address', attempts: 1 });
    if (r.ok) throw new Error('unreachable');
    expect(r.finalUrl).toBe(new URL(target).href);
  });

  it('a redirect to another scheme is unsupported_scheme', async () => {
    const s = await httpServer((_req, res) => {
      res.writeHead(302, { location: 'file:///etc/passwd' });
      res.end();
    });
    expect(await fetcher().fetch(`${s.origin}/x`)).toMatchObject({ ok: false, reason: 'unsupported_scheme' });
  });
});

describe('ImageFetcher: SSRF guard', () => {
  it('blocks loopback when allowPrivateNetworks is empty, by IP and by name, without connecting', async () => {
    const s = await httpServer((_req, res) => serveImage(res));
    const guarded = fetcher({ allowPrivateNetworks: [], retries: 2 });
    expect(await guarded.fetch(`${s.origin}/x.png`)).toMatchObject({ ok: false, reason: 'blocked_address', attempts: 1 });
    expect(await guarded.fetch(`http://localhost:${s.port}/x.png`)).toMatchObject({ ok: false, reason: 'blocked_address' });
    expect(await guarded.fetch(`http://[::1]:${s.port}/x.png`)).toMatchObject({ ok: false, reason: 'blocked_address' });
    // WHATWG URL parsing turns these spellings into 127.0.0.1 before the guard sees them.
    expect(await guarded.fetch(`http://2130706433:${s.port}/x.png`)).toMatchObject({ ok: false, reason: 'blocked_address' });
    expect(await guarded.fetch(`http://0x7f.1:${s.port}/x.png`)).toMatchObject({ ok: false, reason: 'blocked_address' });
    expect(s.seen).toHaveLength(0);
  });

  it('allows loopback when listed in allowPrivateNetworks', async () => {
    const s = await httpServer((_req, res) => serveImage(res));
    expect(await fetcher({ allowPrivateNetworks: ['127.0.0.1/32'] }).fetch(`${s.origin}/x.png`)).toMatchObject({ ok: true });
    // By name: every address localhost resolves to must be allowed.
    const byName = fetcher({ allowPrivateNetworks: ['127.0.0.0/8', '::1'] });
    expect(await byName.fetch(`http://localhost:${s.port}/x.png`)).toMatchObject({ ok: true });
  });

  it.each([
    'http://10.1.2.3/', 'http://172.16.0.1/', 'http://192.168.1.1/', 'http://100.64.0.1/', 'http://0.0.0.0/',
    'http://224.0.0.1/', 'http://255.255.255.255/', 'http://240.0.0.1/', 'http://[fe80::1]/', 'http://[fc00::1]/',
    'http://[::]/', 'http://[::ffff:127.0.0.1]/', 'http://[::7f00:1]/', 'http://[64:ff9b::a00:1]/', 'http://[2001:db8::1]/',
  ])('literal non-public address %s is blocked_address', async (url) => {
    expect(await fetcher({ allowPrivateNetworks: [] }).fetch(url)).toMatchObject({ ok: false, reason: 'blocked_address', attempts: 1 });
  });

  it('rejects a malformed allowPrivateNetworks entry at construction', () => {
    expect(() => fetcher({ allowPrivateNetworks: ['not-an-ip'] })).toThrow(TypeError);
    expect(() => fetcher({ perHostConcurrency: 0 })).toThrow(RangeError);
  });
});

describe('ImageFetcher: input validation', () => {
  it.each([
    ['ftp://example.com/x.png', 'unsupported_scheme'],
    ['file:///etc/passwd', 'unsupported_scheme'],
    ['data:image/png;base64,AAAA', 'unsupported_scheme'],
    ['not a url at all', 'invalid_url'],
    ['http://', 'invalid_url'],
    ['', 'invalid_url'],
  ])('%s is %s without any request', async (url, reason) => {
    expect(await fetcher().fetch(url)).toMatchObject({ ok: false, reason, attempts: 0 });
  });
});

describe('ImageFetcher: size limits', () => {
  it('Content-Length over maxBytes is too_large before reading the body', async () => {
    const s = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': 5_000 });
      res.end(Buffer.alloc(5_000));
    });
    const r = await fetcher({ maxBytes: 1_000 }).fetch(`${s.origin}/big.png`);
    expect(r).toMatchObject({ ok: false, reason: 'too_large', attempts: 1 });
    if (r.ok) throw new Error('unreachable');
    expect(r.detail).toMatch(/Content-Length/);
    await expectAllSocketsClosed(s);
  });

  it('a chunked body over maxBytes is too_large while streaming', async () => {
    const s = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' }); // no length: chunked
      let sent = 0;
      const timer = setInterval(() => {
        res.write(Buffer.alloc(600, 7));
        if (++sent === 10) {
          clearInterval(timer);
          res.end();
        }
      }, 5);
      res.on('close', () => clearInterval(timer));
    });
    const r = await fetcher({ maxBytes: 1_000 }).fetch(`${s.origin}/big.png`);
    expect(r).toMatchObject({ ok: false, reason: 'too_large' });
    if (r.ok) throw new Error('unreachable');
    expect(r.detail).toMatch(/body exceeds/);
    await expectAllSocketsClosed(s);
  });

  it('a chunked body within maxBytes is accepted', async () => {
    const s = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'image/png' });
      res.write(png.subarray(0, 10));
      res.end(png.subarray(10));
    });
    const r = await fetcher({ maxBytes: png.length }).fetch(`${s.origin}/ok.png`);
    expect(r.ok && r.bytes.equals(png)).toBe(true);
  });
});

describe('ImageFetcher: per-host politeness', () => {
  it('never exceeds perHostConcurrency simultaneous requests to one host', async () => {
    let active = 0;
    let maxActive = 0;
    const s = await httpServer((_req, res) => {
      active++;
      maxActive = Math.max(maxActive, active);
      setTimeout(() => {
        active--;
        serveImage(res);
      }, 60);
    });
    const f = fetcher({ perHostConcurrency: 2 });
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => f.fetch(`${s.origin}/img${i}.png`)));
    expect(results.every((r) => r.ok)).toBe(true);
    expect(s.seen).toHaveLength(8);
    expect(maxActive).toBe(2);
  });

  it('spaces request starts to one host by perHostMinIntervalMs', async () => {
    const s = await httpServer((_req, res) => serveImage(res));
    const f = fetcher({ perHostConcurrency: 4, perHostMinIntervalMs: 100 });
    await Promise.all(Array.from({ length: 4 }, (_, i) => f.fetch(`${s.origin}/img${i}.png`)));
    // Measured at the server, so connect jitter blurs single gaps a little; the span cannot shrink.
    const starts = s.seen.map((x) => x.at).sort((a, b) => a - b);
    for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!).toBeGreaterThanOrEqual(50);
    expect(starts[3]! - starts[0]!).toBeGreaterThanOrEqual(250);
  });
});

describe('ImageFetcher: abort', () => {
  it('an aborted signal cancels an in-flight request and closes its socket', async () => {
    const s = await silentServer();
    const controller = new AbortController();
    const pending = fetcher({ readTimeoutMs: 10_000, totalTimeoutMs: 10_000, retries: 3 }).fetch(`${s.origin}/x.png`, controller.signal);
    setTimeout(() => controller.abort(), 100);
    expect(await pending).toMatchObject({ ok: false, reason: 'aborted', attempts: 1 });
    await expectAllSocketsClosed(s);
  });

  it('an aborted signal cancels the backoff sleep', async () => {
    const s = await httpServer((_req, res) => {
      res.writeHead(503, { 'retry-after': '30' });
      res.end();
    });
    const controller = new AbortController();
    const pending = fetcher({ retries: 3, backoffMaxMs: 60_000 }).fetch(`${s.origin}/x.png`, controller.signal);
    setTimeout(() => controller.abort(), 200);
    const r = await pending;
    expect(r).toMatchObject({ ok: false, reason: 'aborted', attempts: 1 });
    if (r.ok) throw new Error('unreachable');
    expect(r.detail).toMatch(/retry/);
  });

  it('an aborted signal releases a request still queued behind the host limit', async () => {
    const s = await silentServer();
    const f = fetcher({ perHostConcurrency: 1, readTimeoutMs: 10_000, totalTimeoutMs: 10_000 });
    const first = new AbortController();
    const second = new AbortController();
    const a = f.fetch(`${s.origin}/a.png`, first.signal);
    const b = f.fetch(`${s.origin}/b.png`, second.signal);
    setTimeout(() => second.abort(), 100);
    const rb = await b;
    expect(rb).toMatchObject({ ok: false, reason: 'aborted' });
    if (rb.ok) throw new Error('unreachable');
    expect(rb.detail).toMatch(/queued/);
    first.abort();
    expect(await a).toMatchObject({ ok: false, reason: 'aborted' });
  });

  it('an already-aborted signal makes no request', async () => {
    const s = await httpServer((_req, res) => serveImage(res));
    const controller = new AbortController();
    controller.abort();
    expect(await fetcher().fetch(`${s.origin}/x.png`, controller.signal)).toMatchObject({ ok: false, reason: 'aborted', attempts: 0 });
    expect(s.seen).toHaveLength(0);
  });
});

describe('DEFAULT_FETCH_POLICY', () => {
  it('is a valid policy that guards every private network', () => {
    expect(() => new ImageFetcher(DEFAULT_FETCH_POLICY)).not.toThrow();
    expect(DEFAULT_FETCH_POLICY.allowPrivateNetworks).toEqual([]);
  });
});
