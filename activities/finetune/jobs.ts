/**
 * The job's bookkeeping in PostgreSQL (`finetune_jobs`, `finetune_attempts`; infra/migrations/005).
 * `registerFinetuneJob` and `finishFinetuneJob` are mella-cpu activities; the rest is called by the
 * training activity on the gpu worker.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { db } from '../shared/db';
import { FinetuneConfigError, parseFinetuneConfig } from './config';
import type { FinetuneInput, FinetuneStatus, TrainerProgress } from './types';

export const FINETUNE_WORKFLOW_PREFIX = 'mella-finetune-';
export const JOB_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/** Activity (mella-cpu): records the job (or marks a restarted one pending again). */
export async function registerFinetuneJob(args: FinetuneInput & { workflowId: string }): Promise<void> {
  if (!JOB_ID_PATTERN.test(args.jobId)) {
    throw ApplicationFailure.nonRetryable(`job id "${args.jobId}": letters, digits, '.', '_' and '-' only`, 'FinetuneConfigInvalid');
  }
  let config;
  try {
    config = parseFinetuneConfig(args.config);
  } catch (err) {
    if (err instanceof FinetuneConfigError) throw ApplicationFailure.nonRetryable(err.message, 'FinetuneConfigInvalid');
    throw err;
  }
  await db().query(
    `insert into finetune_jobs (job_id, workflow_id, dataset_dir, dataset_name, export_id, base_model, method, backend, hyperparameters, config, status)
     values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending')
     on conflict (job_id) do update set workflow_id = excluded.workflow_id, status = 'pending', error = null,
       finished_at = null, updated_at = now()`,
    [
      args.jobId, args.workflowId, args.datasetDir, args.datasetName, args.exportId ?? null, config.model, config.method, config.backend,
      JSON.stringify(config.hyperparameters), JSON.stringify(config),
    ],
  );
}

/** Activity (mella-cpu): the job's outcome, recorded by the workflow (also after a failure or a cancellation). */
export async function finishFinetuneJob(args: { jobId: string; status: Exclude<FinetuneStatus, 'pending' | 'running'>; modelId?: string; error?: string }): Promise<void> {
  await db().query(
    `update finetune_jobs set status = $2, model_id = coalesce($3, model_id), error = $4, finished_at = now(), updated_at = now(),
       trainer_pid = null, trainer_host = null
     where job_id = $1`,
    [args.jobId, args.status, args.modelId ?? null, args.error?.slice(0, 4000) ?? null],
  );
}

export interface JobRow {
  job_id: string;
  workflow_id: string;
  dataset_dir: string;
  dataset_name: string;
  export_id: string | null;
  base_model: string;
  method: string;
  backend: string;
  status: FinetuneStatus;
  output_dir: string | null;
  current_step: number | null;
  total_steps: number | null;
  last_loss: number | null;
  last_lr: number | null;
  latest_checkpoint: string | null;
  latest_checkpoint_step: number | null;
  attempts: number;
  trainer_host: string | null;
  trainer_pid: number | null;
  model_id: string | null;
  error: string | null;
  created_at: Date;
  started_at: Date | null;
  updated_at: Date;
  finished_at: Date | null;
}

export async function jobRow(jobId: string): Promise<JobRow | undefined> {
  const { rows } = await db().query<JobRow>('select * from finetune_jobs where job_id = $1', [jobId]);
  return rows[0];
}

/**
 * A new attempt of the training activity: the job's attempt counter (over every workflow run of this
 * job id) goes up by one, and the attempt is recorded with its command. Returns the attempt number.
 */
export async function beginAttempt(a: { jobId: string; host: string; workerPid: number; command: string[]; outputDir: string }): Promise<number> {
  const { rows } = await db().query<{ attempts: number }>(
    `update finetune_jobs set attempts = attempts + 1, status = 'running', output_dir = $2, error = null,
       started_at = coalesce(started_at, now()), updated_at = now()
     where job_id = $1 returning attempts`,
    [a.jobId, a.outputDir],
  );
  if (!rows[0]) throw ApplicationFailure.nonRetryable(`fine-tune job ${a.jobId} is not registered`, 'FinetuneConfigInvalid');
  const attempt = rows[0].attempts;
  // An attempt still marked running belonged to a worker that died: it never reported back.
  await db().query(`update finetune_attempts set outcome = 'lost', ended_at = now() where job_id = $1 and outcome = 'running'`, [a.jobId]);
  await db().query(
    `insert into finetune_attempts (job_id, attempt, host, worker_pid, command, outcome) values ($1, $2, $3, $4, $5, 'running')
     on conflict (job_id, attempt) do update set host = excluded.host, worker_pid = excluded.worker_pid, command = excluded.command,
       outcome = 'running', started_at = now(), ended_at = null`,
    [a.jobId, attempt, a.host, a.workerPid, JSON.stringify(a.command)],
  );
  return attempt;
}

