/**
 * The unit the merge stage exports: one image with one instruction and one answer, from one source.
 * Samples are built by the merge stage from what the earlier stages kept (D_know from native alt texts,
 * D_ling from translated captions, fused samples from the caption stage), then split, mixed and written
 * by the modules beside this one. Nothing here touches Temporal or the database.
 */

/** D_know (native alt text as the answer), D_ling (translated caption), fused (both in one answer). */
export type SampleSource = 'know' | 'ling' | 'fused';
export const SAMPLE_SOURCES: readonly SampleSource[] = ['know', 'ling', 'fused'];

export interface Sample {
  /** Stable and unique, e.g. `${source}:${lang}:${recordKey}`. */
  id: string;
  /** BCP-47 target language. */
  lang: string;
  source: SampleSource;
  /** sha256 (hex) of the dataset image file at `imagePath`; near-duplicate groups already resolved. */
  imageSha256: string;
  /** Absolute path of the normalized image file on disk (blob store). */
  imagePath: string;
  /** jpeg | webp | png | avif */
  imageFormat: string;
  /** Target-language instruction (the user turn, without the `<image>` token). */
  instruction: string;
  /** The assistant turn. */
  answer: string;
  /** Split unit: the images of one near-duplicate group share it (the imageSha256 when there is no group). */
  groupKey: string;
  /**
   * Page URL, crawl time, operators passed, model, prompt versions... (JSON). Keys the card reads when
   * present: `pageUrl` (sources per domain), `caption` (the English caption a D_ling answer was
   * translated from, shown beside the translation in the gallery).
   */
  lineage: Record<string, unknown>;
  /** Produced by the offline stand-in model (labelled in the card). */
  standin?: boolean;
}

export type SplitName = 'train' | 'validation' | 'test';
export const SPLITS: readonly SplitName[] = ['train', 'validation', 'test'];

/** File extension of each accepted image format (the WebDataset member suffix too). */
export const IMAGE_EXTENSIONS: Readonly<Record<string, string>> = { jpeg: 'jpg', webp: 'webp', png: 'png', avif: 'avif' };

/**
 * Placeholders the trainers give a meaning to (LLaMA-Factory's IMAGE/VIDEO/AUDIO placeholders, the same
 * strings in ms-swift): an alt text that contains one would change the number of images a trainer sees.
 */
export const RESERVED_TOKENS: readonly string[] = ['<image>', '<video>', '<audio>'];

/** The image's path inside an export: `images/<sha256[0:2]>/<sha256>.<ext>`. */
export function imageRelPath(sha256: string, format: string): string {
  const ext = IMAGE_EXTENSIONS[format];
  if (ext === undefined) throw new Error(`unsupported image format: ${format}`);
  return `images/${sha256.slice(0, 2)}/${sha256}.${ext}`;
}

/** Why a sample is not exported (recorded in `rejected.jsonl`, counted in the export result). */
export type SampleRejectionReason =
  | 'invalid_sample'
  | 'unsupported_image_format'
  | 'empty_instruction'
  | 'empty_answer'
  | 'reserved_token_in_text'
  | 'image_missing'
  | 'image_hash_mismatch';

export interface SampleRejection {
  reason: SampleRejectionReason;
  detail: string;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The checks that need no I/O; undefined when the sample can be exported. */
export function checkSample(s: Sample): SampleRejection | undefined {
  if (typeof s.id !== 'string' || s.id === '') return { reason: 'invalid_sample', detail: 'empty id' };
  if (typeof s.lang !== 'string' || s.lang === '') return { reason: 'invalid_sample', detail: 'empty lang' };
  if (!(SAMPLE_SOURCES as readonly string[]).includes(s.source)) return { reason: 'invalid_sample', detail: `unknown source ${String(s.source)}` };
  if (typeof s.imageSha256 !== 'string' || !SHA256_HEX.test(s.imageSha256)) return { reason: 'invalid_sample', detail: 'imageSha256 is not 64 lowercase hex digits' };
  if (typeof s.groupKey !== 'string' || s.groupKey === '') return { reason: 'invalid_sample', detail: 'empty groupKey' };
  if (typeof s.imagePath !== 'string' || s.imagePath === '') return { reason: 'invalid_sample', detail: 'empty imagePath' };
  if (s.lineage === null || typeof s.lineage !== 'object' || Array.isArray(s.lineage)) return { reason: 'invalid_sample', detail: 'lineage is not an object' };
  if (IMAGE_EXTENSIONS[s.imageFormat] === undefined) return { reason: 'unsupported_image_format', detail: String(s.imageFormat) };
  if (typeof s.instruction !== 'string' || s.instruction.trim() === '') return { reason: 'empty_instruction', detail: '' };
  if (typeof s.answer !== 'string' || s.answer.trim() === '') return { reason: 'empty_answer', detail: '' };
  for (const token of RESERVED_TOKENS) {
    if (s.instruction.includes(token)) return { reason: 'reserved_token_in_text', detail: `instruction contains ${token}` };
    if (s.answer.includes(token)) return { reason: 'reserved_token_in_text', detail: `answer contains ${token}` };
  }
  return undefined;
}
