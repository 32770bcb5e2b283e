import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { DEFAULT_FILTER_CONFIG, filterConfigSchema } from '../filter/config';
import { captionConfigSchema, fuseConfigSchema, llmConfigSchema, translateConfigSchema } from '../llm/config';
import { mergeConfigSchema } from '../merge/config';
import { crawlConfigSchema } from '../crawl/config';

/** The paper's eight languages, the default when a config names none. */
export const DEFAULT_LANGUAGES = ['ar', 'cs', 'hu', 'ko', 'ru', 'sr', 'th', 'vi'] as const;

/**
 * Stages in lifecycle order; later issues add crawl, finetune, evaluate. `merge` runs once per run,
 * after every language; the others run per language.
 */
export const STAGES = ['crawl', 'ingest', 'filter', 'caption', 'translate', 'fuse', 'merge'] as const;
export type StageName = (typeof STAGES)[number];
/** The stages a language workflow runs (merge runs once for the whole run). */
export type LanguageStageName = Exclude<StageName, 'merge'>;

/** What a stage reads: it runs only in a run that also runs these (earlier in the list). */
export const STAGE_NEEDS: Readonly<Record<StageName, readonly StageName[]>> = {
  crawl: [],
  ingest: [],
  filter: ['ingest'],
  caption: ['filter'],
  translate: ['caption'],
  fuse: ['filter'],
  merge: ['filter'],
};

const languageCode = z
  .string()
  .regex(/^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$/, 'a BCP-47 language code such as "th", "sr-Latn" or "pt-BR"');

const inputList = z
  .object({
    /** Local path (relative to the config file) or http(s) URL of a JSONL, TSV or CSV image-text list. */
    path: z.string().min(1),
    format: z.enum(['jsonl', 'tsv', 'csv']).optional(),
    /** Language of records that carry no `lang` column. */
    lang: languageCode.optional(),
  })
  .strict();

const fetchOverrides = z
  .object({
    connectTimeoutMs: z.number().int().positive(),
    readTimeoutMs: z.number().int().positive(),
    totalTimeoutMs: z.number().int().positive(),
    maxBytes: z.number().int().positive(),
    maxRedirects: z.number().int().min(0).max(20),
    retries: z.number().int().min(0).max(10),
    backoffBaseMs: z.number().int().min(0),
    backoffMaxMs: z.number().int().min(0),
    perHostConcurrency: z.number().int().positive(),
    perHostMinIntervalMs: z.number().int().min(0),
    userAgent: z.string().min(1),
    disallowedRobotsDirectives: z.array(z.string()),
  })
  .partial()
  .strict();

const ingest = z
  .object({
    /** Records per shard (one checkpointed activity). */
    shardSize: z.number().int().min(1).max(10_000).default(200),
    /** Shard activities in flight per language. */
    window: z.number().int().min(1).max(64).default(4),
    /** Downloads in flight per worker process, shared by the shard activities it runs. */
    concurrency: z.number().int().min(1).max(1024).default(32),
    /** Hosts or CIDRs exempt from the SSRF guard (e.g. "127.0.0.1/32" for a local test server). */
    allowPrivateNetworks: z.array(z.string()).default([]),
    /** Decompression-bomb guard: images declaring more pixels are rejected undecoded. */
    limitInputPixels: z.number().int().positive().default(100_000_000),
    fetch: fetchOverrides.default({}),
    /** Heartbeat timeout of a shard activity: how fast a dead worker's shard is handed to another. */
    heartbeatTimeoutSeconds: z.number().int().min(2).max(3600).default(60),
  })
  .strict();

export const runConfigSchema = z
  .object({
    /** Default run name (a run id is `<name>` or `<name>-<timestamp>`). */
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'lower-case letters, digits and dashes').default('mella'),
    languages: z.array(languageCode).min(1).default([...DEFAULT_LANGUAGES]),
    /** Default: every stage but the optional `fuse`. */
    stages: z.array(z.enum(STAGES)).min(1).default(STAGES.filter((s) => s !== 'fuse')),
    inputs: z.array(inputList).default([]),
    /** Native web pages (browser) and web archives (WARC) per language: the culture source (docs/crawl.md). */
    crawl: crawlConfigSchema.default(crawlConfigSchema.parse({})),
    ingest: ingest.default(ingest.parse({})),
    /** Operators, thresholds and per-language overrides of the filter stage (docs/filter.md). */
    filter: filterConfigSchema.default(DEFAULT_FILTER_CONFIG),
    /** OpenAI-compatible endpoints (no secrets: each names the environment variable of its key) and prices. */
    llm: llmConfigSchema.default(llmConfigSchema.parse({})),
    /** The language source: detailed descriptions by a multimodal model (docs/llm.md). */
    caption: captionConfigSchema.default(captionConfigSchema.parse({})),
    /** ... translated into each target language. */
    translate: translateConfigSchema.default(translateConfigSchema.parse({})),
    /** Optional (not in the default stages): target-language descriptions with the native alt as context. */
    fuse: fuseConfigSchema.default(fuseConfigSchema.parse({})),
    /** The dataset version: formats, split, mixing ratios, card (docs/merge.md). */
    merge: mergeConfigSchema.default(mergeConfigSchema.parse({})),
  })
  .strict()
  .superRefine((config, ctx) => {
    const order = (s: StageName) => STAGES.indexOf(s);
    config.stages.forEach((stage, i) => {
      if (config.stages.indexOf(stage) !== i) ctx.addIssue({ code: 'custom', path: ['stages', i], message: `"${stage}" is listed twice` });
      if (i > 0 && order(config.stages[i - 1]!) > order(stage)) {
        ctx.addIssue({ code: 'custom', path: ['stages', i], message: `stages run in lifecycle order (${STAGES.join(', ')}); "${stage}" comes before "${config.stages[i - 1]}"` });
      }
      if ((stage === 'caption' || stage === 'translate' || stage === 'fuse') && !config.llm.endpoints[config[stage].endpoint]) {
        ctx.addIssue({ code: 'custom', path: [stage, 'endpoint'], message: `no endpoint "${config[stage].endpoint}" in llm.endpoints` });
      }
      for (const need of STAGE_NEEDS[stage]) {
        if (!config.stages.includes(need)) ctx.addIssue({ code: 'custom', path: ['stages', i], message: `"${stage}" reads what "${need}" produces: list "${need}" too` });
      }
    });
  });

export type RunConfig = z.infer<typeof runConfigSchema>;
export type IngestConfig = RunConfig['ingest'];
export type RunFilterConfig = RunConfig['filter'];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads and validates a YAML or JSON config file; relative input paths are resolved against the file. */
export function loadConfigFile(file: string): RunConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`config ${file} is not valid YAML/JSON: ${(err as Error).message}`);
  }
  const config = parseConfig(raw ?? {}, file);
  const base = path.dirname(path.resolve(file));
  config.inputs = config.inputs.map((i) => (/^https?:\/\//.test(i.path) ? i : { ...i, path: path.resolve(base, i.path) }));
  for (const site of Object.values(config.crawl.sites)) site.warc = site.warc.map((w) => (/^https?:\/\//.test(w) ? w : path.resolve(base, w)));
  return config;
}

export function parseConfig(raw: unknown, where = 'config'): RunConfig {
  const result = runConfigSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new ConfigError(`invalid ${where}:\n${lines.join('\n')}`);
  }
  return result.data;
}
