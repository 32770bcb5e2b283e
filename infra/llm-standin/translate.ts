/**
 * Target-language answers: translations of the stand-in's own captions, image descriptions in a target
 * language (with the native alt text for the fused kind), and the marked pseudo-translation for
 * everything the phrase tables do not cover.
 *
 * - A text the stand-in recognises as its own English caption (caption.ts), optionally preceded by the
 *   English alt-text sentence, is rendered from its facts in the target language when that language has
 *   a phrase table (phrases.ts): ar, cs, hu, ko, ru, sr (Cyrillic; sr-Latn in Latin), th, vi, en.
 * - Anything else, or another language, gets `[stand-in:pseudo:<code>] <source text>`: the source text
 *   unchanged behind the marker. It is not a translation, and a translate stage's language check is
 *   expected to reject it.
 */
import { parseCaptionEn } from './caption';
import { STANDIN_MARKER, parseStandinMarker, pseudoMarker, type AnswerKind } from './conventions';
import type { ImageFacts } from './image-facts';
import { phrasesFor, render } from './phrases';

export interface Answer {
  kind: AnswerKind;
  content: string;
}

const EN_ALT_RE = /^The page describes it as "(.*)"\.\s+/s;

/** The facts (and the quoted alt text) of a stand-in English caption or English fused description. */
export function recogniseOwnEnglish(text: string): { facts: ImageFacts; alt?: string } | undefined {
  let body = parseStandinMarker(text.trim()).body.trim();
  let alt: string | undefined;
  const m = EN_ALT_RE.exec(body);
  if (m !== null) {
    alt = m[1];
    body = body.slice(m[0].length);
  }
  const facts = parseCaptionEn(body);
  if (facts === undefined) return undefined;
  return alt === undefined ? { facts } : { facts, alt };
}

/** A translation of `source` into `target` (a BCP-47 code). */
export function translate(source: string, target: string): Answer {
  const own = recogniseOwnEnglish(source);
  const phrases = phrasesFor(target);
  if (own !== undefined && phrases !== undefined) {
    return { kind: 'translation', content: `${STANDIN_MARKER} ${render(phrases, own.facts, own.alt)}` };
  }
  return { kind: 'pseudo-translation', content: `${pseudoMarker(target)} ${parseStandinMarker(source.trim()).body.trim()}` };
}

/**
 * A description of the images: English without a target (a caption), otherwise in the target language;
 * with `alt`, the description starts by quoting it (the fused kind). Several images are numbered.
 */
export function describe(images: ImageFacts[], target: string | undefined, alt: string | undefined): Answer {
  const phrases = phrasesFor(target ?? 'en');
  const number = (texts: string[]) => (texts.length === 1 ? texts[0]! : texts.map((t, i) => `(${i + 1}) ${t}`).join('\n'));
  if (phrases === undefined) {
    const english = phrasesFor('en')!;
    const body = number(images.map((f, i) => render(english, f, i === 0 ? alt : undefined)));
    return { kind: 'pseudo-translation', content: `${pseudoMarker(target!)} ${body}` };
  }
  const body = number(images.map((f, i) => render(phrases, f, i === 0 ? alt : undefined)));
  const kind: AnswerKind = alt !== undefined ? 'fused' : target === undefined || /^en\b/i.test(target) ? 'caption' : 'description';
  return { kind, content: `${STANDIN_MARKER} ${body}` };
}
