/**
 * The project's own trainer (trainer/mella_train.py) as a child process, the way the fine-tune activity
 * runs it: real CPU training of the tiny Qwen2-VL on a synthetic LLaMA-Factory export (images made with
 * sharp), the MELLA_* protocol on stdout, atomic checkpoints, SIGKILL + `--resume auto`, SIGTERM,
 * dataset validation, and the full method.
 *
 * The venv `.venv-trainer/` comes from `node scripts/ensure-trainer.mjs` (pinned torch/transformers/peft);
 * where pip cannot install it (no PyPI, no python3) the file is skipped with the installer's message.
 * The install runs while the file is collected, so that the skip is known before the suite starts.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../infra/paths';

const TRAIN_SCRIPT = path.join(PROJECT_ROOT, 'trainer', 'mella_train.py');
const PYTHON = path.join(PROJECT_ROOT, '.venv-trainer', 'bin', 'python');

function ensureTrainer(): string | undefined {
  const r = spawnSync(process.execPath, [path.join(PROJECT_ROOT, 'scripts', 'ensure-trainer.mjs')], {
    cwd: PROJECT_ROOT,
    encoding: 'utf8',
    timeout: 20 * 60_000,
  });
  if (r.status === 0 && fs.existsSync(PYTHON)) return undefined;
  const lines = `${r.stderr ?? ''}\n${r.stdout ?? ''}`.split('\n').filter((l) => l.includes('[ensure-trainer]') || /error/i.test(l));
  return lines.slice(-3).join(' / ') || `exit ${r.status}${r.error ? ` (${r.error.message})` : ''}`;
}

const skipReason = ensureTrainer();
if (skipReason) console.warn(`trainer tests skipped: could not install the trainer's venv: ${skipReason}`);

// --- a synthetic LLaMA-Factory sharegpt export -------------------------------------------------------

const COLORS: Record<string, [number, number, number]> = {
  red: [220, 30, 30],
  green: [30, 190, 40],
  blue: [30, 40, 220],
  yellow: [235, 220, 40],
};
const PATTERNS = ['plain', 'striped'] as const;
const DATASET_INFO = {
  mella_th_train: {
    file_name: 'train.json',
    formatting: 'sharegpt',
    columns: { messages: 'messages', images: 'images' },
    tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant', system_tag: 'system' },
  },
};

interface ExportSample {
  messages: { role: string; content: string }[];
  images: string[];
}

async function image(color: [number, number, number], pattern: string, width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const dark = pattern === 'striped' && Math.floor(x / 4) % 2 === 0;
      const o = (y * width + x) * 3;
      raw[o] = dark ? 10 : color[0];
      raw[o + 1] = dark ? 10 : color[1];
      raw[o + 2] = dark ? 10 : color[2];
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
}

/** `count` samples: colour x pattern x size, images content-addressed under images/<ab>/<sha>.jpg. */
async function makeExport(dir: string, count: number): Promise<ExportSample[]> {
  fs.mkdirSync(dir, { recursive: true });
  const samples: ExportSample[] = [];
  const colors = Object.keys(COLORS);
  for (let i = 0; i < count; i++) {
    const color = colors[i % colors.length]!;
    const pattern = PATTERNS[Math.floor(i / colors.length) % PATTERNS.length]!;
    const bytes = await image(COLORS[color]!, pattern, 40 + (i % 5) * 6, 32 + (i % 3) * 4);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const rel = `images/${sha.slice(0, 2)}/${sha}.jpg`;
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), bytes);
    samples.push({
      messages: [
        { role: 'user', content: '<image>อธิบายภาพนี้' },
        { role: 'assistant', content: `ภาพนี้เป็นสี่เหลี่ยม ${color} แบบ ${pattern}` },
      ],
      images: [rel],
    });
  }
  fs.writeFileSync(path.join(dir, 'train.json'), JSON.stringify(samples, null, 1));
  fs.writeFileSync(path.join(dir, 'dataset_info.json'), JSON.stringify(DATASET_INFO, null, 1));
  return samples;
}

/** A broken copy of the export: same images (linked), another train.json. */
function brokenExport(good: string, dir: string, trainJson: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.symlinkSync(path.join(good, 'images'), path.join(dir, 'images'));
  fs.copyFileSync(path.join(good, 'dataset_info.json'), path.join(dir, 'dataset_info.json'));
  fs.writeFileSync(path.join(dir, 'train.json'), trainJson);
  return dir;
}

