import { spawn, type ChildProcess } from 'node:child_process';
import { Connection } from '@temporalio/client';
import fs from 'node:fs';
import path from 'node:path';
import { ALL_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { requireTemporalCli } from './temporal-cli';
import { isPortOpen, waitForPort } from './ports';

export interface TemporalDevServerOptions {
  dbFile: string;
  port: number;
  uiPort: number;
  logFile: string;
  /** Disable the Web UI (tests). */
  headless?: boolean;
  /** Server dynamic config (e.g. a low `limit.historyCount.suggestContinueAsNew` in tests). */
  dynamicConfig?: Record<string, string | number | boolean>;
}

export interface RunningTemporal {
  address: string;
  uiUrl?: string;
  process: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `temporal server start-dev` with a SQLite file (runs survive a restart), the Web UI and
 * the project's search attributes registered.
 */
export async function startTemporalDevServer(opts: TemporalDevServerOptions): Promise<RunningTemporal> {
  const cli = requireTemporalCli();
  if (await isPortOpen(opts.port)) {
    throw new Error(`port ${opts.port} is already in use; stop what uses it or choose another Temporal port (MELLA_TEMPORAL_PORT)`);
  }
  fs.mkdirSync(path.dirname(opts.dbFile), { recursive: true });
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const args = [
    'server', 'start-dev',
    '--db-filename', opts.dbFile,
    '--ip', '127.0.0.1',
    '--port', String(opts.port),
    '--log-level', 'warn',
  ];
  if (opts.headless) args.push('--headless');
  else args.push('--ui-port', String(opts.uiPort));
  for (const [k, v] of Object.entries(opts.dynamicConfig ?? {})) args.push('--dynamic-config-value', `${k}=${JSON.stringify(v)}`);
  for (const key of ALL_SEARCH_ATTRIBUTES) args.push('--search-attribute', `${key.name}=Keyword`);
  const log = fs.openSync(opts.logFile, 'a');
  const child = spawn(cli, args, { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => { exited = true; resolve(); }));
  try {
    await Promise.race([
      // the port opens before the frontend serves: a worker that connects in between is refused
      // ("Frontend is not healthy yet"), so wait until it answers
      waitForPort(opts.port, 60_000, 'Temporal dev server').then(() => waitForFrontend(`127.0.0.1:${opts.port}`, 60_000, () => exited)),
      exit.then(() => { throw new Error(`Temporal dev server exited at start; see ${opts.logFile}`); }),
    ]);
    if (!opts.headless) await waitForPort(opts.uiPort, 30_000, 'Temporal Web UI');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    address: `127.0.0.1:${opts.port}`,
    uiUrl: opts.headless ? undefined : `http://127.0.0.1:${opts.uiPort}`,
    process: child,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/**
 * Waits until the Temporal frontend at `address` answers `GetSystemInfo`, or throws after timeoutMs with
 * its last answer; stops trying once `gone()` (the server exited: the caller reports that).
 */
async function waitForFrontend(address: string, timeoutMs: number, gone: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline && !gone()) {
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, connectTimeout: Math.max(1, Math.min(5_000, deadline - Date.now())) });
      return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    } finally {
      await connection?.close().catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the Temporal dev server at ${address} did not become ready within ${Math.round(timeoutMs / 1000)}s: ${last}`);
}
