/**
 * The OpenAI-compatible stand-in (infra/llm-standin), driven by the real `openai` client over real HTTP:
 * captions of generated and real images, determinism, translations into the eight default languages
 * (checked with eld and the filter stage's language-id operator), the fused kind, pseudo-translations,
 * every fault kind (per request and per server plan), API keys, request counting, embeddings, the CLI.
 * Tests on ../shared/fixtures/real skip with a message when that folder is absent.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI, { APIError } from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eldDetector, identifyLanguage, languageIdConfigSchema } from '../activities/filter/text/language-id';
import { drawSceneImage } from '../infra/sample-site/images';
import { parseCaptionEn } from '../infra/llm-standin/caption';
import { altTextLine, parseAltText, parseStandinMarker, parseTargetLanguage, targetLanguageLine } from '../infra/llm-standin/conventions';
import { parseFaultSpec } from '../infra/llm-standin/faults';
import { colourName, imageFacts } from '../infra/llm-standin/image-facts';
import { SMALL_JPEG_MAX_PIXELS, decodeSmallJpeg } from '../infra/llm-standin/small-jpeg';
import { REFUSAL_TEXT, startLlmStandin, type LlmStandin } from '../infra/llm-standin/index';
import { serbianToLatin } from '../infra/llm-standin/phrases';
import { PROJECT_ROOT } from '../infra/paths';
import { HAVE_REAL_FIXTURES, fixtureFiles } from './support/fixtures';

const MODEL = 'test-vlm';
const DEFAULT_LANGUAGES = ['ar', 'cs', 'hu', 'ko', 'ru', 'sr', 'th', 'vi'] as const;

let standin: LlmStandin;
let client: OpenAI;

const dataUrl = (bytes: Buffer, mime = 'image/png') => `data:${mime};base64,${bytes.toString('base64')}`;

/** A 320x200 PNG: white upper half, dark blue lower half. */
async function twoBandImage(): Promise<Buffer> {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="320" height="200">
    <rect width="320" height="100" fill="#ffffff"/><rect y="100" width="320" height="100" fill="#1030a0"/></svg>`;
  return sharp(Buffer.from(svg)).png().toBuffer();
}

/** A 100x100 PNG: left half opaque red, right half fully transparent. */
async function halfTransparentImage(): Promise<Buffer> {
  const raw = Buffer.alloc(100 * 100 * 4);
  for (let y = 0; y < 100; y++) for (let x = 0; x < 50; x++) raw.set([220, 20, 30, 255], (y * 100 + x) * 4);
  return sharp(raw, { raw: { width: 100, height: 100, channels: 4 } }).png().toBuffer();
}

function captionRequest(image: Buffer, extra: { system?: string; userText?: string } = {}): OpenAI.Chat.ChatCompletionCreateParamsNonStreaming {
  return {
    model: MODEL,
    messages: [
      ...(extra.system === undefined ? [] : [{ role: 'system' as const, content: extra.system }]),
      {
        role: 'user',
        content: [
          { type: 'text', text: extra.userText ?? 'Describe this image in detail.' },
          { type: 'image_url', image_url: { url: dataUrl(image) } },
        ],
      },
    ],
  };
}

function translateRequest(text: string, lang: string): OpenAI.Chat.ChatCompletionCreateParamsNonStreaming {
  return {
    model: MODEL,
    messages: [
      { role: 'system', content: `Translate the user's text. Answer with the translation only.\n${targetLanguageLine(lang)}` },
      { role: 'user', content: text },
    ],
  };
}

async function caption(image: Buffer): Promise<string> {
  const r = await client.chat.completions.create(captionRequest(image));
  return r.choices[0]!.message.content!;
}

/** Catches the rejection of `p` (the test fails if it resolves). */
async function failure(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected the call to fail');
}

const until = async (cond: () => boolean, ms = 2000) => {
  const end = Date.now() + ms;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
};

beforeAll(async () => {
  standin = await startLlmStandin();
  client = new OpenAI({ baseURL: standin.baseUrl, apiKey: 'test', maxRetries: 0 });
});
afterAll(async () => {
  await standin?.close();
});

