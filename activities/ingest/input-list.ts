import { parse as parseCsv } from 'csv-parse';
import fs from 'node:fs';
import readline from 'node:readline';
import { Readable } from 'node:stream';

/** One image-text record of an input list (WIT / LAION-style metadata). */
export interface ImageRecord {
  url: string;
  text: string | null;
  pageUrl: string | null;
  lang: string | null;
  /** Other columns, kept for lineage. */
  extra: Record<string, unknown> | null;
}

export type ListLine =
  | { lineNo: number; record: ImageRecord }
  | { lineNo: number; error: { reason: string; detail: string } };

export type ListFormat = 'jsonl' | 'tsv' | 'csv';

/** The list itself is unusable (missing, unnamed format, no url column, refused by its server): fix the config. */
export class InputListError extends Error {
  override name = 'InputListError';
}

// Column names accepted for each field (img2dataset / LAION / WIT spellings).
const URL_COLUMNS = ['url', 'URL', 'image_url', 'img_url'];
const TEXT_COLUMNS = ['text', 'TEXT', 'caption', 'alt', 'alt_text', 'caption_reference_description'];
const PAGE_COLUMNS = ['page_url', 'pageUrl', 'page', 'source_url'];
const LANG_COLUMNS = ['lang', 'language', 'LANGUAGE'];

export function inferFormat(location: string, explicit?: ListFormat): ListFormat {
  if (explicit) return explicit;
  const name = location.toLowerCase().replace(/[?#].*$/, '');
  if (name.endsWith('.jsonl') || name.endsWith('.ndjson') || name.endsWith('.json')) return 'jsonl';
  if (name.endsWith('.tsv')) return 'tsv';
  if (name.endsWith('.csv')) return 'csv';
  throw new InputListError(`cannot tell the format of ${location} from its name; set "format: jsonl|tsv|csv" on the input`);
}

async function open(location: string): Promise<Readable> {
  if (/^https?:\/\//.test(location)) {
    const res = await fetch(location);
    // A 4xx is a wrong address; a 5xx or a network error may pass, so those stay ordinary (retried) errors.
    if (res.status >= 400 && res.status < 500) throw new InputListError(`input list ${location}: HTTP ${res.status}`);
    if (!res.ok || !res.body) throw new Error(`input list ${location}: HTTP ${res.status}`);
    return Readable.fromWeb(res.body as never);
  }
  if (!fs.existsSync(location)) throw new InputListError(`input list ${location} does not exist`);
  return fs.createReadStream(location);
}

function pick(row: Record<string, unknown>, names: string[]): { name?: string; value: unknown } {
  for (const name of names) if (name in row) return { name, value: row[name] };
  return { value: undefined };
}

/** Turns one parsed row into a record or a reasoned error. */
export function toRecord(row: unknown): ImageRecord | { reason: string; detail: string } {
  if (!row || typeof row !== 'object' || Array.isArray(row)) return { reason: 'malformed_line', detail: 'not an object' };
  const r = row as Record<string, unknown>;
  const url = pick(r, URL_COLUMNS);
  if (typeof url.value !== 'string' || url.value.trim() === '') {
    return { reason: 'missing_url', detail: `no ${URL_COLUMNS.join('/')} value` };
  }
  const text = pick(r, TEXT_COLUMNS);
  const page = pick(r, PAGE_COLUMNS);
  const lang = pick(r, LANG_COLUMNS);
  const used = new Set([url.name, text.name, page.name, lang.name]);
  const extraEntries = Object.entries(r).filter(([k]) => !used.has(k));
  const str = (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? v : typeof v === 'number' ? String(v) : null);
  return {
    url: url.value.trim(),
    text: str(text.value),
    pageUrl: str(page.value),
    lang: str(lang.value),
    extra: extraEntries.length ? Object.fromEntries(extraEntries) : null,
  };
}

/**
 * Streams an input list line by line (memory does not grow with the list). Every line yields a record
 * or an error with its line number; a bad line never stops the rest. Header rows of TSV/CSV are line 1.
 */
export async function* readInputList(location: string, format: ListFormat): AsyncGenerator<ListLine> {
  const stream = await open(location);
  if (format === 'jsonl') {
    const lines = readline.createInterface({ input: stream, crlfDelay: Infinity });
    let lineNo = 0;
    for await (const line of lines) {
      lineNo++;
      if (line.trim() === '') continue;
      let row: unknown;
      try {
        row = JSON.parse(line);
      } catch (err) {
        yield { lineNo, error: { reason: 'malformed_line', detail: `invalid JSON: ${(err as Error).message}` } };
        continue;
      }
      const rec = toRecord(row);
      yield 'reason' in rec ? { lineNo, error: rec } : { lineNo, record: rec };
    }
    return;
  }
  const parser = stream.pipe(
    parseCsv({
      delimiter: format === 'tsv' ? '\t' : ',',
      // TSV lists (img2dataset, LAION exports) do not quote; CSV does.
      quote: format === 'tsv' ? false : '"',
      columns: (header: string[]) => header.map((h) => h.trim()),
      bom: true,
      info: true,
      skip_empty_lines: true,
      skip_records_with_error: true,
      relax_column_count: false,
    }),
  );
  const skipped: ListLine[] = [];
  parser.on('skip', (err: Error & { lines?: number }) => {
    skipped.push({ lineNo: err.lines ?? 0, error: { reason: 'malformed_line', detail: err.message } });
  });
  let sawHeader = false;
  for await (const { record, info } of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
    while (skipped.length) yield skipped.shift()!;
    if (!sawHeader) {
      sawHeader = true;
      if (!URL_COLUMNS.some((c) => c in record)) {
        throw new InputListError(`input list ${location} has no url column (header needs one of ${URL_COLUMNS.join(', ')})`);
      }
    }
    const rec = toRecord(record);
    yield 'reason' in rec ? { lineNo: info.lines, error: rec } : { lineNo: info.lines, record: rec };
  }
  while (skipped.length) yield skipped.shift()!;
}

/** Normalized URL used as the dedup key: scheme and host lower-cased, default port and fragment dropped. */
export function urlKey(url: string): string {
  try {
    const u = new URL(url);
    u.hash = '';
    return u.toString();
  } catch {
    return url.trim();
  }
}
