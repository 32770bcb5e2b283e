import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the sample server answers on one path (the demo, the tests and the benchmark use it). */
export type Route =
  | { kind: 'bytes'; body: Buffer; contentType: string; headers?: Record<string, string>; delayMs?: number }
  | { kind: 'status'; status: number; headers?: Record<string, string>; body?: string }
  | { kind: 'redirect'; location: string; status?: number }
  | { kind: 'trickle'; body: Buffer; contentType: string; intervalMs: number }
  | { kind: 'hang' }
  /** Fails `times` times with `status` (and Retry-After if given), then serves `then`. */
  | { kind: 'flaky'; times: number; status: number; retryAfter?: string; then: Route };

export interface SampleServer {
  baseUrl: string;
  port: number;
  url(path: string): string;
  set(path: string, route: Route): void;
  /** Requests served per path. */
  hits: Map<string, number>;
  /** When each request arrived (ms since the epoch), per path. */
  hitTimes: Map<string, number[]>;
  close(): Promise<void>;
}

/** A real HTTP server on 127.0.0.1 serving the routes it is given. */
export async function startSampleServer(routes: Map<string, Route> = new Map(), port = 0): Promise<SampleServer> {
  const hits = new Map<string, number>();
  const hitTimes = new Map<string, number[]>();
  const failures = new Map<string, number>();
  const sockets = new Set<import('node:net').Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const serve = (req: http.IncomingMessage, res: http.ServerResponse, path: string, route: Route | undefined) => {
    if (!route) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    switch (route.kind) {
      case 'bytes': {
        const send = () => {
          if (res.destroyed) return;
          // As a static file server does: a strong ETag from the bytes, and 304 to a matching If-None-Match.
          const etag = route.headers?.etag ?? `"${createHash('sha1').update(route.body).digest('base64url')}"`;
          const ifNoneMatch = req.headers['if-none-match'];
          if (ifNoneMatch && ifNoneMatch.split(',').map((t) => t.trim().replace(/^W\//, '')).includes(etag.replace(/^W\//, ''))) {
            res.writeHead(304, { etag }).end();
            return;
          }
          res.writeHead(200, { 'content-type': route.contentType, 'content-length': route.body.length, etag, ...route.headers }).end(route.body);
        };
        if (!route.delayMs) return send();
        const t = setTimeout(() => {
          timers.delete(t);
          send();
        }, route.delayMs);
        timers.add(t);
        return;
      }
      case 'status':
        res.writeHead(route.status, { 'content-type': 'text/plain', ...route.headers }).end(route.body ?? `status ${route.status}`);
        return;
      case 'redirect':
        res.writeHead(route.status ?? 302, { location: route.location }).end();
        return;
      case 'hang':
        return; // never answers; the client's timeout must fire
      case 'trickle': {
        res.writeHead(200, { 'content-type': route.contentType, 'content-length': route.body.length });
        let i = 0;
        const t = setInterval(() => {
          if (i >= route.body.length || res.destroyed) {
            clearInterval(t);
            timers.delete(t);
            res.end();
            return;
          }
          res.write(route.body.subarray(i, i + 1));
          i++;
        }, route.intervalMs);
        timers.add(t);
        return;
      }
      case 'flaky': {
        const n = failures.get(path) ?? 0;
        if (n < route.times) {
          failures.set(path, n + 1);
          res.writeHead(route.status, route.retryAfter ? { 'retry-after': route.retryAfter } : {}).end(`status ${route.status}`);
          return;
        }
        serve(req, res, path, route.then);
        return;
      }
    }
  };

  const server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    hits.set(path, (hits.get(path) ?? 0) + 1);
    (hitTimes.get(path) ?? hitTimes.set(path, []).get(path)!).push(Date.now());
    serve(req, res, path, routes.get(path));
  });
  server.keepAliveTimeout = 5_000;
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${actual}`;
  return {
    baseUrl,
    port: actual,
    url: (p) => `${baseUrl}${p.startsWith('/') ? p : `/${p}`}`,
    set: (p, r) => void routes.set(p, r),
    hits,
    hitTimes,
    close: () =>
      new Promise<void>((resolve) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
