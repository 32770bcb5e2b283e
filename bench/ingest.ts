/**
 * bench:ingest: N images served on 127.0.0.1, ingested (a) through the full Temporal pipeline (a worker
 * process, PostgreSQL, shards, checkpoints) and (b) by the same download-validate-store code in a plain
 * in-process loop with the same concurrency, in one run. Prints images/s for both, the peak worker RSS
 * at 2,000 and at N images, and, when `pip install img2dataset` works, img2dataset on the same list.
 * Last line: RESULT ingest ratio=<pipeline time / plain time> goal=<=1.15
 *
 * Env: BENCH_IMAGES (default 10000), BENCH_SMALL (2000), BENCH_WINDOW (4), BENCH_CONCURRENCY (32),
 * BENCH_ROUNDS (5), BENCH_SKIP_IMG2DATASET (any value: leave img2dataset out), BENCH_PROFILE (a dir for CPU profiles).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
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
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
// One local host serves everything: per-host politeness must not be the bottleneck being measured.
const FETCH = { perHostConcurrency: CONCURRENCY, perHostMinIntervalMs: 0, retries: 0, allowPrivateNetworks: ['127.0.0.1/32'] };

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-bench-'));
fs.chmodSync(work, 0o755);
const log = (m: string) => console.log(m);

/**
 * N distinct photo-like JPEGs (400x300, noisy, about 30 KB: the size of a web thumbnail, so decoding
 * costs what it costs on real pages): 100 base pictures, each made unique per index by a JPEG comment
 * segment, so every URL has its own sha256 and its own blob.
 */
async function serveImages(server: SampleServer, count: number) {
  const bases: Buffer[] = [];
  for (let b = 0; b < 100; b++) {
    bases.push(
      await sharp({
        create: { width: 400, height: 300, channels: 3, background: { r: (b * 37) % 256, g: (b * 91) % 256, b: (b * 53) % 256 }, noise: { type: 'gaussian', mean: 128, sigma: 30 } },
      })
        .blur(1.2)
        .jpeg({ quality: 80 })
        .toBuffer(),
    );
  }
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const base = bases[i % bases.length]!;
    const text = Buffer.from(`mella bench image ${i}`);
    const com = Buffer.alloc(4);
    com.writeUInt16BE(0xfffe, 0); // COM marker, right after SOI
    com.writeUInt16BE(text.length + 2, 2);
    const body = Buffer.concat([base.subarray(0, 2), com, text, base.subarray(2)]);
    bytes += body.length;
    server.set(`/b/${i}.jpg`, { kind: 'bytes', body, contentType: 'image/jpeg' });
  }
  return bytes / count;
}

function writeList(server: SampleServer, count: number, file: string) {
  const lines = Array.from({ length: count }, (_, i) => JSON.stringify({ url: server.url(`/b/${i}.jpg`), text: `ภาพ ${i}`, lang: 'th' }));
  fs.writeFileSync(file, `${lines.join('\n')}\n`);
  return file;
}

