/**
 * METEOR, our variant: Meteor 1.5's scoring (Denkowski & Lavie 2014) over an alignment built by the
 * **exact** matching module only.
 *
 * Modules: Meteor 1.5 (the one coco-caption runs) aligns with four modules — exact, stem (Snowball),
 * synonym (WordNet) and paraphrase (a phrase table) — for English. Stems, WordNet and paraphrase tables
 * do not exist for most of the languages this project evaluates, and shipping them is out of scope, so
 * this variant has the exact module only: a match is two identical tokens (after NFC + lowercasing).
 * On English captions it is therefore ≤ coco-caption's METEOR whenever stems/synonyms/paraphrases
 * would have matched; where they would not, it reproduces Meteor 1.5 exactly (see docs/metrics.md).
 *
 * Alignment: the one-to-one alignment with the most matches and, among those, the fewest chunks (a chunk
 * is a run of matches adjacent and in the same order in both sentences), found by an exhaustive
 * branch-and-bound search (Meteor uses a beam search with the same objective).
 *
 * Scoring, with parameters α, β, γ, δ and function words F (with our language lists, tokens made only of
 * punctuation/symbols are function words too; Meteor's own English list holds some ASCII punctuation):
 *   P = (δ·content matches_h + (1−δ)·function matches_h) / (δ·content words_h + (1−δ)·function words_h)
 *   R = the same on the reference side
 *   Fmean = P·R / (α·P + (1−α)·R)
 *   frag = chunks / ((matches_h + matches_r) / 2), 0 when both sentences are fully matched in one chunk
 *   score = Fmean · (1 − γ·frag^β)
 * Against several references the best-scoring reference's statistics are kept. A corpus score is
 * computed from the summed statistics of the segments (Meteor's `EVAL`, which coco-caption reports),
 * not from the mean of segment scores; a perfectly matched segment adds no chunk to that sum.
 *
 * Parameters: English uses Meteor 1.5's English ranking parameters (α 0.85, β 0.20, γ 0.60, δ 0.75);
 * other languages Meteor Universal's language-independent ones (α 0.70, β 1.40, γ 0.30, δ 0.70).
 */
import { functionWords, primaryLanguage } from './function-words';
import type { Segmentation } from './segment';
import { formatSignature } from './signature';
import { pySplit } from './text';
import { wordTokens, wordTokensSignature } from './tokenize';

export interface MeteorParams {
  alpha: number;
  beta: number;
  gamma: number;
  delta: number;
}

export const METEOR_PARAMS_EN: Readonly<MeteorParams> = { alpha: 0.85, beta: 0.2, gamma: 0.6, delta: 0.75 };
export const METEOR_PARAMS_UNIVERSAL: Readonly<MeteorParams> = { alpha: 0.7, beta: 1.4, gamma: 0.3, delta: 0.7 };

export interface MeteorOptions {
  /** Language: picks parameters and function words. Default `en`. */
  lang?: string;
  /** Overrides the language's parameters. */
  params?: MeteorParams;
  /** Replaces the language's function words (lowercase tokens), used as given: no punctuation rule. */
  functionWords?: ReadonlySet<string>;
  /**
   * `normalize` (default): NFC, lowercase, punctuation split into tokens, ICU segmentation of no-space
   * scripts (Meteor's `-norm`, extended to every script). `whitespace`: the text is already tokenized
   * and lowercased; split on whitespace only (Meteor without `-norm`).
   */
  tokenize?: 'normalize' | 'whitespace';
  /** Segmentation when normalizing. Default ICU segmentation (`{}`). */
  segment?: Segmentation;
}

/** Meteor's sufficient statistics of one (hypothesis, reference) pair; they add up over a corpus. */
export interface MeteorStats {
  testLength: number;
  refLength: number;
  testFunctionWords: number;
  refFunctionWords: number;
  testContentMatches: number;
  refContentMatches: number;
  testFunctionMatches: number;
  refFunctionMatches: number;
  chunks: number;
  testWordMatches: number;
  refWordMatches: number;
}

export interface MeteorScore {
  score: number;
  precision: number;
  recall: number;
  fmean: number;
  fragPenalty: number;
  stats: MeteorStats;
}

const PUNCT_ONLY = /^[\p{P}\p{S}]+$/u;

/** A function word of the set, or a token made only of punctuation/symbols (the default languages' rule). */
export function isFunctionToken(token: string, fw: ReadonlySet<string>): boolean {
  return fw.has(token) || PUNCT_ONLY.test(token);
}

/** Decides whether a token is a function word. */
export type FunctionWordTest = (token: string) => boolean;

/** Upper bound on search nodes per alignment; past it the best alignment found so far is used. */
const SEARCH_LIMIT = 200_000;

