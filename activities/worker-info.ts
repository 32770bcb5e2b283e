import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { resolveChromiumExecutable } from './crawl/chromium-process';

export interface WorkerInfo {
  queue: string;
  host: string;
  pid: number;
  node: string;
  /** What this worker can use for its queue's work (no secrets: endpoint URL yes, API key never). */
  capabilities: Record<string, string | boolean | null>;
}

function gpus(): Promise<string | null> {
  return new Promise((resolve) =>
    execFile('nvidia-smi', ['-L'], { timeout: 10_000 }, (err, out) => resolve(err ? null : out.trim().split('\n').join('; '))),
  );
}

/** The browser the crawl launches (activities/crawl/chromium-process.ts decides), or null when none is found. */
function crawlChromium(): string | null {
  try {
    const e = resolveChromiumExecutable();
    return fs.existsSync(e.path) ? `${e.path}${e.headlessShell ? ' (headless shell)' : ''}` : null;
  } catch {
    return null;
  }
}

/** Builds the `describeWorker` activity of one queue: `mella dev status` asks each queue who polls it. */
export function describeWorkerActivity(queue: string) {
  return async function describeWorker(): Promise<WorkerInfo> {
    const capabilities: WorkerInfo['capabilities'] = {};
    if (queue === 'mella-cpu') capabilities.cpus = String(os.cpus().length);
    if (queue === 'mella-browser') {
      capabilities.chromium = crawlChromium();
    }
    if (queue === 'mella-llm') {
      capabilities.endpoint = process.env.OPENAI_BASE_URL ?? null;
      capabilities.apiKeySet = Boolean(process.env.OPENAI_API_KEY);
    }
    if (queue === 'mella-gpu') {
      capabilities.gpus = await gpus();
      capabilities.visibleDevices = process.env.CUDA_VISIBLE_DEVICES ?? null;
    }
    return { queue, host: os.hostname(), pid: process.pid, node: process.version, capabilities };
  };
}
