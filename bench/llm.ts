/**
 * bench:llm: the caption stage at its endpoint's limit. The project's LLM stand-in answers every chat
 * request after BENCH_LATENCY_MS (200 ms); the endpoint allows BENCH_CONCURRENCY (32) requests in flight
 * and requests/tokens per minute far above what binds. N (5,000) distinct small images go through the
 * full pipeline on the benchmark's own stack (PostgreSQL + Temporal dev server, as bench:ingest): records
 * -> ingest -> filter -> caption, with a cpu worker process (workflows, ingest, filter) and an llm worker
 * process (caption shards). Only the caption stage is timed, at the stand-in: from the arrival of the
 * first caption request to the end of the last. The ceiling is concurrency / latency (32 / 0.2 s = 160
 * requests/s).
 * Last line: RESULT llm ratio=<achieved requests/s / ceiling> goal=>=0.9
 *
 * Env: BENCH_CAPTIONS (default 5000), BENCH_LATENCY_MS (200), BENCH_CONCURRENCY (32),
 * BENCH_SHARD (caption.shardSize, default 100), BENCH_WINDOW (caption.window, default 4),
 * BENCH_LLM_SLOTS (MELLA_LLM_SLOTS of the llm worker; default: the worker's own, 16).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import sharp from 'sharp';
import { parseConfig } from '../activities/shared/config';
import { connectClient } from '../cli/client';
import { startRun, waitRun } from '../cli/runs';
import { startLlmStandin } from '../infra/llm-standin/index';
import { tsEntryArgs } from '../infra/node-process';
import { PROJECT_ROOT } from '../infra/paths';
import { startSampleServer, type SampleServer } from '../infra/sample-site/server';
import { freePort } from '../infra/stack/ports';
import { startStack } from '../infra/stack/stack';
import { machineJiffies } from './machine-cpu';

const N = Number(process.env.BENCH_CAPTIONS ?? 5_000);
const LATENCY_MS = Number(process.env.BENCH_LATENCY_MS ?? 200);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const SHARD = Number(process.env.BENCH_SHARD ?? 100);
const WINDOW = Number(process.env.BENCH_WINDOW ?? 4);
const LLM_SLOTS = process.env.BENCH_LLM_SLOTS;
const DB_POOL = process.env.BENCH_DB_POOL;
const CEILING = CONCURRENCY / (LATENCY_MS / 1000);
const BASES = 200;
const W = 160;
const H = 120;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mella-bench-llm-'));
fs.chmodSync(work, 0o755);
const log = (m: string) => console.log(m);

/**
 * N distinct small photo-like JPEGs (160x120): BASES noisy base pictures, each made unique per index by
 * a row of 8x8 black and white blocks that spells the index in binary. The blocks survive the filter
 * stage's re-encoding, so every image has its own training copy, and its own caption request (the
 * request cache is keyed by the training copy's hash).
 */
async function serveImages(server: SampleServer, count: number): Promise<number> {
  const bases: Buffer[] = [];
  for (let b = 0; b < BASES; b++) {
    bases.push(
      await sharp({
        create: { width: W, height: H, channels: 3, background: { r: (b * 37) % 256, g: (b * 91) % 256, b: (b * 53) % 256 }, noise: { type: 'gaussian', mean: 128, sigma: 30 } },
      })
        .blur(1.2)
        .raw()
        .toBuffer(),
    );
  }
  const bits = Math.max(1, Math.ceil(Math.log2(count + 1)));
  let bytes = 0;
  for (let i = 0; i < count; i++) {
    const px = Buffer.from(bases[i % BASES]!);
    for (let bit = 0; bit < bits; bit++) {
      const v = (i >> bit) & 1 ? 255 : 0;
      for (let y = 0; y < 8; y++) for (let x = bit * 8; x < bit * 8 + 8; x++) px.fill(v, (y * W + x) * 3, (y * W + x) * 3 + 3);
    }
    const body = await sharp(px, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 85 }).toBuffer();
    bytes += body.length;
    server.set(`/c/${i}.jpg`, { kind: 'bytes', body, contentType: 'image/jpeg' });
  }
  return bytes / count;
}

const TICKS = 100; // USER_HZ on Linux
function cpuSeconds(pid: number): number {
  try {
    const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICKS;
  } catch {
    return 0;
  }
}

