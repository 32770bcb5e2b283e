/**
 * Validates downloaded image bytes for the ingest stage: what is it really, how big is it, and does
 * it actually decode. Pure: bytes in, verdict out; nothing is written anywhere.
 *
 * Order of checks (each cheaper than the next, each able to reject):
 *  1. sha256 of the raw bytes (the content key used everywhere downstream; returned even on failure).
 *  2. Sniff the real type from the bytes with `file-type`; the server's Content-Type is not trusted.
 *     - nothing recognisable (HTML, JSON, text, junk)       -> not_an_image
 *     - SVG (text, vector: no native pixel grid)            -> unsupported_format
 *     - an image type this sharp build cannot decode
 *       (BMP, ICO, JPEG XL, JPEG 2000, HEIC, PSD, ...)      -> unsupported_format
 *     - a known non-image type (PDF, ZIP, MP4, ...)         -> not_an_image
 *  3. Read the header only (sharp metadata) and refuse decompression bombs before any pixel is
 *     decoded: width * height * frames > limitInputPixels    -> too_many_pixels
 *  4. Decode every pixel for real, cheaply: a shrink-to-thumbnail pipeline into a tiny raw buffer.
 *     The decoder still has to read the whole stream (JPEG and WebP shrink on load but still
 *     entropy-decode every block), so truncated or corrupt data is caught -> decode_error
 *     (verified with the truncated JPEG/PNG fixtures), while memory stays small.
 * Steps 1-3 are exported as `inspectImage` and step 4 as `decodeFully`: the filter stage's `decodable`
 * operator runs only steps 1-3 on bytes this validator already accepted at ingest, and decodes them once
 * itself (activities/filter/image/decodable.ts).
 */
import { createHash } from 'node:crypto';
import { fileTypeFromBuffer } from 'file-type';
import sharp, { type Metadata } from 'sharp';

export interface ValidatePolicy {
  /** Largest image accepted, in pixels (width * height, times frames for animations). */
  limitInputPixels: number;
}

export type ValidateResult =
  | { ok: true; sha256: string; mime: string; format: string; width: number; height: number; frames: number; bytes: number }
  | { ok: false; reason: string; detail: string; sha256: string };

/** Every `reason` a rejected image can carry. Stable: stored in PostgreSQL and shown to users. */
export const VALIDATE_FAILURE_REASONS = ['not_an_image', 'unsupported_format', 'too_many_pixels', 'decode_error'] as const;
export type ValidateFailureReason = (typeof VALIDATE_FAILURE_REASONS)[number];

/** 100 megapixels: a 10000x10000 image, or a 500x500 animation of 400 frames. */
export const DEFAULT_VALIDATE_POLICY: ValidatePolicy = Object.freeze({ limitInputPixels: 100_000_000 });

/** Raster formats we accept, keyed by the sniffed MIME type. */
interface Decodable {
  /** The name reported in ValidateResult.format. */
  format: string;
  /** sharp's input format key (`sharp.format[...]`), also what sharp metadata reports. */
  sharpFormat: 'jpeg' | 'png' | 'gif' | 'webp' | 'heif' | 'tiff';
  /** Whether frames are animation frames worth counting (`pages`). */
  animated: boolean;
}

const DECODABLE: Record<string, Decodable> = {
  'image/jpeg': { format: 'jpeg', sharpFormat: 'jpeg', animated: false },
  'image/png': { format: 'png', sharpFormat: 'png', animated: false },
  // libvips decodes the default image of an APNG (its first frame) and ignores the animation.
  'image/apng': { format: 'apng', sharpFormat: 'png', animated: false },
  'image/gif': { format: 'gif', sharpFormat: 'gif', animated: true },
  'image/webp': { format: 'webp', sharpFormat: 'webp', animated: true },
  // sharp's prebuilt libheif decodes AV1 (AVIF) only; HEVC-coded HEIC is not in this table.
  // The pages of a HEIF container are separate images, not frames: the primary one is decoded.
  'image/avif': { format: 'avif', sharpFormat: 'heif', animated: false },
  // Only the first page of a multi-page TIFF is decoded.
  'image/tiff': { format: 'tiff', sharpFormat: 'tiff', animated: false },
};