// --- running the trainer -----------------------------------------------------------------------------

interface Progress {
  current_steps: number;
  total_steps: number;
  loss: number;
  lr: number;
  epoch: number;
  percentage: number;
  elapsed_time: string;
  remaining_time: string;
}

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  lines: string[];
  stderr: string;
  ms: number;
  progress: Progress[];
  checkpoints: { path: string; step: number }[];
  tagged(tag: string): unknown[];
}

function parseRun(code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string, ms: number): Run {
  const lines = stdout.split('\n').filter(Boolean);
  const tagged = (tag: string) => lines.filter((l) => l.startsWith(`${tag} `)).map((l) => JSON.parse(l.slice(tag.length + 1)) as unknown);
  const checkpoints = lines
    .filter((l) => l.startsWith('MELLA_CHECKPOINT '))
    .map((l) => {
      const m = /^MELLA_CHECKPOINT (.+) step=(\d+)$/.exec(l);
      if (!m) throw new Error(`bad checkpoint line: ${l}`);
      return { path: m[1]!, step: Number(m[2]) };
    });
  return { code, signal, lines, stderr, ms, progress: tagged('MELLA_PROGRESS') as Progress[], checkpoints, tagged };
}

/** Runs the trainer; `watch` sees each stdout line with the child, e.g. to kill it at a given moment. */
function train(args: string[], watch?: (line: string, child: ReturnType<typeof spawn>) => void): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [TRAIN_SCRIPT, ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pending = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      pending += chunk;
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        watch?.(line, child);
      }
    });
    child.stderr.on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(parseRun(code, signal, stdout, stderr, Date.now() - started)));
  });
}

const describeTrainer = skipReason ? describe.skip : describe;