describe('conventions', () => {
  it('parses the target-language and alt-text lines and the stand-in marker', () => {
    expect(parseTargetLanguage(`Translate.\n${targetLanguageLine('sr-Latn')}\nBe faithful.`)).toBe('sr-Latn');
    expect(parseTargetLanguage('target language: th.')).toBe('th');
    expect(parseTargetLanguage('Translate into Thai.')).toBeUndefined();
    expect(parseAltText(`${altTextLine('  Phở   bò  ')}\nDescribe.`)).toBe('Phở bò');
    expect(parseAltText('Alt text: "Tom yum"')).toBe('Tom yum');
    expect(parseStandinMarker('[stand-in] A square image')).toEqual({ standin: true, body: 'A square image' });
    expect(parseStandinMarker('[stand-in:pseudo:sw] Hello')).toEqual({ standin: true, pseudo: 'sw', body: 'Hello' });
    expect(parseStandinMarker('A real answer')).toEqual({ standin: false, body: 'A real answer' });
  });

  it('names colours from the palette and transliterates Serbian', () => {
    expect([colourName(0, 0, 0), colourName(255, 255, 255), colourName(128, 128, 128)]).toEqual(['black', 'white', 'grey']);
    expect([colourName(220, 20, 30), colourName(30, 160, 40), colourName(16, 48, 160), colourName(240, 200, 20)]).toEqual(['red', 'green', 'blue', 'yellow']);
    expect(serbianToLatin('Љубичаста Џак, ђак и ћуп')).toBe('Ljubičasta Džak, đak i ćup');
  });

  it('parses fault specs and rejects bad ones', () => {
    expect(parseFaultSpec('429=2@every=5')).toEqual({ fault: '429', retryAfterSeconds: 2, every: 5 });
    expect(parseFaultSpec('latency=250')).toEqual({ fault: 'latency', ms: 250 });
    expect(parseFaultSpec('hang@first=1')).toEqual({ fault: 'hang', first: 1 });
    expect(() => parseFaultSpec('teapot')).toThrow(/unknown fault/);
    expect(() => parseFaultSpec('500=3')).toThrow(/takes no value/);
  });
});

describe('captions', () => {
  it('describes a generated image from its real pixels, with the marker, header, model echo and usage', async () => {
    const image = await twoBandImage();
    const { data, response } = await client.chat.completions.create(captionRequest(image)).withResponse();
    const content = data.choices[0]!.message.content!;
    expect(content.startsWith('[stand-in] ')).toBe(true);
    expect(content).toContain('A landscape-format image, 320 by 200 pixels, in PNG format.');
    expect(content).toMatch(/The dominant colours are (white|blue) \(\d+%\) and (white|blue) \(\d+%\)\./);
    expect(content).toContain('The upper part is brighter than the lower part.');
    expect(content).toContain('It has no transparent areas.');
    expect(content.split(/(?<=\.) /).length).toBeGreaterThanOrEqual(5);
    expect(data.model).toBe(MODEL);
    expect(data.object).toBe('chat.completion');
    expect(data.id).toMatch(/^chatcmpl-[0-9a-f]{29}$/);
    expect(data.system_fingerprint).toBe('mella-standin');
    expect(data.choices[0]!.finish_reason).toBe('stop');
    expect(response.headers.get('x-mella-standin')).toBe('1');
    expect(response.headers.get('x-mella-standin-kind')).toBe('caption');
    // Tokens: 3 + 4 per message + ceil(chars / 4) per text + 85 per image; completion ceil(chars / 4).
    const promptText = 'Describe this image in detail.';
    expect(data.usage).toMatchObject({
      prompt_tokens: 3 + 4 + Math.ceil(promptText.length / 4) + 85,
      completion_tokens: Math.ceil([...content].length / 4),
    });
    expect(data.usage!.total_tokens).toBe(data.usage!.prompt_tokens + data.usage!.completion_tokens);
    const facts = parseCaptionEn(content);
    expect(facts).toMatchObject({ width: 320, height: 200, format: 'PNG', orientation: 'landscape', light: 'top', transparentPercent: 0 });
    expect(facts!.colours.map((c) => c.name).sort()).toEqual(['blue', 'white']);
  });

  it('is deterministic: the same request gets the same answer, another image another one', async () => {
    const image = await drawSceneImage('market', 1);
    const a = await client.chat.completions.create(captionRequest(image));
    const b = await client.chat.completions.create(captionRequest(image));
    expect(b.choices[0]!.message.content).toBe(a.choices[0]!.message.content);
    expect(b.id).toBe(a.id);
    expect(b.usage).toEqual(a.usage);
    const other = await caption(await drawSceneImage('harbour', 2, 400, 700));
    expect(other).not.toBe(a.choices[0]!.message.content);
    expect(other).toContain('400 by 700 pixels');
    expect(other).toContain('portrait-format');
  });

  it('measures transparency', async () => {
    const content = await caption(await halfTransparentImage());
    expect(content).toContain('A square image, 100 by 100 pixels, in PNG format.');
    expect(content).toContain('The dominant colour is red (100%).');
    expect(content).toContain('About 50% of it is transparent.');
  });

  it('numbers the descriptions of several images', async () => {
    const r = await client.chat.completions.create({
      model: MODEL,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: dataUrl(await twoBandImage()) } },
            { type: 'image_url', image_url: { url: dataUrl(await halfTransparentImage()) } },
          ],
        },
      ],
    });
    const content = r.choices[0]!.message.content!;
    expect(content).toMatch(/^\[stand-in\] \(1\) A landscape-format image, 320 by 200 pixels/);
    expect(content).toContain('\n(2) A square image, 100 by 100 pixels');
    expect(r.usage!.prompt_tokens).toBe(3 + 4 + 2 * 85);
  });

  it('rejects remote image URLs, undecodable images, streaming and invalid requests with OpenAI-style 400s', async () => {
    const remote = await failure(
      client.chat.completions.create({
        model: MODEL,
        messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/cat.jpg' } }] }],
      }),
    );
    expect(remote).toBeInstanceOf(OpenAI.BadRequestError);
    expect(remote).toMatchObject({ status: 400, code: 'invalid_image_url', type: 'invalid_request_error' });
    expect((remote as Error).message).toMatch(/data: URLs/);

    const garbage = await failure(client.chat.completions.create(captionRequest(Buffer.from('not an image at all'))));
    expect(garbage).toMatchObject({ status: 400, code: 'invalid_image_format' });

    const stream = await failure(client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }], stream: true }));
    expect(stream).toBeInstanceOf(OpenAI.BadRequestError);
    expect(stream).toMatchObject({ status: 400, code: 'unsupported_parameter', param: 'stream', type: 'invalid_request_error' });

    const noMessages = await failure(client.chat.completions.create({ model: MODEL, messages: [] }));
    expect(noMessages).toMatchObject({ status: 400, param: 'messages' });
    const badRole = await failure(client.chat.completions.create({ model: MODEL, messages: [{ role: 'narrator', content: 'x' }] } as never));
    expect(badRole).toMatchObject({ status: 400, param: 'messages[0].role' });
  });

  it('honours max_tokens (finish_reason "length") and n', async () => {
    const r = await client.chat.completions.create({ ...captionRequest(await twoBandImage()), max_tokens: 5, n: 2 });
    expect(r.choices).toHaveLength(2);
    for (const c of r.choices) {
      expect(c.finish_reason).toBe('length');
      expect([...c.message.content!].length).toBe(20);
    }
    expect(r.usage!.completion_tokens).toBe(10);
  });

  it('answers a text-only request without a target language with a marked acknowledgement', async () => {
    const { data, response } = await client.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello?' }] }).withResponse();
    expect(data.choices[0]!.message.content).toMatch(/^\[stand-in\] .*text-only request \(6 characters\)/);
    expect(response.headers.get('x-mella-standin-kind')).toBe('text');
  });
});