/** The MIME types this process can decode: the table above, minus what this sharp build lacks. */
export const DECODABLE_MIME_TYPES: readonly string[] = Object.keys(DECODABLE).filter(
  (mime) => sharp.format[DECODABLE[mime]!.sharpFormat]?.input.buffer === true,
);

/** Edge length of the throwaway thumbnail used to force a full decode (see step 4). */
const DECODE_PROBE_SIZE = 64;

/** What `inspectImage` learned from the bytes and the header, without decoding a pixel. */
export type InspectResult =
  | {
      ok: true; sha256: string; mime: string; format: string; width: number; height: number; frames: number; bytes: number;
      /** Whether the format has animation frames worth counting (GIF, WebP) and this file has more than one. */
      animated: boolean;
      /** The header as sharp read it (orientation, alpha, palette, ...). */
      meta: Metadata;
    }
  | { ok: false; reason: string; detail: string; sha256: string };

/**
 * Steps 1-3 of `validateImage`: sha256, the sniffed type, the header and the decompression-bomb guard.
 * Decodes no pixel, so it proves nothing about the image data: callers either run `decodeFully` next
 * (that is `validateImage`) or decode the image themselves with `failOn: 'error'` (the filter stage,
 * on bytes the ingest stage already validated). Never throws for bad bytes.
 * @throws RangeError when the policy itself is invalid (a configuration error).
 */
