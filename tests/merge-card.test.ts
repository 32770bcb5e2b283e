/**
 * The dataset card. The HTML page is opened in headless Chromium (Debian's, through playwright-core):
 * it must render without console errors, every image (data-URL thumbnails) must load, and no script may
 * run from hostile alt texts or captions; a full-page screenshot is kept in the test's temporary folder
 * (its path is printed). The Markdown card escapes the same texts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { escapeMarkdown, renderCardHtml, renderCardMarkdown, type CardInput } from '../activities/merge/card';
import { emptyCounts, countSample } from '../activities/merge/counts';
import { exportDataset, type ExportResult } from '../activities/merge/export';
import type { Sample } from '../activities/merge/sample';
import { makeSyntheticImages, syntheticSamples, type SyntheticImage } from '../activities/merge/synthetic';

const CHROMIUM = process.env.MELLA_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
if (!HAVE_CHROMIUM) console.warn(`merge-card: ${CHROMIUM} is missing (apt-get install chromium); the browser tests are skipped`);

const HOSTILE_ALT = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2"> Wat | [link](javascript:alert(1)) *bold*';
const HOSTILE_CAPTION = '"><svg onload="window.__pwned=3"></svg><iframe src="javascript:window.__pwned=4"></iframe>';

let root: string;
let shots: string;
let images: SyntheticImage[];
let result: ExportResult;
let browser: Browser | undefined;
/** Distinct (language, image) pairs: the gallery holds each (12 per language is all of them here). */
let galleryPairs: number;

beforeAll(async () => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-merge-card-'));
  shots = path.join(root, 'screenshots');
  fs.mkdirSync(shots);
  images = await makeSyntheticImages(path.join(root, 'blobs'), 12, { side: 320, groupSize: 1 });
  const first = images[0]!;
  const hostile: Sample[] = [
    {
      id: 'know:th:hostile',
      lang: 'th',
      source: 'know',
      imageSha256: first.sha256,
      imagePath: first.path,
      imageFormat: first.format,
      instruction: 'ภาพนี้แสดงอะไร',
      answer: HOSTILE_ALT,
      groupKey: first.sha256,
      lineage: { pageUrl: 'https://evil.example.th/<script>alert(1)</script>' },
    },
    {
      id: 'ling:th:hostile',
      lang: 'th',
      source: 'ling',
      imageSha256: first.sha256,
      imagePath: first.path,
      imageFormat: first.format,
      instruction: 'อธิบายภาพนี้อย่างละเอียด',
      answer: `คำแปล ${HOSTILE_CAPTION}`,
      groupKey: first.sha256,
      lineage: { caption: HOSTILE_CAPTION, pageUrl: 'https://evil.example.th/a' },
      standin: true,
    },
  ];
  const samples = [...hostile, ...syntheticSamples(400, images, { langs: ['th', 'vi', 'ar', 'cs'] })];
  galleryPairs = new Set(samples.map((s) => `${s.lang} ${s.imageSha256}`)).size;
  result = await exportDataset(samples, {
    dir: path.join(root, 'export'),
    card: {
      title: 'MELLA demo <b>card</b>',
      version: { id: 'v-test-1', parent: null },
      galleryPerLanguage: 12,
      stats: {
        stages: {
          crawl: { in: 2000, kept: 1400, rejected: { robots_disallowed: 120, http_404: 480 } },
          ingest: { in: 1400, kept: 1200, rejected: { decode_error: 40, too_many_pixels: 10, duplicate: 150 } },
          filter: { in: 1200, kept: 600, rejected: { too_small: 300, boilerplate_generic: 200, '<img src=x onerror=alert(1)>': 100 } },
        },
        perLanguage: { th: { filter: { in: 300, kept: 150, rejected: { too_small: 150 } } } },
      },
      build: {
        config: { name: 'demo', languages: ['th', 'vi', 'ar', 'cs'], merge: { mix: null } },
        models: [
          { role: 'caption', name: 'standin-vlm', endpoint: 'http://127.0.0.1:1/v1', standin: true },
          { role: 'translate', name: 'standin-mt', endpoint: 'http://127.0.0.1:1/v1', standin: true },
        ],
        promptVersions: { caption: 'caption-v1', translate: 'translate-v1' },
      },
    },
  });
  if (HAVE_CHROMIUM) {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    });
  }
});

afterAll(async () => {
  await browser?.close();
  // keep the screenshots (printed above); drop everything else
  if (root) for (const e of fs.readdirSync(root)) if (e !== 'screenshots') fs.rmSync(path.join(root, e), { recursive: true, force: true });
});

