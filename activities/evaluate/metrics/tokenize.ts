/**
 * Tokenizers.
 *
 * 1. sacrebleu's tokenizers for BLEU, byte-for-byte (`none`, `13a`, `intl`, `char`; sacrebleu 2.x,
 *    `sacrebleu/tokenizers/tokenizer_{none,13a,re,intl,char}.py`): each maps a line to a string whose
 *    whitespace-separated fields are the tokens. Whitespace is Python's (see `text.ts`).
 * 2. {@link wordTokens}: the multilingual word tokenizer of ROUGE-L, METEOR, CIDEr and keyword accuracy.
 *    It keeps the letters, marks and digits of every script (rouge-score's default tokenizer keeps only
 *    `[a-z0-9]`, which turns Arabic, Cyrillic, Hangul and Thai text into nothing) and segments the
 *    no-space scripts with ICU (`segment.ts`).
 */
import { segmentationSignature, segmentText, type Segmentation } from './segment';
import { codePoints, PY_WHITESPACE_CLASS, pySplit } from './text';

export type TokenizerName = 'none' | '13a' | 'intl' | 'char';
export const TOKENIZER_NAMES: readonly TokenizerName[] = ['none', '13a', 'intl', 'char'];

/** A line → tokenized line (tokens joined by single spaces) function, with its signature. */
export interface Tokenizer {
  (line: string): string;
  /** sacrebleu's name for it (`13a`, `intl`, ...). */
  readonly tokenizerName: TokenizerName;
  /** Its segmentation's signature part: `none` or `icu<version>[/locale]`. */
  readonly segmentation: string;
}

// mteval-v13a's language-dependent part (sacrebleu's TokenizerRegexp). Non-`u` regexes on purpose: they
// only ever put spaces around ASCII characters, so a surrogate pair is never split, and they are faster.
const RE_13A_SYMBOLS = /([{-~[-` -&(-+:-@/])/g;
const RE_13A_PERIOD_COMMA_AFTER_NONDIGIT = /([^0-9])([.,])/g;
const RE_13A_PERIOD_COMMA_BEFORE_NONDIGIT = /([.,])([^0-9])/g;
const RE_13A_DASH_AFTER_DIGIT = /([0-9])(-)/g;

/** sacrebleu's `13a` (mteval-v13a.pl, the WMT standard). */
export function tokenize13a(line: string): string {
  // Language-independent part.
  let s = line.replaceAll('<skipped>', '').replaceAll('-\n', '').replaceAll('\n', ' ');
  if (s.includes('&')) {
    s = s.replaceAll('&quot;', '"').replaceAll('&amp;', '&').replaceAll('&lt;', '<').replaceAll('&gt;', '>');
  }
  s = ` ${s} `;
  s = s
    .replace(RE_13A_SYMBOLS, ' $1 ')
    .replace(RE_13A_PERIOD_COMMA_AFTER_NONDIGIT, '$1 $2 ')
    .replace(RE_13A_PERIOD_COMMA_BEFORE_NONDIGIT, ' $1 $2')
    .replace(RE_13A_DASH_AFTER_DIGIT, '$1 $2 ');
  return pySplit(s).join(' ');
}

const RE_INTL_PUNCT_AFTER_NONDIGIT = /(\P{N})(\p{P})/gu;
const RE_INTL_PUNCT_BEFORE_NONDIGIT = /(\p{P})(\P{N})/gu;
const RE_INTL_SYMBOL = /(\p{S})/gu;

/** sacrebleu's `intl` (mteval-v14.pl's international tokenization: Unicode punctuation and symbols). */
export function tokenizeIntl(line: string): string {
  const s = line
    .replace(RE_INTL_PUNCT_AFTER_NONDIGIT, '$1 $2 ')
    .replace(RE_INTL_PUNCT_BEFORE_NONDIGIT, ' $1 $2')
    .replace(RE_INTL_SYMBOL, ' $1 ');
  return pySplit(s).join(' ');
}

/** sacrebleu's `char`: every code point is a token (whitespace disappears when the line is split). */
export function tokenizeChar(line: string): string {
  return codePoints(line).join(' ');
}

/** sacrebleu's `none`: the line as it is. */
export function tokenizeNone(line: string): string {
  return line;
}

const BASE: Record<TokenizerName, (line: string) => string> = {
  none: tokenizeNone,
  '13a': tokenize13a,
  intl: tokenizeIntl,
  char: tokenizeChar,
};

/**
 * A sacrebleu tokenizer, optionally preceded by ICU word segmentation of the no-space scripts (which is
 * what makes `13a`/`intl` BLEU meaningful for Thai: without it a whole Thai clause is one token).
 */
export function makeTokenizer(name: TokenizerName, segmentation?: Segmentation): Tokenizer {
  const base = BASE[name];
  if (!base) throw new Error(`unknown tokenizer '${String(name)}' (known: ${TOKENIZER_NAMES.join(', ')})`);
  const fn = segmentation ? (line: string) => base(segmentText(line, segmentation)) : (line: string) => base(line);
  return Object.assign(fn, { tokenizerName: name, segmentation: segmentationSignature(segmentation) });
}

// ---------------------------------------------------------------------------------------------------
// Multilingual word tokens

/** Letters, combining marks and digits of every script, plus ZWNJ/ZWJ (which sit inside Persian/Indic words). */
const WORD_CHARS = '\\p{L}\\p{M}\\p{N}\\u200c\\u200d';
const RE_NON_WORD_RUN = new RegExp(`[^${WORD_CHARS}]+`, 'gu');
const RE_WORD_OR_SYMBOL = new RegExp(`[${WORD_CHARS}]+|[^${WORD_CHARS}\\s${PY_WHITESPACE_CLASS}]`, 'gu');

export interface WordTokenOptions {
  /** Lowercase with the Unicode default case mapping (locale-independent). Default true. */
  lowercase?: boolean;
  /** ICU segmentation of no-space scripts. Default: segment (`{}`), since it never hurts spaced scripts. */
  segment?: Segmentation;
  /**
   * Keep punctuation and symbols, each character its own token (METEOR's `-norm` behaviour).
   * Default false: only runs of letters/marks/digits are tokens (ROUGE, CIDEr, keywords).
   */
  keepPunctuation?: boolean;
}

/**
 * Words of any script: NFC-normalized (so precomposed and decomposed Vietnamese agree), lowercased,
 * no-space scripts segmented by ICU, then cut at every character that is not a letter, mark or digit.
 */
export function wordTokens(text: string, options: WordTokenOptions = {}): string[] {
  let s = text.normalize('NFC');
  if (options.lowercase ?? true) s = s.toLowerCase();
  s = segmentText(s, options.segment === undefined ? {} : options.segment);
  if (options.keepPunctuation) return s.match(RE_WORD_OR_SYMBOL) ?? [];
  return pySplit(s.replace(RE_NON_WORD_RUN, ' '));
}

/** The signature of {@link wordTokens} with these options, e.g. `words+lc+icu78.2`. */
export function wordTokensSignature(options: WordTokenOptions = {}): string {
  const parts = ['words'];
  if (options.keepPunctuation) parts.push('punct');
  if (options.lowercase ?? true) parts.push('lc');
  parts.push(`seg:${segmentationSignature(options.segment === undefined ? {} : options.segment)}`);
  return parts.join('+');
}
