/**
 * A trainer left behind by an earlier attempt of the same job. When a gpu worker dies, the trainer it
 * launched is orphaned: the mella trainer notices (stdin EOF, --stop-on-stdin-eof), checkpoints and
 * exits on its own; LLaMA-Factory does not. Before starting a new trainer, the next attempt on the same
 * host looks up the pid recorded in `finetune_jobs` and, if that process group still runs the job's
 * trainer, waits for it to finish stopping, then terminates the group (SIGTERM, then SIGKILL).
 * On another host it cannot reach the orphan; the mella trainer's lock on the output dir (exit 4,
 * retried later) keeps two trainers from writing one output dir on shared storage.
 */
import { jobRow } from './jobs';
import { commandLine, groupAlive, terminateGroup, waitGroupGone } from './process-group';

export async function reapStaleTrainer(a: { jobId: string; host: string; outputDir: string; graceMs: number; log: (msg: string) => void }): Promise<'none' | 'exited' | 'terminated' | 'not-ours' | 'other-host'> {
  const row = await jobRow(a.jobId);
  const pid = row?.trainer_pid;
  if (!row || !pid) return 'none';
  if (row.trainer_host !== a.host) {
    a.log(`an earlier attempt's trainer (pid ${pid}) ran on ${row.trainer_host}; it cannot be reached from ${a.host}`);
    return 'other-host';
  }
  if (!groupAlive(pid)) return 'none';
  const cmd = commandLine(pid);
  if (cmd !== undefined && !cmd.includes(a.outputDir)) {
    a.log(`pid ${pid} no longer runs this job's trainer (${cmd.slice(0, 120)}); left alone`);
    return 'not-ours';
  }
  a.log(`an earlier attempt's trainer (process group ${pid}) still runs; waiting up to ${a.graceMs} ms for it to stop`);
  if (await waitGroupGone(pid, a.graceMs)) return 'exited';
  await terminateGroup(pid, a.graceMs);
  a.log(`terminated the earlier attempt's trainer (process group ${pid})`);
  return 'terminated';
}
