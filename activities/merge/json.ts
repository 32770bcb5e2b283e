/**
 * Canonical JSON for the exported files: object keys sorted (by UTF-16 code units, as
 * `Array.prototype.sort` does), no whitespace, what `JSON.stringify` does for everything else
 * (`toJSON` honoured, undefined members dropped, non-finite numbers as null, lone surrogates escaped).
 * The same value always gives the same bytes, whatever order its keys were inserted in.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value, new Set())) ?? 'null';
}

function sortKeys(value: unknown, stack: Set<object>): unknown {
  if (value === null || typeof value !== 'object') return typeof value === 'bigint' ? value.toString() : value;
  const withToJson = value as { toJSON?: () => unknown };
  if (typeof withToJson.toJSON === 'function') return sortKeys(withToJson.toJSON(), stack);
  if (stack.has(value)) throw new TypeError('canonicalJson: circular structure');
  stack.add(value);
  try {
    if (Array.isArray(value)) return value.map((v) => (v === undefined || typeof v === 'function' || typeof v === 'symbol' ? null : sortKeys(v, stack)));
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      const v = (value as Record<string, unknown>)[key];
      if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
      out[key] = sortKeys(v, stack);
    }
    return out;
  } finally {
    stack.delete(value);
  }
}
