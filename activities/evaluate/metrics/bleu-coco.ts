/**
 * BLEU-1..4 as coco-caption / pycocoevalcap computes it (`pycocoevalcap/bleu/bleu_scorer.py`), the BLEU
 * that image-captioning papers (and nlg-eval) report. It differs from sacrebleu's on purpose; reproduce
 * it only to compare with such numbers:
 *
 * - tokens are a whitespace split of already tokenized text (pycocoevalcap runs the Java PTB tokenizer
 *   first; pass text tokenized the way you want);
 * - BLEU-n is the cumulative geometric mean of orders 1..n with tiny = 1e-15 added to matches and
 *   small = 1e-9 to totals (no other smoothing), on a 0–1 scale;
 * - the reference length is the closest one (ties to the shorter); the corpus brevity penalty uses the
 *   summed lengths; per-segment scores use the segment's.
 */
import { clippedMatches, countAllNgrams, type Counts } from './ngrams';
import { pySplit } from './text';
import { closestRefLen } from './bleu';

export interface CocoBleuResult {
  /** Corpus BLEU-1..BLEU-n (index n-1), 0–1. */
  score: number[];
  /** Per-segment BLEU-1..n: `scores[n-1][i]`. */
  scores: number[][];
  testLen: number;
  refLen: number;
  guess: number[];
  correct: number[];
}

const TINY = 1e-15;
const SMALL = 1e-9;

/**
 * coco-caption BLEU with `option='closest'`. `references[i]` are the references of `candidates[i]` (at
 * least one each).
 */
export function cocoBleu(candidates: readonly string[], references: readonly (readonly string[])[], n = 4): CocoBleuResult {
  if (candidates.length !== references.length) throw new Error(`${candidates.length} candidates but ${references.length} reference lists`);
  const scores: number[][] = Array.from({ length: n }, () => []);
  const guessTotal = new Array<number>(n).fill(0);
  const correctTotal = new Array<number>(n).fill(0);
  let testLenTotal = 0;
  let refLenTotal = 0;
  for (let s = 0; s < candidates.length; s++) {
    const refs = references[s]!;
    if (refs.length === 0) throw new Error(`segment ${s} has no reference`);
    const refLens: number[] = [];
    const maxCounts: Counts[] = Array.from({ length: n }, () => new Map());
    for (const ref of refs) {
      const toks = pySplit(ref);
      refLens.push(toks.length);
      const counts = countAllNgrams(toks, n);
      for (let k = 0; k < n; k++) {
        const m = maxCounts[k]!;
        for (const [g, c] of counts[k]!) if (c > (m.get(g) ?? 0)) m.set(g, c);
      }
    }
    const toks = pySplit(candidates[s]!);
    const testLen = toks.length;
    const counts = countAllNgrams(toks, n);
    const refLen = closestRefLen(testLen, refLens);
    testLenTotal += testLen;
    refLenTotal += refLen;
    let bleu = 1.0;
    for (let k = 0; k < n; k++) {
      const guess = Math.max(0, testLen - k);
      const correct = clippedMatches(counts[k]!, maxCounts[k]!);
      guessTotal[k] = guessTotal[k]! + guess;
      correctTotal[k] = correctTotal[k]! + correct;
      bleu *= (correct + TINY) / (guess + SMALL);
      scores[k]!.push(bleu ** (1 / (k + 1)));
    }
    const ratio = (testLen + TINY) / (refLen + SMALL);
    if (ratio < 1) for (let k = 0; k < n; k++) scores[k]![s] = scores[k]![s]! * Math.exp(1 - 1 / ratio);
  }
  const score: number[] = [];
  let bleu = 1.0;
  for (let k = 0; k < n; k++) {
    bleu *= (correctTotal[k]! + TINY) / (guessTotal[k]! + SMALL);
    score.push(bleu ** (1 / (k + 1)));
  }
  const ratio = (testLenTotal + TINY) / (refLenTotal + SMALL);
  if (ratio < 1) for (let k = 0; k < n; k++) score[k] = score[k]! * Math.exp(1 - 1 / ratio);
  return { score, scores, testLen: testLenTotal, refLen: refLenTotal, guess: guessTotal, correct: correctTotal };
}
