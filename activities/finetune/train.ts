/**
 * Activity (mella-gpu): trains one job to its end. One attempt = one trainer process; Temporal retries
 * the activity when the worker dies (heartbeat timeout) or the trainer fails retryably, and every
 * attempt runs the trainer with `--resume auto` (or LLaMA-Factory's `resume_from_checkpoint`), so the
 * run continues from its latest complete checkpoint. Failure classes:
 *   - dataset invalid (mella exit 2)              → non-retryable `FinetuneDatasetInvalid`, the trainer's message
 *   - arguments/model/output invalid (exit 3)     → non-retryable `FinetuneConfigInvalid`
 *   - output dir locked (exit 4), crash (exit 1), stopped by a signal, stalled, trainer not installed → retryable
 *   - cancelled (the workflow was cancelled)      → the group is stopped (checkpoint kept), CancelledFailure
 */
import { ApplicationFailure, CancelledFailure, Context } from '@temporalio/activity';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { db } from '../shared/db';
import { FinetuneConfigError, parseFinetuneConfig, type FinetuneConfig } from './config';
import type { TrainerEvent } from './events';
import { parseMellaLine } from './events';
import { beginAttempt, endAttempt, ProgressWriter, recordResume, recordTrainerPid } from './jobs';
import { launchTrainer, type LaunchOutcome } from './launch';
import { hfCheckpoints, latestCompleteHfCheckpoint, prepareLlamaFactory, TRAINER_LOG, TrainerLogTail } from './llamafactory';
import { mellaTrainerCommand, mellaValidateCommand, type TrainerCommand } from './mella-command';
import { llamaFactoryArtifacts, mellaArtifacts, registerModel } from './register-model';
import { reapStaleTrainer } from './stale';
import type { FinetuneInput, FinetuneTrainResult, TrainerProgress } from './types';
import { outputDirFor, trainerEnv, trainerPython } from './worker-env';

export const modelIdFor = (jobId: string) => `model-${jobId}`;

/** Error types the workflow must not retry (also set non-retryable on the failure itself). */
export const NON_RETRYABLE_FINETUNE_ERRORS = ['FinetuneDatasetInvalid', 'FinetuneConfigInvalid'] as const;

