/**
 * WARC input for the crawl stage (no browser): HTML pages out of WARC / WARC.gz files as Common Crawl
 * and web archivers write them, local or streamed over http(s). Parsing is warcio's (`WARCParser`:
 * WARC and HTTP headers, gzip members or whole-file gzip); body decoding, truncation checks and
 * charset decoding are done here so that every record ends either as a page or as a counted skip
 * reason, never a crash and never an endless loop (docs/crawl.md, "WARC input").
 *
 * Invariant: `stats.records === stats.html + sum(stats.skipped)`. When reading stops before the end of
 * the input, `stats.ended` says why (`truncated_record`, `malformed_record`, `read_error`).
 */
import fs from 'node:fs';
import zlib from 'node:zlib';
import iconv from 'iconv-lite';
import { LimitReader, WARCParser, type WARCRecord } from 'warcio';
import { detectCharset } from './charset-detect';
import { extractImages, type ExtractOptions, type PageExtraction } from './extract-images';

// ---------------------------------------------------------------------------------------------------
// Types

export type CharsetSource = 'bom' | 'http' | 'meta' | 'xml' | 'detected' | 'fallback' | 'guessed' | 'default';

export interface WarcHtmlPage {
  /** WARC-Target-URI. */
  targetUri: string;
  /** WARC-Date (ISO 8601 as written), null when absent. */
  warcDate: string | null;
  httpStatus: number;
  /** The decoded document. */
  html: string;
  /** The iconv-lite encoding used (`utf-8`, `windows-1251`, `cp949`...). */
  charset: string;
  charsetSource: CharsetSource;
  /** The HTTP Content-Type header, as written. */
  contentType: string | null;
  /** The HTTP Content-Language header. */
  contentLanguage: string | null;
  /** WARC-Record-ID (`<urn:uuid:...>`). */
  recordId: string | null;
  /** Offset of the record in the input (compressed offset for .warc.gz); a resume cursor. */
  offset: number;
  /** The WARC-Truncated header (`length`, `time`...) when the archiver cut the capture; null otherwise. */
  warcTruncated: string | null;
  /** Size of the decoded body in bytes. */
  bodyBytes: number;
}

export type WarcSkipReason =
  | 'not_response'
  | 'missing_target_uri'
  | 'unsupported_scheme'
  | 'malformed_http'
  | `http_${number}`
  | 'not_html'
  | 'empty_body'
  | 'too_large'
  | 'truncated_body'
  | 'warc_truncated'
  | 'unsupported_content_encoding'
  | 'content_decode_error'
  | 'chunked_decode_error'
  | 'truncated_record'
  | 'malformed_record'
  | 'read_error';

export interface WarcStats {
  /** WARC records read (every one is either `html` or under `skipped`). */
  records: number;
  /** HTML pages yielded. */
  html: number;
  skipped: Partial<Record<WarcSkipReason, number>>;
  /** Records by WARC-Type (`warcinfo`, `request`, `response`, `revisit`, `metadata`...). */
  types: Record<string, number>;
  /** Notes on yielded pages that are not skips: `content_encoding_ignored` (body was not encoded as declared), `invalid_utf8`, `unknown_charset`, `charset_detected` / `charset_guessed` (undeclared, decoded by detection). */
  notes: Record<string, number>;
  /** Why reading stopped before the end of the input; null when the input was read to its end. */
  ended: { reason: WarcSkipReason; detail: string } | null;
}

export interface WarcReadOptions {
  /** Largest raw or decoded body kept (default 10 MiB); larger records are skipped as `too_large`. */
  maxBodyBytes?: number;
  /** Charset for undeclared bodies that are not valid UTF-8 and that detection cannot place in `language` (e.g. `windows-1251` for a Russian crawl). */
  fallbackCharset?: string;
  /** The crawl's target language: charset detection prefers an encoding whose model reads as this language. */
  language?: string;
  /** Skip records carrying WARC-Truncated (default false: they are kept and flagged, see docs/crawl.md). */
  skipWarcTruncated?: boolean;
  /** For http(s) sources. */
  fetch?: typeof fetch;
  userAgent?: string;
  signal?: AbortSignal;
}

