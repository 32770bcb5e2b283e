/**
 * `language-id`: the alt is written in the run's target language, in that language's script.
 *
 * Checks, cheapest first:
 *  1. script: at least `minScriptShare` of the letters belong to the language's scripts (an explicit
 *     script subtag wins: "sr-Latn" means Latin only; otherwise `scripts[lang]`, otherwise CLDR's likely
 *     script: th -> Thai, ko -> Hangul + Han, ru -> Cyrillic);
 *  2. foreign letters: none of the letters that only neighbouring languages use (`foreignLetters`),
 *     e.g. Ukrainian і ї є ґ in a Russian alt, or Russian ы э ъ щ in a Serbian one; character n-gram
 *     models confuse the Cyrillic languages on short text (ru/uk/bg/sr score within 0.01 of each other on
 *     "Гульмира Байзакова"), the letters do not lie;
 *  3. eld (Nito-ELD, a character n-gram detector that ships its model inside the npm package; nothing is
 *     downloaded): the target (or a language counted as the target, `accept`) must be the best guess, or
 *     within `tieMargin` of it, and score at least `minScore`. eld's scores are its own 0-1 scale
 *     (n-gram score / (score + 25)), not probabilities.
 *
 * Serbian, Croatian and Bosnian (and Montenegrin) are one pluricentric language with four standards.
 * Serbian is written in Cyrillic and in Latin, and the Latin text of a Serbian page is often identical to
 * what a Croatian or Bosnian page would print; eld knows `sr` only as Cyrillic (its Latin Serbian
 * training text is labelled `hr`), and no character-level detector can separate the standards reliably on
 * an alt of a few words (the markers, ijekavian "mlijeko" vs ekavian "mleko", "kruh" vs "hleb", are
 * shared by Bosnian and by Serbian from Bosnia and Montenegro). Decision: for a Serbian target, both
 * scripts are accepted and eld's `hr` and `bs` count as `sr`; the detected label is kept in the
 * rejection's detail (and can be stored with kept records by the wiring) so that analysts can split the
 * data later; a run that wants one script sets "sr-Cyrl" or "sr-Latn", and `accept: { sr: [] }` makes the
 * check strict. Symmetrically, `bs` and the others accept the rest of the group.
 */
import { eld } from 'eld';
import { z } from 'zod';
import { keep, reject, round, type ItemOperator, type OperatorResult, type TextItem } from '../operator';
import { baseLanguage, explicitScript, isKnownScript, letterCount, lettersInScripts, hasAtMostWords, likelyScripts } from './segment';

export const ELD_MODELS = ['large', 'medium', 'small', 'extrasmall'] as const;
export type EldModel = (typeof ELD_MODELS)[number];

type EldInstance = ReturnType<typeof eld.newInstance>;
/** The dynamic entry's instances, which load their n-gram database on demand. */
type EldLoader = Extract<typeof eld, { load: unknown }>;

function hasLoader(instance: typeof eld): instance is EldLoader {
  return 'load' in instance && typeof instance.load === 'function';
}

const detectors = new Map<string, Promise<EldInstance>>();

/** A loaded eld detector (one per model size and cleanup setting per process, loaded once, ~0.5-1 s). */
export function eldDetector(model: EldModel, textCleanup: boolean): Promise<EldInstance> {
  const key = `${model}:${textCleanup}`;
  let detector = detectors.get(key);
  if (detector === undefined) {
    detector = (async () => {
      const instance = eld.newInstance();
      if (!hasLoader(instance)) throw new Error('eld: the dynamic entry point is expected (import from "eld")');
      await instance.load(model);
      instance.enableTextCleanup(textCleanup);
      return instance;
    })();
    detector.catch(() => detectors.delete(key));
    detectors.set(key, detector);
  }
  return detector;
}

/**
 * Loads the detector that the default language-ID settings use (those of the caption, translate and fuse
 * validations and of the crawl's page language) ahead of the first call: the large model takes 1-3 s of
 * one core to load, and loading it on the first answer stalls every request in flight behind it.
 */
export function preloadLanguageId(): Promise<unknown> {
  const d = languageIdConfigSchema.parse({});
  return eldDetector(d.model, d.textCleanup);
}

