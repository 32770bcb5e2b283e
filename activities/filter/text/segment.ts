/**
 * Script-aware text measurement shared by the text operators: words and graphemes through
 * Intl.Segmenter (ICU's dictionaries split Thai, Lao, Khmer, Chinese and Japanese, which have no spaces
 * between words), letters per Unicode script, and the comparison key used to match alts against each
 * other, page titles and site names.
 */
import { segmenter } from '../../shared/segmenter';

/** The word-like segments of `text` (letters or digits; punctuation and spaces dropped). */
export function words(text: string, lang: string): string[] {
  const out: string[] = [];
  for (const seg of segmenter(lang, 'word').segment(text)) if (seg.isWordLike === true) out.push(seg.segment);
  return out;
}

/** Whether `text` has at most `max` word-like segments; stops segmenting at the first one past `max`. */
export function hasAtMostWords(text: string, lang: string, max: number): boolean {
  let n = 0;
  for (const seg of segmenter(lang, 'word').segment(text)) if (seg.isWordLike === true && ++n > max) return false;
  return true;
}

/** User-perceived characters (a Thai consonant with its vowel and tone marks is one). */
export function graphemeCount(text: string, lang: string): number {
  let n = 0;
  for (const _ of segmenter(lang, 'grapheme').segment(text)) n++;
  return n;
}

const scriptPatterns = new Map<string, RegExp>();

/**
 * A global regex matching one letter of a Unicode script, by ISO 15924 code or Unicode name
 * ("Latn", "Cyrillic", "Hang", "Thai").
 * @throws SyntaxError when the engine does not know the script.
 */
export function scriptRegex(script: string): RegExp {
  let re = scriptPatterns.get(script);
  if (re === undefined) {
    if (!/^[A-Za-z_]{3,40}$/.test(script)) throw new SyntaxError(`not a script code: "${script}"`);
    re = new RegExp(`(?=\\p{L})\\p{Script=${script}}`, 'gu');
    scriptPatterns.set(script, re);
  }
  re.lastIndex = 0;
  return re;
}

/** Whether the JavaScript engine knows `script` as a Unicode script (for config validation). */
export function isKnownScript(script: string): boolean {
  try {
    scriptRegex(script);
    return true;
  } catch {
    return false;
  }
}

const LETTER = /\p{L}/gu;

export function letterCount(text: string): number {
  return text.match(LETTER)?.length ?? 0;
}

/** Letters of `text` that belong to any of `scripts`. */
export function lettersInScripts(text: string, scripts: readonly string[]): number {
  let n = 0;
  for (const s of scripts) n += text.match(scriptRegex(s))?.length ?? 0;
  return n;
}

/**
 * The script among `candidates` with the most letters in `text`, provided it holds more than half of
 * all letters; undefined otherwise (no letters, or no candidate dominates).
 */
export function dominantScript(text: string, candidates: readonly string[]): string | undefined {
  const total = letterCount(text);
  if (total === 0) return undefined;
  let best: string | undefined;
  let bestCount = 0;
  for (const s of candidates) {
    const n = lettersInScripts(text, [s]);
    if (n > bestCount) {
      best = s;
      bestCount = n;
    }
  }
  return bestCount * 2 > total ? best : undefined;
}

/** Composite ISO 15924 codes (as `Intl.Locale#maximize` reports them) spelled as Unicode scripts. */
const COMPOSITE_SCRIPTS: Record<string, readonly string[]> = {
  Kore: ['Hang', 'Hani'],
  Jpan: ['Hani', 'Hira', 'Kana'],
  Hans: ['Hani'],
  Hant: ['Hani'],
  Hanb: ['Hani', 'Bopo'],
};

// Per tag, as the language-id check asks for every text it judges (a tag is a handful of characters).
const likelyScriptsByTag = new Map<string, readonly string[]>();
const explicitScriptByTag = new Map<string, string | undefined>();

/** Unicode scripts a language is written in by default, from CLDR likely subtags ("th" -> Thai). */
export function likelyScripts(lang: string): readonly string[] {
  let out = likelyScriptsByTag.get(lang);
  if (out === undefined) {
    try {
      const script = new Intl.Locale(lang).maximize().script;
      out = script === undefined ? [] : (COMPOSITE_SCRIPTS[script] ?? [script]);
    } catch {
      out = [];
    }
    if (likelyScriptsByTag.size < 10_000) likelyScriptsByTag.set(lang, out);
  }
  return out;
}

/** The language subtag of a BCP-47 tag, lower-cased: "sr-Latn" -> "sr". */
export function baseLanguage(lang: string): string {
  return lang.split(/[-_]/)[0]!.toLowerCase();
}

/** The explicit script subtag of a tag, if any: "sr-Latn" -> "Latn", "sr" -> undefined. */
export function explicitScript(lang: string): string | undefined {
  if (explicitScriptByTag.has(lang)) return explicitScriptByTag.get(lang);
  let script: string | undefined;
  try {
    script = new Intl.Locale(lang).script;
  } catch {
    script = undefined;
  }
  if (explicitScriptByTag.size < 10_000) explicitScriptByTag.set(lang, script);
  return script;
}

/**
 * Comparison key: NFKC, lower-cased, punctuation and symbols turned into spaces, whitespace collapsed.
 * "Aktuálně.cz" and "aktuálně cz", or "Photo!" and "photo", compare equal.
 */
export function comparisonKey(text: string): string {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\p{P}\p{S}\s]+/gu, ' ')
    .trim();
}
