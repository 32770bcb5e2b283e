/**
 * Pages in legacy charsets that declare none (no HTTP charset, no <meta>): windows-1251 Russian and
 * Serbian, TIS-620 Thai, EUC-KR Korean, windows-1256 Arabic, windows-1250 Czech, ISO-8859-2 Hungarian.
 * - WARC path (no browser): decodeHtmlBody detects the encoding with jschardet, preferring one whose
 *   model reads as the crawl's language (activities/crawl/charset-detect.ts);
 * - browser path: Chromium guesses such pages itself; the renderer's extraction must carry the right
 *   alt text (checked on a real Chromium and a real HTTP server on 127.0.0.1).
 */
import http from 'node:http';
import type net from 'node:net';
import iconv from 'iconv-lite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PageRenderer } from '../activities/crawl/browser';
import { resolveChromiumExecutable } from '../activities/crawl/chromium-process';
import { detectCharset } from '../activities/crawl/charset-detect';
import { decodeHtmlBody, resolveCharset } from '../activities/crawl/warc';

interface Sample {
  lang: string;
  encoding: string;
  /** The decoder decodeHtmlBody must pick (iconv-lite name, WHATWG mapping). */
  decoder: string;
  alt: string;
  html: string;
}

const page = (title: string, alt: string, text: string) =>
  `<html><head><title>${title}</title></head><body><h1>${title}</h1><figure><img src="/a.jpg" alt="${alt}"><figcaption>${alt}</figcaption></figure><p>${text}</p></body></html>`;

const SAMPLES: Sample[] = [
  { lang: 'ru', encoding: 'windows-1251', decoder: 'windows-1251', alt: 'Красная площадь зимой', html: page('Новости Москвы', 'Красная площадь зимой', 'Сегодня в городе прошёл фестиваль. Москва — столица России, крупнейший город страны.') },
  { lang: 'sr', encoding: 'windows-1251', decoder: 'windows-1251', alt: 'Калемегдан у сумрак', html: page('Вести из Београда', 'Калемегдан у сумрак', 'Београд је главни град Србије. Тврђава је на ушћу Саве у Дунав.') },
  { lang: 'th', encoding: 'windows-874', decoder: 'windows-874', alt: 'วัดพระแก้วยามเย็น', html: page('ข่าววันนี้', 'วัดพระแก้วยามเย็น', 'กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย มีประชากรมากที่สุดในประเทศ') },
  { lang: 'ko', encoding: 'euc-kr', decoder: 'cp949', alt: '서울 남산타워의 야경', html: page('서울 소식', '서울 남산타워의 야경', '남산타워는 서울의 상징입니다. 오늘 날씨가 맑습니다.') },
  { lang: 'ar', encoding: 'windows-1256', decoder: 'windows-1256', alt: 'مسجد محمد علي في القاهرة', html: page('أخبار القاهرة', 'مسجد محمد علي في القاهرة', 'القاهرة هي عاصمة جمهورية مصر العربية وأكبر مدنها.') },
  { lang: 'cs', encoding: 'windows-1250', decoder: 'windows-1250', alt: 'Karlův most v zimě', html: page('Zprávy z Prahy', 'Karlův most v zimě', 'Příliš žluťoučký kůň úpěl ďábelské ódy. Praha je hlavní město České republiky.') },
  { lang: 'hu', encoding: 'iso-8859-2', decoder: 'iso-8859-2', alt: 'Lánchíd éjszaka', html: page('Budapesti hírek', 'Lánchíd éjszaka', 'Árvíztűrő tükörfúrógép. Budapest Magyarország fővárosa, a Duna két partján fekszik.') },
];

