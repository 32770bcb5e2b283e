/**
 * The fine-tune stage (issue 7): the `mellaFinetune` workflow with its training activity on the
 * mella-gpu queue, against the real stack and real workers in their own processes, running the
 * project trainer (real CPU training of the tiny Qwen2-VL on a synthetic LLaMA-Factory export):
 * (a) a training through the workflow, (b) a SIGKILLed gpu worker and the resume, (c) cancellation,
 * (d) a bad dataset, (e) the LLaMA-Factory backend's activity path against a stand-in
 * `llamafactory-cli` (LLaMA-Factory itself is not installed here). Unit tests of the config, the
 * generated LLaMA-Factory YAML and the log parsers run without the trainer.
 *
 * The trainer venv comes from `node scripts/ensure-trainer.mjs` in beforeAll; where it cannot be
 * installed, the integration tests are skipped with the installer's message.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import YAML from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLlamaFactoryExtraArgs, parseFinetuneConfig, type FinetuneConfig } from '../activities/finetune/config';
import { parseMellaLine } from '../activities/finetune/events';
import { LLAMAFACTORY_KEYS } from '../activities/finetune/llamafactory-keys';
import {
  latestCompleteHfCheckpoint, llamaFactoryTrainingArgs, llamaFactoryYaml, lossCurveFromTrainerLog, parseTrainerLogLines, TrainerLogTail,
} from '../activities/finetune/llamafactory';
import { mellaTrainerArgs } from '../activities/finetune/mella-command';
import { liveGroupMembers, pidAlive } from '../activities/finetune/process-group';
import { reapStaleTrainer } from '../activities/finetune/stale';
import { classify } from '../activities/finetune/train';
import { closeDb } from '../activities/shared/db';
import { LocalBlobStore } from '../activities/shared/blobs';
import { cancelFinetune, finetuneStatus, formatFinetuneStatus, startFinetune, waitFinetune } from '../cli/finetune';
import { PROJECT_ROOT } from '../infra/paths';
import { finetuneWorkflowId } from '../workflows/finetune';
import { dbClient, spawnWorker, stopProcess, tmpDir, waitFor, withCliClient, workerReady } from './support/pipeline';

const PYTHON = path.join(PROJECT_ROOT, '.venv-trainer', 'bin', 'python');

async function ensureTrainer(): Promise<string | undefined> {
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const child = spawn(process.execPath, [path.join(PROJECT_ROOT, 'scripts', 'ensure-trainer.mjs')], { cwd: PROJECT_ROOT });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.on('error', (err) => resolve({ code: -1, out: err.message }));
    child.on('close', (code) => resolve({ code, out }));
  });
  if (r.code === 0 && fs.existsSync(PYTHON)) return undefined;
  const lines = r.out.split('\n').filter((l) => l.includes('[ensure-trainer]') || /error/i.test(l));
  return lines.slice(-3).join(' / ') || `exit ${r.code}`;
}

// --- a synthetic LLaMA-Factory sharegpt export: coloured squares, one Thai answer each ----------------

const COLORS: [string, number, number, number][] = [['แดง', 220, 30, 30], ['เขียว', 30, 190, 40], ['น้ำเงิน', 30, 40, 220], ['เหลือง', 235, 220, 40]];
const DATASET = 'mella_th_train';

async function square(rgb: [number, number, number], striped: boolean, w: number, h: number): Promise<Buffer> {
  const raw = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const dark = striped && (x >> 2) % 2 === 0;
      raw.set(dark ? [12, 12, 12] : rgb, (y * w + x) * 3);
    }
  }
  return sharp(raw, { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

async function makeExport(dir: string, count: number): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  const samples = [];
  for (let i = 0; i < count; i++) {
    const [name, r, g, b] = COLORS[i % COLORS.length]!;
    const striped = Math.floor(i / COLORS.length) % 2 === 1;
    const bytes = await square([r, g, b], striped, 36 + (i % 4) * 6, 30 + (i % 3) * 4);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const rel = `images/${sha.slice(0, 2)}/${sha}.jpg`;
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), bytes);
    samples.push({
      messages: [
        { role: 'user', content: '<image>ภาพนี้แสดงอะไร' },
        { role: 'assistant', content: `สี่เหลี่ยมสี${name}${striped ? 'มีลายทาง' : ''}` },
      ],
      images: [rel],
    });
  }
  fs.writeFileSync(path.join(dir, 'train.json'), JSON.stringify(samples));
  fs.writeFileSync(
    path.join(dir, 'dataset_info.json'),
    JSON.stringify({
      [DATASET]: {
        file_name: 'train.json',
        formatting: 'sharegpt',
        columns: { messages: 'messages', images: 'images' },
        tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant' },
      },
    }),
  );
}

/** A copy of the export with another train.json (images linked). */
function brokenExport(good: string, dir: string, trainJson: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.symlinkSync(path.join(good, 'images'), path.join(dir, 'images'));
  fs.copyFileSync(path.join(good, 'dataset_info.json'), path.join(dir, 'dataset_info.json'));
  fs.writeFileSync(path.join(dir, 'train.json'), trainJson);
  return dir;
}

// --- the config the integration tests use ------------------------------------------------------------