export async function finetuneTrain(input: FinetuneInput): Promise<FinetuneTrainResult> {
  const ctx = Context.current();
  let config: FinetuneConfig;
  try {
    config = parseFinetuneConfig(input.config);
  } catch (err) {
    if (err instanceof FinetuneConfigError) throw ApplicationFailure.nonRetryable(err.message, 'FinetuneConfigInvalid');
    throw err;
  }
  const { jobId } = input;
  const outputDir = outputDirFor(jobId, config.outputRoot);
  const host = os.hostname();
  const log = (line: string) => process.stdout.write(`[finetune ${jobId}] ${line}\n`);

  // A retry after the model was registered (the worker died before Temporal heard of the result).
  const registered = await registeredResult(jobId, ctx.info.attempt);
  if (registered) return registered;

  await reapStaleTrainer({ jobId, host, outputDir, graceMs: config.killGraceSeconds * 1000, log });

  // The backend's command, and for LLaMA-Factory what the activity has to watch on disk.
  let command: TrainerCommand;
  let poll: (() => TrainerEvent[]) | undefined;
  let resumeFrom: { path: string; step: number } | null = null;
  if (config.backend === 'mella') {
    command = mellaTrainerCommand({ datasetDir: input.datasetDir, datasetName: input.datasetName, outputDir, config });
  } else {
    await validateWithMellaTrainer(input, log);
    fs.mkdirSync(outputDir, { recursive: true });
    resumeFrom = latestCompleteHfCheckpoint(outputDir);
    const prepared = await prepareLlamaFactory({ datasetDir: input.datasetDir, datasetName: input.datasetName, outputDir, config, resumeFrom: resumeFrom?.path ?? null });
    command = prepared.command;
    const tail = new TrainerLogTail(path.join(outputDir, TRAINER_LOG));
    tail.skipExisting();
    let seenCheckpoint = resumeFrom?.step ?? -1;
    poll = () => {
      const events = tail.read();
      const newest = hfCheckpoints(outputDir).find((c) => c.complete);
      if (newest && newest.step > seenCheckpoint) {
        seenCheckpoint = newest.step;
        events.push({ kind: 'checkpoint', path: newest.path, step: newest.step });
      }
      return events;
    };
  }

  const attempt = await beginAttempt({ jobId, host, workerPid: process.pid, command: [command.file, ...command.args], outputDir });
  const previous = ctx.info.heartbeatDetails as TrainerProgress | undefined;
  if (ctx.info.attempt > 1) {
    log(`attempt ${attempt} (activity attempt ${ctx.info.attempt}); the last heartbeat said step ${previous?.step ?? '?'}, checkpoint ${previous?.checkpoint ?? 'none'}`);
  }
  const progress: TrainerProgress = {
    attempt,
    step: previous?.step ?? null,
    totalSteps: previous?.totalSteps ?? null,
    loss: previous?.loss ?? null,
    lr: previous?.lr ?? null,
    epoch: previous?.epoch ?? null,
    checkpoint: resumeFrom?.path ?? previous?.checkpoint ?? null,
    checkpointStep: resumeFrom?.step ?? previous?.checkpointStep ?? null,
  };
  const writer = new ProgressWriter(jobId, attempt, 2000, (err) => log(`progress not recorded: ${err.message}`));
  let done: Extract<TrainerEvent, { kind: 'done' }> | undefined;
  let trainerError: Extract<TrainerEvent, { kind: 'error' }> | undefined;
  const resumedFrom: number[] = resumeFrom ? [resumeFrom.step] : [];
  const pending: Promise<unknown>[] = [];

  const onEvent = (e: TrainerEvent) => {
    switch (e.kind) {
      case 'start':
        progress.totalSteps = e.totalSteps;
        if (e.startStep > 0) progress.step = e.startStep;
        writer.update(progress, true);
        break;
      case 'resume':
        resumedFrom.push(e.step);
        progress.checkpoint = e.checkpoint;
        progress.checkpointStep = e.step;
        log(`resuming from ${e.checkpoint} (step ${e.step})`);
        pending.push(recordResume(jobId, attempt, e.checkpoint, e.step).catch((err: Error) => log(`resume not recorded: ${err.message}`)));
        break;
      case 'progress':
        writer.firstStep ??= e.step;
        progress.step = e.step;
        progress.totalSteps = e.totalSteps;
        progress.loss = e.loss ?? progress.loss;
        progress.lr = e.lr ?? progress.lr;
        progress.epoch = e.epoch ?? progress.epoch;
        writer.update(progress);
        break;
      case 'checkpoint':
        progress.checkpoint = e.path;
        progress.checkpointStep = e.step;
        writer.update(progress, true);
        break;
      case 'done':
        done = e;
        progress.step = e.totalSteps;
        progress.totalSteps = e.totalSteps;
        writer.update(progress, true);
        break;
      case 'error':
        trainerError = e;
        break;
      case 'stopped':
        log(`trainer stopped on ${e.signal}; last checkpoint ${e.lastCheckpoint ?? 'none'}`);
        break;
    }
    ctx.heartbeat({ ...progress });
  };

  log(`attempt ${attempt}: ${config.backend} trainer, output ${outputDir}`);
  const outcome = await launchTrainer({
    command,
    env: trainerEnv(),
    parseStdout: config.backend === 'mella' ? parseMellaLine : undefined,
    poll,
    pollMs: 1000,
    onEvent,
    onSpawn: (pid) => {
      log(`trainer pid ${pid} (its own process group)`);
      pending.push(recordTrainerPid(jobId, attempt, host, pid).catch((err: Error) => log(`pid not recorded: ${err.message}`)));
    },
    heartbeat: () => ctx.heartbeat({ ...progress }),
    heartbeatEveryMs: Math.max(500, Math.min(5000, (config.heartbeatTimeoutSeconds * 1000) / 3)),
    stallMs: config.stallTimeoutSeconds * 1000,
    killGraceMs: config.killGraceSeconds * 1000,
    signal: ctx.cancellationSignal,
    log: (stream, line) => (stream === 'stderr' ? process.stderr : process.stdout).write(`[trainer ${jobId} a${attempt}] ${line}\n`),
  });
  await Promise.all(pending);
  await writer.flush();

  const failure = classify(outcome, config, trainerError, done);
  if (failure) {
    await endAttempt({ jobId, attempt, outcome: failure.outcome, exitCode: outcome.exitCode, signal: outcome.signal, error: failure.message });
    log(`attempt ${attempt} ${failure.outcome}: ${failure.message}`);
    if (failure.outcome === 'cancelled') {
      if (ctx.cancellationDetails?.cancelRequested ?? true) throw new CancelledFailure(failure.message);
      // Worker shutdown, timeout, reset: not the user's cancellation; the next attempt resumes.
      throw ApplicationFailure.retryable(`training interrupted (${describeCancel(ctx)}); ${failure.message}`, 'TrainerInterrupted');
    }
    throw failure.nonRetryable
      ? ApplicationFailure.nonRetryable(failure.message, failure.type)
      : ApplicationFailure.retryable(failure.message, failure.type);
  }

  // Register the result.
  const artifacts = config.backend === 'mella' ? await mellaArtifacts(outputDir) : await llamaFactoryArtifacts(outputDir);
  const totalSteps = done?.totalSteps ?? progress.totalSteps ?? artifacts.lossCurve.step.at(-1) ?? 0;
  const metrics = artifacts.metrics as { final_loss?: number; train_loss?: number; train_runtime?: number; resumed_from?: number[] };
  const finalLoss = done?.finalLoss ?? metrics.final_loss ?? artifacts.lossCurve.loss.at(-1) ?? null;
  const modelId = modelIdFor(jobId);
  await registerModel({
    modelId, jobId, exportId: input.exportId ?? null, backend: config.backend, baseModel: config.model, method: config.method,
    outputDir, artifacts, finalLoss, totalSteps,
  });
  await endAttempt({ jobId, attempt, outcome: 'completed', exitCode: outcome.exitCode, signal: outcome.signal });
  const result: FinetuneTrainResult = {
    jobId,
    modelId,
    backend: config.backend,
    outputDir,
    finalDir: artifacts.finalDir,
    totalSteps,
    finalLoss,
    trainLoss: done?.trainLoss ?? metrics.train_loss ?? null,
    trainRuntimeSeconds: done?.trainRuntime ?? metrics.train_runtime ?? null,
    attempt,
    resumedFromSteps: Array.isArray(metrics.resumed_from) ? metrics.resumed_from : resumedFrom,
    alreadyComplete: done?.alreadyComplete ?? false,
    files: artifacts.files.length,
    bytes: artifacts.files.reduce((n, f) => n + f.bytes, 0),
  };
  log(`model ${modelId} registered: ${totalSteps} steps, final loss ${finalLoss}, ${result.files} files in ${result.finalDir}`);
  return result;
}

