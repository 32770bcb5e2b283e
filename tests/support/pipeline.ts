import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { parseConfig, type RunConfig } from '../../activities/shared/config';
import { tsEntryArgs } from '../../infra/node-process';
import { PROJECT_ROOT } from '../../infra/paths';
import { connectClient, type CliClient } from '../../cli/client';
import { startRun, waitRun } from '../../cli/runs';
import type { RunSummary } from '../../workflows/types';

export const tmpDir = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), `mella-${prefix}-`));

export function writeList(dir: string, name: string, rows: (Record<string, unknown> | string)[]): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n') + '\n');
  return file;
}

export function testConfig(overrides: Record<string, unknown> & { inputs: unknown[] }): RunConfig {
  const { ingest, ...rest } = overrides as { ingest?: Record<string, unknown> };
  return parseConfig({
    name: 'test',
    languages: ['th'],
    // The spine and ingest tests run ingest alone; filter tests list their stages.
    stages: ['ingest'],
    ...rest,
    ingest: {
      allowPrivateNetworks: ['127.0.0.1/32'],
      heartbeatTimeoutSeconds: 5,
      ...ingest,
      fetch: { connectTimeoutMs: 2000, readTimeoutMs: 2000, totalTimeoutMs: 4000, retries: 1, backoffBaseMs: 50, backoffMaxMs: 1500, ...(ingest?.fetch as object) },
    },
  });
}

let runCounter = 0;
export const uniqueRunId = (label: string) => `${label}-${process.pid}-${Date.now().toString(36)}-${runCounter++}`;

export function dbClient(): pg.Pool {
  return new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 3 });
}

/** A worker in its own process (so a test can SIGKILL it), polling the given queues. */
export function spawnWorker(queues = ['cpu'], env: Record<string, string> = {}): ChildProcess & { output: () => string } {
  const child = spawn(process.execPath, tsEntryArgs('workers/all.ts', queues), {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return Object.assign(child, { output: () => out });
}

/** Waits until the worker process says it polls. */
export async function workerReady(w: ReturnType<typeof spawnWorker>, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  while (!w.output().includes('[worker] polling')) {
    if (w.exitCode !== null) throw new Error(`worker exited: ${w.output()}`);
    if (Date.now() > deadline) throw new Error(`worker not ready: ${w.output()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

export async function stopProcess(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', timeoutMs = 30_000) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  await exited;
  clearTimeout(timer);
}

export async function withCliClient<T>(fn: (c: CliClient) => Promise<T>): Promise<T> {
  const c = await connectClient();
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

export async function waitFor(pred: () => Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Starts a manual run of `config` (run id from `label`), waits for it, and fails unless it completed. */
export async function runToCompletion(config: RunConfig, label: string): Promise<RunSummary> {
  const runId = uniqueRunId(label);
  return withCliClient(async (c) => {
    await startRun(c, config, { runId, kind: 'manual' });
    const summary = await waitRun(c, runId);
    if (summary.status !== 'completed') throw new Error(`run ${runId} ended ${summary.status}`);
    return summary;
  });
}