describe('small JPEGs decoded in-thread (small-jpeg.ts)', () => {
  /** sharp's thumbnail of the same bytes, the way the sharp path of image-facts.ts makes it. */
  const sharpThumb = (bytes: Buffer) =>
    sharp(bytes).resize(96, 96, { fit: 'inside', withoutEnlargement: true }).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const mean = (px: Uint8Array, c: number) => {
    let s = 0;
    for (let i = c; i < px.length; i += 4) s += px[i]!;
    return s / (px.length / 4);
  };

  it('agrees with sharp on size, thumbnail size and colour, and gives the same facts', async () => {
    const images = [
      await sharp(await twoBandImage()).jpeg({ quality: 90 }).toBuffer(),
      await sharp(await drawSceneImage('market', 3)).resize(200, 150).jpeg({ quality: 80 }).toBuffer(),
      await sharp(await drawSceneImage('harbour', 5)).resize(150, 220).jpeg({ quality: 80, progressive: true }).toBuffer(),
      await sharp(await drawSceneImage('market', 8)).resize(90, 60).greyscale().jpeg().toBuffer(),
    ];
    for (const bytes of images) {
      const fast = decodeSmallJpeg(bytes, 96);
      expect(fast).toBeDefined();
      const meta = await sharp(bytes).metadata();
      expect([fast!.width, fast!.height]).toEqual([meta.width, meta.height]);
      const ref = await sharpThumb(bytes);
      expect([fast!.thumb.width, fast!.thumb.height]).toEqual([ref.info.width, ref.info.height]);
      for (const c of [0, 1, 2]) expect(Math.abs(mean(fast!.thumb.data, c) - mean(ref.data, c))).toBeLessThan(3);
    }
    // The facts of the two-band picture through the fast path: what the PNG test above asserts.
    const facts = await imageFacts(images[0]!);
    expect(facts).toMatchObject({ width: 320, height: 200, format: 'JPEG', orientation: 'landscape', light: 'top', transparentPercent: 0 });
    expect(facts.colours.map((c) => c.name).sort()).toEqual(['blue', 'white']);
  });

  it('leaves to sharp what it does not take: other formats, EXIF orientation, large, truncated or corrupt JPEGs', async () => {
    const jpeg = await sharp(await drawSceneImage('market', 2)).resize(160, 120).jpeg().toBuffer();
    expect(decodeSmallJpeg(jpeg, 96)).toBeDefined();
    expect(decodeSmallJpeg(await sharp(jpeg).png().toBuffer(), 96)).toBeUndefined();
    const rotated = await sharp(jpeg).withMetadata({ orientation: 6 }).jpeg().toBuffer();
    expect(decodeSmallJpeg(rotated, 96)).toBeUndefined();
    // Through sharp, the EXIF orientation is applied: 160x120 stored, 120x160 seen.
    expect(await imageFacts(rotated)).toMatchObject({ width: 120, height: 160, orientation: 'portrait' });
    const side = Math.ceil(Math.sqrt(SMALL_JPEG_MAX_PIXELS)) + 1;
    expect(decodeSmallJpeg(await sharp(await drawSceneImage('market', 2)).resize(side, side).jpeg().toBuffer(), 96)).toBeUndefined();
    expect(decodeSmallJpeg(jpeg.subarray(0, jpeg.length - 100), 96)).toBeUndefined();
    const corrupt = Buffer.from(jpeg);
    corrupt.fill(0xff, Math.floor(corrupt.length / 2), Math.floor(corrupt.length / 2) + 40);
    expect(decodeSmallJpeg(corrupt, 96)).toBeUndefined();
  });

  it('decodes good pictures exactly as before after broken ones (a failed decoder instance is replaced)', async () => {
    const jpeg = await sharp(await drawSceneImage('market', 4)).resize(160, 120).jpeg({ quality: 85 }).toBuffer();
    const before = decodeSmallJpeg(jpeg, 96);
    expect(before).toBeDefined();
    for (let i = 0; i < 50; i++) {
      const broken = Buffer.from(jpeg);
      broken.fill(i % 2 ? 0x00 : 0xff, 200 + i, 260 + i); // libjpeg errors out of the middle of its code
      expect(decodeSmallJpeg(broken, 96)).toBeUndefined();
    }
    const after = decodeSmallJpeg(jpeg, 96);
    expect(after!.thumb.data).toEqual(before!.thumb.data);
    expect([after!.width, after!.height]).toEqual([160, 120]);
  });
});

