/**
 * Language-aware word segmentation for scripts written without spaces between words, through the
 * runtime's own ICU (`Intl.Segmenter`, word granularity; dictionary-based for Thai, Lao, Khmer, Myanmar,
 * Chinese and Japanese).
 *
 * Decisions:
 * - Only runs of characters of the no-space scripts are segmented ({@link NO_SPACE_SCRIPTS}); everything else
 *   (Latin, Cyrillic, Arabic, Hangul, Vietnamese...) is left byte-for-byte as it was, so that a segmented
 *   text run through the `13a` tokenizer is exactly sacrebleu's `13a` on any text that has no such run.
 *   Korean is written with spaces between eojeol and is not segmented.
 * - A segmented run is surrounded by spaces, so that script changes are token boundaries too
 *   ("iPhoneを買った" → "iPhone を 買っ た", "ปี2020" → "ปี 2020").
 * - Segments that are only whitespace are dropped; punctuation segments are kept as their own tokens.
 * - ICU's dictionaries change between ICU releases, so the ICU version is part of the segmentation's
 *   signature ({@link segmentationSignature}), and through it of every score's signature.
 */
import { segmenter } from '../../shared/segmenter';

/** Scripts that do not separate words with spaces, matched by Script_Extensions (covers ー, 々, 。 too). */
export const NO_SPACE_SCRIPTS = ['Thai', 'Lao', 'Khmer', 'Myanmar', 'Han', 'Hiragana', 'Katakana'] as const;

const RUN_BODY = NO_SPACE_SCRIPTS.map((s) => `\\p{scx=${s}}`).join('');
const NO_SPACE_RUN = new RegExp(`[${RUN_BODY}]+`, 'gu');
const HAS_NO_SPACE = new RegExp(`[${RUN_BODY}]`, 'u');

/** How a metric segments words. `false`/absent: no segmentation (sacrebleu's behaviour). */
export interface SegmentationOptions {
  /**
   * BCP 47 tag handed to `Intl.Segmenter` (e.g. `th`, `ja`). ICU picks its dictionaries by script, so this
   * rarely changes the result; it is recorded in the signature all the same. Default `und`.
   */
  locale?: string;
}

export type Segmentation = SegmentationOptions | false | undefined;

/** The ICU version of this runtime (part of the signature), e.g. `78.2`. */
export function icuVersion(): string {
  return process.versions.icu ?? 'unknown';
}

/** True when the text holds at least one character of a script that needs segmentation. */
export function needsSegmentation(text: string): boolean {
  return HAS_NO_SPACE.test(text);
}

/** Language codes (ISO 639-1, the primary subtag of a BCP 47 tag) whose script has no spaces between words. */
const NO_SPACE_LANGUAGES = new Set(['th', 'lo', 'km', 'my', 'zh', 'ja', 'bo', 'dz']);

/**
 * The segmentation a language needs by default: ICU word segmentation for languages written without
 * spaces, none for the others. The MELLA languages: only `th` is segmented (`ko` has spaces).
 */
export function defaultSegmentation(lang: string): Segmentation {
  const primary = lang.toLowerCase().split(/[-_]/)[0] ?? '';
  return NO_SPACE_LANGUAGES.has(primary) ? { locale: lang } : false;
}

/**
 * Inserts spaces between the words of every no-space-script run of `text` and around the run; the rest
 * of the text is returned unchanged. Without segmentation options the text is returned as is.
 */
export function segmentText(text: string, options: Segmentation): string {
  if (!options || !needsSegmentation(text)) return text;
  const words = segmenter(options.locale ?? 'und', 'word');
  return text.replace(NO_SPACE_RUN, (run) => {
    let out = ' ';
    for (const { segment } of words.segment(run)) {
      const t = segment.trim();
      if (t) out += t + ' ';
    }
    return out;
  });
}

/** The segmentation's part of a signature: `none`, or `icu<version>` and the locale when one was given. */
export function segmentationSignature(options: Segmentation): string {
  if (!options) return 'none';
  return options.locale ? `icu${icuVersion()}/${options.locale}` : `icu${icuVersion()}`;
}
