import {
  continueAsNew,
  defineQuery,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  ActivityCancellationType,
} from '@temporalio/workflow';
import type * as cpuActivities from '../activities/cpu';
import type * as llmActivities from '../activities/llm-queue';
import type { LanguageStageName } from '../activities/shared/config';
import { runShardedStage } from './sharded-stage';
import { STAGE } from './search-attributes';
import type { LanguageRunInput, LanguageRunResult, ShardResult, StageProgress } from './types';

export const languageProgressQuery = defineQuery<StageProgress[]>('progress');

/**
 * One language of a run: its stages in lifecycle order, each as sharded, checkpointed activities.
 * Workflow id: `mella-run-<run>-lang-<lang>`.
 */
export async function mellaLanguageRun(input: LanguageRunInput): Promise<LanguageRunResult> {
  const { runId, lang } = input;
  const progress: StageProgress[] =
    input.carry?.progress ??
    input.stages.map((stage) => ({ stage, status: 'pending', totalItems: 0, totalShards: 0, doneShards: 0, in: 0, kept: 0, rejected: {} }));
  setHandler(languageProgressQuery, () => progress);

  const cpu = proxyActivities<typeof cpuActivities>({
    taskQueue: 'mella-cpu',
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: `${input.heartbeatTimeoutSeconds} seconds`,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '1 second', maximumInterval: '1 minute', backoffCoefficient: 2, nonRetryableErrorTypes: ['ConfigError'] },
  });

  // Endpoint calls: long waits on rate limits and backoff heartbeat; a wrong key or model fails at once.
  const llm = proxyActivities<typeof llmActivities>({
    taskQueue: 'mella-llm',
    startToCloseTimeout: '6 hours',
    heartbeatTimeout: `${Math.max(60, input.heartbeatTimeoutSeconds)} seconds`,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: {
      initialInterval: '5 seconds',
      maximumInterval: '5 minutes',
      backoffCoefficient: 2,
      nonRetryableErrorTypes: ['ConfigError', 'EndpointAuthError', 'EndpointConfigError'],
    },
  });

  // Each stage's shard activity, on the task queue of the resource it uses.
  const shardActivities: Record<LanguageStageName, (a: { runId: string; lang: string; shardIndex: number }) => Promise<ShardResult>> = {
    ingest: cpu.ingestShard,
    filter: cpu.filterShard,
    caption: llm.captionShard,
    translate: llm.translateShard,
  };
  // How a stage is split into shards: ingest was planned with the whole run; filter plans per language
  // (its shards are ingest's, and planning builds the site alt index).
  // The LLM stages plan their own shard size and window (an endpoint's limits, not the CPU's).
  const plans: Record<LanguageStageName, () => Promise<{ totalItems: number; shardCount: number; window?: number }>> = {
    ingest: () => cpu.stagePlan({ runId, lang, stage: 'ingest' }),
    filter: () => cpu.planFilter({ runId, lang }),
    caption: () => cpu.planCaption({ runId, lang }),
    translate: () => cpu.planTranslate({ runId, lang }),
  };

  for (let s = input.carry?.stageIndex ?? 0; s < input.stages.length; s++) {
    const stage = input.stages[s]!;
    const p = progress[s]!;
    upsertSearchAttributes([{ key: STAGE, value: stage }]);
    p.status = 'running';
    const plan = await plans[stage]();
    p.totalItems = plan.totalItems;
    p.totalShards = plan.shardCount;
    const outcome = await runShardedStage({
      shardCount: plan.shardCount,
      window: plan.window ?? input.window,
      startAt: input.carry && s === input.carry.stageIndex ? input.carry.nextShard : 0,
      runShard: (shardIndex) => shardActivities[stage]({ runId, lang, shardIndex }),
      onShardDone: (r: ShardResult) => addShard(p, r),
    });
    if (!outcome.finished) {
      await continueAsNew<typeof mellaLanguageRun>({ ...input, carry: { stageIndex: s, nextShard: outcome.nextShard, progress } });
    }
    if (stage === 'filter') {
      // The set pass (near-duplicate images and alts) over what the shards kept.
      const dedup = await cpu.dedupFilter({ runId, lang });
      p.kept -= dedup.recordsRemoved;
      for (const [reason, n] of Object.entries(dedup.rejected)) p.rejected[reason] = (p.rejected[reason] ?? 0) + n;
      p.operators = await cpu.filterStageCounters({ runId, lang });
    }
    p.status = 'done';
  }
  return { lang, stages: progress };
}

function addShard(p: StageProgress, r: ShardResult) {
  p.doneShards += 1;
  p.in += r.in;
  p.kept += r.kept;
  for (const [reason, n] of Object.entries(r.rejected)) p.rejected[reason] = (p.rejected[reason] ?? 0) + n;
  if (r.operators) {
    const ops = (p.operators ??= {});
    for (const [name, c] of Object.entries(r.operators)) {
      const o = (ops[name] ??= { in: 0, kept: 0, rejected: 0, byReason: {} });
      o.in += c.in;
      o.kept += c.kept;
      o.rejected += c.rejected;
      for (const [reason, n] of Object.entries(c.byReason)) o.byReason[reason] = (o.byReason[reason] ?? 0) + n;
    }
  }
}

export function languageWorkflowId(runId: string, lang: string) {
  return `mella-run-${runId}-lang-${lang}`;
}