describe.skipIf(!HAVE_REAL_FIXTURES)('captions of real fixture images (../shared/fixtures/real/images)', () => {
  it('describes every photo with its real dimensions and format, recognisably', async () => {
    const photos = fixtureFiles('images/photo');
    expect(photos.length).toBeGreaterThan(0);
    for (const file of photos) {
      const bytes = fs.readFileSync(file);
      const meta = await sharp(bytes).metadata();
      const content = await caption(bytes);
      const facts = parseCaptionEn(content);
      expect(facts, `${path.basename(file)}: ${content}`).toBeDefined();
      expect([facts!.width, facts!.height]).toEqual([meta.autoOrient.width, meta.autoOrient.height]);
      expect(facts!.format).toBe(path.extname(file) === '.avif' ? 'AVIF' : meta.format.toUpperCase());
      expect(facts!.colours.length).toBeGreaterThan(0);
      expect(await caption(bytes)).toBe(content);
    }
  });

  it('says what it measured on known images: the Dutch flag and a fully transparent PNG', async () => {
    const [flag] = fixtureFiles('images/tiny').filter((f) => f.endsWith('Flag_of_the_Netherlands.png'));
    const flagCaption = await caption(fs.readFileSync(flag!));
    expect(parseCaptionEn(flagCaption)!.colours.map((c) => c.name).sort()).toEqual(['blue', 'red', 'white']);
    const [clear] = fixtureFiles('images/tiny').filter((f) => f.endsWith('full-transparent.png'));
    const clearCaption = await caption(fs.readFileSync(clear!));
    expect(clearCaption).toContain('About 100% of it is transparent.');
    expect(parseCaptionEn(clearCaption)!.colours).toEqual([]);
  });

  it('answers broken images with a 400 invalid_image_format', async () => {
    const broken = fixtureFiles('images/broken');
    expect(broken.length).toBeGreaterThan(0);
    for (const file of broken) {
      const err = await failure(client.chat.completions.create(captionRequest(fs.readFileSync(file))));
      expect(err, path.basename(file)).toMatchObject({ status: 400, code: 'invalid_image_format' });
    }
  });
});

