/**
 * chrF (Popović 2015) and chrF++ (Popović 2017) exactly as sacrebleu 2.x computes them
 * (`sacrebleu/metrics/chrf.py`): character n-grams of orders 1..`charOrder` over the text with its
 * whitespace removed (code points, as Python indexes strings), plus word n-grams of orders
 * 1..`wordOrder` over whitespace tokens with one leading or trailing ASCII punctuation mark split off;
 * per segment the reference with the best F-score is kept; corpus statistics are summed; the F-beta of
 * the averaged precision and recall over the effective orders (or, with `epsSmoothing`, the average of
 * per-order F-scores with ε = 1e-16 for empty orders, as chrF++.py / NLTK / Moses do).
 *
 * Defaults are sacrebleu's: `charOrder` 6, `wordOrder` 0 (chrF; 2 gives chrF++), `beta` 2,
 * `whitespace` false, `epsSmoothing` false. Scores are 0–100.
 *
 * Beyond sacrebleu: `segment` runs ICU word segmentation before the word n-grams of chrF++ (it cannot
 * change character n-grams, which ignore whitespace); it is in the signature as `seg:`.
 */
import type { Counts } from './ngrams';
import { countNgrams } from './ngrams';
import { formatSignature, nrefsValue } from './signature';
import { segmentationSignature, segmentText, type Segmentation } from './segment';
import { checkStreams } from './bleu';
import { codePointLength, hasAstral, pySplit, removeWhitespace } from './text';

export interface ChrfOptions {
  /** Character n-gram order. Default 6. */
  charOrder?: number;
  /** Word n-gram order: 0 = chrF, 2 = chrF++. Default 0. */
  wordOrder?: number;
  /** Recall weight. Default 2. */
  beta?: number;
  /** Lowercase first. Default false. */
  lowercase?: boolean;
  /** Keep whitespace inside character n-grams. Default false. */
  whitespace?: boolean;
  /** ε-smoothing instead of effective order. Default false (sacrebleu's default). */
  epsSmoothing?: boolean;
  /** ICU segmentation before word n-grams (chrF++ only). Default none. */
  segment?: Segmentation;
}

export interface ChrfScore {
  /** 0–100. */
  score: number;
  /** `chrF2`, `chrF2++`, ... as sacrebleu names it. */
  name: string;
  /** `nrefs:1|case:mixed|eff:yes|nc:6|nw:0|space:no|seg:none|version:mella-metrics-…` */
  signature: string;
}

/** sacrebleu's `CHRF._PUNCTS`. */
const PUNCTS = new Set('!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~');

type NgramSet = Counts[];

/** Character n-grams of orders 1..maxOrder (code points). */
export function charNgrams(line: string, maxOrder: number, includeWhitespace = false): Counts[] {
  const s = includeWhitespace ? line : removeWhitespace(line);
  const out: Counts[] = [];
  if (!hasAstral(s)) {
    for (let n = 1; n <= maxOrder; n++) {
      const counts: Counts = new Map();
      for (let i = 0; i + n <= s.length; i++) {
        const g = s.substring(i, i + n);
        counts.set(g, (counts.get(g) ?? 0) + 1);
      }
      out.push(counts);
    }
    return out;
  }
  // Code point boundaries in UTF-16 offsets.
  const starts: number[] = [];
  for (let i = 0; i < s.length; ) {
    starts.push(i);
    i += (s.codePointAt(i) ?? 0) > 0xffff ? 2 : 1;
  }
  starts.push(s.length);
  const len = starts.length - 1;
  for (let n = 1; n <= maxOrder; n++) {
    const counts: Counts = new Map();
    for (let i = 0; i + n <= len; i++) {
      const g = s.substring(starts[i]!, starts[i + n]!);
      counts.set(g, (counts.get(g) ?? 0) + 1);
    }
    out.push(counts);
  }
  return out;
}

/** sacrebleu's `_remove_punctuation`: split off one leading or trailing ASCII punctuation mark. */
export function chrfWords(sentence: string): string[] {
  const out: string[] = [];
  for (const w of pySplit(sentence)) {
    if (codePointLength(w) === 1) {
      out.push(w);
    } else if (PUNCTS.has(w[w.length - 1]!)) {
      out.push(w.slice(0, -1), w[w.length - 1]!);
    } else if (PUNCTS.has(w[0]!)) {
      out.push(w[0]!, w.slice(1));
    } else {
      out.push(w);
    }
  }
  return out;
}

/** chrF / chrF++ with fixed options; reuse one instance for many calls. */
export class Chrf {
  readonly charOrder: number;
  readonly wordOrder: number;
  readonly beta: number;
  readonly lowercase: boolean;
  readonly whitespace: boolean;
  readonly epsSmoothing: boolean;
  readonly segment: Segmentation;
  private readonly order: number;

  constructor(options: ChrfOptions = {}) {
    this.charOrder = options.charOrder ?? 6;
    this.wordOrder = options.wordOrder ?? 0;
    this.beta = options.beta ?? 2;
    this.lowercase = options.lowercase ?? false;
    this.whitespace = options.whitespace ?? false;
    this.epsSmoothing = options.epsSmoothing ?? false;
    this.segment = options.segment;
    this.order = this.charOrder + this.wordOrder;
    if (!Number.isInteger(this.charOrder) || this.charOrder < 0 || !Number.isInteger(this.wordOrder) || this.wordOrder < 0 || this.order < 1) {
      throw new Error('charOrder and wordOrder must be non-negative integers, not both 0');
    }
  }

