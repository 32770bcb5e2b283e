/**
 * `mella finetune start | status | cancel`: the fine-tune workflow from the command line. Status
 * combines what the workflow knows (its `progress` query) with what the training activity records in
 * PostgreSQL (`finetune_jobs`: the live step, loss and checkpoint; a workflow cannot read heartbeats).
 */
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import type { Command } from 'commander';
import path from 'node:path';
import pg from 'pg';
import { loadFinetuneConfigFile, parseFinetuneConfig, type FinetuneConfig } from '../activities/finetune/config';
import { JOB_ID_PATTERN, type JobRow } from '../activities/finetune/jobs';
import type { FinetuneInput, FinetuneProgress, FinetuneResult } from '../activities/finetune/types';
import { ConfigError } from '../activities/shared/config';
import { resolveConnections, workflowUiLink } from '../infra/connections';
import { finetuneProgressQuery, finetuneWorkflowId, mellaFinetune } from '../workflows/finetune';
import { RUN_KIND, RUN_NAME, STAGE } from '../workflows/search-attributes';
import { bar } from './progress-format';
import { connectClient, type CliClient } from './client';

export function defaultJobId(datasetName: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  const base = datasetName.split(',')[0]!.replace(/[^A-Za-z0-9_.-]/g, '-').slice(0, 60) || 'dataset';
  return `ft-${base}-${stamp}`.toLowerCase();
}

/** A config file's relative paths (a local model dir, the output root) are relative to the file. */
export function finetuneConfigFromFile(file: string | undefined): FinetuneConfig {
  if (!file) return parseFinetuneConfig({});
  const config = loadFinetuneConfigFile(file);
  const base = path.dirname(path.resolve(file));
  if (config.model.startsWith('.')) config.model = path.resolve(base, config.model);
  if (config.outputRoot) config.outputRoot = path.resolve(base, config.outputRoot);
  return config;
}

export async function startFinetune(c: CliClient, input: FinetuneInput) {
  if (!JOB_ID_PATTERN.test(input.jobId)) throw new ConfigError(`job id "${input.jobId}": letters, digits, '.', '_' and '-' only (at most 100)`);
  const config = parseFinetuneConfig(input.config);
  const workflowId = finetuneWorkflowId(input.jobId);
  try {
    const handle = await c.client.workflow.start(mellaFinetune, {
      taskQueue: 'mella-cpu',
      workflowId,
      args: [{ ...input, datasetDir: path.resolve(input.datasetDir), config }],
      // A failed or cancelled job may be started again under its id (it resumes from its checkpoints);
      // a completed one may not.
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
      typedSearchAttributes: [
        { key: RUN_NAME, value: input.jobId },
        { key: RUN_KIND, value: 'finetune' },
        { key: STAGE, value: 'finetune' },
      ],
      memo: {
        datasetDir: path.resolve(input.datasetDir),
        datasetName: input.datasetName,
        exportId: input.exportId ?? null,
        backend: config.backend,
        model: config.model,
        method: config.method,
      },
    });
    return { handle, workflowId, uiUrl: workflowUiLink(c.connections, workflowId) };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new Error(`fine-tune job ${input.jobId} is running or has completed; pick another --job-id`);
    }
    throw err;
  }
}

export interface FinetuneOutcome {
  jobId: string;
  status: 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed_out';
  result?: FinetuneResult;
  error?: string;
}

/** Waits for the job; a failed or cancelled one yields its status and error instead of throwing. */
export async function waitFinetune(c: CliClient, jobId: string): Promise<FinetuneOutcome> {
  const handle = c.client.workflow.getHandle(finetuneWorkflowId(jobId));
  try {
    return { jobId, status: 'completed', result: (await handle.result()) as FinetuneResult };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const desc = await handle.describe();
    const name = desc.status.name.toLowerCase();
    const status: FinetuneOutcome['status'] = (['cancelled', 'terminated', 'timed_out'] as const).find((s) => s === name) ?? 'failed';
    const job = await jobRecord(jobId).catch(() => undefined);
    return { jobId, status, error: job?.job?.error ?? innermost(err) };
  }
}

function innermost(err: unknown): string {
  let e = err as { message?: string; cause?: unknown };
  while (e.cause && typeof e.cause === 'object') e = e.cause as typeof e;
  return e.message ?? String(err);
}

