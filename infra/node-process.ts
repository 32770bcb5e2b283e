import path from 'node:path';
import { PROJECT_ROOT } from './paths';

/** Arguments to run one of the project's TypeScript entry points in a new Node process (through tsx). */
export function tsEntryArgs(relativeFile: string, args: string[] = []): string[] {
  return ['--import', 'tsx', path.join(PROJECT_ROOT, relativeFile), ...args];
}