describeTrainer('the project trainer (trainer/mella_train.py)', () => {
  let tmp = '';
  let exportDir = '';
  // 24 samples, batch 4: 6 steps per epoch; 30 steps = 5 epochs. The LoRA run also trains lm_head
  // (--additional-target): the tiny model's head is random, and a frozen random head learns slowly.
  const loraArgs = (output: string, { maxSteps = 30, saveSteps = 10 } = {}) => [
    '--dataset-dir', exportDir,
    '--output', output,
    '--model', 'tiny-random',
    '--method', 'lora',
    '--additional-target', 'lm_head',
    '--max-steps', String(maxSteps),
    '--per-device-train-batch-size', '4',
    '--learning-rate', '5e-3',
    '--save-steps', String(saveSteps),
    '--save-total-limit', '2',
    '--seed', '7',
    '--device', 'cpu',
  ];
  let reference: Run | undefined;

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-trainer-test-'));
    exportDir = path.join(tmp, 'export');
    await makeExport(exportDir, 24);
  });
  afterAll(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('trains the tiny VLM with LoRA on the CPU: progress lines, falling loss, complete checkpoints, final files', async () => {
    const out = path.join(tmp, 'lora');
    const run = await train(loraArgs(out));
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    reference = run;

    const [start] = run.tagged('MELLA_START') as { total_steps: number; start_step: number; device: string; trainable_params: number; num_samples: number }[];
    expect(start).toMatchObject({ total_steps: 30, start_step: 0, device: 'cpu', num_samples: 24 });
    expect(start!.trainable_params).toBeGreaterThan(0);

    // One progress line per step, in LLaMA-Factory's trainer_log.jsonl shape, and the same lines in the file.
    expect(run.progress.map((p) => p.current_steps)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    for (const p of run.progress) {
      expect(Object.keys(p).sort()).toEqual(['current_steps', 'elapsed_time', 'epoch', 'loss', 'lr', 'percentage', 'remaining_time', 'total_steps']);
      expect(p.total_steps).toBe(30);
      expect(Number.isFinite(p.loss)).toBe(true);
      expect(p.lr).toBeGreaterThan(0);
      expect(p.elapsed_time).toMatch(/^\d+:\d\d:\d\d$/);
    }
    const logged = fs.readFileSync(path.join(out, 'trainer_log.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Progress);
    expect(logged).toEqual(run.progress);
    expect(run.progress.at(-1)).toMatchObject({ current_steps: 30, percentage: 100, epoch: 5 });

    // The data is memorisable: the last losses are well below the first ones.
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const first = mean(run.progress.slice(0, 3).map((p) => p.loss));
    const last = mean(run.progress.slice(-3).map((p) => p.loss));
    expect(last).toBeLessThan(first * 0.6);

    // Checkpoints at 10 and 20, each complete when announced; the newest two kept.
    expect(run.checkpoints.map((c) => c.step)).toEqual([10, 20]);
    for (const c of run.checkpoints) expect(c.path).toBe(path.join(out, `checkpoint-${c.step}`));
    for (const step of [10, 20]) {
      const dir = path.join(out, `checkpoint-${step}`);
      const marker = JSON.parse(fs.readFileSync(path.join(dir, 'COMPLETE'), 'utf8')) as { step: number; files: Record<string, number> };
      expect(marker.step).toBe(step);
      for (const f of ['adapter_model.safetensors', 'adapter_config.json', 'optimizer.pt', 'scheduler.pt', 'rng_state.pth', 'trainer_state.json']) {
        expect(fs.statSync(path.join(dir, f)).size).toBe(marker.files[f]);
      }
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'trainer_state.json'), 'utf8'))).toMatchObject({ global_step: step, total_steps: 30 });
    }
    expect(fs.readdirSync(out).filter((n) => n.startsWith('.tmp-'))).toEqual([]);

    // final/: adapter, metrics, loss curve (and the tiny random base the adapter belongs to).
    const [done] = run.tagged('MELLA_DONE') as { final_dir: string; total_steps: number; final_loss: number; files: string[]; train_runtime: number }[];
    expect(done).toMatchObject({ final_dir: path.join(out, 'final'), total_steps: 30 });
    expect(done!.final_loss).toBeCloseTo(run.progress.at(-1)!.loss, 3);
    expect(done!.train_runtime).toBeGreaterThan(0);
    for (const f of ['COMPLETE', 'adapter_model.safetensors', 'adapter_config.json', 'training_metrics.json', 'loss_curve.json', 'tokenizer.json', 'base_model/model.safetensors']) {
      expect(done!.files).toContain(f);
      expect(fs.existsSync(path.join(out, 'final', f))).toBe(true);
    }
    const metrics = JSON.parse(fs.readFileSync(path.join(out, 'final', 'training_metrics.json'), 'utf8')) as Record<string, unknown>;
    expect(metrics).toMatchObject({ total_steps: 30, method: 'lora', device: 'cpu', dtype: 'fp32', num_samples: 24 });
    const curve = JSON.parse(fs.readFileSync(path.join(out, 'final', 'loss_curve.json'), 'utf8')) as { step: number[]; loss: number[] };
    expect(curve.step).toHaveLength(30);

    // A retry of a finished run does nothing and says so.
    const again = await train(loraArgs(out));
    expect(again.code).toBe(0);
    expect(again.progress).toEqual([]);
    expect(again.tagged('MELLA_DONE')[0]).toMatchObject({ already_complete: true, total_steps: 30 });
  });

  it('encodes the Qwen2-VL chat template with the loss on answers only, and schedules every sample once per epoch', () => {
    const r = spawnSync(PYTHON, [path.join(PROJECT_ROOT, 'trainer', 'tests', 'check_encoding.py'), path.join(tmp, 'lora', 'base-model'), exportDir], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^OK \d+ checks/m);
  });

  it('resumes after SIGKILL from the last complete checkpoint, ignoring half-written ones, with the same data order', async () => {
    const out = path.join(tmp, 'killed');
    let killedAfter = -1;
    const killed = await train(loraArgs(out), (line, child) => {
      const m = /^MELLA_CHECKPOINT .+ step=(\d+)$/.exec(line);
      if (m && killedAfter < 0) {
        killedAfter = Number(m[1]);
        child.kill('SIGKILL');
      }
    });
    expect(killed.signal).toBe('SIGKILL');
    expect(killedAfter).toBe(10);
    expect(killed.tagged('MELLA_DONE')).toEqual([]);

    // What a crash mid-save leaves behind: a temp dir and a checkpoint dir without its marker.
    fs.mkdirSync(path.join(out, '.tmp-checkpoint-20-99999'));
    fs.writeFileSync(path.join(out, '.tmp-checkpoint-20-99999', 'optimizer.pt'), 'partial');
    fs.mkdirSync(path.join(out, 'checkpoint-25'));
    fs.writeFileSync(path.join(out, 'checkpoint-25', 'adapter_model.safetensors'), 'partial');

    const resumed = await train(loraArgs(out));
    expect(resumed.code, resumed.stderr.slice(-2000)).toBe(0);
    expect(resumed.lines.find((l) => l.startsWith('MELLA_RESUME '))).toBe(`MELLA_RESUME ${path.join(out, 'checkpoint-10')} step=10`);
    expect(resumed.tagged('MELLA_START')[0]).toMatchObject({ start_step: 10, total_steps: 30 });
    expect(resumed.progress[0]!.current_steps).toBeGreaterThan(killedAfter);
    expect(resumed.progress[0]!.current_steps).toBe(11);
    expect(resumed.progress.at(-1)).toMatchObject({ current_steps: 30, total_steps: 30 });
    expect(fs.existsSync(path.join(out, 'checkpoint-25'))).toBe(false);
    expect(fs.existsSync(path.join(out, '.tmp-checkpoint-20-99999'))).toBe(false);

    // The log reads as one run: steps 1..30 once each (lines the killed attempt wrote past step 10 are dropped).
    const logged = fs.readFileSync(path.join(out, 'trainer_log.jsonl'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as Progress).current_steps);
    expect(logged).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));

    // Same seed, same data order, restored optimizer and RNG: the losses match the uninterrupted run.
    if (reference) {
      const ref = new Map(reference.progress.map((p) => [p.current_steps, p.loss]));
      for (const p of resumed.progress) expect(Math.abs(p.loss - ref.get(p.current_steps)!)).toBeLessThan(1e-3);
    }
  });

  it('on SIGTERM stops at a step boundary, writes a checkpoint and exits 143; the retry continues from it', async () => {
    const out = path.join(tmp, 'terminated');
    let sent = false;
    const run = await train(loraArgs(out, { maxSteps: 40, saveSteps: 0 }), (line, child) => {
      if (!sent && line.startsWith('MELLA_PROGRESS ') && (JSON.parse(line.slice(15)) as Progress).current_steps >= 3) {
        sent = true;
        child.kill('SIGTERM');
      }
    });
    expect(run.code).toBe(143);
    const [stopped] = run.tagged('MELLA_STOPPED') as { signal: string; last_checkpoint: string }[];
    expect(stopped!.signal).toBe('SIGTERM');
    const last = run.checkpoints.at(-1)!;
    expect(stopped!.last_checkpoint).toBe(last.path);
    expect(last.step).toBe(run.progress.at(-1)!.current_steps);
    expect(fs.existsSync(path.join(last.path, 'COMPLETE'))).toBe(true);

    const retry = await train(loraArgs(out, { maxSteps: 40, saveSteps: 0 }));
    expect(retry.code, retry.stderr.slice(-2000)).toBe(0);
    expect(retry.progress[0]!.current_steps).toBe(last.step + 1);
    expect(retry.progress.at(-1)!.current_steps).toBe(40);
  });

  it('rejects a malformed dataset fast with exit code 2 and a message that says what and where', async () => {
    const good = JSON.parse(fs.readFileSync(path.join(exportDir, 'train.json'), 'utf8')) as ExportSample[];
    const missing = structuredClone(good.slice(0, 6));
    missing[4]!.images = ['images/zz/not-there.jpg'];
    const mismatch = structuredClone(good.slice(0, 6));
    mismatch[2]!.messages[0]!.content = '<image> and <image>: compare';
    const cases = [
      { name: 'missing-image', json: JSON.stringify(missing), problem: 'image_missing', sample: 4, text: 'images/zz/not-there.jpg' },
      { name: 'token-mismatch', json: JSON.stringify(mismatch), problem: 'image_token_mismatch', sample: 2, text: '2 <image> token(s) but 1 image(s)' },
      { name: 'empty-file', json: '', problem: 'data_file_empty', sample: undefined, text: 'train.json is empty' },
    ];
    for (const c of cases) {
      const dir = brokenExport(exportDir, path.join(tmp, `bad-${c.name}`), c.json);
      const out = path.join(tmp, `bad-${c.name}-out`);
      const run = await train(['--dataset-dir', dir, '--output', out, '--max-steps', '5']);
      expect(run.code, c.name).toBe(2);
      expect(run.ms, `${c.name} should fail before loading torch`).toBeLessThan(15_000);
      const [err] = run.tagged('MELLA_ERROR') as { error: string; exit_code: number; message: string; problem: string; problems: { sample?: number; file?: string }[] }[];
      expect(err, c.name).toMatchObject({ error: 'dataset_invalid', exit_code: 2, problem: c.problem });
      expect(err!.message).toContain(c.text);
      expect(err!.problems[0]!.file).toBe('train.json');
      if (c.sample !== undefined) {
        expect(err!.problems[0]!.sample).toBe(c.sample);
        expect(err!.message).toContain(`sample ${c.sample}`);
      }
      expect(run.stderr).toContain(err!.message); // the same JSON on stderr
      expect(fs.existsSync(out), 'nothing written for an invalid dataset').toBe(false);
    }

    // A missing model dir is a configuration error (3), also before torch loads.
    const noModel = await train(['--dataset-dir', exportDir, '--output', path.join(tmp, 'no-model'), '--model', path.join(tmp, 'nope')]);
    expect(noModel.code).toBe(3);
    expect(noModel.tagged('MELLA_ERROR')[0]).toMatchObject({ error: 'config_invalid' });
  });

  it('trains with --method full for a few steps and writes a loadable model dir', async () => {
    const out = path.join(tmp, 'full');
    const run = await train([
      '--dataset-dir', exportDir, '--output', out, '--method', 'full', '--max-steps', '4',
      '--per-device-train-batch-size', '2', '--gradient-accumulation-steps', '2', '--learning-rate', '1e-3',
      '--save-steps', '2', '--device', 'cpu',
    ]);
    expect(run.code, run.stderr.slice(-2000)).toBe(0);
    expect(run.progress.map((p) => p.current_steps)).toEqual([1, 2, 3, 4]);
    expect(run.progress.every((p) => Number.isFinite(p.loss))).toBe(true);
    expect(run.checkpoints.map((c) => c.step)).toEqual([2]);
    for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'preprocessor_config.json', 'training_metrics.json', 'loss_curve.json']) {
      expect(fs.existsSync(path.join(out, 'final', f)), f).toBe(true);
    }
    expect(fs.existsSync(path.join(out, 'checkpoint-2', 'model.safetensors'))).toBe(true);
    const metrics = JSON.parse(fs.readFileSync(path.join(out, 'final', 'training_metrics.json'), 'utf8')) as { method: string; trainable_params: number; total_params: number };
    expect(metrics.method).toBe('full');
    // The vision tower stays frozen by default; the language model trains in full.
    expect(metrics.trainable_params).toBeLessThan(metrics.total_params);
    expect(metrics.trainable_params).toBeGreaterThan(metrics.total_params / 2);

    // final/ is an ordinary local model dir: --model <dir> (the real-weights path) trains on from it.
    const next = await train(['--dataset-dir', exportDir, '--output', path.join(tmp, 'from-dir'), '--model', path.join(out, 'final'), '--max-steps', '2', '--device', 'cpu']);
    expect(next.code, next.stderr.slice(-2000)).toBe(0);
    expect(next.tagged('MELLA_START')[0]).toMatchObject({ model_dir: path.join(out, 'final'), method: 'lora' });
    expect(next.progress.map((p) => p.current_steps)).toEqual([1, 2]);
  });

  it('trainer/gpu_check.py (the GPU check, run here with --device cpu): every run and check it makes holds', () => {
    const out = path.join(tmp, 'gpu-check');
    const r = spawnSync(PYTHON, [path.join(PROJECT_ROOT, 'trainer', 'gpu_check.py'), '--device', 'cpu', '--dataset-dir', exportDir, '--out', out, '--steps', '6', '--cpu-steps', '2'], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      timeout: 5 * 60_000,
    });
    expect(r.status, `${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`).toBe(0);
    const line = r.stdout.split('\n').find((l) => l.startsWith('GPU_CHECK '));
    const result = JSON.parse(line!.slice('GPU_CHECK '.length)) as { ok: boolean; checks: Record<string, boolean>; runs: { run: string; first_step: number; last_step: number; resume: string | null }[] };
    expect(result.ok).toBe(true);
    expect(Object.keys(result.checks).sort()).toEqual(
      ['full_cuda_done', 'killed_mid_run', 'lora_cpu_done', 'lora_cuda_done', 'lora_cuda_loss_fell', 'resumed_from_checkpoint', 'step_continued'].sort(),
    );
    // Killed after its second checkpoint (every 2 steps), the run resumes at step 4 and goes on from 5.
    const resumed = result.runs.find((x) => x.run === 'resume-cuda-resumed')!;
    expect(resumed.resume).toMatch(/checkpoint-4 step=4$/);
    expect([resumed.first_step, resumed.last_step]).toEqual([5, 6]);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'gpu_check.json'), 'utf8'))).toMatchObject({ ok: true });
  });
});
