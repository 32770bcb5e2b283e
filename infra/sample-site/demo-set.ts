import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { ALT_TEXTS, SCENES } from './alt-texts';
import { drawSceneImage } from './images';
import type { SampleServer } from './server';

export interface DemoSet {
  listFile: string;
  /** Records per language that should be stored. */
  goodPerLanguage: number;
  /** Lines deliberately bad, with the reason each must get. */
  expectedRejections: Record<string, number>;
  /** Per language: records the filter stage must keep, and what it must reject, by reason. */
  filterKeptPerLanguage: number;
  expectedFilterRejections: Record<string, Record<string, number>>;
}

/** Languages whose script is not Latin: an English alt fails the script check before language ID. */
const NON_LATIN = new Set(['ar', 'ko', 'ru', 'th']);

/**
 * Records that ingest stores and the filter stage judges, one of each kind per language: an icon too
 * small to train on, a banner, a smaller copy of a scene with the same alt (the image is a near-duplicate
 * and so is its alt), a file name as alt, and an English alt on a target-language page.
 */
async function filterCases(server: SampleServer, lang: string, scene0: Buffer, scene0Alt: string, goodAlt: string): Promise<string[]> {
  const add = async (name: string, body: Buffer, text: string) => {
    const p = `/img/${lang}/filter/${name}`;
    server.set(p, { kind: 'bytes', body, contentType: 'image/jpeg' });
    return JSON.stringify({ url: server.url(p), text, page_url: server.url(`/${lang}/gallery.html`), lang });
  };
  const seed = lang.charCodeAt(0) * 13 + (lang.charCodeAt(1) || 0);
  return [
    await add('icon.jpg', await drawSceneImage('soup', seed + 1, 120, 90), goodAlt),
    await add('banner.jpg', await drawSceneImage('river-sunset', seed + 2, 1600, 200), goodAlt),
    await add('copy-small.jpg', await sharp(scene0).resize(600, 450).jpeg({ quality: 80 }).toBuffer(), scene0Alt),
    // Flipped and negated, so that these two differ from every scene in pHash too (the drawings share
    // a sky-over-hills layout that a 64-bit pHash sees as similar).
    await add('upload.jpg', await sharp(await drawSceneImage('old-church', seed + 3)).flip().jpeg().toBuffer(), 'IMG_2041.JPG'),
    await add('english.jpg', await sharp(await drawSceneImage('mountain-village', seed + 4)).negate({ alpha: false }).jpeg().toBuffer(), 'A quiet mountain village with red roofs and a church tower at sunset'),
  ];
}

/**
 * Builds the demo's image-text list: the six scenes in every language (images drawn by the project,
 * alt texts written for it), served by `server`, plus a handful of bad lines that show the rejection
 * reasons (missing image, HTML served as JPEG, a truncated JPEG, a repeated URL, a malformed line),
 * and per language the records the filter stage rejects (see filterCases).
 */
export async function buildDemoSet(server: SampleServer, dir: string, languages = Object.keys(ALT_TEXTS)): Promise<DemoSet> {
  await fs.mkdir(dir, { recursive: true });
  const lines: string[] = [];
  for (const lang of languages) {
    const texts = ALT_TEXTS[lang];
    const alt = (scene: (typeof SCENES)[number]) => texts?.[scene] ?? `${scene} (${lang})`;
    let scene0: Buffer | undefined;
    for (const [i, scene] of SCENES.entries()) {
      const p = `/img/${lang}/${scene}.jpg`;
      const body = await drawSceneImage(scene, i + lang.length * 7 + lang.charCodeAt(0));
      scene0 ??= body;
      server.set(p, { kind: 'bytes', body, contentType: 'image/jpeg' });
      lines.push(JSON.stringify({ url: server.url(p), text: alt(scene), page_url: server.url(`/${lang}/${scene}.html`), lang }));
    }
    lines.push(...(await filterCases(server, lang, scene0!, alt(SCENES[0]), alt(SCENES[2]))));
  }
  const [firstLang] = languages;
  const good = await drawSceneImage('soup', 999);
  server.set('/bad/html-as-jpeg.jpg', { kind: 'bytes', body: Buffer.from('<!doctype html><html><body>Not an image</body></html>'), contentType: 'image/jpeg' });
  server.set('/bad/truncated.jpg', { kind: 'bytes', body: good.subarray(0, Math.floor(good.length / 3)), contentType: 'image/jpeg' });
  lines.push(
    JSON.stringify({ url: server.url('/bad/missing.jpg'), text: 'an image that is gone', lang: firstLang }),
    JSON.stringify({ url: server.url('/bad/html-as-jpeg.jpg'), text: 'a page served as a JPEG', lang: firstLang }),
    JSON.stringify({ url: server.url('/bad/truncated.jpg'), text: 'a JPEG cut short', lang: firstLang }),
    lines[0]!, // the same URL again
    '{"url": "this line is not JSON',
  );
  const listFile = path.join(dir, 'demo-list.jsonl');
  await fs.writeFile(listFile, `${lines.join('\n')}\n`);
  return {
    listFile,
    goodPerLanguage: SCENES.length + 5,
    expectedRejections: { http_404: 1, not_an_image: 1, decode_error: 1, duplicate: 1, malformed_line: 1 },
    filterKeptPerLanguage: SCENES.length,
    expectedFilterRejections: Object.fromEntries(
      languages.map((lang) => [
        lang,
        { too_small: 1, extreme_aspect_ratio: 1, near_duplicate_text: 1, boilerplate_file_name: 1, [NON_LATIN.has(lang) ? 'wrong_script' : 'wrong_language']: 1 },
      ]),
    ),
  };
}
