import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  executeChild,
  isCancellation,
  ParentClosePolicy,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type * as cpuActivities from '../activities/cpu';
import type { LanguageStageName } from '../activities/shared/config';
import { languageWorkflowId, mellaLanguageRun } from './language-run';
import { LANGUAGE, RUN_KIND, RUN_NAME } from './search-attributes';
import type { LanguageRunResult, MellaRunInput, RunProgress, RunSummary } from './types';

export const runProgressQuery = defineQuery<RunProgress>('progress');

export const RUN_WORKFLOW_PREFIX = 'mella-run-';

/**
 * A MELLA run: register it, plan its inputs, run one child workflow per language (stages in order),
 * then summarise. Workflow id `mella-run-<runId>`. A re-run of the same run id (`mella resume`) skips
 * every shard already done.
 */
/** Stages that run once per run, after every language (the language workflows skip them). */
const RUN_LEVEL_STAGES: readonly string[] = ['merge'];

export async function mellaRun(input: MellaRunInput): Promise<RunSummary> {
  const info = workflowInfo();
  // Schedules give each run its own workflow id (`mella-run-<name>-<timestamp>`); the run id follows it.
  const runId = input.runId ?? info.workflowId.slice(RUN_WORKFLOW_PREFIX.length);
  const { config } = input;
  const progress: RunProgress = { runId, phase: 'registering', languages: {} };
  for (const lang of config.languages) progress.languages[lang] = { workflowId: languageWorkflowId(runId, lang), status: 'pending' };
  setHandler(runProgressQuery, () => progress);

  const cpu = proxyActivities<typeof cpuActivities>({
    taskQueue: 'mella-cpu',
    startToCloseTimeout: '1 hour',
    heartbeatTimeout: `${config.ingest.heartbeatTimeoutSeconds} seconds`,
    retry: { initialInterval: '1 second', maximumInterval: '1 minute', nonRetryableErrorTypes: ['ConfigError'] },
  });

  const merge = proxyActivities<typeof cpuActivities>({
    taskQueue: 'mella-cpu',
    startToCloseTimeout: '6 hours',
    heartbeatTimeout: `${Math.max(60, config.ingest.heartbeatTimeoutSeconds)} seconds`,
    retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes', nonRetryableErrorTypes: ['ConfigError', 'SplitLeakError', 'ExportValidationError'] },
  });

  try {
    await cpu.registerRun({ runId, workflowId: info.workflowId, kind: input.kind, config });
    progress.phase = 'planning';
    await cpu.planRun({ runId });
    progress.phase = 'languages';
    const results = await Promise.allSettled(
      config.languages.map(async (lang) => {
        const entry = progress.languages[lang]!;
        entry.status = 'running';
        try {
          const result: LanguageRunResult = await executeChild(mellaLanguageRun, {
            workflowId: entry.workflowId,
            args: [
              {
                runId,
                lang,
                kind: input.kind,
                stages: config.stages.filter((s): s is LanguageStageName => !RUN_LEVEL_STAGES.includes(s)),
                window: config.ingest.window,
                heartbeatTimeoutSeconds: config.ingest.heartbeatTimeoutSeconds,
              },
            ],
            parentClosePolicy: ParentClosePolicy.REQUEST_CANCEL,
            typedSearchAttributes: [
              { key: RUN_NAME, value: config.name },
              { key: RUN_KIND, value: input.kind },
              { key: LANGUAGE, value: lang },
            ],
          });
          entry.status = 'completed';
          entry.stages = result.stages;
        } catch (err) {
          entry.status = isCancellation(err) ? 'cancelled' : 'failed';
          throw err;
        }
      }),
    );
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failures.length) {
      if (failures.some((f) => isCancellation(f.reason))) throw failures.find((f) => isCancellation(f.reason))!.reason;
      const failed = Object.entries(progress.languages).filter(([, l]) => l.status === 'failed').map(([lang]) => lang);
      throw ApplicationFailure.create({
        type: 'LanguageRunsFailed',
        message: `language runs failed: ${failed.join(', ')}; fix the cause and run "mella resume ${runId}"`,
        cause: failures[0]!.reason,
        nonRetryable: true,
      });
    }
    if (config.stages.includes('merge')) {
      progress.phase = 'merging';
      // One export of every language: a long activity that heartbeats its progress.
      await merge.mergeRun({ runId });
    }
    progress.phase = 'summarizing';
    const summary = await cpu.finishRun({ runId, status: 'completed' });
    progress.phase = 'done';
    return summary;
  } catch (err) {
    // Record the outcome even when cancelled: the recording must not itself be cancelled.
    const status = isCancellation(err) ? 'cancelled' : 'failed';
    await CancellationScope.nonCancellable(() =>
      cpu.finishRun({ runId, status, error: rootMessage(err) }),
    ).catch(() => undefined);
    throw err;
  }
}

/** The innermost cause's message: "Activity task failed" wraps the message a user needs. */
function rootMessage(err: unknown): string {
  let e = err as { message?: string; cause?: unknown } | undefined;
  while (e && typeof e === 'object' && e.cause && typeof e.cause === 'object') e = e.cause as typeof e;
  return e?.message ?? String(err);
}
