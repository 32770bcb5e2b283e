import fs from 'node:fs/promises';
import path from 'node:path';
import { ALT_TEXTS, SCENES } from './alt-texts';
import { drawSceneImage } from './images';
import type { SampleServer } from './server';

export interface DemoSet {
  listFile: string;
  /** Records per language that should be stored. */
  goodPerLanguage: number;
  /** Lines deliberately bad, with the reason each must get. */
  expectedRejections: Record<string, number>;
}

/**
 * Builds the demo's image-text list: the six scenes in every language (images drawn by the project,
 * alt texts written for it), served by `server`, plus a handful of bad lines that show the rejection
 * reasons (missing image, HTML served as JPEG, a truncated JPEG, a repeated URL, a malformed line).
 */
export async function buildDemoSet(server: SampleServer, dir: string, languages = Object.keys(ALT_TEXTS)): Promise<DemoSet> {
  await fs.mkdir(dir, { recursive: true });
  const lines: string[] = [];
  for (const lang of languages) {
    const texts = ALT_TEXTS[lang];
    for (const [i, scene] of SCENES.entries()) {
      const p = `/img/${lang}/${scene}.jpg`;
      server.set(p, { kind: 'bytes', body: await drawSceneImage(scene, i + lang.length * 7 + lang.charCodeAt(0)), contentType: 'image/jpeg' });
      lines.push(JSON.stringify({ url: server.url(p), text: texts?.[scene] ?? `${scene} (${lang})`, page_url: server.url(`/${lang}/${scene}.html`), lang }));
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
    lines[0]!, // the same URL again
    '{"url": "this line is not JSON',
  );
  const listFile = path.join(dir, 'demo-list.jsonl');
  await fs.writeFile(listFile, `${lines.join('\n')}\n`);
  return {
    listFile,
    goodPerLanguage: SCENES.length,
    expectedRejections: { http_404: 1, not_an_image: 1, decode_error: 1, duplicate: 1, malformed_line: 1 },
  };
}