interface Failure {
  outcome: 'failed' | 'cancelled' | 'stalled';
  type: string;
  message: string;
  nonRetryable: boolean;
}

/** How a finished trainer process ended, for Temporal: undefined = success. */
export function classify(o: LaunchOutcome, config: FinetuneConfig, err: Extract<TrainerEvent, { kind: 'error' }> | undefined, done: unknown): Failure | undefined {
  const tail = o.stderrTail.slice(-8).join('\n');
  if (o.cancelled) return { outcome: 'cancelled', type: 'CancelledFailure', message: `fine-tune cancelled; the trainer was stopped${o.killed ? ' (SIGKILL after the grace period)' : ''}`, nonRetryable: false };
  if (o.stalled) {
    return { outcome: 'stalled', type: 'TrainerStalled', message: `the trainer wrote nothing for ${config.stallTimeoutSeconds} s and was stopped; the next attempt resumes from the last checkpoint`, nonRetryable: false };
  }
  if (o.spawnError) {
    const hint = config.backend === 'mella' ? `run "node scripts/ensure-trainer.mjs" on the gpu worker, or set MELLA_TRAINER_PYTHON` : 'install LLaMA-Factory on the gpu worker, or set MELLA_LLAMAFACTORY_CLI';
    return { outcome: 'failed', type: 'TrainerNotInstalled', message: `cannot start the trainer: ${o.spawnError.message}; ${hint}`, nonRetryable: false };
  }
  const message = err?.message || tail || `exit code ${o.exitCode ?? o.signal}`;
  if (o.exitCode === 0) {
    if (config.backend === 'mella' && !done) return { outcome: 'failed', type: 'TrainerFailed', message: 'the trainer exited 0 without MELLA_DONE', nonRetryable: false };
    return undefined;
  }
  if (config.backend === 'mella') {
    if (o.exitCode === 2) return { outcome: 'failed', type: 'FinetuneDatasetInvalid', message: `invalid dataset: ${message}`, nonRetryable: true };
    if (o.exitCode === 3) return { outcome: 'failed', type: 'FinetuneConfigInvalid', message: `invalid trainer configuration: ${message}`, nonRetryable: true };
    if (o.exitCode === 4) return { outcome: 'failed', type: 'TrainerLocked', message: `the output dir is locked by another trainer: ${message}`, nonRetryable: false };
  }
  if (o.exitCode === 143 || o.exitCode === 130 || o.signal) {
    return { outcome: 'failed', type: 'TrainerStopped', message: `the trainer was stopped by ${o.signal ?? `exit ${o.exitCode}`} from outside the activity`, nonRetryable: false };
  }
  return { outcome: 'failed', type: 'TrainerFailed', message: `trainer exit ${o.exitCode}: ${message}`, nonRetryable: false };
}