export interface WarcPageStream extends AsyncIterable<WarcHtmlPage> {
  /** Live counters; final once iteration has finished. The stream can be iterated once. */
  readonly stats: WarcStats;
}

/** The source itself could not be opened (missing file, HTTP error on the WARC URL). */
export class WarcSourceError extends Error {
  constructor(
    readonly source: string,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'WarcSourceError';
  }
}

export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

export function createWarcStats(): WarcStats {
  return { records: 0, html: 0, skipped: {}, types: {}, notes: {}, ended: null };
}

// ---------------------------------------------------------------------------------------------------
// Charsets

/** WHATWG Encoding Standard labels whose decoder differs from the same-named iconv-lite codec, or that iconv-lite lacks. */
const CHARSET_ALIASES: Record<string, string> = {
  'unicode-1-1-utf-8': 'utf-8',
  utf8: 'utf-8',
  'us-ascii': 'windows-1252',
  ascii: 'windows-1252',
  'iso-8859-1': 'windows-1252',
  'iso8859-1': 'windows-1252',
  iso_8859_1: 'windows-1252',
  'iso_8859-1': 'windows-1252',
  latin1: 'windows-1252',
  l1: 'windows-1252',
  cp1252: 'windows-1252',
  'x-cp1252': 'windows-1252',
  'iso-8859-9': 'windows-1254',
  latin5: 'windows-1254',
  'tis-620': 'windows-874',
  'iso-8859-11': 'windows-874',
  'dos-874': 'windows-874',
  'euc-kr': 'cp949',
  'ks_c_5601-1987': 'cp949',
  ksc5601: 'cp949',
  korean: 'cp949',
  'windows-949': 'cp949',
  gb2312: 'gb18030',
  gbk: 'gb18030',
  'x-gbk': 'gb18030',
  chinese: 'gb18030',
  csgb2312: 'gb18030',
  shift_jis: 'cp932',
  sjis: 'cp932',
  'x-sjis': 'cp932',
  ms_kanji: 'cp932',
  'windows-31j': 'cp932',
  big5: 'big5hkscs',
  'x-x-big5': 'big5hkscs',
  'x-cp1251': 'windows-1251',
  'x-user-defined': 'windows-1252',
};

/** An iconv-lite encoding name for a charset label, or null when the label is unknown. */
export function resolveCharset(label: string | null | undefined): string | null {
  if (!label) return null;
  const l = label.trim().replace(/^["']|["']$/g, '').toLowerCase();
  if (l === '') return null;
  const mapped = CHARSET_ALIASES[l] ?? l;
  return iconv.encodingExists(mapped) ? mapped : null;
}

/** `text/html; charset="windows-1251"` -> `windows-1251`. */
export function charsetFromContentType(contentType: string | null | undefined): string | null {
  if (!contentType) return null;
  const m = /;\s*charset\s*=\s*("([^"]*)"|'([^']*)'|[^;\s]+)/i.exec(contentType);
  if (!m) return null;
  return (m[2] ?? m[3] ?? m[1] ?? '').trim() || null;
}

/** The charset declared by `<meta charset>`, `<meta http-equiv=Content-Type content=...charset=>` or an XML declaration in the first 4 KiB. */
export function sniffDeclaredCharset(bytes: Uint8Array): { label: string; source: 'meta' | 'xml' } | null {
  const head = Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.byteLength, 4096)).toString('latin1');
  const withoutComments = head.replace(/<!--[\s\S]*?-->/g, '');
  for (const m of withoutComments.matchAll(/<meta\b[^>]*>/gi)) {
    const tag = m[0];
    const direct = /\bcharset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)/i.exec(tag);
    if (direct?.[1]) return { label: direct[1], source: 'meta' };
  }
  const xml = /^\s*<\?xml[^>]*\bencoding\s*=\s*["']([A-Za-z0-9._:-]+)["']/i.exec(withoutComments);
  if (xml?.[1]) return { label: xml[1], source: 'xml' };
  return null;
}

