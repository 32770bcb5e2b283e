/**
 * What belongs to the gpu worker's machine, not to a job: read from the worker's environment, never
 * from the workflow input (a job must not pick another machine's GPUs or binaries).
 *
 *   MELLA_GPU_DEVICES        CUDA_VISIBLE_DEVICES for the trainer (e.g. "0"); default: the worker's own
 *                            CUDA_VISIBLE_DEVICES, else unset (every GPU visible)
 *   MELLA_TRAINER_PYTHON     python of the project trainer (default: .venv-trainer/bin/python, or
 *                            $MELLA_TRAINER_VENV/bin/python; `node scripts/ensure-trainer.mjs` makes it)
 *   MELLA_LLAMAFACTORY_CLI   the llamafactory-cli binary (default: llamafactory-cli on PATH)
 *   MELLA_MODELS_DIR         default output root (default: <state dir>/models)
 *   MELLA_TRAINER_ENV        extra variable names passed through to the trainer, comma-separated
 */
import path from 'node:path';
import { PROJECT_ROOT, stateDir } from '../../infra/paths';

export function trainerPython(): string {
  if (process.env.MELLA_TRAINER_PYTHON) return process.env.MELLA_TRAINER_PYTHON;
  const venv = process.env.MELLA_TRAINER_VENV ? path.resolve(process.env.MELLA_TRAINER_VENV) : path.join(PROJECT_ROOT, '.venv-trainer');
  return path.join(venv, 'bin', 'python');
}

export const TRAIN_SCRIPT = path.join(PROJECT_ROOT, 'trainer', 'mella_train.py');

export function llamaFactoryCli(): string {
  return process.env.MELLA_LLAMAFACTORY_CLI ?? 'llamafactory-cli';
}

export function visibleDevices(): string | undefined {
  return process.env.MELLA_GPU_DEVICES ?? process.env.CUDA_VISIBLE_DEVICES;
}

export function defaultOutputRoot(): string {
  return path.resolve(process.env.MELLA_MODELS_DIR ?? path.join(stateDir(), 'models'));
}

export function outputDirFor(jobId: string, outputRoot?: string): string {
  return path.join(outputRoot ? path.resolve(outputRoot) : defaultOutputRoot(), jobId);
}

// What a trainer needs from the worker's environment. Everything else (API keys, DATABASE_URL, the
// Temporal address) stays out of the child: secrets never reach a trainer or its logs.
const PASS_EXACT = new Set(['PATH', 'HOME', 'USER', 'LANG', 'TMPDIR', 'TZ', 'LD_LIBRARY_PATH', 'VIRTUAL_ENV', 'SSL_CERT_FILE']);
const PASS_PREFIXES = ['LC_', 'PYTHON', 'HF_', 'TRANSFORMERS_', 'TORCH', 'CUDA_', 'NCCL_', 'OMP_', 'MKL_', 'NVIDIA_', 'PYTORCH_', 'TOKENIZERS_', 'ACCELERATE_', 'DEEPSPEED_', 'FORCE_TORCHRUN', 'NNODES', 'NPROC_PER_NODE', 'MASTER_'];

/** The trainer's environment: the allow-listed part of the worker's, plus unbuffered output, offline hub and the GPUs. */
export function trainerEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  const passExtra = new Set((process.env.MELLA_TRAINER_ENV ?? '').split(',').map((s) => s.trim()).filter(Boolean));
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    if (PASS_EXACT.has(k) || passExtra.has(k) || PASS_PREFIXES.some((p) => k.startsWith(p))) env[k] = v;
  }
  delete env.CUDA_VISIBLE_DEVICES;
  const devices = visibleDevices();
  if (devices !== undefined) env.CUDA_VISIBLE_DEVICES = devices;
  env.PYTHONUNBUFFERED = '1';
  env.HF_HUB_OFFLINE ??= '1';
  return { ...env, ...extra };
}
