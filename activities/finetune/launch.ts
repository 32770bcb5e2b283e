/**
 * Runs one trainer process to its end: spawned as the leader of its own process group, its stdout and
 * stderr streamed line by line to the worker log, its progress turned into events (stdout protocol
 * lines for the mella trainer, a polled trainer_log.jsonl for LLaMA-Factory), a heartbeat on a timer
 * while it shows signs of life, and a clean stop: on cancellation or a stall, SIGTERM to the group
 * (the mella trainer checkpoints at the next step boundary), SIGKILL after the grace period, and the
 * group gone before this returns. Whatever happens, no process of the group is left behind.
 */
import readline from 'node:readline';
import type { TrainerEvent } from './events';
import type { TrainerCommand } from './mella-command';
import { groupAlive, spawnGroup, terminateGroup } from './process-group';

export interface LaunchSpec {
  command: TrainerCommand;
  env: Record<string, string>;
  cwd?: string;
  /** A stdout line → an event (the mella protocol); other lines are only logged. */
  parseStdout?: (line: string) => TrainerEvent | undefined;
  /** Polled every `pollMs` (LLaMA-Factory's trainer_log.jsonl and checkpoint dirs). */
  poll?: () => TrainerEvent[];
  pollMs?: number;
  onEvent: (e: TrainerEvent) => void;
  onSpawn?: (pid: number) => void;
  /** Called every `heartbeatEveryMs` while the trainer is alive and not stalled (delivers cancellation too). */
  heartbeat: () => void;
  heartbeatEveryMs: number;
  /** No output (and no new log lines) for this long: the trainer is taken for hung and stopped. */
  stallMs: number;
  killGraceMs: number;
  /** The activity's cancellation. */
  signal: AbortSignal;
  log: (stream: 'stdout' | 'stderr', line: string) => void;
}

export interface LaunchOutcome {
  pid: number | null;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  cancelled: boolean;
  stalled: boolean;
  /** SIGKILL was needed after the grace period. */
  killed: boolean;
  /** The last lines of stderr (for error messages). */
  stderrTail: string[];
  spawnError?: Error;
}

const TAIL_LINES = 30;

export function launchTrainer(spec: LaunchSpec): Promise<LaunchOutcome> {
  const outcome: LaunchOutcome = { pid: null, exitCode: null, signal: null, cancelled: false, stalled: false, killed: false, stderrTail: [] };
  if (spec.signal.aborted) return Promise.resolve({ ...outcome, cancelled: true });

  return new Promise<LaunchOutcome>((resolve) => {
    const child = spawnGroup(spec.command.file, spec.command.args, { env: spec.env, cwd: spec.cwd });
    let lastSign = Date.now();
    let stopping: Promise<void> | undefined;
    let settled = false;

    const emit = (events: TrainerEvent[]) => {
      for (const e of events) spec.onEvent(e);
    };
    const stop = () => {
      if (stopping || child.pid === undefined) return stopping;
      const pgid = child.pid;
      stopping = terminateGroup(pgid, spec.killGraceMs).then((killed) => {
        outcome.killed = killed;
      });
      return stopping;
    };
    const onAbort = () => {
      outcome.cancelled = true;
      void stop();
    };

    const tick = () => {
      if (spec.poll) {
        const events = spec.poll();
        if (events.length) lastSign = Date.now();
        emit(events);
      }
      if (stopping) return;
      if (Date.now() - lastSign > spec.stallMs) {
        outcome.stalled = true;
        void stop();
        return;
      }
      spec.heartbeat();
    };
    const timer = setInterval(() => {
      try {
        tick();
      } catch (err) {
        spec.log('stderr', `[launch] ${(err as Error).message}`);
      }
    }, Math.max(100, Math.min(spec.heartbeatEveryMs, spec.pollMs ?? spec.heartbeatEveryMs)));

    const finish = async () => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      spec.signal.removeEventListener('abort', onAbort);
      // Anything the trainer started and left running goes with it.
      if (outcome.pid !== null && groupAlive(outcome.pid)) {
        await stop();
      }
      await stopping;
      try {
        if (spec.poll) emit(spec.poll());
      } catch {
        // a last poll that fails changes nothing
      }
      resolve(outcome);
    };

    child.on('error', (err) => {
      outcome.spawnError = err;
      void finish();
    });
    if (child.pid === undefined) return; // 'error' follows (e.g. ENOENT)
    outcome.pid = child.pid;
    spec.onSpawn?.(child.pid);
    spec.signal.addEventListener('abort', onAbort, { once: true });

    const out = readline.createInterface({ input: child.stdout, crlfDelay: Infinity });
    out.on('line', (line) => {
      lastSign = Date.now();
      spec.log('stdout', line);
      const e = spec.parseStdout?.(line);
      if (e) emit([e]);
    });
    const err = readline.createInterface({ input: child.stderr, crlfDelay: Infinity });
    err.on('line', (line) => {
      lastSign = Date.now();
      spec.log('stderr', line);
      outcome.stderrTail.push(line);
      if (outcome.stderrTail.length > TAIL_LINES) outcome.stderrTail.shift();
    });
    child.stdin.on('error', () => undefined); // never written to; it only has to stay open
    // A leader that exited while something of its group still holds the pipes open: stop the group.
    child.on('exit', () => {
      setTimeout(() => {
        if (!settled && outcome.pid !== null && groupAlive(outcome.pid)) void stop();
      }, 2000).unref();
    });
    // 'close': the process exited and its stdio ended (every protocol line has been read).
    child.on('close', (code, signal) => {
      outcome.exitCode = code;
      outcome.signal = signal;
      void finish();
    });
  });
}