/** Languages eld detects (ISO 639-1), from the loaded model. */
export async function eldLanguages(model: EldModel = 'large'): Promise<ReadonlySet<string>> {
  const d = await eldDetector(model, true);
  return new Set(Object.values(d.info().Languages));
}

const langKey = z.string().regex(/^[a-z]{2,3}$/, 'a base language code such as "sr"');
const scriptCode = z.string().refine(isKnownScript, { message: 'a Unicode script (ISO 15924 code such as "Cyrl")' });

const SC_FOREIGN_LATIN = 'řěůĺľŕôäőűłąęśźżń';
const SC_FOREIGN_CYRILLIC = 'йщъыьэюяёіїєґўѓќѕ';

export const languageIdConfigSchema = z
  .object({
    model: z.enum(ELD_MODELS).default('large'),
    /** eld's text cleanup (drops URLs, e-mail addresses, numbers and alphanumeric codes before detecting). */
    textCleanup: z.boolean().default(true),
    /** Lowest eld score for the target (or an accepted equivalent). */
    minScore: z.number().min(0).max(1).default(0.5),
    /** The target still counts as detected when its score is this close to the best one. */
    tieMargin: z.number().min(0).max(1).default(0.02),
    /** Alts of at most this many words (names, mostly) get `shortTextTieMargin` instead. */
    shortTextMaxWords: z.number().int().min(0).default(3),
    shortTextTieMargin: z.number().min(0).max(1).default(0.05),
    /** Share of the letters that must be in the language's scripts. */
    minScriptShare: z.number().min(0).max(1).default(0.5),
    /** Detected languages that count as the target, per target. */
    accept: z
      .record(langKey, z.array(langKey))
      .default({ sr: ['hr', 'bs'], bs: ['hr', 'sr'], cnr: ['sr', 'hr', 'bs'], sh: ['sr', 'hr', 'bs'] }),
    /** Scripts per target, where CLDR's single likely script is not enough. */
    scripts: z
      .record(langKey, z.array(scriptCode).min(1))
      .default({ sr: ['Cyrl', 'Latn'], bs: ['Latn', 'Cyrl'], cnr: ['Latn', 'Cyrl'], sh: ['Latn', 'Cyrl'] }),
    /** Letters that rule the target out (lower case), per target. */
    foreignLetters: z.record(langKey, z.string()).default({
      ru: 'іїєґўђјљњћџѓќѕ',
      sr: SC_FOREIGN_CYRILLIC + SC_FOREIGN_LATIN,
      bs: SC_FOREIGN_CYRILLIC + SC_FOREIGN_LATIN,
      hr: SC_FOREIGN_LATIN,
      cs: 'äľĺŕôőű',
    }),
    /** Targets eld does not know: judge by script (and foreign letters) only, or reject. */
    unsupportedLanguage: z.enum(['script-only', 'reject']).default('script-only'),
  })
  .strict();
export type LanguageIdConfig = z.infer<typeof languageIdConfigSchema>;

/** The scripts the target is expected in (see the module comment). */
export function expectedScripts(lang: string, config: Pick<LanguageIdConfig, 'scripts'>): readonly string[] {
  const explicit = explicitScript(lang);
  if (explicit !== undefined) return likelyScripts(`und-${explicit}`).length > 0 ? likelyScripts(`und-${explicit}`) : [explicit];
  return config.scripts[baseLanguage(lang)] ?? likelyScripts(lang);
}

/** The languages each eld detector knows (its info() is rebuilt on every call). */
const knownLanguages = new WeakMap<object, Set<string>>();

