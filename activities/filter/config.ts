/**
 * The `filter` section of the run config: which operators run, in which order, with which options,
 * per kind (image, text), with per-language overrides. Every operator validates its own options with
 * its own zod schema; this schema checks names, order and every language's merged options up front, so
 * a bad threshold is a configuration error when the run starts, not a failure in the middle of a shard.
 *
 *   filter:
 *     image:
 *       operators: [decodable, animated, min-side, aspect-ratio, uniform-content, bytes-per-pixel, phash-dedup]
 *       options:
 *         min-side: { minSide: 256 }
 *         animated: { mode: reject }
 *     text:
 *       options:
 *         length: { minWords: 3 }
 *     normalize: { format: webp, maxSide: 1280 }
 *     languages:
 *       th:
 *         text: { options: { length: { minGraphemes: 8 } } }
 *       ko:
 *         text: { operators: [normalize, boilerplate, length, language-id, near-duplicate] }
 *
 * Merging, for a language: its `operators` list replaces the base list when given; its options for an
 * operator are merged key by key over the base options for it (a nested object such as
 * `language-id.accept` is replaced whole), and the result over the operator's defaults.
 * Order rules: item operators first, set operators (deduplication) after them; the image list starts
 * with `decodable` (every other image operator reads what it decoded).
 */
import { z } from 'zod';
import { aspectRatioOperator } from './image/aspect-ratio';
import { animatedOperator } from './image/animated';
import { bytesPerPixelOperator } from './image/bytes-per-pixel';
import { decodableOperator } from './image/decodable';
import { minSideOperator } from './image/min-side';
import { normalizeImageConfigSchema } from './image/normalize';
import { nsfwOperator } from './image/nsfw';
import { phashDedupOperator } from './image/phash';
import { uniformContentOperator } from './image/uniform-content';
import { OperatorRegistry, type OperatorKind } from './operator';
import { boilerplateOperator } from './text/boilerplate';
import { languageIdOperator } from './text/language-id';
import { lengthOperator } from './text/length';
import { nearDuplicateOperator } from './text/near-duplicate';
import { normalizeTextOperator } from './text/normalize';
import { repeatedSiteAltOperator } from './text/repeated-site-alt';
import { baseLanguage } from './text/segment';

/** Every built-in operator, by name. */
export const FILTER_OPERATORS = new OperatorRegistry([
  decodableOperator,
  animatedOperator,
  minSideOperator,
  aspectRatioOperator,
  uniformContentOperator,
  bytesPerPixelOperator,
  nsfwOperator, // optional: not in DEFAULT_IMAGE_OPERATORS
  phashDedupOperator,
  normalizeTextOperator,
  lengthOperator,
  boilerplateOperator,
  repeatedSiteAltOperator,
  languageIdOperator,
  nearDuplicateOperator,
]);

/**
 * Cheapest and most specific first: decode, then size checks that read the header, then pixel
 * statistics (transparent before "few bytes per pixel", so a transparent spacer gets the specific
 * reason), deduplication last.
 */
export const DEFAULT_IMAGE_OPERATORS = [
  'decodable',
  'animated',
  'min-side',
  'aspect-ratio',
  'uniform-content',
  'bytes-per-pixel',
  'phash-dedup',
] as const;

/**
 * Normalize first (everything after reads its output); boilerplate before length, because its reasons
 * are the more specific ones ("Nahled" is a generic label before it is a one-word alt); language
 * identification, the costliest, last among the item operators.
 */
export const DEFAULT_TEXT_OPERATORS = ['normalize', 'boilerplate', 'length', 'repeated-site-alt', 'language-id', 'near-duplicate'] as const;

const languageCode = z
  .string()
  .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'a BCP-47 language code such as "th", "sr-Latn" or "pt-BR"');

/**
 * The image-text similarity pass: the cosine similarity of the image's and the alt's embeddings from an
 * OpenAI-compatible embeddings endpoint (a CLIP-style model on vLLM, for example), with a floor per
 * language. Images go as vLLM's chat-style embeddings input (`messages` with an `image_url`), alts as
 * plain `input`.
 */
export const imageTextSimilarityConfigSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** A named endpoint of the `llm` section. */
    endpoint: z.string().default('default'),
    model: z.string().min(1).default('openai/clip-vit-base-patch32'),
    /** Cosine similarity below this rejects the record (`low_image_text_similarity`). */
    minSimilarity: z.number().min(-1).max(1).default(0.2),
    /** Floors by language (exact tag, then base language), over `minSimilarity`. */
    languages: z.record(languageCode, z.number().min(-1).max(1)).default({}),
    /** Longest side of the image sent (from the training copy). */
    imageMaxSide: z.number().int().min(32).max(4096).default(336),
    /** Text sent with the image in its `messages` (some models want an instruction; CLIP none). */
    imagePrompt: z.string().default(''),
    /** Vector length asked for (`dimensions`); default: the model's. */
    dimensions: z.number().int().min(1).max(8192).optional(),
    /** Alts per text request. */
    textBatch: z.number().int().min(1).max(2048).default(64),
  })
  .strict();
export type ImageTextSimilarityConfig = z.infer<typeof imageTextSimilarityConfigSchema>;

const operatorOptions = z.record(z.string(), z.record(z.string(), z.unknown()));

const section = (defaults: readonly string[]) =>
  z
    .object({
      operators: z.array(z.string()).default([...defaults]),
      options: operatorOptions.default({}),
    })
    .strict();

const languageSection = z
  .object({
    operators: z.array(z.string()).optional(),
    options: operatorOptions.optional(),
  })
  .strict();

