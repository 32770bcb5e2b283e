import path from 'node:path';
import { migrate } from '../migrate';
import { startEmbeddedPostgres, type RunningPostgres } from './postgres';
import { startTemporalDevServer, type RunningTemporal } from './temporal-server';

export interface StackPorts {
  temporal: number;
  temporalUi: number;
  postgres: number;
}

export const DEFAULT_PORTS: StackPorts = {
  temporal: Number(process.env.MELLA_TEMPORAL_PORT ?? 17233),
  temporalUi: Number(process.env.MELLA_TEMPORAL_UI_PORT ?? 18233),
  postgres: Number(process.env.MELLA_PG_PORT ?? 15432),
};

export interface StackInfo {
  temporalAddress: string;
  temporalUiUrl?: string;
  databaseUrl: string;
  ports: StackPorts;
  stateDir: string;
}

export interface RunningStack extends StackInfo {
  temporal: RunningTemporal;
  postgres: RunningPostgres;
  /** Stops Temporal and starts it again on the same SQLite file (used by tests). */
  restartTemporal(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the embedded stack in this process: PostgreSQL (+ migrations) and the Temporal dev server. */
export async function startStack(opts: { stateDir: string; ports: StackPorts; headless?: boolean }): Promise<RunningStack> {
  const logs = path.join(opts.stateDir, 'logs');
  const postgres = await startEmbeddedPostgres({
    dataDir: path.join(opts.stateDir, 'postgres'),
    port: opts.ports.postgres,
    logFile: path.join(logs, 'postgres.log'),
  });
  let temporal: RunningTemporal;
  try {
    await migrate(postgres.databaseUrl);
    temporal = await startTemporal();
  } catch (err) {
    await postgres.stop();
    throw err;
  }
  function startTemporal() {
    return startTemporalDevServer({
      dbFile: path.join(opts.stateDir, 'temporal.sqlite'),
      port: opts.ports.temporal,
      uiPort: opts.ports.temporalUi,
      logFile: path.join(logs, 'temporal.log'),
      headless: opts.headless,
    });
  }
  const stack: RunningStack = {
    temporalAddress: temporal.address,
    temporalUiUrl: temporal.uiUrl,
    databaseUrl: postgres.databaseUrl,
    ports: opts.ports,
    stateDir: opts.stateDir,
    temporal,
    postgres,
    async restartTemporal() {
      await stack.temporal.stop();
      stack.temporal = await startTemporal();
    },
    async stop() {
      await stack.temporal.stop().catch(() => undefined);
      await postgres.stop().catch(() => undefined);
    },
  };
  return stack;
}
