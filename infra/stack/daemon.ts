/**
 * The embedded stack's supervisor process, started detached by `mella dev up`: it owns PostgreSQL and
 * the Temporal dev server, records where they listen in <state>/stack.json, and stops both cleanly on
 * SIGTERM/SIGINT (`mella dev down`).
 */
import fs from 'node:fs';
import { startStack } from './stack';
import { stackFile, type StackRecord } from './control';

const stateDir = process.env.MELLA_STATE_DIR!;
const ports = JSON.parse(process.env.MELLA_STACK_PORTS!);
const file = stackFile(stateDir);

function write(record: StackRecord) {
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(record, null, 2));
  fs.renameSync(`${file}.tmp`, file);
}

write({ state: 'starting', pid: process.pid, ports, stateDir, startedAt: new Date().toISOString() });
try {
  const stack = await startStack({ stateDir, ports });
  write({
    state: 'ready',
    pid: process.pid,
    ports,
    stateDir,
    startedAt: new Date().toISOString(),
    temporalAddress: stack.temporalAddress,
    temporalUiUrl: stack.temporalUiUrl,
    databaseUrl: stack.databaseUrl,
  });
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`${new Date().toISOString()} ${signal}: stopping the stack`);
    await stack.stop();
    fs.rmSync(file, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  stack.temporal.process.once('exit', (code) => {
    if (stopping) return;
    console.error(`${new Date().toISOString()} Temporal dev server exited unexpectedly (code ${code}); stopping the stack`);
    void stop('temporal-exit');
  });
} catch (err) {
  write({ state: 'failed', pid: process.pid, ports, stateDir, startedAt: new Date().toISOString(), error: (err as Error).message });
  console.error(err);
  process.exit(1);
}