function isValidUtf8(bytes: Uint8Array): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

export interface DecodedHtml {
  html: string;
  charset: string;
  charsetSource: CharsetSource;
  /** Labels that were declared but are unknown to iconv-lite (they were passed over). */
  unknownLabels: string[];
  /** The UTF-8 default was used on bytes that are not valid UTF-8. */
  invalidUtf8: boolean;
  /** jschardet's confidence, when the charset was detected or guessed. */
  confidence?: number;
}

/**
 * Decode an HTML body: a byte-order mark wins; then the HTTP charset; then `<meta>` (a declared
 * UTF-16 in an ASCII-compatible prescan means UTF-8, as the HTML standard says); then an XML
 * declaration; then UTF-8 when the bytes are valid UTF-8; else statistical detection (charset-detect.ts)
 * of an encoding that reads as the target `language`; else `fallbackCharset` when given; else
 * detection's best guess in any language when confident enough; else UTF-8 with replacement
 * characters. Labels map to decoders as the WHATWG Encoding Standard does (`iso-8859-1` is
 * windows-1252, `tis-620` is windows-874, `euc-kr` is cp949, `gb2312` is gb18030).
 */
export function decodeHtmlBody(bytes: Uint8Array, contentType: string | null, options: { fallbackCharset?: string; language?: string } = {}): DecodedHtml {
  const unknownLabels: string[] = [];
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const done = (charset: string, charsetSource: CharsetSource, invalidUtf8 = false, confidence?: number): DecodedHtml => ({
    html: iconv.decode(buf, charset, { stripBOM: true }),
    charset,
    charsetSource,
    unknownLabels,
    invalidUtf8,
    ...(confidence !== undefined ? { confidence } : {}),
  });
  if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) return done('utf-8', 'bom');
  if (buf[0] === 0xfe && buf[1] === 0xff) return done('utf-16be', 'bom');
  if (buf[0] === 0xff && buf[1] === 0xfe) return done('utf-16le', 'bom');
  const httpLabel = charsetFromContentType(contentType);
  if (httpLabel) {
    const c = resolveCharset(httpLabel);
    if (c) return done(c, 'http');
    unknownLabels.push(httpLabel);
  }
  const declared = sniffDeclaredCharset(bytes);
  if (declared) {
    let c = resolveCharset(declared.label);
    if (c && /^utf-?16/i.test(c)) c = 'utf-8';
    if (c) return done(c, declared.source);
    unknownLabels.push(declared.label);
  }
  if (isValidUtf8(bytes)) return done('utf-8', 'default');
  const detected = detectCharset(bytes, options.language, resolveCharset);
  if (detected.forTarget) return done(detected.forTarget.charset, 'detected', false, detected.forTarget.confidence);
  const fb = resolveCharset(options.fallbackCharset);
  if (fb) return done(fb, 'fallback');
  if (detected.bestGuess) return done(detected.bestGuess.charset, 'guessed', false, detected.bestGuess.confidence);
  return done('utf-8', 'default', true);
}

// ---------------------------------------------------------------------------------------------------
// HTTP body decoding

class BodyError extends Error {
  constructor(
    readonly reason: WarcSkipReason,
    message: string,
  ) {
    super(message);
  }
}

