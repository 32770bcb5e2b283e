/**
 * What the stand-in "sees" in an image: facts measured from the real pixels (size, format, orientation,
 * dominant colours named from a small palette, brightness, colourfulness, amount of fine detail, where
 * the light is, transparency), decoded with sharp, or in this thread for small JPEGs (small-jpeg.ts).
 * Deterministic: the same bytes give the same facts.
 * The captions (caption.ts, phrases.ts) are rendered from these facts only.
 */
import crypto from 'node:crypto';
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { decodeSmallJpeg } from './small-jpeg';

export const COLOUR_NAMES = ['black', 'white', 'grey', 'red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'brown'] as const;
export type ColourName = (typeof COLOUR_NAMES)[number];
export const ORIENTATIONS = ['landscape', 'portrait', 'square', 'panoramic', 'tall'] as const;
export type Orientation = (typeof ORIENTATIONS)[number];
export type Brightness = 'dark' | 'medium' | 'bright';
export type Colourfulness = 'greyscale' | 'muted' | 'vivid';
export type Detail = 'low' | 'moderate' | 'high';
export type Light = 'top' | 'bottom' | 'even';

export interface ImageFacts {
  width: number;
  height: number;
  /** Upper-case container format as sharp names it ("JPEG", "PNG", "WEBP", "AVIF", "GIF", ...). */
  format: string;
  orientation: Orientation;
  /** Up to three colours covering at least 5% of the opaque pixels each, largest first (empty if none is opaque). */
  colours: { name: ColourName; percent: number }[];
  brightness: Brightness;
  colourfulness: Colourfulness;
  detail: Detail;
  light: Light;
  /** Share of (mostly) transparent pixels, 0-100. */
  transparentPercent: number;
}

/** An image the stand-in cannot decode (answered with a 400 `invalid_image_format`). */
export class ImageDecodeError extends Error {}

/** The side of the thumbnail the pixel statistics are measured on. */
const SAMPLE_SIDE = 96;

export function orientationOf(width: number, height: number): Orientation {
  const r = width / height;
  if (r >= 2) return 'panoramic';
  if (r >= 1.05) return 'landscape';
  if (r > 1 / 1.05) return 'square';
  if (r > 0.5) return 'portrait';
  return 'tall';
}

// Palette indices (COLOUR_NAMES order).
const BLACK = 0, WHITE = 1, GREY = 2, RED = 3, ORANGE = 4, YELLOW = 5, GREEN = 6, BLUE = 7, PURPLE = 8, PINK = 9, BROWN = 10;

/**
 * Palette index + 1 of every sRGB colour met so far (0: not computed yet), so that a thumbnail's pixels
 * are named by one table read each. 16 MiB of address space; only the pages of colours seen are touched.
 */
let colourTable: Uint8Array | undefined;

/** The palette index of an sRGB colour, through the table. */
function colourIndexCached(r: number, g: number, b: number): number {
  colourTable ??= new Uint8Array(1 << 24);
  const key = (r << 16) | (g << 8) | b;
  const hit = colourTable[key]!;
  if (hit !== 0) return hit - 1;
  const idx = colourIndex(r, g, b);
  colourTable[key] = idx + 1;
  return idx;
}

/** The palette index of an sRGB colour (what `colourName` names). */
function colourIndex(r: number, g: number, b: number): number {
  const max = Math.max(r, g, b) / 255;
  const min = Math.min(r, g, b) / 255;
  const l = (max + min) / 2;
  const d = max - min;
  const s = d === 0 ? 0 : d / (1 - Math.abs(2 * l - 1));
  if (l < 0.12) return BLACK;
  if (l > 0.93) return WHITE;
  if (s < 0.18 || d < 0.08) return l < 0.2 ? BLACK : l > 0.85 ? WHITE : GREY;
  let h: number;
  const rr = r / 255;
  const gg = g / 255;
  const bb = b / 255;
  if (max === rr) h = 60 * (((gg - bb) / d + 6) % 6);
  else if (max === gg) h = 60 * ((bb - rr) / d + 2);
  else h = 60 * ((rr - gg) / d + 4);
  if (h < 15 || h >= 345) return l > 0.75 ? PINK : l < 0.3 ? BROWN : RED;
  if (h < 45) return l < 0.45 ? BROWN : ORANGE;
  if (h < 70) return l < 0.25 ? BROWN : YELLOW;
  if (h < 165) return GREEN;
  if (h < 255) return BLUE;
  if (h < 290) return PURPLE;
  return l < 0.35 ? PURPLE : PINK;
}

/** Names an sRGB colour from the palette by hue, saturation and lightness. */
export function colourName(r: number, g: number, b: number): ColourName {
  return COLOUR_NAMES[colourIndex(r, g, b)]!;
}

const cache = new Map<string, ImageFacts>();
const CACHE_LIMIT = 512;

/** Facts about the image in `bytes` (cached by content hash). @throws ImageDecodeError */
export async function imageFacts(bytes: Buffer): Promise<ImageFacts> {
  const key = crypto.createHash('sha256').update(bytes).digest('hex');
  const hit = cache.get(key);
  if (hit !== undefined) return structuredClone(hit);
  const facts = await measure(bytes);
  if (cache.size >= CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  cache.set(key, facts);
  return structuredClone(facts);
}

/** sharp's format name, upper-case; AVIF is HEIF with AV1 compression to sharp. */
function formatName(meta: Metadata): string {
  if (meta.format === 'heif' && meta.compression === 'av1') return 'AVIF';
  return (meta.format ?? 'unknown').toUpperCase();
}

/** Size, format and an RGBA thumbnail (inside SAMPLE_SIDE) of the image, by the fast path or sharp. */
async function decodeForFacts(bytes: Buffer): Promise<{ width: number; height: number; format: string; data: Uint8Array; w: number; h: number }> {
  const small = decodeSmallJpeg(bytes, SAMPLE_SIDE);
  if (small !== undefined) return { width: small.width, height: small.height, format: 'JPEG', data: small.thumb.data, w: small.thumb.width, h: small.thumb.height };
  let meta: Metadata;
  let rgba: { data: Buffer; info: OutputInfo };
  try {
    const input = () => sharp(bytes, { limitInputPixels: 100_000_000, failOn: 'error' });
    meta = await input().metadata();
    rgba = await input()
      .autoOrient()
      .resize(SAMPLE_SIDE, SAMPLE_SIDE, { fit: 'inside', withoutEnlargement: true })
      .ensureAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
  } catch (err) {
    throw new ImageDecodeError(`the image could not be decoded: ${(err as Error).message.split('\n')[0]!.trim()}`);
  }
  const width = meta.autoOrient?.width ?? meta.width;
  const height = meta.autoOrient?.height ?? meta.height;
  if (!width || !height) throw new ImageDecodeError('the image has no dimensions');
  return { width, height, format: formatName(meta), data: rgba.data, w: rgba.info.width, h: rgba.info.height };
}

async function measure(bytes: Buffer): Promise<ImageFacts> {
  const { width, height, format, data, w, h } = await decodeForFacts(bytes);
  const n = w * h;
  const luma = new Float64Array(n);
  const counts = new Array<number>(COLOUR_NAMES.length).fill(0);
  let opaque = 0;
  let transparent = 0;
  let chromaSum = 0;
  let lumaSum = 0;
  for (let i = 0; i < n; i++) {
    const r = data[4 * i]!;
    const g = data[4 * i + 1]!;
    const b = data[4 * i + 2]!;
    const a = data[4 * i + 3]! / 255;
    if (a < 0.5) transparent++;
    else {
      opaque++;
      counts[colourIndexCached(r, g, b)]!++;
      chromaSum += Math.max(r, g, b) - Math.min(r, g, b);
    }
    // Brightness as seen on a white page: composite over white.
    const y = (0.299 * r + 0.587 * g + 0.114 * b) * a + 255 * (1 - a);
    luma[i] = y;
    lumaSum += y;
  }

  const colours = COLOUR_NAMES.map((name, i) => ({ name, count: counts[i]! }))
    .filter((c) => c.count > 0)
    .map(({ name, count }) => ({ name, percent: Math.round((100 * count) / opaque) }))
    .filter((c) => c.percent >= 5)
    .sort((a, b) => b.percent - a.percent || COLOUR_NAMES.indexOf(a.name) - COLOUR_NAMES.indexOf(b.name))
    .slice(0, 3);

  const meanLuma = lumaSum / n;
  const brightness: Brightness = meanLuma < 85 ? 'dark' : meanLuma < 170 ? 'medium' : 'bright';
  const meanChroma = opaque === 0 ? 0 : chromaSum / opaque;
  const colourfulness: Colourfulness = meanChroma < 12 ? 'greyscale' : meanChroma < 60 ? 'muted' : 'vivid';

  // Fine detail: mean absolute difference between neighbouring pixels on the thumbnail.
  let gradSum = 0;
  let gradN = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = luma[y * w + x]!;
      if (x + 1 < w) {
        gradSum += Math.abs(v - luma[y * w + x + 1]!);
        gradN++;
      }
      if (y + 1 < h) {
        gradSum += Math.abs(v - luma[(y + 1) * w + x]!);
        gradN++;
      }
    }
  }
  const grad = gradN === 0 ? 0 : gradSum / gradN;
  const detail: Detail = grad < 4 ? 'low' : grad < 12 ? 'moderate' : 'high';

  // Where the light is: the top third against the bottom third.
  const third = Math.max(1, Math.floor(h / 3));
  const rowsMean = (from: number, to: number) => {
    let s = 0;
    for (let y = from; y < to; y++) for (let x = 0; x < w; x++) s += luma[y * w + x]!;
    return s / ((to - from) * w);
  };
  const top = rowsMean(0, third);
  const bottom = rowsMean(h - third, h);
  const light: Light = h < 3 || Math.abs(top - bottom) < 20 ? 'even' : top > bottom ? 'top' : 'bottom';

  return {
    width,
    height,
    format,
    orientation: orientationOf(width, height),
    colours,
    brightness,
    colourfulness,
    detail,
    light,
    transparentPercent: Math.round((100 * transparent) / n),
  };
}
