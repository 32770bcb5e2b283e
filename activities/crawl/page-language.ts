/**
 * Language control of a crawled page: a Thai crawl must not drift into English pages. A page is
 * harvested when its declared language (html lang, xml:lang, Content-Language) is the target or absent,
 * and language identification of its visible text (eld with script checks, the filter stage's
 * `language-id` operator, so Serbian accepts hr/bs and both scripts) does not contradict it. Pages with
 * too little text to judge are decided by their declaration alone.
 */
import { load } from 'cheerio';
import { languageIdConfigSchema, languageIdOperator } from '../filter/text/language-id';
import { baseLanguage, letterCount } from '../filter/text/segment';

const languageId = languageIdConfigSchema.parse({});
/** Languages that count as the target when declared (the same equivalence as language-id's). */
const DECLARED_EQUIVALENTS: Record<string, string[]> = { sr: ['hr', 'bs', 'sh', 'cnr'], bs: ['hr', 'sr', 'sh'], cnr: ['sr', 'hr', 'bs', 'sh'] };

export interface PageLanguage {
  harvest: boolean;
  declared: string | null;
  detected: string | null;
  reason?: 'declared_other_language' | 'detected_other_language';
  detail?: string;
}

/** Visible text of a page (scripts, styles and templates removed), whitespace collapsed, capped. */
export function visibleText(html: string, max = 5000): string {
  const $ = load(html);
  $('script, style, noscript, template, svg').remove();
  return $('body').text().replace(/\s+/g, ' ').trim().slice(0, max);
}

export async function judgePageLanguage(html: string, declared: string | null, lang: string, minTextChars: number): Promise<PageLanguage> {
  const target = baseLanguage(lang);
  const declaredBase = declared ? baseLanguage(declared.toLowerCase()) : null;
  if (declaredBase && declaredBase !== target && !(DECLARED_EQUIVALENTS[target] ?? []).includes(declaredBase)) {
    return { harvest: false, declared, detected: null, reason: 'declared_other_language', detail: `<html lang="${declared}">, target ${lang}` };
  }
  const text = visibleText(html);
  if (letterCount(text) < minTextChars) return { harvest: true, declared, detected: null };
  const verdict = await languageIdOperator.apply({ text, raw: text, lang }, languageId, {});
  if (!verdict.keep) {
    return { harvest: false, declared, detected: String(verdict.measured), reason: 'detected_other_language', detail: verdict.detail ?? verdict.reason };
  }
  return { harvest: true, declared, detected: String(verdict.stats?.detected ?? lang) };
}
