/**
 * `normalize`: the alt text as a training target. Decodes HTML character references left in it (an
 * attribute decoded once by the crawler can still hold "&amp;quot;" or "&#171;" from a double-escaping
 * CMS), removes control and invisible formatting characters, collapses whitespace and applies Unicode
 * NFC. Its value is the normalized text, which every later text operator sees. An alt with nothing left
 * is rejected (`empty_alt`).
 *
 * Kept on purpose: ZERO WIDTH JOINER and NON-JOINER (U+200D, U+200C), which change how Persian, Indic
 * and emoji sequences render, and variation selectors.
 */
import { z } from 'zod';
import { keep, reject, type ItemOperator, type TextItem } from '../operator';

/** Latin-1 entity names for U+00A0..U+00FF, in code point order (HTML 4 / HTML5 share them). */
const LATIN1_NAMES =
  'nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest ' +
  'Agrave Aacute Acirc Atilde Auml Aring AElig Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash Ugrave Uacute Ucirc Uuml Yacute THORN szlig ' +
  'agrave aacute acirc atilde auml aring aelig ccedil egrave eacute ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc uuml yacute thorn yuml';

/** Other named references seen in alt texts: markup, typography, and the letters of cs, hu, sr (Latin), vi. */
const OTHER_ENTITIES: Record<string, number> = {
  quot: 0x22, amp: 0x26, apos: 0x27, lt: 0x3c, gt: 0x3e,
  OElig: 0x152, oelig: 0x153, Scaron: 0x160, scaron: 0x161, Yuml: 0x178, fnof: 0x192, circ: 0x2c6, tilde: 0x2dc,
  ensp: 0x2002, emsp: 0x2003, thinsp: 0x2009, zwnj: 0x200c, zwj: 0x200d, lrm: 0x200e, rlm: 0x200f,
  ndash: 0x2013, mdash: 0x2014, lsquo: 0x2018, rsquo: 0x2019, sbquo: 0x201a, ldquo: 0x201c, rdquo: 0x201d, bdquo: 0x201e,
  dagger: 0x2020, Dagger: 0x2021, bull: 0x2022, hellip: 0x2026, permil: 0x2030, prime: 0x2032, Prime: 0x2033,
  lsaquo: 0x2039, rsaquo: 0x203a, oline: 0x203e, frasl: 0x2044, euro: 0x20ac, trade: 0x2122, minus: 0x2212,
  larr: 0x2190, uarr: 0x2191, rarr: 0x2192, darr: 0x2193, harr: 0x2194, nbhy: 0x2011, hyphen: 0x2010,
  Cacute: 0x106, cacute: 0x107, Ccaron: 0x10c, ccaron: 0x10d, Dcaron: 0x10e, dcaron: 0x10f, Dstrok: 0x110, dstrok: 0x111,
  Ecaron: 0x11a, ecaron: 0x11b, Ncaron: 0x147, ncaron: 0x148, Odblac: 0x150, odblac: 0x151, Rcaron: 0x158, rcaron: 0x159,
  Tcaron: 0x164, tcaron: 0x165, Uring: 0x16e, uring: 0x16f, Udblac: 0x170, udblac: 0x171, Zcaron: 0x17d, zcaron: 0x17e,
  Abreve: 0x102, abreve: 0x103, Imacr: 0x12a, imacr: 0x12b, Utilde: 0x168, utilde: 0x169, Itilde: 0x128, itilde: 0x129,
};

export const NAMED_ENTITIES: ReadonlyMap<string, string> = new Map<string, string>([
  ...LATIN1_NAMES.split(' ').map((name, i): [string, string] => [name, String.fromCodePoint(0xa0 + i)]),
  ...Object.entries(OTHER_ENTITIES).map(([name, cp]): [string, string] => [name, String.fromCodePoint(cp)]),
]);

