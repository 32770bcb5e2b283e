/**
 * bench:ingest: N images served on 127.0.0.1, ingested (a) through the full Temporal pipeline (a worker
 * process, PostgreSQL, shards, checkpoints) and (b) by the same download-validate-store code in a plain
 * in-process loop with the same concurrency, in one run. Prints images/s for both, the peak worker RSS
 * at 2,000 and at N images, and, when `pip install img2dataset` works, img2dataset on the same list.
 * Last line: RESULT ingest ratio=<pipeline time / plain time> goal=<=1.15
 *
 * Env: BENCH_IMAGES (default 10000), BENCH_SMALL (2000), BENCH_WINDOW (4), BENCH_SHARD_CONCURRENCY (8).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { parseConfig } from '../activities/shared/config';
import { tsEntryArgs } from '../infra/node-process';
import { PROJECT_ROOT } from '../infra/paths';
import { startSampleServer, type SampleServer } from '../infra/sample-site/server';
import { freePort } from '../infra/stack/ports';
import { startStack } from '../infra/stack/stack';
import { connectClient } from '../cli/client';
import { startRun, waitRun } from '../cli/runs';

const N = Number(process.env.BENCH_IMAGES ?? 10_000);
const SMALL = Number(process.env.BENCH_SMALL ?? 2_000);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 4);
const PER_SHARD = Number(process.env.BENCH_SHARD_CONCURRENCY ?? 8);
const CONCURRENCY = WINDOW * PER_SHARD;
// One local host serves everything: per-host politeness must not be the bottleneck being measured.
const FETCH = { perHostConcurrency: CONCURRENCY, perHostMinIntervalMs: 0, retries: 0, allowPrivateNetworks: ['127.0.0.1/32'] };

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-bench-'));
fs.chmodSync(work, 0o755);
const log = (m: string) => console.log(m);

async function serveImages(server: SampleServer, count: number) {
  for (let i = 0; i < count; i++) {
    // Distinct 256x192 JPEGs (about 1.5 KB each): colour and a noise seed vary per image.
    const body = await sharp({
      create: { width: 256, height: 192, channels: 3, background: { r: i % 256, g: (i >> 8) % 256, b: (i * 7) % 256 } },
    })
      .composite([{ input: Buffer.from(`<svg width="256" height="192"><text x="10" y="100" font-size="40">${i}</text></svg>`) }])
      .jpeg({ quality: 80 })
      .toBuffer();
    server.set(`/b/${i}.jpg`, { kind: 'bytes', body, contentType: 'image/jpeg' });
  }
}

function writeList(server: SampleServer, count: number, file: string) {
  const lines = Array.from({ length: count }, (_, i) => JSON.stringify({ url: server.url(`/b/${i}.jpg`), text: `ภาพ ${i}`, lang: 'th' }));
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

function peakRss(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function pipelineRun(env: NodeJS.ProcessEnv, list: string, label: string) {
  const worker = spawn(process.execPath, tsEntryArgs('workers/all.ts', ['cpu']), {
    cwd: PROJECT_ROOT,
    env: { ...env, MELLA_BLOB_DIR: path.join(work, `blobs-${label}`), MELLA_CPU_SLOTS: String(WINDOW + 2), MELLA_LOG_LEVEL: 'WARN' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    worker.stdout!.on('data', (d) => String(d).includes('[worker] polling') && resolve());
    worker.once('exit', () => reject(new Error('worker exited')));
  });
  const c = await connectClient();
  const config = parseConfig({
    name: 'bench',
    languages: ['th'],
    inputs: [{ path: list }],
    ingest: {
      shardSize: 250, window: WINDOW, concurrency: PER_SHARD,
      allowPrivateNetworks: FETCH.allowPrivateNetworks,
      fetch: { perHostConcurrency: FETCH.perHostConcurrency, perHostMinIntervalMs: FETCH.perHostMinIntervalMs, retries: FETCH.retries },
    },
  });
  const runId = `bench-${label}-${Date.now()}`;
  const started = performance.now();
  await startRun(c, config, { runId, kind: 'manual' });
  const summary = await waitRun(c, runId);
  const seconds = (performance.now() - started) / 1000;
  const rss = peakRss(worker.pid!);
  await c.close();
  worker.kill('SIGTERM');
  await new Promise((r) => worker.once('exit', r));
  if (summary.status !== 'completed' || summary.stages.ingest!.kept !== summary.stages.ingest!.in) {
    throw new Error(`pipeline run ${label} did not store everything: ${JSON.stringify(summary.stages)}`);
  }
  return { seconds, rss, kept: summary.stages.ingest!.kept };
}

function plainLoop(env: NodeJS.ProcessEnv, list: string): Promise<{ seconds: number; stored: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, tsEntryArgs('bench/plain-loop.ts', [list, String(CONCURRENCY), JSON.stringify(FETCH)]), {
      cwd: PROJECT_ROOT,
      env: { ...env, MELLA_BLOB_DIR: path.join(work, `blobs-plain-${Date.now()}`) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`plain loop exited ${code}`));
      const r = JSON.parse(out.trim().split('\n').pop()!) as { seconds: number; stored: number; images: number };
      if (r.stored !== r.images) return reject(new Error(`plain loop stored ${r.stored} of ${r.images}: ${out}`));
      resolve(r);
    });
  });
}

/** Runs a command without blocking this process's event loop (the image server lives here). */
function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    child.stderr!.on('data', (d) => (err = (err + d).slice(-2000)));
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(cmd)} exited ${code}: ${err}`))));
  });
}

async function img2dataset(list: string): Promise<{ seconds: number; stored: number } | { skipped: string }> {
  const venv = path.join(PROJECT_ROOT, '.bench', 'venv');
  try {
    if (!fs.existsSync(path.join(venv, 'bin', 'img2dataset'))) {
      await run('python3', ['-m', 'venv', venv]);
      await run(path.join(venv, 'bin', 'pip'), ['install', '--quiet', 'img2dataset']);
    }
  } catch (err) {
    return { skipped: `pip install img2dataset failed: ${(err as Error).message.split('\n')[0]}` };
  }
  const out = path.join(work, 'img2dataset-out');
  const started = performance.now();
  await run(
    path.join(venv, 'bin', 'img2dataset'),
    [
      `--url_list=${list}`, '--input_format=json', '--url_col=url', '--caption_col=text', `--output_folder=${out}`,
      '--output_format=files', '--processes_count=1', `--thread_count=${CONCURRENCY}`, '--resize_mode=no',
      '--retries=0', '--timeout=10', '--distributor=multiprocessing', '--disallowed_header_directives=[]', '--compute_hash=sha256',
    ],
    { ...process.env, NO_ALBUMENTATIONS_UPDATE: '1' },
  );
  const seconds = (performance.now() - started) / 1000;
  let stored = 0;
  for (const f of fs.readdirSync(out).filter((n) => n.endsWith('_stats.json'))) {
    stored += (JSON.parse(fs.readFileSync(path.join(out, f), 'utf8')) as { successes: number }).successes;
  }
  return { seconds, stored };
}

const server = await startSampleServer();
const stack = await startStack({
  stateDir: work,
  ports: { temporal: await freePort(), temporalUi: await freePort(), postgres: await freePort() },
  headless: true,
});
const cleanup = async () => {
  await server.close().catch(() => undefined);
  await stack.stop().catch(() => undefined);
  fs.rmSync(work, { recursive: true, force: true });
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanup().then(() => process.exit(130)));
try {
  log(`bench:ingest on ${os.cpus().length} cores; ${N} images; concurrency ${CONCURRENCY} (window ${WINDOW} x ${PER_SHARD} per shard)`);
  await serveImages(server, N);
  // This process (the client) and its children all talk to the benchmark's own stack.
  Object.assign(process.env, { TEMPORAL_ADDRESS: stack.temporalAddress, DATABASE_URL: stack.databaseUrl, MELLA_STATE_DIR: work });
  const env = { ...process.env };
  const bigList = writeList(server, N, path.join(work, 'list.jsonl'));
  const smallList = writeList(server, SMALL, path.join(work, 'small.jsonl'));
  // JSONL for img2dataset: one JSON document per line is what it calls "json" only as an array.
  const i2dList = path.join(work, 'list.json');
  fs.writeFileSync(i2dList, JSON.stringify(Array.from({ length: N }, (_, i) => ({ url: server.url(`/b/${i}.jpg`), text: `ภาพ ${i}` }))));

  await plainLoop(env, smallList); // warm-up: page cache, JIT, server
  const plain = await plainLoop(env, bigList);
  const pipe = await pipelineRun(env, bigList, 'big');
  const small = await pipelineRun(env, smallList, 'small');
  log(`plain loop: ${N} images in ${plain.seconds.toFixed(2)} s = ${(N / plain.seconds).toFixed(0)} images/s (stored ${plain.stored})`);
  log(`pipeline:   ${N} images in ${pipe.seconds.toFixed(2)} s = ${(N / pipe.seconds).toFixed(0)} images/s (kept ${pipe.kept}; Temporal + PostgreSQL + checkpoints)`);
  log(`peak worker RSS: ${(small.rss / 2 ** 20).toFixed(0)} MiB at ${SMALL} images, ${(pipe.rss / 2 ** 20).toFixed(0)} MiB at ${N} images: ratio ${(pipe.rss / small.rss).toFixed(2)} (goal <= 1.3)`);
  const i2d = await img2dataset(i2dList);
  if ('skipped' in i2d) log(`img2dataset: skipped (${i2d.skipped})`);
  else log(`img2dataset (1 process, ${CONCURRENCY} threads, no resize): ${i2d.stored} of ${N} images in ${i2d.seconds.toFixed(2)} s = ${(N / i2d.seconds).toFixed(0)} images/s; pipeline time / img2dataset time = ${(pipe.seconds / i2d.seconds).toFixed(2)} (goal < 1)`);
  console.log(`RESULT ingest ratio=${(pipe.seconds / plain.seconds).toFixed(3)} goal=<=1.15`);
} finally {
  await cleanup();
}
