/**
 * The stand-in's English caption: a fixed template of several sentences rendered from `ImageFacts`,
 * and its inverse, which recognises the facts in a caption the stand-in wrote (so that a later
 * translation request can render the same facts in the target language, phrases.ts).
 *
 *   [stand-in] A landscape-format image, 320 by 240 pixels, in JPEG format. The dominant colours are
 *   green (41%), blue (22%) and white (15%). Overall it is bright, with vivid colours. It shows a
 *   moderate amount of fine detail. The upper part is brighter than the lower part. It has no
 *   transparent areas.
 */
import { parseStandinMarker } from './conventions';
import {
  COLOUR_NAMES,
  ORIENTATIONS,
  type Brightness,
  type ColourName,
  type Colourfulness,
  type Detail,
  type ImageFacts,
  type Light,
  type Orientation,
} from './image-facts';

const ORIENTATION_EN: Record<Orientation, string> = {
  landscape: 'landscape-format',
  portrait: 'portrait-format',
  square: 'square',
  panoramic: 'panoramic',
  tall: 'tall, narrow',
};
const BRIGHTNESS_EN: Record<Brightness, string> = { dark: 'dark', medium: 'of medium brightness', bright: 'bright' };
const COLOURFULNESS_EN: Record<Colourfulness, string> = {
  vivid: 'with vivid colours',
  muted: 'with muted colours',
  greyscale: 'with almost no colour',
};
const DETAIL_EN: Record<Detail, string> = { low: 'little', moderate: 'a moderate amount of', high: 'a lot of' };
const LIGHT_EN: Record<Light, string> = {
  top: 'The upper part is brighter than the lower part.',
  bottom: 'The lower part is brighter than the upper part.',
  even: 'The light is spread evenly from top to bottom.',
};

/** "a, b and c" */
export function listEn(items: string[]): string {
  return items.length <= 1 ? (items[0] ?? '') : `${items.slice(0, -1).join(', ')} and ${items[items.length - 1]}`;
}

/** The English sentences for `facts` (without the stand-in marker). */
export function captionSentencesEn(facts: ImageFacts): string[] {
  const out = [`A ${ORIENTATION_EN[facts.orientation]} image, ${facts.width} by ${facts.height} pixels, in ${facts.format} format.`];
  const colours = facts.colours.map((c) => `${c.name} (${c.percent}%)`);
  if (colours.length === 1) out.push(`The dominant colour is ${colours[0]}.`);
  else if (colours.length > 1) out.push(`The dominant colours are ${listEn(colours)}.`);
  out.push(`Overall it is ${BRIGHTNESS_EN[facts.brightness]}, ${COLOURFULNESS_EN[facts.colourfulness]}.`);
  out.push(`It shows ${DETAIL_EN[facts.detail]} fine detail.`);
  out.push(LIGHT_EN[facts.light]);
  out.push(facts.transparentPercent === 0 ? 'It has no transparent areas.' : `About ${facts.transparentPercent}% of it is transparent.`);
  return out;
}

export function captionEn(facts: ImageFacts): string {
  return captionSentencesEn(facts).join(' ');
}

const alt = (values: readonly string[]) => values.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
const invert = <K extends string>(table: Record<K, string>) => new Map(Object.entries(table).map(([k, v]) => [v as string, k as K]));

const S1 = new RegExp(`^A (${alt(Object.values(ORIENTATION_EN))}) image, (\\d+) by (\\d+) pixels, in ([A-Z0-9]+) format\\.\\s*`);
const COLOUR = `(${alt(COLOUR_NAMES)}) \\((\\d{1,3})%\\)`;
const S2_ONE = new RegExp(`^The dominant colour is ${COLOUR}\\.\\s*`);
const S2_MANY = new RegExp(`^The dominant colours are ((?:${COLOUR}, )*${COLOUR} and ${COLOUR})\\.\\s*`);
const S3 = new RegExp(`^Overall it is (${alt(Object.values(BRIGHTNESS_EN))}), (${alt(Object.values(COLOURFULNESS_EN))})\\.\\s*`);
const S4 = new RegExp(`^It shows (${alt(Object.values(DETAIL_EN))}) fine detail\\.\\s*`);
const S5 = new RegExp(`^(${alt(Object.values(LIGHT_EN))})\\s*`);
const S6 = /^(?:It has no transparent areas\.|About (\d{1,3})% of it is transparent\.)\s*/;

/**
 * The facts of a caption the stand-in wrote (with or without its marker), or undefined when `text` is
 * anything else. `captionEn(parseCaptionEn(t))` gives `t` back (without the marker).
 */
export function parseCaptionEn(text: string): ImageFacts | undefined {
  let rest = parseStandinMarker(text.trim()).body.trim();
  const take = (re: RegExp): RegExpExecArray | undefined => {
    const m = re.exec(rest);
    if (m === null) return undefined;
    rest = rest.slice(m[0].length);
    return m;
  };
  const m1 = take(S1);
  if (!m1) return undefined;
  const orientation = invert(ORIENTATION_EN).get(m1[1]!);
  const width = Number(m1[2]);
  const height = Number(m1[3]);
  const format = m1[4]!;

  let colours: ImageFacts['colours'] = [];
  const one = take(S2_ONE);
  if (one) colours = [{ name: one[1] as ColourName, percent: Number(one[2]) }];
  else {
    const many = take(S2_MANY);
    if (many) {
      colours = [...many[1]!.matchAll(new RegExp(COLOUR, 'g'))].map((c) => ({ name: c[1] as ColourName, percent: Number(c[2]) }));
    }
  }
  const m3 = take(S3);
  const m4 = m3 && take(S4);
  const m5 = m4 && take(S5);
  const m6 = m5 && take(S6);
  if (!m3 || !m4 || !m5 || !m6 || rest !== '' || orientation === undefined || !ORIENTATIONS.includes(orientation)) return undefined;
  const brightness = invert(BRIGHTNESS_EN).get(m3[1]!);
  const colourfulness = invert(COLOURFULNESS_EN).get(m3[2]!);
  const detail = invert(DETAIL_EN).get(m4[1]!);
  const light = invert(LIGHT_EN).get(m5[1]!);
  if (brightness === undefined || colourfulness === undefined || detail === undefined || light === undefined) return undefined;
  return {
    width,
    height,
    format,
    orientation,
    colours,
    brightness,
    colourfulness,
    detail,
    light,
    transparentPercent: m6[1] === undefined ? 0 : Number(m6[1]),
  };
}