export interface AttemptRow {
  attempt: number;
  host: string;
  worker_pid: number;
  trainer_pid: number | null;
  command: string[];
  resume_checkpoint: string | null;
  resume_step: number | null;
  first_step: number | null;
  last_step: number | null;
  outcome: string | null;
  exit_code: number | null;
  signal: string | null;
  error: string | null;
}

export interface ModelRow {
  model_id: string;
  final_dir: string;
  final_loss: number | null;
  total_steps: number | null;
  files: { path: string; bytes: number; blobKey?: string }[];
  metrics: Record<string, unknown>;
  loss_curve: { step: number[]; loss: number[]; lr: number[] };
}

/** The job as recorded in PostgreSQL: its row, its attempts and its model. */
export async function jobRecord(jobId: string): Promise<{ job?: JobRow; attempts: AttemptRow[]; model?: ModelRow }> {
  const client = new pg.Client({ connectionString: resolveConnections().databaseUrl });
  await client.connect();
  try {
    const job = (await client.query<JobRow>('select * from finetune_jobs where job_id = $1', [jobId])).rows[0];
    const attempts = (await client.query<AttemptRow>('select * from finetune_attempts where job_id = $1 order by attempt', [jobId])).rows;
    const model = (await client.query<ModelRow>('select * from models where job_id = $1 order by created_at desc limit 1', [jobId])).rows[0];
    return { job, attempts, model };
  } finally {
    await client.end();
  }
}

export interface FinetuneStatusReport {
  jobId: string;
  workflowId: string;
  status: string;
  uiUrl?: string;
  progress?: FinetuneProgress;
  job?: JobRow;
  attempts: AttemptRow[];
  model?: Omit<ModelRow, 'loss_curve' | 'files'> & { files: number };
}

export async function finetuneStatus(c: CliClient, jobId: string): Promise<FinetuneStatusReport> {
  const workflowId = finetuneWorkflowId(jobId);
  const handle = c.client.workflow.getHandle(workflowId);
  let desc;
  try {
    desc = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new Error(`no fine-tune job ${jobId} (workflow ${workflowId} not found)`);
    throw err;
  }
  const report: FinetuneStatusReport = { jobId, workflowId, status: desc.status.name.toLowerCase(), uiUrl: workflowUiLink(c.connections, workflowId), attempts: [] };
  if (desc.status.name === 'RUNNING') report.progress = await handle.query(finetuneProgressQuery).catch(() => undefined);
  const rec = await jobRecord(jobId);
  report.job = rec.job;
  report.attempts = rec.attempts;
  if (rec.model) {
    const { loss_curve: _curve, files, ...rest } = rec.model;
    report.model = { ...rest, files: files.length };
  }
  return report;
}

export async function cancelFinetune(c: CliClient, jobId: string): Promise<void> {
  await c.client.workflow.getHandle(finetuneWorkflowId(jobId)).cancel();
}

const fmt = (n: number | null | undefined, digits = 4) => (n === null || n === undefined ? '-' : Number(n.toPrecision(digits)).toString());

export function formatFinetuneStatus(r: FinetuneStatusReport, tty: boolean): string {
  const j = r.job;
  const lines = [`fine-tune ${r.jobId}: ${r.status}${r.progress ? ` (${r.progress.phase})` : ''}${j ? `, job ${j.status}, attempt ${j.attempts}` : ''}`];
  if (r.uiUrl) lines.push(r.uiUrl);
  if (j) {
    lines.push(`  data     ${j.dataset_dir} [${j.dataset_name}]${j.export_id ? ` version ${j.export_id}` : ''}`);
    lines.push(`  model    ${j.backend} ${j.method} on ${j.base_model}`);
    const step = j.current_step ?? 0;
    const total = j.total_steps ?? 0;
    const head = `  progress step ${step}/${total || '?'}`;
    lines.push(`${tty && total ? `${head} ${bar(step, total)}` : head}  loss ${fmt(j.last_loss)}  lr ${fmt(j.last_lr, 3)}`);
    if (j.latest_checkpoint) lines.push(`  checkpoint step ${j.latest_checkpoint_step} ${j.latest_checkpoint}`);
    if (j.error) lines.push(`  error    ${j.error}`);
  }
  for (const a of r.attempts) {
    const resumed = a.resume_step !== null ? ` resumed from step ${a.resume_step}` : '';
    lines.push(`  attempt ${a.attempt} on ${a.host}: ${a.outcome ?? '?'}${resumed}, steps ${a.first_step ?? '-'}..${a.last_step ?? '-'}${a.exit_code !== null ? `, exit ${a.exit_code}` : ''}`);
  }
  if (r.model) lines.push(`  result   ${r.model.model_id}: ${r.model.total_steps} steps, final loss ${fmt(r.model.final_loss)}, ${r.model.files} files in ${r.model.final_dir}`);
  return lines.join('\n');
}

