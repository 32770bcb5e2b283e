/**
 * ROUGE (Lin 2004) with the semantics of Google's `rouge-score` package (`rouge_score/rouge_scorer.py`):
 *
 * - ROUGE-L: LCS of the token sequences; P = LCS / |prediction|, R = LCS / |target|, F = 2PR / (P + R);
 *   0 when either side has no token.
 * - ROUGE-N: clipped n-gram overlap; P and R over max(count, 1).
 * - ROUGE-Lsum: summary-level union-LCS over newline-separated sentences (the same backtracking, hence
 *   the same union, as rouge-score).
 * - Several targets: the target with the highest F wins (first on ties), as `score_multi`.
 *
 * Tokenizers ({@link RougeTokenizerName}):
 * - `multilingual` (default): {@link wordTokens} — NFC, lowercase, letters/marks/digits of every script,
 *   ICU word segmentation of Thai/Lao/Khmer/Myanmar/CJK. rouge-score's own tokenizer keeps `[a-z0-9]`
 *   only: Arabic, Cyrillic, Hangul and Thai captions become empty and Czech/Hungarian/Vietnamese words
 *   are cut at every diacritic letter.
 * - `rouge-score`: rouge-score's default tokenizer without stemming (lowercase, `[^a-z0-9]+` → space),
 *   for comparisons with published English numbers. No Porter stemming is offered.
 *
 * Also {@link cocoRougeL}: the ROUGE-L of coco-caption / pycocoevalcap (β = 1.2, the best precision and the
 * best recall over references combined, tokens split on single spaces), which captioning papers report.
 * Argument order everywhere in this library: prediction (hypothesis) first, then reference(s).
 */
import { formatSignature } from './signature';
import type { Segmentation } from './segment';
import { pySplit } from './text';
import { wordTokens, wordTokensSignature } from './tokenize';
import { countNgrams } from './ngrams';

export type RougeTokenizerName = 'multilingual' | 'rouge-score';

export interface RougeOptions {
  /** Default `multilingual`. */
  tokenizer?: RougeTokenizerName;
  /** Segmentation for the multilingual tokenizer. Default ICU segmentation (`{}`); `false` turns it off. */
  segment?: Segmentation;
}

export interface RougeScore {
  precision: number;
  recall: number;
  fmeasure: number;
}

const ZERO: RougeScore = { precision: 0, recall: 0, fmeasure: 0 };

/** rouge-score's `tokenize.tokenize(text, stemmer=None)`. */
export function rougeScoreTokens(text: string): string[] {
  return pySplit(text.toLowerCase().replace(/[^a-z0-9]+/g, ' ')).filter((t) => /^[a-z0-9]+$/.test(t));
}

/** The tokens ROUGE scores with these options. */
export function rougeTokens(text: string, options: RougeOptions = {}): string[] {
  if ((options.tokenizer ?? 'multilingual') === 'rouge-score') return rougeScoreTokens(text);
  return wordTokens(text, { segment: options.segment === undefined ? {} : options.segment });
}

/** Signature, e.g. `rougeL|tok:words+lc+seg:icu78.2|version:…`. */
export function rougeSignature(variant: string, options: RougeOptions = {}): string {
  const tok =
    (options.tokenizer ?? 'multilingual') === 'rouge-score'
      ? 'rouge-score+seg:none'
      : wordTokensSignature({ segment: options.segment === undefined ? {} : options.segment });
  return formatSignature([
    ['metric', variant],
    ['tok', tok],
  ]);
}

/** rouge-score's `scoring.fmeasure`. */
function fmeasure(p: number, r: number): number {
  return p + r > 0 ? (2 * p * r) / (p + r) : 0.0;
}

