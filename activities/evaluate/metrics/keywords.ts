/**
 * Keyword accuracy for D_know (the culture objective).
 *
 * Definition (also in docs/metrics.md):
 * - The **keywords** of a reference are the distinct content words and names of its native alt text:
 *   the tokens of {@link wordTokens} (NFC, lowercase, letters/marks/digits of any script, ICU word
 *   segmentation for Thai and other no-space scripts), language-normalized ({@link normalizeKeyword}),
 *   without the language's stop words (`function-words.ts`: function words plus words like "photo"),
 *   without tokens made only of digits, without one-character tokens (except Han characters, which are
 *   often words on their own) and without file-name debris (`jpg`, `img`, ...). Names need no special
 *   handling: they are content tokens (lowercased; a multi-word name gives one keyword per word).
 * - A keyword is **found** when the prediction, tokenized and normalized the same way, contains it as a
 *   token; a keyword of a no-space script (Thai, CJK, ...) is found when it occurs anywhere in the
 *   prediction's normalized text with spaces removed, because ICU may cut the same word differently in
 *   another context.
 * - **Keyword accuracy** of a sample = found / keywords. The corpus figure is the mean over samples
 *   that have at least one keyword (macro); samples without keywords are counted as `skipped` and left
 *   out. The micro figure (all found / all keywords) is reported beside it.
 *
 * Language normalization: Arabic drops harakat and tatweel and unifies alef forms (alt text is written
 * with and without vowel marks); Korean strips one trailing particle (josa) when two or more syllables
 * remain ("서울에서" → "서울"). No stemming elsewhere: an inflected Czech, Hungarian, Russian or Serbian
 * form counts as a different word (a documented strictness, identical for every system compared).
 */
import { primaryLanguage, stopWords } from './function-words';
import { NO_SPACE_SCRIPTS, segmentationSignature } from './segment';
import { formatSignature } from './signature';
import { wordTokens } from './tokenize';

/** Tokens left out in every language: digits-only tokens are dropped separately; these are file-name debris. */
const UNIVERSAL_STOP = new Set(['jpg', 'jpeg', 'png', 'gif', 'webp', 'svg', 'img', 'dsc', 'px', 'http', 'https', 'www', 'com']);
const DIGITS_ONLY = /^\p{N}+$/u;
const SINGLE_CHAR_WORD = /^\p{Script=Han}$/u;
const NO_SPACE_CHAR = new RegExp(`[${NO_SPACE_SCRIPTS.map((s) => `\\p{scx=${s}}`).join('')}]`, 'u');

const ARABIC_MARKS = /[\u064b-\u065f\u0670\u0640]/g;
const ARABIC_ALEF = /[\u0622\u0623\u0625\u0671]/g;
/** Korean particles, longest first so that "에서는" goes before "에서" and "는". */
const KOREAN_JOSA = [
  '에서는', '으로는', '에게는', '에서도', '이라는', '으로', '에서', '에게', '께서', '까지', '부터', '보다', '처럼', '이나', '에는', '와의', '과의', '라는', '이다',
  '은', '는', '이', '가', '을', '를', '의', '에', '로', '와', '과', '도', '만', '나',
];

/** Language-specific normalization of one (already NFC-lowercased) token. */
export function normalizeKeyword(token: string, lang: string): string {
  switch (primaryLanguage(lang)) {
    case 'ar':
      return token.replace(ARABIC_MARKS, '').replace(ARABIC_ALEF, '\u0627');
    case 'ko': {
      const chars = Array.from(token);
      for (const j of KOREAN_JOSA) {
        if (token.endsWith(j) && chars.length - j.length >= 2) return token.slice(0, token.length - j.length);
      }
      return token;
    }
    default:
      return token;
  }
}

function normalizedTokens(text: string, lang: string): string[] {
  return wordTokens(text, { segment: { locale: lang } }).map((t) => normalizeKeyword(t, lang));
}

export interface KeywordOptions {
  /** Replaces the language's stop words. */
  stopWords?: ReadonlySet<string>;
}

/** The keywords of a native alt text (distinct, in order of first occurrence). */
export function extractKeywords(altText: string, lang: string, options: KeywordOptions = {}): string[] {
  const stop = options.stopWords ?? stopWords(lang);
  const out = new Set<string>();
  for (const raw of wordTokens(altText, { segment: { locale: lang } })) {
    if (stop.has(raw) || UNIVERSAL_STOP.has(raw) || DIGITS_ONLY.test(raw)) continue;
    const t = normalizeKeyword(raw, lang);
    if (stop.has(t) || t.length === 0) continue;
    if (Array.from(t).length < 2 && !SINGLE_CHAR_WORD.test(t)) continue;
    out.add(t);
  }
  return [...out];
}

export interface KeywordMatch {
  keywords: string[];
  found: string[];
  missing: string[];
  /** found / keywords; undefined when there is no keyword. */
  accuracy: number | undefined;
}

/** Which of the keywords the prediction contains. */
export function matchKeywords(keywords: readonly string[], prediction: string, lang: string): KeywordMatch {
  const tokens = normalizedTokens(prediction, lang);
  const tokenSet = new Set(tokens);
  const joined = tokens.join('');
  const found: string[] = [];
  const missing: string[] = [];
  for (const k of keywords) {
    const hit = tokenSet.has(k) || (NO_SPACE_CHAR.test(k) && joined.includes(k));
    (hit ? found : missing).push(k);
  }
  return { keywords: [...keywords], found, missing, accuracy: keywords.length ? found.length / keywords.length : undefined };
}

export interface KeywordSample {
  prediction: string;
  /** The native alt text (and caption context, if it is part of the reference). */
  reference: string;
  /** Language of the reference (BCP 47). */
  lang: string;
}

export interface KeywordAccuracy {
  /** Mean of per-sample accuracies over samples with keywords (0–1). */
  accuracy: number;
  /** Σ found / Σ keywords (0–1). */
  micro: number;
  /** Samples with at least one keyword. */
  evaluated: number;
  /** Samples without keywords (left out). */
  skipped: number;
  samples: KeywordMatch[];
  signature: string;
}

/** Keyword accuracy over samples. */
export function keywordAccuracy(samples: readonly KeywordSample[], options: KeywordOptions = {}): KeywordAccuracy {
  const results = samples.map((s) => matchKeywords(extractKeywords(s.reference, s.lang, options), s.prediction, s.lang));
  let sum = 0;
  let evaluated = 0;
  let found = 0;
  let total = 0;
  for (const r of results) {
    if (r.accuracy === undefined) continue;
    sum += r.accuracy;
    evaluated++;
    found += r.found.length;
    total += r.keywords.length;
  }
  return {
    accuracy: evaluated ? sum / evaluated : 0,
    micro: total ? found / total : 0,
    evaluated,
    skipped: samples.length - evaluated,
    samples: results,
    signature: keywordSignature(options),
  };
}

/** `metric:keyword-acc|tok:words+lc+seg:icu<version>/<lang>|norm:ar+ko|stop:builtin|version:…` */
export function keywordSignature(options: KeywordOptions = {}): string {
  return formatSignature([
    ['metric', 'keyword-acc'],
    ['tok', `words+lc+seg:${segmentationSignature({ locale: '<lang>' })}`],
    ['norm', 'ar+ko'],
    ['stop', options.stopWords ? 'custom' : 'builtin'],
  ]);
}