const filterConfigObject = z
  .object({
    image: section(DEFAULT_IMAGE_OPERATORS).default({ operators: [...DEFAULT_IMAGE_OPERATORS], options: {} }),
    text: section(DEFAULT_TEXT_OPERATORS).default({ operators: [...DEFAULT_TEXT_OPERATORS], options: {} }),
    /** The training-set copy of every kept image (image/normalize.ts). */
    normalize: normalizeImageConfigSchema.default(normalizeImageConfigSchema.parse({})),
    /**
     * Near-duplicates of images that earlier dataset versions published (stage/published.ts), with
     * `phash-dedup`'s distance: `dataset` compares with the earlier versions of this run's dataset
     * (`merge.name`), `all` with every version in the database, `none` turns it off.
     */
    dedupAgainstVersions: z.enum(['dataset', 'all', 'none']).default('dataset'),
    /** Optional, off by default: image-text similarity through an embeddings endpoint (stage/similarity.ts). */
    imageTextSimilarity: imageTextSimilarityConfigSchema.default(imageTextSimilarityConfigSchema.parse({})),
    /** Overrides by language (exact tag first, then its base language: "sr-Latn", then "sr"). */
    languages: z.record(languageCode, z.object({ image: languageSection.optional(), text: languageSection.optional() }).strict()).default({}),
  })
  .strict();

type FilterConfigShape = z.infer<typeof filterConfigObject>;

/** The operator names and raw (unparsed, merged) options that apply to one language and kind. */
export interface OperatorPlan {
  readonly names: readonly string[];
  readonly options: Readonly<Record<string, Record<string, unknown>>>;
}

export function languageOverride(config: FilterConfigShape, lang: string): FilterConfigShape['languages'][string] | undefined {
  return config.languages[lang] ?? config.languages[baseLanguage(lang)];
}

/** Merges the base section with a language's override (see the module comment). */
export function operatorPlan(config: FilterConfigShape, kind: OperatorKind, lang?: string): OperatorPlan {
  const base = config[kind];
  const over = lang === undefined ? undefined : languageOverride(config, lang)?.[kind];
  const options: Record<string, Record<string, unknown>> = {};
  for (const [name, opts] of Object.entries(base.options)) options[name] = { ...opts };
  for (const [name, opts] of Object.entries(over?.options ?? {})) options[name] = { ...(options[name] ?? {}), ...opts };
  return { names: over?.operators ?? base.operators, options };
}

function checkPlan(plan: OperatorPlan, kind: OperatorKind, registry: OperatorRegistry, path: (string | number)[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  let setSeen = false;
  plan.names.forEach((name, i) => {
    const op = registry.get(name);
    const at = [...path, 'operators', i];
    if (op === undefined) {
      ctx.addIssue({ code: 'custom', path: at, message: `unknown ${kind} operator "${name}" (known: ${registry.names(kind).join(', ')})` });
      return;
    }
    if (op.kind !== kind) {
      ctx.addIssue({ code: 'custom', path: at, message: `"${name}" is a ${op.kind} operator, not a ${kind} one` });
      return;
    }
    if (seen.has(name)) ctx.addIssue({ code: 'custom', path: at, message: `"${name}" is listed twice` });
    seen.add(name);
    if (op.scope === 'set') setSeen = true;
    else if (setSeen) ctx.addIssue({ code: 'custom', path: at, message: `item operator "${name}" must come before the set (deduplication) operators` });
    if (op.scope === 'item' && op.input === 'bytes' && i !== 0) {
      ctx.addIssue({ code: 'custom', path: at, message: `"${name}" decodes the image and must be the first image operator` });
    }
  });
  if (kind === 'image') {
    const first = plan.names[0] === undefined ? undefined : registry.get(plan.names[0]);
    const anyImage = plan.names.some((n) => registry.get(n)?.kind === 'image');
    if (anyImage && !(first?.scope === 'item' && first.input === 'bytes')) {
      ctx.addIssue({ code: 'custom', path: [...path, 'operators'], message: 'the image operators must start with "decodable"' });
    }
  }
  for (const [name, opts] of Object.entries(plan.options)) {
    const op = registry.get(name);
    const at = [...path, 'options', name];
    if (op === undefined || op.kind !== kind) {
      ctx.addIssue({ code: 'custom', path: at, message: `options for unknown ${kind} operator "${name}"` });
      continue;
    }
    const parsed = op.configSchema.safeParse(opts);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        ctx.addIssue({ code: 'custom', path: [...at, ...issue.path.map((p) => (typeof p === 'symbol' ? String(p) : p))], message: issue.message });
      }
    }
  }
}

/** The filter config schema for a registry (custom operators register first, then build this). */
export function createFilterConfigSchema(registry: OperatorRegistry) {
  return filterConfigObject.superRefine((config, ctx) => {
    for (const kind of ['image', 'text'] as const) {
      checkPlan(operatorPlan(config, kind), kind, registry, [kind], ctx);
      for (const lang of Object.keys(config.languages)) {
        if (languageOverride(config, lang)?.[kind] === undefined) continue;
        checkPlan(operatorPlan(config, kind, lang), kind, registry, ['languages', lang, kind], ctx);
      }
    }
  });
}

export const filterConfigSchema = createFilterConfigSchema(FILTER_OPERATORS);
export type FilterConfig = z.infer<typeof filterConfigSchema>;
/** What the config file may contain (everything optional). */
export type FilterConfigInput = z.input<typeof filterConfigSchema>;

/** The defaults: the default operator lists, no overrides, the default training-copy settings. */
export const DEFAULT_FILTER_CONFIG: FilterConfig = filterConfigSchema.parse({});
