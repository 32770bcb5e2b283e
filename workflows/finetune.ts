import {
  ActivityCancellationType,
  CancellationScope,
  defineQuery,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type * as cpuActivities from '../activities/cpu';
import type * as gpuActivities from '../activities/finetune/gpu';
import type { FinetuneInput, FinetuneProgress, FinetuneResult } from '../activities/finetune/types';

export const finetuneProgressQuery = defineQuery<FinetuneProgress>('progress');

/** Failure types of the training activity that no retry can fix (activities/finetune/train.ts). */
const NON_RETRYABLE = ['FinetuneDatasetInvalid', 'FinetuneConfigInvalid'];

/**
 * Fine-tunes a model on an exported dataset version: register the job, train on the mella-gpu queue
 * (one long activity that heartbeats the trainer's progress and resumes from its latest complete
 * checkpoint when retried), record the outcome. Workflow id `mella-finetune-<jobId>`.
 */
export async function mellaFinetune(input: FinetuneInput): Promise<FinetuneResult> {
  const { jobId, config } = input;
  const progress: FinetuneProgress = { jobId, phase: 'registering' };
  setHandler(finetuneProgressQuery, () => progress);

  const cpu = proxyActivities<typeof cpuActivities>({
    taskQueue: 'mella-cpu',
    startToCloseTimeout: '5 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '1 minute', nonRetryableErrorTypes: NON_RETRYABLE },
  });
  const gpu = proxyActivities<typeof gpuActivities>({
    taskQueue: 'mella-gpu',
    startToCloseTimeout: `${config.maxHours} hours`,
    // A dead gpu worker is noticed after this long; the retry resumes from the last checkpoint.
    heartbeatTimeout: `${config.heartbeatTimeoutSeconds} seconds`,
    // Cancellation waits for the trainer's process group to be gone (and its checkpoint written).
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: `${config.retryInitialSeconds} seconds`,
      maximumInterval: '5 minutes',
      backoffCoefficient: 2,
      maximumAttempts: config.maxAttempts,
      nonRetryableErrorTypes: NON_RETRYABLE,
    },
  });

  try {
    await cpu.registerFinetuneJob({ ...input, workflowId: workflowInfo().workflowId });
    progress.phase = 'training';
    progress.startedAt = new Date().toISOString();
    const result = await gpu.finetuneTrain(input);
    progress.result = result;
    await cpu.finishFinetuneJob({ jobId, status: 'completed', modelId: result.modelId });
    upsertMemo({ modelId: result.modelId, finalLoss: result.finalLoss, totalSteps: result.totalSteps, finalDir: result.finalDir });
    progress.phase = 'done';
    return { ...result, status: 'completed' };
  } catch (err) {
    const status = isCancellation(err) ? 'cancelled' : 'failed';
    progress.phase = status;
    progress.error = rootMessage(err);
    // Recorded even when cancelled: the recording itself must not be cancelled.
    await CancellationScope.nonCancellable(() => cpu.finishFinetuneJob({ jobId, status, error: progress.error })).catch(() => undefined);
    throw err;
  }
}

/** The innermost cause's message: "Activity task failed" wraps the message a user needs. */
function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && typeof e === 'object' && e.cause && typeof e.cause === 'object') e = e.cause as typeof e;
  return e?.message ?? String(err);
}

export function finetuneWorkflowId(jobId: string) {
  return `mella-finetune-${jobId}`;
}
