/**
 * Starting the crawl's Chromium: the whole command line (ours; no automation library adds its own),
 * a throwaway profile folder, and the DevTools protocol over `--remote-debugging-pipe`
 * (devtools-pipe.ts). browser.ts drives the pages through it. The browser is our child process: its
 * pid is known, and its exit is seen at once. When the pipe closes (this process died), Chromium
 * exits by itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { isAlive, type ChromiumExecutable } from './chromium-process';
import { DevToolsPipe } from './devtools-pipe';

/**
 * Features switched off. Chromium reads only the last `--disable-features`, so this is the one list.
 * The first entries are those a test-automation launch switches off too (playwright-core 1.65's
 * list): fewer background services, no HTTPS upgrade or paint holding. The last three drop the WebUI
 * omnibox popup: headless Chromium 156 opens a window per page, and each window started a second
 * renderer process for chrome://omnibox-popup.top-chrome/ that no crawl uses (0.1 CPU s a page on
 * this machine, a third of the context's cost; docs/crawl.md).
 */
export const DISABLED_FEATURES: readonly string[] = [
  'AvoidUnnecessaryBeforeUnloadCheckSync', 'DestroyProfileOnBrowserClose', 'HttpsUpgrades', 'HttpsFirstBalancedModeAutoEnable',
  'LensOverlay', 'MediaRouter', 'PaintHolding', 'ThirdPartyStoragePartitioning', 'AvoidCorsURLLoaderRestartOnRedirect',
  'OptimizationHints', 'NetworkTimeServiceQuerying', 'AimEnabled', 'PreconnectToSearch',
  'WebUIOmniboxPopup', 'WebUIOmniboxAimPopup', 'WebUIOmniboxFullPopup',
];

/** How the browser is started and driven: `launchChromium` adds these (an automation library adds its own). */
const LAUNCH_ARGS: readonly string[] = ['--headless', '--remote-debugging-pipe', '--no-startup-window'];

/**
 * The crawl browser's switches, besides the user agent and `--block-new-web-contents` (`chromiumArgs`)
 * and how it is started (`launchChromium`). bench:crawl gives crawlee's browser the same.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--hide-scrollbars',
  '--mute-audio',
  '--force-color-profile=srgb',
  // no background services, updates, crash reports, extensions or first-run UI
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-component-extensions-with-background-pages',
  '--disable-extensions',
  '--disable-default-apps',
  '--disable-sync',
  '--disable-breakpad',
  '--disable-field-trial-config',
  '--metrics-recording-only',
  '--no-first-run',
  '--no-default-browser-check',
  '--no-service-autorun',
  '--disable-search-engine-choice-screen',
  '--disable-infobars',
  '--password-store=basic',
  '--use-mock-keychain',
  // a page in a window nobody sees still runs at full speed, and is never put into the back/forward cache
  '--disable-background-timer-throttling',
  '--disable-backgrounding-occluded-windows',
  '--disable-renderer-backgrounding',
  '--disable-back-forward-cache',
  '--disable-hang-monitor',
  '--disable-ipc-flooding-protection',
  '--disable-prompt-on-repost',
  // HTTP/3 would go around the proxy (UDP): every connection goes through guard-proxy.ts
  '--disable-quic',
  // Keep cross-site iframes in the page's renderer process: fewer processes per page, and their
  // requests are the page's (DevTools events, byte budget). The proxy sees their connections either way.
  '--disable-site-isolation-trials',
  // WebRTC may not open UDP sockets that bypass the proxy (STUN to internal addresses).
  '--force-webrtc-ip-handling-policy=disable_non_proxied_udp',
  // Web fonts are never requested (the text is read, not drawn).
  '--disable-remote-fonts',
  // Media never plays without a user gesture, which a crawl never gives: a <video> or <audio> that
  // MEDIA_URL_PATTERNS does not catch loads at most what its `preload` asks for.
  '--autoplay-policy=user-gesture-required',
  // a pointer device, as a desktop browser has (pages that ask get a mouse, not a touch screen)
  '--blink-settings=primaryHoverType=2,availableHoverTypes=2,primaryPointerType=4,availablePointerTypes=4',
  `--disable-features=${DISABLED_FEATURES.join(',')}`,
];

/**
 * The switches a crawl browser is launched with: CHROMIUM_ARGS and the user agent (set for the whole
 * browser, so workers' requests carry it too), and for the headless shell (which has no popup
 * blocker) `--block-new-web-contents`, which makes every `window.open` and every link or form that
 * targets a new window fail inside the browser, before anything is requested. (A popup that opens
 * anyway is closed by the renderer; its first request would already have gone out.)
 */
