import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** Absolute path of the project checkout (the folder holding package.json). */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** State directory of the embedded stack: `MELLA_STATE_DIR` or `<project>/.mella`. */
export function stateDir(): string {
  return path.resolve(process.env.MELLA_STATE_DIR ?? path.join(PROJECT_ROOT, '.mella'));
}
