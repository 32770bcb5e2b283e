/**
 * The `llm`, `caption` and `translate` sections of the run config. Endpoints are named; a stage names
 * the endpoint it calls. Secrets never appear here: an endpoint names the environment variable that
 * holds its key, which only the `mella-llm` workers read.
 *
 *   llm:
 *     endpoints:
 *       default: { requestsPerMinute: 500, tokensPerMinute: 200000, concurrency: 8 }   # OPENAI_BASE_URL / OPENAI_API_KEY
 *       vllm:    { baseUrl: "http://gpu-1:8000/v1", apiKeyEnv: VLLM_API_KEY }
 *     prices:
 *       gpt-4o-mini: { inputPerMillion: 0.15, outputPerMillion: 0.60 }
 *   caption:   { endpoint: default, model: gpt-4o-mini }
 *   translate: { endpoint: vllm, model: Qwen/Qwen2.5-7B-Instruct, glossary: { th: { "tuk-tuk": "ตุ๊กตุ๊ก" } } }
 */
import { z } from 'zod';

const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, 'an environment variable name such as OPENAI_API_KEY');

export const endpointConfigSchema = z
  .object({
    /** OpenAI-compatible base URL ending in /v1; default: the worker's OPENAI_BASE_URL. */
    baseUrl: z.url({ protocol: /^https?$/ }).optional(),
    /** Environment variable (of the llm workers) that holds the API key. */
    apiKeyEnv: envName.default('OPENAI_API_KEY'),
    /** Requests in flight per worker process. */
    concurrency: z.number().int().min(1).max(1024).default(8),
    requestsPerMinute: z.number().int().min(1).default(500),
    /** Prompt + completion tokens per minute (estimated before the call, counted after). */
    tokensPerMinute: z.number().int().min(100).default(200_000),
    timeoutMs: z.number().int().min(100).default(120_000),
    /** Attempts per request for retryable failures (429, 5xx, timeouts, malformed answers). */
    maxAttempts: z.number().int().min(1).max(20).default(6),
    backoffBaseMs: z.number().int().min(0).default(1000),
    backoffMaxMs: z.number().int().min(0).default(60_000),
  })
  .strict();
export type EndpointConfig = z.infer<typeof endpointConfigSchema>;

const price = z.object({ inputPerMillion: z.number().min(0), outputPerMillion: z.number().min(0) }).strict();

export const llmConfigSchema = z
  .object({
    endpoints: z.record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/), endpointConfigSchema).default({ default: endpointConfigSchema.parse({}) }),
    /** USD per million tokens, by model name. A model without a price costs 0 in the summary (and says so). */
    prices: z.record(z.string(), price).default({}),
  })
  .strict();
export type LlmConfig = z.infer<typeof llmConfigSchema>;

const stageBase = {
  endpoint: z.string().default('default'),
  model: z.string().min(1).default('gpt-4o-mini'),
  temperature: z.number().min(0).max(2).default(0),
  maxTokens: z.number().int().min(16).max(32_768).default(1024),
  /** Items per shard (one checkpointed activity). */
  shardSize: z.number().int().min(1).max(10_000).default(50),
  /** Shard activities in flight per language. */
  window: z.number().int().min(1).max(64).default(4),
};

export const captionConfigSchema = z
  .object({
    ...stageBase,
    promptVersion: z.string().default('caption-v1'),
    temperature: stageBase.temperature.default(0.2),
    /** Longest side of the image sent (resized from the training copy), in pixels. */
    imageMaxSide: z.number().int().min(64).max(4096).default(768),
    /** Bounds of a valid description, in words. */
    minWords: z.number().int().min(1).default(25),
    maxWords: z.number().int().min(1).default(400),
    /** Language the descriptions are written in (the paper: a high-resource language). */
    sourceLanguage: z.string().default('en'),
  })
  .strict();
export type CaptionConfig = z.infer<typeof captionConfigSchema>;

export const translateConfigSchema = z
  .object({
    ...stageBase,
    promptVersion: z.string().default('translate-v1'),
    /** Terms to render a fixed way, per target language: { th: { "night market": "ตลาดกลางคืน" } }. */
    glossary: z.record(z.string(), z.record(z.string(), z.string())).default({}),
    /** Bounds of target/source length in graphemes. */
    minLengthRatio: z.number().gt(0).default(0.2),
    maxLengthRatio: z.number().gt(0).default(3),
    /** Highest share of Latin letters left in a translation into a non-Latin script. */
    maxLatinShare: z.number().min(0).max(1).default(0.3),
    /** Highest share of English function words left in a translation into a Latin script. */
    maxEnglishShare: z.number().min(0).max(1).default(0.12),
  })
  .strict();
export type TranslateConfig = z.infer<typeof translateConfigSchema>;

export const fuseConfigSchema = z
  .object({
    ...stageBase,
    promptVersion: z.string().default('fuse-v1'),
    temperature: stageBase.temperature.default(0.2),
    imageMaxSide: z.number().int().min(64).max(4096).default(768),
    /** Least graphemes of a valid description (it must say more than the alt it was given). */
    minGraphemes: z.number().int().min(1).default(60),
  })
  .strict();
export type FuseConfig = z.infer<typeof fuseConfigSchema>;
