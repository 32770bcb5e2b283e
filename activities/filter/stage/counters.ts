/**
 * Per-operator counters of the filter stage, computed from the stored verdicts (never from memory), so
 * retries, resumed shards and re-runs cannot count anything twice. Image operators count images (each
 * judged once per run and language, by the shard that judged it first); text operators count records.
 */
import type pg from 'pg';
import { db } from '../../shared/db';
import { createCounters, mergeCounters, type FilterCounters } from '../pipeline';
import { filterPipelineFor } from './pipeline-cache';

type Queryable = pg.Pool | pg.PoolClient;

interface Scope {
  runId: string;
  lang?: string | undefined;
  shardIndex?: number | undefined;
}

function where(scope: Scope, table: string): { sql: string; params: unknown[] } {
  const params: unknown[] = [scope.runId];
  let sql = `${table}.run_id = $1`;
  if (scope.lang !== undefined) {
    params.push(scope.lang);
    sql += ` and ${table}.lang = $${params.length}`;
  }
  if (scope.shardIndex !== undefined) {
    params.push(scope.shardIndex);
    sql += ` and ${table}.shard_index = $${params.length}`;
  }
  return { sql, params };
}

function bump(counters: FilterCounters, op: string, kept: number, reason?: string | null, rejected = 0) {
  const c = (counters[op] ??= { in: 0, kept: 0, rejected: 0, byReason: {} });
  c.in += kept + rejected;
  c.kept += kept;
  c.rejected += rejected;
  if (reason) c.byReason[reason] = (c.byReason[reason] ?? 0) + rejected;
}

/** Counters of a language (or one shard), every operator of its pipeline listed in pipeline order. */
export async function filterCounters(client: Queryable, scope: Scope & { lang: string }): Promise<FilterCounters> {
  const counters: FilterCounters = {};
  for (const [table, passed, operator, reason] of [
    ['filter_images', 'passed', 'operator', 'reason'],
    ['filter_records', 'text_passed', 'text_operator', 'text_reason'],
  ] as const) {
    const w = where(scope, table);
    const keptRows = await client.query<{ op: string; n: string }>(
      `select op, count(*) as n from ${table}, unnest(${table}.${passed}) as op where ${w.sql} group by op`,
      w.params,
    );
    for (const r of keptRows.rows) bump(counters, r.op, Number(r.n));
    const rejectedRows = await client.query<{ op: string; reason: string | null; n: string }>(
      `select ${operator} as op, ${reason} as reason, count(*) as n from ${table} where ${w.sql} and ${operator} is not null group by 1, 2`,
      w.params,
    );
    for (const r of rejectedRows.rows) bump(counters, r.op, 0, r.reason, Number(r.n));
  }
  return mergeCounters(createCounters(await filterPipelineFor(scope.runId, scope.lang)), counters);
}

/** Activity: the language's per-operator counters after the set pass (for the progress query). */
export async function filterStageCounters(args: { runId: string; lang: string }): Promise<FilterCounters> {
  return filterCounters(db(), args);
}