function testFinetuneConfig(over: { maxSteps: number; saveSteps?: number; accumulation?: number; outputRoot: string; backend?: 'mella' | 'llamafactory'; model?: string }): FinetuneConfig {
  return parseFinetuneConfig({
    backend: over.backend ?? 'mella',
    model: over.model ?? 'tiny-random',
    method: 'lora',
    outputRoot: over.outputRoot,
    hyperparameters: {
      maxSteps: over.maxSteps,
      perDeviceTrainBatchSize: 4,
      gradientAccumulationSteps: over.accumulation ?? 1,
      learningRate: 5e-3,
      // The tiny model's head is random: train it too, or LoRA alone learns slowly (docs/trainer.md).
      additionalTarget: ['lm_head'],
      saveSteps: over.saveSteps ?? 10,
      saveTotalLimit: 2,
      seed: 7,
      device: 'cpu',
    },
    heartbeatTimeoutSeconds: 4,
    stallTimeoutSeconds: 90,
    killGraceSeconds: 20,
    retryInitialSeconds: 1,
    maxAttempts: 6,
  });
}

let jobCounter = 0;
const uniqueJobId = (label: string) => `ft-${label}-${process.pid}-${Date.now().toString(36)}-${jobCounter++}`;

// ======================================================================================================

describe('fine-tune config, trainer command and LLaMA-Factory backend (no trainer needed)', () => {
  it('validates the config: defaults, strict keys, backend rules, extraArgs allow-lists, no GPU setting in a job', () => {
    const c = parseFinetuneConfig({});
    expect(c).toMatchObject({ backend: 'mella', model: 'tiny-random', method: 'lora', template: 'qwen2_vl', heartbeatTimeoutSeconds: 120 });
    expect(c.hyperparameters).toMatchObject({ learningRate: 1e-4, loraRank: 8, loraTarget: 'all', saveSteps: 500 });
    // GPU visibility is the worker's, never the job's.
    expect(() => parseFinetuneConfig({ cudaVisibleDevices: '0' })).toThrow(/cudaVisibleDevices|Unrecognized/);
    expect(() => parseFinetuneConfig({ backend: 'llamafactory' })).toThrow(/tiny-random" exists only in the mella trainer/);
    expect(() => parseFinetuneConfig({ model: 'Qwen/Qwen2-VL-7B-Instruct' })).toThrow(/never downloads/);
    expect(parseFinetuneConfig({ backend: 'llamafactory', model: 'Qwen/Qwen2-VL-7B-Instruct' }).model).toBe('Qwen/Qwen2-VL-7B-Instruct');
    expect(() => parseFinetuneConfig({ extraArgs: ['--output', '/tmp/x'] })).toThrow(/"--output" is not allowed/);
    expect(() => parseFinetuneConfig({ extraArgs: ['--resume=never'] })).toThrow(/"--resume" is not allowed/);
    expect(parseFinetuneConfig({ extraArgs: ['--cpu-threads', '2', '--validate-images=header'] }).extraArgs).toHaveLength(3);
    expect(() => parseFinetuneConfig({ heartbeatTimeoutSeconds: 60, stallTimeoutSeconds: 30 })).toThrow(/longer than heartbeatTimeoutSeconds/);
    expect(checkLlamaFactoryExtraArgs(['preprocessing_num_workers=8', 'flash_attn=fa2'])).toBeUndefined();
    expect(checkLlamaFactoryExtraArgs(['output_dir=/elsewhere'])).toMatch(/set by the activity/);
    expect(checkLlamaFactoryExtraArgs(['overwrite_output_dir=true'])).toMatch(/set by the activity/);
    expect(checkLlamaFactoryExtraArgs(['not_a_key=1'])).toMatch(/not a documented LLaMA-Factory training key/);
    expect(checkLlamaFactoryExtraArgs(['--lora_rank', '8'])).toMatch(/key=value/);
  });

  it('builds the mella trainer command: hyperparameters mapped, always --resume auto and the parent watch', () => {
    const config = testFinetuneConfig({ maxSteps: 30, outputRoot: '/models' });
    const args = mellaTrainerArgs({ datasetDir: '/data/export', datasetName: DATASET, outputDir: '/models/j1', config });
    const opt = (flag: string) => args[args.indexOf(flag) + 1];
    expect(opt('--dataset-dir')).toBe('/data/export');
    expect(opt('--output')).toBe('/models/j1');
    expect(opt('--max-steps')).toBe('30');
    expect(opt('--additional-target')).toBe('lm_head');
    expect(opt('--resume')).toBe('auto');
    expect(args).toContain('--stop-on-stdin-eof');
    // The options the activity owns come last (argparse: the last occurrence wins).
    expect(args.slice(-4)).toEqual(['--resume', 'auto', '--save-on-signal', '--stop-on-stdin-eof']);
  });

  it('writes a LLaMA-Factory training YAML with documented keys only, pointing at the export, resuming from the newest complete checkpoint', () => {
    const out = tmpDir('lf-yaml');
    // Two complete HF checkpoints and a newer half-written one (no trainer_state.json).
    for (const step of [10, 20]) {
      const d = path.join(out, `checkpoint-${step}`);
      fs.mkdirSync(d);
      for (const f of ['adapter_model.safetensors', 'optimizer.pt', 'scheduler.pt', 'rng_state.pth']) fs.writeFileSync(path.join(d, f), 'x');
      fs.writeFileSync(path.join(d, 'trainer_state.json'), JSON.stringify({ global_step: step }));
    }
    fs.mkdirSync(path.join(out, 'checkpoint-30'));
    fs.writeFileSync(path.join(out, 'checkpoint-30', 'adapter_model.safetensors'), 'partial');
    const resume = latestCompleteHfCheckpoint(out, 123);
    expect(resume).toEqual({ path: path.join(out, 'checkpoint-20'), step: 20 });
    expect(fs.existsSync(path.join(out, 'checkpoint-30'))).toBe(false);
    expect(fs.existsSync(path.join(out, '.incomplete-checkpoint-30-123'))).toBe(true);

    const config = parseFinetuneConfig({
      backend: 'llamafactory',
      model: '/models/Qwen2-VL-7B-Instruct',
      hyperparameters: { perDeviceTrainBatchSize: 2, gradientAccumulationSteps: 8, learningRate: 1e-4, numTrainEpochs: 3, warmupRatio: 0.1, loggingSteps: 10, saveSteps: 500, additionalTarget: ['lm_head'] },
      extraArgs: ['preprocessing_num_workers=16', 'flash_attn=auto'],
    });
    const args = llamaFactoryTrainingArgs({ datasetDir: '/data/exports/th-v3', datasetName: 'mella_train', outputDir: out, config, resumeFrom: resume!.path });
    const yaml = llamaFactoryYaml(args);
    const parsed = YAML.parse(yaml) as Record<string, unknown>;
    expect(parsed).toEqual(args);
    for (const key of Object.keys(parsed)) expect(LLAMAFACTORY_KEYS.has(key), key).toBe(true);
    // The keys of LLaMA-Factory's examples/train_lora/qwen2vl_lora_sft.yaml that a training needs, with our values.
    expect(parsed).toMatchObject({
      model_name_or_path: '/models/Qwen2-VL-7B-Instruct',
      image_max_pixels: 589824,
      stage: 'sft',
      do_train: true,
      finetuning_type: 'lora',
      lora_rank: 8,
      lora_alpha: 16,
      lora_dropout: 0.05,
      lora_target: 'all',
      additional_target: 'lm_head',
      dataset_dir: '/data/exports/th-v3',
      dataset: 'mella_train',
      template: 'qwen2_vl',
      cutoff_len: 2048,
      output_dir: out,
      overwrite_output_dir: false,
      save_only_model: false,
      logging_steps: 10,
      save_steps: 500,
      plot_loss: true,
      per_device_train_batch_size: 2,
      gradient_accumulation_steps: 8,
      learning_rate: 1e-4,
      num_train_epochs: 3,
      lr_scheduler_type: 'cosine',
      warmup_ratio: 0.1,
      bf16: true,
      ddp_timeout: 180000000,
      resume_from_checkpoint: path.join(out, 'checkpoint-20'),
      report_to: 'none',
      preprocessing_num_workers: 16,
      flash_attn: 'auto',
    });
    expect(parsed).not.toHaveProperty('max_steps');
    expect(yaml.split('\n')[0]).toMatch(/^# written by the MELLA fine-tune activity/);

    // LLaMA-Factory reads the file with PyYAML (YAML 1.1): the same values must come out there, also
    // for a learning rate with an exponent and a string YAML 1.1 would take for a boolean.
    const tricky = llamaFactoryTrainingArgs({
      datasetDir: '/data/x', datasetName: 'd', outputDir: out, resumeFrom: null,
      config: parseFinetuneConfig({ backend: 'llamafactory', model: '/m', hyperparameters: { learningRate: 2e-7 }, extraArgs: ['run_name=on'] }),
    });
    const pyYaml = [path.join(PROJECT_ROOT, '.venv-trainer', 'bin', 'python'), 'python3'].find(
      (py) => spawnSync(py, ['-c', 'import yaml'], { encoding: 'utf8' }).status === 0,
    );
    if (pyYaml) {
      const file = path.join(out, 'tricky.yaml');
      fs.writeFileSync(file, llamaFactoryYaml(tricky));
      const r = spawnSync(pyYaml, ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', file], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual(tricky);
      expect(JSON.parse(r.stdout)).toMatchObject({ learning_rate: 2e-7, run_name: 'on', resume_from_checkpoint: null });
    } else {
      console.warn('PyYAML not found (no python3 with yaml): the YAML 1.1 round trip was not checked');
    }
  });

  it('parses trainer_log.jsonl lines in LLaMA-Factory LogCallback format, incrementally', () => {
    const out = tmpDir('lf-log');
    const file = path.join(out, 'trainer_log.jsonl');
    const lines = [
      '{"current_steps": 10, "total_steps": 300, "loss": 2.1534, "lr": 9.9e-05, "epoch": 0.1, "percentage": 3.33, "elapsed_time": "0:00:41", "remaining_time": "0:20:09"}',
      '{"current_steps": 20, "total_steps": 300, "loss": 1.8719, "lr": 9.7e-05, "epoch": 0.2, "percentage": 6.67, "elapsed_time": "0:01:22", "remaining_time": "0:19:08", "throughput": 1843.2, "total_tokens": 151040}',
      // an eval line: no loss
      '{"current_steps": 20, "total_steps": 300, "eval_loss": 1.9, "epoch": 0.2, "percentage": 6.67, "elapsed_time": "0:01:30", "remaining_time": "0:20:00"}',
      'not json',
    ];
    fs.writeFileSync(file, `${lines.join('\n')}\n{"current_steps": 30, "total_st`);
    const tail = new TrainerLogTail(file);
    expect(tail.read()).toEqual([
      { kind: 'progress', step: 10, totalSteps: 300, loss: 2.1534, lr: 9.9e-5, epoch: 0.1 },
      { kind: 'progress', step: 20, totalSteps: 300, loss: 1.8719, lr: 9.7e-5, epoch: 0.2 },
      { kind: 'progress', step: 20, totalSteps: 300, loss: null, lr: null, epoch: 0.2 },
    ]);
    // The partial line completes.
    fs.appendFileSync(file, 'eps": 300, "loss": 1.61, "lr": 9.4e-05, "epoch": 0.3, "percentage": 10.0, "elapsed_time": "0:02:03", "remaining_time": "0:18:27"}\n');
    expect(tail.read()).toEqual([{ kind: 'progress', step: 30, totalSteps: 300, loss: 1.61, lr: 9.4e-5, epoch: 0.3 }]);
    expect(tail.read()).toEqual([]);
    // A resumed HF run appends again from its checkpoint: the curve keeps the last value per step.
    fs.appendFileSync(file, '{"current_steps": 30, "total_steps": 300, "loss": 1.60, "lr": 9.4e-05, "epoch": 0.3, "percentage": 10.0, "elapsed_time": "0:00:40", "remaining_time": "0:18:00"}\n');
    expect(lossCurveFromTrainerLog(fs.readFileSync(file, 'utf8'))).toEqual({ step: [10, 20, 30], loss: [2.1534, 1.8719, 1.6], lr: [9.9e-5, 9.7e-5, 9.4e-5] });
    expect(parseTrainerLogLines(['', '{}', '{"current_steps": 1}'])).toEqual([]);
  });

  it('parses the mella trainer protocol lines and classifies exit codes', () => {
    expect(parseMellaLine('MELLA_PROGRESS {"current_steps": 5, "total_steps": 12, "loss": 4.0384, "lr": 0.00375, "epoch": 0.8333, "percentage": 41.67}')).toEqual({
      kind: 'progress', step: 5, totalSteps: 12, loss: 4.0384, lr: 0.00375, epoch: 0.8333,
    });
    expect(parseMellaLine('MELLA_CHECKPOINT /o/checkpoint-5 step=5')).toEqual({ kind: 'checkpoint', path: '/o/checkpoint-5', step: 5 });
    expect(parseMellaLine('MELLA_RESUME /o dir/checkpoint-10 step=10')).toEqual({ kind: 'resume', checkpoint: '/o dir/checkpoint-10', step: 10 });
    expect(parseMellaLine('MELLA_ERROR {"error": "dataset_invalid", "exit_code": 2, "message": "train.json is empty", "problem": "data_file_empty"}')).toMatchObject({
      kind: 'error', exitCode: 2, message: 'train.json is empty',
    });
    expect(parseMellaLine('[mella-train] a note')).toBeUndefined();
    const config = parseFinetuneConfig({});
    const base = { pid: 1, exitCode: null, signal: null, cancelled: false, stalled: false, killed: false, stderrTail: [] };
    expect(classify({ ...base, exitCode: 2 }, config, undefined, undefined)).toMatchObject({ type: 'FinetuneDatasetInvalid', nonRetryable: true });
    expect(classify({ ...base, exitCode: 3 }, config, undefined, undefined)).toMatchObject({ type: 'FinetuneConfigInvalid', nonRetryable: true });
    expect(classify({ ...base, exitCode: 4 }, config, undefined, undefined)).toMatchObject({ type: 'TrainerLocked', nonRetryable: false });
    expect(classify({ ...base, exitCode: 1 }, config, undefined, undefined)).toMatchObject({ type: 'TrainerFailed', nonRetryable: false });
    expect(classify({ ...base, exitCode: 0 }, config, undefined, { kind: 'done' })).toBeUndefined();
    expect(classify({ ...base, exitCode: 143, cancelled: true }, config, undefined, undefined)).toMatchObject({ outcome: 'cancelled' });
  });
});

// ======================================================================================================

describe('the fine-tune workflow (real CPU training of the tiny model through the workers)', () => {
  let skipReason: string | undefined;
  let tmp = '';
  let exportDir = '';
  let outputRoot = '';
  let fakeLlamaFactory = '';
  let cpuWorker: ReturnType<typeof spawnWorker> | undefined;
  let gpuWorker: ReturnType<typeof spawnWorker> | undefined;
  const pool = dbClient();
  const gpuEnv = () => ({ MELLA_LLAMAFACTORY_CLI: fakeLlamaFactory, MELLA_GPU_DEVICES: '' });
  const startGpuWorker = async () => {
    gpuWorker = spawnWorker(['gpu'], gpuEnv());
    await workerReady(gpuWorker);
  };

  beforeAll(async () => {
    skipReason = await ensureTrainer();
    if (skipReason) {
      console.warn(`fine-tune workflow tests skipped: could not install the trainer's venv: ${skipReason}`);
      return;
    }
    tmp = tmpDir('finetune');
    exportDir = path.join(tmp, 'export');
    outputRoot = path.join(tmp, 'models');
    await makeExport(exportDir, 24);
    fakeLlamaFactory = writeFakeLlamaFactory(path.join(tmp, 'fake-llamafactory-cli'));
    cpuWorker = spawnWorker(['cpu']);
    await Promise.all([workerReady(cpuWorker), startGpuWorker()]);
  }, 20 * 60_000);
  afterAll(async () => {
    if (gpuWorker) await stopProcess(gpuWorker);
    if (cpuWorker) await stopProcess(cpuWorker);
    await pool.end();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const job = async (jobId: string) => (await pool.query('select * from finetune_jobs where job_id = $1', [jobId])).rows[0];
  const attempts = async (jobId: string) => (await pool.query('select * from finetune_attempts where job_id = $1 order by attempt', [jobId])).rows;
  /** Running (non-zombie) processes whose command line names the output dir, from `ps`. */
  const trainerProcesses = (outputDir: string) =>
    spawnSync('ps', ['-eo', 'pid=,stat=,args='], { encoding: 'utf8' })
      .stdout.split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter(([, stat, ...args]) => stat !== undefined && !stat.startsWith('Z') && args.join(' ').includes(outputDir));

  it('(a) trains through the workflow: loss falls, checkpoints written, model registered in PostgreSQL and the blob store', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const jobId = uniqueJobId('a');
    const config = testFinetuneConfig({ maxSteps: 30, outputRoot });
    const started = Date.now();
    const outcome = await withCliClient(async (c) => {
      await startFinetune(c, { jobId, datasetDir: exportDir, datasetName: DATASET, exportId: 'version-test-1', config });
      return waitFinetune(c, jobId);
    });
    const seconds = (Date.now() - started) / 1000;
    expect(outcome.status, outcome.error).toBe('completed');
    const r = outcome.result!;
    const outputDir = path.join(outputRoot, jobId);
    expect(r).toMatchObject({ jobId, modelId: `model-${jobId}`, backend: 'mella', outputDir, finalDir: path.join(outputDir, 'final'), totalSteps: 30, attempt: 1, alreadyComplete: false });
    expect(r.finalLoss).toBeGreaterThan(0);

    // Checkpoints at 10 and 20 (complete, with their markers), final/ with the adapter.
    for (const step of [10, 20]) expect(fs.existsSync(path.join(outputDir, `checkpoint-${step}`, 'COMPLETE'))).toBe(true);
    expect(fs.existsSync(path.join(outputDir, 'final', 'adapter_model.safetensors'))).toBe(true);

    // The job row: completed, progress recorded, one attempt.
    expect(await job(jobId)).toMatchObject({
      status: 'completed', current_step: 30, total_steps: 30, attempts: 1, model_id: `model-${jobId}`, export_id: 'version-test-1',
      latest_checkpoint_step: 20, backend: 'mella', base_model: 'tiny-random', method: 'lora', error: null,
    });
    expect((await job(jobId)).latest_checkpoint).toMatch(/checkpoint-20$/);
    const [a1] = await attempts(jobId);
    expect(a1).toMatchObject({ attempt: 1, outcome: 'completed', exit_code: 0, first_step: 1, last_step: 30, resume_step: null });

    // The model: metrics, the loss curve (falling), files content-addressed in the blob store.
    const { rows: [model] } = await pool.query('select * from models where job_id = $1', [jobId]);
    expect(model).toMatchObject({ model_id: `model-${jobId}`, export_id: 'version-test-1', total_steps: 30, final_dir: path.join(outputDir, 'final') });
    expect(model.metrics).toMatchObject({ total_steps: 30, method: 'lora', device: 'cpu', num_samples: 24 });
    expect(model.loss_curve.step).toHaveLength(30);
    const losses: number[] = model.loss_curve.loss;
    const mean = (xs: number[]) => xs.reduce((x, y) => x + y, 0) / xs.length;
    expect(mean(losses.slice(-3))).toBeLessThan(mean(losses.slice(0, 3)) * 0.6);
    const store = new LocalBlobStore(process.env.MELLA_BLOB_DIR!);
    const adapter = model.files.find((f: { path: string }) => f.path === 'adapter_model.safetensors');
    expect(adapter.blobKey).toMatch(/^sha256\//);
    expect(await store.has(adapter.blobKey)).toBe(true);
    expect(model.files.map((f: { path: string }) => f.path)).toEqual(expect.arrayContaining(['training_metrics.json', 'loss_curve.json', 'COMPLETE']));

    // The Temporal UI shows it: run kind and name as search attributes, the model in the memo; and the CLI's status.
    await withCliClient(async (c) => {
      const desc = await c.client.workflow.getHandle(finetuneWorkflowId(jobId)).describe();
      expect(desc.searchAttributes.MellaRunKind).toEqual(['finetune']);
      expect(desc.searchAttributes.MellaRunName).toEqual([jobId]);
      expect(desc.memo).toMatchObject({ datasetName: DATASET, backend: 'mella', modelId: `model-${jobId}`, totalSteps: 30 });
      const status = await finetuneStatus(c, jobId);
      expect(status).toMatchObject({ status: 'completed', model: { model_id: `model-${jobId}`, total_steps: 30 } });
      const text = formatFinetuneStatus(status, false);
      expect(text).toContain('progress step 30/30');
      expect(text).toContain(`result   model-${jobId}: 30 steps`);
    });
    console.log(`[figures] (a) 30 steps through the workflow in ${seconds.toFixed(1)} s; loss ${losses[0]!.toFixed(3)} -> ${losses.at(-1)!.toFixed(3)} (final ${r.finalLoss?.toFixed(3)}); ${r.files} files, ${(r.bytes / 1024).toFixed(0)} KiB`);
  });

  it('(b) survives a SIGKILLed gpu worker: the new attempt resumes from the last checkpoint and the step count continues to the total', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const jobId = uniqueJobId('b');
    // 150 steps of 4 micro-batches: long enough to be killed in the middle.
    const config = testFinetuneConfig({ maxSteps: 150, saveSteps: 20, accumulation: 4, outputRoot });
    const outputDir = path.join(outputRoot, jobId);
    let killedAt = { step: 0, checkpointStep: 0, trainerPid: 0 };
    const started = Date.now();
    const outcome = await withCliClient(async (c) => {
      await startFinetune(c, { jobId, datasetDir: exportDir, datasetName: DATASET, config });
      await waitFor(async () => ((await job(jobId))?.latest_checkpoint_step ?? 0) >= 20, 120_000, 'the first checkpoint');
      // The workflow's own query, while training.
      expect(await c.client.workflow.getHandle(finetuneWorkflowId(jobId)).query('progress')).toMatchObject({ jobId, phase: 'training' });
      const row = await job(jobId);
      killedAt = { step: row.current_step, checkpointStep: row.latest_checkpoint_step, trainerPid: row.trainer_pid };
      expect(killedAt.step).toBeLessThan(150);
      expect(pidAlive(killedAt.trainerPid)).toBe(true);
      await stopProcess(gpuWorker!, 'SIGKILL');
      // The orphaned trainer sees its stdin close, checkpoints at the step boundary and exits on its own.
      await waitFor(async () => !pidAlive(killedAt.trainerPid), 60_000, 'the orphaned trainer to stop');
      await startGpuWorker();
      return waitFinetune(c, jobId);
    });
    const seconds = (Date.now() - started) / 1000;
    expect(outcome.status, outcome.error).toBe('completed');
    expect(outcome.result).toMatchObject({ totalSteps: 150 });

    const rows = await attempts(jobId);
    expect(rows.length).toBeGreaterThanOrEqual(2);
    const [first, ...later] = rows;
    expect(first).toMatchObject({ attempt: 1, first_step: 1 });
    const last = later.at(-1)!;
    expect(last).toMatchObject({ outcome: 'completed', last_step: 150 });
    // The retried attempt ran the trainer with --resume auto and resumed from a checkpoint at or after
    // the one recorded before the kill; its first progress step is the one after that checkpoint.
    expect(last.command).toEqual(expect.arrayContaining(['--resume', 'auto']));
    expect(last.command[last.command.indexOf('--resume') + 1]).toBe('auto');
    expect(last.resume_step).toBeGreaterThanOrEqual(killedAt.checkpointStep);
    expect(last.first_step).toBe(last.resume_step + 1);
    expect(last.first_step).toBeGreaterThan(killedAt.checkpointStep);
    // The new worker did not have to kill anything: the orphan had stopped by itself.
    expect(gpuWorker!.output()).not.toContain("terminated the earlier attempt's trainer");

    const row = await job(jobId);
    expect(row).toMatchObject({ status: 'completed', current_step: 150, total_steps: 150, trainer_pid: null });
    expect(row.attempts).toBe(rows.length);
    // The log reads as one run, and the model's curve has every step once.
    const logged = fs.readFileSync(path.join(outputDir, 'trainer_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l).current_steps);
    expect(logged).toEqual(Array.from({ length: 150 }, (_, i) => i + 1));
    const { rows: [model] } = await pool.query('select loss_curve, metrics from models where job_id = $1', [jobId]);
    expect(model.loss_curve.step).toHaveLength(150);
    expect(model.metrics.resumed_from).toContain(last.resume_step);
    expect(outcome.result!.resumedFromSteps).toContain(last.resume_step);
    console.log(
      `[figures] (b) killed at step ${killedAt.step} (checkpoint ${killedAt.checkpointStep}); the orphan checkpointed at ${last.resume_step}; ` +
        `attempt ${last.attempt} resumed at step ${last.first_step} and finished 150 steps; ${rows.length} attempts, ${seconds.toFixed(1)} s in all`,
    );
  });

  it('(c) cancellation stops the trainer process group and leaves no process behind', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const jobId = uniqueJobId('c');
    const config = testFinetuneConfig({ maxSteps: 3000, saveSteps: 0, accumulation: 4, outputRoot });
    const outputDir = path.join(outputRoot, jobId);
    let trainerPid = 0;
    let cancelMs = 0;
    const outcome = await withCliClient(async (c) => {
      await startFinetune(c, { jobId, datasetDir: exportDir, datasetName: DATASET, config });
      await waitFor(async () => ((await job(jobId))?.current_step ?? 0) >= 3, 120_000, 'training to start');
      trainerPid = (await job(jobId)).trainer_pid;
      expect(pidAlive(trainerPid)).toBe(true);
      expect(trainerProcesses(outputDir).length).toBeGreaterThan(0);
      const t = Date.now();
      await cancelFinetune(c, jobId);
      const o = await waitFinetune(c, jobId);
      cancelMs = Date.now() - t;
      return o;
    });
    expect(outcome.status).toBe('cancelled');
    // WAIT_CANCELLATION_COMPLETED: by the time the workflow is cancelled, the group is gone.
    expect(pidAlive(trainerPid)).toBe(false);
    expect(liveGroupMembers(trainerPid)).toEqual([]);
    expect(trainerProcesses(outputDir)).toEqual([]);
    const row = await job(jobId);
    expect(row).toMatchObject({ status: 'cancelled', trainer_pid: null });
    const [a] = await attempts(jobId);
    expect(a).toMatchObject({ outcome: 'cancelled', exit_code: 143 });
    // SIGTERM made the trainer write a checkpoint at the step boundary: a restart of the job id resumes from it.
    expect(row.latest_checkpoint).toMatch(/checkpoint-\d+$/);
    expect(fs.existsSync(path.join(row.latest_checkpoint, 'COMPLETE'))).toBe(true);
    console.log(`[figures] (c) cancelled at step ${row.current_step}: trainer (pid ${trainerPid}) checkpointed and exited 143; cancel to cancelled ${cancelMs} ms`);
  });

  it('(d) an empty or malformed dataset fails fast with the trainer\'s message and is not retried', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const good = JSON.parse(fs.readFileSync(path.join(exportDir, 'train.json'), 'utf8')) as { images: string[] }[];
    const missing = structuredClone(good.slice(0, 6));
    missing[4]!.images = ['images/zz/not-there.jpg'];
    const cases = [
      { name: 'empty', json: '', text: 'train.json is empty' },
      { name: 'missing-image', json: JSON.stringify(missing), text: 'images/zz/not-there.jpg' },
    ];
    for (const k of cases) {
      const dir = brokenExport(exportDir, path.join(tmp, `bad-${k.name}`), k.json);
      const jobId = uniqueJobId(`d-${k.name}`);
      const t = Date.now();
      const outcome = await withCliClient(async (c) => {
        await startFinetune(c, { jobId, datasetDir: dir, datasetName: DATASET, config: testFinetuneConfig({ maxSteps: 10, outputRoot }) });
        return waitFinetune(c, jobId);
      });
      const ms = Date.now() - t;
      expect(outcome.status, k.name).toBe('failed');
      expect(outcome.error).toContain('invalid dataset');
      expect(outcome.error).toContain(k.text);
      expect(ms, `${k.name} should fail fast`).toBeLessThan(30_000);
      const row = await job(jobId);
      expect(row).toMatchObject({ status: 'failed', attempts: 1 });
      expect(row.error).toContain(k.text);
      const rows = await attempts(jobId);
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ outcome: 'failed', exit_code: 2 });
      // Temporal saw exactly one attempt of the training activity, failed as non-retryable.
      await withCliClient(async (c) => {
        const history = await c.client.workflow.getHandle(finetuneWorkflowId(jobId)).fetchHistory();
        const started = history.events!.filter((e) => e.activityTaskStartedEventAttributes);
        const failed = history.events!.filter((e) => e.activityTaskFailedEventAttributes);
        // registerFinetuneJob, finetuneTrain, finishFinetuneJob: each started once
        expect(started.map((e) => e.activityTaskStartedEventAttributes!.attempt)).toEqual([1, 1, 1]);
        expect(failed).toHaveLength(1);
        const failure = failed[0]!.activityTaskFailedEventAttributes!.failure!;
        expect(failure.applicationFailureInfo).toMatchObject({ type: 'FinetuneDatasetInvalid', nonRetryable: true });
      });
      expect(fs.existsSync(path.join(outputRoot, jobId, 'checkpoint-10'))).toBe(false);
      console.log(`[figures] (d) ${k.name}: failed in ${ms} ms, 1 attempt: ${row.error}`);
    }
  });

  it('reaps a trainer an earlier attempt left running on this host, and only that one', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const jobId = uniqueJobId('reap');
    const outputDir = path.join(outputRoot, jobId);
    // A process group that ignores its stdin closing (as LLaMA-Factory would), with the output dir on its command line.
    const orphan = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', outputDir], { detached: true, stdio: 'ignore' });
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', '/somewhere/else'], { detached: true, stdio: 'ignore' });
    try {
      await pool.query(
        `insert into finetune_jobs (job_id, workflow_id, dataset_dir, dataset_name, base_model, method, backend, hyperparameters, config, trainer_pid, trainer_host)
         values ($1, 'w', '/d', 'n', 'tiny-random', 'lora', 'mella', '{}', '{}', $2, $3)`,
        [jobId, orphan.pid, os.hostname()],
      );
      const logs: string[] = [];
      const reap = () => reapStaleTrainer({ jobId, host: os.hostname(), outputDir, graceMs: 300, log: (m) => logs.push(m) });
      expect(await reap()).toBe('terminated');
      expect(pidAlive(orphan.pid!)).toBe(false);
      await pool.query('update finetune_jobs set trainer_pid = $2 where job_id = $1', [jobId, other.pid]);
      expect(await reap()).toBe('not-ours');
      expect(pidAlive(other.pid!)).toBe(true);
      await pool.query('update finetune_jobs set trainer_host = $2 where job_id = $1', [jobId, 'another-host']);
      expect(await reap()).toBe('other-host');
      expect(logs.join('\n')).toContain('terminated the earlier attempt');
    } finally {
      for (const p of [orphan, other]) if (p.pid && pidAlive(p.pid)) process.kill(-p.pid, 'SIGKILL');
      await closeDb();
    }
  });

  it('(e) the LLaMA-Factory backend\'s activity path, against a stand-in llamafactory-cli: YAML, progress from trainer_log.jsonl, checkpoints, resume, registration', async (ctx) => {
    if (skipReason) return ctx.skip(skipReason);
    const jobId = uniqueJobId('e');
    const config = testFinetuneConfig({ maxSteps: 12, saveSteps: 4, outputRoot, backend: 'llamafactory', model: '/models/Qwen2-VL-2B-Instruct' });
    const outputDir = path.join(outputRoot, jobId);
    // The stand-in fails once after its second checkpoint (exit 1): the retry must resume from checkpoint-8.
    fs.mkdirSync(outputDir, { recursive: true });
    fs.writeFileSync(path.join(outputDir, '.standin-fail-after'), '8');
    const outcome = await withCliClient(async (c) => {
      await startFinetune(c, { jobId, datasetDir: exportDir, datasetName: DATASET, config });
      return waitFinetune(c, jobId);
    });
    expect(outcome.status, outcome.error).toBe('completed');
    const yaml = YAML.parse(fs.readFileSync(path.join(outputDir, 'mella_llamafactory_train.yaml'), 'utf8')) as Record<string, unknown>;
    expect(yaml).toMatchObject({ dataset_dir: exportDir, dataset: DATASET, output_dir: outputDir, max_steps: 12, resume_from_checkpoint: path.join(outputDir, 'checkpoint-8') });
    const rows = await attempts(jobId);
    expect(rows.map((r) => r.outcome)).toEqual(['failed', 'completed']);
    expect(rows[0]).toMatchObject({ exit_code: 1, last_step: 8 });
    expect(rows[1]).toMatchObject({ first_step: 9, last_step: 12 });
    expect(rows[1].command.slice(-2)).toEqual(['train', path.join(outputDir, 'mella_llamafactory_train.yaml')]);
    const { rows: [model] } = await pool.query('select * from models where job_id = $1', [jobId]);
    expect(model).toMatchObject({ backend: 'llamafactory', final_dir: outputDir, total_steps: 12 });
    expect(model.loss_curve.step).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(model.metrics).toMatchObject({ train_loss: expect.any(Number) });
    expect(model.files.map((f: { path: string }) => f.path)).toContain('adapter_model.safetensors');
    expect(model.files.map((f: { path: string }) => f.path).some((p: string) => p.startsWith('checkpoint-'))).toBe(false);
  });

});

/**
 * A stand-in for `llamafactory-cli train <yaml>` (LLaMA-Factory is not installed here): reads the YAML
 * the activity wrote, and does on disk what LLaMA-Factory's trainer does that the activity watches:
 * trainer_log.jsonl lines in LogCallback's format, HF-style checkpoint dirs, resume_from_checkpoint,
 * train_results.json and the adapter at the end. It trains nothing.
 */
function writeFakeLlamaFactory(file: string): string {
  const script = `#!/usr/bin/env node
const fs = require('node:fs'); const path = require('node:path');
const text = fs.readFileSync(process.argv[3], 'utf8');
const get = (k) => { const m = new RegExp('^' + k + ': (.*)$', 'm').exec(text); return m ? m[1].trim() : undefined; };
const out = get('output_dir'); const max = Number(get('max_steps')); const save = Number(get('save_steps'));
const resume = get('resume_from_checkpoint');
let step = resume && resume !== 'null' ? JSON.parse(fs.readFileSync(path.join(resume, 'trainer_state.json'), 'utf8')).global_step : 0;
const failMarker = path.join(out, '.standin-fail-after');
const failAfter = fs.existsSync(failMarker) ? Number(fs.readFileSync(failMarker, 'utf8')) : -1;
process.stderr.write('[stand-in llamafactory-cli] training ' + out + ' from step ' + step + '\\n');
const tick = () => {
  step += 1;
  const loss = 3 / step;
  fs.appendFileSync(path.join(out, 'trainer_log.jsonl'), JSON.stringify({ current_steps: step, total_steps: max, loss, lr: 1e-4, epoch: step / 4, percentage: Math.round(step / max * 10000) / 100, elapsed_time: '0:00:01', remaining_time: '0:00:01' }) + '\\n');
  if (step % save === 0 && step < max) {
    const d = path.join(out, 'checkpoint-' + step); fs.mkdirSync(d, { recursive: true });
    for (const f of ['adapter_model.safetensors', 'optimizer.pt', 'scheduler.pt', 'rng_state.pth']) fs.writeFileSync(path.join(d, f), 'x');
    fs.writeFileSync(path.join(d, 'trainer_state.json'), JSON.stringify({ global_step: step }));
    if (step === failAfter) { fs.unlinkSync(failMarker); process.stderr.write('RuntimeError: stand-in crash\\n'); process.exit(1); }
  }
  if (step >= max) {
    fs.writeFileSync(path.join(out, 'adapter_model.safetensors'), 'adapter');
    fs.writeFileSync(path.join(out, 'adapter_config.json'), '{}');
    fs.writeFileSync(path.join(out, 'train_results.json'), JSON.stringify({ epoch: max / 4, train_loss: 1.2, train_runtime: 1.5 }));
    process.exit(0);
  }
  setTimeout(tick, 150);
};
setTimeout(tick, 150);
`;
  fs.writeFileSync(file, script, { mode: 0o755 });
  return file;
}