/** BENCH_PROFILE=<dir>: a V8 CPU profile of each worker, to see where time goes. */
const profileArgs = (name: string) =>
  process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_PROFILE)}`, `--cpu-prof-name=${name}.cpuprofile`] : [];

function startWorker(queue: string, env: NodeJS.ProcessEnv): Promise<ChildProcess> {
  const child = spawn(process.execPath, [...profileArgs(`worker-${queue}`), ...tsEntryArgs('workers/all.ts', [queue])], { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d) => String(d).includes('[worker] polling') && resolve(child));
    child.once('exit', (code) => reject(new Error(`${queue} worker exited ${code}`)));
  });
}

async function stopWorker(child: ChildProcess) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await exited;
}

const server = await startSampleServer();
// The stand-in lives in this process: its request log is the clock of the measurement.
const standin = await startLlmStandin({ latencyMs: LATENCY_MS, logLimit: 4 * N + 100 });
const stack = await startStack({
  stateDir: work,
  ports: { temporal: await freePort(), temporalUi: await freePort(), postgres: await freePort() },
  headless: true,
});
const workers: ChildProcess[] = [];
const cleanup = async () => {
  for (const w of workers) await stopWorker(w).catch(() => undefined);
  await standin.close().catch(() => undefined);
  await server.close().catch(() => undefined);
  await stack.stop().catch(() => undefined);
  fs.rmSync(work, { recursive: true, force: true });
};
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanup().then(() => process.exit(130)));
try {
  log(
    `bench:llm on ${os.cpus().length} cores; ${N} captions; stand-in latency ${LATENCY_MS} ms; endpoint concurrency ${CONCURRENCY}; ` +
      `caption shards of ${SHARD}, window ${WINDOW}; llm worker slots ${LLM_SLOTS ?? 'default (16)'}; ceiling ${CEILING.toFixed(0)} requests/s`,
  );
  const avgBytes = await serveImages(server, N);
  log(`images: ${N} distinct ${W}x${H} JPEGs (${BASES} base pictures), ${(avgBytes / 1024).toFixed(1)} KiB on average`);
  const list = path.join(work, 'list.jsonl');
  fs.writeFileSync(list, `${Array.from({ length: N }, (_, i) => JSON.stringify({ url: server.url(`/c/${i}.jpg`), text: `ภาพทิวทัศน์หมายเลข ${i}`, lang: 'th' })).join('\n')}\n`);

  Object.assign(process.env, { TEMPORAL_ADDRESS: stack.temporalAddress, DATABASE_URL: stack.databaseUrl, MELLA_STATE_DIR: work });
  const env: NodeJS.ProcessEnv = { ...process.env, MELLA_BLOB_DIR: path.join(work, 'blobs'), MELLA_LOG_LEVEL: 'WARN' };
  const llmEnv: NodeJS.ProcessEnv = { ...env, OPENAI_BASE_URL: standin.baseUrl, OPENAI_API_KEY: 'bench-key', ...(LLM_SLOTS ? { MELLA_LLM_SLOTS: LLM_SLOTS } : {}), ...(DB_POOL ? { MELLA_DB_POOL: DB_POOL } : {}) };
  const [cpuWorker, llmWorker] = await Promise.all([startWorker('cpu', env), startWorker('llm', llmEnv)]);
  workers.push(cpuWorker, llmWorker);

  const config = parseConfig({
    name: 'bench-llm',
    languages: ['th'],
    stages: ['ingest', 'filter', 'caption'],
    inputs: [{ path: list }],
    ingest: {
      shardSize: 250, window: 4, concurrency: 32, allowPrivateNetworks: ['127.0.0.1/32'],
      fetch: { perHostConcurrency: 32, perHostMinIntervalMs: 0, retries: 0 },
    },
    // Only the caption stage is measured: the filter keeps every decodable image (and makes its training copy).
    filter: { image: { operators: ['decodable'] }, text: { operators: ['normalize'] } },
    llm: { endpoints: { default: { concurrency: CONCURRENCY, requestsPerMinute: 1_000_000, tokensPerMinute: 1_000_000_000 } } },
    caption: { shardSize: SHARD, window: WINDOW },
  });
  const c = await connectClient();
  const runId = `bench-llm-${Date.now()}`;
  const started = performance.now();
  // CPU of each process over the run (ingest and filter included), and over the caption stage alone.
  const cpuAt = () => ({ llm: cpuSeconds(llmWorker.pid!), cpu: cpuSeconds(cpuWorker.pid!), bench: process.cpuUsage(), machine: machineJiffies() });
  let captionCpu: ReturnType<typeof cpuAt> | undefined;
  const poll = setInterval(() => {
    if (!captionCpu && standin.stats().requests > 0) captionCpu = cpuAt();
  }, 20);
  await startRun(c, config, { runId, kind: 'manual' });
  const summary = await waitRun(c, runId);
  clearInterval(poll);
  const cpuEnd = cpuAt();
  const total = (performance.now() - started) / 1000;
  await c.close();
  if (summary.status !== 'completed') throw new Error(`run ${summary.status}: ${summary.error ?? ''}`);
  const caption = summary.languages.th!.caption!;
  if (caption.in !== N || caption.kept !== N) throw new Error(`caption stage: ${JSON.stringify(caption)} (expected ${N} in, ${N} kept)`);

  const stats = standin.stats();
  const chat = stats.log.filter((r) => r.route === 'chat');
  if (chat.length !== N || stats.byRoute.chat !== N || stats.byOutcome.ok !== N) {
    throw new Error(`the stand-in served ${stats.byRoute.chat} chat requests (${JSON.stringify(stats.byOutcome)}), expected exactly ${N} answered once`);
  }
  const first = Math.min(...chat.map((r) => r.startedAt));
  const last = Math.max(...chat.map((r) => r.endedAt));
  const seconds = (last - first) / 1000;
  const achieved = N / seconds;
  const ratio = achieved / CEILING;
  // Requests in flight at the stand-in, sampled every 100 ms of the caption stage.
  const samples: number[] = [];
  for (let t = first; t < last; t += 100) samples.push(chat.filter((r) => r.startedAt <= t && r.endedAt > t).length);
  const meanInFlight = samples.reduce((a, b) => a + b, 0) / samples.length;
  // the same, per tenth of the stage: a dip at the start or the end, or all along
  const tenths = Array.from({ length: 10 }, (_, k) => {
    const part = samples.slice(Math.floor((k * samples.length) / 10), Math.floor(((k + 1) * samples.length) / 10));
    return part.length ? part.reduce((a, b) => a + b, 0) / part.length : 0;
  });
  const fullShare = samples.filter((n) => n >= CONCURRENCY).length / samples.length;
  const meanServe = chat.reduce((a, r) => a + (r.endedAt - r.startedAt), 0) / N;

  const db = new pg.Client({ connectionString: stack.databaseUrl });
  await db.connect();
  const { rows } = await db.query<{ shards: number; attempts: number; mean_ms: number }>(
    `select count(*)::int as shards, max(attempt)::int as attempts, avg(duration_ms)::float as mean_ms from shards where run_id = $1 and stage = 'caption'`,
    [runId],
  );
  await db.end();

  log(`run: ${total.toFixed(1)} s in all (ingest, filter, caption); caption ${caption.in} in, ${caption.kept} kept`);
  log(`caption stage at the stand-in: ${N} requests from the first arrival to the last answer in ${seconds.toFixed(2)} s = ${achieved.toFixed(1)} requests/s (ceiling ${CEILING.toFixed(0)})`);
  log(
    `  in flight at the stand-in: max ${stats.maxInFlight} (limit ${CONCURRENCY}), mean ${meanInFlight.toFixed(1)}, at the limit ${(100 * fullShare).toFixed(0)}% of the time; ` +
      `mean time at the stand-in ${meanServe.toFixed(0)} ms a request (latency ${LATENCY_MS})`,
  );
  log(`  mean in flight per tenth of the stage: ${tenths.map((x) => x.toFixed(1)).join(' ')}`);
  log(`  shards: ${rows[0]!.shards} of ${SHARD} (max attempt ${rows[0]!.attempts}), ${(rows[0]!.mean_ms / 1000).toFixed(2)} s each on average`);
  if (captionCpu) {
    const bench = (cpuEnd.bench.user + cpuEnd.bench.system - captionCpu.bench.user - captionCpu.bench.system) / 1e6;
    log(`  CPU seconds during the caption stage: llm worker ${(cpuEnd.llm - captionCpu.llm).toFixed(1)}, cpu worker (workflows) ${(cpuEnd.cpu - captionCpu.cpu).toFixed(1)}, bench process (stand-in) ${bench.toFixed(1)}`);
    const busy = cpuEnd.machine.busy - captionCpu.machine.busy;
    const all = cpuEnd.machine.total - captionCpu.machine.total;
    if (all > 0) log(`  machine CPU busy during the caption stage: ${((100 * busy) / all).toFixed(0)}% of ${os.cpus().length} cores (${(busy / TICKS).toFixed(1)} CPU seconds; the rest of it: PostgreSQL, Temporal, the OS)`);
  }
  console.log(`RESULT llm ratio=${ratio.toFixed(3)} goal=>=0.9`);
} finally {
  await cleanup();
}
