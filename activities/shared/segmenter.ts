/**
 * Cached Intl.Segmenter instances (one per locale and granularity), shared by the filter operators and
 * the metrics. ICU's dictionaries split Thai, Lao, Khmer, Chinese and Japanese, which have no spaces.
 */
const cache = new Map<string, Intl.Segmenter>();

export function segmenter(locale: string, granularity: 'word' | 'grapheme'): Intl.Segmenter {
  const key = `${granularity}:${locale}`;
  let s = cache.get(key);
  if (s === undefined) {
    let tag = locale;
    try {
      Intl.getCanonicalLocales(locale);
    } catch {
      tag = 'und'; // a malformed tag must not crash a shard: the root locale's rules still segment
    }
    s = new Intl.Segmenter(tag, { granularity });
    cache.set(key, s);
  }
  return s;
}