describe('charset detection of undeclared legacy pages (WARC path)', () => {
  for (const s of SAMPLES) {
    it(`${s.lang}: ${s.encoding} without a declaration decodes to the original text`, () => {
      const bytes = iconv.encode(s.html, s.encoding);
      expect(iconv.decode(bytes, s.encoding)).toBe(s.html); // the sample is representable in its encoding
      const dec = decodeHtmlBody(bytes, 'text/html', { language: s.lang });
      expect(dec).toMatchObject({ charsetSource: 'detected', invalidUtf8: false });
      // A decoder that yields the same text counts (windows-1250 and ISO-8859-2 share Hungarian's letters).
      expect(dec.html).toBe(s.html);
      expect(dec.html).toContain(`alt="${s.alt}"`);
      if (dec.charset !== s.decoder) expect(iconv.decode(bytes, dec.charset)).toBe(iconv.decode(bytes, s.decoder));
    });
  }

  it('without a target language, a confident guess is used and marked as a guess', () => {
    const ru = SAMPLES[0]!;
    const dec = decodeHtmlBody(iconv.encode(ru.html, ru.encoding), 'text/html');
    expect(dec).toMatchObject({ charset: 'windows-1251', charsetSource: 'guessed', html: ru.html });
    expect(dec.confidence).toBeGreaterThanOrEqual(0.2);
  });

  it('a configured fallback wins over a guess in another language, never over a target-language match', () => {
    const ru = iconv.encode(SAMPLES[0]!.html, 'windows-1251');
    // A Thai crawl meets a Russian page: nothing reads as Thai, so the configured fallback is used (and
    // language control will reject the page later); without a fallback, the guess (windows-1251).
    expect(decodeHtmlBody(ru, 'text/html', { language: 'th', fallbackCharset: 'windows-874' })).toMatchObject({ charset: 'windows-874', charsetSource: 'fallback' });
    expect(decodeHtmlBody(ru, 'text/html', { language: 'th' })).toMatchObject({ charset: 'windows-1251', charsetSource: 'guessed', html: SAMPLES[0]!.html });
    // A Russian crawl with a KOI8-R fallback still reads windows-1251 bytes right.
    expect(decodeHtmlBody(ru, 'text/html', { language: 'ru', fallbackCharset: 'koi8-r' })).toMatchObject({ charset: 'windows-1251', charsetSource: 'detected' });
  });

  it('declarations and valid UTF-8 are never second-guessed', () => {
    const ru = SAMPLES[0]!;
    const koi8 = ru.html.replace('—', '-'); // KOI8-R has no em dash
    expect(decodeHtmlBody(iconv.encode(koi8, 'koi8-r'), 'text/html; charset=koi8-r', { language: 'ru' })).toMatchObject({ charset: 'koi8-r', charsetSource: 'http', html: koi8 });
    expect(decodeHtmlBody(Buffer.from(ru.html), 'text/html', { language: 'ru' })).toMatchObject({ charset: 'utf-8', charsetSource: 'default', invalidUtf8: false });
  });

  it('random bytes end as UTF-8 with replacement characters or a confident enough guess, never a crash', () => {
    let seed = 7;
    const noise = Buffer.from(Array.from({ length: 3000 }, () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) >> 8) & 0xff));
    const dec = decodeHtmlBody(noise, null, { language: 'th' });
    if (dec.charsetSource === 'default') expect(dec.invalidUtf8).toBe(true);
    else expect(['detected', 'guessed']).toContain(dec.charsetSource);
    expect(typeof dec.html).toBe('string');
    const d = detectCharset(noise, 'th', resolveCharset);
    if (d.bestGuess) expect(d.bestGuess.confidence).toBeGreaterThanOrEqual(0.2);
  });
});

let chromiumPath: string | null = null;
try {
  chromiumPath = resolveChromiumExecutable().path;
} catch (err) {
  console.warn(`browser charset test skipped: ${(err as Error).message}`);
}

describe.runIf(chromiumPath !== null)('charset of undeclared legacy pages in the browser (Chromium guesses)', () => {
  let server: http.Server;
  let base = '';
  let renderer: PageRenderer;
  beforeAll(async () => {
    server = http.createServer((req, res) => {
      const s = SAMPLES.find((x) => req.url === `/${x.lang}`);
      if (!s) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/html' }).end(iconv.encode(s.html, s.encoding));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
    renderer = await PageRenderer.launch({ allowPrivateNetworks: ['127.0.0.1/32'], recycleAfterPages: 1000 });
  }, 60_000);
  afterAll(async () => {
    await renderer?.close();
    await new Promise((r) => server?.close(r));
  });

  for (const lang of ['ru', 'th', 'ko'] as const) {
    it(`${lang}: the extracted alt and title are the original text`, async () => {
      const s = SAMPLES.find((x) => x.lang === lang)!;
      const r = await renderer.render(`${base}/${lang}`, { settleMs: 300, scrollSteps: 0 });
      expect(r.ok, r.ok ? '' : `${r.reason}: ${r.detail}`).toBe(true);
      if (!r.ok) return;
      expect(r.extraction.images.map((i) => i.alt)).toEqual([s.alt]);
      expect(r.extraction.images[0]!.context?.text).toBe(s.alt);
      expect(r.extraction.page.title).toBe(/<title>([^<]*)</.exec(s.html)![1]);
    }, 60_000);
  }
});
