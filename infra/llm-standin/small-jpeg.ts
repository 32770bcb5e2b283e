/**
 * The stand-in's fast path for what a caption request almost always carries: a small baseline or
 * progressive JPEG (the llm worker sends JPEG training copies). Decoded in this thread by libjpeg-turbo
 * compiled to WebAssembly (`@cwasm/jpeg-turbo`: about 0.5 ms of CPU for a 160x120 picture, against 2.5-4 ms
 * for the pure-JavaScript `jpeg-js` used before and 3.5-4.5 ms for one sharp call, whose fixed cost per
 * call dominates at this size), then shrunk by area averaging. Anything else (other formats, EXIF
 * orientation, CMYK, arithmetic or lossless coding, a missing end marker, more than
 * SMALL_JPEG_MAX_PIXELS, a decode error or warning) returns undefined and goes through sharp, which also
 * makes the verdict on broken files.
 */
import { createRequire } from 'node:module';

/** Above this many pixels sharp's decoder (native, shrink-on-load) is the cheaper one. */
export const SMALL_JPEG_MAX_PIXELS = 256 * 256;

export interface SmallJpeg {
  width: number;
  height: number;
  /** RGBA thumbnail that fits inside side x side (never enlarged). */
  thumb: { data: Uint8Array; width: number; height: number };
}

/** The frame header's facts when `bytes` is a JPEG the fast path takes; undefined otherwise. */
function frameOf(bytes: Buffer): { width: number; height: number } | undefined {
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) return undefined;
  if (bytes[bytes.length - 2] !== 0xff || bytes[bytes.length - 1] !== 0xd9) return undefined;
  let frame: { width: number; height: number } | undefined;
  let i = 2;
  while (i + 4 <= bytes.length) {
    if (bytes[i] !== 0xff) return undefined;
    const marker = bytes[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    const length = bytes.readUInt16BE(i + 2);
    if (length < 2 || i + 2 + length > bytes.length) return undefined;
    if (marker === 0xda) return frame; // start of scan: the headers are read
    if (marker === 0xe1 && bytes.toString('latin1', i + 4, i + 10) === 'Exif\0\0') return undefined; // orientation: sharp
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      // SOF0 baseline, SOF1 extended, SOF2 progressive only; 1 (grey) or 3 (YCbCr) components.
      if (marker > 0xc2 || length < 8) return undefined;
      const height = bytes.readUInt16BE(i + 5);
      const width = bytes.readUInt16BE(i + 7);
      const components = bytes[i + 9]!;
      if (width === 0 || height === 0 || (components !== 1 && components !== 3)) return undefined;
      if (width * height > SMALL_JPEG_MAX_PIXELS) return undefined;
      frame = { width, height };
    }
    i += 2 + length;
  }
  return undefined;
}

/** Area-average shrink of RGBA pixels to fit inside side x side (the same fit as sharp's `inside`). */
export function shrinkInside(src: Uint8Array, width: number, height: number, side: number): { data: Uint8Array; width: number; height: number } {
  if (width <= side && height <= side) return { data: src, width, height };
  const scale = Math.min(side / width, side / height);
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  const out = new Uint8Array(w * h * 4);
  const sx = width / w;
  const sy = height / h;
  for (let oy = 0; oy < h; oy++) {
    const y0 = Math.floor(oy * sy);
    const y1 = Math.max(y0 + 1, Math.floor((oy + 1) * sy));
    for (let ox = 0; ox < w; ox++) {
      const x0 = Math.floor(ox * sx);
      const x1 = Math.max(x0 + 1, Math.floor((ox + 1) * sx));
      let r = 0, g = 0, b = 0, a = 0;
      for (let y = y0; y < y1; y++) {
        let p = (y * width + x0) * 4;
        for (let x = x0; x < x1; x++, p += 4) {
          r += src[p]!;
          g += src[p + 1]!;
          b += src[p + 2]!;
          a += src[p + 3]!;
        }
      }
      const n = (y1 - y0) * (x1 - x0);
      const q = (oy * w + ox) * 4;
      out[q] = Math.round(r / n);
      out[q + 1] = Math.round(g / n);
      out[q + 2] = Math.round(b / n);
      out[q + 3] = Math.round(a / n);
    }
  }
  return { data: out, width: w, height: h };
}

type TurboDecode = (bytes: Uint8Array) => { width: number; height: number; data: Uint8ClampedArray };
const requireCjs = createRequire(import.meta.url);
const TURBO_PATH = requireCjs.resolve('@cwasm/jpeg-turbo');

/** A fresh WebAssembly instance of the decoder (the package instantiates one when it is loaded). */
function loadTurbo(): TurboDecode {
  delete requireCjs.cache[TURBO_PATH];
  return (requireCjs(TURBO_PATH) as { decode: TurboDecode }).decode;
}
let turboDecode: TurboDecode | undefined;

/**
 * The package's own failures ("Failed to ...") leave its instance clean: it frees what it allocated.
 * A libjpeg error instead unwinds out of the middle of the WebAssembly code (the package has no
 * setjmp/longjmp), leaving that instance's memory and stack in an unknown state: it is not used again.
 */
const CLEAN_FAILURE = /^Failed to (allocate decompressor|decode JPEG header|decode JPEG data)$/;

/** The JPEG in `bytes` decoded and shrunk when the fast path takes it; undefined: use sharp. */
export function decodeSmallJpeg(bytes: Buffer, side: number): SmallJpeg | undefined {
  const frame = frameOf(bytes);
  if (frame === undefined) return undefined;
  let img: { width: number; height: number; data: Uint8Array };
  try {
    turboDecode ??= loadTurbo();
    const out = turboDecode(bytes);
    img = { width: out.width, height: out.height, data: new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength) };
  } catch (err) {
    if (!CLEAN_FAILURE.test((err as Error).message)) turboDecode = undefined;
    return undefined;
  }
  if (img.width !== frame.width || img.height !== frame.height) return undefined;
  return { width: img.width, height: img.height, thumb: shrinkInside(img.data, img.width, img.height, side) };
}