function formatOutcome(o: FinetuneOutcome): string {
  if (o.result) {
    const r = o.result;
    return `fine-tune ${o.jobId}: completed\n  model ${r.modelId}: ${r.totalSteps} steps, final loss ${fmt(r.finalLoss)}, ${r.files} files in ${r.finalDir}` +
      (r.resumedFromSteps.length ? `\n  resumed from step ${r.resumedFromSteps.join(', ')}` : '');
  }
  return `fine-tune ${o.jobId}: ${o.status}${o.error ? ` (${o.error})` : ''}`;
}

async function withClient<T>(fn: (c: CliClient) => Promise<T>): Promise<T> {
  const c = await connectClient();
  try {
    return await fn(c);
  } finally {
    await c.close();
  }
}

const print = (json: boolean | undefined, data: unknown, text: string) => console.log(json ? JSON.stringify(data, null, 2) : text);

/** The `mella finetune` command group. */
export function addFinetuneCommands(program: Command): void {
  const ft = program
    .command('finetune')
    .description('fine-tune a model on an exported dataset (LLaMA-Factory export) on the mella-gpu queue; resumable from its checkpoints');
  ft.command('start')
    .description('start a fine-tune job (workflow mella-finetune-<job id>); a failed or cancelled job id may be started again and resumes')
    .requiredOption('--dataset-dir <dir>', 'the export: dataset_info.json, data files, images (as the gpu worker sees the path)')
    .requiredOption('--dataset <names>', 'entry name(s) in dataset_info.json, comma-separated (e.g. mella_train)')
    .option('--config <file>', 'fine-tune config, YAML or JSON (backend, model, method, hyperparameters; see docs/finetune.md); default: the tiny model with LoRA')
    .option('--job-id <id>', 'job id (default: ft-<dataset>-<UTC timestamp>)')
    .option('--export-id <id>', 'the dataset version id, recorded with the job and its model')
    .option('--wait', 'wait for the job to finish (exit code 1 unless it completed)')
    .option('--json', 'machine-readable output')
    .action(async (o) => withClient(async (c) => {
      const config = finetuneConfigFromFile(o.config);
      const jobId: string = o.jobId ?? defaultJobId(o.dataset);
      const { workflowId, uiUrl } = await startFinetune(c, { jobId, datasetDir: o.datasetDir, datasetName: o.dataset, exportId: o.exportId, config });
      if (!o.wait) return print(o.json, { jobId, workflowId, uiUrl }, `fine-tune ${jobId} started (workflow ${workflowId})${uiUrl ? `\n${uiUrl}` : ''}`);
      if (!o.json) console.log(`fine-tune ${jobId} started${uiUrl ? `: ${uiUrl}` : ''}; waiting ...`);
      const outcome = await waitFinetune(c, jobId);
      print(o.json, { ...outcome, workflowId, uiUrl }, formatOutcome(outcome));
      if (outcome.status !== 'completed') process.exitCode = 1;
    }));
  ft.command('status <jobId>')
    .description('state of a fine-tune job: workflow status, live step/loss/checkpoint (from PostgreSQL), attempts, registered model')
    .option('--json', 'JSON output')
    .action(async (jobId: string, o) => withClient(async (c) => {
      const r = await finetuneStatus(c, jobId);
      print(o.json, r, formatFinetuneStatus(r, Boolean(process.stdout.isTTY)));
    }));
  ft.command('cancel <jobId>')
    .description('cancel a fine-tune job: the trainer checkpoints and its process group is stopped; "finetune start" with the same --job-id resumes it')
    .action(async (jobId: string) => withClient(async (c) => {
      await cancelFinetune(c, jobId);
      console.log(`cancellation requested for fine-tune ${jobId}`);
    }));
}
