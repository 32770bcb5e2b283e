/**
 * WARC input (activities/crawl/warc.ts): a WARC written here with warcio's WARCRecord/WARCSerializer
 * (plus a few hand-written odd records) covering charsets (windows-1251 Russian, EUC-KR Korean,
 * TIS-620 Thai, BOM, undeclared), content and transfer encodings and every skip reason (always
 * run); the same file served over http from 127.0.0.1; and the four files under
 * ../shared/fixtures/real/warc (skipped, with a message, when that folder is absent), cut and
 * corrupted on purpose: every record ends as a page or a counted reason, nothing throws, nothing hangs.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import iconv from 'iconv-lite';
import { WARCRecord, WARCSerializer } from 'warcio';
import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import {
  WarcSourceError,
  charsetFromContentType,
  decodeHtmlBody,
  dechunk,
  readWarcHtml,
  resolveCharset,
  sniffDeclaredCharset,
  warcImages,
  type WarcHtmlPage,
  type WarcReadOptions,
  type WarcStats,
} from '../activities/crawl/warc';
import { HAVE_REAL_FIXTURES, REAL_FIXTURES, fixtureFiles } from './support/fixtures';

const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-crawl-warc-'));
afterAll(() => fs.rmSync(TMP, { recursive: true, force: true }));

const enc = (s: string) => new TextEncoder().encode(s);
let fileNo = 0;
const writeTmp = (bytes: Uint8Array, ext = '.warc') => {
  const p = path.join(TMP, `f${fileNo++}${ext}`);
  fs.writeFileSync(p, bytes);
  return p;
};

async function readAll(source: string, options?: WarcReadOptions): Promise<{ pages: WarcHtmlPage[]; stats: WarcStats }> {
  const stream = readWarcHtml(source, options);
  const pages: WarcHtmlPage[] = [];
  for await (const p of stream) pages.push(p);
  return { pages, stats: stream.stats };
}

const skippedTotal = (s: WarcStats): number => Object.values(s.skipped).reduce<number>((a, b) => a + (b ?? 0), 0);

// ---------------------------------------------------------------------------------------------------
// A WARC written here

const RU_HTML = `<!DOCTYPE html><html lang="ru"><head><title>Новости Москвы</title></head><body>
<figure><img src="/img/kreml.jpg" alt="Московский Кремль зимой"><figcaption>Кремль и Москва-река в январе</figcaption></figure>
<p>Привет, мир! Москва — столица России.</p><a href="/news/2?utm_source=rss">Дальше</a></body></html>`;
const KO_HTML = `<html><head><meta http-equiv="Content-Type" content="text/html; charset=euc-kr"><title>서울 소식</title></head><body><img src="seoul.jpg" alt="서울 남산타워의 야경"><p>남산타워</p></body></html>`;
const TH_HTML = `<html lang="th"><head><title>ข่าวไทย</title></head><body><img src="/wat.jpg" alt="วัดพระแก้วยามเย็น"></body></html>`;

function gzipPrefixOf(html: string, keep: number): Uint8Array {
  return zlib.gzipSync(Buffer.from(html)).subarray(0, keep);
}

function chunkedBody(bytes: Uint8Array, size: number): Uint8Array {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) {
    const c = bytes.subarray(i, i + size);
    parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), Buffer.from(c), Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n\r\n'));
  return Buffer.concat(parts);
}

/** A raw record, for what WARCRecord.create will not write (non-HTTP blocks). */
function rawRecord(headers: Record<string, string>, block: Uint8Array): Uint8Array {
  const head = ['WARC/1.0', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), `Content-Length: ${block.length}`, '', ''].join('\r\n');
  return Buffer.concat([Buffer.from(head), Buffer.from(block), Buffer.from('\r\n\r\n')]);
}

interface Spec {
  url: string;
  type?: 'response' | 'request' | 'metadata' | 'revisit' | 'resource';
  status?: string;
  headers?: Record<string, string>;
  warcHeaders?: Record<string, string>;
  body: Uint8Array | string;
}

