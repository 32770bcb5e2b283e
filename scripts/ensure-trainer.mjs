#!/usr/bin/env node
// Installs the project's own trainer's Python environment, and nothing when it is there:
//   .venv-trainer/ (python3 -m venv) with the pinned packages of trainer/requirements.txt.
// A marker file holds the sha256 of requirements.txt; while it matches and the venv's python exists,
// the script returns at once. A change to requirements.txt reinstalls.
//
//   node scripts/ensure-trainer.mjs            install if needed; last line: "[ensure-trainer] ready <python>"
//   node scripts/ensure-trainer.mjs --check    also import the packages (slower; proves the venv works)
//
// Environment: MELLA_TRAINER_VENV (another venv dir), MELLA_TRAINER_BASE_PYTHON (the python3 that makes it).
// Exit codes: 0 ready, 1 cannot install (no python3/venv, pip failed: the message says which).
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const requirements = path.join(root, 'trainer', 'requirements.txt');
const venv = path.resolve(process.env.MELLA_TRAINER_VENV ?? path.join(root, '.venv-trainer'));
const python = path.join(venv, 'bin', 'python');
const marker = path.join(venv, '.mella-requirements.sha256');
const lockDir = path.join(venv, '.install.lock');
const IMPORT_CHECK = 'import torch, transformers, peft, safetensors, tokenizers, PIL; print(torch.__version__, transformers.__version__, peft.__version__)';

const log = (msg) => console.log(`[ensure-trainer] ${msg}`);

function run(cmd, args, opts = {}) {
  log(`${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', ...opts });
  if (r.error) log(`${cmd}: ${r.error.message}`);
  return r.status === 0;
}

function wantedHash() {
  return createHash('sha256').update(readFileSync(requirements)).digest('hex');
}

function upToDate(hash) {
  return existsSync(python) && existsSync(marker) && readFileSync(marker, 'utf8').trim() === hash;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** One installer at a time (two test runs, a worker and a test): a lock dir holding the owner's pid. */
async function withLock(fn) {
  const deadline = Date.now() + 20 * 60_000;
  mkdirSync(venv, { recursive: true });
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(path.join(lockDir, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      let owner = NaN;
      try {
        owner = Number(readFileSync(path.join(lockDir, 'pid'), 'utf8'));
      } catch {
        // the owner has not written its pid yet
      }
      if (Number.isInteger(owner) && owner > 0 && !alive(owner)) {
        rmSync(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() > deadline) throw new Error(`${lockDir} is held by pid ${owner}; remove it if no installer runs`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  try {
    return fn();
  } finally {
    rmSync(lockDir, { recursive: true, force: true });
  }
}

function basePython() {
  const candidates = [process.env.MELLA_TRAINER_BASE_PYTHON, 'python3', 'python'].filter(Boolean);
  return candidates.find((p) => spawnSync(p, ['--version'], { encoding: 'utf8' }).status === 0);
}

function install(hash) {
  if (upToDate(hash)) return;
  if (!existsSync(python)) {
    const base = basePython();
    if (!base) throw new Error('no python3 on PATH (the trainer needs Python 3.10+)');
    if (!run(base, ['-m', 'venv', venv])) {
      throw new Error(`${base} -m venv ${venv} failed (on Debian: apt-get install python3-venv)`);
    }
  }
  rmSync(marker, { force: true });
  // pip's own configuration decides where packages come from (an index, a local wheel dir).
  if (!run(python, ['-m', 'pip', 'install', '--disable-pip-version-check', '--no-input', '--quiet', '-r', requirements])) {
    throw new Error(`pip install -r ${path.relative(root, requirements)} failed (see pip's message above)`);
  }
  const tmp = `${marker}.tmp-${process.pid}`;
  writeFileSync(tmp, `${hash}\n`);
  renameSync(tmp, marker);
}

function check() {
  const r = spawnSync(python, ['-c', IMPORT_CHECK], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the trainer's packages do not import: ${(r.stderr ?? '').trim().split('\n').slice(-1)[0]}`);
  log(`torch, transformers, peft: ${r.stdout.trim()}`);
}

try {
  const hash = wantedHash();
  if (!upToDate(hash)) await withLock(() => install(hash));
  if (process.argv.includes('--check')) check();
  log(`ready ${python}`);
} catch (err) {
  console.error(`[ensure-trainer] ${err.message}`);
  process.exit(1);
}