export async function identifyLanguage(text: string, lang: string, config: LanguageIdConfig): Promise<OperatorResult> {
  const base = baseLanguage(lang);
  const letters = letterCount(text);
  if (letters === 0) return reject('language_undetermined', 'no letters', base);

  const scripts = expectedScripts(lang, config);
  if (scripts.length > 0) {
    const share = lettersInScripts(text, scripts) / letters;
    if (share < config.minScriptShare) {
      return reject('wrong_script', round(share, 3), config.minScriptShare, `share of letters in ${scripts.join('/')}`);
    }
  }

  const foreign = config.foreignLetters[base];
  if (foreign !== undefined && foreign.length > 0) {
    const found = [...new Set([...text.toLowerCase()].filter((ch) => foreign.includes(ch)))];
    if (found.length > 0) return reject('foreign_letters', found.join(''), `none of ${foreign}`, `letters not used in ${base}`);
  }

  const detector = await eldDetector(config.model, config.textCleanup);
  let known = knownLanguages.get(detector);
  if (known === undefined) knownLanguages.set(detector, (known = new Set(Object.values(detector.info().Languages))));
  if (!known.has(base)) {
    if (config.unsupportedLanguage === 'reject') return reject('language_unsupported', base, 'a language eld detects');
    return keep(undefined, { detected: 'unsupported' });
  }
  const accepted = [base, ...(config.accept[base] ?? [])];
  const result = detector.detect(text);
  const scores = result.getScores();
  const top = result.language;
  if (top === '' || Object.keys(scores).length === 0) return reject('language_undetermined', '', accepted.join('|'), 'eld found no known n-grams');
  const topScore = scores[top] ?? 0;
  let best: { lang: string; score: number } | undefined;
  for (const a of accepted) {
    const s = scores[a];
    if (s !== undefined && (best === undefined || s > best.score)) best = { lang: a, score: s };
  }
  const summary = `eld: ${top} ${topScore.toFixed(3)}; ${best === undefined ? `${base} absent` : `${best.lang} ${best.score.toFixed(3)}`}`;
  const margin = hasAtMostWords(text, lang, config.shortTextMaxWords) ? config.shortTextTieMargin : config.tieMargin;
  if (best === undefined || topScore - best.score > margin) return reject('wrong_language', top, accepted.join('|'), `${summary}; margin ${margin}`);
  if (best.score < config.minScore) return reject('low_language_score', round(best.score, 3), config.minScore, summary);
  // Kept: record what eld said (for sr, whether it read hr, bs or sr), so the data can be split later.
  return keep(undefined, { detected: top, detectedScore: round(topScore, 3), accepted: best.lang, acceptedScore: round(best.score, 3) });
}

export const languageIdOperator: ItemOperator<TextItem, LanguageIdConfig> = {
  name: 'language-id',
  kind: 'text',
  scope: 'item',
  input: 'text',
  description: "The alt is in the target language's script(s) and eld identifies it as the target (sr counts hr and bs).",
  reasons: ['wrong_script', 'foreign_letters', 'language_undetermined', 'language_unsupported', 'wrong_language', 'low_language_score'],
  configSchema: languageIdConfigSchema,
  defaultSources: {
    model: "eld's README: the large model is the most accurate on short text (word pairs 90.4% vs 88.4% for medium)",
    textCleanup: "eld's own cleanup, so that a URL or a model number does not vote",
    minScore: 'measured on the fixtures: native alts score 0.56 ("Rita Jeptoová.") to 0.88 for their language; 0.5 leaves a margin below the lowest',
    tieMargin: 'measured: related languages score within 0.01 of each other on short alts ("Мост на Дрини": bg 0.850, sr 0.848)',
    shortTextMaxWords: 'project choice: two- and three-word alts are mostly names, which n-gram models place poorly',
    shortTextTieMargin:
      'measured on the cs fixtures: Czech names score 0.021-0.027 below a neighbour ("Barbora Špotáková": sk 0.661, cs 0.634); foreign names 0.06 and more ("Donald Trump": da 0.742, cs 0.674)',
    minScriptShare: 'project choice: a native alt may quote a Latin-script name, but most of its letters are in its own script',
    accept: 'the Serbian/Croatian/Bosnian decision in the module comment (docs/filter.md)',
    scripts: 'Serbian is digraphic (Cyrillic and Latin); CLDR gives one likely script per language',
    foreignLetters: 'the alphabets: Ukrainian і ї є ґ, Belarusian ў, Serbian ђ ј љ њ ћ џ, Macedonian ѓ ќ ѕ, Russian й щ ъ ы ь э ю я ё, Czech vs Slovak ä ľ ĺ ŕ ô',
    unsupportedLanguage: 'the design: any language must work from configuration alone, so an unknown one is judged by its script',
  },
  apply(item, config) {
    return identifyLanguage(item.text, item.lang, config);
  },
};