/**
 * Exact-module alignment: pairs `[i, j]` (hypothesis index, reference index), with the most matches and
 * the fewest chunks.
 */
export function alignExact(hyp: readonly string[], ref: readonly string[]): { pairs: Array<[number, number]>; chunks: number } {
  const positions = new Map<string, number[]>();
  ref.forEach((w, j) => {
    const p = positions.get(w);
    if (p) p.push(j);
    else positions.set(w, [j]);
  });
  const hypCount = new Map<string, number>();
  for (const w of hyp) if (positions.has(w)) hypCount.set(w, (hypCount.get(w) ?? 0) + 1);
  // How many hypothesis occurrences of each word may stay unmatched in a maximum alignment.
  const skips = new Map<string, number>();
  for (const [w, c] of hypCount) skips.set(w, Math.max(0, c - positions.get(w)!.length));

  const used = new Uint8Array(ref.length);
  const assign = new Int32Array(hyp.length).fill(-1);
  let best: Int32Array | undefined;
  let bestChunks = Infinity;
  let nodes = 0;

  const search = (i: number, prevJ: number, chunks: number): void => {
    if (chunks >= bestChunks || nodes > SEARCH_LIMIT) return;
    nodes++;
    if (i === hyp.length) {
      bestChunks = chunks;
      best = assign.slice();
      return;
    }
    const w = hyp[i]!;
    const cands = positions.get(w);
    if (!cands) {
      assign[i] = -1;
      search(i + 1, -1, chunks);
      return;
    }
    // Continuing the current chunk first finds a good bound early.
    const next = prevJ >= 0 && prevJ + 1 < ref.length && !used[prevJ + 1] && ref[prevJ + 1] === w ? prevJ + 1 : -1;
    if (next >= 0) {
      used[next] = 1;
      assign[i] = next;
      search(i + 1, next, chunks);
      used[next] = 0;
    }
    for (const j of cands) {
      if (used[j] || j === next) continue;
      used[j] = 1;
      assign[i] = j;
      search(i + 1, j, chunks + 1);
      used[j] = 0;
    }
    const s = skips.get(w)!;
    if (s > 0) {
      skips.set(w, s - 1);
      assign[i] = -1;
      search(i + 1, -1, chunks);
      skips.set(w, s);
    }
  };
  search(0, -1, 0);

  const pairs: Array<[number, number]> = [];
  if (best) best.forEach((j, i) => j >= 0 && pairs.push([i, j]));
  return { pairs, chunks: best ? bestChunks : 0 };
}

/** Meteor statistics of token sequences. */
export function meteorStats(hyp: readonly string[], ref: readonly string[], isFunction: FunctionWordTest): MeteorStats {
  const { pairs, chunks } = alignExact(hyp, ref);
  let testFunctionWords = 0;
  let refFunctionWords = 0;
  for (const t of hyp) if (isFunction(t)) testFunctionWords++;
  for (const t of ref) if (isFunction(t)) refFunctionWords++;
  let testFunctionMatches = 0;
  let refFunctionMatches = 0;
  for (const [i, j] of pairs) {
    if (isFunction(hyp[i]!)) testFunctionMatches++;
    if (isFunction(ref[j]!)) refFunctionMatches++;
  }
  return {
    testLength: hyp.length,
    refLength: ref.length,
    testFunctionWords,
    refFunctionWords,
    testContentMatches: pairs.length - testFunctionMatches,
    refContentMatches: pairs.length - refFunctionMatches,
    testFunctionMatches,
    refFunctionMatches,
    chunks,
    testWordMatches: pairs.length,
    refWordMatches: pairs.length,
  };
}

/** Meteor 1.5's score from statistics (one segment's or a corpus' sum). */
export function meteorFromStats(s: MeteorStats, p: MeteorParams): MeteorScore {
  const { alpha, beta, gamma, delta } = p;
  const testWeighted = delta * (s.testLength - s.testFunctionWords) + (1 - delta) * s.testFunctionWords;
  const refWeighted = delta * (s.refLength - s.refFunctionWords) + (1 - delta) * s.refFunctionWords;
  const testMatched = delta * s.testContentMatches + (1 - delta) * s.testFunctionMatches;
  const refMatched = delta * s.refContentMatches + (1 - delta) * s.refFunctionMatches;
  const precision = testWeighted > 0 ? testMatched / testWeighted : 0;
  const recall = refWeighted > 0 ? refMatched / refWeighted : 0;
  if (precision === 0 || recall === 0) return { score: 0, precision, recall, fmean: 0, fragPenalty: 0, stats: s };
  const fmean = (precision * recall) / (alpha * precision + (1 - alpha) * recall);
  const perfect = isPerfectMatch(s);
  const frag = perfect ? 0 : s.chunks / ((s.testWordMatches + s.refWordMatches) / 2);
  const fragPenalty = gamma * frag ** beta;
  return { score: fmean * (1 - fragPenalty), precision, recall, fmean, fragPenalty, stats: s };
}

