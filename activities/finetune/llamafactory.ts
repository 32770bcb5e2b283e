/**
 * The LLaMA-Factory backend: a training YAML for `llamafactory-cli train <yaml>`, progress from its
 * `<output_dir>/trainer_log.jsonl` (LogCallback: one JSON object per logging step), checkpoints found
 * on disk (HF Trainer's `checkpoint-<step>/`), resume through `resume_from_checkpoint`.
 *
 * Not run here: LLaMA-Factory (and its torch/deepspeed stack) is not installed in this project's
 * environment. The YAML is checked against LLaMA-Factory's documented keys (./llamafactory-keys.ts)
 * and the log parser against lines in LogCallback's format; see docs/finetune.md.
 */
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import YAML from 'yaml';
import type { FinetuneConfig } from './config';
import { progressFromLogObject, type TrainerEvent } from './events';
import { LLAMAFACTORY_KEYS } from './llamafactory-keys';
import type { TrainerCommand } from './mella-command';
import { llamaFactoryCli } from './worker-env';

export const LLAMAFACTORY_YAML = 'mella_llamafactory_train.yaml';
export const TRAINER_LOG = 'trainer_log.jsonl';

export type YamlValue = string | number | boolean | null;

/** The training YAML as an object (key order = LLaMA-Factory's example layout). Throws on a key outside the allow-list. */
export function llamaFactoryTrainingArgs(a: {
  datasetDir: string;
  datasetName: string;
  outputDir: string;
  config: FinetuneConfig;
  resumeFrom: string | null;
}): Record<string, YamlValue> {
  const { config: c } = a;
  const h = c.hyperparameters;
  const y: Record<string, YamlValue> = {
    // model
    model_name_or_path: c.model,
    image_max_pixels: h.imageMaxPixels,
    // method
    stage: 'sft',
    do_train: true,
    finetuning_type: c.method,
    freeze_vision_tower: h.freezeVisionTower,
  };
  if (c.method === 'lora') {
    y.lora_rank = h.loraRank;
    y.lora_alpha = h.loraAlpha;
    y.lora_dropout = h.loraDropout;
    y.lora_target = h.loraTarget === 'all' ? 'all' : h.loraTarget.join(',');
    if (h.additionalTarget.length) y.additional_target = h.additionalTarget.join(',');
  }
  if (h.gradientCheckpointing !== undefined) y.disable_gradient_checkpointing = !h.gradientCheckpointing;
  Object.assign(y, {
    // dataset: the export is the dataset_dir; its dataset_info.json names the entries; image paths are
    // relative to it (media_dir defaults to dataset_dir)
    dataset_dir: a.datasetDir,
    dataset: a.datasetName,
    template: c.template,
    cutoff_len: h.cutoffLen,
    // output: never overwrite (the checkpoints are what a retry resumes from); keep optimizer states
    output_dir: a.outputDir,
    overwrite_output_dir: false,
    logging_steps: h.loggingSteps,
    save_steps: h.saveSteps > 0 ? h.saveSteps : 500,
    save_total_limit: h.saveTotalLimit > 0 ? h.saveTotalLimit : null,
    save_only_model: false,
    plot_loss: true,
    report_to: 'none',
    // train
    per_device_train_batch_size: h.perDeviceTrainBatchSize,
    gradient_accumulation_steps: h.gradientAccumulationSteps,
    learning_rate: h.learningRate,
    num_train_epochs: h.numTrainEpochs,
    lr_scheduler_type: h.lrSchedulerType,
    warmup_ratio: h.warmupRatio,
    weight_decay: h.weightDecay,
    max_grad_norm: h.maxGradNorm,
    seed: h.seed,
    bf16: h.dtype === 'auto' || h.dtype === 'bf16',
    fp16: h.dtype === 'fp16',
    ddp_timeout: 180000000,
    resume_from_checkpoint: a.resumeFrom,
  } satisfies Record<string, YamlValue>);
  if (h.maxSteps > 0) y.max_steps = h.maxSteps;
  if (h.warmupSteps > 0) y.warmup_steps = h.warmupSteps;
  if (y.save_total_limit === null) delete y.save_total_limit;
  for (const pair of c.extraArgs) {
    const eq = pair.indexOf('=');
    y[pair.slice(0, eq)] = parseScalar(pair.slice(eq + 1));
  }
  const unknown = Object.keys(y).filter((k) => !LLAMAFACTORY_KEYS.has(k));
  if (unknown.length) throw new Error(`LLaMA-Factory YAML with undocumented keys: ${unknown.join(', ')}`);
  return y;
}