describe('translations and target-language descriptions', () => {
  let captions: string[] = [];
  beforeAll(async () => {
    captions = [
      await caption(await twoBandImage()),
      await caption(await halfTransparentImage()),
      await caption(await drawSceneImage('temple', 3, 1600, 600)),
      await caption(await drawSceneImage('noodles', 4, 200, 600)),
    ];
  });

  it('renders its own captions in the eight default languages (and sr-Latn), recognised by eld and the filter check', async () => {
    const eld = await eldDetector('large', true);
    const config = languageIdConfigSchema.parse({});
    for (const lang of [...DEFAULT_LANGUAGES, 'sr-Latn']) {
      for (const source of captions) {
        const { data, response } = await client.chat.completions.create(translateRequest(source, lang)).withResponse();
        const content = data.choices[0]!.message.content!;
        const label = `${lang}: ${content}`;
        expect(response.headers.get('x-mella-standin-kind'), label).toBe('translation');
        const marker = parseStandinMarker(content);
        expect(marker, label).toMatchObject({ standin: true });
        expect(marker.pseudo).toBeUndefined();
        const facts = parseCaptionEn(source)!;
        expect(content, label).toContain(String(facts.width));
        // eld: the best guess is the target (Latin Serbian reads as hr/bs to eld: the filter accepts both).
        const detected = eld.detect(marker.body).language;
        if (lang === 'sr-Latn') expect(['sr', 'hr', 'bs'], label).toContain(detected);
        else expect(detected, label).toBe(lang);
        // With the marker too, and by the filter stage's own check (script, foreign letters, eld margins).
        expect(eld.detect(content).language, label).toBe(detected);
        const verdict = await identifyLanguage(content, lang, config);
        expect(verdict.keep, `${label} ${JSON.stringify(verdict)}`).toBe(true);
      }
    }
  });

  it('writes Serbian in Cyrillic by default and in Latin for sr-Latn', async () => {
    const cyr = (await client.chat.completions.create(translateRequest(captions[0]!, 'sr'))).choices[0]!.message.content!;
    const lat = (await client.chat.completions.create(translateRequest(captions[0]!, 'sr-Latn'))).choices[0]!.message.content!;
    expect(cyr).toMatch(/\p{Script=Cyrillic}{5}/u);
    expect(parseStandinMarker(lat).body).not.toMatch(/\p{Script=Cyrillic}/u);
    expect(lat).toBe(`[stand-in] ${serbianToLatin(parseStandinMarker(cyr).body)}`);
  });

  it('describes an image directly in the target language, and fuses the native alt text when given', async () => {
    const image = await drawSceneImage('festival', 5);
    const direct = await client.chat.completions.create(captionRequest(image, { system: `Describe the image.\n${targetLanguageLine('th')}` })).withResponse();
    expect(direct.response.headers.get('x-mella-standin-kind')).toBe('description');
    const translated = await client.chat.completions.create(translateRequest(await caption(image), 'th'));
    expect(direct.data.choices[0]!.message.content).toBe(translated.choices[0]!.message.content);

    const alt = 'ลอยกระทงที่เชียงใหม่';
    const fused = await client.chat.completions
      .create(captionRequest(image, { system: `Describe the image for a native reader.\n${targetLanguageLine('th')}`, userText: `${altTextLine(alt)}\nDescribe it.` }))
      .withResponse();
    const content = fused.data.choices[0]!.message.content!;
    expect(fused.response.headers.get('x-mella-standin-kind')).toBe('fused');
    expect(content).toContain(alt);
    expect(content.startsWith('[stand-in] ')).toBe(true);
    expect(content).toContain(parseStandinMarker(translated.choices[0]!.message.content!).body);
    expect((await eldDetector('large', true)).detect(content).language).toBe('th');

    // An English fused description, translated, keeps the alt text.
    const english = (await client.chat.completions.create(captionRequest(image, { userText: altTextLine('Lantern festival') }))).choices[0]!.message.content!;
    expect(english).toMatch(/^\[stand-in\] The page describes it as "Lantern festival"\. A /);
    const ru = (await client.chat.completions.create(translateRequest(english, 'ru'))).choices[0]!.message.content!;
    expect(ru).toMatch(/^\[stand-in\] На странице оно подписано так: «Lantern festival»\. /);
  });

  it('marks a pseudo-translation for texts it did not write and for languages without phrase tables', async () => {
    const other = await client.chat.completions.create(translateRequest('A bowl of noodle soup on a wooden table.', 'th')).withResponse();
    expect(other.data.choices[0]!.message.content).toBe('[stand-in:pseudo:th] A bowl of noodle soup on a wooden table.');
    expect(other.response.headers.get('x-mella-standin-kind')).toBe('pseudo-translation');

    const swahili = (await client.chat.completions.create(translateRequest(captions[0]!, 'sw'))).choices[0]!.message.content!;
    expect(swahili).toBe(`[stand-in:pseudo:sw] ${parseStandinMarker(captions[0]!).body}`);
    expect(parseStandinMarker(swahili).pseudo).toBe('sw');

    const described = (await client.chat.completions.create(captionRequest(await twoBandImage(), { system: targetLanguageLine('yo') }))).choices[0]!.message.content!;
    expect(described).toBe(`[stand-in:pseudo:yo] ${parseStandinMarker(captions[0]!).body}`);
  });
});

