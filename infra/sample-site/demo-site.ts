/**
 * The demo set as a small web site the crawl stage visits with a real browser: per language an index
 * page (`<html lang>`, title, og:site_name, text in the language) linking to one page per scene (the
 * image in a `<figure>` with its native alt and a `<figcaption>`, lazily loaded on half the pages), a
 * gallery with the filter stage's cases, an English page (language control: not harvested), a page
 * robots.txt disallows, and a site logo on every page (boilerplate for the filter stage).
 */
import { ALT_TEXTS } from './alt-texts';
import { demoImages, type DemoImage } from './demo-set';
import { drawSceneImage } from './images';
import type { SampleServer } from './server';

export interface DemoSite {
  /** Seed (index page) per language. */
  seeds: Record<string, string>;
  /** Pages per language the crawl harvests (index, scenes, gallery). */
  harvestedPerLanguage: number;
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function page(lang: string, title: string, body: string, text: string): string {
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><title>${esc(title)}</title>
<meta property="og:site_name" content="MELLA demo ${lang}"></head>
<body><header><img src="/site/logo.jpg" alt="logo" width="120" height="40"></header>
<main>${body}<p>${esc(text)}</p></main></body></html>`;
}

/** A lazy image: a placeholder src, the real URL in data-src, set by a script when scrolled into view. */
const LAZY_SCRIPT = `<script>
  const io = new IntersectionObserver((es) => es.forEach((e) => { if (e.isIntersecting) { e.target.src = e.target.dataset.src; io.unobserve(e.target); } }));
  document.querySelectorAll('img[data-src]').forEach((img) => io.observe(img));
</script>`;
const PIXEL = 'data:image/gif;base64,R0lGODlhAQABAAAAACw=';

export async function buildDemoSite(server: SampleServer, languages = Object.keys(ALT_TEXTS)): Promise<DemoSite> {
  server.set('/site/logo.jpg', { kind: 'bytes', body: await drawSceneImage('logo', 1, 120, 40), contentType: 'image/jpeg' });
  server.set('/robots.txt', { kind: 'bytes', body: Buffer.from('User-agent: *\nDisallow: /site/private/\n'), contentType: 'text/plain' });
  const seeds: Record<string, string> = {};
  for (const lang of languages) {
    const images = await demoImages(lang);
    for (const im of images) server.set(im.path, { kind: 'bytes', body: im.body, contentType: 'image/jpeg' });
    const text = Object.values(ALT_TEXTS[lang] ?? {}).join(' ') || `Demo pages in ${lang}.`;
    const scenes = images.filter((im) => im.kind === 'scene');
    const figure = (im: DemoImage, lazy: boolean) =>
      `<figure>${lazy ? `<img src="${PIXEL}" data-src="${im.path}" alt="${esc(im.alt)}">` : `<img src="${im.path}" alt="${esc(im.alt)}">`}<figcaption>${esc(im.alt)}</figcaption></figure>`;
    scenes.forEach((im, i) => {
      const lazy = i % 2 === 1;
      server.set(`/site/${lang}/${im.page}.html`, {
        kind: 'bytes',
        // The title is the page's, not the alt (an alt equal to its page title is boilerplate for the filter stage).
        body: Buffer.from(page(lang, `${im.page} · MELLA demo ${lang}`, `<div style="height:1600px"></div>${figure(im, lazy)}${lazy ? LAZY_SCRIPT : ''}<a href="index.html">⌂</a>`, text)),
        contentType: 'text/html; charset=utf-8',
      });
    });
    const gallery = images.filter((im) => im.page === 'gallery').map((im) => `<img src="${im.path}" alt="${esc(im.alt)}">`).join('\n');
    server.set(`/site/${lang}/gallery.html`, { kind: 'bytes', body: Buffer.from(page(lang, `Gallery ${lang}`, gallery, text)), contentType: 'text/html; charset=utf-8' });
    server.set(`/site/${lang}/en.html`, {
      kind: 'bytes',
      body: Buffer.from(page('en', 'About this demo', `<img src="/img/${lang}/en-only.jpg" alt="A photo on an English page">`, 'This page is written in English. The crawl of another language does not harvest it or follow its links. '.repeat(4))),
      contentType: 'text/html; charset=utf-8',
    });
    server.set(`/img/${lang}/en-only.jpg`, { kind: 'bytes', body: await drawSceneImage('english-page', lang.charCodeAt(0)), contentType: 'image/jpeg' });
    server.set(`/site/private/${lang}.html`, { kind: 'bytes', body: Buffer.from(page(lang, 'private', '<p>robots.txt disallows this page</p>', text)), contentType: 'text/html; charset=utf-8' });
    const links = [...scenes.map((im) => `<a href="${im.page}.html">${esc(im.alt)}</a>`), '<a href="gallery.html">gallery</a>', '<a href="en.html">English</a>', `<a href="/site/private/${lang}.html">private</a>`];
    server.set(`/site/${lang}/index.html`, {
      kind: 'bytes',
      body: Buffer.from(page(lang, `MELLA demo ${lang}`, `<nav>${links.join(' | ')}</nav>`, text)),
      contentType: 'text/html; charset=utf-8',
    });
    seeds[lang] = server.url(`/site/${lang}/index.html`);
  }
  return { seeds, harvestedPerLanguage: 1 + 6 + 1 };
}