/** BENCH_PROFILE=<dir>: V8 CPU profiles of the worker and the plain loop, to see where time goes. */
const profileArgs = (name: string) =>
  process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_PROFILE)}`, `--cpu-prof-name=${name}.cpuprofile`] : [];

const TICKS = 100; // USER_HZ on Linux

/** CPU seconds used by a process, plus those of its exited children (for PostgreSQL's backends). */
function cpuSeconds(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS;
  } catch {
    return 0;
  }
}

/** CPU seconds of a process and its live children. */
function treeCpuSeconds(root: number): number {
  let total = cpuSeconds(root);
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(fs.readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]);
      if (ppid === root) total += cpuSeconds(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return total;
}

/** Where the pipeline's wall time went, from the rows it wrote (seconds after the run was started). */
async function phaseTimes(runId: string, startedMs: number) {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  try {
    const { rows } = await client.query(
      `select extract(epoch from r.created_at) as registered, extract(epoch from max(p.planned_at)) as planned,
              extract(epoch from min(s.finished_at - make_interval(secs => s.duration_ms / 1000.0))) as first_shard,
              extract(epoch from max(s.finished_at)) as last_shard, extract(epoch from r.finished_at) as finished
         from runs r join stage_plans p using (run_id) join shards s using (run_id) where r.run_id = $1 group by r.run_id`,
      [runId],
    );
    const t0 = performance.timeOrigin + startedMs;
    const rel = (v: string) => (Number(v) * 1000 - t0) / 1000;
    const r = rows[0];
    return { registered: rel(r.registered), planned: rel(r.planned), firstShard: rel(r.first_shard), lastShard: rel(r.last_shard), finished: rel(r.finished) };
  } finally {
    await client.end();
  }
}

function median<T>(xs: T[], key: (x: T) => number): T {
  return [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)]!;
}

/** Empties the image tables so every round stores every image anew (as the plain loop's fresh blob dir does). */
async function resetTables() {
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  await client.query('truncate images, ingest_results, ingest_records, shards, stage_plans, input_errors, runs cascade');
  await client.end();
}

function peakRss(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function pipelineRun(env: NodeJS.ProcessEnv, list: string, label: string) {
  const worker = spawn(process.execPath, [...profileArgs(`worker-${label}`), ...tsEntryArgs('workers/all.ts', ['cpu'])], {
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
    // Ingest is what is measured; the default stages (filter, caption, ...) would wait for workers this bench does not start.
    stages: ['ingest'],
    inputs: [{ path: list }],
    ingest: {
      shardSize: 250, window: WINDOW, concurrency: CONCURRENCY,
      allowPrivateNetworks: FETCH.allowPrivateNetworks,
      fetch: { perHostConcurrency: FETCH.perHostConcurrency, perHostMinIntervalMs: FETCH.perHostMinIntervalMs, retries: FETCH.retries },
    },
  });
  const runId = `bench-${label}-${Date.now()}`;
  const postmaster = Number(fs.readFileSync(path.join(work, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const cpuBefore = { worker: cpuSeconds(worker.pid!), postgres: treeCpuSeconds(postmaster), temporal: treeCpuSeconds(stack.temporal.process.pid!) };
  const started = performance.now();
  await startRun(c, config, { runId, kind: 'manual' });
  const summary = await waitRun(c, runId);
  const seconds = (performance.now() - started) / 1000;
  const rss = peakRss(worker.pid!);
  const phases = await phaseTimes(runId, started);
  const cpu = {
    worker: cpuSeconds(worker.pid!) - cpuBefore.worker,
    postgres: treeCpuSeconds(postmaster) - cpuBefore.postgres,
    temporal: treeCpuSeconds(stack.temporal.process.pid!) - cpuBefore.temporal,
  };
  await c.close();
  worker.kill('SIGTERM');
  await new Promise((r) => worker.once('exit', r));
  if (summary.status !== 'completed' || summary.stages.ingest!.kept !== summary.stages.ingest!.in) {
    throw new Error(`pipeline run ${label} did not store everything: ${JSON.stringify(summary.stages)}`);
  }
  return { seconds, rss, cpu, phases, kept: summary.stages.ingest!.kept };
}

function plainLoop(env: NodeJS.ProcessEnv, list: string): Promise<{ seconds: number; stored: number; cpuSeconds: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...profileArgs('plain'), ...tsEntryArgs('bench/plain-loop.ts', [list, String(CONCURRENCY), JSON.stringify(FETCH)])], {
      cwd: PROJECT_ROOT,
      env: { ...env, MELLA_BLOB_DIR: path.join(work, `blobs-plain-${Date.now()}`) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`plain loop exited ${code}`));
      const r = JSON.parse(out.trim().split('\n').pop()!) as { seconds: number; stored: number; images: number; cpuSeconds: number };
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
  log(`bench:ingest on ${os.cpus().length} cores; ${N} images; ${CONCURRENCY} downloads in flight; pipeline: shards of 250, window ${WINDOW}`);
  const avgBytes = await serveImages(server, N);
  log(`images: 400x300 JPEG, ${(avgBytes / 1024).toFixed(1)} KiB on average`);
  // This process (the client) and its children all talk to the benchmark's own stack.
  Object.assign(process.env, { TEMPORAL_ADDRESS: stack.temporalAddress, DATABASE_URL: stack.databaseUrl, MELLA_STATE_DIR: work });
  const env = { ...process.env };
  const bigList = writeList(server, N, path.join(work, 'list.jsonl'));
  const smallList = writeList(server, SMALL, path.join(work, 'small.jsonl'));
  // JSONL for img2dataset: one JSON document per line is what it calls "json" only as an array.
  const i2dList = path.join(work, 'list.json');
  fs.writeFileSync(i2dList, JSON.stringify(Array.from({ length: N }, (_, i) => ({ url: server.url(`/b/${i}.jpg`), text: `ภาพ ${i}` }))));

  await plainLoop(env, smallList); // warm-up: page cache, JIT, server
  // Rounds alternate plain loop and pipeline on fresh processes and empty image tables; medians are
  // compared, because one run on a small shared machine varies by 10-20%.
  const plains: Awaited<ReturnType<typeof plainLoop>>[] = [];
  const pipes: Awaited<ReturnType<typeof pipelineRun>>[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await resetTables();
    plains.push(await plainLoop(env, bigList));
    pipes.push(await pipelineRun(env, bigList, `big${round}`));
    log(`round ${round + 1}/${ROUNDS}: plain ${plains.at(-1)!.seconds.toFixed(2)} s, pipeline ${pipes.at(-1)!.seconds.toFixed(2)} s`);
  }
  await resetTables();
  const small = await pipelineRun(env, smallList, 'small');
  const plain = median(plains, (r) => r.seconds);
  const pipe = median(pipes, (r) => r.seconds);
  log(`plain loop: ${N} images in ${plain.seconds.toFixed(2)} s (median of ${ROUNDS}) = ${(N / plain.seconds).toFixed(0)} images/s (CPU ${plain.cpuSeconds.toFixed(1)} s)`);
  log(`pipeline:   ${N} images in ${pipe.seconds.toFixed(2)} s (median of ${ROUNDS}) = ${(N / pipe.seconds).toFixed(0)} images/s (Temporal + PostgreSQL + checkpoints)`);
  const ph = pipe.phases;
  log(`  timeline (s): registered ${ph.registered.toFixed(2)}, planned ${ph.planned.toFixed(2)}, first shard started ${ph.firstShard.toFixed(2)}, last shard done ${ph.lastShard.toFixed(2)}, run finished ${ph.finished.toFixed(2)}`);
  log(`  CPU seconds during the pipeline run: worker ${pipe.cpu.worker.toFixed(1)}, PostgreSQL ${pipe.cpu.postgres.toFixed(1)}, Temporal ${pipe.cpu.temporal.toFixed(1)}`);
  const bigRss = Math.max(...pipes.map((r) => r.rss));
  log(`peak worker RSS: ${(small.rss / 2 ** 20).toFixed(0)} MiB at ${SMALL} images, ${(bigRss / 2 ** 20).toFixed(0)} MiB at ${N} images (max of ${ROUNDS}): ratio ${(bigRss / small.rss).toFixed(2)} (goal <= 1.3)`);
  const i2d = process.env.BENCH_SKIP_IMG2DATASET ? { skipped: 'BENCH_SKIP_IMG2DATASET is set' } : await img2dataset(i2dList);
  if ('skipped' in i2d) log(`img2dataset: skipped (${i2d.skipped})`);
  else log(`img2dataset (1 process, ${CONCURRENCY} threads, no resize): ${i2d.stored} of ${N} images in ${i2d.seconds.toFixed(2)} s = ${(N / i2d.seconds).toFixed(0)} images/s; pipeline time / img2dataset time = ${(pipe.seconds / i2d.seconds).toFixed(2)} (goal < 1)`);
  console.log(`RESULT ingest ratio=${(pipe.seconds / plain.seconds).toFixed(3)} goal=<=1.15`);
} finally {
  await cleanup();
}