/** HTML5: numeric references to 0x80-0x9F mean windows-1252 characters. */
const WINDOWS_1252: Record<number, number> = {
  0x80: 0x20ac, 0x82: 0x201a, 0x83: 0x192, 0x84: 0x201e, 0x85: 0x2026, 0x86: 0x2020, 0x87: 0x2021, 0x88: 0x2c6,
  0x89: 0x2030, 0x8a: 0x160, 0x8b: 0x2039, 0x8c: 0x152, 0x8e: 0x17d, 0x91: 0x2018, 0x92: 0x2019, 0x93: 0x201c,
  0x94: 0x201d, 0x95: 0x2022, 0x96: 0x2013, 0x97: 0x2014, 0x98: 0x2dc, 0x99: 0x2122, 0x9a: 0x161, 0x9b: 0x203a,
  0x9c: 0x153, 0x9e: 0x17e, 0x9f: 0x178,
};

function fromNumericReference(cp: number): string {
  if (cp === 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return '\uFFFD';
  return String.fromCodePoint(WINDOWS_1252[cp] ?? cp);
}

const REFERENCE = /&(?:#(\d{1,8})|#[xX]([0-9a-fA-F]{1,7})|([A-Za-z][A-Za-z0-9]{1,31}));/g;

/**
 * Decodes numeric and named character references (the named ones in `NAMED_ENTITIES`; an unknown name
 * is left as it is). Repeats up to `passes` times for double-escaped text ("&amp;quot;" -> '"').
 */
export function decodeHtmlEntities(text: string, passes = 2): string {
  let out = text;
  for (let i = 0; i < passes && out.includes('&'); i++) {
    const next = out.replace(REFERENCE, (match, dec: string | undefined, hex: string | undefined, name: string | undefined) => {
      if (dec !== undefined) return fromNumericReference(Number.parseInt(dec, 10));
      if (hex !== undefined) return fromNumericReference(Number.parseInt(hex, 16));
      return NAMED_ENTITIES.get(name!) ?? match;
    });
    if (next === out) break;
    out = next;
  }
  return out;
}

/** C0 and C1 controls (tab, line feed and carriage return become spaces below instead). */
const CONTROLS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/g;
/**
 * Invisible formatting: soft hyphen, Arabic letter mark, zero width space, word joiner, BOM, bidi
 * marks, embeddings, overrides and isolates, interlinear annotation and object replacement.
 */
const INVISIBLE = /[\u00AD\u061C\u180E\u200B\u200E\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\uFEFF\uFFF9-\uFFFC]/g;

export interface NormalizeTextOptions {
  /** Decode HTML character references first. */
  readonly decodeEntities: boolean;
  readonly unicodeForm: 'NFC' | 'NFKC';
}

/** The normalization the operator applies; idempotent. */
export function normalizeAltText(text: string, options: NormalizeTextOptions = { decodeEntities: true, unicodeForm: 'NFC' }): string {
  const decoded = options.decodeEntities ? decodeHtmlEntities(text) : text;
  return decoded.replace(CONTROLS, ' ').replace(INVISIBLE, '').normalize(options.unicodeForm).replace(/\s+/gu, ' ').trim();
}

export const normalizeTextConfigSchema = z
  .object({
    decodeEntities: z.boolean().default(true),
    /** NFC keeps the text as written; NFKC also folds compatibility forms (full-width, ligatures). */
    unicodeForm: z.enum(['NFC', 'NFKC']).default('NFC'),
  })
  .strict();
export type NormalizeTextConfig = z.infer<typeof normalizeTextConfigSchema>;

export const normalizeTextOperator: ItemOperator<TextItem, NormalizeTextConfig, string> = {
  name: 'normalize',
  kind: 'text',
  scope: 'item',
  input: 'text',
  description: 'Decodes HTML entities, removes control and invisible characters, collapses whitespace, applies NFC.',
  reasons: ['empty_alt'],
  configSchema: normalizeTextConfigSchema,
  defaultSources: {
    decodeEntities: 'the issue: alts arrive with entities left in them (the fixtures hold "&#171;", "&quot;", "&#xD504;")',
    unicodeForm: 'W3C Character Model (charmod-norm): NFC for text interchange; NFKC would rewrite what the author wrote',
  },
  apply(item, config) {
    const text = normalizeAltText(item.text, config);
    if (text.length === 0) return reject('empty_alt', 0, 1, 'characters left after normalization');
    return keep(text);
  },
};
