import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { WorkflowIdReusePolicy } from '@temporalio/common';
import pg from 'pg';
import { resolveConnections, workflowUiLink } from '../infra/connections';
import { loadConfigFile, parseConfig, type RunConfig } from '../activities/shared/config';
import { languageProgressQuery } from '../workflows/language-run';
import { mellaRun, RUN_WORKFLOW_PREFIX, runProgressQuery } from '../workflows/mella-run';
import { RUN_KIND, RUN_NAME } from '../workflows/search-attributes';
import type { RunKind, RunProgress, RunSummary, StageProgress } from '../workflows/types';
import type { CliClient } from './client';

export const runWorkflowId = (runId: string) => `${RUN_WORKFLOW_PREFIX}${runId}`;

export function defaultRunId(name: string, now = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${name}-${stamp}`.toLowerCase();
}

export function configFromFile(file: string, langs?: string): RunConfig {
  const config = loadConfigFile(file);
  if (langs) return parseConfig({ ...config, languages: langs.split(',').map((l) => l.trim()).filter(Boolean) }, `--langs ${langs}`);
  return config;
}

export async function startRun(c: CliClient, config: RunConfig, opts: { runId: string; kind: RunKind; resume?: boolean }) {
  const workflowId = runWorkflowId(opts.runId);
  try {
    const handle = await c.client.workflow.start(mellaRun, {
      taskQueue: 'mella-cpu',
      workflowId,
      args: [{ runId: opts.runId, kind: opts.kind, config }],
      // A new run never reuses a finished run's id; `resume` does, on purpose.
      workflowIdReusePolicy: opts.resume ? WorkflowIdReusePolicy.ALLOW_DUPLICATE : WorkflowIdReusePolicy.REJECT_DUPLICATE,
      typedSearchAttributes: [
        { key: RUN_NAME, value: config.name },
        { key: RUN_KIND, value: opts.kind },
      ],
      memo: { languages: config.languages.join(','), stages: config.stages.join(','), inputs: config.inputs.length },
    });
    return { handle, workflowId, uiUrl: workflowUiLink(c.connections, workflowId) };
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new Error(
        opts.resume
          ? `run ${opts.runId} is still running; nothing to resume`
          : `run ${opts.runId} already exists; pick another --name, or "mella resume ${opts.runId}" to continue it`,
      );
    }
    throw err;
  }
}

/** Waits for a run; a failed or cancelled run yields its recorded summary instead of throwing. */
export async function waitRun(c: CliClient, runId: string): Promise<RunSummary> {
  const handle = c.client.workflow.getHandle(runWorkflowId(runId));
  try {
    return (await handle.result()) as RunSummary;
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const recorded = await recordedRun(runId);
    const desc = await handle.describe();
    const status = desc.status.name === 'CANCELLED' ? 'cancelled' : 'failed';
    return { ...(recorded?.summary ?? emptySummary(runId)), status, error: recorded?.error ?? err.cause?.message ?? err.message };
  }
}

function emptySummary(runId: string): RunSummary {
  return { runId, status: 'failed', stages: {}, languages: {}, uniqueImages: 0, inputErrors: [], skippedOtherLanguage: 0 };
}

/** The run as recorded in PostgreSQL (config snapshot, status, summary). */
export async function recordedRun(runId: string) {
  const client = new pg.Client({ connectionString: resolveConnections().databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ config: RunConfig; status: string; summary: RunSummary | null; error: string | null; kind: RunKind }>(
      'select config, status, summary, error, kind from runs where run_id = $1',
      [runId],
    );
    return rows[0];
  } finally {
    await client.end();
  }
}

export interface RunStatusReport {
  runId: string;
  workflowId: string;
  status: string;
  uiUrl?: string;
  progress?: RunProgress;
  languages: Record<string, StageProgress[]>;
  summary?: RunSummary | null;
}

/** Live status: the workflow's state, and per language the stage progress from its child's `progress` query. */
export async function runStatus(c: CliClient, runId: string): Promise<RunStatusReport> {
  const workflowId = runWorkflowId(runId);
  const handle = c.client.workflow.getHandle(workflowId);
  let desc;
  try {
    desc = await handle.describe();
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) throw new Error(`no run ${runId} (workflow ${workflowId} not found)`);
    throw err;
  }
  const report: RunStatusReport = { runId, workflowId, status: desc.status.name.toLowerCase(), uiUrl: workflowUiLink(c.connections, workflowId), languages: {} };
  if (desc.status.name === 'RUNNING') {
    report.progress = await handle.query(runProgressQuery).catch(() => undefined);
    for (const [lang, l] of Object.entries(report.progress?.languages ?? {})) {
      if (l.stages) report.languages[lang] = l.stages;
      else if (l.status === 'running') {
        const stages = await c.client.workflow.getHandle(l.workflowId).query(languageProgressQuery).catch(() => undefined);
        if (stages) report.languages[lang] = stages;
      }
    }
  } else {
    report.summary = (await recordedRun(runId).catch(() => undefined))?.summary ?? null;
  }
  return report;
}

export async function cancelRun(c: CliClient, runId: string): Promise<void> {
  await c.client.workflow.getHandle(runWorkflowId(runId)).cancel();
}

/** Starts the run again under the same id with its recorded config; done shards are skipped. */
export async function resumeRun(c: CliClient, runId: string) {
  const recorded = await recordedRun(runId);
  if (!recorded) throw new Error(`no run ${runId} is recorded in PostgreSQL`);
  if (recorded.status === 'completed') throw new Error(`run ${runId} completed; nothing to resume`);
  return startRun(c, parseConfig(recorded.config), { runId, kind: recorded.kind, resume: true });
}
