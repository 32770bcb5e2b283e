/**
 * Runs the configured operators. Pure: bytes and strings in, verdicts out; nothing is read or written
 * outside the arguments (the wiring reads blobs and stores verdicts).
 *
 *  - `resolveFilterPipeline(config, lang)` turns the run config into a pipeline for one language: the
 *    operators in order, each with its options merged and parsed (once, not per item).
 *  - `filterItem` runs the item operators on one record: its alt text first (cheap), then its image
 *    (decoded once), and stops at the first rejection.
 *  - `dedupImages` / `dedupTexts` run the set operators over what survived, returning one verdict per
 *    entry and the duplicate groups (to be recorded).
 *  - counters: per operator, how many items it saw, kept and rejected, by reason (Data-Juicer's
 *    per-operator stats), mergeable across shards.
 */
import type { FilterConfig } from './config';
import { FILTER_OPERATORS, operatorPlan } from './config';
import type { NormalizeImageConfig } from './image/normalize';
import type { PhashEntry } from './image/phash';
import type {
  AnyImageBytesOperator,
  AnyImageOperator,
  AnySetOperator,
  AnyTextOperator,
  DecodedImage,
  DuplicateGroup,
  Measure,
  OperatorContext,
  OperatorKind,
  OperatorRegistry,
  Reject,
  SetEntry,
} from './operator';
import type { TextDedupEntry } from './text/near-duplicate';

export interface ResolvedStep<O> {
  readonly op: O;
  /** The operator's options, parsed by its schema (defaults filled in). */
  readonly config: unknown;
}

export interface ResolvedFilterPipeline {
  /** Target language (BCP-47) this pipeline was resolved for. */
  readonly lang: string;
  /** `decodable` (if any image operator runs), then the other image item operators, in order. */
  readonly decode: ResolvedStep<AnyImageBytesOperator> | undefined;
  readonly image: readonly ResolvedStep<AnyImageOperator>[];
  readonly text: readonly ResolvedStep<AnyTextOperator>[];
  readonly imageSet: readonly ResolvedStep<AnySetOperator>[];
  readonly textSet: readonly ResolvedStep<AnySetOperator>[];
  /** Settings of the training-set copy (image/normalize.ts). */
  readonly normalize: NormalizeImageConfig;
}

export class FilterWiringError extends Error {
  override name = 'FilterWiringError';
}

/**
 * The pipeline for one language. The config must come from `filterConfigSchema` (built for the same
 * registry), which has already checked names, order and options.
 */
export function resolveFilterPipeline(config: FilterConfig, lang: string, registry: OperatorRegistry = FILTER_OPERATORS): ResolvedFilterPipeline {
  let decode: ResolvedStep<AnyImageBytesOperator> | undefined;
  const image: ResolvedStep<AnyImageOperator>[] = [];
  const text: ResolvedStep<AnyTextOperator>[] = [];
  const imageSet: ResolvedStep<AnySetOperator>[] = [];
  const textSet: ResolvedStep<AnySetOperator>[] = [];
  for (const kind of ['image', 'text'] as const) {
    const plan = operatorPlan(config, kind, lang);
    for (const name of plan.names) {
      const op = registry.require(name);
      if (op.kind !== kind) throw new FilterWiringError(`"${name}" is a ${op.kind} operator, listed under ${kind}`);
      const parsed = op.configSchema.safeParse(plan.options[name] ?? {});
      if (!parsed.success) throw new FilterWiringError(`options of "${name}" for ${lang}: ${parsed.error.message}`);
      const step = { op, config: parsed.data };
      if (op.scope === 'set') (kind === 'image' ? imageSet : textSet).push(step as ResolvedStep<AnySetOperator>);
      else if (op.input === 'bytes') decode = step as ResolvedStep<AnyImageBytesOperator>;
      else if (op.input === 'image') image.push(step as ResolvedStep<AnyImageOperator>);
      else text.push(step as ResolvedStep<AnyTextOperator>);
    }
  }
  if (decode === undefined && image.length > 0) throw new FilterWiringError('image operators are configured without "decodable"');
  return { lang, decode, image, text, imageSet, textSet, normalize: config.normalize };
}