  get name(): string {
    return `chrF${this.beta}${'+'.repeat(this.wordOrder)}`;
  }

  private ngrams(sentence: string): NgramSet {
    const s = this.lowercase ? sentence.toLowerCase() : sentence;
    const all = charNgrams(s, this.charOrder, this.whitespace);
    if (this.wordOrder > 0) {
      const words = chrfWords(segmentText(s, this.segment));
      for (let n = 1; n <= this.wordOrder; n++) all.push(countNgrams(words, n));
    }
    return all;
  }

  /** F-score (0–100) from flattened `[hyp, ref, match] × order` statistics (sacrebleu's `_compute_f_score`). */
  fScore(stats: readonly number[]): number {
    const eps = 1e-16;
    const factor = this.beta ** 2;
    let score = 0.0;
    let effectiveOrder = 0;
    let avgPrec = 0.0;
    let avgRec = 0.0;
    for (let i = 0; i < this.order; i++) {
      const nHyp = stats[3 * i]!;
      const nRef = stats[3 * i + 1]!;
      const nMatch = stats[3 * i + 2]!;
      const prec = nHyp > 0 ? nMatch / nHyp : eps;
      const rec = nRef > 0 ? nMatch / nRef : eps;
      const denom = factor * prec + rec;
      score += denom > 0 ? ((1 + factor) * prec * rec) / denom : eps;
      if (nHyp > 0 && nRef > 0) {
        avgPrec += prec;
        avgRec += rec;
        effectiveOrder += 1;
      }
    }
    if (this.epsSmoothing) return (100 * score) / this.order;
    if (effectiveOrder === 0) {
      avgPrec = avgRec = 0.0;
    } else {
      avgPrec /= effectiveOrder;
      avgRec /= effectiveOrder;
    }
    if (avgPrec + avgRec) {
      let s = (1 + factor) * avgPrec * avgRec;
      s /= factor * avgPrec + avgRec;
      return 100 * s;
    }
    return 0.0;
  }

  private statsAgainst(hyp: NgramSet, refs: readonly NgramSet[]): number[] {
    let best: number[] = [];
    let bestF = -1.0;
    for (const ref of refs) {
      const stats: number[] = [];
      for (let k = 0; k < this.order; k++) {
        const h = hyp[k]!;
        const r = ref[k]!;
        let match = 0;
        let hypCount = 0;
        for (const [g, c] of h) {
          hypCount += c;
          const rc = r.get(g);
          if (rc !== undefined) match += c < rc ? c : rc;
        }
        let refCount = 0;
        for (const c of r.values()) refCount += c;
        // sacrebleu counts no hypothesis n-grams for an order the reference is too short to have.
        stats.push(r.size > 0 ? hypCount : 0, refCount, match);
      }
      const f = this.fScore(stats);
      if (f > bestF) {
        bestF = f;
        best = stats;
      }
    }
    return best;
  }

  /** Statistics of one segment against its references (`null`/`undefined` ones skipped). */
  segmentStats(hypothesis: string, references: readonly (string | null | undefined)[]): number[] {
    const refs = references.filter((r): r is string => r != null).map((r) => this.ngrams(r));
    return this.statsAgainst(this.ngrams(hypothesis), refs);
  }

  /** Corpus chrF over reference streams (`references[k][i]`: k-th reference of segment i). */
  corpusScore(hypotheses: readonly string[], references: readonly (readonly (string | null | undefined)[])[]): ChrfScore {
    checkStreams(hypotheses, references);
    const sums = new Array<number>(3 * this.order).fill(0);
    const refCounts: number[] = [];
    for (let i = 0; i < hypotheses.length; i++) {
      const refs: string[] = [];
      for (const stream of references) {
        const r = stream[i];
        if (r != null) refs.push(r);
      }
      refCounts.push(refs.length);
      const st = this.segmentStats(hypotheses[i]!, refs);
      for (let k = 0; k < st.length; k++) sums[k] = sums[k]! + st[k]!;
    }
    return { score: this.fScore(sums), name: this.name, signature: this.signature(nrefsValue(refCounts)) };
  }

  /** chrF of one hypothesis against its references. */
  sentenceScore(hypothesis: string, references: readonly string[]): ChrfScore {
    const stats = this.segmentStats(hypothesis, references);
    const full = stats.length ? stats : new Array<number>(3 * this.order).fill(0);
    return { score: this.fScore(full), name: this.name, signature: this.signature(nrefsValue([references.length])) };
  }

  signature(nrefs: string | number): string {
    return formatSignature([
      ['nrefs', nrefs],
      ['case', this.lowercase ? 'lc' : 'mixed'],
      ['eff', this.epsSmoothing ? 'no' : 'yes'],
      ['nc', this.charOrder],
      ['nw', this.wordOrder],
      ['space', this.whitespace ? 'yes' : 'no'],
      ['seg', segmentationSignature(this.wordOrder > 0 ? this.segment : false)],
    ]);
  }
}

export function corpusChrf(
  hypotheses: readonly string[],
  references: readonly (readonly (string | null | undefined)[])[],
  options: ChrfOptions = {},
): ChrfScore {
  return new Chrf(options).corpusScore(hypotheses, references);
}

export function sentenceChrf(hypothesis: string, references: readonly string[], options: ChrfOptions = {}): ChrfScore {
  return new Chrf(options).sentenceScore(hypothesis, references);
}
