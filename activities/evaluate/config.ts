/**
 * The evaluate config: which dataset version (or export directory) and split, which models through
 * which OpenAI-compatible endpoints, and how the work is sharded. Endpoints are configured exactly like
 * the run config's `llm` section (activities/llm/config.ts): named, no secrets (an endpoint names the
 * environment variable of its key, which only the mella-llm workers read).
 *
 *   version: v-demo-20260115            # or exportDir: /data/exports/mella-v7
 *   split: test
 *   llm:
 *     endpoints:
 *       base:  { baseUrl: "http://gpu-1:8000/v1" }
 *       tuned: { baseUrl: "http://gpu-2:8000/v1", apiKeyEnv: VLLM_API_KEY }
 *   models:
 *     - { name: qwen2-vl-7b, role: baseline, endpoint: base, model: Qwen/Qwen2-VL-7B-Instruct }
 *     - { name: mella-th, role: finetuned, endpoint: tuned, model: mella-lora }
 *   limitPerLanguage: 500
 */
import fs from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { llmConfigSchema } from '../llm/config';
import { ConfigError } from '../shared/config';

export const EVAL_ROLES = ['baseline', 'finetuned', 'other'] as const;
export type EvalRole = (typeof EVAL_ROLES)[number];

export const evalModelSchema = z
  .object({
    /** Name in reports and tables (unique within the evaluation). */
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, ".", "_" and "-" (at most 64)'),
    role: z.enum(EVAL_ROLES).default('other'),
    /** An endpoint named in `llm.endpoints`. */
    endpoint: z.string().default('default'),
    /** The model id the endpoint serves (a vLLM LoRA adapter name, for example). */
    model: z.string().min(1),
    maxTokens: z.number().int().min(16).max(32_768).default(512),
    temperature: z.number().min(0).max(2).default(0),
    /**
     * Adds a system line `Target language: <lang>` to the training instruction. Off by default: the model
     * gets exactly what it was trained on. A base model that answers in English may need it.
     */
    targetLanguageHint: z.boolean().default(false),
  })
  .strict();
export type EvalModel = z.infer<typeof evalModelSchema>;

export const evaluateConfigSchema = z
  .object({
    /** A dataset version id (dataset_versions), or ... */
    version: z.string().min(1).optional(),
    /** ... an export directory (its manifest.jsonl). */
    exportDir: z.string().min(1).optional(),
    split: z.enum(['train', 'validation', 'test']).default('test'),
    /** Only these languages (default: every language of the split). */
    languages: z.array(z.string().min(1)).optional(),
    /** At most this many samples per language (the first in manifest order). */
    limitPerLanguage: z.number().int().min(1).optional(),
    llm: llmConfigSchema.default(llmConfigSchema.parse({})),
    models: z.array(evalModelSchema).min(1),
    /** Longest side of the image sent, as the caption stage sends it. */
    imageMaxSide: z.number().int().min(64).max(4096).default(768),
    /** Part of every cache key: bump it when the request built from a sample changes. */
    promptVersion: z.string().min(1).default('eval-v1'),
    /** Samples per prediction shard (one checkpointed activity per model). */
    shardSize: z.number().int().min(1).max(10_000).default(50),
    /** Prediction shards in flight per model. */
    window: z.number().int().min(1).max(64).default(4),
    /** Where the report goes; default `<export dir>/../evaluations/<eval id>`. */
    outputDir: z.string().min(1).optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (!c.version === !c.exportDir) ctx.addIssue({ code: 'custom', path: ['version'], message: 'give exactly one of "version" and "exportDir"' });
    const seen = new Set<string>();
    c.models.forEach((m, i) => {
      if (seen.has(m.name)) ctx.addIssue({ code: 'custom', path: ['models', i, 'name'], message: `model name "${m.name}" is used twice` });
      seen.add(m.name);
      if (!c.llm.endpoints[m.endpoint]) ctx.addIssue({ code: 'custom', path: ['models', i, 'endpoint'], message: `no endpoint "${m.endpoint}" in llm.endpoints` });
    });
    if (c.models.filter((m) => m.role === 'baseline').length > 1) ctx.addIssue({ code: 'custom', path: ['models'], message: 'at most one model has role "baseline" (deltas are against it)' });
  });
export type EvaluateConfig = z.infer<typeof evaluateConfigSchema>;

export function parseEvaluateConfig(raw: unknown): EvaluateConfig {
  const r = evaluateConfigSchema.safeParse(raw);
  if (!r.success) throw new ConfigError(`evaluate config: ${r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** A YAML or JSON file. */
export function loadEvaluateConfigFile(file: string): EvaluateConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read evaluate config ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`${file}: ${(err as Error).message}`);
  }
  return parseEvaluateConfig(raw ?? {});
}

export const EVAL_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
