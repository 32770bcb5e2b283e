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

/** One image of the demo set: where it is served, its bytes, the alt it carries, the page it is on. */
export interface DemoImage {
  path: string;
  body: Buffer;
  alt: string;
  /** `scene` (kept by the filter stage) or the filter case it shows. */
  kind: 'scene' | 'icon' | 'banner' | 'copy-small' | 'upload' | 'english';
  /** The page name it belongs to: the scene's own page, or the language's gallery. */
  page: string;
}

/**
 * The images of one language: the six scenes (drawn by the project, alts written for it), and one
 * record of each kind the filter stage rejects: an icon too small to train on, a banner, a smaller copy
 * of a scene with the same alt (the image is a near-duplicate and so is its alt), a file name as alt,
 * and an English alt on a target-language page.
 */
export async function demoImages(lang: string): Promise<DemoImage[]> {
  const texts = ALT_TEXTS[lang];
  const alt = (scene: (typeof SCENES)[number]) => texts?.[scene] ?? `${scene} (${lang})`;
  const out: DemoImage[] = [];
  for (const [i, scene] of SCENES.entries()) {
    out.push({ path: `/img/${lang}/${scene}.jpg`, body: await drawSceneImage(scene, i + lang.length * 7 + lang.charCodeAt(0)), alt: alt(scene), kind: 'scene', page: scene });
  }
  const seed = lang.charCodeAt(0) * 13 + (lang.charCodeAt(1) || 0);
  const f = (name: DemoImage['kind'], body: Buffer, text: string): DemoImage => ({ path: `/img/${lang}/filter/${name}.jpg`, body, alt: text, kind: name, page: 'gallery' });
  const goodAlt = alt(SCENES[2]);
  out.push(
    f('icon', await drawSceneImage('soup', seed + 1, 120, 90), goodAlt),
    f('banner', await drawSceneImage('river-sunset', seed + 2, 1600, 200), goodAlt),
    f('copy-small', await sharp(out[0]!.body).resize(600, 450).jpeg({ quality: 80 }).toBuffer(), out[0]!.alt),
    // Flipped and negated, so that these two differ from every scene in pHash too (the drawings share
    // a sky-over-hills layout that a 64-bit pHash sees as similar).
    f('upload', await sharp(await drawSceneImage('old-church', seed + 3)).flip().jpeg().toBuffer(), 'IMG_2041.JPG'),
    f('english', await sharp(await drawSceneImage('mountain-village', seed + 4)).negate({ alpha: false }).jpeg().toBuffer(), 'A quiet mountain village with red roofs and a church tower at sunset'),
  );
  return out;
}

/** What the filter stage must do with one language of the demo set (either presentation). */
export function expectedFilterRejections(lang: string): Record<string, number> {
  return { too_small: 1, extreme_aspect_ratio: 1, near_duplicate_text: 1, boilerplate_file_name: 1, [NON_LATIN.has(lang) ? 'wrong_script' : 'wrong_language']: 1 };
}

/**
 * Builds the demo's image-text list: the six scenes in every language (images drawn by the project,
 * alt texts written for it), served by `server`, plus a handful of bad lines that show the rejection
 * reasons (missing image, HTML served as JPEG, a truncated JPEG, a repeated URL, a malformed line),
 * and per language the records the filter stage rejects (see demoImages).
 */
export async function buildDemoSet(server: SampleServer, dir: string, languages = Object.keys(ALT_TEXTS), opts: { badLinesOnly?: boolean } = {}): Promise<DemoSet> {
  await fs.mkdir(dir, { recursive: true });
  const lines: string[] = [];
  for (const lang of opts.badLinesOnly ? [] : languages) {
    for (const im of await demoImages(lang)) {
      server.set(im.path, { kind: 'bytes', body: im.body, contentType: 'image/jpeg' });
      lines.push(JSON.stringify({ url: server.url(im.path), text: im.alt, page_url: server.url(`/${lang}/${im.page}.html`), lang }));
    }
  }
  const [firstLang] = languages;
  const good = await drawSceneImage('soup', 999);
  server.set('/bad/html-as-jpeg.jpg', { kind: 'bytes', body: Buffer.from('<!doctype html><html><body>Not an image</body></html>'), contentType: 'image/jpeg' });
  server.set('/bad/truncated.jpg', { kind: 'bytes', body: good.subarray(0, Math.floor(good.length / 3)), contentType: 'image/jpeg' });
  lines.push(
    JSON.stringify({ url: server.url('/bad/missing.jpg'), text: 'an image that is gone', lang: firstLang }),
    JSON.stringify({ url: server.url('/bad/html-as-jpeg.jpg'), text: 'a page served as a JPEG', lang: firstLang }),
    JSON.stringify({ url: server.url('/bad/truncated.jpg'), text: 'a JPEG cut short', lang: firstLang }),
    lines[0] ?? JSON.stringify({ url: server.url('/bad/missing.jpg'), text: 'the same URL again', lang: firstLang }), // the same URL again
    '{"url": "this line is not JSON',
  );
  const listFile = path.join(dir, 'demo-list.jsonl');
  await fs.writeFile(listFile, `${lines.join('\n')}\n`);
  return {
    listFile,
    goodPerLanguage: SCENES.length + 5,
    expectedRejections: { http_404: 1, not_an_image: 1, decode_error: 1, duplicate: 1, malformed_line: 1 },
    filterKeptPerLanguage: SCENES.length,
    expectedFilterRejections: Object.fromEntries(languages.map((lang) => [lang, expectedFilterRejections(lang)])),
  };
}
