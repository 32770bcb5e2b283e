/**
 * The fine-tune config (one YAML/JSON file for `mella finetune start --config`, validated with zod;
 * unknown keys are errors). It travels in the workflow input, so it holds no secrets and nothing that
 * belongs to the machine: GPU visibility, the trainer's python and the LLaMA-Factory binary come from
 * the gpu worker's environment (./worker-env.ts).
 *
 *   backend: mella                # mella (trainer/mella_train.py) | llamafactory (llamafactory-cli train)
 *   model: tiny-random            # mella: tiny-random or a local HF model dir; llamafactory: a dir or an HF id
 *   method: lora                  # lora | full
 *   template: qwen2_vl            # llamafactory's chat template (the mella trainer is Qwen2-VL only)
 *   hyperparameters:              # names follow LLaMA-Factory's keys, camel-cased
 *     learningRate: 1.0e-4
 *     maxSteps: 0                 # > 0 overrides numTrainEpochs
 *     numTrainEpochs: 3
 *     perDeviceTrainBatchSize: 1
 *     gradientAccumulationSteps: 8
 *     loraRank: 8
 *     additionalTarget: [lm_head] # with tiny-random: its random head must train (docs/trainer.md)
 *     saveSteps: 500
 *   extraArgs: ["--cpu-threads", "2"]   # allow-listed per backend (see below)
 *   heartbeatTimeoutSeconds: 120  # how fast a dead gpu worker's job moves to another worker
 *   stallTimeoutSeconds: 1800     # a trainer silent this long is killed and the attempt retried
 */
import fs from 'node:fs';
import YAML from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../shared/config';
import { LLAMAFACTORY_OWNED_KEYS, LLAMAFACTORY_KEYS } from './llamafactory-keys';

export const FINETUNE_BACKENDS = ['mella', 'llamafactory'] as const;
export type FinetuneBackend = (typeof FINETUNE_BACKENDS)[number];

/** The project trainer's tiny randomly initialised Qwen2-VL (built locally; no download). */
export const TINY_MODEL = 'tiny-random';

/**
 * Options of trainer/mella_train.py that `extraArgs` may pass (docs/trainer.md). Everything the
 * activity owns (dataset, output, resume, the parent watch, signal saving) or that `hyperparameters`
 * already maps is refused, so one setting has one source.
 */
export const MELLA_EXTRA_FLAGS = ['--validate-images', '--default-system', '--tiny-vocab-size', '--cpu-threads'] as const;

const hyperparametersSchema = z
  .object({
    learningRate: z.number().positive().default(1e-4),
    numTrainEpochs: z.number().positive().default(3),
    maxSteps: z.number().int().min(0).default(0),
    perDeviceTrainBatchSize: z.number().int().min(1).default(1),
    gradientAccumulationSteps: z.number().int().min(1).default(1),
    lrSchedulerType: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
    warmupRatio: z.number().min(0).lt(1).default(0),
    warmupSteps: z.number().int().min(0).default(0),
    weightDecay: z.number().min(0).default(0),
    maxGradNorm: z.number().min(0).default(1),
    seed: z.number().int().default(42),
    cutoffLen: z.number().int().min(1).default(2048),
    imageMaxPixels: z.number().int().min(1).default(768 * 768),
    loraRank: z.number().int().min(1).default(8),
    loraAlpha: z.number().positive().default(16),
    loraDropout: z.number().min(0).lt(1).default(0.05),
    /** `all` or module names. */
    loraTarget: z.union([z.literal('all'), z.array(z.string().regex(/^[A-Za-z0-9_.]+$/)).min(1)]).default('all'),
    /** Modules trained in full and saved with the adapter (peft modules_to_save), e.g. lm_head. */
    additionalTarget: z.array(z.string().regex(/^[A-Za-z0-9_.]+$/)).default([]),
    freezeVisionTower: z.boolean().default(true),
    /** Unset: each backend's default (mella: off; LLaMA-Factory: on). */
    gradientCheckpointing: z.boolean().optional(),
    loggingSteps: z.number().int().min(1).default(1),
    saveSteps: z.number().int().min(0).default(500),
    saveTotalLimit: z.number().int().min(0).default(3),
    /** auto: bf16 on a GPU that supports it, else fp32 (mella); bf16 for llamafactory. */
    dtype: z.enum(['auto', 'bf16', 'fp16', 'fp32']).default('auto'),
    /** mella only: auto (cuda if visible, else cpu), cpu, cuda, cuda:N. */
    device: z.string().regex(/^(auto|cpu|cuda(:\d+)?)$/).default('auto'),
  })
  .strict();

