/**
 * N-gram counting with string keys (tokens joined by one space: the tokens come out of a whitespace
 * split, so they never hold a space and the key is unambiguous). One map per order keeps the order
 * implicit in where an n-gram is stored, as a Python tuple's length does in sacrebleu.
 */

export type Counts = Map<string, number>;

/** Counts of the n-grams of one order. */
export function countNgrams(tokens: readonly string[], n: number): Counts {
  const counts: Counts = new Map();
  const last = tokens.length - n;
  if (n === 1) {
    for (const t of tokens) counts.set(t, (counts.get(t) ?? 0) + 1);
    return counts;
  }
  for (let i = 0; i <= last; i++) {
    let key = tokens[i]!;
    for (let k = 1; k < n; k++) key += ' ' + tokens[i + k]!;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

/** Counts for every order 1..maxOrder, index `n - 1`. */
export function countAllNgrams(tokens: readonly string[], maxOrder: number): Counts[] {
  const out: Counts[] = [];
  for (let n = 1; n <= maxOrder; n++) out.push(countNgrams(tokens, n));
  return out;
}

/** Σ min(hyp[g], ref[g]) over the hypothesis n-grams (clipped matches). */
export function clippedMatches(hyp: Counts, ref: Counts): number {
  let m = 0;
  for (const [g, c] of hyp) {
    const r = ref.get(g);
    if (r !== undefined) m += c < r ? c : r;
  }
  return m;
}

/** Σ counts. */
export function totalCount(counts: Counts): number {
  let t = 0;
  for (const c of counts.values()) t += c;
  return t;
}
