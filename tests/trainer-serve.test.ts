/**
 * trainer/mella_serve.py: the OpenAI-compatible server for the trainer's model dirs, called with the real
 * `openai` client the way the evaluate stage calls an endpoint. The tiny Qwen2-VL is trained for a few
 * steps (LoRA + lm_head) on a synthetic LLaMA-Factory export; one server serves its `final/` (the adapter on
 * its base) and its `base-model/`, so the same question goes to both.
 *
 * The venv comes from `node scripts/ensure-trainer.mjs`; where pip cannot install it the file is skipped
 * with the installer's message.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../infra/paths';

const PYTHON = path.join(PROJECT_ROOT, '.venv-trainer', 'bin', 'python');
const TRAIN_SCRIPT = path.join(PROJECT_ROOT, 'trainer', 'mella_train.py');
const SERVE_SCRIPT = path.join(PROJECT_ROOT, 'trainer', 'mella_serve.py');

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

// Installed while the file is collected, so that the skip is known before the suite starts.
const skipReason = ensureTrainer();
if (skipReason) console.warn(`trainer-serve tests skipped: could not install the trainer's venv: ${skipReason}`);

// --- a small synthetic export (the pattern of tests/trainer.test.ts) ---------------------------------------

const COLORS: Record<string, [number, number, number]> = { red: [220, 30, 30], green: [30, 190, 40], blue: [30, 40, 220], yellow: [235, 220, 40] };
const PATTERNS = ['plain', 'striped'] as const;
const INSTRUCTION = 'อธิบายภาพนี้';

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

async function makeExport(dir: string, count: number): Promise<{ image: string; answer: string }[]> {
  fs.mkdirSync(dir, { recursive: true });
  const out: { image: string; answer: string }[] = [];
  const samples = [];
  const colors = Object.keys(COLORS);
  for (let i = 0; i < count; i++) {
    const color = colors[i % colors.length]!;
    const pattern = PATTERNS[Math.floor(i / colors.length) % PATTERNS.length]!;
    const bytes = await image(COLORS[color]!, pattern, 40 + (i % 5) * 6, 32 + (i % 3) * 4);
    const sha = createHash('sha256').update(bytes).digest('hex');
    const rel = `images/${sha.slice(0, 2)}/${sha}.jpg`;
    fs.mkdirSync(path.join(dir, path.dirname(rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), bytes);
    const answer = `ภาพนี้เป็นสี่เหลี่ยม ${color} แบบ ${pattern}`;
    samples.push({ messages: [{ role: 'user', content: `<image>${INSTRUCTION}` }, { role: 'assistant', content: answer }], images: [rel] });
    out.push({ image: path.join(dir, rel), answer });
  }
  fs.writeFileSync(path.join(dir, 'train.json'), JSON.stringify(samples, null, 1));
  fs.writeFileSync(
    path.join(dir, 'dataset_info.json'),
    JSON.stringify({
      mella_th_train: {
        file_name: 'train.json',
        formatting: 'sharegpt',
        columns: { messages: 'messages', images: 'images' },
        tags: { role_tag: 'role', content_tag: 'content', user_tag: 'user', assistant_tag: 'assistant', system_tag: 'system' },
      },
    }),
  );
  return out;
}

// --- processes -----------------------------------------------------------------------------------------

interface Served {
  child: ChildProcess;
  baseURL: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startServer(args: string[]): Promise<Served> {
  const child = spawn(PYTHON, [SERVE_SCRIPT, ...args], { cwd: PROJECT_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.setEncoding('utf8');
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (c: string) => (stderr += c));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no MELLA_SERVE_READY in 60 s: ${stderr.slice(-2000)}`)), 60_000);
    child.stdout!.on('data', (c: string) => {
      stdout += c;
      const m = /^MELLA_SERVE_READY (\S+)$/m.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve({ child, baseURL: m[1]!, stdout: () => stdout, stderr: () => stderr, exited });
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`mella_serve.py exited ${code} before it was ready:\n${stdout}\n${stderr.slice(-2000)}`));
    });
  });
}

const describeServe = skipReason ? describe.skip : describe;

describeServe('serving a trained model (trainer/mella_serve.py) to the openai client', () => {
  let tmp = '';
  let out = '';
  let exportDir = '';
  let samples: { image: string; answer: string }[] = [];
  let server: Served | undefined;
  let client: OpenAI;

  const dataUrl = (file: string) => `data:image/jpeg;base64,${fs.readFileSync(file).toString('base64')}`;
  const question = (file: string) => [
    {
      role: 'user' as const,
      content: [
        { type: 'image_url' as const, image_url: { url: dataUrl(file) } },
        { type: 'text' as const, text: INSTRUCTION },
      ],
    },
  ];

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-serve-test-'));
    exportDir = path.join(tmp, 'export');
    out = path.join(tmp, 'run');
    samples = await makeExport(exportDir, 16);
    // 16 samples, batch 4: 4 steps an epoch; 30 steps. lm_head trains too (the tiny head is random).
    const trained = spawnSync(
      PYTHON,
      [TRAIN_SCRIPT, '--dataset-dir', exportDir, '--output', out, '--method', 'lora', '--additional-target', 'lm_head',
        '--max-steps', '30', '--per-device-train-batch-size', '4', '--learning-rate', '5e-3', '--save-steps', '0', '--seed', '7', '--device', 'cpu'],
      { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 120_000 },
    );
    expect(trained.status, trained.stderr.slice(-2000)).toBe(0);
    server = await startServer(['--model-dir', path.join(out, 'final'), '--model', `base=${path.join(out, 'base-model')}`, '--port', '0', '--device', 'cpu']);
    client = new OpenAI({ baseURL: server.baseURL, apiKey: 'x', maxRetries: 0 });
  });

  afterAll(async () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) {
      server.child.kill('SIGKILL');
      await server.exited;
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('lists both models, loaded from the run: the LoRA adapter on its base, and the base itself', async () => {
    expect(server!.baseURL).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    const models = [];
    for await (const m of client.models.list()) models.push(m);
    expect(models.map((m) => m.id).sort()).toEqual(['base', 'run/final']);
    const tuned = (await client.models.retrieve('run/final')) as unknown as { id: string; object: string; mella: Record<string, unknown> };
    expect(tuned).toMatchObject({ id: 'run/final', object: 'model' });
    expect(tuned.mella).toMatchObject({ method: 'lora', adapter_dir: path.join(out, 'final'), base_dir: path.join(out, 'final', 'base_model'), default_system: 'You are a helpful assistant.' });
    const lines = server!.stdout().split('\n').filter((l) => l.startsWith('MELLA_SERVE_MODEL '));
    expect(lines).toHaveLength(2);
  });

  it('answers an image + instruction deterministically at temperature 0, with usage counts; the fine-tuned model learned the task', async () => {
    const timings: number[] = [];
    const ask = async (model: string, file: string, extra: Record<string, unknown> = {}) => {
      const t0 = performance.now();
      const r = await client.chat.completions.create({ model, messages: question(file), temperature: 0, max_tokens: 32, ...extra });
      timings.push(performance.now() - t0);
      return r;
    };
    const red = samples[0]!; // red, plain
    const first = await ask('run/final', red.image);
    expect(first.object).toBe('chat.completion');
    expect(first.model).toBe('run/final');
    expect(first.id).toMatch(/^chatcmpl-/);
    const answer = first.choices[0]!.message.content ?? '';
    expect(answer.length).toBeGreaterThan(0);
    expect(first.choices[0]!.message.role).toBe('assistant');
    expect(['stop', 'length']).toContain(first.choices[0]!.finish_reason);
    expect(first.usage!.prompt_tokens).toBeGreaterThan(10); // system + user + image tokens
    expect(first.usage!.completion_tokens).toBeGreaterThan(0);
    expect(first.usage!.total_tokens).toBe(first.usage!.prompt_tokens + first.usage!.completion_tokens);
    // Greedy: the same answer every time.
    for (let i = 0; i < 4; i++) {
      const again = await ask('run/final', red.image);
      expect(again.choices[0]!.message.content).toBe(answer);
      expect(again.usage).toEqual(first.usage);
    }
    // 30 steps on this data are enough for the answer's shape (the trained prefix). Which colour it names
    // is not checked: with a frozen random vision tower, 30 LoRA steps name it right about half the time.
    // That the image reaches the model as in training is the encoding check's job (below).
    expect(answer).toContain('ภาพนี้');

    // The base model gets exactly the same prompt (same tokens) and answers something else (it is random).
    const base = await ask('base', red.image);
    expect(base.usage!.prompt_tokens).toBe(first.usage!.prompt_tokens);
    expect(typeof base.choices[0]!.message.content).toBe('string');
    expect(base.choices[0]!.message.content).not.toBe(answer);
    expect((await ask('base', red.image)).choices[0]!.message.content).toBe(base.choices[0]!.message.content);

    // max_tokens cuts the answer: finish_reason "length".
    const cut = await ask('run/final', red.image, { max_tokens: 2 });
    expect(cut.usage!.completion_tokens).toBe(2);
    expect(cut.choices[0]!.finish_reason).toBe('length');

    // Sampling: a seed makes it repeatable; n answers.
    const s1 = await ask('run/final', red.image, { temperature: 1.0, seed: 11, n: 2 });
    const s2 = await ask('run/final', red.image, { temperature: 1.0, seed: 11, n: 2 });
    expect(s1.choices).toHaveLength(2);
    expect(s2.choices.map((c) => c.message.content)).toEqual(s1.choices.map((c) => c.message.content));

    const sorted = [...timings].sort((a, b) => a - b);
    console.log(`tuned: ${JSON.stringify(answer)}, base: ${JSON.stringify(base.choices[0]!.message.content)} (expected ${JSON.stringify(red.answer)})`);
    console.log(`mella_serve on CPU: ${timings.length} requests, median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms`);
  });

  it('encodes served prompts exactly as the trainer encoded the training samples (tokens and pixels)', () => {
    const r = spawnSync(PYTHON, [path.join(PROJECT_ROOT, 'trainer', 'tests', 'check_serve_encoding.py'), path.join(out, 'final'), exportDir], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      timeout: 120_000,
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^OK \d+ checks/m);
  });

  it('refuses an unknown model with 404 and malformed requests with 400, in OpenAI error shape', async () => {
    const red = samples[0]!.image;
    const notFound = await client.chat.completions.create({ model: 'no-such-model', messages: question(red) }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
    expect((notFound as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');

    const bad = async (body: Record<string, unknown>) => {
      const e = await client.chat.completions.create({ model: 'base', messages: question(red), ...body } as never).catch((err: unknown) => err);
      expect(e, JSON.stringify(body).slice(0, 100)).toBeInstanceOf(OpenAI.BadRequestError);
      return e as InstanceType<typeof OpenAI.BadRequestError>;
    };
    expect((await bad({ messages: [] })).param).toBe('messages');
    expect((await bad({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } }] }] })).code).toBe('invalid_image_format');
    expect((await bad({ messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: 'https://example.com/x.jpg' } }] }] })).code).toBe('invalid_image_url');
    expect((await bad({ messages: [{ role: 'assistant', content: 'hi' }] })).param).toBe('messages[0].role');
    expect((await bad({ temperature: 5 })).param).toBe('temperature');
    expect((await bad({ max_tokens: 0 })).param).toBe('max_tokens');
    expect((await bad({ stream: true })).param).toBe('stream');

    // Not JSON at all.
    const raw = await fetch(`${server!.baseURL}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"model": "base",' });
    expect(raw.status).toBe(400);
    expect(((await raw.json()) as { error: { type: string } }).error.type).toBe('invalid_request_error');
    const unknownUrl = await fetch(`${server!.baseURL}/completions`, { method: 'POST', body: '{}' });
    expect(unknownUrl.status).toBe(404);

    // Still serving after all that.
    const ok = await client.chat.completions.create({ model: 'run/final', messages: question(red), temperature: 0, max_tokens: 4 });
    expect(ok.choices[0]!.message.content!.length).toBeGreaterThan(0);
  });

  it('exits 0 on SIGTERM, saying so', async () => {
    server!.child.kill('SIGTERM');
    const { code } = await server!.exited;
    expect(code, server!.stderr().slice(-2000)).toBe(0);
    expect(server!.stdout()).toMatch(/^MELLA_SERVE_STOPPED \{"signal": "SIGTERM", "exit_code": 0\}$/m);
  });

  it('refuses a dir that is not a model with exit 3 before loading anything', async () => {
    const t0 = Date.now();
    const r = spawnSync(PYTHON, [SERVE_SCRIPT, '--model-dir', exportDir, '--port', '0'], { cwd: PROJECT_ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/^MELLA_SERVE_ERROR \{.*"config_invalid".*neither a model dir/m);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });
});
