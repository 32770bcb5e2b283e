/**
 * The picture a multimodal request carries: the training copy as a JPEG data URL of at most `maxSide`
 * pixels a side. A training copy that already is such a JPEG (the filter stage's default: JPEG, at most
 * 1024 px; the caption stage's `imageMaxSide` 768 or more) is sent byte for byte, which is also what the
 * model would best see; anything else (larger, another format, an EXIF orientation to honour, CMYK) is
 * re-encoded with sharp as before. Either way the bytes sent depend only on the training copy's bytes and
 * `maxSide`, so the cache's input hash (training copy sha256 + size sent) still names one request.
 */
import sharp from 'sharp';

export interface JpegInfo {
  width: number;
  height: number;
  components: number;
  /** An APP1 Exif segment is present (it may carry an orientation a re-encode would drop). */
  exif: boolean;
}

/** Frame header of a baseline/progressive JPEG, read from its markers; undefined when the bytes are not a JPEG. */
export function jpegInfo(b: Buffer): JpegInfo | undefined {
  if (b.length < 4 || b[0] !== 0xff || b[1] !== 0xd8) return undefined;
  let exif = false;
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) return undefined;
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2; // no length
      continue;
    }
    const len = b.readUInt16BE(i + 2);
    if (len < 2 || i + 2 + len > b.length) return undefined;
    if (marker === 0xe1 && len >= 8 && b.toString('latin1', i + 4, i + 8) === 'Exif') exif = true;
    // SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (len < 8) return undefined;
      const height = b.readUInt16BE(i + 5);
      const width = b.readUInt16BE(i + 7);
      const components = b[i + 9]!;
      // Lossless and arithmetic-coded JPEGs decode in too few viewers to send as they are.
      const plain = marker === 0xc0 || marker === 0xc1 || marker === 0xc2;
      if (!plain || width === 0 || height === 0) return undefined;
      return { width, height, components, exif };
    }
    if (marker === 0xda || marker === 0xd9) return undefined; // scan or end before a frame header
    i += 2 + len;
  }
  return undefined;
}

/** The JPEG to send for a training copy: its own bytes when they already fit, else a re-encode. */
export async function jpegForRequest(bytes: Buffer, maxSide: number): Promise<Buffer> {
  const info = jpegInfo(bytes);
  if (info && !info.exif && (info.components === 1 || info.components === 3) && info.width <= maxSide && info.height <= maxSide) return bytes;
  return sharp(bytes).resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 85 }).toBuffer();
}

/** A `data:image/jpeg;base64,...` URL of the training copy at most `maxSide` a side. */
export async function jpegDataUrl(bytes: Buffer, maxSide: number): Promise<string> {
  return `data:image/jpeg;base64,${(await jpegForRequest(bytes, maxSide)).toString('base64')}`;
}