/** The live trainer's pid (= its process group id) and host: a later attempt on this host can reap it. */
export async function recordTrainerPid(jobId: string, attempt: number, host: string, pid: number | null): Promise<void> {
  await db().query('update finetune_jobs set trainer_pid = $2, trainer_host = $3, updated_at = now() where job_id = $1', [jobId, pid, pid === null ? null : host]);
  await db().query('update finetune_attempts set trainer_pid = coalesce($3, trainer_pid) where job_id = $1 and attempt = $2', [jobId, attempt, pid]);
}

export async function recordResume(jobId: string, attempt: number, checkpoint: string, step: number): Promise<void> {
  await db().query('update finetune_attempts set resume_checkpoint = $3, resume_step = $4 where job_id = $1 and attempt = $2', [jobId, attempt, checkpoint, step]);
}

/** `firstStep`: the first progress step this attempt's trainer reported (exact, whatever the throttling). */
export async function writeProgress(jobId: string, attempt: number, p: TrainerProgress, firstStep: number | null): Promise<void> {
  await db().query(
    `update finetune_jobs set current_step = $2, total_steps = $3, last_loss = $4, last_lr = $5,
       latest_checkpoint = coalesce($6, latest_checkpoint), latest_checkpoint_step = coalesce($7, latest_checkpoint_step), updated_at = now()
     where job_id = $1`,
    [jobId, p.step, p.totalSteps, p.loss, p.lr, p.checkpoint, p.checkpointStep],
  );
  if (firstStep !== null) {
    await db().query(
      'update finetune_attempts set first_step = coalesce(first_step, $3), last_step = $4 where job_id = $1 and attempt = $2',
      [jobId, attempt, firstStep, p.step],
    );
  }
}

export async function endAttempt(a: { jobId: string; attempt: number; outcome: string; exitCode: number | null; signal: string | null; error?: string }): Promise<void> {
  await db().query(
    `update finetune_attempts set outcome = $3, exit_code = $4, signal = $5, error = $6, ended_at = now() where job_id = $1 and attempt = $2`,
    [a.jobId, a.attempt, a.outcome, a.exitCode, a.signal, a.error?.slice(0, 4000) ?? null],
  );
  await db().query('update finetune_jobs set trainer_pid = null, trainer_host = null, updated_at = now() where job_id = $1', [a.jobId]);
}

/**
 * Progress into `finetune_jobs`, at most every `intervalMs` (the latest value wins; a checkpoint or
 * the start is written at once). Writes run one after another; `flush()` waits for the last one.
 */
export class ProgressWriter {
  private latest: TrainerProgress | undefined;
  private lastWrite = 0;
  private timer: NodeJS.Timeout | undefined;
  private chain: Promise<void> = Promise.resolve();
  /** Set by the activity at the first progress event of this attempt. */
  firstStep: number | null = null;

  constructor(
    private readonly jobId: string,
    private readonly attempt: number,
    private readonly intervalMs = 2000,
    private readonly onError: (err: Error) => void = () => undefined,
  ) {}

  update(p: TrainerProgress, urgent = false): void {
    this.latest = { ...p };
    const due = this.lastWrite + this.intervalMs - Date.now();
    if (urgent || due <= 0) {
      this.write();
    } else {
      this.timer ??= setTimeout(() => this.write(), due);
    }
  }

  private write(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const p = this.latest;
    if (!p) return;
    this.latest = undefined;
    this.lastWrite = Date.now();
    const first = this.firstStep;
    this.chain = this.chain.then(() => writeProgress(this.jobId, this.attempt, p, first)).catch((err: Error) => this.onError(err));
  }

  async flush(): Promise<void> {
    this.write();
    await this.chain;
  }
}
