import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { migrate } from '../migrate';
import { tsEntryArgs } from '../node-process';
import { PROJECT_ROOT } from '../paths';
import { isPortOpen } from './ports';
import { isAlive } from './pid';
import type { StackPorts } from './stack';

export interface StackRecord {
  state: 'starting' | 'ready' | 'failed';
  pid: number;
  ports: StackPorts;
  stateDir: string;
  startedAt: string;
  temporalAddress?: string;
  temporalUiUrl?: string;
  databaseUrl?: string;
  error?: string;
}

export const stackFile = (stateDir: string) => path.join(stateDir, 'stack.json');

export function readStackRecord(stateDir: string): StackRecord | undefined {
  try {
    return JSON.parse(fs.readFileSync(stackFile(stateDir), 'utf8')) as StackRecord;
  } catch {
    return undefined;
  }
}


export interface StackStatus {
  running: boolean;
  record?: StackRecord;
  stale?: string;
  services: { name: string; port: number; up: boolean }[];
}

export async function stackStatus(stateDir: string): Promise<StackStatus> {
  const record = readStackRecord(stateDir);
  const ports = record?.ports;
  const services = ports
    ? [
        { name: 'temporal', port: ports.temporal, up: await isPortOpen(ports.temporal) },
        { name: 'temporal-ui', port: ports.temporalUi, up: await isPortOpen(ports.temporalUi) },
        { name: 'postgres', port: ports.postgres, up: await isPortOpen(ports.postgres) },
      ]
    : [];
  if (!record) return { running: false, services };
  if (!isAlive(record.pid)) {
    return { running: false, record, services, stale: `stale ${stackFile(stateDir)}: supervisor pid ${record.pid} is not running` };
  }
  return { running: record.state === 'ready' && services.every((s) => s.up), record, services };
}

/**
 * `mella dev up`: starts the supervisor detached, or reuses the one that runs. A stale record (dead pid)
 * is cleaned up with a message; a port held by something else is a clear error.
 */
export async function stackUp(
  stateDir: string,
  ports: StackPorts,
  log: (m: string) => void = console.log,
): Promise<{ reused: boolean; record: StackRecord }> {
  const status = await stackStatus(stateDir);
  if (status.record && !status.stale) {
    if (status.record.state === 'starting') return { reused: true, record: await waitReady(stateDir, status.record.pid) };
    if (status.running) {
      // A stack started by older code lacks the newer migrations: apply them (idempotent, locked).
      if (status.record.databaseUrl) {
        const applied = await migrate(status.record.databaseUrl);
        if (applied.length) log(`applied migrations to the running stack: ${applied.join(', ')}`);
      }
      return { reused: true, record: status.record };
    }
    const down = status.services.filter((s) => !s.up).map((s) => `${s.name}:${s.port}`).join(', ');
    throw new Error(`the stack supervisor (pid ${status.record.pid}) runs but ${down} is not answering; run "mella dev down" then "mella dev up"`);
  }
  if (status.stale) {
    log(`${status.stale}; cleaning up`);
    fs.rmSync(stackFile(stateDir), { force: true });
  }
  for (const [name, port] of Object.entries(ports)) {
    if (await isPortOpen(port)) {
      throw new Error(`port ${port} (${name}) is in use by a process that is not this stack; stop it or choose other ports (MELLA_TEMPORAL_PORT, MELLA_TEMPORAL_UI_PORT, MELLA_PG_PORT)`);
    }
  }
  fs.mkdirSync(path.join(stateDir, 'logs'), { recursive: true });
  const out = fs.openSync(path.join(stateDir, 'logs', 'stack.log'), 'a');
  const child = spawn(process.execPath, tsEntryArgs('infra/stack/daemon.ts'), {
    cwd: PROJECT_ROOT,
    detached: true,
    stdio: ['ignore', out, out],
    env: { ...process.env, MELLA_STATE_DIR: stateDir, MELLA_STACK_PORTS: JSON.stringify(ports) },
  });
  fs.closeSync(out);
  child.unref();
  return { reused: false, record: await waitReady(stateDir, child.pid!) };
}

async function waitReady(stateDir: string, pid: number, timeoutMs = 180_000): Promise<StackRecord> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const record = readStackRecord(stateDir);
    if (record?.pid === pid && record.state === 'ready') return record;
    if (record?.pid === pid && record.state === 'failed') {
      throw new Error(`the stack failed to start: ${record.error}; logs in ${path.join(stateDir, 'logs')}`);
    }
    if (!isAlive(pid)) throw new Error(`the stack supervisor exited during start; see ${path.join(stateDir, 'logs', 'stack.log')}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the stack did not become ready in ${timeoutMs / 1000}s; see ${path.join(stateDir, 'logs')}`);
}

/** `mella dev down`: stops the supervisor (which stops Temporal and PostgreSQL cleanly). */
export async function stackDown(stateDir: string, log: (m: string) => void = console.log): Promise<boolean> {
  const record = readStackRecord(stateDir);
  if (!record) return false;
  if (!isAlive(record.pid)) {
    log(`stale ${stackFile(stateDir)} (pid ${record.pid} is not running); removed`);
    fs.rmSync(stackFile(stateDir), { force: true });
    return false;
  }
  process.kill(record.pid, 'SIGTERM');
  const deadline = Date.now() + 60_000;
  while (isAlive(record.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  if (isAlive(record.pid)) {
    log(`supervisor pid ${record.pid} did not stop in 60s; sending SIGKILL`);
    process.kill(record.pid, 'SIGKILL');
  }
  fs.rmSync(stackFile(stateDir), { force: true });
  return true;
}
