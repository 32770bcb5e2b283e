/**
 * The refresh's conditional GET (activities/crawl/revalidate.ts) against a real HTTP server: 304 for
 * matching validators, anything else means "render it", the SSRF guard on literal IPs and on names,
 * a bounded wait, never a throw.
 */
import http from 'node:http';
import type net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revalidate } from '../activities/crawl/revalidate';

const seen: Array<Record<string, string | undefined>> = [];
let server: http.Server;
let port = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    seen.push({ path: req.url, ua: req.headers['user-agent'], inm: req.headers['if-none-match'], ims: req.headers['if-modified-since'] });
    if (req.url === '/hang') return; // never answers
    if (req.url === '/etag') {
      if (req.headers['if-none-match'] === '"v2"') res.writeHead(304, { etag: '"v2"' }).end();
      else res.writeHead(200, { etag: '"v2"', 'content-type': 'text/html' }).end('<p>v2</p>');
      return;
    }
    if (req.url === '/dated') {
      const since = Date.parse(req.headers['if-modified-since'] ?? '');
      if (since >= Date.parse('Tue, 01 Dec 2020 10:00:00 GMT')) res.writeHead(304).end();
      else res.writeHead(200, { 'last-modified': 'Tue, 01 Dec 2020 10:00:00 GMT' }).end('<p>x</p>');
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as net.AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

const opts = { userAgent: 'MellaBot/test', allowPrivateNetworks: ['127.0.0.1/32'] };

describe('revalidate', () => {
  it('a matching ETag is 304 (If-None-Match wins over If-Modified-Since); a new one means render', async () => {
    const base = `http://127.0.0.1:${port}`;
    expect(await revalidate(`${base}/etag`, { etag: '"v2"', lastModified: 'Mon, 01 Jan 2001 00:00:00 GMT' }, opts)).toMatchObject({ notModified: true, status: 304, etag: '"v2"', header: 'If-None-Match' });
    expect(seen.at(-1)).toMatchObject({ ua: 'MellaBot/test', inm: '"v2"', ims: 'Mon, 01 Jan 2001 00:00:00 GMT' });
    expect(await revalidate(`${base}/etag`, { etag: '"v1"' }, opts)).toMatchObject({ notModified: false, status: 200 });
  });

  it('Last-Modified alone works; a missing page or no validators mean render', async () => {
    const base = `http://127.0.0.1:${port}`;
    expect(await revalidate(`${base}/dated`, { lastModified: 'Tue, 01 Dec 2020 10:00:00 GMT' }, opts)).toMatchObject({ notModified: true, header: 'If-Modified-Since' });
    expect(await revalidate(`${base}/dated`, { lastModified: 'Mon, 30 Nov 2020 10:00:00 GMT' }, opts)).toMatchObject({ notModified: false, status: 200 });
    expect(await revalidate(`${base}/gone`, { etag: '"v1"' }, opts)).toMatchObject({ notModified: false, status: 404 });
    const before = seen.length;
    expect(await revalidate(`${base}/etag`, { etag: null, lastModified: '  ' }, opts)).toMatchObject({ notModified: false, status: null, detail: 'no validators stored' });
    expect(seen.length).toBe(before); // nothing was sent
  });

  it('the SSRF guard holds: a private literal IP and a name resolving to loopback are refused without a request', async () => {
    const before = seen.length;
    expect(await revalidate(`http://127.0.0.1:${port}/etag`, { etag: '"v2"' }, { ...opts, allowPrivateNetworks: [] })).toMatchObject({ notModified: false, detail: expect.stringMatching(/address blocked/) });
    expect(await revalidate(`http://localhost:${port}/etag`, { etag: '"v2"' }, { ...opts, allowPrivateNetworks: [] })).toMatchObject({ notModified: false, status: null, detail: expect.stringMatching(/not a public address/) });
    expect(await revalidate('ftp://127.0.0.1/x', { etag: '"v2"' }, opts)).toMatchObject({ notModified: false, detail: 'scheme ftp:' });
    expect(seen.length).toBe(before);
  });

  it('a server that never answers is given up after the timeout, and an abort ends the wait', async () => {
    expect(await revalidate(`http://127.0.0.1:${port}/hang`, { etag: '"v2"' }, { ...opts, timeoutMs: 300 })).toMatchObject({ notModified: false, detail: 'no answer within 300 ms' });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    expect(await revalidate(`http://127.0.0.1:${port}/hang`, { etag: '"v2"' }, { ...opts, signal: ac.signal })).toMatchObject({ notModified: false, detail: 'aborted' });
  });
});
