// Types shared by the fine-tune workflow, its activities and the CLI. Type-only: nothing here does I/O.
import type { FinetuneConfig } from './config';

/** Input of the `mellaFinetune` workflow (workflow id `mella-finetune-<jobId>`). */
export interface FinetuneInput {
  jobId: string;
  /** The export dir (dataset_info.json + data files + images), as the gpu worker sees it. */
  datasetDir: string;
  /** Entry (or comma-separated entries) of its dataset_info.json, e.g. `mella_train`. */
  datasetName: string;
  /** Dataset version id from the merge stage, when the export is one. */
  exportId?: string;
  /** Validated config snapshot (no secrets, nothing machine-specific). */
  config: FinetuneConfig;
}

/** What the training activity returns: ids, figures and paths, never big data. */
export interface FinetuneTrainResult {
  jobId: string;
  modelId: string;
  backend: FinetuneConfig['backend'];
  outputDir: string;
  finalDir: string;
  totalSteps: number;
  finalLoss: number | null;
  trainLoss: number | null;
  trainRuntimeSeconds: number | null;
  /** The attempt that finished, and the checkpoint steps earlier attempts were resumed from. */
  attempt: number;
  resumedFromSteps: number[];
  /** The trainer found a finished run in the output dir (a retry after the model was written). */
  alreadyComplete: boolean;
  files: number;
  bytes: number;
}

export type FinetuneStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

/** The workflow's result (and its `progress` query's final state). */
export interface FinetuneResult extends FinetuneTrainResult {
  status: 'completed';
}

/**
 * The `progress` query: what the workflow itself knows. Live step/loss figures are heartbeat details,
 * which a workflow cannot read; the training activity writes them to `finetune_jobs` (throttled), and
 * `mella finetune status` shows both.
 */
export interface FinetuneProgress {
  jobId: string;
  phase: 'registering' | 'training' | 'done' | 'failed' | 'cancelled';
  startedAt?: string;
  result?: FinetuneTrainResult;
  error?: string;
}

/** A heartbeat's details: the trainer's progress as the activity last saw it. */
export interface TrainerProgress {
  attempt: number;
  step: number | null;
  totalSteps: number | null;
  loss: number | null;
  lr: number | null;
  epoch: number | null;
  checkpoint: string | null;
  checkpointStep: number | null;
}
