import { ApplicationFailure } from '@temporalio/activity';
import { db } from '../shared/db';
import { parseConfig, type RunConfig } from '../shared/config';
import type { RunKind } from '../../workflows/types';

export interface RunRow {
  run_id: string;
  name: string;
  kind: RunKind;
  workflow_id: string;
  config: RunConfig;
  status: string;
}

const cache = new Map<string, RunConfig>();

/** The run's validated config snapshot (cached per process: it never changes for a run id). */
export async function runConfig(runId: string): Promise<RunConfig> {
  const hit = cache.get(runId);
  if (hit) return hit;
  const { rows } = await db().query<RunRow>('select config from runs where run_id = $1', [runId]);
  if (!rows[0]) throw ApplicationFailure.nonRetryable(`run ${runId} is not registered`, 'UnknownRun');
  const config = parseConfig(rows[0].config, `config of run ${runId}`);
  cache.set(runId, config);
  return config;
}

/** Activity: records the run (or marks a resumed one running again). The first config snapshot is kept. */
export async function registerRun(args: { runId: string; workflowId: string; kind: RunKind; config: RunConfig }): Promise<void> {
  const config = parseConfig(args.config, 'run config');
  await db().query(
    `insert into runs (run_id, name, kind, workflow_id, languages, stages, config, status)
     values ($1, $2, $3, $4, $5, $6, $7, 'running')
     on conflict (run_id) do update set status = 'running', error = null, workflow_id = excluded.workflow_id,
       updated_at = now(), finished_at = null`,
    [args.runId, config.name, args.kind, args.workflowId, config.languages, config.stages, JSON.stringify(config)],
  );
}
