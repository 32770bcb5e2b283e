/**
 * `length`: bounds on words and graphemes, measured per script. Words and graphemes come from
 * Intl.Segmenter in the target language (ICU's dictionary splits Thai, which has no spaces between
 * words; a Thai consonant with its vowel and tone marks is one grapheme). A Hangul syllable block or a
 * Han character carries what two or three Latin letters do, so those scripts get a lower grapheme
 * minimum: the bounds of the script that holds most of the alt's letters apply (`scripts`), the
 * defaults otherwise.
 */
import { z } from 'zod';
import { keep, reject, type ItemOperator, type TextItem } from '../operator';
import { dominantScript, graphemeCount, isKnownScript, words } from './segment';

const bounds = {
  minWords: z.number().int().min(0),
  maxWords: z.number().int().positive(),
  minGraphemes: z.number().int().min(0),
  maxGraphemes: z.number().int().positive(),
};

const scriptBounds = z.object(bounds).partial().strict();
export type ScriptBounds = z.infer<typeof scriptBounds>;

const scriptCode = z.string().refine(isKnownScript, { message: 'a Unicode script (ISO 15924 code such as "Hang", or its name)' });

export const lengthConfigSchema = z
  .object({
    minWords: bounds.minWords.default(2),
    /** No upper word bound unless set; `maxGraphemes` bounds the length. */
    maxWords: bounds.maxWords.optional(),
    minGraphemes: bounds.minGraphemes.default(5),
    maxGraphemes: bounds.maxGraphemes.default(1000),
    /** Overrides for alts written mostly in a given script. */
    scripts: z
      .record(scriptCode, scriptBounds)
      .default({ Hang: { minGraphemes: 2 }, Hani: { minGraphemes: 2 }, Hira: { minGraphemes: 2 }, Kana: { minGraphemes: 2 }, Thai: { minGraphemes: 4 } }),
  })
  .strict();
export type LengthConfig = z.infer<typeof lengthConfigSchema>;

export interface TextLength {
  readonly words: number;
  readonly graphemes: number;
  /** The script whose bounds applied, or undefined for the defaults. */
  readonly script: string | undefined;
}

export function measureLength(text: string, lang: string, scripts: readonly string[]): TextLength {
  return { words: words(text, lang).length, graphemes: graphemeCount(text, lang), script: dominantScript(text, scripts) };
}

export const lengthOperator: ItemOperator<TextItem, LengthConfig> = {
  name: 'length',
  kind: 'text',
  scope: 'item',
  input: 'text',
  description: 'Word and grapheme counts (Intl.Segmenter, target language) within bounds chosen by the dominant script.',
  reasons: ['too_few_words', 'too_many_words', 'too_short', 'too_long'],
  configSchema: lengthConfigSchema,
  defaultSources: {
    minWords:
      'DataComp keeps English captions of more than 2 words (baselines/apply_filter.py); native alts are often two-word names of people, places and dishes, which D_know wants, so 2',
    minGraphemes: 'LAION-400M drops alt texts shorter than 5 characters (Schuhmann et al. 2021); DataComp requires more than 5',
    maxGraphemes: 'project choice: longer "alts" are paragraphs of page text pasted into the attribute',
    scripts:
      'project choice: a Hangul syllable or a Han/kana character holds 2-3 Latin letters of information (minimum 2); Thai graphemes bundle vowel and tone marks (minimum 4)',
  },
  apply(item, config) {
    const m = measureLength(item.text, item.lang, Object.keys(config.scripts));
    const o = m.script === undefined ? {} : (config.scripts[m.script] ?? {});
    const minWords = o.minWords ?? config.minWords;
    const maxWords = o.maxWords ?? config.maxWords;
    const minGraphemes = o.minGraphemes ?? config.minGraphemes;
    const maxGraphemes = o.maxGraphemes ?? config.maxGraphemes;
    const where = m.script === undefined ? 'default bounds' : `bounds for script ${m.script}`;
    if (m.graphemes < minGraphemes) return reject('too_short', m.graphemes, minGraphemes, `graphemes; ${where}`);
    if (m.graphemes > maxGraphemes) return reject('too_long', m.graphemes, maxGraphemes, `graphemes; ${where}`);
    if (m.words < minWords) return reject('too_few_words', m.words, minWords, `words (Intl.Segmenter, ${item.lang}); ${where}`);
    if (maxWords !== undefined && m.words > maxWords) return reject('too_many_words', m.words, maxWords, `words; ${where}`);
    return keep(undefined, { words: m.words, graphemes: m.graphemes, script: m.script ?? 'default' });
  },
};