export const finetuneConfigSchema = z
  .object({
    backend: z.enum(FINETUNE_BACKENDS).default('mella'),
    model: z.string().min(1).default(TINY_MODEL),
    method: z.enum(['lora', 'full']).default('lora'),
    template: z.string().regex(/^[A-Za-z0-9_.-]+$/).default('qwen2_vl'),
    hyperparameters: hyperparametersSchema.default(hyperparametersSchema.parse({})),
    extraArgs: z.array(z.string()).default([]),
    /** Where `<jobId>/` is created on the gpu worker (default `<state dir>/models`). */
    outputRoot: z.string().min(1).optional(),
    heartbeatTimeoutSeconds: z.number().int().min(2).max(3600).default(120),
    stallTimeoutSeconds: z.number().int().min(10).max(7 * 24 * 3600).default(1800),
    /** After SIGTERM (cancellation, stall), how long the trainer may take to checkpoint before SIGKILL. */
    killGraceSeconds: z.number().int().min(1).max(3600).default(60),
    /** The training activity's start-to-close timeout. */
    maxHours: z.number().positive().max(24 * 30).default(72),
    /** Attempts of the training activity (a lost worker counts one). */
    maxAttempts: z.number().int().min(1).max(1000).default(20),
    retryInitialSeconds: z.number().positive().max(3600).default(10),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.backend === 'llamafactory' && c.model === TINY_MODEL) {
      ctx.addIssue({ code: 'custom', path: ['model'], message: `"${TINY_MODEL}" exists only in the mella trainer; llamafactory needs a model dir or an HF id` });
    }
    if (c.backend === 'mella' && c.model !== TINY_MODEL && !c.model.startsWith('/') && !c.model.startsWith('.')) {
      ctx.addIssue({ code: 'custom', path: ['model'], message: `the mella trainer takes "${TINY_MODEL}" or a local model dir (an absolute or ./relative path); it never downloads` });
    }
    if (c.stallTimeoutSeconds <= c.heartbeatTimeoutSeconds) {
      ctx.addIssue({ code: 'custom', path: ['stallTimeoutSeconds'], message: 'must be longer than heartbeatTimeoutSeconds' });
    }
    const problem = c.backend === 'mella' ? checkMellaExtraArgs(c.extraArgs) : checkLlamaFactoryExtraArgs(c.extraArgs);
    if (problem) ctx.addIssue({ code: 'custom', path: ['extraArgs'], message: problem });
  });

export type FinetuneConfig = z.infer<typeof finetuneConfigSchema>;
export type FinetuneHyperparameters = FinetuneConfig['hyperparameters'];

/** A fine-tune config or its file is invalid: the job fails at once (non-retryable); the CLI prints it as one line. */
export class FinetuneConfigError extends ConfigError {
  override name = 'FinetuneConfigError';
}

/** `--flag value`, `--flag=value` or a lone `--flag`; every flag must be in MELLA_EXTRA_FLAGS. */
export function checkMellaExtraArgs(args: readonly string[]): string | undefined {
  if (args.length && !args[0]!.startsWith('--')) return `extraArgs must start with a flag, got "${args[0]}"`;
  for (const a of args) {
    if (!a.startsWith('--')) continue;
    const flag = a.split('=')[0]!;
    if (!(MELLA_EXTRA_FLAGS as readonly string[]).includes(flag)) {
      return `"${flag}" is not allowed for the mella backend (allowed: ${MELLA_EXTRA_FLAGS.join(', ')}; the rest is set from the config)`;
    }
  }
  return undefined;
}

/** `key=value` pairs written into the LLaMA-Factory YAML; keys must be documented ones the activity does not own. */
export function checkLlamaFactoryExtraArgs(args: readonly string[]): string | undefined {
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq <= 0) return `llamafactory extraArgs are key=value pairs for the training YAML, got "${a}"`;
    const key = a.slice(0, eq);
    if (!LLAMAFACTORY_KEYS.has(key)) return `"${key}" is not a documented LLaMA-Factory training key`;
    if (LLAMAFACTORY_OWNED_KEYS.has(key)) return `"${key}" is set by the activity or from the config, not through extraArgs`;
  }
  return undefined;
}

export function parseFinetuneConfig(raw: unknown, where = 'fine-tune config'): FinetuneConfig {
  const result = finetuneConfigSchema.safeParse(raw ?? {});
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new FinetuneConfigError(`invalid ${where}:\n${lines.join('\n')}`);
  }
  return result.data;
}

/** Reads a YAML or JSON fine-tune config file. */
export function loadFinetuneConfigFile(file: string): FinetuneConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new FinetuneConfigError(`cannot read fine-tune config ${file}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = YAML.parse(text);
  } catch (err) {
    throw new FinetuneConfigError(`fine-tune config ${file} is not valid YAML/JSON: ${(err as Error).message}`);
  }
  return parseFinetuneConfig(raw, file);
}