const DATE = '2024-03-01T10:00:00Z';
const SPECS: Spec[] = [
  { url: 'https://ru.example/http-charset', headers: { 'Content-Type': 'text/html; charset=windows-1251', 'Content-Language': 'ru' }, body: iconv.encode(RU_HTML, 'windows-1251') },
  { url: 'https://ru.example/meta-charset', headers: { 'Content-Type': 'text/html' }, body: iconv.encode(RU_HTML.replace('<head>', '<head><meta charset="windows-1251">'), 'windows-1251') },
  { url: 'https://ru.example/undeclared', headers: { 'Content-Type': 'text/html' }, body: iconv.encode(RU_HTML, 'windows-1251') },
  { url: 'https://ko.example/euc-kr', headers: { 'Content-Type': 'text/html', 'Content-Language': 'ko' }, body: iconv.encode(KO_HTML, 'euc-kr') },
  { url: 'https://th.example/tis-620', headers: { 'Content-Type': 'text/html; charset="TIS-620"' }, body: iconv.encode(TH_HTML, 'windows-874') },
  { url: 'https://bom.example/', headers: { 'Content-Type': 'text/html; charset=windows-1252' }, body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('<html><title>Čeština s BOM</title></html>')]) },
  { url: 'https://gz.example/', headers: { 'Content-Type': 'text/html; charset=utf-8', 'Content-Encoding': 'gzip' }, body: zlib.gzipSync(Buffer.from('<html lang="vi"><title>Tiếng Việt nén gzip</title><img src="/pho.jpg" alt="Phở bò Hà Nội"></html>')) },
  { url: 'https://chunked.example/', headers: { 'Content-Type': 'text/html; charset=utf-8', 'Transfer-Encoding': 'chunked' }, body: chunkedBody(enc('<html lang="hu"><title>Magyar darabolt válasz</title><p>Árvíztűrő tükörfúrógép</p></html>'), 7) },
  // (at least one header: warcio reads a header-less HTTP block up to the next blank line, body included)
  { url: 'https://sniff.example/', headers: { Server: 'test' }, body: '  <!-- x --><!DOCTYPE html><html><title>Bez Content-Type</title></html>' },
  { url: 'https://ru.example/request', type: 'request', status: 'GET /request HTTP/1.1', headers: { Host: 'ru.example' }, body: '' },
  { url: 'https://ru.example/gone', status: 'HTTP/1.1 404 Not Found', headers: { 'Content-Type': 'text/html' }, body: '<html>404</html>' },
  { url: 'https://ru.example/moved', status: 'HTTP/1.1 301 Moved Permanently', headers: { Location: '/new', 'Content-Type': 'text/html' }, body: '' },
  { url: 'https://ru.example/photo.jpg', headers: { 'Content-Type': 'image/jpeg' }, body: new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]) },
  { url: 'https://ru.example/robots.txt', headers: { 'Content-Type': 'text/plain' }, body: '<html>not really</html>' },
  { url: 'https://ru.example/meta', type: 'metadata', body: 'outlink: https://ru.example/x' },
  { url: 'https://ru.example/short', headers: { 'Content-Type': 'text/html', 'Content-Length': '5000' }, body: `<html>${'x'.repeat(94)}` },
  { url: 'https://ru.example/zstd', headers: { 'Content-Type': 'text/html', 'Content-Encoding': 'zstd' }, body: new Uint8Array([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0]) },
  { url: 'https://ru.example/bad-gzip', headers: { 'Content-Type': 'text/html', 'Content-Encoding': 'gzip' }, body: Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]), Buffer.from('this is not deflate data at all, not at all')]) },
  {
    url: 'https://cut.example/',
    warcHeaders: { 'WARC-Truncated': 'length' },
    headers: { 'Content-Type': 'text/html; charset=utf-8', 'Content-Encoding': 'gzip', 'Content-Length': '99999' },
    body: gzipPrefixOf(`<html lang="cs"><title>Uříznutá stránka</title><body>${'<p>Odstavec textu o Praze.</p>'.repeat(400)}</body></html>`, 300),
  },
  { url: 'https://ru.example/empty', headers: { 'Content-Type': 'text/html' }, body: '' },
  { url: 'https://ru.example/huge', headers: { 'Content-Type': 'text/html' }, body: `<html>${'a'.repeat(150_000)}</html>` },
  { url: 'https://ru.example/', type: 'revisit', headers: { 'Content-Type': 'text/html' }, body: '' },
];

