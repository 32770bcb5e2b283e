/**
 * BLEU (Papineni et al., 2002) exactly as sacrebleu 2.x computes it (`sacrebleu/metrics/bleu.py`):
 * the same preprocessing (optional lowercasing, then the tokenizer on the right-stripped line), the
 * same sufficient statistics (clipped n-gram matches against the per-n-gram maximum over references,
 * closest reference length with ties to the shorter one), the same smoothing (Chen & Cherry 2014):
 *
 * - `none`:  no smoothing;
 * - `floor`: a zero precision becomes `floor / total` (default 0.1);
 * - `add-k`: k is added to matches and totals of orders ≥ 2 (default 1);
 * - `exp`:   the n-th zero precision becomes `1 / (2^n · total)` (NIST / mteval-v13a; sacrebleu's default),
 *
 * and the same effective order (orders with no n-gram in the hypothesis are left out of the geometric
 * mean: on by default for sentence BLEU, off for corpus BLEU, as in sacrebleu's `sentence_bleu` and
 * `corpus_bleu`). Scores are on sacrebleu's 0–100 scale.
 *
 * Beyond sacrebleu: `segment` runs ICU word segmentation before the tokenizer (needed for Thai); it is in
 * the signature as `seg:`.
 */
import { clippedMatches, countAllNgrams, totalCount, type Counts } from './ngrams';
import { formatSignature, nrefsValue } from './signature';
import { makeTokenizer, type Tokenizer, type TokenizerName } from './tokenize';
import type { Segmentation } from './segment';
import { pyRstrip, pySplit } from './text';

export type SmoothMethod = 'none' | 'floor' | 'add-k' | 'exp';

/** sacrebleu's `BLEU.SMOOTH_DEFAULTS`: the value a method uses when none is given. */
export const SMOOTH_DEFAULTS: Readonly<Record<SmoothMethod, number | undefined>> = {
  none: undefined,
  floor: 0.1,
  'add-k': 1,
  exp: undefined,
};

/** sacrebleu's `my_log(0)`: the floored logarithm of a zero precision. */
const LOG_ZERO = -9999999999;

export interface BleuOptions {
  /** Tokenizer (sacrebleu names). Default `13a`. */
  tokenize?: TokenizerName;
  /** ICU word segmentation of no-space scripts before tokenizing. Default none. */
  segment?: Segmentation;
  /** Lowercase hypotheses and references first. Default false. */
  lowercase?: boolean;
  /** Default `exp`. */
  smoothMethod?: SmoothMethod;
  /** For `floor` and `add-k`; default {@link SMOOTH_DEFAULTS}. */
  smoothValue?: number;
  /** Highest n-gram order. Default 4. */
  maxNgramOrder?: number;
  /** Drop orders with no hypothesis n-grams from the mean. Default false (corpus), true in {@link sentenceBleu}. */
  effectiveOrder?: boolean;
}

export interface BleuScore {
  /** 0–100. */
  score: number;
  /** Clipped n-gram matches per order (after add-k smoothing, as sacrebleu reports them). */
  counts: number[];
  /** Hypothesis n-grams per order (after add-k smoothing). */
  totals: number[];
  /** n-gram precisions, 0–100. */
  precisions: number[];
  /** Brevity penalty. */
  bp: number;
  sysLen: number;
  refLen: number;
  /** sysLen / refLen (0 when refLen is 0). */
  ratio: number;
  /** `nrefs:1|case:mixed|eff:no|tok:13a|seg:none|smooth:exp|version:mella-metrics-…` */
  signature: string;
}

/** Per-segment sufficient statistics: `[sysLen, refLen, ...correct(order), ...total(order)]`, as sacrebleu. */
export type BleuSegmentStats = number[];

interface RefInfo {
  ngrams: Counts[];
  lens: number[];
}

/**
 * BLEU from its sufficient statistics (sacrebleu's `BLEU.compute_bleu`). The arrays are not modified.
 */