/** `extraArgs` values are YAML scalars: `8` is a number, `true` a boolean, anything else a string. */
function parseScalar(text: string): YamlValue {
  const v: unknown = YAML.parse(text);
  return v === null || ['string', 'number', 'boolean'].includes(typeof v) ? (v as YamlValue) : text;
}

/**
 * The YAML text. LLaMA-Factory reads it with PyYAML (through OmegaConf), which follows YAML 1.1: `1e-7`
 * (no dot) is a string there and `on`/`yes`/`no` are booleans. So numbers with an exponent are written
 * as `1.0e-07` and strings that YAML 1.1 would take for something else are quoted.
 */
export function llamaFactoryYaml(args: Record<string, YamlValue>): string {
  const lines = Object.entries(args).map(([k, v]) => `${k}: ${pyYamlScalar(v)}`);
  return `# written by the MELLA fine-tune activity (activities/finetune/llamafactory.ts); one per attempt\n${lines.join('\n')}\n`;
}

const YAML11_SPECIAL = /^(y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|null|Null|NULL|~|[-+]?[0-9][0-9_]*(\.[0-9_]*)?([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.(nan|NaN|NAN)|)$/;

export function pyYamlScalar(v: YamlValue): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`not a finite number: ${v}`);
    if (Number.isInteger(v) && Math.abs(v) < 1e21) return String(v);
    const plain = String(v);
    if (!/e/i.test(plain)) return plain;
    const [mantissa, exp] = v.toExponential().split('e') as [string, string];
    const sign = exp.startsWith('-') ? '-' : '+';
    return `${mantissa.includes('.') ? mantissa : `${mantissa}.0`}e${sign}${exp.replace(/^[-+]/, '').padStart(2, '0')}`;
  }
  if (YAML11_SPECIAL.test(v) || /^[\s]|[\s]$|[:#'"{}[\],&*!|>%@`]|^-/.test(v)) return JSON.stringify(v);
  return v;
}

/** Writes the YAML into the output dir (atomically) and returns the command. */
export async function prepareLlamaFactory(a: Parameters<typeof llamaFactoryTrainingArgs>[0]): Promise<{ command: TrainerCommand; yamlPath: string; args: Record<string, YamlValue> }> {
  const args = llamaFactoryTrainingArgs(a);
  await fsp.mkdir(a.outputDir, { recursive: true });
  const yamlPath = path.join(a.outputDir, LLAMAFACTORY_YAML);
  await fsp.writeFile(`${yamlPath}.tmp`, llamaFactoryYaml(args));
  await fsp.rename(`${yamlPath}.tmp`, yamlPath);
  return { command: { file: llamaFactoryCli(), args: ['train', yamlPath] }, yamlPath, args };
}

// ---- checkpoints ------------------------------------------------------------------------------------

const CHECKPOINT_DIR = /^checkpoint-(\d+)$/;
const WEIGHT_FILES = ['adapter_model.safetensors', 'adapter_model.bin', 'model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin', 'pytorch_model.bin.index.json'];

/**
 * Whether HF Trainer finished writing `checkpoint-<step>/`: it writes the weights, the optimizer and
 * scheduler (or DeepSpeed's `global_step<n>` dirs), and `trainer_state.json`, whose `global_step` must match.
 * HF Trainer has no completion marker, so a dir missing any of these is treated as half-written.
 */
export function isCompleteHfCheckpoint(dir: string, step: number): boolean {
  try {
    const names = new Set(fs.readdirSync(dir));
    if (!WEIGHT_FILES.some((f) => names.has(f))) return false;
    const optimizer = names.has('optimizer.pt') || names.has('optimizer.bin') || [...names].some((n) => n.startsWith('global_step'));
    if (!optimizer || !names.has('scheduler.pt')) return false;
    const state = JSON.parse(fs.readFileSync(path.join(dir, 'trainer_state.json'), 'utf8')) as { global_step?: number };
    return state.global_step === step;
  } catch {
    return false;
  }
}

/** Checkpoint dirs in the output dir, newest first, with whether each is complete. */
export function hfCheckpoints(outputDir: string): { path: string; step: number; complete: boolean }[] {
  let names: string[];
  try {
    names = fs.readdirSync(outputDir);
  } catch {
    return [];
  }
  return names
    .map((n) => ({ n, m: CHECKPOINT_DIR.exec(n) }))
    .filter((x): x is { n: string; m: RegExpExecArray } => x.m !== null)
    .map(({ n, m }) => {
      const p = path.join(outputDir, n);
      const step = Number(m[1]);
      return { path: p, step, complete: isCompleteHfCheckpoint(p, step) };
    })
    .sort((a, b) => b.step - a.step);
}

/**
 * Before a (re)start: the newest complete checkpoint to resume from, with every newer half-written
 * one moved aside (`.incomplete-checkpoint-<step>-<ms>`), so that neither our `resume_from_checkpoint`
 * nor HF's own `get_last_checkpoint` can pick a half-written dir.
 */
export function latestCompleteHfCheckpoint(outputDir: string, now = Date.now()): { path: string; step: number } | null {
  for (const c of hfCheckpoints(outputDir)) {
    if (c.complete) return { path: c.path, step: c.step };
    fs.renameSync(c.path, path.join(outputDir, `.incomplete-checkpoint-${c.step}-${now}`));
  }
  return null;
}

// ---- trainer_log.jsonl ------------------------------------------------------------------------------

/**
 * Reads the lines appended to trainer_log.jsonl since the last call (a partial last line waits for
 * its newline; a file that shrank, e.g. replaced by a new run, is read again from the start).
 */
export class TrainerLogTail {
  private offset = 0;
  private pending = '';

  constructor(readonly file: string) {}

  /** Skips what is in the file now (a resumed attempt only reports its own lines). */
  skipExisting(): void {
    try {
      this.offset = fs.statSync(this.file).size;
    } catch {
      this.offset = 0;
    }
    this.pending = '';
  }

  read(): TrainerEvent[] {
    let size: number;
    try {
      size = fs.statSync(this.file).size;
    } catch {
      return [];
    }
    if (size < this.offset) {
      this.offset = 0;
      this.pending = '';
    }
    if (size === this.offset) return [];
    const fd = fs.openSync(this.file, 'r');
    try {
      const buf = Buffer.alloc(size - this.offset);
      const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
      this.offset += n;
      this.pending += buf.subarray(0, n).toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
    const lines = this.pending.split('\n');
    this.pending = lines.pop() ?? '';
    return parseTrainerLogLines(lines);
  }
}

/** trainer_log.jsonl lines → progress events (blank, malformed or step-less lines are skipped). */
export function parseTrainerLogLines(lines: readonly string[]): TrainerEvent[] {
  const out: TrainerEvent[] = [];
  for (const line of lines) {
    if (!line.trim()) continue;
    let o: unknown;
    try {
      o = JSON.parse(line);
    } catch {
      continue;
    }
    const p = progressFromLogObject(o);
    if (p) out.push(p);
  }
  return out;
}

/**
 * The loss curve from a whole trainer_log.jsonl. A resumed HF run appends after the lines the killed
 * attempt wrote past its checkpoint, so a step can appear twice: the last occurrence wins.
 */
export function lossCurveFromTrainerLog(text: string): { step: number[]; loss: number[]; lr: number[] } {
  const byStep = new Map<number, { loss: number; lr: number }>();
  for (const e of parseTrainerLogLines(text.split('\n'))) {
    if (e.kind !== 'progress' || e.loss === null) continue;
    byStep.delete(e.step);
    byStep.set(e.step, { loss: e.loss, lr: e.lr ?? 0 });
  }
  const steps = [...byStep.keys()].sort((a, b) => a - b);
  return { step: steps, loss: steps.map((s) => byStep.get(s)!.loss), lr: steps.map((s) => byStep.get(s)!.lr) };
}