export function chromiumArgs(executable: ChromiumExecutable, userAgent?: string): string[] {
  const args = [...CHROMIUM_ARGS];
  if (userAgent !== undefined) args.push(`--user-agent=${userAgent}`);
  if (executable.headlessShell) args.push('--block-new-web-contents');
  return args;
}

export interface ChromiumProcess {
  process: ChildProcess;
  pid: number;
  pipe: DevToolsPipe;
  /** `Browser.getVersion`'s product, e.g. `HeadlessChrome/156.0.8078.108`. */
  version: string;
  /** Resolves when the process has exited (its profile folder is removed then). */
  exited: Promise<void>;
  /** Asks the browser to close (at most `graceMs`), then kills it; resolves once it has exited. */
  close(graceMs?: number): Promise<void>;
}

/** The last characters of Chromium's stderr kept for a launch error. */
const STDERR_TAIL = 4_000;

/** Profile folders: `mella-chromium-<pid of the Node process that launched it>-<random>` in the temp folder. */
const PROFILE_PREFIX = 'mella-chromium-';

/**
 * Removes the profile folders of launching processes that are gone. A browser's own folder is removed
 * when it exits, but not when the Node process that started it was killed (a SIGKILLed worker: its
 * Chromium exits when the pipe closes, and nobody is left to clean up). Run before every launch.
 */
export function sweepStaleProfiles(dir = os.tmpdir()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = new RegExp(`^${PROFILE_PREFIX}(\\d+)-`).exec(name);
    if (!m || Number(m[1]) === process.pid || isAlive(Number(m[1]))) continue;
    try {
      fs.rmSync(path.join(dir, name), { recursive: true, force: true });
      removed.push(name);
    } catch {
      // another process's sweep, or not ours to remove: leave it
    }
  }
  return removed;
}

/**
 * Starts `executable` headless with `args` (`chromiumArgs`) and a fresh profile folder, and waits until
 * it answers over the pipe.
 * @throws Error with Chromium's stderr tail when it cannot be started, exits, or does not answer within `timeoutMs`.
 */
export async function launchChromium(executable: ChromiumExecutable, args: string[], timeoutMs: number): Promise<ChromiumProcess> {
  sweepStaleProfiles();
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), `${PROFILE_PREFIX}${process.pid}-`));
  const child = spawn(executable.path, [...LAUNCH_ARGS, ...args, `--user-data-dir=${profile}`], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (d: string) => {
    stderr = (stderr + d).slice(-STDERR_TAIL);
  });
  const exited = new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  }).then(() => fs.rmSync(profile, { recursive: true, force: true }));
  const spawnError = new Promise<never>((_, reject) => child.once('error', (err) => reject(err)));
  spawnError.catch(() => undefined); // observed by the race below while launching; later it means nothing
  const pipe = new DevToolsPipe(child.stdio[3] as Writable, child.stdio[4] as Readable);
  let timer: NodeJS.Timeout | undefined;
  try {
    const answered = await Promise.race([
      pipe.send('Browser.getVersion'),
      spawnError,
      exited.then(() => Promise.reject(new Error(`exited with ${child.exitCode ?? child.signalCode}`))),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs))),
    ]);
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    let closing: Promise<void> | undefined;
    return {
      process: child,
      pid: child.pid!,
      pipe,
      version: answered.product,
      exited,
      close: (graceMs = 5_000) => {
        closing ??= (async () => {
          await waitAtMost(pipe.send('Browser.close'), graceMs);
          // Browser.close answers before the process is gone: it gets as long again to exit
          await waitAtMost(exited, graceMs);
          kill();
          await exited;
        })();
        return closing;
      },
    };
  } catch (err) {
    // A process that exits at once often breaks the pipe first: wait a moment for its exit, which
    // says more (the code, and its stderr is complete) than the broken pipe.
    await waitAtMost(exited, 1_000);
    const ended = child.exitCode !== null || child.signalCode !== null;
    const why = ended && !(err instanceof Error && /^spawn /.test(err.message)) ? `exited with ${child.exitCode ?? child.signalCode}` : (err as Error).message;
    if (!ended) child.kill('SIGKILL');
    await exited;
    const tail = stderr.trim().split('\n').slice(-5).join(' / ');
    throw new Error(`${why}${tail ? `; stderr: ${tail}` : ''}`);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves when `p` settles or after `ms`, whichever comes first. */
async function waitAtMost(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([p.then(() => undefined, () => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
