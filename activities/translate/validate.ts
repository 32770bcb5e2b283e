/**
 * Checks of a translation: in the target language and script (the filter stage's language-id operator:
 * eld plus script checks, Serbian's hr/bs equivalence), not a copy of the source, a plausible length
 * ratio, and no English left untranslated.
 */
import { languageIdConfigSchema, languageIdOperator } from '../filter/text/language-id';
import { comparisonKey, graphemeCount, likelyScripts, letterCount, lettersInScripts } from '../filter/text/segment';
import type { TranslateConfig } from '../llm/config';
import type { Validation } from '../llm/stage';

const languageId = languageIdConfigSchema.parse({});

/** English function words: their share among a Latin-script translation's words betrays English left in it. */
const ENGLISH_FUNCTION_WORDS = new Set(
  'the a an and or of with in on at to from by for is are was were be been this that these those it its there which who while has have'.split(' '),
);

export async function validateTranslation(source: string, text: string, lang: string, c: TranslateConfig): Promise<Validation> {
  const fail = (reason: string, detail: string): Validation => ({ ok: false, reason, detail, text });
  if (comparisonKey(text) === comparisonKey(source)) return fail('copy_of_source', 'the answer repeats the source text');
  const ratio = graphemeCount(text, lang) / Math.max(1, graphemeCount(source, 'en'));
  if (ratio < c.minLengthRatio || ratio > c.maxLengthRatio) {
    return fail('length_ratio', `${ratio.toFixed(2)} graphemes per source grapheme, outside ${c.minLengthRatio}-${c.maxLengthRatio}`);
  }
  const id = await languageIdOperator.apply({ text, raw: text, lang }, languageId, {});
  if (!id.keep) return fail(id.reason, id.detail ?? `measured ${id.measured}, expected ${id.threshold}`);
  const scripts = likelyScripts(lang);
  if (!scripts.includes('Latn')) {
    // Upper-case tokens (JPEG, UNESCO) and numbers may stay; other Latin letters are English left over.
    const rest = text.replace(/\b[A-Z0-9]{2,}\b/g, '');
    const letters = letterCount(rest);
    const latin = lettersInScripts(rest, ['Latn']);
    const share = letters ? latin / letters : 0;
    if (share > c.maxLatinShare) return fail('untranslated_english', `${(share * 100).toFixed(0)}% Latin letters > ${(c.maxLatinShare * 100).toFixed(0)}%`);
  } else {
    const tokens = text.toLowerCase().match(/\p{L}+/gu) ?? [];
    const english = tokens.filter((t) => ENGLISH_FUNCTION_WORDS.has(t)).length;
    const share = tokens.length ? english / tokens.length : 0;
    if (share > c.maxEnglishShare) return fail('untranslated_english', `${(share * 100).toFixed(0)}% English function words > ${(c.maxEnglishShare * 100).toFixed(0)}%`);
  }
  return { ok: true, text };
}