/** Undo `Transfer-Encoding: chunked`. A body that does not start with a chunk-size line is returned as is (archivers often store it de-chunked). */
export function dechunk(body: Buffer): { body: Buffer; wasChunked: boolean } {
  const first = /^([0-9a-fA-F]+)[ \t]*(;[^\r\n]*)?\r?\n/.exec(body.subarray(0, 256).toString('latin1'));
  if (!first) return { body, wasChunked: false };
  const parts: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const lineEnd = body.indexOf(0x0a, pos);
    if (lineEnd < 0) {
      if (pos >= body.length) break; // ended without the last-chunk: accept what arrived
      throw new BodyError('chunked_decode_error', `chunk-size line without end at ${pos}`);
    }
    const line = body.subarray(pos, lineEnd).toString('latin1').trim();
    const m = /^([0-9a-fA-F]+)\s*(;.*)?$/.exec(line);
    if (!m) throw new BodyError('chunked_decode_error', `bad chunk-size line ${JSON.stringify(line.slice(0, 40))} at ${pos}`);
    const size = parseInt(m[1]!, 16);
    pos = lineEnd + 1;
    if (size === 0) break;
    if (pos + size > body.length) throw new BodyError('truncated_body', `chunk of ${size} bytes has ${body.length - pos}`);
    parts.push(body.subarray(pos, pos + size));
    pos += size;
    if (body[pos] === 0x0d) pos++;
    if (body[pos] === 0x0a) pos++;
  }
  return { body: Buffer.concat(parts), wasChunked: true };
}

/**
 * Undo Content-Encoding (gzip, x-gzip, deflate, br; comma lists applied in reverse). A body that is
 * not actually encoded as declared (no gzip magic, for instance) is returned as is and `ignored` is
 * set. With `partial`, a cut-off stream yields what it holds (for WARC-Truncated records).
 */