const EXPECTED_SKIPS = {
  not_response: 4, // warcinfo, request, metadata, revisit
  http_404: 1,
  http_301: 1,
  not_html: 2,
  truncated_body: 1,
  unsupported_content_encoding: 1,
  content_decode_error: 1,
  empty_body: 1,
  too_large: 1,
  unsupported_scheme: 1, // dns:
  malformed_http: 1, // a response whose block is not HTTP
};
const EXPECTED_PAGES = [
  'https://ru.example/http-charset',
  'https://ru.example/meta-charset',
  'https://ru.example/undeclared',
  'https://ko.example/euc-kr',
  'https://th.example/tis-620',
  'https://bom.example/',
  'https://gz.example/',
  'https://chunked.example/',
  'https://sniff.example/',
  'https://cut.example/',
];

async function buildWarc(gzip: boolean): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const info = await WARCRecord.createWARCInfo({ filename: 'test.warc', warcVersion: 'WARC/1.0' }, { software: 'mella crawl-warc test' });
  parts.push(await WARCSerializer.serialize(info, { gzip }));
  for (const s of SPECS) {
    const body = typeof s.body === 'string' ? enc(s.body) : s.body;
    const record = await WARCRecord.create(
      {
        url: s.url,
        date: DATE,
        type: s.type ?? 'response',
        warcVersion: 'WARC/1.0',
        ...(s.status ? { statusline: s.status } : {}),
        httpHeaders: s.headers ?? {},
        warcHeaders: s.warcHeaders ?? {},
      },
      (async function* () {
        if (body.length) yield body;
      })(),
    );
    parts.push(await WARCSerializer.serialize(record, { gzip }));
  }
  const odd = [
    rawRecord({ 'WARC-Type': 'response', 'WARC-Target-URI': 'dns:ru.example', 'WARC-Date': DATE, 'Content-Type': 'text/dns' }, enc('20240301100000\nru.example. 300 IN A 192.0.2.1\n')),
    rawRecord({ 'WARC-Type': 'response', 'WARC-Target-URI': 'https://ru.example/not-http', 'WARC-Date': DATE, 'Content-Type': 'application/http; msgtype=response' }, enc('garbage first line\r\nfoo\r\n\r\n<html></html>')),
  ];
  for (const r of odd) parts.push(gzip ? zlib.gzipSync(r) : r);
  return Buffer.concat(parts);
}

