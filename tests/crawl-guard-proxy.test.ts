/**
 * GuardProxy's shared origin pool (guard-proxy.ts, `originAgent`): the proxies of one renderer lend
 * pooled connections per request. A page's budget cut and its close destroy the connections its own
 * requests are using, never an idle one another page takes next. Plain node:http on 127.0.0.1, no
 * browser: requests go to the proxy in absolute form, as Chromium sends them.
 */
import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuardProxy, originAgent } from '../activities/crawl/guard-proxy';
import { AddressGuard } from '../activities/shared/address-guard';

let origin: http.Server;
let base = '';
let accepted = 0;

beforeAll(async () => {
  origin = http.createServer((req, res) => {
    if (req.url === '/big') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      // more than the budget below, in pieces, so the cut lands while the response is in flight
      let left = 20;
      const more = () => {
        if (left-- <= 0) return res.end();
        res.write(Buffer.alloc(16_384, 1));
        setTimeout(more, 5);
      };
      more();
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`small ${req.url}`);
  });
  origin.on('connection', () => accepted++);
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(origin.address() as net.AddressInfo).port}`;
});

afterAll(async () => {
  origin.closeAllConnections();
  await new Promise<void>((resolve) => origin.close(() => resolve()));
});

/** One request through a proxy, as a browser sends it (absolute form, a connection of its own). */
function viaProxy(proxy: GuardProxy, path: string): Promise<{ status: number; body: Buffer | null }> {
  const p = new URL(proxy.url);
  return new Promise((resolve) => {
    const req = http.request({ host: p.hostname, port: Number(p.port), path: `${base}${path}`, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
      res.on('error', () => resolve({ status: res.statusCode ?? 0, body: null }));
      res.on('aborted', () => resolve({ status: res.statusCode ?? 0, body: null }));
    });
    req.on('error', () => resolve({ status: 0, body: null }));
    req.end();
  });
}

describe('GuardProxy with a shared origin pool', () => {
  it('reuses one page\'s idle origin connections for the next, and a budget cut or close leaves idle ones alone', async () => {
    const guard = new AddressGuard(['127.0.0.1/32']);
    const pool = originAgent();
    const a = await GuardProxy.start(guard, { agent: pool });
    const b = await GuardProxy.start(guard, { agent: pool, maxBytesFromOrigins: 100_000 });
    try {
      // page b opens two connections at once; both go back to the pool idle
      const start = accepted;
      const pair = await Promise.all([viaProxy(b, '/one'), viaProxy(b, '/two')]);
      expect(pair.map((r) => r.status)).toEqual([200, 200]);
      expect(accepted - start).toBe(2);

      // page b's big response takes one of them and passes its budget: that one is cut
      const big = await viaProxy(b, '/big');
      expect(b.budgetExceeded).toBe(true);
      expect(big.body === null || big.body.length < 20 * 16_384).toBe(true);

      // the other stayed idle in the pool, through b's cut and b's close: page a takes it
      await b.close();
      const before = accepted;
      expect((await viaProxy(a, '/three')).body?.toString()).toBe('small /three');
      expect(accepted - before).toBe(0);
      // and page b's refusals stay b's: a is not over budget
      expect(a.budgetExceeded).toBe(false);
    } finally {
      await a.close();
      await b.close();
      pool.destroy();
    }
  });
});
