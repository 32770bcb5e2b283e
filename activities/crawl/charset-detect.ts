/**
 * Statistical charset detection for HTML bodies that declare no charset (no BOM, no HTTP `charset`,
 * no `<meta>`) and are not valid UTF-8: a Russian page in windows-1251, a Thai one in TIS-620, a
 * Korean one in EUC-KR, as older sites still serve them. Browsers guess such pages from their bytes
 * (Chromium does; tests/crawl-charset.test.ts checks it); the WARC path has no browser and guesses here.
 *
 * The detector is `jschardet` 4 (a TypeScript port of Python's chardet 7: byte-pair models per
 * encoding and language, 0BSD, no native code). Each candidate comes with the language its model
 * belongs to, and the crawl knows which language it is collecting. So:
 *
 *  1. the most confident candidate whose language is the crawl's target (Serbian also accepts the
 *     Croatian, Bosnian and Macedonian models, whose letters it shares) wins, at any confidence: a
 *     short Vietnamese page in windows-1258 scores low, but no other encoding reads as Vietnamese;
 *  2. otherwise nothing is decided here: the caller uses its configured fallback, then the best guess
 *     of any language (`bestGuess`), when it reaches `GUESS_MIN_CONFIDENCE`.
 *
 * Encoding names map to iconv-lite decoders through `resolveCharset` (WHATWG labels: `tis-620` is
 * windows-874, `euc-kr` is cp949); a candidate iconv-lite cannot decode is passed over.
 */
import { detectAll } from 'jschardet';
import { baseLanguage } from '../filter/text/segment';

/** Below this, a guess that is not in the target language is not trusted (jschardet's own default threshold). */
export const GUESS_MIN_CONFIDENCE = 0.2;

/** Models of other languages that read a target language's text correctly (same letters, same encodings). */
const SHARED_MODELS: Record<string, readonly string[]> = {
  sr: ['hr', 'bs', 'mk', 'sh'],
  hr: ['sr', 'bs', 'sh'],
  bs: ['sr', 'hr', 'sh'],
  cnr: ['sr', 'hr', 'bs', 'sh'],
  uk: ['ru'],
  be: ['ru'],
};

export interface CharsetGuess {
  /** The iconv-lite decoder name. */
  charset: string;
  /** jschardet's name for it (`Windows-1251`, `TIS-620`, `CP949`...). */
  detectedAs: string;
  confidence: number;
  /** The language of the model that matched, when jschardet gives one. */
  language: string | null;
}

export interface CharsetDetection {
  /** The target-language candidate (step 1 above), when there is one. */
  forTarget: CharsetGuess | null;
  /** The most confident decodable candidate of any language, at or above GUESS_MIN_CONFIDENCE. */
  bestGuess: CharsetGuess | null;
}

/** Looks at up to the first 64 KiB (the head and the start of the body hold plenty of text). */
const SAMPLE_BYTES = 64 * 1024;

export function detectCharset(bytes: Uint8Array, targetLanguage: string | undefined, resolve: (label: string) => string | null): CharsetDetection {
  const sample = bytes.subarray(0, SAMPLE_BYTES);
  const target = targetLanguage ? baseLanguage(targetLanguage.toLowerCase()) : undefined;
  const accepted = target ? new Set([target, ...(SHARED_MODELS[target] ?? [])]) : new Set<string>();
  let forTarget: CharsetGuess | null = null;
  let bestGuess: CharsetGuess | null = null;
  for (const r of detectAll(sample, { minimumThreshold: 0 })) {
    if (!r.encoding) continue;
    const charset = resolve(r.encoding);
    // UTF-8 was ruled out by the caller (the bytes are not valid UTF-8); ASCII would mean the same.
    if (!charset || charset === 'utf-8') continue;
    const guess: CharsetGuess = { charset, detectedAs: r.encoding, confidence: r.confidence, language: r.language };
    const language = r.language ? baseLanguage(r.language.toLowerCase()) : null;
    if (forTarget === null && language !== null && accepted.has(language)) forTarget = guess;
    if (bestGuess === null && r.confidence >= GUESS_MIN_CONFIDENCE) bestGuess = guess;
    if (bestGuess !== null && (forTarget !== null || target === undefined)) break;
  }
  return { forTarget, bestGuess };
}