describe('faults through the openai client', () => {
  const chat = (fault: string, c: OpenAI = client) =>
    c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'ping' }] }, { headers: { 'x-standin-fault': fault } });

  it('429 with Retry-After in seconds', async () => {
    const err = await failure(chat('429=3'));
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    expect(err).toMatchObject({ status: 429, code: 'rate_limit_exceeded' });
    expect((err as APIError).headers!.get('retry-after')).toBe('3');
    expect((err as APIError).headers!.get('x-mella-standin')).toBe('1');
    expect((await failure(chat('429'))) as APIError).toMatchObject({ status: 429 });
    expect(((await failure(chat('429'))) as APIError).headers!.get('retry-after')).toBe('1');
  });

  it('500, 503 and 401', async () => {
    expect(await failure(chat('500'))).toBeInstanceOf(OpenAI.InternalServerError);
    expect(await failure(chat('500'))).toMatchObject({ status: 500, type: 'server_error' });
    const overloaded = (await failure(chat('503=2'))) as APIError;
    expect(overloaded).toMatchObject({ status: 503 });
    expect(overloaded.headers!.get('retry-after')).toBe('2');
    const denied = await failure(chat('401'));
    expect(denied).toBeInstanceOf(OpenAI.AuthenticationError);
    expect(denied).toMatchObject({ status: 401, code: 'invalid_api_key' });
  });

  it('malformed JSON: a 200 whose body is cut off', async () => {
    const err = await failure(chat('malformed-json'));
    expect(err).toBeInstanceOf(SyntaxError);
    const res = await fetch(`${standin.baseUrl}/embeddings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-standin-fault': 'malformed-json' },
      body: JSON.stringify({ model: 'e', input: 'x' }),
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text.startsWith('{"id":"emb-malformed"')).toBe(true);
    expect(() => JSON.parse(text)).toThrow();
  });

  it('empty content and a refusal, without the marker', async () => {
    const empty = await chat('empty').withResponse();
    expect(empty.data.choices[0]!.message.content).toBe('');
    expect(empty.data.usage!.completion_tokens).toBe(0);
    expect(empty.response.headers.get('x-mella-standin-kind')).toBe('empty');
    const refusal = await chat('refusal').withResponse();
    expect(refusal.data.choices[0]!.message.content).toBe(REFUSAL_TEXT);
    expect(refusal.data.choices[0]!.message.content).toBe("I'm sorry, I can't help with that.");
    expect(refusal.response.headers.get('x-mella-standin-kind')).toBe('refusal');
  });

  it('latency, alone and before a failure', async () => {
    let t0 = Date.now();
    const slow = await chat('latency=300');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(slow.choices[0]!.message.content).toMatch(/^\[stand-in\]/);
    t0 = Date.now();
    expect(await failure(chat('latency=200, 500'))).toMatchObject({ status: 500 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
  });

  it('hang: never answered, the client times out, the stand-in counts it', async () => {
    standin.reset();
    const impatient = new OpenAI({ baseURL: standin.baseUrl, apiKey: 'test', maxRetries: 0, timeout: 400 });
    const t0 = Date.now();
    const err = await failure(chat('hang', impatient));
    expect(err).toBeInstanceOf(OpenAI.APIConnectionTimeoutError);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(390);
    await until(() => standin.stats().byOutcome.hang === 1);
    expect(standin.stats()).toMatchObject({ requests: 1, inFlight: 0, byOutcome: { hang: 1 }, byFault: { hang: 1 } });
  });

  it('an unknown fault in the header is a 400', async () => {
    const err = await failure(chat('teapot'));
    expect(err).toMatchObject({ status: 400, code: 'invalid_fault_header' });
  });

  it('close() ends hung requests', async () => {
    const s = await startLlmStandin({ faults: [{ fault: 'hang' }] });
    const c = new OpenAI({ baseURL: s.baseUrl, apiKey: 'test', maxRetries: 0, timeout: 60_000 });
    const pending = failure(c.embeddings.create({ model: 'e', input: 'x' }));
    await until(() => s.stats().inFlight === 1);
    expect(s.stats().inFlight).toBe(1);
    const t0 = Date.now();
    await s.close();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await pending).toBeInstanceOf(OpenAI.APIConnectionError);
  });
});

describe('fault plans', () => {
  it('"first N fail": the client retries through them; the stand-in counts each attempt', async () => {
    const s = await startLlmStandin({ faults: [{ fault: '500', first: 2 }] });
    try {
      const noRetry = new OpenAI({ baseURL: s.baseUrl, apiKey: 'test', maxRetries: 0 });
      expect(await failure(noRetry.embeddings.create({ model: 'e', input: 'x' }))).toMatchObject({ status: 500 });
      s.reset();
      const retrying = new OpenAI({ baseURL: s.baseUrl, apiKey: 'test', maxRetries: 2 });
      const r = await retrying.embeddings.create({ model: 'e', input: 'x' });
      expect(r.data).toHaveLength(1);
      expect(s.stats()).toMatchObject({ requests: 3, byOutcome: { 'server-error': 2, ok: 1 }, byFault: { '500': 2 } });
    } finally {
      await s.close();
    }
  });

  it('"every Nth fails", restricted to a route and a model; Retry-After is honoured by the client', async () => {
    const s = await startLlmStandin({ faults: [{ fault: '429', every: 3, retryAfterSeconds: 1, routes: ['chat'], models: ['flaky'] }] });
    try {
      const c = new OpenAI({ baseURL: s.baseUrl, apiKey: 'test', maxRetries: 0 });
      const ask = (model: string) => c.chat.completions.create({ model, messages: [{ role: 'user', content: 'ping' }] }).then(
        () => 'ok',
        (e: APIError) => String(e.status),
      );
      const outcomes: string[] = [];
      for (let i = 0; i < 7; i++) outcomes.push(await ask('flaky'));
      expect(outcomes).toEqual(['ok', 'ok', '429', 'ok', 'ok', '429', 'ok']);
      for (let i = 0; i < 3; i++) expect(await ask('steady')).toBe('ok');
      await c.embeddings.create({ model: 'flaky', input: 'x' });
      expect(s.stats().byOutcome).toEqual({ ok: 9, 'rate-limited': 2 });

      // The next "flaky" chat is the 9th: it fails once; a retrying client waits Retry-After (1 s) and succeeds.
      await ask('flaky');
      const retrying = new OpenAI({ baseURL: s.baseUrl, apiKey: 'test', maxRetries: 1 });
      const t0 = Date.now();
      const r = await retrying.chat.completions.create({ model: 'flaky', messages: [{ role: 'user', content: 'ping' }] });
      expect(r.choices[0]!.message.content).toMatch(/^\[stand-in\]/);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    } finally {
      await s.close();
    }
  });

  it('server-wide latency and setFaults', async () => {
    const s = await startLlmStandin({ latencyMs: 150 });
    try {
      const c = new OpenAI({ baseURL: s.baseUrl, apiKey: 'test', maxRetries: 0 });
      let t0 = Date.now();
      await c.embeddings.create({ model: 'e', input: 'x' });
      expect(Date.now() - t0).toBeGreaterThanOrEqual(140);
      s.setFaults([{ fault: 'refusal' }]);
      t0 = Date.now();
      const r = await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'ping' }] });
      expect(r.choices[0]!.message.content).toBe(REFUSAL_TEXT);
      expect(s.stats().byFault).toEqual({ refusal: 1 });
      expect(() => s.setFaults([{ fault: '500', first: 1, every: 2 }])).toThrow(/not both/);
    } finally {
      await s.close();
    }
  });

  it('maxInFlight: requests beyond the limit get a 429', async () => {
    const s = await startLlmStandin({ latencyMs: 300, maxInFlight: 2 });
    try {
      const c = new OpenAI({ baseURL: s.baseUrl, apiKey: 'test', maxRetries: 0 });
      const results = await Promise.allSettled([1, 2, 3].map(() => c.embeddings.create({ model: 'e', input: 'x' })));
      expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(2);
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(rejected).toHaveLength(1);
      expect(rejected[0]!.reason).toMatchObject({ status: 429 });
      expect(s.stats().maxInFlight).toBe(3);
    } finally {
      await s.close();
    }
  });
});

describe('API key', () => {
  it('requireKey: a wrong or missing key is a 401 invalid_api_key; the key is never logged or echoed', async () => {
    const secret = 'sk-standin-secret-4c1e9';
    const lines: string[] = [];
    const s = await startLlmStandin({ requireKey: secret, log: (l) => lines.push(l) });
    try {
      const wrong = new OpenAI({ baseURL: s.baseUrl, apiKey: 'sk-wrong-key-77', maxRetries: 0 });
      const err = (await failure(wrong.models.list())) as APIError;
      expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
      expect(err).toMatchObject({ status: 401, code: 'invalid_api_key' });
      expect(JSON.stringify(err.error)).not.toContain('sk-wrong-key-77');
      const missing = await fetch(`${s.baseUrl}/models`);
      expect(missing.status).toBe(401);
      expect(await missing.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'missing_api_key' } });

      const right = new OpenAI({ baseURL: s.baseUrl, apiKey: secret, maxRetries: 0 });
      const r = await right.chat.completions.create(captionRequest(await twoBandImage()));
      expect(r.choices[0]!.message.content).toMatch(/^\[stand-in\]/);
      await until(() => lines.length === 3);
      expect(lines).toHaveLength(3);
      expect(lines.join('\n')).not.toContain(secret);
      expect(lines.join('\n')).not.toContain('sk-wrong-key-77');
      expect(lines[2]).toMatch(/^POST \/v1\/chat\/completions 200 ok model=test-vlm \d+ms$/);
    } finally {
      await s.close();
    }
  });

  it('without requireKey any key is accepted', async () => {
    const other = new OpenAI({ baseURL: standin.baseUrl, apiKey: 'anything-at-all', maxRetries: 0 });
    expect((await other.models.list()).data.length).toBeGreaterThan(0);
  });
});

describe('request counting', () => {
  it('counts requests by route, model, outcome and fault, with tokens and a log', async () => {
    const s = await startLlmStandin();
    try {
      const c = new OpenAI({ baseURL: s.baseUrl, apiKey: 'test', maxRetries: 0 });
      const a = await c.chat.completions.create({ ...captionRequest(await twoBandImage()), model: 'vlm-a' });
      const b = await c.chat.completions.create({ ...translateRequest(a.choices[0]!.message.content!, 'vi'), model: 'vlm-b' });
      const e = await c.embeddings.create({ model: 'emb', input: ['one', 'two'] });
      await failure(c.chat.completions.create({ model: 'vlm-a', messages: [{ role: 'user', content: 'x' }] }, { headers: { 'x-standin-fault': '429' } }));
      await failure(c.chat.completions.create({ model: 'vlm-a', messages: [], stream: false }));
      await c.models.list();
      await fetch(`${s.baseUrl}/nothing-here`);
      const stats = s.stats();
      expect(stats).toMatchObject({
        requests: 7,
        byRoute: { chat: 4, embeddings: 1, models: 1, other: 1 },
        byModel: { 'vlm-a': 3, 'vlm-b': 1, emb: 1 },
        byOutcome: { ok: 4, 'rate-limited': 1, 'bad-request': 1, 'not-found': 1 },
        byFault: { '429': 1 },
        inFlight: 0,
        maxInFlight: 1,
      });
      expect(stats.tokens).toEqual({
        prompt: a.usage!.prompt_tokens + b.usage!.prompt_tokens + e.usage.prompt_tokens,
        completion: a.usage!.completion_tokens + b.usage!.completion_tokens,
      });
      expect(stats.log.map((r) => `${r.route}:${r.status}`)).toEqual(['chat:200', 'chat:200', 'embeddings:200', 'chat:429', 'chat:400', 'models:200', 'other:404']);
      for (const r of stats.log) expect(r.endedAt).toBeGreaterThanOrEqual(r.startedAt);
      s.reset();
      expect(s.stats()).toMatchObject({ requests: 0, byRoute: {}, byOutcome: {}, log: [] });
    } finally {
      await s.close();
    }
  });

  it('answers unknown routes, wrong methods and unparseable bodies with OpenAI-style errors', async () => {
    const notFound = await fetch(`${standin.baseUrl}/completions`, { method: 'POST', body: '{}' });
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get('x-mella-standin')).toBe('1');
    expect(await notFound.json()).toMatchObject({ error: { type: 'invalid_request_error', code: 'unknown_url' } });
    const wrongMethod = await fetch(`${standin.baseUrl}/chat/completions`);
    expect(wrongMethod.status).toBe(405);
    const badJson = await fetch(`${standin.baseUrl}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": ' });
    expect(badJson.status).toBe(400);
    expect(await badJson.json()).toMatchObject({ error: { message: expect.stringMatching(/could not parse the JSON body/), type: 'invalid_request_error' } });
  });
});