// ---------------------------------------------------------------------------------------------
// Verdicts
// ---------------------------------------------------------------------------------------------

/** A stored rejection: which operator, why, what it measured and what it compared with. */
export interface FilterRejection {
  readonly kind: OperatorKind;
  readonly operator: string;
  readonly reason: string;
  readonly measured: Measure;
  readonly threshold: Measure;
  readonly detail?: string;
}

export interface ImageVerdict {
  readonly kept: boolean;
  /** Operators passed, in order. */
  readonly passed: readonly string[];
  readonly rejection?: FilterRejection;
  /** The decoded view (set whenever `decodable` accepted the bytes, even if a later operator rejected). */
  readonly image?: DecodedImage;
}

/** Per operator, what it measured on the item it kept (see `Keep.stats`). */
export type FilterStats = Record<string, Readonly<Record<string, Measure>>>;

export interface TextVerdict {
  readonly kept: boolean;
  readonly passed: readonly string[];
  readonly rejection?: FilterRejection;
  /** The alt as the last text operator saw it (normalized), when normalization ran. */
  readonly text: string;
  /** Stats of the operators it passed, e.g. `{ 'language-id': { detected: 'hr', ... } }`. */
  readonly stats: FilterStats;
}

export interface AltInput {
  readonly text: string;
  readonly pageTitle?: string | undefined;
  readonly siteName?: string | undefined;
  /** Site key for repeated-site-alt (e.g. the page's registrable domain). */
  readonly site?: string | undefined;
}

/** One record: an image with its alt text and the page it came from. Either part may be absent. */
export interface FilterItem {
  readonly image?: Buffer | undefined;
  readonly alt?: AltInput | undefined;
}

export interface ItemVerdict {
  readonly kept: boolean;
  readonly passed: readonly string[];
  readonly rejection?: FilterRejection;
  readonly text?: TextVerdict;
  readonly image?: ImageVerdict;
}

function rejection(kind: OperatorKind, operator: string, r: Reject): FilterRejection {
  return r.detail === undefined
    ? { kind, operator, reason: r.reason, measured: r.measured, threshold: r.threshold }
    : { kind, operator, reason: r.reason, measured: r.measured, threshold: r.threshold, detail: r.detail };
}

function checkRequirements(steps: ReadonlyArray<ResolvedStep<{ name: string; requires?: readonly (keyof OperatorContext)[] }>>, ctx: OperatorContext): void {
  for (const { op } of steps) {
    for (const need of op.requires ?? []) {
      if (ctx[need] === undefined) throw new FilterWiringError(`operator "${op.name}" needs ctx.${need}, which was not provided`);
    }
  }
}

/** Runs the text item operators on one alt. */
export async function filterText(alt: AltInput, pipeline: ResolvedFilterPipeline, ctx: OperatorContext = {}): Promise<TextVerdict> {
  checkRequirements(pipeline.text, ctx);
  let text = alt.text;
  const passed: string[] = [];
  const stats: FilterStats = {};
  for (const { op, config } of pipeline.text) {
    const item = { text, raw: alt.text, lang: pipeline.lang, pageTitle: alt.pageTitle, siteName: alt.siteName, site: alt.site };
    const result = await op.apply(item, config, ctx);
    if (!result.keep) return { kept: false, passed, rejection: rejection('text', op.name, result), text, stats };
    if (result.value !== undefined) text = result.value;
    if (result.stats !== undefined) stats[op.name] = result.stats;
    passed.push(op.name);
  }
  return { kept: true, passed, text, stats };
}

/** Where an image's bytes come from and what the caller wants back (see `ImageBytesItem`). */
export interface ImageInput {
  /** 'ingest': bytes the ingest stage stored (validated there); `decodable` skips its full decode. */
  readonly validatedBy?: 'ingest' | undefined;
  /** Keep the decoded pixels in `ImageVerdict.image.raster`, to encode the training copy from them. */
  readonly keepRaster?: boolean | undefined;
}

