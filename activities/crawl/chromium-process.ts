/**
 * The Chromium binary and its processes, for the browser renderer (browser.ts): which executable to
 * launch (chromium-launch.ts starts it), whether a browser process still runs, and how much memory
 * the browser and its children hold. Linux only (/proc); elsewhere the memory figure is 0.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

export interface ChromiumExecutable {
  /** What is launched. */
  path: string;
  /** Where it came from: the `executablePath` option, `MELLA_CHROMIUM_PATH`, Debian's headless shell, `/usr/bin/chromium`, or `which chromium`. */
  source: 'option' | 'env' | 'default' | 'path';
  /** The launcher script that was looked through (Debian's /usr/bin/chromium), when one was. */
  launcher?: string;
  /**
   * Chromium's headless shell (the "old headless" build, Debian's `chromium-headless-shell`, what
   * Playwright itself runs headless pages in), told by the file name: it has no popup blocker, so
   * `chromiumArgs` adds `--block-new-web-contents`.
   */
  headlessShell: boolean;
}

/** Debian's launcher is a shell script that sources /etc/chromium.d and then execs this binary. */
const DEBIAN_BINARY = '/usr/lib/chromium/chromium';
/** Debian's `chromium-headless-shell` package (same source and release as `chromium`); /usr/bin/chromium-headless-shell only execs it. */
const DEBIAN_HEADLESS_SHELL = '/usr/lib/chromium/chromium-headless-shell';

/** Whether a Chromium executable is the headless shell, by its file name (`chromium-headless-shell`, `headless_shell`, `chrome-headless-shell`). */
function isHeadlessShell(executable: string): boolean {
  return /headless[-_]shell$/.test(executable.split('/').pop() ?? '');
}

/**
 * The option, else `MELLA_CHROMIUM_PATH`, else Debian's headless shell
 * (`/usr/lib/chromium/chromium-headless-shell`), else `/usr/bin/chromium`, else `which chromium`.
 * An explicit path (option or environment) is used as given. The headless shell comes first: it is
 * the same Chromium without the desktop browser around it (no window, tab strip or profile services
 * per page), and a crawl page with a fresh context costs it about a third less (docs/crawl.md,
 * "Browser lifecycle"). A path found by default that is Debian's launcher
 * script is replaced by the binary it execs: the script sources /etc/chromium.d, which adds switches
 * we do not want in a crawler (`--enable-remote-extensions`, an empty `--load-extension`, GPU
 * rasterization) and prints a shell error on every start.
 * @throws Error when nothing is found.
 */
export function resolveChromiumExecutable(explicit?: string): ChromiumExecutable {
  if (explicit) return { path: explicit, source: 'option', headlessShell: isHeadlessShell(explicit) };
  const env = process.env.MELLA_CHROMIUM_PATH;
  if (env) return { path: env, source: 'env', headlessShell: isHeadlessShell(env) };
  if (isExecutable(DEBIAN_HEADLESS_SHELL)) return { path: DEBIAN_HEADLESS_SHELL, source: 'default', headlessShell: true };
  let found: ChromiumExecutable | null = null;
  if (isExecutable('/usr/bin/chromium')) found = { path: '/usr/bin/chromium', source: 'default', headlessShell: false };
  else {
    try {
      const which = execFileSync('which', ['chromium'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (which) found = { path: which, source: 'path', headlessShell: false };
    } catch {
      // not on PATH
    }
  }
  if (!found) {
    throw new Error('no Chromium found: set MELLA_CHROMIUM_PATH or install Debian\'s chromium (apt-get install -y chromium)');
  }
  if (isDebianLauncher(found.path) && isExecutable(DEBIAN_BINARY)) {
    return { path: DEBIAN_BINARY, source: found.source, launcher: found.path, headlessShell: false };
  }
  return found;
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function isDebianLauncher(p: string): boolean {
  try {
    const fd = fs.openSync(p, 'r');
    try {
      const buf = Buffer.alloc(8192);
      const n = fs.readSync(fd, buf, 0, buf.length, 0);
      const text = buf.subarray(0, n).toString('latin1');
      return text.startsWith('#!') && text.includes('LIBDIR=/usr/lib/$APPNAME');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

/** All pids under /proc. */
function listPids(): number[] {
  try {
    return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
  } catch {
    return [];
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The process exists and is not a zombie (a killed browser stays a zombie until Node reaps it and reports its exit). */
export function isRunning(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return process.platform === 'linux' ? false : isAlive(pid);
  }
}

function parentOf(pid: number): number | null {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // the command name is in parentheses and may hold spaces or parentheses: read after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(rest[1]);
  } catch {
    return null;
  }
}

function rssBytes(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function pssBytes(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+)\s+kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'latin1'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * The process and its descendants. `rssBytes` sums their resident set sizes, so pages shared between
 * them (the binary, shared memory) count once per process; `pssBytes` (proportional set size) splits
 * shared pages between the processes that map them, so it adds up to what the tree really holds.
 */
export function processTreeMemory(rootPid: number): { pids: number[]; rssBytes: number; pssBytes: number } {
  const children = new Map<number, number[]>();
  for (const pid of listPids()) {
    const ppid = parentOf(pid);
    if (ppid === null) continue;
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const pids: number[] = [];
  const queue = [rootPid];
  while (queue.length > 0) {
    const pid = queue.shift()!;
    pids.push(pid);
    for (const c of children.get(pid) ?? []) queue.push(c);
  }
  let rss = 0;
  let pss = 0;
  for (const pid of pids) {
    rss += rssBytes(pid);
    pss += pssBytes(pid);
  }
  return { pids, rssBytes: rss, pssBytes: pss };
}
