/**
 * The demo's second half: fine-tune the project's tiny model on the dataset version the data run just
 * exported (mellaFinetune on the mella-gpu queue, real CPU training), serve the base and the fine-tuned
 * model through the trainer's OpenAI-compatible server, and evaluate both on the version's test split
 * (mellaEvaluate: predictions on mella-llm, metrics and report on mella-cpu).
 *
 * The tiny model is randomly initialised (no weights can be downloaded here): its scores show the
 * machinery working, not a useful model. With real weights (`finetune.model`) the same path is real.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../infra/paths';
import type { DatasetVersionSummary } from '../workflows/types';
import type { CliClient } from './client';
import { startEvaluation, waitEvaluation } from './evaluate';
import { startFinetune, waitFinetune } from './finetune';
import { parseFinetuneConfig } from '../activities/finetune/config';
import { parseEvaluateConfig } from '../activities/evaluate/config';

const PYTHON = path.join(PROJECT_ROOT, '.venv-trainer', 'bin', 'python');

/** Starts trainer/mella_serve.py for the given models; resolves with its base URL once it is ready. */
async function serveModels(models: Record<string, string>, log: (m: string) => void): Promise<{ baseUrl: string; child: ChildProcess }> {
  const args = [path.join(PROJECT_ROOT, 'trainer', 'mella_serve.py'), '--port', '0', '--no-log', '--stop-on-stdin-eof'];
  for (const [name, dir] of Object.entries(models)) args.push('--model', `${name}=${dir}`);
  const child = spawn(PYTHON, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err = (err + d).slice(-4000)));
  const baseUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /MELLA_SERVE_READY (\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (code) => reject(new Error(`the model server exited (${code}) before it was ready: ${err.trim().split('\n').slice(-3).join(' | ')}`)));
  });
  log(`serving ${Object.keys(models).join(' and ')} at ${baseUrl} (trainer/mella_serve.py)`);
  return { baseUrl, child };
}

export async function runLifecycle(c: CliClient, dataset: DatasetVersionSummary, log: (m: string) => void): Promise<boolean> {
  if (!fs.existsSync(PYTHON)) {
    log('fine-tune and evaluate skipped: the trainer is not installed (node scripts/ensure-trainer.mjs installs it from PyPI)');
    return true;
  }
  const jobId = `ft-${dataset.versionId.replace(/^v-/, '')}`;
  log('');
  log(`fine-tuning the tiny randomly initialised Qwen2-VL on ${dataset.versionId} (LoRA, CPU, 60 steps): job ${jobId}`);
  await startFinetune(c, {
    jobId,
    datasetDir: dataset.dir,
    datasetName: `${dataset.name}_train`,
    exportId: dataset.versionId,
    config: parseFinetuneConfig({
      hyperparameters: { maxSteps: 60, learningRate: 2e-3, saveSteps: 20, loggingSteps: 10, additionalTarget: ['lm_head'], imageMaxPixels: 64 * 64 },
    }),
  });
  const ft = await waitFinetune(c, jobId);
  if (ft.status !== 'completed' || !ft.result) {
    log(`fine-tune ${ft.status}: ${ft.error ?? ''}`);
    return false;
  }
  log(`fine-tuned: ${ft.result.totalSteps} steps, final loss ${ft.result.finalLoss?.toFixed(3) ?? '-'}; model ${ft.result.modelId} in ${ft.result.finalDir}`);

  const server = await serveModels({ base: path.join(ft.result.outputDir, 'base-model'), tuned: ft.result.finalDir }, log);
  try {
    const evalId = `eval-${dataset.versionId.replace(/^v-/, '')}`;
    log(`evaluating base (baseline) and tuned (fine-tuned) on the test split of ${dataset.versionId}: evaluation ${evalId}`);
    await startEvaluation(c, evalId, parseEvaluateConfig({
      version: dataset.versionId,
      split: 'test',
      llm: { endpoints: { trained: { baseUrl: server.baseUrl, concurrency: 2 } } },
      models: [
        { name: 'base', role: 'baseline', endpoint: 'trained', model: 'base', maxTokens: 48 },
        { name: 'tuned', role: 'finetuned', endpoint: 'trained', model: 'tuned', maxTokens: 48 },
      ],
    }));
    const ev = await waitEvaluation(c, evalId);
    if (ev.status !== 'completed' || !ev.result) {
      log(`evaluation ${ev.status}: ${ev.error ?? ''}`);
      return false;
    }
    log(`evaluation report: ${ev.result.report.html}  (and ${path.basename(ev.result.report.markdown)}, ${path.basename(ev.result.report.json)})`);
    return true;
  } finally {
    server.child.kill('SIGTERM');
  }
}