describe('charset helpers', () => {
  it('maps labels as the Encoding Standard does and reads declarations', () => {
    expect([resolveCharset('ISO-8859-1'), resolveCharset('tis-620'), resolveCharset('EUC-KR'), resolveCharset('gb2312'), resolveCharset('"windows-1251"'), resolveCharset('utf8'), resolveCharset('x-unknown'), resolveCharset('')]).toEqual([
      'windows-1252', 'windows-874', 'cp949', 'gb18030', 'windows-1251', 'utf-8', null, null,
    ]);
    expect(charsetFromContentType('text/html; Charset="KOI8-R"; foo=bar')).toBe('KOI8-R');
    expect(charsetFromContentType('text/html')).toBeNull();
    expect(sniffDeclaredCharset(enc('<html><head><!-- <meta charset="x"> --><META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=windows-1256">'))).toEqual({ label: 'windows-1256', source: 'meta' });
    expect(sniffDeclaredCharset(enc('<?xml version="1.0" encoding="ISO-8859-2"?><html>'))).toEqual({ label: 'ISO-8859-2', source: 'xml' });
    expect(sniffDeclaredCharset(enc('<html><meta name="x">'))).toBeNull();
  });

  it('decodes: BOM, then HTTP, then meta, then valid UTF-8, then the fallback', () => {
    const cp1251 = iconv.encode('<p>Съешь же ещё этих мягких французских булок</p>', 'windows-1251');
    expect(decodeHtmlBody(cp1251, 'text/html; charset=cp1251')).toMatchObject({ charset: 'cp1251', charsetSource: 'http', html: '<p>Съешь же ещё этих мягких французских булок</p>' });
    const undeclared = decodeHtmlBody(cp1251, 'text/html');
    expect(undeclared).toMatchObject({ charset: 'utf-8', charsetSource: 'default', invalidUtf8: true });
    expect(undeclared.html).toContain('\ufffd');
    expect(decodeHtmlBody(cp1251, null, { fallbackCharset: 'windows-1251' })).toMatchObject({ charset: 'windows-1251', charsetSource: 'fallback', html: '<p>Съешь же ещё этих мягких французских булок</p>' });
    expect(decodeHtmlBody(enc('<p>ok ü</p>'), null, { fallbackCharset: 'windows-1251' })).toMatchObject({ charset: 'utf-8', charsetSource: 'default', html: '<p>ok ü</p>' });
    // a meta that says UTF-16 in an ASCII-compatible document means UTF-8; an unknown HTTP label is passed over
    expect(decodeHtmlBody(enc('<meta charset="utf-16"><p>ř</p>'), 'text/html; charset=bogus')).toMatchObject({ charset: 'utf-8', charsetSource: 'meta', unknownLabels: ['bogus'] });
    const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('<p>ẞ</p>', 'utf16le')]);
    expect(decodeHtmlBody(le, 'text/html; charset=iso-8859-1')).toMatchObject({ charset: 'utf-16le', charsetSource: 'bom', html: '<p>ẞ</p>' });
  });

  it('de-chunks, leaves an unchunked body alone and reports a cut chunk', () => {
    expect(dechunk(Buffer.from(chunkedBody(enc('hello chunked world'), 4))).body.toString()).toBe('hello chunked world');
    expect(dechunk(Buffer.from('<html>not chunked</html>'))).toMatchObject({ wasChunked: false });
    expect(() => dechunk(Buffer.from('10\r\nshort'))).toThrow(/chunk of 16 bytes/);
  });
});