export function decodeContentEncoding(body: Buffer, contentEncoding: string | null, maxBytes: number, partial = false): { body: Buffer; ignored: boolean } {
  if (!contentEncoding) return { body, ignored: false };
  let ignored = false;
  const codings = contentEncoding.toLowerCase().split(',').map((c) => c.trim()).filter((c) => c !== '' && c !== 'identity' && c !== 'none');
  let out = body;
  for (const coding of codings.reverse()) {
    const flush = partial ? { finishFlush: zlib.constants.Z_SYNC_FLUSH } : {};
    try {
      if (coding === 'gzip' || coding === 'x-gzip') {
        if (!(out[0] === 0x1f && out[1] === 0x8b)) {
          ignored = true;
          continue;
        }
        out = zlib.gunzipSync(out, { maxOutputLength: maxBytes, ...flush });
      } else if (coding === 'deflate') {
        try {
          out = zlib.inflateSync(out, { maxOutputLength: maxBytes, ...flush });
        } catch (e) {
          if ((e as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw e;
          out = zlib.inflateRawSync(out, { maxOutputLength: maxBytes, ...flush });
        }
      } else if (coding === 'br') {
        out = zlib.brotliDecompressSync(out, { maxOutputLength: maxBytes, ...(partial ? { finishFlush: zlib.constants.BROTLI_OPERATION_FLUSH } : {}) });
      } else {
        throw new BodyError('unsupported_content_encoding', `content-encoding ${coding}`);
      }
    } catch (e) {
      if (e instanceof BodyError) throw e;
      const code = (e as { code?: string }).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') throw new BodyError('too_large', `decoded body over ${maxBytes} bytes`);
      if (code === 'Z_BUF_ERROR' || code === 'ERR__ERROR_FORMAT_PADDING_1') throw new BodyError('truncated_body', `${coding}: ${(e as Error).message}`);
      throw new BodyError('content_decode_error', `${coding}: ${(e as Error).message}`);
    }
  }
  return { body: out, ignored };
}

function mediaType(contentType: string | null): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}

const HTML_TYPES = new Set(['text/html', 'application/xhtml+xml']);

/** Untyped bodies count as HTML when they start (after whitespace, a BOM or comments) with `<!doctype html` or `<html`. */
function sniffHtml(body: Buffer): boolean {
  const head = body.subarray(0, 1024).toString('latin1').replace(/^\xef\xbb\xbf/, '').replace(/<!--[\s\S]*?-->/g, '').trimStart().toLowerCase();
  return head.startsWith('<!doctype html') || head.startsWith('<html');
}

// ---------------------------------------------------------------------------------------------------
// Reading

async function openSource(source: string, options: WarcReadOptions): Promise<AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>> {
  if (/^https?:\/\//i.test(source)) {
    let res: Response;
    try {
      res = await (options.fetch ?? fetch)(source, {
        headers: { 'user-agent': options.userAgent ?? 'mella-data-engine/0.1 (WARC reader)' },
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (e) {
      const err = e as Error & { cause?: { code?: string } };
      throw new WarcSourceError(source, err.cause?.code ?? 'network_error', `cannot fetch ${source}: ${err.cause?.code ?? err.message}`);
    }
    if (!res.ok || !res.body) {
      await res.body?.cancel();
      throw new WarcSourceError(source, `http_${res.status}`, `cannot fetch ${source}: HTTP ${res.status}`);
    }
    return res.body;
  }
  const path = source.startsWith('file://') ? new URL(source) : source;
  try {
    await fs.promises.access(path, fs.constants.R_OK);
  } catch (e) {
    throw new WarcSourceError(source, (e as { code?: string }).code ?? 'unreadable', `cannot read ${source}: ${(e as Error).message}`);
  }
  return fs.createReadStream(path, { highWaterMark: 256 * 1024 });
}

interface Drained {
  body: Buffer | null;
  size: number;
  /** Bytes the record still promised when the input ended (0 when complete). */
  missing: number;
}

/**
 * Read a record's remaining block through its LimitReader (never warcio's skipFully, which does not
 * return when the input ends inside a record). Bytes beyond `keepMax` are counted, not kept.
 */
async function drain(record: WARCRecord, keep: boolean, keepMax: number): Promise<Drained> {
  const reader = record.reader;
  const chunks: Uint8Array[] = [];
  let size = 0;
  let kept = keep;
  for await (const chunk of reader) {
    size += chunk.byteLength;
    if (kept) {
      if (size > keepMax) {
        kept = false;
        chunks.length = 0;
      } else {
        chunks.push(chunk);
      }
    }
  }
  record.consumed = 'raw';
  const missing = reader instanceof LimitReader ? Math.max(0, reader.limit) : 0;
  return { body: kept ? Buffer.concat(chunks) : null, size, missing };
}

/**
 * HTML pages of a WARC / WARC.gz (local path, `file://` or `http(s)://` URL, streamed). See the file
 * comment; the skip reasons are listed in docs/crawl.md.
 */
export function readWarcHtml(source: string, options: WarcReadOptions = {}): WarcPageStream {
  const stats = createWarcStats();
  const maxBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const skip = (reason: WarcSkipReason) => {
    stats.skipped[reason] = (stats.skipped[reason] ?? 0) + 1;
  };
  const note = (what: string) => {
    stats.notes[what] = (stats.notes[what] ?? 0) + 1;
  };
  const end = (reason: WarcSkipReason, detail: string) => {
    skip(reason);
    stats.ended = { reason, detail };
  };

  async function* iterate(): AsyncGenerator<WarcHtmlPage> {
    const input = await openSource(source, options);
    const counted = countingReader(input);
    try {
      yield* records(counted);
    } finally {
      // Closes the file or cancels the download when the consumer stops early (break, throw).
      await counted.iterator.return?.(undefined);
      if (input instanceof fs.ReadStream) input.destroy();
      else if (input instanceof ReadableStream && !input.locked) await input.cancel().catch(() => undefined);
    }
  }

  /** The input as warcio reads it, counting bytes and noting its end. */
  function countingReader(input: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>) {
    const state = { bytes: 0, done: false, iterator: null as unknown as AsyncGenerator<Uint8Array> };
    state.iterator = (async function* () {
      for await (const chunk of input as AsyncIterable<Uint8Array>) {
        state.bytes += chunk.byteLength;
        yield chunk;
      }
      state.done = true;
    })();
    return state;
  }

  async function* records(counted: ReturnType<typeof countingReader>): AsyncGenerator<WarcHtmlPage> {
    const parser = new WARCParser(counted.iterator);
    for (;;) {
      let record: WARCRecord | null;
      let offset = parser.offset;
      try {
        record = await parser.parse();
        offset = parser.offset;
      } catch (e) {
        stats.records++;
        end('read_error', `at offset ${offset}: ${(e as Error).message}`);
        return;
      }
      if (record === null) {
        const raw = parser._reader;
        // A gzip member cut short yields no record at all from warcio: its only trace is compressed
        // input that no complete member consumed.
        if (raw.compressed && raw.getRawOffset() < counted.bytes) {
          stats.records++;
          end('truncated_record', `the input ends inside a gzip member (complete members end at byte ${raw.getRawOffset()} of ${counted.bytes})`);
        }
        return;
      }
      stats.records++;
      const type = record.warcType ?? '(none)';
      stats.types[type] = (stats.types[type] ?? 0) + 1;

      const statusline = record.warcHeaders.statusline ?? '';
      const lengthHeader = record.warcHeaders.headers.get('Content-Length');
      if (!/^\s*\d+\s*$/.test(lengthHeader ?? '')) {
        // Headers cut off by the end of the input, or a record whose end cannot be known: either way nothing more can be read.
        if (counted.done) end('truncated_record', `the input ends inside the headers of the record at offset ${offset}`);
        else end('malformed_record', `record at offset ${offset} has no valid Content-Length (${JSON.stringify(lengthHeader)})`);
        return;
      }

      const isResponse = type === 'response' && statusline.startsWith('WARC/');
      const httpHeaders = isResponse ? record.httpHeaders : null;
      const targetUri = record.warcTargetURI ?? null;
      const status = httpHeaders ? Number(httpHeaders.statusCode) : NaN;
      const contentType = httpHeaders?.headers.get('content-type') ?? record.warcHeader('WARC-Identified-Payload-Type') ?? null;
      const htmlTyped = HTML_TYPES.has(mediaType(contentType));
      let reason: WarcSkipReason | null = null;
      if (!statusline.startsWith('WARC/')) reason = 'malformed_record';
      else if (type !== 'response') reason = 'not_response';
      else if (!targetUri) reason = 'missing_target_uri';
      else if (!/^https?:\/\//i.test(targetUri)) reason = 'unsupported_scheme';
      else if (!httpHeaders || !Number.isInteger(status) || !/^HTTP\/\d/i.test(httpHeaders.statusline ?? '')) reason = 'malformed_http';
      else if (status !== 200) reason = `http_${status}`;
      else if (contentType !== null && mediaType(contentType) !== '' && !htmlTyped) reason = 'not_html';

      let drained: Drained;
      try {
        drained = await drain(record, reason === null, maxBytes);
      } catch (e) {
        end('read_error', `in record at offset ${offset}: ${(e as Error).message}`);
        return;
      }
      if (drained.missing > 0) {
        // The input ended inside this record: nothing follows it.
        end('truncated_record', `record at offset ${offset} (${targetUri ?? type}) lacks ${drained.missing} of its bytes`);
        return;
      }
      if (reason !== null) {
        skip(reason);
        continue;
      }
      if (drained.body === null) {
        skip('too_large');
        continue;
      }

      const warcTruncated = record.warcHeader('WARC-Truncated') ?? null;
      if (warcTruncated !== null && options.skipWarcTruncated) {
        skip('warc_truncated');
        continue;
      }
      const h = httpHeaders!;
      let body: Buffer = drained.body;
      try {
        const te = (h.headers.get('transfer-encoding') ?? '').toLowerCase();
        let chunked = false;
        if (te.includes('chunked')) {
          const d = dechunk(body);
          body = d.body;
          chunked = d.wasChunked;
        }
        const declaredLength = h.headers.get('content-length');
        if (!chunked && warcTruncated === null && declaredLength && /^\d+$/.test(declaredLength.trim()) && body.byteLength < Number(declaredLength)) {
          throw new BodyError('truncated_body', `HTTP Content-Length ${declaredLength}, ${body.byteLength} bytes present`);
        }
        const decoded = decodeContentEncoding(body, h.headers.get('content-encoding') ?? null, maxBytes, warcTruncated !== null);
        if (decoded.ignored) note('content_encoding_ignored');
        body = decoded.body;
      } catch (e) {
        skip(e instanceof BodyError ? e.reason : 'content_decode_error');
        continue;
      }
      if (body.byteLength === 0) {
        skip('empty_body');
        continue;
      }
      if (!htmlTyped && !sniffHtml(body)) {
        skip('not_html');
        continue;
      }
      const dec = decodeHtmlBody(body, contentType, {
        ...(options.fallbackCharset ? { fallbackCharset: options.fallbackCharset } : {}),
        ...(options.language ? { language: options.language } : {}),
      });
      if (dec.invalidUtf8) note('invalid_utf8');
      if (dec.charsetSource === 'detected' || dec.charsetSource === 'guessed') note(`charset_${dec.charsetSource}`);
      if (dec.unknownLabels.length) note('unknown_charset');
      stats.html++;
      yield {
        targetUri: targetUri!,
        warcDate: record.warcDate ?? null,
        httpStatus: status,
        html: dec.html,
        charset: dec.charset,
        charsetSource: dec.charsetSource,
        contentType,
        contentLanguage: h.headers.get('content-language') ?? null,
        recordId: record.warcHeader('WARC-Record-ID') ?? null,
        offset,
        warcTruncated,
        bodyBytes: body.byteLength,
      };
    }
  }

  let started = false;
  return {
    stats,
    [Symbol.asyncIterator]: () => {
      if (started) throw new Error('a WARC page stream can be iterated once (its stats count one pass)');
      started = true;
      return iterate();
    },
  };
}

// ---------------------------------------------------------------------------------------------------
// WARC -> images

export interface WarcImagePage extends Omit<WarcHtmlPage, 'html'> {
  extraction: PageExtraction;
}

export interface WarcImageStats extends WarcStats {
  /** Pages whose extraction threw (counted, the page is left out). */
  extractErrors: number;
  /** Image records over all pages (after per-page deduplication). */
  images: number;
  /** Image elements skipped over all pages, by reason. */
  imagesSkipped: Record<string, number>;
}

export interface WarcImageStream extends AsyncIterable<WarcImagePage> {
  readonly stats: WarcImageStats;
}

/** `readWarcHtml` followed by `extractImages` on every page (the HTTP Content-Language is passed along). */
export function warcImages(source: string, options: WarcReadOptions & { extract?: ExtractOptions } = {}): WarcImageStream {
  const pages = readWarcHtml(source, options);
  const stats: WarcImageStats = Object.assign(pages.stats, { extractErrors: 0, images: 0, imagesSkipped: {} as Record<string, number> });
  async function* iterate(): AsyncGenerator<WarcImagePage> {
    for await (const p of pages) {
      let extraction: PageExtraction;
      try {
        extraction = extractImages(p.html, p.targetUri, { ...options.extract, httpContentLanguage: p.contentLanguage });
      } catch {
        stats.extractErrors++;
        continue;
      }
      stats.images += extraction.images.length;
      for (const [k, v] of Object.entries(extraction.counts.skipped)) stats.imagesSkipped[k] = (stats.imagesSkipped[k] ?? 0) + (v ?? 0);
      const { html: _html, ...meta } = p;
      yield { ...meta, extraction };
    }
  }
  return { stats, [Symbol.asyncIterator]: () => iterate() };
}
