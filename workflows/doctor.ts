import { proxyActivities } from '@temporalio/workflow';
import type { WorkerInfo } from '../activities/worker-info';

export type DoctorReport = Record<string, WorkerInfo | { error: string }>;

/**
 * `mella doctor`: asks one worker of each task queue to describe itself (host, pid, what it can use:
 * Chromium, endpoint, GPUs). A queue nobody polls answers with an error after `waitSeconds`.
 */
export async function mellaDoctor(args: { queues: string[]; waitSeconds: number }): Promise<DoctorReport> {
  const report: DoctorReport = {};
  await Promise.all(
    args.queues.map(async (queue) => {
      const { describeWorker } = proxyActivities<{ describeWorker(): Promise<WorkerInfo> }>({
        taskQueue: queue,
        scheduleToStartTimeout: `${args.waitSeconds} seconds`,
        startToCloseTimeout: '30 seconds',
        retry: { maximumAttempts: 1 },
      });
      try {
        report[queue] = await describeWorker();
      } catch {
        report[queue] = { error: `no worker polls ${queue} (nothing answered within ${args.waitSeconds} s)` };
      }
    }),
  );
  return report;
}