describe('a WARC written here', () => {
  let plainPath: string;
  let gzPath: string;
  beforeAll(async () => {
    plainPath = writeTmp(await buildWarc(false));
    gzPath = writeTmp(await buildWarc(true), '.warc.gz');
  });

  for (const kind of ['plain', 'gzip members'] as const) {
    it(`yields the HTML pages and counts every other record by reason (${kind})`, async () => {
      const { pages, stats } = await readAll(kind === 'plain' ? plainPath : gzPath, { maxBodyBytes: 100_000 });
      expect(pages.map((p) => p.targetUri)).toEqual(EXPECTED_PAGES);
      expect(stats.skipped).toEqual(EXPECTED_SKIPS);
      expect(stats.records).toBe(SPECS.length + 3);
      expect(stats.records).toBe(stats.html + skippedTotal(stats));
      expect(stats.html).toBe(EXPECTED_PAGES.length);
      expect(stats.types).toEqual({ warcinfo: 1, response: 21, request: 1, metadata: 1, revisit: 1 });
      expect(stats.ended).toBeNull();
      expect(stats.notes).toEqual({ invalid_utf8: 1 });

      const by = new Map(pages.map((p) => [p.targetUri, p]));
      expect(by.get('https://ru.example/http-charset')).toMatchObject({ charset: 'windows-1251', charsetSource: 'http', httpStatus: 200, warcDate: DATE, contentLanguage: 'ru', warcTruncated: null });
      expect(by.get('https://ru.example/http-charset')!.html).toBe(RU_HTML);
      expect(by.get('https://ru.example/meta-charset')).toMatchObject({ charset: 'windows-1251', charsetSource: 'meta' });
      expect(by.get('https://ru.example/meta-charset')!.html).toContain('Москва — столица России');
      expect(by.get('https://ru.example/undeclared')).toMatchObject({ charset: 'utf-8', charsetSource: 'default' });
      expect(by.get('https://ko.example/euc-kr')).toMatchObject({ charset: 'cp949', charsetSource: 'meta' });
      expect(by.get('https://ko.example/euc-kr')!.html).toBe(KO_HTML);
      expect(by.get('https://th.example/tis-620')).toMatchObject({ charset: 'windows-874', charsetSource: 'http', html: TH_HTML });
      expect(by.get('https://bom.example/')).toMatchObject({ charset: 'utf-8', charsetSource: 'bom', html: '<html><title>Čeština s BOM</title></html>' });
      expect(by.get('https://gz.example/')!.html).toContain('Phở bò Hà Nội');
      expect(by.get('https://chunked.example/')!.html).toBe('<html lang="hu"><title>Magyar darabolt válasz</title><p>Árvíztűrő tükörfúrógép</p></html>');
      expect(by.get('https://sniff.example/')).toMatchObject({ contentType: null });
      const cut = by.get('https://cut.example/')!;
      expect(cut.warcTruncated).toBe('length');
      expect(cut.html).toMatch(/^<html lang="cs"><title>Uříznutá stránka<\/title><body><p>Odstavec textu o Praze\.<\/p>/);
      for (const p of pages) expect(p.recordId).toMatch(/^<urn:uuid:[0-9a-f-]+>$/);
      const offsets = pages.map((p) => p.offset);
      expect([...offsets].sort((a, b) => a - b)).toEqual(offsets);
    });
  }

  it('decodes undeclared windows-1251 with a configured fallback charset, and skips WARC-Truncated on request', async () => {
    const { pages, stats } = await readAll(gzPath, { maxBodyBytes: 100_000, fallbackCharset: 'windows-1251', skipWarcTruncated: true });
    const undeclared = pages.find((p) => p.targetUri === 'https://ru.example/undeclared')!;
    expect(undeclared).toMatchObject({ charset: 'windows-1251', charsetSource: 'fallback', html: RU_HTML });
    expect(stats.notes).toEqual({});
    expect(stats.skipped.warc_truncated).toBe(1);
    expect(pages.some((p) => p.targetUri === 'https://cut.example/')).toBe(false);
    expect(stats.records).toBe(stats.html + skippedTotal(stats));
  });

  it("detects an undeclared windows-1251 body when the crawl's language is Russian (no fallback configured)", async () => {
    const { pages, stats } = await readAll(gzPath, { maxBodyBytes: 100_000, language: 'ru' });
    const undeclared = pages.find((p) => p.targetUri === 'https://ru.example/undeclared')!;
    expect(undeclared).toMatchObject({ charset: 'windows-1251', charsetSource: 'detected', html: RU_HTML });
    expect(stats.notes).toEqual({ charset_detected: 1 });
  });

  it('resumes from a page offset (the cursor a shard activity would heartbeat)', async () => {
    for (const file of [plainPath, gzPath]) {
      const { pages } = await readAll(file, { maxBodyBytes: 100_000 });
      const target = pages.find((p) => p.targetUri === 'https://ko.example/euc-kr')!;
      const rest = writeTmp(fs.readFileSync(file).subarray(target.offset));
      const resumed = await readAll(rest, { maxBodyBytes: 100_000 });
      expect(resumed.pages.map((p) => p.targetUri)).toEqual(EXPECTED_PAGES.slice(EXPECTED_PAGES.indexOf('https://ko.example/euc-kr')));
    }
  });

  it('extracts images from the pages with the right text (windows-1251 alt and figcaption)', async () => {
    const stream = warcImages(gzPath, { maxBodyBytes: 100_000 });
    const out = [];
    for await (const p of stream) out.push(p);
    const ru = out.find((p) => p.targetUri === 'https://ru.example/http-charset')!;
    expect(ru).not.toHaveProperty('html');
    expect(ru.extraction.page).toMatchObject({ lang: 'ru', title: 'Новости Москвы' });
    expect(ru.extraction.images).toEqual([
      expect.objectContaining({ url: 'https://ru.example/img/kreml.jpg', alt: 'Московский Кремль зимой', context: { text: 'Кремль и Москва-река в январе', source: 'figcaption' } }),
    ]);
    expect(ru.extraction.links).toEqual([{ url: 'https://ru.example/news/2', nofollow: false }]);
    const ko = out.find((p) => p.targetUri === 'https://ko.example/euc-kr')!;
    expect(ko.extraction.images[0]).toMatchObject({ url: 'https://ko.example/seoul.jpg', alt: '서울 남산타워의 야경', context: { text: '남산타워', source: 'next-sibling' } });
    const th = out.find((p) => p.targetUri === 'https://th.example/tis-620')!;
    expect(th.extraction.images[0]).toMatchObject({ url: 'https://th.example/wat.jpg', alt: 'วัดพระแก้วยามเย็น' });
    // the HTTP Content-Language reaches the page facts when the page declares no language itself
    expect(ko.extraction.page).toMatchObject({ lang: 'ko', langSource: 'http-content-language', title: '서울 소식' });
    expect(ru.extraction.page.langSource).toBe('html-lang');
    expect(out.find((p) => p.targetUri === 'https://gz.example/')!.extraction.images[0]).toMatchObject({ url: 'https://gz.example/pho.jpg', alt: 'Phở bò Hà Nội' });
    // three Russian pages, Korean, Thai, Vietnamese: one image each
    expect(stream.stats).toMatchObject({ html: EXPECTED_PAGES.length, images: 6, extractErrors: 0, imagesSkipped: {} });
  });

  it('ends with truncated_record when the input stops inside a record, plain or gzip, never hanging', async () => {
    const plain = fs.readFileSync(plainPath);
    const at = plain.indexOf('https://gz.example/');
    const cutPlain = await readAll(writeTmp(plain.subarray(0, at + 200)), { maxBodyBytes: 100_000 });
    expect(cutPlain.stats.ended?.reason).toBe('truncated_record');
    expect(cutPlain.pages.map((p) => p.targetUri)).toEqual(EXPECTED_PAGES.slice(0, 6));
    expect(cutPlain.stats.records).toBe(cutPlain.stats.html + skippedTotal(cutPlain.stats));

    const gz = fs.readFileSync(gzPath);
    const { pages } = await readAll(gzPath, { maxBodyBytes: 100_000 });
    const gzOffset = pages.find((p) => p.targetUri === 'https://gz.example/')!.offset;
    const cutGz = await readAll(writeTmp(gz.subarray(0, gzOffset + 100)), { maxBodyBytes: 100_000 });
    expect(cutGz.stats.ended).toMatchObject({ reason: 'truncated_record' });
    expect(cutGz.stats.ended!.detail).toMatch(/inside a gzip member/);
    expect(cutGz.pages.map((p) => p.targetUri)).toEqual(EXPECTED_PAGES.slice(0, 6));
  });

  it('ends with malformed_record on a record without Content-Length, keeping what came before', async () => {
    const plain = fs.readFileSync(plainPath);
    const at = plain.indexOf('WARC/1.0', plain.indexOf('https://ko.example/euc-kr'));
    // a record whose end cannot be known, followed by good records that can no longer be found
    const bad = Buffer.concat([plain.subarray(0, at), Buffer.from('WARC/1.0\r\nWARC-Type: response\r\nWARC-Target-URI: https://x.example/\r\n\r\nHTTP/1.1 200 OK\r\n\r\n<html>\r\n\r\n'), plain.subarray(at)]);
    const { pages, stats } = await readAll(writeTmp(bad));
    expect(pages.map((p) => p.targetUri)).toEqual(EXPECTED_PAGES.slice(0, 4));
    expect(stats.ended?.reason).toBe('malformed_record');
    expect(stats.skipped.malformed_record).toBe(1);
    expect(stats.records).toBe(stats.html + skippedTotal(stats));
  });

  describe('over http', () => {
    let server: http.Server;
    let base: string;
    let slowClosedEarly: Promise<boolean> = Promise.resolve(false);
    beforeAll(async () => {
      const gz = fs.readFileSync(gzPath);
      server = http.createServer((req, res) => {
        if (req.url === '/crawl.warc.gz') {
          // streamed in small writes, as a large remote file arrives
          res.writeHead(200, { 'content-type': 'application/warc', 'content-length': String(gz.length) });
          let i = 0;
          const next = () => {
            if (i >= gz.length) return void res.end();
            res.write(gz.subarray(i, (i += 1000)), next);
          };
          next();
        } else if (req.url === '/slow.warc.gz') {
          // trickles: a consumer that stops after one page must close the connection
          res.writeHead(200, { 'content-length': String(gz.length) });
          let i = 0;
          slowClosedEarly = new Promise<boolean>((resolve) => res.on('close', () => resolve(i < gz.length)));
          const next = () => {
            if (i >= gz.length) return void res.end();
            res.write(gz.subarray(i, (i += 200)), () => setTimeout(next, 20));
          };
          next();
        } else if (req.url === '/dropped.warc.gz') {
          res.writeHead(200, { 'content-length': String(gz.length) });
          res.write(gz.subarray(0, Math.floor(gz.length / 2)), () => res.socket?.destroy());
        } else {
          res.writeHead(404).end('no');
        }
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    });

    it('streams a WARC.gz from a URL with the same result as the local file', async () => {
      const local = await readAll(gzPath, { maxBodyBytes: 100_000 });
      const remote = await readAll(`${base}/crawl.warc.gz`, { maxBodyBytes: 100_000 });
      expect(remote.pages.map((p) => [p.targetUri, p.charset, p.html])).toEqual(local.pages.map((p) => [p.targetUri, p.charset, p.html]));
      expect(remote.stats).toEqual(local.stats);
    });

    it('stopping after the first page cancels the download', async () => {
      const stream = readWarcHtml(`${base}/slow.warc.gz`, { maxBodyBytes: 100_000 });
      const seen: string[] = [];
      for await (const p of stream) {
        seen.push(p.targetUri);
        break;
      }
      expect(seen).toEqual([EXPECTED_PAGES[0]]);
      expect(await slowClosedEarly).toBe(true);
    });

    it('a connection dropped mid-file ends with a reason after the pages that arrived; a 404 or a missing file is a WarcSourceError', async () => {
      const dropped = await readAll(`${base}/dropped.warc.gz`, { maxBodyBytes: 100_000 });
      expect(['read_error', 'truncated_record']).toContain(dropped.stats.ended?.reason);
      expect(dropped.pages.length).toBeGreaterThan(0);
      expect(dropped.pages.length).toBeLessThan(EXPECTED_PAGES.length);
      expect(dropped.stats.records).toBe(dropped.stats.html + skippedTotal(dropped.stats));

      await expect(readAll(`${base}/missing.warc.gz`)).rejects.toMatchObject({ name: 'WarcSourceError', code: 'http_404' });
      await expect(readAll(path.join(TMP, 'nope.warc'))).rejects.toBeInstanceOf(WarcSourceError);
      await expect(readAll(path.join(TMP, 'nope.warc'))).rejects.toMatchObject({ code: 'ENOENT' });
    });
  });
});

// ---------------------------------------------------------------------------------------------------
// The shared real WARC files

describe.skipIf(!HAVE_REAL_FIXTURES)('real WARC fixtures', () => {
  const WARC = path.join(REAL_FIXTURES, 'warc');
  const file = (name: string) => path.join(WARC, name);

  it('has the four files', () => {
    expect(fixtureFiles('warc').map((f) => path.basename(f))).toEqual([
      'CmonCrawl__mini.warc.gz',
      'warcio__example-bad-non-chunked.warc.gz',
      'warcio__example-trunc.warc',
      'warcio__example.warc.gz',
    ]);
  });

  it('Common Crawl records: the one HTML response, its images with their native (Chinese) alts', async () => {
    const stream = warcImages(file('CmonCrawl__mini.warc.gz'));
    const pages = [];
    for await (const p of stream) pages.push(p);
    expect(stream.stats).toMatchObject({ records: 3, html: 1, skipped: { not_response: 2 }, types: { warcinfo: 1, request: 1, response: 1 }, ended: null, images: 9 });
    const [p] = pages;
    expect(p).toMatchObject({ targetUri: 'http://018hs.com/demo87/alzs.html', httpStatus: 200, warcDate: '2022-01-23T05:27:45Z', charset: 'utf-8', charsetSource: 'meta' });
    expect(p!.extraction.page.title).toBe('工程案例-广州天仁再生资源回收有限公司');
    expect(p!.extraction.images.map((i) => i.alt)).toEqual(expect.arrayContaining(['文件销毁', '食品销毁', '化妆品销毁', '假冒伪劣产品销毁']));
    expect(p!.extraction.images.every((i) => i.url.startsWith('http://018hs.com/') && i.alt !== null && i.context !== null)).toBe(true);
    // the page's own links have spaces inside the host ("http://018hs.com   /demo87/..."): invalid, counted
    expect(p!.extraction.counts.linksSkipped.invalid_url).toBeGreaterThan(30);
  });

  it('warcio example, per-record gzip and whole-file gzip: the example.com page (gzip body decoded)', async () => {
    for (const name of ['warcio__example.warc.gz', 'warcio__example-bad-non-chunked.warc.gz']) {
      const stream = warcImages(file(name));
      const pages = [];
      for await (const p of stream) pages.push(p);
      expect([name, stream.stats]).toEqual([
        name,
        expect.objectContaining({ records: 6, html: 1, skipped: { not_response: 5 }, types: { warcinfo: 2, response: 1, request: 2, revisit: 1 }, ended: null, images: 0 }),
      ]);
      expect(pages[0]).toMatchObject({ targetUri: 'http://example.com/', httpStatus: 200, warcDate: '2017-03-06T04:02:06Z', bodyBytes: 1270, charsetSource: 'meta' });
      expect(pages[0]!.extraction.page.title).toBe('Example Domain');
      expect(pages[0]!.extraction.links.map((l) => l.url)).toEqual(['http://www.iana.org/domains/example']);
    }
  });

  it('warcio example-trunc: the response is short of its HTTP Content-Length, skipped as truncated_body', async () => {
    // its WARC Content-Length is 2 bytes short of the block: warcio notices the leftover and warns
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    try {
      const { pages, stats } = await readAll(file('warcio__example-trunc.warc'));
      expect(pages).toEqual([]);
      expect(stats).toMatchObject({ records: 4, html: 0, skipped: { not_response: 3, truncated_body: 1 }, ended: null });
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/^Content-Length Too Small/));
    } finally {
      warn.mockRestore();
    }
  });

  it('cut and corrupted copies of the fixtures: counted, never thrown', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {}); // warcio's leftover-bytes warnings
    onTestFinished(() => warn.mockRestore());
    const sources = fixtureFiles('warc').map((f) => fs.readFileSync(f));
    sources.push(zlib.gunzipSync(fs.readFileSync(file('warcio__example.warc.gz'))));
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const reasons: Record<string, number> = {};
    let runs = 0;
    for (const buf of sources) {
      const variants: Buffer[] = [];
      for (let k = 1; k < 12; k++) variants.push(buf.subarray(0, Math.floor((buf.length * k) / 12)));
      for (let k = 0; k < 12; k++) {
        const b = Buffer.from(buf);
        for (let j = 0; j < 4; j++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
        variants.push(b);
      }
      for (const v of variants) {
        const { stats } = await readAll(writeTmp(v));
        runs++;
        expect(stats.records).toBe(stats.html + skippedTotal(stats));
        for (const [r, n] of Object.entries(stats.skipped)) reasons[r] = (reasons[r] ?? 0) + (n ?? 0);
      }
    }
    expect(runs).toBe(5 * 23);
    expect(reasons.truncated_record).toBeGreaterThan(10);
  });
});
