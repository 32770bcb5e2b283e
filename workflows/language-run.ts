import {
  workflowInfo,
  continueAsNew,
  defineQuery,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  ActivityCancellationType,
} from '@temporalio/workflow';
import type * as cpuActivities from '../activities/cpu';
import type * as llmActivities from '../activities/llm-queue';
import type * as browserActivities from '../activities/browser-queue';
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

  // Pages in a real browser: a batch heartbeats while it renders, so a dead worker's batch moves on fast.
  const browser = proxyActivities<typeof browserActivities>({
    taskQueue: 'mella-browser',
    startToCloseTimeout: '2 hours',
    heartbeatTimeout: `${input.heartbeatTimeoutSeconds} seconds`,
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', backoffCoefficient: 2, nonRetryableErrorTypes: ['ConfigError'] },
  });

  // Each stage's shard activity, on the task queue of the resource it uses.
  const shardActivities: Record<Exclude<LanguageStageName, 'crawl'>, (a: { runId: string; lang: string; shardIndex: number }) => Promise<ShardResult>> = {
    ingest: cpu.ingestShard,
    filter: cpu.filterShard,
    caption: llm.captionShard,
    translate: llm.translateShard,
    fuse: llm.fuseShard,
  };
  // How a stage is split into shards: ingest was planned with the whole run; filter plans per language
  // (its shards are ingest's, and planning builds the site alt index).
  // The LLM stages plan their own shard size and window (an endpoint's limits, not the CPU's).
  const plans: Record<Exclude<LanguageStageName, 'crawl'>, () => Promise<{ totalItems: number; shardCount: number; window?: number }>> = {
    ingest: () => cpu.stagePlan({ runId, lang, stage: 'ingest' }),
    filter: () => cpu.planFilter({ runId, lang }),
    caption: () => cpu.planCaption({ runId, lang }),
    translate: () => cpu.planTranslate({ runId, lang }),
    fuse: () => cpu.planFuse({ runId, lang }),
  };

  for (let s = input.carry?.stageIndex ?? 0; s < input.stages.length; s++) {
    const stage = input.stages[s]!;
    const p = progress[s]!;
    upsertSearchAttributes([{ key: STAGE, value: stage }]);
    p.status = 'running';
    if (stage === 'crawl') {
      await crawlStage(s, p);
      p.status = 'done';
      continue;
    }
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
      if (dedup.similarity) {
        // Optional: image-text similarity of the kept records through an embeddings endpoint.
        const sim = await llm.similarityFilter({ runId, lang });
        p.kept -= sim.recordsRemoved;
        for (const [reason, n] of Object.entries(sim.rejected)) p.rejected[reason] = (p.rejected[reason] ?? 0) + n;
      }
      p.operators = await cpu.filterStageCounters({ runId, lang });
    }
    p.status = 'done';
  }
  return { lang, stages: progress };

  /**
   * The crawl: WARC sources (mella-cpu, a bounded window), then browser batches (mella-browser) until
   * the frontier is exhausted or the page budget spent, then the handoff of the images to ingest.
   * After a continue-as-new (only in the batch loop) the WARC sources are done and not counted again.
   */
  async function crawlStage(s: number, p: StageProgress) {
    const resumed = input.carry !== undefined && s === input.carry.stageIndex;
    const plan = await cpu.planCrawl({ runId, lang, kind: input.kind });
    p.totalItems = plan.frontier;
    p.totalShards = plan.warc.length;
    if (!resumed) {
      await runShardedStage({
        shardCount: plan.warc.length,
        window: input.window,
        startAt: 0,
        runShard: (index) => cpu.crawlWarc({ runId, lang, source: plan.warc[index]!, index }),
        onShardDone: (r: ShardResult) => addShard(p, r),
      });
    }
    if (plan.browser) {
      for (let batchNo = resumed ? input.carry!.nextShard : 0; ; batchNo++) {
        const batch = await browser.crawlBatch({ runId, lang, batchNo });
        addShard(p, batch.result);
        p.totalItems = batch.frontier;
        if (batch.exhausted) break;
        if (workflowInfo().continueAsNewSuggested) {
          await continueAsNew<typeof mellaLanguageRun>({ ...input, carry: { stageIndex: s, nextShard: batchNo + 1, progress } });
        }
      }
    }
    await cpu.crawlHandoff({ runId, lang, kind: input.kind });
  }
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