export function computeBleu(
  correctIn: readonly number[],
  totalIn: readonly number[],
  sysLen: number,
  refLen: number,
  options: Pick<BleuOptions, 'smoothMethod' | 'smoothValue' | 'effectiveOrder' | 'maxNgramOrder'> = {},
): Omit<BleuScore, 'signature' | 'sysLen' | 'refLen' | 'ratio'> {
  const method = options.smoothMethod ?? 'exp';
  if (!(method in SMOOTH_DEFAULTS)) throw new Error(`unknown smooth method '${method}'`);
  const smoothValue = options.smoothValue ?? SMOOTH_DEFAULTS[method] ?? 0;
  const maxOrder = options.maxNgramOrder ?? 4;
  const effective = options.effectiveOrder ?? false;
  const correct = correctIn.slice(0, maxOrder);
  const totals = totalIn.slice(0, maxOrder);

  let bp = 1.0;
  if (sysLen < refLen) bp = sysLen > 0 ? Math.exp(1 - refLen / sysLen) : 0.0;

  const precisions: number[] = new Array<number>(maxOrder).fill(0.0);
  // No match at any order: BLEU is 0 (sacrebleu #141).
  if (!correct.some((c) => c !== 0)) return { score: 0.0, counts: correct, totals, precisions, bp };

  let smoothMteval = 1.0;
  let effOrder = maxOrder;
  for (let n = 1; n <= maxOrder; n++) {
    if (method === 'add-k' && n > 1) {
      correct[n - 1] = correct[n - 1]! + smoothValue;
      totals[n - 1] = totals[n - 1]! + smoothValue;
    }
    const t = totals[n - 1]!;
    if (t === 0) break;
    if (effective) effOrder = n;
    const c = correct[n - 1]!;
    if (c === 0) {
      if (method === 'exp') {
        smoothMteval *= 2;
        precisions[n - 1] = 100.0 / (smoothMteval * t);
      } else if (method === 'floor') {
        precisions[n - 1] = (100.0 * smoothValue) / t;
      }
    } else {
      precisions[n - 1] = (100.0 * c) / t;
    }
  }
  let logSum = 0;
  for (let i = 0; i < effOrder; i++) {
    const p = precisions[i]!;
    logSum += p === 0 ? LOG_ZERO : Math.log(p);
  }
  return { score: bp * Math.exp(logSum / effOrder), counts: correct, totals, precisions, bp };
}

/** BLEU with fixed options; reuse one instance for many calls (it keeps the tokenizer). */
export class Bleu {
  readonly options: Readonly<Required<Omit<BleuOptions, 'smoothValue' | 'segment'>>> & Pick<BleuOptions, 'smoothValue' | 'segment'>;
  private readonly tokenizer: Tokenizer;

  constructor(options: BleuOptions = {}) {
    this.options = {
      tokenize: options.tokenize ?? '13a',
      segment: options.segment,
      lowercase: options.lowercase ?? false,
      smoothMethod: options.smoothMethod ?? 'exp',
      smoothValue: options.smoothValue,
      maxNgramOrder: options.maxNgramOrder ?? 4,
      effectiveOrder: options.effectiveOrder ?? false,
    };
    if (!(this.options.smoothMethod in SMOOTH_DEFAULTS)) throw new Error(`unknown smooth method '${this.options.smoothMethod}'`);
    if (!Number.isInteger(this.options.maxNgramOrder) || this.options.maxNgramOrder < 1) throw new Error('maxNgramOrder must be a positive integer');
    this.tokenizer = makeTokenizer(this.options.tokenize, this.options.segment);
  }

  /** Lowercasing (optional) then the tokenizer on the right-stripped line: the tokens. */
  tokens(sentence: string): string[] {
    const s = this.options.lowercase ? sentence.toLowerCase() : sentence;
    return pySplit(this.tokenizer(pyRstrip(s)));
  }

  private referenceInfo(refs: readonly string[]): RefInfo {
    const order = this.options.maxNgramOrder;
    let ngrams: Counts[] | undefined;
    const lens: number[] = [];
    for (const ref of refs) {
      const toks = this.tokens(ref);
      lens.push(toks.length);
      const these = countAllNgrams(toks, order);
      if (!ngrams) {
        ngrams = these;
        continue;
      }
      for (let n = 0; n < order; n++) {
        const merged = ngrams[n]!;
        for (const [g, c] of these[n]!) {
          const prev = merged.get(g);
          if (prev === undefined || c > prev) merged.set(g, c);
        }
      }
    }
    return { ngrams: ngrams ?? countAllNgrams([], order), lens };
  }

  /** Sufficient statistics of one segment against its references (`undefined`/`null` ones are skipped). */
  segmentStats(hypothesis: string, references: readonly (string | null | undefined)[]): BleuSegmentStats {
    return this.statsWith(hypothesis, this.referenceInfo(references.filter((r): r is string => r != null)));
  }

  private statsWith(hypothesis: string, info: RefInfo): BleuSegmentStats {
    const order = this.options.maxNgramOrder;
    const toks = this.tokens(hypothesis);
    const hypLen = toks.length;
    const hyp = countAllNgrams(toks, order);
    const correct: number[] = [];
    const totals: number[] = [];
    for (let n = 0; n < order; n++) {
      correct.push(clippedMatches(hyp[n]!, info.ngrams[n]!));
      totals.push(totalCount(hyp[n]!));
    }
    return [hypLen, closestRefLen(hypLen, info.lens), ...correct, ...totals];
  }