/** The resolved configuration of a METEOR computation. */
export class Meteor {
  readonly params: MeteorParams;
  readonly functionWords: ReadonlySet<string>;
  /** Language lists plus "punctuation is a function word"; a caller's list is used exactly as given. */
  readonly isFunction: FunctionWordTest;
  private readonly options: MeteorOptions;

  constructor(options: MeteorOptions = {}) {
    this.options = options;
    const lang = primaryLanguage(options.lang ?? 'en');
    this.params = options.params ?? (lang === 'en' ? METEOR_PARAMS_EN : METEOR_PARAMS_UNIVERSAL);
    this.functionWords = options.functionWords ?? functionWords(lang);
    const fw = this.functionWords;
    this.isFunction = options.functionWords ? (t) => fw.has(t) : (t) => isFunctionToken(t, fw);
  }

  tokens(text: string): string[] {
    if (this.options.tokenize === 'whitespace') return pySplit(text);
    return wordTokens(text, { keepPunctuation: true, segment: this.options.segment === undefined ? {} : this.options.segment });
  }

  /** Best-reference score of one segment. */
  segment(hypothesis: string, references: readonly string[]): MeteorScore {
    if (references.length === 0) throw new Error('METEOR needs at least one reference');
    const h = this.tokens(hypothesis);
    let best: MeteorScore | undefined;
    for (const r of references) {
      const s = meteorFromStats(meteorStats(h, this.tokens(r), this.isFunction), this.params);
      if (!best || s.score > best.score) best = s;
    }
    return best!;
  }

  /** Corpus METEOR from summed best-reference statistics, and the segment scores. */
  corpus(hypotheses: readonly string[], references: readonly (readonly string[])[]): { score: number; segments: MeteorScore[]; signature: string } {
    if (hypotheses.length !== references.length) throw new Error(`${hypotheses.length} hypotheses but ${references.length} reference lists`);
    const segments = hypotheses.map((h, i) => this.segment(h, references[i]!));
    const sum = emptyMeteorStats();
    for (const seg of segments) addMeteorStats(sum, seg.stats);
    return { score: meteorFromStats(sum, this.params).score, segments, signature: this.signature() };
  }

  signature(): string {
    const p = this.params;
    const tok =
      this.options.tokenize === 'whitespace'
        ? 'whitespace+seg:none'
        : wordTokensSignature({ keepPunctuation: true, segment: this.options.segment === undefined ? {} : this.options.segment });
    return formatSignature([
      ['metric', 'METEOR'],
      ['modules', 'exact'],
      ['params', [p.alpha, p.beta, p.gamma, p.delta].map((x) => x.toFixed(2)).join(',')],
      ['fw', this.options.functionWords ? 'custom' : primaryLanguage(this.options.lang ?? 'en')],
      ['tok', tok],
    ]);
  }
}

/** True when both sentences are matched word for word in one chunk (Meteor sets the fragmentation to 0). */
export function isPerfectMatch(s: MeteorStats): boolean {
  return s.testWordMatches === s.testLength && s.refWordMatches === s.refLength && s.chunks === 1;
}

/**
 * Adds a segment's statistics to a corpus sum, as Meteor's `EVAL` does: a perfectly matched segment
 * adds no chunk (its fragmentation is 0, and so is its share of the corpus fragmentation).
 */
export function addMeteorStats(sum: MeteorStats, s: MeteorStats): MeteorStats {
  const perfect = isPerfectMatch(s);
  for (const k of Object.keys(sum) as (keyof MeteorStats)[]) sum[k] += k === 'chunks' && perfect ? 0 : s[k];
  return sum;
}

/** All-zero statistics (the start of a corpus sum). */
export function emptyMeteorStats(): MeteorStats {
  return {
    testLength: 0,
    refLength: 0,
    testFunctionWords: 0,
    refFunctionWords: 0,
    testContentMatches: 0,
    refContentMatches: 0,
    testFunctionMatches: 0,
    refFunctionMatches: 0,
    chunks: 0,
    testWordMatches: 0,
    refWordMatches: 0,
  };
}

/** METEOR of one hypothesis against its references (best reference). */
export function sentenceMeteor(hypothesis: string, references: readonly string[], options: MeteorOptions = {}): MeteorScore {
  return new Meteor(options).segment(hypothesis, references);
}

/** Corpus METEOR (Meteor `EVAL` semantics: score of the summed statistics). */
export function corpusMeteor(hypotheses: readonly string[], references: readonly (readonly string[])[], options: MeteorOptions = {}) {
  return new Meteor(options).corpus(hypotheses, references);
}