describe('embeddings and models', () => {
  const cos = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);

  it('deterministic unit vectors of the configured dimension, similar for similar texts', async () => {
    const r = await client.embeddings.create({ model: 'emb', input: ['a red bicycle by the canal', 'a red bicycle by a canal', 'Quarterly tax report 2024'] });
    expect(r.object).toBe('list');
    expect(r.model).toBe('emb');
    expect(r.data.map((d) => d.index)).toEqual([0, 1, 2]);
    const [x, y, z] = r.data.map((d) => d.embedding);
    expect(x).toHaveLength(256);
    expect(cos(x!, x!)).toBeCloseTo(1, 5);
    expect(cos(x!, y!)).toBeGreaterThan(0.7);
    expect(Math.abs(cos(x!, z!))).toBeLessThan(0.3);
    expect(r.usage).toEqual({ prompt_tokens: 7 + 6 + 7, total_tokens: 20 });

    const again = await client.embeddings.create({ model: 'emb', input: 'a red bicycle by the canal' });
    expect(again.data[0]!.embedding).toEqual(x);
    const asFloats = await client.embeddings.create({ model: 'emb', input: 'a red bicycle by the canal', encoding_format: 'float' });
    expect(asFloats.data[0]!.embedding).toEqual(x);
    const otherModel = await client.embeddings.create({ model: 'emb-2', input: 'a red bicycle by the canal' });
    expect(otherModel.data[0]!.embedding).not.toEqual(x);

    const small = await client.embeddings.create({ model: 'emb', input: 'x', dimensions: 64 });
    expect(small.data[0]!.embedding).toHaveLength(64);
    expect(cos(small.data[0]!.embedding, small.data[0]!.embedding)).toBeCloseTo(1, 5);
    expect(await failure(client.embeddings.create({ model: 'emb', input: 'x', dimensions: 0 }))).toMatchObject({ status: 400 });
  });

  it('a server-wide dimension, and its bounds', async () => {
    const s = await startLlmStandin({ embeddingDimensions: 1024 });
    try {
      const c = new OpenAI({ baseURL: s.baseUrl, apiKey: 'test', maxRetries: 0 });
      expect((await c.embeddings.create({ model: 'e', input: [[1, 2, 3]] })).data[0]!.embedding).toHaveLength(1024);
    } finally {
      await s.close();
    }
    await expect(startLlmStandin({ embeddingDimensions: 32 })).rejects.toThrow(/64/);
  });

  it('lists and retrieves models', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(['mella-standin-vlm', 'mella-standin-embed']);
    expect(list.data[0]).toMatchObject({ object: 'model', owned_by: 'mella-standin' });
    expect(await client.models.retrieve('any-model')).toMatchObject({ id: 'any-model', object: 'model' });
  });
});

