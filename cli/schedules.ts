import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy } from '@temporalio/client';
import type { RunConfig } from '../activities/shared/config';
import { mellaRun } from '../workflows/mella-run';
import { RUN_KIND, RUN_NAME } from '../workflows/search-attributes';
import type { CliClient } from './client';
import { runWorkflowId } from './runs';

export const scheduleId = (name: string) => `mella-schedule-${name}`;

/**
 * A Temporal Schedule that starts refresh runs of one config on a cron. Overlap policy: skip (a run
 * still going when the next is due is not doubled). Each scheduled run's workflow id is
 * `mella-run-<name>-<timestamp>` (Temporal appends the time), which is also its run id.
 */
export async function createSchedule(c: CliClient, name: string, cron: string, config: RunConfig, opts: { paused?: boolean } = {}) {
  try {
    await c.client.schedule.create({
      scheduleId: scheduleId(name),
      spec: { cronExpressions: [cron] },
      action: {
        type: 'startWorkflow',
        workflowType: mellaRun,
        taskQueue: 'mella-cpu',
        workflowId: runWorkflowId(name),
        args: [{ kind: 'schedule', config }],
        typedSearchAttributes: [
          { key: RUN_NAME, value: config.name },
          { key: RUN_KIND, value: 'schedule' },
        ],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 hour' },
      state: { paused: opts.paused ?? false, note: `mella schedule for config "${config.name}"` },
      memo: { languages: config.languages.join(','), stages: config.stages.join(',') },
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) throw new Error(`schedule ${name} already exists; delete it first`);
    throw err;
  }
}

export async function listSchedules(c: CliClient) {
  const out: { name: string; cron: string[]; paused: boolean; recentRuns: string[]; nextRun?: string }[] = [];
  for await (const s of c.client.schedule.list()) {
    if (!s.scheduleId.startsWith('mella-schedule-')) continue;
    out.push({
      name: s.scheduleId.slice('mella-schedule-'.length),
      cron: (s.spec?.calendars ?? []).map((cal) => JSON.stringify(cal)),
      paused: s.state.paused,
      recentRuns: s.info.recentActions.map((a) => a.action.workflow.workflowId),
      nextRun: s.info.nextActionTimes[0]?.toISOString(),
    });
  }
  return out;
}

async function withSchedule<T>(c: CliClient, name: string, fn: (h: ReturnType<CliClient['client']['schedule']['getHandle']>) => Promise<T>) {
  try {
    return await fn(c.client.schedule.getHandle(scheduleId(name)));
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) throw new Error(`no schedule named ${name}`);
    throw err;
  }
}

export const deleteSchedule = (c: CliClient, name: string) => withSchedule(c, name, (h) => h.delete());
export const triggerSchedule = (c: CliClient, name: string) => withSchedule(c, name, (h) => h.trigger(ScheduleOverlapPolicy.SKIP));