export async function inspectImage(bytes: Buffer, policy: ValidatePolicy): Promise<InspectResult> {
  if (!Number.isSafeInteger(policy.limitInputPixels) || policy.limitInputPixels < 1) {
    // sharp would read 0 as "no limit" and reject fractions on every image: refuse loudly instead.
    throw new RangeError(`ValidatePolicy.limitInputPixels must be a positive integer, got ${String(policy.limitInputPixels)}`);
  }
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const reject = (reason: ValidateFailureReason, detail: string): InspectResult => ({ ok: false, reason, detail, sha256 });

  if (bytes.length === 0) return reject('not_an_image', 'empty file');

  // --- 2. what is it really? -------------------------------------------------------------
  let sniffed: { ext: string; mime: string } | undefined;
  try {
    sniffed = await fileTypeFromBuffer(bytes);
  } catch {
    sniffed = undefined; // a parser choking on garbage means "not recognisable", not a crash
  }
  if (sniffed === undefined || sniffed.mime === 'application/xml') {
    if (looksLikeSvg(bytes)) return reject('unsupported_format', 'svg (vector image, no native pixel size)');
    return reject('not_an_image', describeNonImage(bytes, sniffed));
  }
  const decodable = DECODABLE_MIME_TYPES.includes(sniffed.mime) ? DECODABLE[sniffed.mime] : undefined;
  if (decodable === undefined) {
    if (sniffed.mime.startsWith('image/')) {
      return reject('unsupported_format', `${sniffed.ext} (${sniffed.mime}) cannot be decoded by this build`);
    }
    return reject('not_an_image', describeNonImage(bytes, sniffed));
  }

  // --- 3. header only: size and frames, then the decompression-bomb check -------------------
  let meta: Metadata;
  try {
    // No pixel limit here: metadata reads the header only, and we want the real size to report.
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (err) {
    return reject('decode_error', `unreadable ${decodable.format} header: ${firstLine(err)}`);
  }
  if (meta.format !== decodable.sharpFormat) {
    return reject('decode_error', `sniffed ${decodable.format} but the decoder sees ${meta.format ?? 'nothing'}`);
  }
  // Width/height are as stored, before any EXIF orientation is applied (a portrait photo stored
  // landscape with orientation 6 reports its landscape size). For animations, one frame's size.
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  const frames = decodable.animated ? Math.max(1, meta.pages ?? 1) : 1;
  if (width < 1 || height < 1) return reject('decode_error', `${decodable.format} header declares ${width}x${height}`);
  // Every frame counts: decoding an animation costs all of its frames.
  const pixels = width * height * frames;
  if (pixels > policy.limitInputPixels) {
    const shape = frames > 1 ? `${width}x${height}x${frames} frames` : `${width}x${height}`;
    return reject('too_many_pixels', `${shape} = ${pixels} pixels exceeds the limit of ${policy.limitInputPixels}`);
  }
  return { ok: true, sha256, mime: sniffed.mime, format: decodable.format, width, height, frames, bytes: bytes.length, animated: frames > 1, meta };
}

/**
 * Step 4 of `validateImage`: decodes every pixel (every frame of an animation) into a tiny buffer.
 * Returns the failure, or null when the image decodes.
 */
export async function decodeFully(
  bytes: Buffer,
  inspected: { sha256: string; format: string; animated: boolean },
  policy: ValidatePolicy,
): Promise<{ ok: false; reason: ValidateFailureReason; detail: string; sha256: string } | null> {
  try {
    await sharp(bytes, {
      // 'error' rejects truncated and corrupt data; 'warning' would also reject the many
      // real-world files with harmless irregularities (e.g. extraneous bytes before a marker).
      failOn: 'error',
      // Same limit again inside libvips, as a backstop; with all frames loaded it applies to the
      // whole frame strip, i.e. the same width * height * frames product as above.
      limitInputPixels: policy.limitInputPixels,
      sequentialRead: true,
      ...(inspected.animated ? { animated: true } : {}),
    })
      .resize(DECODE_PROBE_SIZE, DECODE_PROBE_SIZE, { fit: 'inside' })
      .raw()
      .toBuffer();
  } catch (err) {
    const message = firstLine(err);
    const reason: ValidateFailureReason = /pixel limit/i.test(message) ? 'too_many_pixels' : 'decode_error';
    return { ok: false, reason, detail: reason === 'too_many_pixels' ? message : `${inspected.format}: ${message}`, sha256: inspected.sha256 };
  }
  return null;
}

/**
 * Never throws for bad bytes: every problem with the image is a `{ ok: false, reason }`.
 * @throws RangeError when the policy itself is invalid (a configuration error).
 */
export async function validateImage(bytes: Buffer, policy: ValidatePolicy): Promise<ValidateResult> {
  const inspected = await inspectImage(bytes, policy);
  if (!inspected.ok) return inspected;
  // --- 4. decode for real, into a tiny buffer -----------------------------------------------
  const failed = await decodeFully(bytes, inspected, policy);
  if (failed) return failed;
  const { sha256, mime, format, width, height, frames } = inspected;
  return { ok: true, sha256, mime, format, width, height, frames, bytes: bytes.length };
}

/**
 * True when the bytes are an SVG document: after an optional BOM, XML declaration, processing
 * instructions, comments and doctype, the first element is <svg>. An HTML page that merely
 * contains an inline <svg> is not an SVG.
 */
export function looksLikeSvg(bytes: Buffer): boolean {
  let text = bytes.subarray(0, 8192).toString('utf8').replace(/^\uFEFF/, '');
  const prolog = [/^\s+/, /^<\?[\s\S]*?\?>/, /^<!--[\s\S]*?-->/, /^<!doctype[^>[]*(\[[\s\S]*?\])?\s*>/i];
  for (let progressed = true; progressed; ) {
    progressed = false;
    for (const pattern of prolog) {
      const match = pattern.exec(text);
      if (match && match[0].length > 0) {
        text = text.slice(match[0].length);
        progressed = true;
      }
    }
  }
  return /^<(?:[\w-]+:)?svg[\s>/]/i.test(text);
}

/** A short human description of bytes that are not an image, for `detail`. */
function describeNonImage(bytes: Buffer, sniffed: { ext: string; mime: string } | undefined): string {
  if (sniffed !== undefined) return `content is ${sniffed.ext} (${sniffed.mime})`;
  const head = bytes.subarray(0, 512).toString('utf8').replace(/^\uFEFF/, '').trimStart().toLowerCase();
  if (head.startsWith('<!doctype html') || head.startsWith('<html') || /^<(head|body|meta|title)[\s>]/.test(head)) {
    return 'content is an HTML document';
  }
  if (head.startsWith('<')) return 'content is markup (XML/HTML)';
  if (head.startsWith('{') || head.startsWith('[')) return 'content looks like JSON';
  const sample = bytes.subarray(0, 512);
  const printable = sample.filter((b) => b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b >= 128).length;
  if (printable / sample.length > 0.95) return 'content is text';
  return `unrecognised binary data (${bytes.length} bytes)`;
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0]!.trim().slice(0, 300);
}