function describeCancel(ctx: Context): string {
  const d = ctx.cancellationDetails;
  if (!d) return 'cancelled';
  return d.workerShutdown ? 'worker shutdown' : d.timedOut ? 'timed out' : d.reset ? 'reset' : d.paused ? 'paused' : d.notFound ? 'not found' : 'cancelled';
}

/**
 * LLaMA-Factory cannot tell a bad dataset from a crash by its exit code. Where the project trainer is
 * installed, its torch-free `--validate-only` checks the export first (the same sharegpt rules), so a
 * bad dataset fails at once and is not retried.
 */
async function validateWithMellaTrainer(input: FinetuneInput, log: (l: string) => void): Promise<void> {
  if (!fs.existsSync(trainerPython())) {
    log('the project trainer is not installed here: the dataset is not pre-validated');
    return;
  }
  const cmd = mellaValidateCommand(input);
  const r = spawnSync(cmd.file, cmd.args, { env: trainerEnv(), encoding: 'utf8', timeout: 10 * 60_000 });
  if (r.status === 2 || r.status === 3) {
    const line = (r.stdout ?? '').split('\n').find((l) => l.startsWith('MELLA_ERROR '));
    const e = line ? parseMellaLine(line) : undefined;
    const message = e?.kind === 'error' ? e.message : (r.stderr ?? '').trim().split('\n').slice(-3).join(' ');
    throw ApplicationFailure.nonRetryable(`invalid dataset: ${message}`, r.status === 2 ? 'FinetuneDatasetInvalid' : 'FinetuneConfigInvalid');
  }
  if (r.status !== 0) log(`dataset pre-validation could not run (exit ${r.status}); LLaMA-Factory will check it`);
}

async function registeredResult(jobId: string, activityAttempt: number): Promise<FinetuneTrainResult | undefined> {
  const { rows } = await db().query<{
    model_id: string; backend: FinetuneConfig['backend']; output_dir: string; final_dir: string; total_steps: number; final_loss: number | null;
    metrics: { train_loss?: number; train_runtime?: number; resumed_from?: number[] }; files: { bytes: number }[]; attempts: number;
  }>(
    `select m.model_id, m.backend, m.output_dir, m.final_dir, m.total_steps, m.final_loss, m.metrics, m.files, j.attempts
       from models m join finetune_jobs j using (job_id) where m.job_id = $1`,
    [jobId],
  );
  const r = rows[0];
  if (!r || !fs.existsSync(r.final_dir) || activityAttempt === 1) return undefined;
  return {
    jobId, modelId: r.model_id, backend: r.backend, outputDir: r.output_dir, finalDir: r.final_dir, totalSteps: r.total_steps,
    finalLoss: r.final_loss, trainLoss: r.metrics.train_loss ?? null, trainRuntimeSeconds: r.metrics.train_runtime ?? null,
    attempt: r.attempts, resumedFromSteps: r.metrics.resumed_from ?? [], alreadyComplete: true,
    files: r.files.length, bytes: r.files.reduce((n, f) => n + f.bytes, 0),
  };
}
