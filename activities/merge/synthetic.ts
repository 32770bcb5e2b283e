/**
 * Synthetic samples for the merge tests and the export benchmark: a few distinct small images written
 * into a blob-store-like folder (`sha256/<2>/<2>/<hex>`, as LocalBlobStore lays them out), and any
 * number of samples over them, the same for the same arguments. Every field is filled the way the
 * merge stage fills it: instructions from the templates, near-duplicate groups shared by consecutive
 * images, lineage with a page URL, crawl time, operators and model versions.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { chooseInstruction, INSTRUCTION_TEMPLATES_VERSION } from './instructions';
import { SAMPLE_SOURCES, type Sample, type SampleSource } from './sample';

export interface SyntheticImage {
  sha256: string;
  path: string;
  format: 'jpeg' | 'png' | 'webp';
  /** Images with the same group are near-duplicates (split together). */
  group: string;
}

/**
 * `count` distinct images (`side` px, flat colour with a stripe; with `noise`, a tinted noisy picture
 * that compresses like a small photo), every `groupSize` consecutive ones one group.
 */
export async function makeSyntheticImages(dir: string, count: number, options: { side?: number; groupSize?: number; noise?: boolean } = {}): Promise<SyntheticImage[]> {
  const side = options.side ?? 48;
  const groupSize = options.groupSize ?? 3;
  const out: SyntheticImage[] = [];
  for (let i = 0; i < count; i++) {
    const format = (['jpeg', 'png', 'webp'] as const)[i % 3]!;
    const stripe = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${side}" height="${side}"><rect x="${i % side}" y="0" width="6" height="${side}" fill="#${((i * 2654435761) >>> 8).toString(16).padStart(6, '0').slice(0, 6)}"/></svg>`);
    const colour = { r: (i * 37) % 256, g: (i * 91) % 256, b: (i * 53) % 256 };
    const base = options.noise
      ? sharp(await sharp({ create: { width: side, height: side, channels: 3, background: colour, noise: { type: 'gaussian', mean: 128, sigma: 30 } } }).blur(0.8).tint(colour).png().toBuffer())
      : sharp({ create: { width: side, height: side, channels: 3, background: colour } });
    const img = base.composite([{ input: stripe }]);
    const bytes = await (format === 'jpeg' ? img.jpeg({ quality: 80 }) : format === 'png' ? img.png() : img.webp({ quality: 80 })).toBuffer();
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const file = path.join(dir, 'sha256', sha256.slice(0, 2), sha256.slice(2, 4), sha256);
    await fs.mkdir(path.dirname(file), { recursive: true });
    await fs.writeFile(file, bytes);
    out.push({ sha256, path: file, format, group: `phash-group-${Math.floor(i / groupSize)}` });
  }
  return out;
}

const ANSWERS: Record<string, { know: string[]; ling: string[] }> = {
  th: { know: ['วัดพระแก้ว กรุงเทพมหานคร', 'ต้มยำกุ้งน้ำข้น', 'ประเพณีลอยกระทง'], ling: ['ภาพแสดงวัดที่มีหลังคาสีทองและสีแดง มีนักท่องเที่ยวเดินอยู่หน้าวัดในวันที่ท้องฟ้าแจ่มใส'] },
  vi: { know: ['Phở bò Hà Nội', 'Vịnh Hạ Long', 'Áo dài truyền thống'], ling: ['Bức ảnh cho thấy một bát phở nóng với thịt bò thái mỏng, hành lá và rau thơm trên bàn gỗ.'] },
  ar: { know: ['مسجد الشيخ زايد الكبير', 'سوق خان الخليلي', 'القهوة العربية'], ling: ['تُظهر الصورة مسجدًا كبيرًا بقباب بيضاء ومآذن عالية تحت سماء زرقاء صافية.'] },
  cs: { know: ['Karlův most v Praze', 'Svíčková na smetaně', 'Pražský orloj'], ling: ['Na fotografii je kamenný most přes řeku, po kterém chodí lidé, v pozadí je hrad.'] },
  en: { know: ['A lighthouse on a cliff'], ling: ['The picture shows a white lighthouse standing on a rocky cliff above a calm sea.'] },
};

/** Deterministic pseudo-random index for sample i. */
const pick = (i: number, salt: string, n: number) => createHash('sha256').update(`${salt}:${i}`).digest().readUInt32BE(0) % n;

/**
 * Sample number `i` over `images`: language `langs[i % langs.length]`, source by `sources` in turn,
 * image chosen by a hash of i (so one image has samples of several sources and languages).
 */
export function syntheticSample(i: number, images: SyntheticImage[], options: { langs?: string[]; sources?: readonly SampleSource[]; standin?: boolean; tag?: string } = {}): Sample {
  const langs = options.langs ?? ['th', 'vi', 'ar', 'cs'];
  const sources = options.sources ?? SAMPLE_SOURCES;
  const lang = langs[i % langs.length]!;
  const source = sources[Math.floor(i / langs.length) % sources.length]!;
  const image = images[pick(i, 'image', images.length)]!;
  const texts = ANSWERS[lang] ?? ANSWERS.en!;
  const know = texts.know[pick(i, 'know', texts.know.length)]!;
  const ling = texts.ling[pick(i, 'ling', texts.ling.length)]!;
  const answer = source === 'know' ? know : source === 'ling' ? ling : `${know}. ${ling}`;
  const id = `${source}:${lang}:${options.tag ?? 'r'}${i}`;
  const instruction = chooseInstruction(id, lang, source);
  return {
    id,
    lang,
    source,
    imageSha256: image.sha256,
    imagePath: image.path,
    imageFormat: image.format,
    instruction: instruction.text,
    answer,
    groupKey: image.group,
    lineage: {
      pageUrl: `https://www.site${pick(i, 'site', 12)}.${lang === 'en' ? 'com' : lang}/articles/${i}.html`,
      crawledAt: '2026-01-15T10:00:00.000Z',
      operators: ['normalize', 'boilerplate', 'length', 'language-id', 'decodable', 'min-side', 'phash-dedup'],
      ...(source !== 'know' ? { caption: 'A detailed English caption of the picture.', captionModel: 'standin-vlm', captionPrompt: 'caption-v1', translateModel: 'standin-mt', translatePrompt: 'translate-v1' } : {}),
      instructionTemplate: instruction.templateId,
      instructionTemplates: INSTRUCTION_TEMPLATES_VERSION,
    },
    standin: options.standin ?? source !== 'know',
  };
}

export function* syntheticSamples(n: number, images: SyntheticImage[], options: Parameters<typeof syntheticSample>[2] & { start?: number } = {}): Generator<Sample> {
  const start = options.start ?? 0;
  for (let i = start; i < start + n; i++) yield syntheticSample(i, images, options);
}
