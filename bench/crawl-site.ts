/**
 * The benchmark site of bench:crawl and its synthetic WARC: N generated pages on 127.0.0.1 (node:http),
 * each with 10 figures (alt + figcaption) and links to other pages, every image a URL of its own
 * (`/img/<page>-<k>.jpg`, so no browser cache helps either crawler) serving one of a few small
 * JPEGs made with sharp (shared bytes).
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import sharp from 'sharp';
import { WARCRecord, WARCSerializer } from 'warcio';

export const IMAGES_PER_PAGE = 10;

const WORDS = ['ตลาดน้ำ', 'วัด', 'ข้าวเหนียว', 'มะม่วง', 'เรือ', 'ดอกบัว', 'ช้าง', 'สงกรานต์', 'ลอยกระทง', 'ผ้าไหม', 'ต้มยำ', 'ภูเขา'];
const word = (i: number) => WORDS[i % WORDS.length]!;

/** Page i of an n-page site: Thai text, 10 figures, 12 links (neighbours and pseudo-random pages). */
export function pageHtml(i: number, n: number, origin = ''): string {
  const figures: string[] = [];
  for (let k = 0; k < IMAGES_PER_PAGE; k++) {
    const alt = `${word(i + k)} ${word(i * 7 + k)} ภาพที่ ${i}-${k}`;
    figures.push(
      `<figure class="photo"><a href="${origin}/p/${(i * 13 + k * 31) % n}.html"><img src="${origin}/img/${i}-${k}.jpg" alt="${alt}" width="200" height="150"></a>` +
        `<figcaption>${word(i + 3 * k)} และ${word(i + k + 5)} ในหน้า ${i} รูป ${k}: คำบรรยายภาพโดยช่างภาพท้องถิ่น</figcaption></figure>`,
    );
  }
  const links = [1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233].map((d) => `<li><a href="${origin}/p/${(i + d) % n}.html">${word(i + d)} ${(i + d) % n}</a></li>`);
  const para = Array.from({ length: 6 }, (_, p) => `<p>${Array.from({ length: 20 }, (_, w) => word(i + p * 20 + w)).join(' ')}</p>`).join('\n');
  return `<!doctype html>
<html lang="th"><head><meta charset="utf-8"><title>หน้า ${i}: ${word(i)}</title>
<meta property="og:site_name" content="mella bench site"><link rel="canonical" href="${origin}/p/${i}.html">
<style>figure{display:inline-block;margin:8px} body{font-family:sans-serif}</style></head>
<body><header><a href="${origin}/">หน้าแรก</a></header><main><article><h1>${word(i)} ${i}</h1>
${para}
${figures.join('\n')}
</article><nav><ul>${links.join('')}</ul></nav></main><footer>© mella bench</footer></body></html>
`;
}

/** A few small photo-like JPEGs (200x150, noisy, blurred), about 2.2 KiB each. */
export async function makeJpegs(count = 8): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let b = 0; b < count; b++) {
    out.push(
      await sharp({
        create: { width: 200, height: 150, channels: 3, background: { r: (b * 37) % 256, g: (b * 91) % 256, b: (b * 53) % 256 }, noise: { type: 'gaussian', mean: 128, sigma: 20 } },
      })
        .blur(1.5)
        .jpeg({ quality: 70 })
        .toBuffer(),
    );
  }
  return out;
}

export interface BenchSite {
  origin: string;
  urls: string[];
  /** Requests answered so far, by kind. */
  hits: { pages: number; images: number; other: number };
  close(): Promise<void>;
}

export async function startBenchSite(pages: number): Promise<BenchSite> {
  const jpegs = await makeJpegs();
  const hits = { pages: 0, images: 0, other: 0 };
  const server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    let m = /^\/p\/(\d+)\.html$/.exec(url);
    if (m && Number(m[1]) < pages) {
      hits.pages++;
      const body = Buffer.from(pageHtml(Number(m[1]), pages));
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': body.length, 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    m = /^\/img\/(\d+)-(\d+)\.jpg$/.exec(url);
    if (m) {
      hits.images++;
      const body = jpegs[(Number(m[1]) + Number(m[2])) % jpegs.length]!;
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': body.length, 'cache-control': 'no-store' });
      res.end(body);
      return;
    }
    hits.other++;
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    urls: Array.from({ length: pages }, (_, i) => `${origin}/p/${i}.html`),
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * A WARC.gz (gzip per record, warcio's serializer) of a warcinfo record and `records` HTML responses
 * (the site's pages at https://th.example; every third body gzip-encoded, as servers send them), written
 * to `file`. Returns the file's size.
 */
export async function writeSyntheticWarc(file: string, records: number): Promise<number> {
  const out = fs.createWriteStream(file);
  const write = (b: Uint8Array) => new Promise<void>((resolve, reject) => out.write(b, (e) => (e ? reject(e) : resolve())));
  const info = await WARCRecord.createWARCInfo({ filename: 'bench.warc.gz', warcVersion: 'WARC/1.1' }, { software: 'mella bench:crawl' });
  await write(await WARCSerializer.serialize(info, { gzip: true }));
  for (let i = 0; i < records; i++) {
    const html = Buffer.from(pageHtml(i, records, 'https://th.example'));
    const gz = i % 3 === 0;
    const body = gz ? zlib.gzipSync(html) : html;
    const record = await WARCRecord.create(
      {
        url: `https://th.example/p/${i}.html`,
        date: '2026-01-01T00:00:00Z',
        type: 'response',
        warcVersion: 'WARC/1.1',
        statusline: 'HTTP/1.1 200 OK',
        httpHeaders: {
          'Content-Type': 'text/html; charset=utf-8',
          'Content-Length': String(body.length),
          ...(gz ? { 'Content-Encoding': 'gzip' } : {}),
        },
      },
      (async function* () {
        yield body;
      })(),
    );
    await write(await WARCSerializer.serialize(record, { gzip: true }));
  }
  await new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve())));
  return fs.statSync(file).size;
}
