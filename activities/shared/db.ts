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

export async function closeDb(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.end();
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