/** Length of the longest common subsequence (two rolling rows). */
export function lcsLength(a: readonly string[], b: readonly string[]): number {
  if (a.length === 0 || b.length === 0) return 0;
  const [long, short] = a.length >= b.length ? [a, b] : [b, a];
  let prev = new Int32Array(short.length + 1);
  let cur = new Int32Array(short.length + 1);
  for (let i = 1; i <= long.length; i++) {
    const x = long[i - 1];
    for (let j = 1; j <= short.length; j++) {
      cur[j] = x === short[j - 1] ? prev[j - 1]! + 1 : Math.max(prev[j]!, cur[j - 1]!);
    }
    [prev, cur] = [cur, prev];
  }
  return prev[short.length]!;
}

/** ROUGE-L of token sequences. */
export function rougeLTokens(prediction: readonly string[], target: readonly string[]): RougeScore {
  if (target.length === 0 || prediction.length === 0) return { ...ZERO };
  const lcs = lcsLength(target, prediction);
  const precision = lcs / prediction.length;
  const recall = lcs / target.length;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** ROUGE-N of token sequences. */
export function rougeNTokens(prediction: readonly string[], target: readonly string[], n: number): RougeScore {
  if (!Number.isInteger(n) || n <= 0) throw new Error(`ROUGE-N needs a positive n, got ${n}`);
  const t = countNgrams(target, n);
  const p = countNgrams(prediction, n);
  let inter = 0;
  let tCount = 0;
  let pCount = 0;
  for (const [g, c] of t) {
    inter += Math.min(c, p.get(g) ?? 0);
    tCount += c;
  }
  for (const c of p.values()) pCount += c;
  const precision = inter / Math.max(pCount, 1);
  const recall = inter / Math.max(tCount, 1);
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** rouge-score's LCS table + `_backtrack_norec`: indices into `ref` of one LCS. */
function lcsIndices(ref: readonly string[], can: readonly string[]): number[] {
  const rows = ref.length;
  const cols = can.length;
  const w = cols + 1;
  const t = new Int32Array((rows + 1) * w);
  for (let i = 1; i <= rows; i++) {
    for (let j = 1; j <= cols; j++) {
      t[i * w + j] = ref[i - 1] === can[j - 1] ? t[(i - 1) * w + j - 1]! + 1 : Math.max(t[(i - 1) * w + j]!, t[i * w + j - 1]!);
    }
  }
  const out: number[] = [];
  let i = rows;
  let j = cols;
  while (i > 0 && j > 0) {
    if (ref[i - 1] === can[j - 1]) {
      out.push(i - 1);
      i--;
      j--;
    } else if (t[i * w + j - 1]! > t[(i - 1) * w + j]!) {
      j--;
    } else {
      i--;
    }
  }
  return out.reverse();
}

/** ROUGE-Lsum of tokenized sentences (rouge-score's `_summary_level_lcs`). */
export function rougeLsumTokens(prediction: readonly (readonly string[])[], target: readonly (readonly string[])[]): RougeScore {
  if (target.length === 0 || prediction.length === 0) return { ...ZERO };
  const m = target.reduce((a, s) => a + s.length, 0);
  const n = prediction.reduce((a, s) => a + s.length, 0);
  if (!n || !m) return { ...ZERO };
  const cntR = new Map<string, number>();
  const cntC = new Map<string, number>();
  for (const s of target) for (const t of s) cntR.set(t, (cntR.get(t) ?? 0) + 1);
  for (const s of prediction) for (const t of s) cntC.set(t, (cntC.get(t) ?? 0) + 1);
  let hits = 0;
  for (const r of target) {
    const union = new Set<number>();
    for (const c of prediction) for (const idx of lcsIndices(r, c)) union.add(idx);
    for (const idx of [...union].sort((a, b) => a - b)) {
      const tok = r[idx]!;
      const cc = cntC.get(tok) ?? 0;
      const cr = cntR.get(tok) ?? 0;
      if (cc > 0 && cr > 0) {
        hits++;
        cntC.set(tok, cc - 1);
        cntR.set(tok, cr - 1);
      }
    }
  }
  const recall = hits / m;
  const precision = hits / n;
  return { precision, recall, fmeasure: fmeasure(precision, recall) };
}

/** ROUGE-L of a prediction against one target. */
export function rougeL(prediction: string, target: string, options: RougeOptions = {}): RougeScore {
  return rougeLTokens(rougeTokens(prediction, options), rougeTokens(target, options));
}

/** ROUGE-N of a prediction against one target. */
export function rougeN(prediction: string, target: string, n: number, options: RougeOptions = {}): RougeScore {
  return rougeNTokens(rougeTokens(prediction, options), rougeTokens(target, options), n);
}

/** ROUGE-Lsum: sentences are the non-empty lines of each text. */
export function rougeLsum(prediction: string, target: string, options: RougeOptions = {}): RougeScore {
  const sents = (text: string) => text.split('\n').filter((s) => s.length > 0).map((s) => rougeTokens(s, options));
  return rougeLsumTokens(sents(prediction), sents(target));
}

/** The best (highest F, first on ties) of several per-target scores: rouge-score's `score_multi`. */
export function bestOf(scores: readonly RougeScore[]): RougeScore {
  let best: RougeScore | undefined;
  for (const s of scores) if (!best || s.fmeasure > best.fmeasure) best = s;
  return best ?? { ...ZERO };
}

/** ROUGE-L against several targets (best F). */
export function rougeLMulti(prediction: string, targets: readonly string[], options: RougeOptions = {}): RougeScore {
  const p = rougeTokens(prediction, options);
  return bestOf(targets.map((t) => rougeLTokens(p, rougeTokens(t, options))));
}

export interface CorpusRougeL {
  /** Mean of the per-segment F (×1, 0–1). */
  fmeasure: number;
  precision: number;
  recall: number;
  /** Per-segment best-target scores. */
  segments: RougeScore[];
  signature: string;
}

/** Corpus ROUGE-L: mean over segments of the best-target scores. `references[i]`: targets of prediction i. */
export function corpusRougeL(predictions: readonly string[], references: readonly (readonly string[])[], options: RougeOptions = {}): CorpusRougeL {
  if (predictions.length !== references.length) throw new Error(`${predictions.length} predictions but ${references.length} reference lists`);
  const segments = predictions.map((p, i) => rougeLMulti(p, references[i]!, options));
  const mean = (k: keyof RougeScore) => (segments.length ? segments.reduce((a, s) => a + s[k], 0) / segments.length : 0);
  return { fmeasure: mean('fmeasure'), precision: mean('precision'), recall: mean('recall'), segments, signature: rougeSignature('rougeL', options) };
}

// ---------------------------------------------------------------------------------------------------
// coco-caption's ROUGE-L

/**
 * pycocoevalcap's `Rouge.calc_score`: tokens are `split(' ')` of already tokenized text; P and R are the
 * maxima over references (possibly from different references); score = (1 + β²)PR / (R + β²P), β = 1.2.
 */
export function cocoRougeL(candidate: string, references: readonly string[], beta = 1.2): number {
  if (references.length === 0) throw new Error('cocoRougeL needs at least one reference');
  const c = candidate.split(' ');
  let precMax = -Infinity;
  let recMax = -Infinity;
  for (const ref of references) {
    const r = ref.split(' ');
    const lcs = lcsLength(r, c);
    precMax = Math.max(precMax, lcs / c.length);
    recMax = Math.max(recMax, lcs / r.length);
  }
  if (precMax !== 0 && recMax !== 0) return ((1 + beta ** 2) * precMax * recMax) / (recMax + beta ** 2 * precMax);
  return 0.0;
}

/** pycocoevalcap's corpus ROUGE-L: the mean of {@link cocoRougeL} over segments. */
export function cocoRougeLCorpus(candidates: readonly string[], references: readonly (readonly string[])[]): { score: number; scores: number[] } {
  if (candidates.length !== references.length) throw new Error(`${candidates.length} candidates but ${references.length} reference lists`);
  const scores = candidates.map((c, i) => cocoRougeL(c, references[i]!));
  return { score: scores.reduce((a, b) => a + b, 0) / (scores.length || 1), scores };
}
