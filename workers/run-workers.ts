import { NativeConnection, Runtime, Worker, DefaultLogger } from '@temporalio/worker';
import path from 'node:path';
import { resolveConnections } from '../infra/connections';
import { PROJECT_ROOT } from '../infra/paths';
import { closeDb } from '../activities/shared/db';
import { QUEUES } from './queues';
import type { QueueName } from './queue-names';

let runtimeInstalled = false;

export interface RunningWorkers {
  /**
   * Graceful shutdown: polling stops, running activities get their cancellation and time to finish.
   * Resolves (or rejects) with `done`.
   */
  stop(): Promise<void>;
  /** Settles when every worker has stopped and the connections are closed. */
  done: Promise<void>;
}

/** Runs one worker per queue in this process until SIGTERM/SIGINT, then shuts down gracefully. */
export async function runWorkers(queues: readonly QueueName[]): Promise<void> {
  // Handlers first: a signal that arrives while the workers start is not the default "die at once";
  // it stops them as soon as they run. `done` reports how they ended (stop() returns the same promise).
  let running: RunningWorkers | undefined;
  let stopAsked = false;
  const stop = () => {
    stopAsked = true;
    void running?.stop().catch(() => undefined);
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  running = await startWorkers(queues);
  if (stopAsked) void running.stop().catch(() => undefined);
  await running.done;
}

/** Starts one worker per queue in this process (the demo and the tests use it directly). */
export async function startWorkers(queues: readonly QueueName[]): Promise<RunningWorkers> {
  const c = resolveConnections();
  if (!runtimeInstalled) {
    Runtime.install({ logger: new DefaultLogger((process.env.MELLA_LOG_LEVEL as 'INFO') ?? 'INFO'), shutdownSignals: [] });
    runtimeInstalled = true;
  }
  const connection = await NativeConnection.connect({ address: c.temporalAddress });
  const workers: Worker[] = [];
  try {
    for (const queue of queues) {
      const spec = QUEUES[queue];
      workers.push(
        await Worker.create({
          connection,
          namespace: c.namespace,
          taskQueue: queue,
          activities: spec.activities,
          workflowsPath: spec.workflows ? path.join(PROJECT_ROOT, 'workflows', 'index.ts') : undefined,
          maxConcurrentActivityTaskExecutions: Number(process.env[spec.slotsEnv] ?? spec.slots),
          shutdownGraceTime: '20 seconds',
        }),
      );
    }
  } catch (err) {
    // A failed Worker.create must not leave the process hanging on the open connection.
    for (const w of workers) w.shutdown();
    await connection.close().catch(() => undefined);
    throw err;
  }
  const shutdown = () => {
    console.log(`[worker] shutting down ${queues.join(', ')}`);
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  };
  // Models the first tasks need (language ID for the answers' validation) load while the workers poll.
  for (const warmUp of new Set(queues.map((q) => QUEUES[q].warmUp))) {
    void warmUp?.().catch((err: Error) => console.error(`[worker] warm-up failed (loaded again on first use): ${err.message}`));
  }
  console.log(`[worker] polling ${queues.join(', ')} on ${c.temporalAddress} (pid ${process.pid})`);
  // The browser worker's Chromium is a child process: close it, or it keeps the process alive.
  const closeBrowsers = async () => {
    if (queues.includes('mella-browser')) await (await import('../activities/crawl/batch')).closeRenderers().catch(() => undefined);
  };
  const done = Promise.all(workers.map((w) => w.run())).then(
    async () => {
      await closeBrowsers();
      await connection.close().catch(() => undefined);
      await closeDb().catch(() => undefined);
    },
    async (err) => {
      shutdown();
      await closeBrowsers();
      await connection.close().catch(() => undefined);
      await closeDb().catch(() => undefined);
      throw err;
    },
  );
  return {
    stop: () => {
      shutdown();
      return done;
    },
    done,
  };
}
