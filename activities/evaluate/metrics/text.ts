/**
 * String primitives with Python's semantics, so that our metrics split, strip and index text exactly the
 * way the reference implementations (sacrebleu, rouge-score, pycocoevalcap) do.
 *
 * - Python's `str.split()` / `str.rstrip()` use `str.isspace()`, which differs from JavaScript's `\s`:
 *   it includes U+001C..U+001F and U+0085 and excludes U+FEFF. {@link PY_WHITESPACE_CLASS} is that set.
 * - Python indexes strings by code point, JavaScript by UTF-16 code unit. Character n-grams (chrF) and
 *   "one-character word" tests must count code points, or an emoji or a CJK Extension-B character would
 *   be cut in half.
 */

/** The characters for which Python's `str.isspace()` is true, as a regex character-class body. */
export const PY_WHITESPACE_CLASS = '\\t\\n\\v\\f\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

const PY_WS_RUN = new RegExp(`[${PY_WHITESPACE_CLASS}]+`);
const PY_WS_RUN_G = new RegExp(`[${PY_WHITESPACE_CLASS}]+`, 'g');
const PY_WS_TRAILING = new RegExp(`[${PY_WHITESPACE_CLASS}]+$`);
const SURROGATE = /[\ud800-\udfff]/;

/** Python's `s.split()` (no argument): split on runs of whitespace, no empty fields. */
export function pySplit(s: string): string[] {
  const parts = s.split(PY_WS_RUN);
  // Only the first and the last field can be empty (leading / trailing whitespace).
  if (parts.length > 0 && parts[0] === '') parts.shift();
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}

/** Python's `s.rstrip()` (no argument). */
export function pyRstrip(s: string): string {
  return s.replace(PY_WS_TRAILING, '');
}

/** Python's `''.join(s.split())`: the text with every whitespace character removed. */
export function removeWhitespace(s: string): string {
  return s.replace(PY_WS_RUN_G, '');
}

/** True when the string holds a surrogate pair (a code point above U+FFFF), i.e. UTF-16 ≠ code points. */
export function hasAstral(s: string): boolean {
  return SURROGATE.test(s);
}

/** Python's `len(s)`: the number of code points. */
export function codePointLength(s: string): number {
  if (!hasAstral(s)) return s.length;
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** The string split into code points (Python's `list(s)`). */
export function codePoints(s: string): string[] {
  return hasAstral(s) ? Array.from(s) : s.split('');
}
