/**
 * The filter stage's operators: small checks, each registered by name with its own validated config
 * (zod, with documented defaults) and its own counters, in the shape Data-Juicer uses
 * (modelscope/data-juicer: a Filter per check, a Deduplicator per set-level check, a pipeline is a
 * list of names with options).
 *
 * Two scopes:
 *  - item operators judge one item on its own (an image's bytes, one alt text). Image item operators
 *    see the image as decoded once by the `decodable` operator (input 'bytes'); every other image
 *    operator gets the decoded view (input 'image'). Text operators see the alt text as rewritten by
 *    the operators before them (the `normalize` operator returns the normalized text as its value).
 *  - set operators (near-duplicate removal) judge a set of items that passed the item operators and
 *    return one verdict per item plus the duplicate groups they found.
 *
 * Every rejection carries the operator's name (added by the pipeline), a stable reason, the measured
 * value and the threshold it was compared with: enough to store, count and explain it.
 */
import type { z } from 'zod';
import type { Raster } from './image/raster';

export type OperatorKind = 'image' | 'text';
/** A measured value or a threshold: a number, or a short string where the check is categorical. */
export type Measure = number | string | boolean;

export interface Keep<V> {
  readonly keep: true;
  /** What the operator produced for the operators after it (decoded image, normalized text). */
  readonly value?: V;
  /**
   * What it measured on a kept item (Data-Juicer's per-sample stats), for storage and analysis:
   * e.g. the language eld detected and its score, or the word count.
   */
  readonly stats?: Readonly<Record<string, Measure>>;
}

export interface Reject {
  readonly keep: false;
  /** Stable machine-readable reason (stored in PostgreSQL and shown in stage counts). */
  readonly reason: string;
  readonly measured: Measure;
  readonly threshold: Measure;
  /** Human-readable context (which rule, which words); optional. */
  readonly detail?: string;
}

export type OperatorResult<V = never> = Keep<V> | Reject;

export function keep<V = never>(value?: V, stats?: Readonly<Record<string, Measure>>): Keep<V> {
  return { keep: true, ...(value === undefined ? {} : { value }), ...(stats === undefined ? {} : { stats }) };
}

export function reject(reason: string, measured: Measure, threshold: Measure, detail?: string): Reject {
  return detail === undefined ? { keep: false, reason, measured, threshold } : { keep: false, reason, measured, threshold, detail };
}

