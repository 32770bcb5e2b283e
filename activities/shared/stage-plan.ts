import { db } from './db';

/** Activity: how a stage of one language was split (0 items when the language has no records). */
export async function stagePlan(args: { runId: string; lang: string; stage: string }): Promise<{ totalItems: number; shardCount: number }> {
  const { rows } = await db().query<{ total_items: number; shard_count: number }>(
    'select total_items, shard_count from stage_plans where run_id = $1 and lang = $2 and stage = $3',
    [args.runId, args.lang, args.stage],
  );
  return { totalItems: rows[0]?.total_items ?? 0, shardCount: rows[0]?.shard_count ?? 0 };
}
