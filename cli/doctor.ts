import { WorkflowFailedError } from '@temporalio/client';
import { mellaDoctor, type DoctorReport } from '../workflows/doctor';
import { QUEUE_NAMES } from '../workers/queue-names';
import type { CliClient } from './client';

/** Runs the doctor workflow on mella-cpu; without a cpu worker, says so instead of waiting forever. */
export async function runDoctor(c: CliClient, waitSeconds: number): Promise<DoctorReport> {
  try {
    return await c.client.workflow.execute(mellaDoctor, {
      taskQueue: 'mella-cpu',
      workflowId: `mella-doctor-${Date.now()}`,
      args: [{ queues: [...QUEUE_NAMES], waitSeconds }],
      workflowExecutionTimeout: `${waitSeconds + 20} seconds`,
    });
  } catch (err) {
    if (err instanceof WorkflowFailedError) {
      return Object.fromEntries(QUEUE_NAMES.map((q) => [q, { error: 'no mella-cpu worker ran the doctor workflow (start one: mella worker)' }]));
    }
    throw err;
  }
}
