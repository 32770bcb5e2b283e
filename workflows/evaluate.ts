import {
  ActivityCancellationType,
  CancellationScope,
  ContinueAsNew,
  continueAsNew,
  defineQuery,
  isCancellation,
  proxyActivities,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import type * as cpuActivities from '../activities/cpu';
import type * as llmActivities from '../activities/llm-queue';
import type { EvaluateInput, EvaluateProgress, EvaluateResult, ModelProgress } from '../activities/evaluate/types';
import { runShardedStage } from './sharded-stage';

export const evaluateProgressQuery = defineQuery<EvaluateProgress>('progress');

const NON_RETRYABLE = ['ConfigError', 'EndpointAuthError', 'EndpointConfigError'];

/**
 * Evaluates models on a dataset version's split: register, plan the samples into shards, ask every
 * model (shard activities on mella-llm, a bounded window per model, cached requests), score per
 * language, source and metric (mella-cpu), write the report. Workflow id `mella-eval-<evalId>`;
 * continues as new between shards when the history grows, carrying where it was.
 */
export async function mellaEvaluate(input: EvaluateInput): Promise<EvaluateResult> {
  const { evalId, config } = input;
  const progress: EvaluateProgress = input.carry?.progress ?? {
    evalId,
    phase: 'registering',
    items: 0,
    perLanguage: {},
    models: config.models.map((m): ModelProgress => ({ name: m.name, role: m.role, totalShards: 0, doneShards: 0, predictions: 0, cached: 0, failed: 0, standin: 0 })),
  };
  setHandler(evaluateProgressQuery, () => progress);

  const cpu = proxyActivities<typeof cpuActivities>({
    taskQueue: 'mella-cpu',
    startToCloseTimeout: '1 hour',
    retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2, nonRetryableErrorTypes: NON_RETRYABLE },
  });
  // Endpoint calls: waits on rate limits and backoff heartbeat; a wrong key or model fails at once.
  const llm = proxyActivities<typeof llmActivities>({
    taskQueue: 'mella-llm',
    startToCloseTimeout: '6 hours',
    heartbeatTimeout: '2 minutes',
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes', backoffCoefficient: 2, nonRetryableErrorTypes: NON_RETRYABLE },
  });

  try {
    if (!input.carry) {
      await cpu.registerEvaluation({ evalId, workflowId: workflowInfo().workflowId, config });
      progress.phase = 'planning';
      const plan = await cpu.planEvaluation({ evalId });
      progress.items = plan.items;
      progress.perLanguage = plan.perLanguage;
      for (const m of progress.models) m.totalShards = plan.shardCount;
      progress.phase = 'predicting';
    }

    for (let mi = input.carry?.modelIndex ?? 0; mi < config.models.length; mi++) {
      const model = config.models[mi]!;
      const mp = progress.models[mi]!;
      const outcome = await runShardedStage({
        shardCount: mp.totalShards,
        window: config.window,
        startAt: input.carry && mi === input.carry.modelIndex ? input.carry.nextShard : 0,
        runShard: async (shardIndex) => {
          const r = await llm.evaluatePredictShard({ evalId, modelName: model.name, shardIndex });
          mp.doneShards += 1;
          mp.predictions += r.predictions;
          mp.cached += r.cached;
          mp.failed += r.failed;
          mp.standin += r.standin;
          return { shardIndex, in: r.predictions, kept: r.predictions - r.failed, rejected: {}, skipped: r.skipped };
        },
        onShardDone: () => undefined,
      });
      if (!outcome.finished) {
        await continueAsNew<typeof mellaEvaluate>({ evalId, config, carry: { modelIndex: mi, nextShard: outcome.nextShard, progress } });
      }
    }

    progress.phase = 'scoring';
    await cpu.scoreEvaluation({ evalId });
    progress.phase = 'reporting';
    const report = await cpu.writeEvaluationReport({ evalId });
    const { standin, ...paths } = report;
    progress.report = paths;
    await cpu.finishEvaluation({ evalId, status: 'completed' });
    upsertMemo({ report: paths.markdown, items: progress.items, standin });
    progress.phase = 'done';
    return { evalId, status: 'completed', items: progress.items, models: progress.models, report: paths, standin };
  } catch (err) {
    if (err instanceof ContinueAsNew) throw err;
    const status = isCancellation(err) ? 'cancelled' : 'failed';
    progress.phase = status;
    progress.error = rootMessage(err);
    await CancellationScope.nonCancellable(() => cpu.finishEvaluation({ evalId, status, error: progress.error })).catch(() => undefined);
    throw err;
  }
}

/** The innermost cause's message: "Activity task failed" wraps the message a user needs. */
function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && typeof e === 'object' && e.cause && typeof e.cause === 'object') e = e.cause as typeof e;
  return e?.message ?? String(err);
}

export function evaluateWorkflowId(evalId: string): string {
  return `mella-eval-${evalId}`;
}