  /** Score from (summed) statistics. */
  scoreFromStats(stats: readonly number[], nrefs: string): BleuScore {
    const order = this.options.maxNgramOrder;
    const sysLen = stats[0] ?? 0;
    const refLen = stats[1] ?? 0;
    const r = computeBleu(stats.slice(2, 2 + order), stats.slice(2 + order, 2 + 2 * order), sysLen, refLen, this.options);
    return { ...r, sysLen, refLen, ratio: refLen ? sysLen / refLen : 0, signature: this.signature(nrefs) };
  }

  /**
   * Corpus BLEU. `references` are reference streams, as in sacrebleu: `references[k][i]` is the k-th
   * reference of hypothesis i (a `null`/`undefined` entry: segment i has fewer references).
   */
  corpusScore(hypotheses: readonly string[], references: readonly (readonly (string | null | undefined)[])[]): BleuScore {
    checkStreams(hypotheses, references);
    const order = this.options.maxNgramOrder;
    const sums = new Array<number>(2 + 2 * order).fill(0);
    const refCounts: number[] = [];
    for (let i = 0; i < hypotheses.length; i++) {
      const refs: string[] = [];
      for (const stream of references) {
        const r = stream[i];
        if (r != null) refs.push(r);
      }
      refCounts.push(refs.length);
      const st = this.statsWith(hypotheses[i]!, this.referenceInfo(refs));
      for (let k = 0; k < st.length; k++) sums[k] = sums[k]! + st[k]!;
    }
    return this.scoreFromStats(sums, nrefsValue(refCounts));
  }

  /** BLEU of one hypothesis against its references (sacrebleu's `sentence_score`). */
  sentenceScore(hypothesis: string, references: readonly string[]): BleuScore {
    return this.scoreFromStats(this.segmentStats(hypothesis, references), nrefsValue([references.length]));
  }

  /** sacrebleu's signature string plus `seg:`, with our version. */
  signature(nrefs: string | number): string {
    const o = this.options;
    const def = SMOOTH_DEFAULTS[o.smoothMethod];
    const smooth = def === undefined ? o.smoothMethod : `${o.smoothMethod}[${(o.smoothValue ?? def).toFixed(2)}]`;
    return formatSignature([
      ['nrefs', nrefs],
      ['case', o.lowercase ? 'lc' : 'mixed'],
      ['eff', o.effectiveOrder ? 'yes' : 'no'],
      ['tok', o.tokenize],
      ['seg', this.tokenizer.segmentation],
      ['smooth', smooth],
    ]);
  }
}

/** sacrebleu's `_get_closest_ref_len`: the reference length closest to the hypothesis', ties to the shorter. */
export function closestRefLen(hypLen: number, refLens: readonly number[]): number {
  let bestDiff = -1;
  let best = -1;
  for (const len of refLens) {
    const diff = Math.abs(hypLen - len);
    if (bestDiff === -1 || diff < bestDiff) {
      bestDiff = diff;
      best = len;
    } else if (diff === bestDiff && len < best) {
      best = len;
    }
  }
  return best;
}

export function checkStreams(hypotheses: readonly string[], references: readonly (readonly unknown[])[]): void {
  if (references.length === 0) throw new Error('at least one reference stream is needed');
  for (const [k, stream] of references.entries()) {
    if (stream.length !== hypotheses.length) {
      throw new Error(`reference stream ${k} has ${stream.length} segments, the hypotheses ${hypotheses.length}`);
    }
  }
}

/** Corpus BLEU (sacrebleu's `corpus_bleu`): reference streams, effective order off unless asked. */
export function corpusBleu(
  hypotheses: readonly string[],
  references: readonly (readonly (string | null | undefined)[])[],
  options: BleuOptions = {},
): BleuScore {
  return new Bleu(options).corpusScore(hypotheses, references);
}

/** Sentence BLEU (sacrebleu's `sentence_bleu`): effective order on unless asked otherwise. */
export function sentenceBleu(hypothesis: string, references: readonly string[], options: BleuOptions = {}): BleuScore {
  return new Bleu({ effectiveOrder: true, ...options }).sentenceScore(hypothesis, references);
}

/** sacrebleu's `BLEUScore.format()`: `BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)`. */
export function formatBleu(s: BleuScore): string {
  const prec = s.precisions.map((p) => p.toFixed(1)).join('/');
  return `BLEU = ${s.score.toFixed(2)} ${prec} (BP = ${s.bp.toFixed(3)} ratio = ${s.ratio.toFixed(3)} hyp_len = ${s.sysLen} ref_len = ${s.refLen})`;
}