/**
 * Runs the image item operators on one image's bytes. `decodable` decodes to the training copy's
 * `maxSide` (pipeline.normalize), so that the copy can be encoded from the same decode.
 */
export async function filterImage(bytes: Buffer, pipeline: ResolvedFilterPipeline, ctx: OperatorContext = {}, input: ImageInput = {}): Promise<ImageVerdict> {
  if (pipeline.decode === undefined) return { kept: true, passed: [] };
  checkRequirements(pipeline.image, ctx);
  const passed: string[] = [];
  const { op: decodeOp, config: decodeConfig } = pipeline.decode;
  const decoded = await decodeOp.apply(
    { bytes, validatedBy: input.validatedBy, keepRaster: input.keepRaster, decodeSide: pipeline.normalize.maxSide },
    decodeConfig,
    ctx,
  );
  if (!decoded.keep) return { kept: false, passed, rejection: rejection('image', decodeOp.name, decoded) };
  if (decoded.value === undefined) throw new FilterWiringError(`"${decodeOp.name}" kept the image without returning its decoded view`);
  const image = decoded.value;
  passed.push(decodeOp.name);
  for (const { op, config } of pipeline.image) {
    const result = await op.apply({ bytes, decoded: image }, config, ctx);
    if (!result.keep) return { kept: false, passed, rejection: rejection('image', op.name, result), image };
    passed.push(op.name);
  }
  return { kept: true, passed, image };
}

/**
 * Runs every item operator on one record: the alt text first (no image is decoded for a junk alt),
 * then the image. Stops at the first rejection.
 */
export async function filterItem(item: FilterItem, pipeline: ResolvedFilterPipeline, ctx: OperatorContext = {}): Promise<ItemVerdict> {
  const passed: string[] = [];
  let text: TextVerdict | undefined;
  if (item.alt !== undefined) {
    text = await filterText(item.alt, pipeline, ctx);
    passed.push(...text.passed);
    if (!text.kept) return { kept: false, passed, rejection: text.rejection!, text };
  }
  if (item.image !== undefined) {
    const image = await filterImage(item.image, pipeline, ctx);
    passed.push(...image.passed);
    if (!image.kept) return text === undefined ? { kept: false, passed, rejection: image.rejection!, image } : { kept: false, passed, rejection: image.rejection!, text, image };
    return text === undefined ? { kept: true, passed, image } : { kept: true, passed, text, image };
  }
  return text === undefined ? { kept: true, passed } : { kept: true, passed, text };
}

// ---------------------------------------------------------------------------------------------
// Set operators
// ---------------------------------------------------------------------------------------------

export interface DedupResult {
  /** Per entry id: the first set operator's rejection, or null when every set operator kept it. */
  readonly verdicts: ReadonlyMap<string, FilterRejection | null>;
  /** The groups each set operator found, by operator name. */
  readonly groups: Readonly<Record<string, readonly DuplicateGroup[]>>;
  /** Operators that ran, in order. */
  readonly operators: readonly string[];
}

function runSet<E extends SetEntry>(kind: OperatorKind, entries: readonly E[], steps: readonly ResolvedStep<AnySetOperator>[]): DedupResult {
  const verdicts = new Map<string, FilterRejection | null>(entries.map((e) => [e.id, null]));
  const groups: Record<string, readonly DuplicateGroup[]> = {};
  let remaining: readonly E[] = entries;
  for (const { op, config } of steps) {
    const out = op.apply(remaining, config);
    groups[op.name] = out.groups;
    const rejected = new Set<string>();
    for (const { id, result } of out.verdicts) {
      if (!result.keep) {
        verdicts.set(id, rejection(kind, op.name, result));
        rejected.add(id);
      }
    }
    remaining = remaining.filter((e) => !rejected.has(e.id));
  }
  return { verdicts, groups, operators: steps.map((s) => s.op.name) };
}