describe('card.html in headless Chromium', () => {
  it.skipIf(!HAVE_CHROMIUM)('renders without console errors, loads every image, runs no script from web text', async () => {
    const page = await browser!.newPage({ viewport: { width: 1200, height: 900 } });
    const problems: string[] = [];
    page.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && problems.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('dialog', (d) => {
      problems.push(`dialog: ${d.message()}`);
      void d.dismiss();
    });
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.url().slice(0, 80)}`));
    await page.goto(`file://${path.join(result.dir, 'card.html')}`, { waitUntil: 'load' });
    // a string: the test's TypeScript has no DOM types
    const facts = (await page.evaluate(`(() => ({
      pwned: window.__pwned,
      scripts: document.querySelectorAll('script').length,
      iframes: document.querySelectorAll('iframe').length,
      images: [...document.images].map((i) => ({ ok: i.complete && i.naturalWidth > 0, w: i.naturalWidth })),
      svgs: document.querySelectorAll('svg').length,
      banner: document.querySelector('.banner')?.textContent ?? '',
      text: document.body.innerText,
      title: document.title,
    }))()`)) as { pwned?: number; scripts: number; iframes: number; images: { ok: boolean; w: number }[]; svgs: number; banner: string; text: string; title: string };
    expect(problems).toEqual([]);
    expect(facts.pwned).toBeUndefined();
    expect(facts.scripts).toBe(0);
    expect(facts.iframes).toBe(0);
    expect(facts.images.length).toBe(galleryPairs); // one thumbnail per gallery item
    expect(facts.images.every((i) => i.ok)).toBe(true);
    expect(facts.svgs).toBeGreaterThanOrEqual(1 + 1 + 4 + 4); // counts, stages, lengths and domains per language
    expect(facts.banner).toMatch(/STAND-IN OUTPUT: \d+ of 402 samples/);
    expect(facts.title).toBe('MELLA demo <b>card</b>');
    // the hostile texts are shown as text
    expect(facts.text).toContain('<script>window.__pwned=1</script>');
    expect(facts.text).toContain('<svg onload="window.__pwned=3">');
    expect(facts.text).toContain('<img src=x onerror=alert(1)>');
    expect(facts.text).toMatch(/Provenance and licence/);
    expect(facts.text).toMatch(/must be reviewed by a person/);
    const shot = path.join(shots, 'card.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(fs.statSync(shot).size).toBeGreaterThan(10_000);
    console.log(`merge-card: screenshot of card.html at ${shot}`);
    await page.close();
  });
});

describe('card contents', () => {
  it('escapes web text in the HTML source and forbids scripts by policy', () => {
    const html = fs.readFileSync(path.join(result.dir, 'card.html'), 'utf8');
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toContain('<svg onload');
    expect(html).toContain('&lt;script&gt;window.__pwned=1&lt;/script&gt;');
    expect(html).toContain(`content="default-src 'none'; img-src data:; style-src 'unsafe-inline'"`);
    expect(html).not.toMatch(/src="(?!data:)/); // self-contained: no external resource
  });

  it('writes a Markdown card with the same sections, web text escaped, images by relative path', () => {
    const md = fs.readFileSync(path.join(result.dir, 'card.md'), 'utf8');
    for (const h of ['## Samples per language and source', '## Rejections by stage', '## Answer lengths', '## Sources per domain', '## Gallery', '## How it was built', '## Provenance and licence']) expect(md).toContain(h);
    expect(md).toMatch(/^> \*\*STAND-IN OUTPUT/m);
    expect(md).not.toMatch(/<script|<img|<svg|<iframe/);
    expect(md).toContain('&lt;script&gt;window.\\_\\_pwned=1&lt;/script&gt;');
    const galleryRows = md.split('\n').filter((l) => l.startsWith('| ![image](images/'));
    expect(galleryRows.length).toBe(galleryPairs);
    for (const row of galleryRows) {
      expect(row.replace(/\\\|/g, '').split('|').length).toBe(8); // 6 cells: no unescaped pipe from an alt
      expect(fs.existsSync(path.join(result.dir, /\((images\/[^)]+)\)/.exec(row)![1]!))).toBe(true);
    }
    expect(escapeMarkdown('a|b *c* [d](e) <f>\n g')).toBe('a\\|b \\*c\\* \\[d\\](e) &lt;f&gt; g');
  });

  it('shows no banner when no sample is stand-in output, and is deterministic', async () => {
    const counts = emptyCounts();
    countSample(counts, 'hu', 'train', 'know');
    const input: CardInput = {
      name: 'x',
      counts,
      stats: { stages: {}, textLengths: {}, domains: {} },
      gallery: [{ lang: 'hu', imageSha256: images[1]!.sha256, imagePath: images[1]!.path, imageRel: 'images/x.jpg', split: 'train', alt: 'Lánchíd', standin: false }],
      standinSamples: 0,
    };
    const html = await renderCardHtml(input);
    expect(html).not.toContain('class="banner"');
    expect(renderCardMarkdown(input)).not.toContain('STAND-IN');
    expect(await renderCardHtml(input)).toBe(html);
    expect(html).toContain('Lánchíd');
  });
});
