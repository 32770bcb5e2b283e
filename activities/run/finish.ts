import { db } from '../shared/db';
import type { RunSummary } from '../../workflows/types';
import { computeSummary } from './summary';

/** Activity: computes the run summary from PostgreSQL and records the run's final status with it. */
export async function finishRun(args: { runId: string; status: RunSummary['status']; error?: string }): Promise<RunSummary> {
  const summary = await computeSummary(args.runId, args.status);
  if (args.error) summary.error = args.error;
  await db().query(
    `update runs set status = $2, summary = $3, error = $4, updated_at = now(),
       finished_at = case when $2 = 'running' then null else now() end where run_id = $1`,
    [args.runId, args.status, JSON.stringify(summary), args.error ?? null],
  );
  return summary;
}
