/**
 * The trainer runs as the leader of its own process group (`detached: true`: setsid), so one signal to
 * `-pgid` reaches it and anything it started (LLaMA-Factory's torchrun workers, dataloader processes).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import fs from 'node:fs';

export function spawnGroup(file: string, args: string[], opts: { env: Record<string, string>; cwd?: string }): ChildProcessWithoutNullStreams {
  // stdin is a pipe that only this process holds: when it dies, the trainer reads EOF (--stop-on-stdin-eof).
  return spawn(file, args, { env: opts.env, cwd: opts.cwd, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Sends a signal to the whole group; false when the group no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/**
 * Whether any process of the group is still running. On Linux the live members are read from /proc:
 * a zombie (exited, not yet reaped by a parent or by init) counts as gone, which `kill(-pgid, 0)` alone
 * would not tell.
 */
export function groupAlive(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  const members = liveGroupMembers(pgid);
  return members === undefined ? true : members.length > 0;
}

/** Live (non-zombie) pids of a process group, from /proc; undefined where /proc is not readable. */
export function liveGroupMembers(pgid: number): number[] | undefined {
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    return undefined;
  }
  const out: number[] = [];
  for (const p of pids) {
    const st = procStat(Number(p));
    if (st && st.pgrp === pgid && st.state !== 'Z' && st.state !== 'X') out.push(Number(p));
  }
  return out;
}

function procStat(pid: number): { state: string; pgrp: number } | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so split after the last ')'.
    const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, pgrp: Number(rest[2]) };
  } catch {
    return undefined;
  }
}

/** Whether a process runs (a zombie does not). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const st = procStat(pid);
  return st ? st.state !== 'Z' && st.state !== 'X' : true;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until the group is gone; true if it went within `ms`. */
export async function waitGroupGone(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (groupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    await sleep(100);
  }
  return true;
}

/**
 * SIGTERM to the group (the mella trainer checkpoints at the next step boundary and exits 143), then
 * SIGKILL after `graceMs` if anything of the group is left. Resolves when the group is gone.
 * Returns whether SIGKILL was needed.
 */
export async function terminateGroup(pgid: number, graceMs: number): Promise<boolean> {
  if (!signalGroup(pgid, 'SIGTERM')) return false;
  if (await waitGroupGone(pgid, graceMs)) return false;
  signalGroup(pgid, 'SIGKILL');
  await waitGroupGone(pgid, 10_000);
  return true;
}

/** The command line of a live process (Linux /proc), or undefined. */
export function commandLine(pid: number): string | undefined {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return undefined;
  }
}
