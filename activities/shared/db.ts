import pg from 'pg';
import { resolveConnections } from '../../infra/connections';

let pool: pg.Pool | undefined;

/** The process-wide PostgreSQL pool (DATABASE_URL or the embedded stack). */
export function db(): pg.Pool {
  if (!pool) {
    pool = new pg.Pool({ connectionString: resolveConnections().databaseUrl, max: Number(process.env.MELLA_DB_POOL ?? 10) });
    // A dropped idle connection (e.g. PostgreSQL restarted) must not crash the worker.
    pool.on('error', (err) => console.error(`[db] idle client error: ${err.message}`));
  }
  return pool;
}

let asyncPool: pg.Pool | undefined;

/**
 * A small pool whose commits do not wait for the WAL to reach the disk
 * (`synchronous_commit = off`): for rows that are only worth their cost, such as the LLM request
 * cache. A worker killed at any moment loses nothing written through it (PostgreSQL has the row); only
 * a crash of PostgreSQL itself (or its machine) can lose the last fraction of a second of such commits,
 * and any later ordinary commit flushes them.
 */
export function dbAsyncCommit(): pg.Pool {
  if (!asyncPool) {
    asyncPool = new pg.Pool({ connectionString: resolveConnections().databaseUrl, max: 4, options: '-c synchronous_commit=off' });
    asyncPool.on('error', (err) => console.error(`[db] idle client error: ${err.message}`));
  }
  return asyncPool;
}

export async function closeDb(): Promise<void> {
  const pools = [pool, asyncPool];
  pool = undefined;
  asyncPool = undefined;
  await Promise.all(pools.map((p) => p?.end()));
}

/** Runs fn in a transaction on one client. */
export async function inTransaction<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db().connect();
  try {
    await client.query('begin');
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}

/**
 * Refreshes the planner's statistics of tables a stage has just filled in bulk. Without them the
 * planner still believes a freshly loaded table is empty and may join a shard's items by a key prefix
 * plus a filter, reading every row of the run for each item (quadratic in the run's size; the caption
 * shards of bench:llm spent most of PostgreSQL's CPU that way). Autovacuum would analyze them too,
 * but only a minute or more later. ANALYZE samples a bounded number of rows, so this costs tens of ms.
 */
export async function analyzeTables(tables: readonly string[]): Promise<void> {
  if (tables.length === 0) return;
  const names = tables.map((t) => pg.escapeIdentifier(t)).join(', ');
  // Never a reason to hold up a stage: a table that another session (autovacuum, another plan) is
  // analyzing or vacuuming is left to it, and a slow ANALYZE is given up; both are logged.
  await inTransaction(async (client) => {
    await client.query(`set local lock_timeout = '2s'`);
    await client.query(`set local statement_timeout = '20s'`);
    await client.query(`analyze ${names}`);
  }).catch((err: Error) => console.warn(`[db] analyze ${tables.join(', ')} skipped: ${err.message}`));
}