/** Rounds a measured ratio for storage and display (keeps comparisons on the unrounded value). */
export function round(value: number, digits = 4): number {
  if (!Number.isFinite(value)) return value;
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

// ---------------------------------------------------------------------------------------------
// Items
// ---------------------------------------------------------------------------------------------

/** How faithfully a format stores pixels; used to rank near-duplicate images (see phash.ts). */
export type Fidelity = 'lossless' | 'lossy' | 'palette';

/** An image as the `decodable` operator sees it: decoded once, oriented, measured. */
export interface DecodedImage {
  /** sha256 of the original bytes (the content key everywhere downstream). */
  readonly sha256: string;
  readonly mime: string;
  /** jpeg, png, apng, gif, webp, avif, tiff (as the ingest stage names them). */
  readonly format: string;
  /** Size of the original file in bytes. */
  readonly bytes: number;
  /** Size of one frame as stored, before EXIF orientation. */
  readonly storedWidth: number;
  readonly storedHeight: number;
  /** Size as displayed: EXIF orientation applied (orientations 5-8 swap the sides). */
  readonly width: number;
  readonly height: number;
  /** EXIF orientation tag, 1 (none) to 8. */
  readonly orientation: number;
  /** Animation frames (1 for a still image). */
  readonly frames: number;
  readonly hasAlpha: boolean;
  readonly fidelity: Fidelity;
  /** Pixel statistics of the first frame, oriented, from a thumbnail of at most 256 px a side (of the one decode). */
  readonly pixels: PixelStats;
  /** 64-bit DCT perceptual hash of the first frame, oriented, alpha flattened on white (16 hex digits). */
  readonly phash: string;
  /**
   * The decoded first frame (oriented, sRGB, at most the decode side), only when the item asked for it
   * (`keepRaster`): the training copy is encoded from it. Up to 4 MiB: drop it once the copy is made.
   */
  readonly raster?: Raster;
}

export interface PixelStats {
  /** Share of pixels with alpha below 8/255 (0 for opaque images). */
  readonly transparentFraction: number;
  /** Largest standard deviation of the R, G and B channels (0-255 scale), visible pixels over mid-grey. */
  readonly maxChannelStdev: number;
  /** Pixels the statistics were computed on (the thumbnail's). */
  readonly sampled: number;
}

/** What the `decodable` operator gets. */
export interface ImageBytesItem {
  readonly bytes: Buffer;
  /**
   * 'ingest' when the bytes are what the ingest stage stored (it stores an image only after its
   * validator decoded it completely): `decodable` then skips that full decode. Absent for raw bytes.
   */
  readonly validatedBy?: 'ingest' | undefined;
  /** Longest side `decodable` decodes to (the training copy's `maxSide`; default 1024). */
  readonly decodeSide?: number | undefined;
  /** Ask `decodable` to return the decoded pixels (`DecodedImage.raster`) for the training copy. */
  readonly keepRaster?: boolean | undefined;
}

/** What every other image item operator gets. */
export interface ImageItem extends ImageBytesItem {
  readonly decoded: DecodedImage;
}

/** What text item operators get: the alt text and the page it came from. */
export interface TextItem {
  /** The alt text as rewritten by the operators so far (normalized after `normalize`). */
  readonly text: string;
  /** The alt text exactly as extracted. */
  readonly raw: string;
  /** Target language of the run (BCP-47), e.g. "th" or "sr". */
  readonly lang: string;
  readonly pageTitle?: string | undefined;
  readonly siteName?: string | undefined;
  /** Site key the record belongs to (e.g. the page's registrable domain); used by repeated-site-alt. */
  readonly site?: string | undefined;
}

// ---------------------------------------------------------------------------------------------
// Context
// ---------------------------------------------------------------------------------------------

/**
 * Counts, per site, of the distinct images that carry the same (normalized, case-folded) alt.
 * Built once over the crawl's records with `buildSiteAltIndex` (text/repeated-site-alt.ts).
 */
export interface SiteAltIndex {
  count(site: string, normalizedAlt: string): number;
}

/** Data some operators need beyond the item itself; computed once per shard or site. */
export interface OperatorContext {
  readonly siteAltIndex?: SiteAltIndex | undefined;
}

export type ContextRequirement = keyof OperatorContext;

// ---------------------------------------------------------------------------------------------
// Operators
// ---------------------------------------------------------------------------------------------

interface OperatorBase<C> {
  /** Registry key, kebab-case: `min-side`, `language-id`. */
  readonly name: string;
  readonly kind: OperatorKind;
  /** One sentence for docs and `--help`. */
  readonly description: string;
  /** Every reason this operator can reject with. */
  readonly reasons: readonly string[];
  /**
   * Validates this operator's options; `configSchema.parse({})` gives the defaults. Objects are
   * strict: an unknown key is a configuration error, not silently ignored.
   */
  readonly configSchema: z.ZodType<C>;
  /** Where each default comes from (a paper, a dataset's code, a measurement on the fixtures). */
  readonly defaultSources: Readonly<Record<string, string>>;
}

/**
 * An item operator. Its `apply` must not throw for bad data (that is a rejection); it may throw for
 * a programming or wiring error (a missing context requirement is reported before it runs).
 */
export interface ItemOperator<I, C, V = never> extends OperatorBase<C> {
  readonly scope: 'item';
  /** Which view of the item it reads: raw image bytes, the decoded image, or the alt text. */
  readonly input: I extends ImageItem ? 'image' : I extends ImageBytesItem ? 'bytes' : 'text';
  readonly requires?: readonly ContextRequirement[];
  apply(item: I, config: C, ctx: OperatorContext): OperatorResult<V> | Promise<OperatorResult<V>>;
}

/** One member of a set operator's input. `id` is the caller's key (sha256, record id). */
export interface SetEntry {
  readonly id: string;
}

export interface DuplicateGroup {
  /** The member that is kept: the best one (images) or the first one (texts). */
  readonly keeper: string;
  /** The other members, each with its distance (Hamming bits) or similarity (Jaccard) to the keeper. */
  readonly members: ReadonlyArray<{ readonly id: string; readonly measured: number }>;
}

export interface SetResult {
  /** One verdict per input entry, in input order. */
  readonly verdicts: ReadonlyArray<{ readonly id: string; readonly result: OperatorResult }>;
  /** Groups with more than one member. */
  readonly groups: readonly DuplicateGroup[];
}

/** A set operator: judges many items at once (near-duplicate removal). */
export interface SetOperator<E extends SetEntry, C> extends OperatorBase<C> {
  readonly scope: 'set';
  apply(entries: readonly E[], config: C): SetResult;
}

// The registry stores operators with their config type erased; the pipeline always parses options
// through the operator's own schema before calling `apply`, so the erased type is never trusted.
export type AnyImageBytesOperator = ItemOperator<ImageBytesItem, any, DecodedImage>;
export type AnyImageOperator = ItemOperator<ImageItem, any>;
export type AnyTextOperator = ItemOperator<TextItem, any, string>;
export type AnySetOperator = SetOperator<any, any>;
export type AnyOperator = AnyImageBytesOperator | AnyImageOperator | AnyTextOperator | AnySetOperator;

const OPERATOR_NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/** Operators by name. One registry per process is the norm (`FILTER_OPERATORS` in config.ts). */
export class OperatorRegistry {
  readonly #byName = new Map<string, AnyOperator>();

  constructor(operators: Iterable<AnyOperator> = []) {
    for (const op of operators) this.register(op);
  }

  /** @throws Error on a malformed or duplicate name, or defaults that do not validate. */
  register(op: AnyOperator): this {
    if (!OPERATOR_NAME.test(op.name)) throw new Error(`operator name "${op.name}" must be kebab-case`);
    if (this.#byName.has(op.name)) throw new Error(`operator "${op.name}" is already registered`);
    const defaults = op.configSchema.safeParse({});
    if (!defaults.success) throw new Error(`operator "${op.name}": its defaults do not validate: ${defaults.error.message}`);
    this.#byName.set(op.name, op);
    return this;
  }

  get(name: string): AnyOperator | undefined {
    return this.#byName.get(name);
  }

  /** @throws Error naming the known operators when `name` is not registered. */
  require(name: string): AnyOperator {
    const op = this.#byName.get(name);
    if (op === undefined) throw new Error(`unknown filter operator "${name}" (known: ${this.names().join(', ')})`);
    return op;
  }

  has(name: string): boolean {
    return this.#byName.has(name);
  }

  names(kind?: OperatorKind): string[] {
    return [...this.#byName.values()].filter((op) => kind === undefined || op.kind === kind).map((op) => op.name);
  }

  list(): AnyOperator[] {
    return [...this.#byName.values()];
  }

  /** The parsed default config of every operator, by name (what docs/filter.md tabulates). */
  defaults(): Record<string, unknown> {
    return Object.fromEntries(this.list().map((op) => [op.name, op.configSchema.parse({})]));
  }
}