/** Near-duplicate image removal over images that passed the item operators (ids: usually sha256). */
export function dedupImages(entries: readonly PhashEntry[], pipeline: ResolvedFilterPipeline): DedupResult {
  return runSet('image', entries, pipeline.imageSet);
}

/** Near-duplicate alt removal over alts that passed the item operators. */
export function dedupTexts(entries: readonly TextDedupEntry[], pipeline: ResolvedFilterPipeline): DedupResult {
  return runSet('text', entries, pipeline.textSet);
}

/** The entry set operators read, from a kept image's decoded view. */
export function phashEntry(id: string, image: DecodedImage): PhashEntry {
  return { id, phash: image.phash, width: image.width, height: image.height, bytes: image.bytes, fidelity: image.fidelity, frames: image.frames };
}

// ---------------------------------------------------------------------------------------------
// Counters
// ---------------------------------------------------------------------------------------------

export interface OperatorCounter {
  /** Items the operator judged. */
  in: number;
  kept: number;
  rejected: number;
  byReason: Record<string, number>;
}

/** Per operator name. Plain JSON: can be stored with a shard's done-marker and summed later. */
export type FilterCounters = Record<string, OperatorCounter>;

/** One zeroed counter per operator of the pipeline, in pipeline order. */
export function createCounters(pipeline: ResolvedFilterPipeline): FilterCounters {
  const counters: FilterCounters = {};
  const steps = [...pipeline.text, ...(pipeline.decode ? [pipeline.decode] : []), ...pipeline.image, ...pipeline.imageSet, ...pipeline.textSet];
  for (const { op } of steps) counters[op.name] = { in: 0, kept: 0, rejected: 0, byReason: {} };
  return counters;
}

function counterFor(counters: FilterCounters, name: string): OperatorCounter {
  let c = counters[name];
  if (c === undefined) counters[name] = c = { in: 0, kept: 0, rejected: 0, byReason: {} };
  return c;
}

/** Adds one item verdict: every operator it passed counts a keep, the rejecting one a rejection. */
export function countVerdict(counters: FilterCounters, verdict: { readonly passed: readonly string[]; readonly rejection?: FilterRejection | undefined }): void {
  for (const name of verdict.passed) {
    const c = counterFor(counters, name);
    c.in++;
    c.kept++;
  }
  if (verdict.rejection !== undefined) {
    const c = counterFor(counters, verdict.rejection.operator);
    c.in++;
    c.rejected++;
    c.byReason[verdict.rejection.reason] = (c.byReason[verdict.rejection.reason] ?? 0) + 1;
  }
}

/** Adds a set operators' result: each operator saw what the ones before it kept. */
export function countDedup(counters: FilterCounters, result: DedupResult): void {
  let seen = [...result.verdicts.entries()];
  for (const name of result.operators) {
    const c = counterFor(counters, name);
    for (const [, r] of seen) {
      c.in++;
      if (r !== null && r.operator === name) {
        c.rejected++;
        c.byReason[r.reason] = (c.byReason[r.reason] ?? 0) + 1;
      } else {
        c.kept++;
      }
    }
    seen = seen.filter(([, r]) => r === null || r.operator !== name);
  }
}

/** Sums counters (from shards, workers, languages) into a new object. */
export function mergeCounters(...all: readonly FilterCounters[]): FilterCounters {
  const out: FilterCounters = {};
  for (const counters of all) {
    for (const [name, c] of Object.entries(counters)) {
      const o = counterFor(out, name);
      o.in += c.in;
      o.kept += c.kept;
      o.rejected += c.rejected;
      for (const [reason, n] of Object.entries(c.byReason)) o.byReason[reason] = (o.byReason[reason] ?? 0) + n;
    }
  }
  return out;
}

/** Stage-level "rejected by reason" (reasons are unique across the built-in operators). */
export function rejectedByReason(counters: FilterCounters): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of Object.values(counters)) for (const [reason, n] of Object.entries(c.byReason)) out[reason] = (out[reason] ?? 0) + n;
  return out;
}
