/**
 * Crawl frontier URL normalization, allowed-domain matching and robots.txt semantics
 * (activities/crawl/url-normalize.ts, activities/crawl/robots.ts). No fixtures needed; the robots fetch
 * cases run against a node:http server on 127.0.0.1.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_USER_AGENT,
  ROBOTS_MAX_BYTES,
  RobotsOriginError,
  fetchRobots,
  productToken,
  robotsFromFetch,
  robotsFromText,
  robotsUrlFor,
} from '../activities/crawl/robots';
import {
  TRACKING_PARAMS,
  UrlRejectedError,
  hostMatchesDomain,
  isTrackingParam,
  isUrlAllowed,
  normalizeDomain,
  normalizeUrl,
  normalizeUrlOrThrow,
} from '../activities/crawl/url-normalize';

const norm = (u: string, base?: string) => {
  const r = normalizeUrl(u, base);
  if (!r.ok) throw new Error(`rejected ${u}: ${r.reason}`);
  return r.url;
};

describe('normalizeUrl', () => {
  it('lower-cases scheme and host, drops default ports and the fragment, resolves dot segments', () => {
    expect(norm('HTTP://Example.COM:80/a/./b/../c#frag')).toBe('http://example.com/a/c');
    expect(norm('https://EXAMPLE.com:443')).toBe('https://example.com/');
    expect(norm('https://example.com:8443/x')).toBe('https://example.com:8443/x');
    expect(norm('http://example.com/a/b/../../../../c')).toBe('http://example.com/c');
    // the path keeps its case
    expect(norm('http://example.com/News/Article.HTML')).toBe('http://example.com/News/Article.HTML');
  });

  it('turns IDN hosts into punycode and percent-encodes non-ASCII paths', () => {
    expect(norm('https://пример.рф/путь')).toBe('https://xn--e1afmkfd.xn--p1ai/%D0%BF%D1%83%D1%82%D1%8C');
    expect(norm('http://ไทย.ไทย/')).toBe('http://xn--o3cw4h.xn--o3cw4h/');
    expect(norm('http://BÜCHER.example/')).toBe('http://xn--bcher-kva.example/');
  });

  it('removes tracking parameters and sorts the rest stably by name, keeping values as written', () => {
    const r = normalizeUrl('https://example.com/p?utm_source=fb&z=1&UTM_Medium=x&b=2&a=9&fbclid=abc&a=1&gclid=1&mc_cid=2&mc_eid=3&yclid=4&_ga=5&ref_src=twsrc');
    expect(r).toEqual({ ok: true, url: 'https://example.com/p?a=9&a=1&b=2&z=1', host: 'example.com', removedParams: 9 });
    expect(norm('https://example.com/?utm_campaign=x&utm_content=y')).toBe('https://example.com/');
    // values are not re-encoded: '+' and bare '/' stay; escape hex is upper-cased, unreserved escapes decoded
    expect(norm('https://example.com/s?q=a+b&path=/x/y&e=%2f%7e')).toBe('https://example.com/s?e=%2F~&path=/x/y&q=a+b');
    expect(norm('https://example.com/%7euser/%41%2f')).toBe('https://example.com/~user/A%2F');
    // empty segments dropped, a bare name kept
    expect(norm('https://example.com/?&&flag&b=&a=1')).toBe('https://example.com/?a=1&b=&flag');
  });

  it('has options to keep tracking parameters, keep the order and remove more names', () => {
    expect(normalizeUrl('https://e.com/?utm_source=x&b=1&a=2', undefined, { stripTracking: false, sortQuery: false })).toMatchObject({
      url: 'https://e.com/?utm_source=x&b=1&a=2',
    });
    expect(normalizeUrl('https://e.com/?sid=9&b=1&SID=3', undefined, { extraParams: ['sid'] })).toMatchObject({ url: 'https://e.com/?b=1', removedParams: 2 });
  });

  it('recognises tracking names case-insensitively and percent-encoded', () => {
    expect(isTrackingParam('UTM_Campaign')).toBe(true);
    expect(isTrackingParam('utm%5Fsource')).toBe(true);
    expect(isTrackingParam('fbclid')).toBe(true);
    expect(isTrackingParam('ref')).toBe(false);
    expect(isTrackingParam('page')).toBe(false);
    expect(TRACKING_PARAMS).toContain('mc_eid');
  });

  it('resolves relative references against a base', () => {
    expect(norm('../b/c.html?x=1#top', 'https://example.com/a/d/index.html')).toBe('https://example.com/a/b/c.html?x=1');
    expect(norm('//cdn.example.com/i.jpg', 'https://example.com/')).toBe('https://cdn.example.com/i.jpg');
    expect(norm('?page=2', 'https://example.com/list?page=1')).toBe('https://example.com/list?page=2');
  });

  it('drops credentials and a trailing dot on the host; trims whitespace and inner newlines', () => {
    expect(norm('https://user:secret@example.com./a')).toBe('https://example.com/a');
    expect(norm('  https://example.com/a\n/b  ')).toBe('https://example.com/a/b');
  });

  it('rejects non-http(s) schemes, unparsable and empty input with a typed reason', () => {
    expect(normalizeUrl('mailto:a@example.com')).toEqual({ ok: false, reason: 'unsupported_scheme', input: 'mailto:a@example.com', scheme: 'mailto' });
    expect(normalizeUrl('javascript:void(0)')).toMatchObject({ ok: false, reason: 'unsupported_scheme', scheme: 'javascript' });
    expect(normalizeUrl('ftp://example.com/f')).toMatchObject({ ok: false, reason: 'unsupported_scheme', scheme: 'ftp' });
    expect(normalizeUrl('data:image/gif;base64,R0lGOD')).toMatchObject({ ok: false, reason: 'unsupported_scheme', scheme: 'data' });
    expect(normalizeUrl('http://')).toMatchObject({ ok: false, reason: 'invalid_url' });
    expect(normalizeUrl('http://018hs.com   /demo87/alzs.html')).toMatchObject({ ok: false, reason: 'invalid_url' });
    expect(normalizeUrl('not a url')).toMatchObject({ ok: false, reason: 'invalid_url' });
    expect(normalizeUrl('   ')).toMatchObject({ ok: false, reason: 'empty_url' });
    expect(() => normalizeUrlOrThrow('tel:+420123')).toThrow(UrlRejectedError);
    try {
      normalizeUrlOrThrow('tel:+420123');
    } catch (e) {
      expect((e as UrlRejectedError).rejection).toMatchObject({ reason: 'unsupported_scheme', scheme: 'tel' });
    }
    expect(normalizeUrlOrThrow('HTTPS://A.example/')).toBe('https://a.example/');
  });

  it('maps equivalent spellings to one key', () => {
    const spellings = [
      'https://www.Example.com:443/a/../news/?b=2&a=1&utm_source=rss#comments',
      'HTTPS://www.example.com/news/?a=1&b=2',
      'https://www.example.com./news/?fbclid=XYZ&a=1&b=2',
      'https://u@www.example.com/./news/?b=2&a=1',
    ];
    expect(new Set(spellings.map((s) => norm(s))).size).toBe(1);
  });
});

describe('allowed domains', () => {
  it('normalizes configured domains', () => {
    expect(normalizeDomain('Example.COM.')).toBe('example.com');
    expect(normalizeDomain('*.example.com')).toBe('example.com');
    expect(normalizeDomain('.example.com')).toBe('example.com');
    expect(normalizeDomain('https://Example.com/path')).toBe('example.com');
    expect(normalizeDomain('пример.рф')).toBe('xn--e1afmkfd.xn--p1ai');
    expect(normalizeDomain('')).toBeNull();
    expect(normalizeDomain('exa mple.com')).toBeNull();
  });

  it('matches the domain itself and its subdomains only', () => {
    expect(hostMatchesDomain('example.com', 'example.com')).toBe(true);
    expect(hostMatchesDomain('news.Example.com', 'example.com')).toBe(true);
    expect(hostMatchesDomain('a.b.example.com.', '*.example.com')).toBe(true);
    expect(hostMatchesDomain('badexample.com', 'example.com')).toBe(false);
    expect(hostMatchesDomain('example.com', 'news.example.com')).toBe(false);
    expect(hostMatchesDomain('example.com.evil.net', 'example.com')).toBe(false);
    expect(hostMatchesDomain('новости.пример.рф', 'пример.рф')).toBe(true);
    expect(hostMatchesDomain('xn--b1amnebsh.xn--e1afmkfd.xn--p1ai', 'пример.рф')).toBe(true);
    // IP addresses only match exactly
    expect(hostMatchesDomain('10.1.2.3', '1.2.3')).toBe(false);
    expect(hostMatchesDomain('127.0.0.1', '127.0.0.1')).toBe(true);
  });

  it('checks URLs against a list', () => {
    const allowed = ['vnexpress.net', 'thairath.co.th'];
    expect(isUrlAllowed('https://kinhdoanh.vnexpress.net/tin-tuc', allowed)).toBe(true);
    expect(isUrlAllowed('https://www.thairath.co.th/news', allowed)).toBe(true);
    expect(isUrlAllowed('https://example.com/', allowed)).toBe(false);
    expect(isUrlAllowed('mailto:x@vnexpress.net', allowed)).toBe(false);
  });
});

describe('robots.txt', () => {
  const ROBOTS = [
    'User-agent: *',
    'Disallow: /private/',
    'Crawl-delay: 10',
    '',
    'User-agent: MellaBot',
    'Disallow: /search',
    'Disallow: /*.pdf$',
    'Allow: /search/about',
    'Crawl-delay: 2',
    '',
    'Sitemap: https://example.com/sitemap.xml',
  ].join('\n');

  it('takes the product token of the user agent', () => {
    expect(productToken(DEFAULT_USER_AGENT)).toBe('MellaBot');
    expect(productToken('mella-data-engine/0.1 (x)')).toBe('mella-data-engine');
    expect(() => productToken('  ')).toThrow();
    expect(robotsUrlFor('https://Example.com:8443/a/b?c#d')).toBe('https://example.com:8443/robots.txt');
    expect(() => robotsUrlFor('ftp://example.com/')).toThrow();
  });

  it('applies the group of our agent (longest match, Allow on tie, $ anchor) and its crawl-delay', () => {
    const p = robotsFromText('https://example.com/robots.txt', ROBOTS, DEFAULT_USER_AGENT);
    expect(p.source).toBe('file');
    expect(p.agent).toBe('MellaBot');
    expect(p.isAllowed('https://example.com/news/1')).toBe(true);
    expect(p.isAllowed('https://example.com/search?q=x')).toBe(false);
    expect(p.isAllowed('https://example.com/search/about')).toBe(true);
    expect(p.isAllowed('https://example.com/files/a.pdf')).toBe(false);
    expect(p.isAllowed('https://example.com/files/a.pdf?x=1')).toBe(true);
    // our group replaces '*': /private/ is not disallowed for us
    expect(p.isAllowed('https://example.com/private/x')).toBe(true);
    expect(p.crawlDelay()).toBe(2);
    expect(p.sitemaps()).toEqual(['https://example.com/sitemap.xml']);
  });

  it('falls back to the * group for another agent', () => {
    const p = robotsFromText('https://example.com/robots.txt', ROBOTS, 'OtherBot/2.0');
    expect(p.isAllowed('https://example.com/private/x')).toBe(false);
    expect(p.isAllowed('https://example.com/search')).toBe(true);
    expect(p.crawlDelay()).toBe(10);
  });

  it('refuses to answer for another origin', () => {
    const p = robotsFromText('https://example.com/robots.txt', ROBOTS);
    expect(() => p.isAllowed('http://example.com/news')).toThrow(RobotsOriginError);
    expect(() => p.isAllowed('https://sub.example.com/news')).toThrow(RobotsOriginError);
    expect(() => robotsFromFetch('https://example.com/robots.txt', { status: 404 }).isAllowed('https://other.com/')).toThrow(RobotsOriginError);
  });

  it('maps fetch outcomes to RFC 9309: 4xx allow all, 429/5xx/network disallow all', () => {
    const u = 'https://example.com/robots.txt';
    const page = 'https://example.com/any/page';
    for (const status of [400, 401, 403, 404, 410]) {
      const p = robotsFromFetch(u, { status });
      expect([p.source, p.isAllowed(page), p.detail]).toEqual(['unavailable', true, `http_${status}`]);
    }
    for (const status of [429, 500, 502, 503]) {
      const p = robotsFromFetch(u, { status });
      expect([p.source, p.isAllowed(page), p.detail]).toEqual(['unreachable', false, `http_${status}`]);
    }
    const down = robotsFromFetch(u, { error: 'ECONNREFUSED' });
    expect([down.source, down.isAllowed(page), down.detail, down.crawlDelay()]).toEqual(['unreachable', false, 'network_error: ECONNREFUSED', undefined]);
    const loop = robotsFromFetch(u, { status: 301, redirected: true });
    expect([loop.source, loop.isAllowed(page)]).toEqual(['unavailable', true]);
    const ok = robotsFromFetch(u, { status: 200, body: 'User-agent: *\nDisallow: /' });
    expect([ok.source, ok.isAllowed(page)]).toEqual(['file', false]);
    // an empty 200 allows everything
    expect(robotsFromFetch(u, { status: 200, body: '' }).isAllowed(page)).toBe(true);
  });

  it('parses only the first 500 KiB', () => {
    const filler = `# ${'x'.repeat(100)}\n`.repeat(Math.ceil(ROBOTS_MAX_BYTES / 100));
    const p = robotsFromText('https://example.com/robots.txt', `User-agent: *\nDisallow: /a\n${filler}Disallow: /b\n`);
    expect(p.isAllowed('https://example.com/a')).toBe(false);
    expect(p.isAllowed('https://example.com/b')).toBe(true);
  });

  describe('fetchRobots against a local server', () => {
    let server: http.Server;
    let base: string;
    const seenAgents: string[] = [];
    let mode = 'ok';
    beforeAll(async () => {
      server = http.createServer((req, res) => {
        seenAgents.push(String(req.headers['user-agent']));
        const path = req.url ?? '/';
        if (mode === 'ok' && path === '/robots.txt') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('User-agent: mellabot\nDisallow: /nope\nCrawl-delay: 3\n');
        } else if (mode === 'redirect') {
          if (path === '/robots.txt') res.writeHead(301, { location: '/r1' }).end();
          else if (path === '/r1') res.writeHead(302, { location: '/real-robots.txt' }).end();
          else res.writeHead(200).end('User-agent: *\nDisallow: /moved\n');
        } else if (mode === 'loop') {
          res.writeHead(302, { location: `/loop${Math.random()}` }).end();
        } else if (mode === '404') {
          res.writeHead(404).end('not here');
        } else if (mode === '503') {
          res.writeHead(503).end('busy');
        } else {
          res.writeHead(500).end();
        }
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise<void>((r) => server.close(() => r()));
    });

    it('reads the file with our user agent, follows redirects, maps 404/503/loops/refused connections', async () => {
      mode = 'ok';
      const ok = await fetchRobots(`${base}/some/page`);
      expect([ok.source, ok.status, ok.isAllowed(`${base}/nope`), ok.isAllowed(`${base}/yes`), ok.crawlDelay()]).toEqual(['file', 200, false, true, 3]);
      expect(seenAgents.at(-1)).toBe(DEFAULT_USER_AGENT);

      mode = 'redirect';
      const moved = await fetchRobots(base, { userAgent: 'TestBot/1.0' });
      expect([moved.source, moved.robotsUrl, moved.isAllowed(`${base}/moved`), moved.isAllowed(`${base}/x`)]).toEqual(['file', `${base}/robots.txt`, false, true]);
      expect(seenAgents.at(-1)).toBe('TestBot/1.0');

      mode = 'loop';
      const loop = await fetchRobots(base);
      expect([loop.source, loop.isAllowed(`${base}/x`)]).toEqual(['unavailable', true]);
      expect(loop.detail).toMatch(/too_many_redirects/);

      mode = '404';
      const missing = await fetchRobots(base);
      expect([missing.source, missing.status, missing.isAllowed(`${base}/x`)]).toEqual(['unavailable', 404, true]);

      mode = '503';
      const busy = await fetchRobots(base);
      expect([busy.source, busy.status, busy.isAllowed(`${base}/x`)]).toEqual(['unreachable', 503, false]);

      // a port nobody listens on
      const closed = http.createServer();
      await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
      const deadPort = (closed.address() as AddressInfo).port;
      await new Promise<void>((r) => closed.close(() => r()));
      const refused = await fetchRobots(`http://127.0.0.1:${deadPort}/`);
      expect([refused.source, refused.isAllowed(`http://127.0.0.1:${deadPort}/a`)]).toEqual(['unreachable', false]);
      expect(refused.detail).toMatch(/^network_error: /);
    });
  });
});
