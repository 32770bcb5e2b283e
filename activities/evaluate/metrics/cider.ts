/**
 * CIDEr-D (Vedantam et al., 2015) as pycocoevalcap computes it (`pycocoevalcap/cider/cider_scorer.py`):
 *
 * - n-grams of orders 1..4 of whitespace tokens (pass already tokenized text, or a `tokenize` function);
 * - TF-IDF weights tf · (log N − log max(1, df)), where N is the number of segments (images) in the
 *   corpus and df the number of segments whose *references* contain the n-gram: the document frequency
 *   comes from the references of the corpus being scored, so a score depends on the whole corpus and a
 *   one-segment corpus scores 0;
 * - per order, the "D" clipping: Σ min(w_hyp, w_ref) · w_ref over the cosine's numerator;
 * - the Gaussian length penalty exp(−δ² / 2σ²), σ = 6, where δ is the difference of the two sentences'
 *   *bigram* counts (pycocoevalcap's `length` counts bigrams; reproduced as is);
 * - mean over orders, mean over references, × 10.
 */
import { pySplit } from './text';
import { countAllNgrams, type Counts } from './ngrams';
import { formatSignature } from './signature';
import type { Segmentation } from './segment';
import { wordTokens, wordTokensSignature } from './tokenize';

export interface CiderOptions {
  /** Highest n-gram order. Default 4. */
  n?: number;
  /** Length-penalty σ. Default 6. */
  sigma?: number;
  /**
   * Tokens of a sentence: `whitespace` (default; pycocoevalcap's input is PTB-tokenized text), `words`
   * (our multilingual {@link wordTokens}, with ICU segmentation), or a function.
   */
  tokenize?: 'whitespace' | 'words' | ((sentence: string) => string[]);
  /** Segmentation for `words`. Default ICU segmentation (`{}`). */
  segment?: Segmentation;
  /** Recorded in the signature as `tok:` for a tokenize function (default `custom`). */
  tokenizerSignature?: string;
}

export interface CiderResult {
  /** Corpus CIDEr-D: mean of the segment scores. */
  score: number;
  scores: number[];
  signature: string;
}

interface Vec {
  weights: Map<string, number>[];
  norms: number[];
  length: number;
}

/**
 * CIDEr-D of `candidates[i]` against `references[i]` (each at least one reference), document frequencies
 * from all `references`.
 */
export function ciderD(candidates: readonly string[], references: readonly (readonly string[])[], options: CiderOptions = {}): CiderResult {
  const n = options.n ?? 4;
  const sigma = options.sigma ?? 6.0;
  const seg = options.segment === undefined ? {} : options.segment;
  const t = options.tokenize ?? 'whitespace';
  const tokenize = t === 'whitespace' ? pySplit : t === 'words' ? (s: string) => wordTokens(s, { segment: seg }) : t;
  if (candidates.length !== references.length) throw new Error(`${candidates.length} candidates but ${references.length} reference lists`);

  const cooked = (s: string): Counts[] => countAllNgrams(tokenize(s), n);
  const crefs = references.map((refs, i) => {
    if (refs.length === 0) throw new Error(`segment ${i} has no reference`);
    return refs.map(cooked);
  });
  const ctest = candidates.map(cooked);

  // Document frequency: in how many segments' reference sets each n-gram occurs.
  const df: Map<string, number>[] = Array.from({ length: n }, () => new Map());
  for (const refs of crefs) {
    for (let k = 0; k < n; k++) {
      const seen = new Set<string>();
      for (const ref of refs) for (const g of ref[k]!.keys()) seen.add(g);
      const d = df[k]!;
      for (const g of seen) d.set(g, (d.get(g) ?? 0) + 1);
    }
  }
  const logN = Math.log(crefs.length);

  const toVec = (counts: Counts[]): Vec => {
    const weights: Map<string, number>[] = [];
    const norms: number[] = [];
    let length = 0;
    for (let k = 0; k < n; k++) {
      const w = new Map<string, number>();
      let sq = 0;
      const d = df[k]!;
      for (const [g, tf] of counts[k]!) {
        const v = tf * (logN - Math.log(Math.max(1.0, d.get(g) ?? 0)));
        w.set(g, v);
        sq += v ** 2;
        if (k === 1) length += tf;
      }
      weights.push(w);
      norms.push(Math.sqrt(sq));
    }
    return { weights, norms, length };
  };

  const sim = (h: Vec, r: Vec): number[] => {
    const delta = h.length - r.length;
    const penalty = Math.exp(-(delta ** 2) / (2 * sigma ** 2));
    const val: number[] = [];
    for (let k = 0; k < n; k++) {
      let v = 0;
      const rw = r.weights[k]!;
      for (const [g, hv] of h.weights[k]!) {
        const rv = rw.get(g) ?? 0;
        v += Math.min(hv, rv) * rv;
      }
      if (h.norms[k] !== 0 && r.norms[k] !== 0) v /= h.norms[k]! * r.norms[k]!;
      val.push(v * penalty);
    }
    return val;
  };

  const scores: number[] = [];
  for (let i = 0; i < ctest.length; i++) {
    const h = toVec(ctest[i]!);
    const acc = new Array<number>(n).fill(0);
    const refs = crefs[i]!;
    for (const ref of refs) {
      const v = sim(h, toVec(ref));
      for (let k = 0; k < n; k++) acc[k] = acc[k]! + v[k]!;
    }
    let mean = 0;
    for (const a of acc) mean += a;
    mean /= n;
    scores.push((mean / refs.length) * 10.0);
  }
  const score = scores.length ? scores.reduce((a, b) => a + b, 0) / scores.length : 0;
  const tok =
    t === 'whitespace' ? 'whitespace+seg:none' : t === 'words' ? wordTokensSignature({ segment: seg }) : (options.tokenizerSignature ?? 'custom');
  return { score, scores, signature: formatSignature([['metric', 'CIDEr-D'], ['n', n], ['sigma', sigma], ['df', 'corpus-refs'], ['tok', tok]]) };
}