describe('CLI', () => {
  it('infra/llm-standin/main.ts prints its base URL, serves, and stops on SIGTERM', async () => {
    const tsx = path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx');
    const child = spawn(tsx, ['infra/llm-standin/main.ts', '--port', '0', '--fault', '500@first=1'], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    // 'close', not 'exit': only after 'close' has all of the child's output been read.
    const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
    try {
      // The banner is three console.log calls; over a pipe they may arrive as separate chunks, so wait for its last line.
      await until(() => /listening at http:\/\/127\.0\.0\.1:\d+\/v1[\s\S]*OPENAI_BASE_URL=[\s\S]*faults: .*\n/.test(out), 30_000);
      const baseURL = /listening at (http:\/\/127\.0\.0\.1:\d+\/v1)/.exec(out)?.[1];
      expect(baseURL, out).toBeDefined();
      expect(out).toContain(`OPENAI_BASE_URL=${baseURL}`);
      const c = new OpenAI({ baseURL: baseURL!, apiKey: 'test', maxRetries: 0 });
      expect(await failure(c.embeddings.create({ model: 'e', input: 'x' }))).toMatchObject({ status: 500 });
      expect((await c.embeddings.create({ model: 'e', input: 'x' })).data).toHaveLength(1);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(out).toMatch(/SIGTERM: stopped after 2 requests/);
  });
});
